"""Team indicators (绩效考核, PATHWAY.md §6), each a numerator over a denominator a reviewer can re-check.

Computed as of one moment (``to``) from each managed patient's stored history, with the same
encounter rules and per-patient targets as the rule engine's snapshot; windows and cut-offs are
the pack's ``indicators`` block. A managed patient is one of the team's patients registered by
``to`` who has hypertension, diabetes or dyslipidaemia.

- 血压控制率: hypertensive patients whose latest encounter BP within the control window is below
  their own target (§3) / hypertensive patients.
- 血糖控制率: diabetic patients whose latest encounter FPG within the window is below the fasting
  target / diabetic patients.
- 规范管理率: patients with at least N encounters in the window / managed patients.
- LDL-C 达标率 by stratum: patients whose latest LDL-C (within the window) is below their
  stratum's target / patients with such an LDL-C, per 血脂2023 stratum.
- HEARTS: hypertensive patients registered for longer than the HEARTS minimum whose last visit
  with a BP, within the HEARTS window, was below the HEARTS cut-off / those patients.
- §7 (规律服药率, 他汀使用率 ×2, 降压药联合治疗率): :mod:`pathway.teams.medication_indicators`, under
  a pack with a medication table and medication indicators.

:func:`team_indicators` reads a team's patients and computes them as of one moment, with the
period's counts. The indicators over months are :func:`compute` at several moments over one load
of the team's histories (:func:`indicators_over_time`): the same numbers as the indicators API
asked for each moment in turn.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from sqlmodel import Session

from pathway.clinical.conditions import FactValue
from pathway.clinical.history import Encounter, PatientHistory
from pathway.clinical.medication import MedicationTable
from pathway.clinical.parameters import GlucoseTargets, IndicatorDefinitions
from pathway.clinical.tiers import RiskTier
from pathway.clinical.visits import clinic_encounters, encounter_bp, encounter_fasting_glucose
from pathway.clinical.vocabulary import Condition, PatientStatus
from pathway.patients.history import history_from_rows
from pathway.patients.reassessment import PathwayConfig
from pathway.store.tables import Patient, Team
from pathway.teams import indicator_store, team_store
from pathway.teams.contact_list import contact_flag_counts
from pathway.teams.medication_indicators import MedicationCounter, MedicationRates
from pathway.teams.rates import Rate


@dataclass(frozen=True)
class ManagedPatient:
    """One patient as the indicators see them, as of the indicators' moment."""

    patient_id: int
    registered_at: datetime
    conditions: frozenset[Condition]
    history: PatientHistory
    facts: dict[str, FactValue]  # the snapshot facts as of that moment (targets, LDL-C, stratum)
    tier: RiskTier | None  # of the latest assessment made by then


@dataclass
class TeamIndicators:
    as_of: datetime
    managed_patients: int
    bp_control: Rate
    glucose_control: Rate
    standard_management: Rate
    ldl_control_by_stratum: dict[str, Rate]
    hearts_bp_control: Rate
    tier_distribution: dict[str, int]
    medication: MedicationRates | None = None  # §7: under a pack with medication indicators


def compute(
    patients: Iterable[ManagedPatient],
    definitions: IndicatorDefinitions,
    glucose: GlucoseTargets,
    as_of: datetime,
    tz: ZoneInfo,
    medication: MedicationTable | None = None,
) -> TeamIndicators:
    window_start = as_of - timedelta(days=definitions.control_window_days)
    treated = None
    if medication is not None and definitions.medication is not None:
        treated = MedicationCounter(definitions.medication, medication, as_of, tz)
    managed = Rate()
    bp, fpg, standard, hearts = Rate(), Rate(), Rate(), Rate()
    ldl: dict[str, Rate] = {}
    tiers: Counter[str] = Counter({tier.value: 0 for tier in RiskTier})
    hearts_rule = definitions.hearts
    for patient in patients:
        if not patient.conditions & {Condition.HYPERTENSION, Condition.DIABETES, Condition.DYSLIPIDEMIA}:
            continue
        managed.count(patient.patient_id, met=True)
        if patient.tier is not None:
            tiers[patient.tier.value] += 1
        encounters = clinic_encounters(patient.history, as_of, tz)
        recent = [e for e in encounters if e.at >= window_start]
        if Condition.HYPERTENSION in patient.conditions:
            bp.count(patient.patient_id, met=_bp_below_target(recent, patient.facts))
            if patient.registered_at < as_of - timedelta(days=hearts_rule.registered_more_than_days):
                last = _latest_bp(encounters, as_of - timedelta(days=hearts_rule.last_visit_within_days))
                met = last is not None and (
                    last[0] < hearts_rule.systolic_below and last[1] < hearts_rule.diastolic_below
                )
                hearts.count(patient.patient_id, met=met)
        if Condition.DIABETES in patient.conditions:
            value = next(
                (g for g in (encounter_fasting_glucose(e) for e in reversed(recent)) if g is not None), None
            )
            fpg.count(patient.patient_id, met=value is not None and value < glucose.fasting_below)
        window = definitions.standard_management
        in_window = [e for e in encounters if e.at >= as_of - timedelta(days=window.window_days)]
        standard.count(patient.patient_id, met=len(in_window) >= window.min_encounters)
        _count_ldl(ldl, patient, definitions.control_window_days)
        if treated is not None:
            treated.count(patient.patient_id, patient.conditions, patient.history, patient.facts)
    return TeamIndicators(
        as_of=as_of,
        managed_patients=managed.denominator,
        bp_control=bp,
        glucose_control=fpg,
        standard_management=standard,
        ldl_control_by_stratum=dict(sorted(ldl.items())),
        hearts_bp_control=hearts,
        tier_distribution=dict(tiers),
        medication=treated.rates if treated is not None else None,
    )


def _latest_bp(encounters: list[Encounter], since: datetime) -> tuple[Decimal, Decimal] | None:
    for encounter in reversed(encounters):
        if encounter.at < since:
            return None
        bp = encounter_bp(encounter)
        if bp is not None:
            return bp
    return None


def _bp_below_target(recent: list[Encounter], facts: dict[str, FactValue]) -> bool:
    target_sbp, target_dbp = facts.get("bp_target_sbp"), facts.get("bp_target_dbp")
    if not isinstance(target_sbp, float) or not isinstance(target_dbp, float):
        return False
    latest = next((b for b in (encounter_bp(e) for e in reversed(recent)) if b is not None), None)
    return latest is not None and float(latest[0]) < target_sbp and float(latest[1]) < target_dbp


def _count_ldl(by_stratum: dict[str, Rate], patient: ManagedPatient, max_age_days: int) -> None:
    facts = patient.facts
    stratum, value, target, age = (
        facts.get("lipid_stratum"),
        facts.get("ldl_c"),
        facts.get("ldl_target"),
        facts.get("ldl_c_age_days"),
    )
    if not isinstance(stratum, str) or not isinstance(value, float) or not isinstance(target, float):
        return
    if not isinstance(age, float | int) or age > max_age_days:
        return
    by_stratum.setdefault(stratum, Rate()).count(patient.patient_id, met=value < target)


# --- A team's indicators -------------------------------------------------------------------------


def registered_at(patient: Patient, zone: ZoneInfo) -> datetime:
    """When the patient was registered for the indicators: the start of the enrolment day (建档日期)
    in the team's time zone, or, for a patient stored before enrolment dates were kept, when stored."""
    if patient.enrolled_on is None:
        return patient.created_at
    return datetime.combine(patient.enrolled_on, time(0), tzinfo=zone)


def managed_at(patient: Patient, moment: datetime) -> bool:
    """Whether the patient was still managed at ``moment``: active, or ended (died, moved) later."""
    ended = patient.status_changed_at
    return patient.status == PatientStatus.ACTIVE.value or (ended is not None and ended > moment)


@dataclass
class PeriodCounts:
    encounters: int
    open_referrals_by_urgency: dict[str, int]
    overdue_tasks_by_priority: dict[int, int]
    active_contact_flags: dict[str, int]


def team_indicators(
    session: Session, team: Team, config: PathwayConfig, start: datetime, end: datetime
) -> tuple[TeamIndicators, PeriodCounts]:
    """The indicators as of ``end`` (each patient's history up to then) and the period's counts."""
    assert team.id is not None
    zone = ZoneInfo(team.timezone)
    patients = [p for p in indicator_store.team_patients(session, team.id, end, zone) if managed_at(p, end)]
    ids = [p.id for p in patients if p.id is not None]
    with_prescriptions = [p.id for p in patients if p.id is not None and p.has_prescriptions]
    rows = indicator_store.clinical_rows(session, ids, end, with_prescriptions)
    tiers = team_store.latest_tiers(session, ids, made_by=end)
    managed = []
    for patient in patients:
        assert patient.id is not None
        mine = rows[patient.id]
        history = history_from_rows(
            patient,
            mine.complications,
            mine.readings,
            mine.encounters,
            mine.symptoms,
            mine.checks,
            mine.prescriptions,
        )
        tier = tiers.get(patient.id)
        managed.append(
            ManagedPatient(
                patient_id=patient.id,
                registered_at=registered_at(patient, zone),
                conditions=frozenset(Condition(c) for c in patient.conditions),
                history=history,
                facts=config.facts(history, end),
                tier=RiskTier(tier) if tier is not None else None,
            )
        )
    result = compute(managed, config.indicators, config.targets.glucose, end, zone, config.medication)
    counts = PeriodCounts(
        encounters=indicator_store.encounters_between(session, team.id, start, end),
        open_referrals_by_urgency=indicator_store.open_referrals_by_urgency(session, team.id, end),
        overdue_tasks_by_priority=indicator_store.overdue_tasks(
            session, team.id, end.astimezone(zone).date()
        ),
        active_contact_flags=contact_flag_counts(session, team),
    )
    return result, counts


# --- The team's indicators over months ------------------------------------------------------------


def month_ends(now: datetime, months: int, tz: ZoneInfo) -> list[datetime]:
    """The last instant of each of the ``months - 1`` months before this one, then ``now``."""
    today = now.astimezone(tz).date()
    first = date(today.year, today.month, 1)
    moments = [now]
    for _ in range(months - 1):
        last_day = first - timedelta(days=1)
        moments.append(datetime.combine(last_day, time.max, tzinfo=tz))
        first = date(last_day.year, last_day.month, 1)
    return sorted(moments)


@dataclass(frozen=True)
class TeamMember:
    """One patient of the team as the indicators read them (history loaded once, up to the last moment)."""

    patient_id: int
    registered_at: datetime
    conditions: frozenset[Condition]
    history: PatientHistory
    managed_until: datetime | None = None  # when management ended (death, a move), if it did


def indicators_over_time(
    members: Sequence[TeamMember],
    moments: Sequence[datetime],
    tiers_at: Mapping[datetime, Mapping[int, str]],
    facts: Callable[[PatientHistory, datetime], dict[str, FactValue]],
    definitions: IndicatorDefinitions,
    glucose: GlucoseTargets,
    tz: ZoneInfo,
    medication: MedicationTable | None = None,
) -> list[TeamIndicators]:
    """:func:`compute` at each of ``moments``, oldest first.

    Each moment sees the patients registered by then and their facts as of then (the snapshot
    ignores anything after its moment, so one history loaded up to the last moment serves every
    moment). The tier of each patient's latest assessment made by a moment comes from
    ``tiers_at[moment]``; a moment missing there has no tier distribution (every count 0).
    """
    results = []
    for moment in sorted(moments):
        tiers = tiers_at.get(moment, {})
        managed = [
            ManagedPatient(
                patient_id=m.patient_id,
                registered_at=m.registered_at,
                conditions=m.conditions,
                history=m.history,
                facts=facts(m.history, moment),
                tier=RiskTier(tiers[m.patient_id]) if m.patient_id in tiers else None,
            )
            for m in members
            if m.registered_at <= moment and (m.managed_until is None or m.managed_until > moment)
        ]
        results.append(compute(managed, definitions, glucose, moment, tz, medication))
    return results
