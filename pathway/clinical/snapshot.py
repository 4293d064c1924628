"""The derived facts of PATHWAY.md §2–3 for one patient as of one moment.

:func:`build_snapshot` is a pure function of (history, windows, targets, as_of): nothing after
``as_of`` is seen, so any past moment can be replayed. The rules see only ``Snapshot.facts``, a
flat mapping of scalars; an absent fact means "not known" (no reading in its window).
Elapsed-time windows include both ends; calendar dates are taken in the clinic's time zone.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from pathway.clinical.clock import CLINIC_TZ
from pathway.clinical.conditions import FactValue
from pathway.clinical.history import Encounter, Measurement, PatientHistory, SymptomReport
from pathway.clinical.parameters import SnapshotWindows, Targets
from pathway.clinical.targets import blood_pressure_band, lipid_risk_factor_count, lipid_stratum
from pathway.clinical.vocabulary import (
    GLUCOSE_KINDS,
    LAB_KINDS,
    CareCheck,
    Condition,
    ReadingKind,
    ReadingSource,
)

CONTROLLED = "controlled"
UNCONTROLLED = "uncontrolled"
UNKNOWN = "unknown"

# Every fact the rules may read, with its type: packs are validated against this catalogue.
FACT_TYPES: dict[str, type] = {
    "age": int,
    "sex": str,
    "smoker": bool,
    "pregnant": bool,
    **{f"has_{c.value}": bool for c in Condition},
    "has_ascvd": bool,
    "ascvd_risk_condition_count": int,
    "bp_target_sbp": float,
    "bp_target_dbp": float,
    "home_bp_target_sbp": float,
    "home_bp_target_dbp": float,
    "office_sbp": float,
    "office_dbp": float,
    "office_bp_age_days": float,
    "home_sbp_mean": float,
    "home_dbp_mean": float,
    "home_bp_reading_count": int,
    "days_since_last_bp": float,
    "bp_crisis_confirmed": bool,
    "bp_crisis_unconfirmed": bool,
    "bp_crisis_recent": bool,
    "bp_danger_symptom": bool,
    "hyperglycaemic_sign": bool,
    "acute_glucose_max": float,
    "acute_encounter_glucose_min": float,
    "self_monitored_glucose_min": float,
    "latest_encounter_glucose": float,
    "latest_encounter_glucose_target": float,
    "latest_encounter_glucose_fasting": bool,
    "hba1c": float,
    "hba1c_target": float,
    "days_since_last_glycaemic": float,
    "recent_fpg_max": float,
    "recent_nonfasting_glucose_max": float,
    "consecutive_uncontrolled_hypertension": int,
    "consecutive_uncontrolled_diabetes": int,
    "ldl_c": float,
    "tc": float,
    "hdl_c": float,
    "tg": float,
    "egfr": float,
    "uacr": float,
    **{f"{k.value}_age_days": float for k in LAB_KINDS},
    "lipid_stratum": str,
    "lipid_risk_factor_count": int,
    "ldl_target": float,
    "complication_count": int,
    "newest_complication_age_days": int,
    "oldest_complication_age_days": int,
}

# Moments that task due times are computed from (see rules' task catalogue).
ANCHOR_UNCONFIRMED_CRISIS = "unconfirmed_crisis_reading"
ANCHOR_LDL_C = "ldl_c_measured"
ANCHOR_LATEST_ENCOUNTER = "latest_encounter"


def check_anchor(check: CareCheck) -> str:
    return f"last_{check.value}"


def reading_anchor(kind: ReadingKind) -> str:
    """The anchor of the latest reading of ``kind`` (any source)."""
    return f"latest_{kind.value}_reading"


@dataclass(frozen=True)
class EncounterClassification:
    """公卫 随访分类 of one encounter, per disease the patient has."""

    at: datetime
    hypertension: str | None = None
    diabetes: str | None = None


@dataclass(frozen=True)
class Snapshot:
    as_of: datetime
    facts: dict[str, FactValue]
    anchors: dict[str, datetime] = field(default_factory=dict)
    encounters: tuple[EncounterClassification, ...] = ()


def _on_enough_days(readings: Sequence[Measurement], tz: ZoneInfo, needed: int) -> bool:
    """Whether ``readings`` fall on at least ``needed`` calendar days in ``tz`` (counted newest
    first, up to ``needed``: a wearable's week holds hundreds of readings, each a zone lookup)."""
    days: set[date] = set()
    for reading in reversed(readings):
        if len(days) >= needed:
            break
        days.add(reading.at.astimezone(tz).date())
    return len(days) >= needed


def build_snapshot(
    history: PatientHistory,
    windows: SnapshotWindows,
    targets: Targets,
    as_of: datetime,
    tz: ZoneInfo = CLINIC_TZ,
) -> Snapshot:
    """Derive the facts the rules see from ``history`` as of ``as_of``."""
    if as_of.tzinfo is None:
        raise ValueError("as_of must be timezone-aware")
    requested = as_of
    # The same instant in the zone the readings carry (UTC from the database, the clinic's zone in
    # case files): datetimes of one tzinfo compare without a zone lookup on each side, thousands of
    # times in an evaluation of a wearable's history. Instants compare the same in any zone.
    zone = history.readings[-1].at.tzinfo if history.readings else None
    if zone is not None:
        as_of = as_of.astimezone(zone)
    profile = history.profile
    facts: dict[str, FactValue] = {}
    anchors: dict[str, datetime] = {}
    today = as_of.astimezone(tz).date()

    def elapsed_days(at: datetime) -> float:
        return (as_of - at).total_seconds() / 86400

    window_starts: dict[tuple[int, int], datetime] = {}

    def within(at: datetime, *, days: int = 0, hours: int = 0) -> bool:
        start = window_starts.get((days, hours))
        if start is None:
            start = window_starts[(days, hours)] = as_of - timedelta(days=days, hours=hours)
        return start <= at <= as_of

    # Patient.
    age = completed_years(profile.birth_date, today)
    facts.update(age=age, sex=profile.sex.value, smoker=profile.smoker, pregnant=profile.pregnant)
    for condition in Condition:
        facts[f"has_{condition.value}"] = condition in profile.conditions
    complications = [c for c in profile.complications if c.onset <= today]
    codes = {c.code for c in complications}
    facts["has_ascvd"] = bool(codes & set(windows.ascvd))
    facts["ascvd_risk_condition_count"] = sum(
        1
        for item in windows.ascvd_risk_conditions
        if (profile.smoker if item == "smoker" else Condition(item) in profile.conditions)
    )
    facts["complication_count"] = len(complications)
    if complications:
        ages = [(today - c.onset).days for c in complications]
        facts["newest_complication_age_days"] = min(ages)
        facts["oldest_complication_age_days"] = max(ages)

    # Everything measured up to as_of.
    encounters = _encounters(history, as_of, tz)
    loose = [r for r in history.readings if r.at <= as_of and r.source is not ReadingSource.CLINIC]
    all_readings = loose + [r for e in encounters for r in e.readings]
    by_kind: dict[ReadingKind, list[Measurement]] = defaultdict(list)
    for reading in sorted(all_readings, key=_instant_then_value):
        by_kind[reading.kind].append(reading)
    symptoms = [s for s in history.symptoms if s.at <= as_of] + [
        SymptomReport(code, e.at) for e in encounters for code in e.symptoms
    ]
    recent_symptoms = {s.code for s in symptoms if within(s.at, hours=windows.symptom_window_hours)}
    facts["bp_danger_symptom"] = bool(recent_symptoms & set(windows.bp_danger_symptoms))
    facts["hyperglycaemic_sign"] = bool(recent_symptoms & set(windows.hyperglycaemic_crisis_signs))

    # Targets.
    band = blood_pressure_band(targets.blood_pressure, facts)
    if band is not None:
        facts.update(
            bp_target_sbp=float(band.office.systolic),
            bp_target_dbp=float(band.office.diastolic),
            home_bp_target_sbp=float(band.home.systolic),
            home_bp_target_dbp=float(band.home.diastolic),
        )
    glucose_targets = targets.glucose
    facts["hba1c_target"] = float(glucose_targets.hba1c_below)

    # Blood pressure.
    bps = by_kind[ReadingKind.BP]
    if bps:
        facts["days_since_last_bp"] = elapsed_days(bps[-1].at)
    office = next((e for e in reversed(encounters) if _bp_mean(e.readings) is not None), None)
    office_bp = None
    if office is not None and within(office.at, days=windows.office_bp_max_age_days):
        office_bp = _bp_mean(office.readings)
    if office is not None and office_bp is not None:
        facts.update(
            office_sbp=float(office_bp[0]),
            office_dbp=float(office_bp[1]),
            office_bp_age_days=elapsed_days(office.at),
        )
    home = windows.home_bp
    home_start, home_sources = as_of - timedelta(days=home.window_days), frozenset(home.sources)
    home_bps = [r for r in bps if home_start <= r.at <= as_of and r.source in home_sources]
    facts["home_bp_reading_count"] = len(home_bps)
    if len(home_bps) >= home.min_readings and _on_enough_days(home_bps, tz, home.min_distinct_days):
        home_mean = _bp_mean(home_bps)
        assert home_mean is not None
        facts.update(home_sbp_mean=float(home_mean[0]), home_dbp_mean=float(home_mean[1]))
    _crisis_facts(facts, anchors, windows, office, office_bp, bps, as_of)

    # Glucose.
    glucose = sorted((r for k in GLUCOSE_KINDS for r in by_kind[k]), key=lambda r: r.at)
    acute = [r for r in glucose if within(r.at, hours=windows.acute_glucose_window_hours)]
    _put_extreme(facts, "acute_glucose_max", max, acute)
    _put_extreme(
        facts,
        "acute_encounter_glucose_min",
        min,
        [r for r in acute if r.source in windows.encounter_glucose_sources],
    )
    _put_extreme(
        facts,
        "self_monitored_glucose_min",
        min,
        [
            r
            for r in glucose
            if r.source in windows.self_monitored_glucose_sources
            and within(r.at, days=windows.self_monitored_glucose_window_days)
        ],
    )
    pregnancy_window = [r for r in glucose if within(r.at, days=windows.pregnancy_glucose_window_days)]
    _put_extreme(facts, "recent_fpg_max", max, [r for r in pregnancy_window if r.kind is ReadingKind.FPG])
    _put_extreme(
        facts,
        "recent_nonfasting_glucose_max",
        max,
        [r for r in pregnancy_window if r.kind is not ReadingKind.FPG],
    )
    latest_glucose = next(
        (
            (e, g)
            for e in reversed(encounters)
            if within(e.at, days=windows.encounter_glucose_max_age_days)
            for g in [_encounter_glucose(e)]
            if g is not None
        ),
        None,
    )
    if latest_glucose is not None:
        value, fasting = latest_glucose[1]
        facts["latest_encounter_glucose"] = float(value)
        facts["latest_encounter_glucose_fasting"] = fasting
        facts["latest_encounter_glucose_target"] = float(
            glucose_targets.fasting_below if fasting else glucose_targets.non_fasting_below
        )
    glycaemic = glucose + by_kind[ReadingKind.HBA1C]
    if glycaemic:
        facts["days_since_last_glycaemic"] = elapsed_days(max(r.at for r in glycaemic))

    # Labs: the latest of each kind with its age; lipids count only inside the lipid window.
    lab_windows = {
        ReadingKind.HBA1C: glucose_targets.hba1c_max_age_days,
        ReadingKind.TC: windows.lipid_max_age_days,
        ReadingKind.LDL_C: windows.lipid_max_age_days,
        ReadingKind.HDL_C: windows.lipid_max_age_days,
        ReadingKind.TG: windows.lipid_max_age_days,
    }
    current: dict[ReadingKind, Decimal] = {}
    for kind in LAB_KINDS:
        if not by_kind[kind]:
            continue
        latest = by_kind[kind][-1]
        assert latest.value is not None
        age_days = elapsed_days(latest.at)
        facts[f"{kind.value}_age_days"] = age_days
        max_age = lab_windows.get(kind)
        if max_age is None or age_days <= max_age:
            current[kind] = latest.value
            facts[kind.value] = float(latest.value)
            if kind is ReadingKind.LDL_C:
                anchors[ANCHOR_LDL_C] = latest.at

    # Encounter classification (公卫 随访分类) and the run of uncontrolled visits.
    classified = _classify(encounters, facts, windows, targets, as_of)
    for disease in (Condition.HYPERTENSION, Condition.DIABETES):
        if disease in profile.conditions:
            facts[f"consecutive_uncontrolled_{disease.value}"] = _trailing_uncontrolled(
                [getattr(c, disease.value) for c in reversed(classified)]
            )

    # Lipid stratum and LDL-C target.
    lipids = targets.lipids
    risk_factors = lipid_risk_factor_count(
        lipids, sex=profile.sex, age=age, smoker=profile.smoker, hdl_c=current.get(ReadingKind.HDL_C)
    )
    facts["lipid_risk_factor_count"] = risk_factors
    stratum = lipid_stratum(
        lipids,
        facts,
        hypertension=Condition.HYPERTENSION in profile.conditions,
        risk_factors=risk_factors,
        ldl_c=current.get(ReadingKind.LDL_C),
        tc=current.get(ReadingKind.TC),
    )
    if stratum is not None:
        facts["lipid_stratum"] = stratum
        facts["ldl_target"] = float(lipids.ldl_targets[stratum])

    # Anchors for due times and evidence: the latest encounter, reading of each kind and check.
    if encounters:
        anchors[ANCHOR_LATEST_ENCOUNTER] = encounters[-1].at
    for kind, readings in by_kind.items():
        if readings:
            anchors[reading_anchor(kind)] = readings[-1].at
    for check, at in _last_checks(history, by_kind, windows, as_of).items():
        anchors[check_anchor(check)] = at

    return Snapshot(as_of=requested, facts=facts, anchors=anchors, encounters=tuple(classified))


def completed_years(birth: date, on: date) -> int:
    """Age in completed years; a 29 February birthday counts on 1 March in common years."""
    return on.year - birth.year - ((on.month, on.day) < (birth.month, birth.day))


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


def _instant_then_value(reading: Measurement) -> tuple[datetime, Decimal, Decimal]:
    """Readings in time order; of several of one kind at the same instant, the highest comes last,
    so it is the one taken as the latest (the safer reading, PATHWAY.md §2)."""
    first = reading.value if reading.value is not None else reading.systolic
    return reading.at, first if first is not None else _NONE, reading.diastolic or _NONE


_NONE = Decimal(0)


def _bp_mean(readings: Iterable[Measurement]) -> tuple[Decimal, Decimal] | None:
    bps = [r for r in readings if r.kind is ReadingKind.BP]
    if not bps:
        return None
    systolic = sum((r.systolic for r in bps if r.systolic is not None), Decimal(0)) / len(bps)
    diastolic = sum((r.diastolic for r in bps if r.diastolic is not None), Decimal(0)) / len(bps)
    return systolic, diastolic


def _mean(values: list[Decimal]) -> Decimal:
    return sum(values, Decimal(0)) / len(values)


def _encounter_glucose(encounter: Encounter) -> tuple[Decimal, bool] | None:
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


def _put_extreme(
    facts: dict[str, FactValue],
    name: str,
    pick: Callable[[list[Decimal]], Decimal],
    readings: list[Measurement],
) -> None:
    values = [r.value for r in readings if r.value is not None]
    if values:
        facts[name] = float(pick(values))


def _crisis_facts(
    facts: dict[str, FactValue],
    anchors: dict[str, datetime],
    windows: SnapshotWindows,
    office: Encounter | None,
    office_bp: tuple[Decimal, Decimal] | None,
    bps: list[Measurement],
    as_of: datetime,
) -> None:
    """Confirmed / unconfirmed crisis BP and whether a crisis reading falls in the last window."""
    crisis = windows.crisis

    def is_crisis(systolic: Decimal, diastolic: Decimal) -> bool:
        return systolic >= crisis.systolic or diastolic >= crisis.diastolic

    window_start = as_of - timedelta(hours=crisis.window_hours)
    home_crises = [
        r
        for r in bps
        if r.source in crisis.home_sources
        and window_start <= r.at <= as_of
        and r.systolic is not None
        and r.diastolic is not None
        and is_crisis(r.systolic, r.diastolic)
    ]
    office_crisis = office is not None and office_bp is not None and is_crisis(*office_bp)
    separated = _separated_count(
        [r.at for r in home_crises], timedelta(minutes=crisis.confirm_min_separation_minutes)
    )
    confirmed = office_crisis or separated >= crisis.confirm_min_readings
    unconfirmed = not confirmed and bool(home_crises)
    crisis_times = [r.at for r in home_crises]
    if office_crisis and office is not None:
        crisis_times.append(office.at)
    facts["bp_crisis_confirmed"] = confirmed
    facts["bp_crisis_unconfirmed"] = unconfirmed
    facts["bp_crisis_recent"] = bool(crisis_times) and window_start <= max(crisis_times) <= as_of
    if unconfirmed:
        # The recheck counts from the newest crisis reading: a second one inside the confirmation
        # gap is not the recheck of the first (PATHWAY.md §2).
        anchors[ANCHOR_UNCONFIRMED_CRISIS] = max(r.at for r in home_crises)


def _separated_count(times: list[datetime], gap: timedelta) -> int:
    """The most readings that can be picked with every two at least ``gap`` apart."""
    count = 0
    last: datetime | None = None
    for at in sorted(times):
        if last is None or at - last >= gap:
            count += 1
            last = at
    return count


def _classify(
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
            bp = _bp_mean(encounter.readings)
            if bp is None or "bp_target_sbp" not in facts:
                htn = UNKNOWN
            else:
                controlled = bp[0] < Decimal(str(facts["bp_target_sbp"])) and bp[1] < Decimal(
                    str(facts["bp_target_dbp"])
                )
                htn = CONTROLLED if controlled else UNCONTROLLED
        if has_dm:
            glucose = _encounter_glucose(encounter)
            if glucose is None:
                dm = UNKNOWN
            else:
                value, fasting = glucose
                target = targets.glucose.fasting_below if fasting else targets.glucose.non_fasting_below
                dm = CONTROLLED if value < target else UNCONTROLLED
        result.append(EncounterClassification(at=encounter.at, hypertension=htn, diabetes=dm))
    return result


def _trailing_uncontrolled(newest_first: list[str | None]) -> int:
    """Uncontrolled encounters in a row from the newest; unknown ones are skipped."""
    count = 0
    for status in newest_first:
        if status == UNCONTROLLED:
            count += 1
        elif status == CONTROLLED:
            break
    return count


def _last_checks(
    history: PatientHistory,
    by_kind: dict[ReadingKind, list[Measurement]],
    windows: SnapshotWindows,
    as_of: datetime,
) -> dict[CareCheck, datetime]:
    """When each scheduled check was last done: recorded checks, or lab evidence of all its kinds."""
    last: dict[CareCheck, datetime] = {}
    for done_check in history.checks:
        if done_check.at <= as_of and (done_check.kind not in last or done_check.at > last[done_check.kind]):
            last[done_check.kind] = done_check.at
    for check, kinds in windows.lab_evidence_of_checks.items():
        if kinds and all(by_kind[k] for k in kinds):
            done = min(by_kind[k][-1].at for k in kinds)
            if check not in last or done > last[check]:
                last[check] = done
    return last


# --- For the team indicators (PATHWAY.md §6): the same encounter rules as the snapshot's ----------


def clinic_encounters(history: PatientHistory, as_of: datetime, tz: ZoneInfo) -> list[Encounter]:
    """The patient's encounters up to ``as_of`` (explicit and implicit), oldest first."""
    return _encounters(history, as_of, tz)


def encounter_bp(encounter: Encounter) -> tuple[Decimal, Decimal] | None:
    """The mean clinic BP of one encounter, or None if it has no BP."""
    return _bp_mean(encounter.readings)


def encounter_fasting_glucose(encounter: Encounter) -> Decimal | None:
    """The mean FPG of one encounter, or None if it has no FPG."""
    glucose = _encounter_glucose(encounter)
    return glucose[0] if glucose is not None and glucose[1] else None
