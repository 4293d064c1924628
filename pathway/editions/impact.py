"""The impact of a rule-pack change, as values: each patient's outcome under an edition, what
changed between the baseline and the candidate, and the counts per team and overall.

Pure: no SQL, no engine. :mod:`pathway.editions.replay` evaluates the patients and feeds
:meth:`ImpactTally.count`; partial reports (a batch's, a worker's) merge with :meth:`ImpactReport.merge`.
"""

from __future__ import annotations

import csv
import io
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pathway.clinical.assessment import Assessment, PackRef

NO_TEAM = "(no team)"

CSV_COLUMNS = (
    "patient_id",
    "external_id",
    "team",
    "tier_from",
    "tier_to",
    "level_from",
    "level_to",
    "referral_from",
    "referral_to",
    "follow_up_days_from",
    "follow_up_days_to",
    "rules_gained",
    "rules_lost",
    "tasks_gained",
    "tasks_lost",
)


@dataclass(frozen=True)
class Outcome:
    """What an edition decides for a patient: the parts the impact compares."""

    tier: str
    level: str
    referral: str | None
    follow_up_days: int
    rules: frozenset[str]
    task_kinds: frozenset[str]


def outcome_of(assessment: Assessment) -> Outcome:
    return Outcome(
        tier=assessment.tier.value,
        level=assessment.level.value,
        referral=assessment.referral.urgency.value if assessment.referral else None,
        follow_up_days=assessment.follow_up.interval_days,
        rules=frozenset(reason.rule_id for reason in assessment.reasons),
        task_kinds=frozenset(task.kind.value for task in assessment.tasks),
    )


@dataclass(frozen=True)
class PatientChange:
    """One patient whose outcome differs between the editions (a row of the CSV)."""

    patient_id: int
    external_id: str
    team: str
    before: Outcome
    after: Outcome

    def csv_row(self) -> list[str]:
        b, a = self.before, self.after
        return [
            str(self.patient_id),
            self.external_id,
            self.team,
            b.tier,
            a.tier,
            b.level,
            a.level,
            b.referral or "",
            a.referral or "",
            str(b.follow_up_days),
            str(a.follow_up_days),
            " ".join(sorted(a.rules - b.rules)),
            " ".join(sorted(b.rules - a.rules)),
            " ".join(sorted(a.task_kinds - b.task_kinds)),
            " ".join(sorted(b.task_kinds - a.task_kinds)),
        ]


def _matrix(counts: Counter[tuple[str, str]]) -> dict[str, dict[str, int]]:
    matrix: dict[str, dict[str, int]] = {}
    for (before, after), n in sorted(counts.items()):
        matrix.setdefault(before, {})[after] = n
    return matrix


@dataclass
class ImpactTally:
    """The counts of one scope (a team, or every patient)."""

    patients: int = 0
    changed: int = 0
    tier: Counter[tuple[str, str]] = field(default_factory=Counter)
    level: Counter[tuple[str, str]] = field(default_factory=Counter)
    referral: Counter[tuple[str, str]] = field(default_factory=Counter)
    follow_up: Counter[tuple[str, str]] = field(default_factory=Counter)
    rules_before: Counter[str] = field(default_factory=Counter)
    rules_after: Counter[str] = field(default_factory=Counter)
    tasks_gained: Counter[str] = field(default_factory=Counter)
    tasks_lost: Counter[str] = field(default_factory=Counter)

    def count(self, before: Outcome, after: Outcome) -> bool:
        """Count one patient; whether anything of its outcome changed."""
        self.patients += 1
        self.tier[(before.tier, after.tier)] += 1
        self.level[(before.level, after.level)] += 1
        self.referral[(before.referral or "none", after.referral or "none")] += 1
        self.follow_up[(str(before.follow_up_days), str(after.follow_up_days))] += 1
        self.rules_before.update(before.rules)
        self.rules_after.update(after.rules)
        self.tasks_gained.update(after.task_kinds - before.task_kinds)
        self.tasks_lost.update(before.task_kinds - after.task_kinds)
        changed = before != after
        self.changed += changed
        return changed

    def merge(self, other: ImpactTally) -> None:
        self.patients += other.patients
        self.changed += other.changed
        for name in ("tier", "level", "referral", "follow_up", "rules_before", "rules_after"):
            getattr(self, name).update(getattr(other, name))
        self.tasks_gained.update(other.tasks_gained)
        self.tasks_lost.update(other.tasks_lost)

    @staticmethod
    def _moved(counts: Counter[tuple[str, str]]) -> int:
        return sum(n for (before, after), n in counts.items() if before != after)

    def to_json(self) -> dict[str, Any]:
        rules = sorted(set(self.rules_before) | set(self.rules_after))
        deltas = {r: self.rules_after[r] - self.rules_before[r] for r in rules}
        return {
            "patients": self.patients,
            "changed": self.changed,
            "tier_changed": self._moved(self.tier),
            "level_changed": self._moved(self.level),
            "referral_changed": self._moved(self.referral),
            "follow_up_changed": self._moved(self.follow_up),
            "tier": _matrix(self.tier),
            "level": _matrix(self.level),
            "referral": _matrix(self.referral),
            "follow_up_days": _matrix(self.follow_up),
            "rules": {
                r: {"before": self.rules_before[r], "after": self.rules_after[r], "delta": deltas[r]}
                for r in rules
            },
            "rules_fire_more": sorted((r for r in rules if deltas[r] > 0), key=lambda r: (-deltas[r], r)),
            "rules_fire_less": sorted((r for r in rules if deltas[r] < 0), key=lambda r: (deltas[r], r)),
            "tasks_gained": dict(sorted(self.tasks_gained.items())),
            "tasks_lost": dict(sorted(self.tasks_lost.items())),
        }


@dataclass
class ImpactReport:
    """The impact of ``candidate`` against ``baseline`` at ``as_of``: overall, per team, the changes."""

    baseline: PackRef
    candidate: PackRef
    as_of: datetime
    overall: ImpactTally = field(default_factory=ImpactTally)
    teams: dict[str, ImpactTally] = field(default_factory=dict)
    changes: list[PatientChange] = field(default_factory=list)
    # Patients not evaluated: born after ``as_of`` (a replay refuses a moment before birth).
    not_yet_born: int = 0

    def count(self, patient_id: int, external_id: str, team: str, before: Outcome, after: Outcome) -> None:
        self.overall.count(before, after)
        if self.teams.setdefault(team, ImpactTally()).count(before, after):
            self.changes.append(PatientChange(patient_id, external_id, team, before, after))

    def merge(self, other: ImpactReport) -> None:
        """Add a partial report (another batch of patients) to this one."""
        self.overall.merge(other.overall)
        self.not_yet_born += other.not_yet_born
        for team, tally in other.teams.items():
            self.teams.setdefault(team, ImpactTally()).merge(tally)
        self.changes.extend(other.changes)

    def to_json(self) -> dict[str, Any]:
        return {
            "baseline": _pack_json(self.baseline),
            "candidate": _pack_json(self.candidate),
            "as_of": self.as_of.isoformat(),
            "not_yet_born": self.not_yet_born,
            "overall": self.overall.to_json(),
            "teams": {team: tally.to_json() for team, tally in sorted(self.teams.items())},
        }

    def csv(self) -> str:
        """One row per changed patient, by patient id, under a header of :data:`CSV_COLUMNS`."""
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(CSV_COLUMNS)
        for change in sorted(self.changes, key=lambda c: c.patient_id):
            writer.writerow([_cell(value) for value in change.csv_row()])
        return out.getvalue()


def _cell(value: str) -> str:
    """A cell a spreadsheet will not run as a formula (an external id is data from outside)."""
    return "'" + value if value[:1] in ("=", "+", "-", "@", "\t", "\r") else value


def _pack_json(pack: PackRef) -> dict[str, str]:
    return {"id": pack.id, "version": pack.version, "sha256": pack.sha256}
