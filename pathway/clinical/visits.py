"""公卫 随访分类: the patient's clinic encounters (explicit and implicit), each one's BP and glucose,
its classification per disease (controlled, uncontrolled, unknown) and the run of uncontrolled
visits. The snapshot and the team indicators (PATHWAY.md §6) apply the same encounter rules.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from pathway.clinical.blood_pressure import bp_mean
from pathway.clinical.conditions import FactValue
from pathway.clinical.history import Encounter, Measurement, PatientHistory
from pathway.clinical.parameters import SnapshotWindows, Targets
from pathway.clinical.vocabulary import GLUCOSE_KINDS, ReadingKind, ReadingSource

CONTROLLED = "controlled"
UNCONTROLLED = "uncontrolled"
UNKNOWN = "unknown"


@dataclass(frozen=True)
class EncounterClassification:
    """公卫 随访分类 of one encounter, per disease the patient has."""

    at: datetime
    hypertension: str | None = None
    diabetes: str | None = None


def _encounters(history: PatientHistory, as_of: datetime, tz: ZoneInfo) -> list[Encounter]:
    """Explicit encounters up to ``as_of`` plus implicit ones for loose clinic readings, oldest first.

    The clinic readings posted outside an encounter on one calendar day form one implicit encounter,
    timed at the latest of them; it never merges into an explicit encounter of that day (a reading
    taken at 20:00 is not part of the 08:00 visit). Encounters at the same instant keep the order of
    the history (the store reads them by instant, then id): an implicit one comes after explicit ones.
    """
    explicit = [e for e in history.encounters if e.at <= as_of]
    loose: dict[date, list[Measurement]] = defaultdict(list)
    for reading in history.readings:
        if reading.source is ReadingSource.CLINIC and reading.at <= as_of:
            loose[reading.at.astimezone(tz).date()].append(reading)
    implicit = [Encounter(at=max(r.at for r in rs), readings=tuple(rs)) for rs in loose.values()]
    return sorted(explicit + implicit, key=lambda e: e.at)


def _mean(values: list[Decimal]) -> Decimal:
    return sum(values, Decimal(0)) / len(values)


def encounter_glucose(encounter: Encounter) -> tuple[Decimal, bool] | None:
    """Mean FPG of the encounter (fasting), else the mean of its other glucose values."""
    fasting = [r.value for r in encounter.readings if r.kind is ReadingKind.FPG and r.value is not None]
    if fasting:
        return _mean(fasting), True
    other = [
        r.value
        for r in encounter.readings
        if r.kind in GLUCOSE_KINDS and r.kind is not ReadingKind.FPG and r.value is not None
    ]
    return (_mean(other), False) if other else None


def classify_encounters(
    encounters: list[Encounter],
    facts: dict[str, FactValue],
    windows: SnapshotWindows,
    targets: Targets,
    as_of: datetime,
) -> list[EncounterClassification]:
    start = as_of - timedelta(days=windows.classification_window_days)
    has_htn = bool(facts["has_hypertension"])
    has_dm = bool(facts["has_diabetes"])
    result = []
    for encounter in encounters:
        if not start <= encounter.at <= as_of:
            continue
        htn = dm = None
        if has_htn:
            bp = bp_mean(encounter.readings)
            if bp is None or "bp_target_sbp" not in facts:
                htn = UNKNOWN
            else:
                controlled = bp[0] < Decimal(str(facts["bp_target_sbp"])) and bp[1] < Decimal(
                    str(facts["bp_target_dbp"])
                )
                htn = CONTROLLED if controlled else UNCONTROLLED
        if has_dm:
            glucose = encounter_glucose(encounter)
            if glucose is None:
                dm = UNKNOWN
            else:
                value, fasting = glucose
                target = targets.glucose.fasting_below if fasting else targets.glucose.non_fasting_below
                dm = CONTROLLED if value < target else UNCONTROLLED
        result.append(EncounterClassification(at=encounter.at, hypertension=htn, diabetes=dm))
    return result


def trailing_uncontrolled(newest_first: list[str | None]) -> int:
    """Uncontrolled encounters in a row from the newest; unknown ones are skipped."""
    count = 0
    for status in newest_first:
        if status == UNCONTROLLED:
            count += 1
        elif status == CONTROLLED:
            break
    return count


def clinic_encounters(history: PatientHistory, as_of: datetime, tz: ZoneInfo) -> list[Encounter]:
    """The patient's encounters up to ``as_of`` (explicit and implicit), oldest first."""
    return _encounters(history, as_of, tz)


def encounter_bp(encounter: Encounter) -> tuple[Decimal, Decimal] | None:
    """The mean clinic BP of one encounter, or None if it has no BP."""
    return bp_mean(encounter.readings)


def encounter_fasting_glucose(encounter: Encounter) -> Decimal | None:
    """The mean FPG of one encounter, or None if it has no FPG."""
    glucose = encounter_glucose(encounter)
    return glucose[0] if glucose is not None and glucose[1] else None
