"""A team indicator's numerator over its denominator, with the patients of each (to re-check)."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Rate:
    numerator: int = 0
    denominator: int = 0
    numerator_ids: list[int] = field(default_factory=list)
    denominator_ids: list[int] = field(default_factory=list)

    def count(self, patient_id: int, *, met: bool) -> None:
        self.denominator += 1
        self.denominator_ids.append(patient_id)
        if met:
            self.numerator += 1
            self.numerator_ids.append(patient_id)

    @property
    def rate(self) -> float | None:
        return round(self.numerator / self.denominator, 4) if self.denominator else None
