"""Unit conversion and plausibility (PATHWAY.md §1), driven by the pack's unit table.

Values in the canonical unit are used exactly as received; a value in another accepted unit is
converted and rounded half up to the precision the guidelines publish thresholds at. Unit names
match without regard to case or surrounding spaces ("mg/dl" is mg/dL); a pack may list other
spellings of a canonical unit (the UCUM "mm[Hg]"). This is the only module that converts units.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

from pathway.clinical.errors import ImplausibleValue, UnknownUnit
from pathway.clinical.parameters import Plausibility, Units
from pathway.clinical.vocabulary import ReadingKind


def to_canonical(kind: ReadingKind, value: Decimal, unit: str | None, units: Units, field: str) -> Decimal:
    """``value`` (in ``unit``; ``None`` means canonical) in the kind's canonical unit."""
    rule = units.kinds[kind]
    if unit is None:
        return value
    spelled = unit.strip().casefold()
    if spelled not in rule.spellings:
        accepted = ", ".join([rule.canonical, *rule.aliases, *rule.accepted])
        raise UnknownUnit(f"unit '{unit}' is not accepted for {kind.value}; accepted: {accepted}", field)
    conversion = rule.spellings[spelled]
    if conversion is None:
        return value
    converted = value * conversion.multiply / conversion.divide + conversion.add
    return converted.quantize(rule.quantum, rounding=ROUND_HALF_UP)


def check_plausible(
    kind: ReadingKind, values: dict[str, Decimal], plausibility: Plausibility, field_prefix: str
) -> None:
    """Raise :class:`ImplausibleValue` naming the field and the accepted range."""
    ranges = plausibility.ranges.get(kind, {})
    for name, value in values.items():
        if not value.is_finite() or value < 0:
            field = f"{field_prefix}.{name}"
            raise ImplausibleValue(f"{kind.value} {name} must be a non-negative number, got {value}", field)
        allowed = ranges.get(name)
        if allowed is not None and not allowed.min <= value <= allowed.max:
            field = f"{field_prefix}.{name}"
            raise ImplausibleValue(
                f"{kind.value} {name} {value} is outside the plausible range {allowed.min}–{allowed.max}",
                field,
            )
    if (
        plausibility.systolic_above_diastolic
        and "systolic" in values
        and "diastolic" in values
        and values["systolic"] <= values["diastolic"]
    ):
        raise ImplausibleValue(
            f"systolic {values['systolic']} must be above diastolic {values['diastolic']}",
            f"{field_prefix}.systolic",
        )
