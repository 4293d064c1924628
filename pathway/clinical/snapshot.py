"""The derived facts of PATHWAY.md §2–3 for one patient as of one moment.

:func:`build_snapshot` is a pure function of (history, windows, targets, as_of): nothing after
``as_of`` is seen, so any past moment can be replayed. The rules see only ``Snapshot.facts``, a
flat mapping of scalars; an absent fact means "not known" (no reading in its window).
Elapsed-time windows include both ends; calendar dates are taken in the clinic's time zone.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from pathway.clinical.anchors import ANCHOR_LATEST_ENCOUNTER, ANCHOR_LDL_C, check_anchor, reading_anchor
from pathway.clinical.blood_pressure import bp_mean, crisis_facts, on_enough_days
from pathway.clinical.clock import CLINIC_TZ
from pathway.clinical.conditions import FactValue
from pathway.clinical.history import Measurement, PatientHistory, SymptomReport
from pathway.clinical.medication import MedicationTable
from pathway.clinical.medication_facts import MEDICATION_FACT_TYPES, RefillDue, medication_facts
from pathway.clinical.parameters import SnapshotWindows, Targets
from pathway.clinical.targets import blood_pressure_band, lipid_risk_factor_count, lipid_stratum
from pathway.clinical.visits import (
    EncounterClassification,
    classify_encounters,
    clinic_encounters,
    encounter_glucose,
    trailing_uncontrolled,
)
from pathway.clinical.vocabulary import (
    GLUCOSE_KINDS,
    LAB_KINDS,
    CareCheck,
    Condition,
    ReadingKind,
    ReadingSource,
)

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
    **MEDICATION_FACT_TYPES,
}


@dataclass(frozen=True)
class Snapshot:
    as_of: datetime
    facts: dict[str, FactValue]
    anchors: dict[str, datetime] = field(default_factory=dict)
    encounters: tuple[EncounterClassification, ...] = ()
    # PATHWAY.md §7: when prescriptions of each group/class, adherence and renewals were last seen
    # (task evidence), and the active prescriptions whose supply ends within the refill horizon.
    medication_evidence: dict[str, datetime] = field(default_factory=dict)
    refills: tuple[RefillDue, ...] = ()


def build_snapshot(
    history: PatientHistory,
    windows: SnapshotWindows,
    targets: Targets,
    as_of: datetime,
    tz: ZoneInfo = CLINIC_TZ,
    medication: MedicationTable | None = None,
) -> Snapshot:
    """Derive the facts the rules see from ``history`` as of ``as_of`` (the §7 facts when the pack
    has a ``medication`` table)."""
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
    encounters = clinic_encounters(history, as_of, tz)
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
    office = next((e for e in reversed(encounters) if bp_mean(e.readings) is not None), None)
    office_bp = None
    if office is not None and within(office.at, days=windows.office_bp_max_age_days):
        office_bp = bp_mean(office.readings)
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
    if len(home_bps) >= home.min_readings and on_enough_days(home_bps, tz, home.min_distinct_days):
        home_mean = bp_mean(home_bps)
        assert home_mean is not None
        facts.update(home_sbp_mean=float(home_mean[0]), home_dbp_mean=float(home_mean[1]))
    crisis_facts(facts, anchors, windows, office, office_bp, bps, as_of)

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
            for g in [encounter_glucose(e)]
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
    classified = classify_encounters(encounters, facts, windows, targets, as_of)
    for disease in (Condition.HYPERTENSION, Condition.DIABETES):
        if disease in profile.conditions:
            facts[f"consecutive_uncontrolled_{disease.value}"] = trailing_uncontrolled(
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

    treatment = None
    if medication is not None:
        treatment = medication_facts(
            history.prescriptions,
            history.encounters,
            medication,
            profile.conditions,
            anchors.get(ANCHOR_LDL_C),
            as_of,
            tz,
        )
        facts.update(treatment.facts)

    return Snapshot(
        as_of=requested,
        facts=facts,
        anchors=anchors,
        encounters=tuple(classified),
        medication_evidence=treatment.evidence if treatment else {},
        refills=treatment.refills if treatment else (),
    )


def completed_years(birth: date, on: date) -> int:
    """Age in completed years; a 29 February birthday counts on 1 March in common years."""
    return on.year - birth.year - ((on.month, on.day) < (birth.month, birth.day))


def _instant_then_value(reading: Measurement) -> tuple[datetime, Decimal, Decimal]:
    """Readings in time order; of several of one kind at the same instant, the highest comes last,
    so it is the one taken as the latest (the safer reading, PATHWAY.md §2)."""
    first = reading.value if reading.value is not None else reading.systolic
    return reading.at, first if first is not None else _NONE, reading.diastolic or _NONE


_NONE = Decimal(0)


def _put_extreme(
    facts: dict[str, FactValue],
    name: str,
    pick: Callable[[list[Decimal]], Decimal],
    readings: list[Measurement],
) -> None:
    values = [r.value for r in readings if r.value is not None]
    if values:
        facts[name] = float(pick(values))


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
