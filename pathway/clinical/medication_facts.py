"""The medication facts of PATHWAY.md §7 for one patient as of one moment.

:func:`medication_facts` is pure, like the rest of the snapshot: only prescriptions known by
``as_of`` (``recorded_at`` ≤ as_of, when set) and started by the as-of date count, so a replay sees
them as they were. Facts that do not apply are absent: the class counts and the on-a-class flags
exist only when the medication is *known* (a prescription, or a review recorded in the window), so
a rule testing the absence or the count of classes never fires for a patient whose EHR sends none.
Every window is the pack's (``medication.windows``).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from pathway.clinical.conditions import FactValue
from pathway.clinical.history import Encounter
from pathway.clinical.medication import (
    Adherence,
    MedicationClass,
    MedicationGroup,
    MedicationTable,
    MedicationWindows,
    Prescription,
)
from pathway.clinical.vocabulary import Condition

MEDICATION_FACT_TYPES: dict[str, type] = {
    "medication_known": bool,
    "antihypertensive_classes": int,
    "on_diuretic": bool,
    "glucose_lowering_classes": int,
    "on_insulin": bool,
    "on_statin": bool,
    "statin_days": int,
    "ldl_c_statin_days": int,
    "on_ezetimibe_or_pcsk9": bool,
    "latest_adherence": str,
    "adverse_reaction_run": int,
    "supply_lapsed_days": int,
    "refills_due": int,
}


def prescription_evidence(name: str) -> str:
    """Evidence key: a prescription of a group or class started, changed or stopped."""
    return f"prescription:{name}"


def adherence_evidence(adherence: Adherence) -> str:
    """Evidence key: an encounter recording this adherence."""
    return f"adherence:{adherence.value}"


def refill_evidence(subject: str) -> str:
    """Evidence key: the prescription ``subject`` was renewed (a newer one of its class) or stopped."""
    return f"refill:{subject}"


def prescription_subject(prescription: Prescription) -> str:
    """A prescription's identity as a task subject: its source id, else drug and start date."""
    return prescription.source_id or f"{prescription.drug}@{prescription.started_on.isoformat()}"


@dataclass(frozen=True)
class RefillDue:
    """An active prescription whose supply ends within the refill horizon."""

    subject: str
    supply_end: date


@dataclass(frozen=True)
class MedicationFacts:
    facts: dict[str, FactValue]
    evidence: dict[str, datetime]
    refills: tuple[RefillDue, ...]


def medication_facts(
    prescriptions: Iterable[Prescription],
    encounters: Iterable[Encounter],
    table: MedicationTable,
    conditions: frozenset[Condition],
    ldl_c_at: datetime | None,
    as_of: datetime,
    tz: ZoneInfo,
) -> MedicationFacts:
    """The §7 facts, the prescriptions' evidence moments and the refills due (see the module)."""
    windows = table.windows
    if windows is None:
        return MedicationFacts({}, {}, ())
    today = as_of.astimezone(tz).date()
    known = [
        p
        for p in prescriptions
        if (p.recorded_at is None or p.recorded_at <= as_of) and p.started_on <= today
    ]
    visits = sorted((e for e in encounters if e.at <= as_of), key=lambda e: e.at)
    facts: dict[str, FactValue] = {}
    reviewed_since = as_of - timedelta(days=windows.known_window_days)
    is_known = bool(known) or any(e.medications_reviewed and e.at >= reviewed_since for e in visits)
    facts["medication_known"] = is_known
    _visit_facts(facts, visits, windows, as_of)
    evidence = _evidence(known, visits, table, today, tz)
    if not is_known:
        return MedicationFacts(facts, evidence, ())

    def stopped(p: Prescription) -> bool:
        return p.stopped_on is not None and p.stopped_on <= today

    lapse = timedelta(days=windows.lapse_days)
    on = {c for p in known if not stopped(p) and p.supply_end >= today - lapse for c in p.classes}
    groups = table.groups
    facts["antihypertensive_classes"] = len(on & set(groups.get(MedicationGroup.ANTIHYPERTENSIVE, [])))
    facts["on_diuretic"] = bool(on & set(table.diuretics))
    facts["glucose_lowering_classes"] = len(on & set(groups.get(MedicationGroup.GLUCOSE_LOWERING, [])))
    facts["on_insulin"] = MedicationClass.INSULIN in on
    facts["on_statin"] = MedicationClass.STATIN in on
    facts["on_ezetimibe_or_pcsk9"] = bool(on & {MedicationClass.EZETIMIBE, MedicationClass.PCSK9})
    if MedicationClass.STATIN in on:
        began = _statin_run_start(known, windows, today)
        facts["statin_days"] = (today - began).days
        if ldl_c_at is not None:
            facts["ldl_c_statin_days"] = (ldl_c_at.astimezone(tz).date() - began).days

    lapsed = []
    for watch in windows.supply_watch:
        if not set(watch.conditions) & conditions:
            continue
        for medication_class in table.watched(watch):
            of_class = [p for p in known if medication_class in p.classes]
            if not of_class:
                continue
            newest = max(of_class, key=lambda p: (p.started_on, p.supply_end))
            if not stopped(newest) and newest.supply_end < today:
                lapsed.append((today - newest.supply_end).days)
    if lapsed:
        facts["supply_lapsed_days"] = min(lapsed)

    horizon = today + timedelta(days=windows.refill_horizon_days)
    refills = tuple(
        RefillDue(prescription_subject(p), p.supply_end)
        for p in sorted(known, key=lambda p: (p.supply_end, prescription_subject(p)))
        if not stopped(p) and not _superseded(p, known) and today <= p.supply_end <= horizon
    )
    facts["refills_due"] = len(refills)
    return MedicationFacts(facts, evidence, refills)


def _visit_facts(
    facts: dict[str, FactValue], visits: Sequence[Encounter], windows: MedicationWindows, as_of: datetime
) -> None:
    """latest_adherence and adverse_reaction_run, from the encounters that recorded them."""
    adherence_since = as_of - timedelta(days=windows.adherence_window_days)
    latest = next(
        (e.adherence for e in reversed(visits) if e.adherence is not None and e.at >= adherence_since), None
    )
    if latest is not None:
        facts["latest_adherence"] = latest.value
    adverse_since = as_of - timedelta(days=windows.adverse_window_days)
    asked = [
        e.adverse_reaction
        for e in reversed(visits)
        if e.adverse_reaction is not None and e.at >= adverse_since
    ]
    if asked:
        run = 0
        for answer in asked:
            if not answer:
                break
            run += 1
        facts["adverse_reaction_run"] = run


def _statin_run_start(known: Sequence[Prescription], windows: MedicationWindows, today: date) -> date:
    """The start of the current unbroken run of statin supplies (a gap longer than the pack's breaks it)."""
    gap = timedelta(days=windows.statin_run_gap_days)
    run_start: date | None = None
    run_end: date | None = None
    for p in sorted((p for p in known if MedicationClass.STATIN in p.classes), key=lambda p: p.started_on):
        end = min(p.supply_end, p.stopped_on) if p.stopped_on is not None else p.supply_end
        if run_start is None or run_end is None or p.started_on - run_end > gap:
            run_start, run_end = p.started_on, end
        else:
            run_end = max(run_end, end)
    return run_start if run_start is not None else today


def _superseded(prescription: Prescription, known: Sequence[Prescription]) -> bool:
    """Whether a later-started prescription shares one of its classes."""
    return any(
        q.started_on > prescription.started_on and set(q.classes) & set(prescription.classes) for q in known
    )


def _moment(prescription: Prescription, today: date, tz: ZoneInfo) -> datetime:
    """When a prescription was started, changed or stopped, as far as known: its ``recorded_at``, else
    the start of the day it started or (if stopped by now) stopped."""
    if prescription.recorded_at is not None:
        return prescription.recorded_at
    day = prescription.started_on
    if prescription.stopped_on is not None and day < prescription.stopped_on <= today:
        day = prescription.stopped_on
    return datetime.combine(day, time(0), tzinfo=tz)


def _evidence(
    known: Sequence[Prescription],
    visits: Sequence[Encounter],
    table: MedicationTable,
    today: date,
    tz: ZoneInfo,
) -> dict[str, datetime]:
    """The latest moment of each kind of medication evidence (what resolves the §7 tasks)."""
    found: dict[str, datetime] = {}

    def put(key: str, at: datetime) -> None:
        if key not in found or at > found[key]:
            found[key] = at

    for p in known:
        at = _moment(p, today, tz)
        for medication_class in p.classes:
            put(prescription_evidence(medication_class.value), at)
            put(prescription_evidence(table.group_of(medication_class).value), at)
        stopped = p.stopped_on is not None and p.stopped_on <= today
        renewals = [
            _moment(q, today, tz)
            for q in known
            if q.started_on > p.started_on and set(q.classes) & set(p.classes)
        ]
        if stopped:
            renewals.append(at)
        if renewals:
            put(refill_evidence(prescription_subject(p)), max(renewals))
    for visit in visits:
        if visit.adherence is not None:
            put(adherence_evidence(visit.adherence), visit.at)
    return found
