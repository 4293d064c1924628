"""Use-cases: reassess a patient, and the current assessment for a read. They never commit.

The caller (a request, a job, a command) owns the transaction, so "readings + new assessment" is
stored atomically: the tier on the patient summary is never behind an acknowledged reading.
The rule pack reaches the use-cases through :class:`PathwayConfig`, built by the composition root.
Patients are registered by :mod:`pathway.patients.registration`; what arrives (readings, visits,
symptoms, checks) is recorded by :mod:`pathway.ingest.recording`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlmodel import Session

from pathway.clinical.assessment import Assessment, PackRef
from pathway.clinical.clock import Clock, clinic_date
from pathway.clinical.conditions import FactValue
from pathway.clinical.errors import DatabaseBusy, InvalidInput, PathwayError
from pathway.clinical.history import PatientHistory
from pathway.clinical.horizon import ReadingHorizon
from pathway.clinical.medication import MedicationTable
from pathway.clinical.parameters import IndicatorDefinitions, Plausibility, Targets, Units
from pathway.clinical.vocabulary import PatientStatus
from pathway.events import outbox
from pathway.patients import display_store, history_store, patient_store
from pathway.patients.history import histories_of, history_from_rows, history_of
from pathway.referrals import referral_flow
from pathway.store.tables import AssessmentRecord, Patient, Referral
from pathway.tasks import sync

log = logging.getLogger("pathway.service")


class EvaluationUnavailable(PathwayError):
    code = "evaluation-unavailable"
    status = 503

    def __init__(self, detail: str) -> None:
        super().__init__(detail, None, {"Retry-After": "5"})


@dataclass(frozen=True)
class PathwayConfig:
    """What the service needs of the rule pack in force: its tables and its evaluation."""

    pack: PackRef
    units: Units
    plausibility: Plausibility
    assess: Callable[[PatientHistory, datetime], Assessment]
    tz: ZoneInfo
    facts: Callable[[PatientHistory, datetime], dict[str, FactValue]]
    targets: Targets
    indicators: IndicatorDefinitions
    # How far back a reassessment reads readings outside a visit (pathway.clinical.horizon.reading_horizon).
    reading_horizon: ReadingHorizon
    # The task kinds a referral brings (its own task and its follow-up), kept quiet with it after a
    # return (pathway.referrals.referral_flow.quiet_after_return).
    referral_tasks: frozenset[str] = frozenset()
    # The pack's medication table (PATHWAY.md §7): None under a pack that knows no treatment.
    medication: MedicationTable | None = None


def is_current(
    record: AssessmentRecord, config: PathwayConfig, now: datetime, patient: Patient | None = None
) -> bool:
    """An assessment is current on the clinic date it was made, under the pack (and file) in force.

    Every ingest reassesses, so only time, a new pack or a failed evaluation (the patient awaits a
    reassessment) make an assessment stale.
    """
    made = record.evaluated_at.astimezone(config.tz).date()
    same_pack = (record.pack_id, record.pack_version, record.pack_sha256) == (
        config.pack.id,
        config.pack.version,
        config.pack.sha256,
    )
    awaited = patient is not None and patient.reassessment_due_since is not None
    return made == now.astimezone(config.tz).date() and same_pack and not awaited


def preview(session: Session, patient: Patient, config: PathwayConfig, as_of: datetime) -> Assessment:
    """The assessment of the stored history as of any moment (a replay; nothing is stored), read as
    a reassessment at that moment reads it, without the readings after it
    (:func:`pathway.patients.display_store.replay_rows`)."""
    assert patient.id is not None
    if clinic_date(as_of, config.tz) < patient.birth_date:
        raise InvalidInput(f"as_of is before the patient's birth date {patient.birth_date}", "as_of")
    rows = display_store.replay_rows(session, patient.id, as_of, config.reading_horizon)
    prescriptions = []
    if config.medication is not None and patient.has_prescriptions:  # the versions in force at as_of
        prescriptions = history_store.prescription_rows(session, patient.id, as_of)
    history = history_from_rows(
        patient, rows.complications, rows.readings, rows.encounters, rows.symptoms, rows.checks, prescriptions
    )
    return config.assess(history, as_of)


def current_assessment(
    session: Session, patient: Patient, config: PathwayConfig, clock: Clock
) -> AssessmentRecord:
    """The current assessment for a read: the stored one if current, else renewed (and stored).

    A read never waits for the patient's lock. Renewing takes it (writes to one patient take
    turns) only if it is free; if a write holds it, that write stores a new assessment as it
    commits, and the read answers with the newest stored one as it is (stale: another day, another
    pack, or awaiting a reassessment). With none stored yet, :class:`DatabaseBusy` (503).
    """
    assert patient.id is not None
    record = patient_store.latest_assessment(session, patient.id)
    if record is not None and is_current(record, config, clock.now(), patient):
        return record
    locked = patient_store.lock_patient_if_free(session, patient.id)
    if locked is None:
        if record is None:
            raise DatabaseBusy("the patient is being written to; retry shortly")
        return record
    return reassess(session, locked, config, clock.now())


def reassess(session: Session, patient: Patient, config: PathwayConfig, now: datetime) -> AssessmentRecord:
    """Evaluate the patient's stored history as of ``now`` and store the assessment.

    If the rule engine fails, nothing is stored and :class:`EvaluationUnavailable` (503) is raised.
    """
    result = _evaluate(session, patient, config, now)
    if result is None:
        raise EvaluationUnavailable("the rule engine could not evaluate this patient; retry shortly")
    return _store_assessment(session, patient, result, now, config.referral_tasks)


def reassess_or_defer(
    session: Session, patient: Patient, config: PathwayConfig, now: datetime
) -> AssessmentRecord | None:
    """Reassess after an ingest; if the rule engine fails, keep what was stored and mark the patient
    as awaiting a reassessment (the next read, ingest or scheduler run completes it): None."""
    result = _evaluate(session, patient, config, now)
    if result is None:
        _await_reassessment(session, patient, now)
        return None
    return _store_assessment(session, patient, result, now, config.referral_tasks)


def reassess_after_ingest(
    session: Session, patient: Patient, config: PathwayConfig, now: datetime, *, stored_any: bool
) -> AssessmentRecord | None:
    """:func:`reassess_or_defer` after an ingest that stored something. One that stored nothing (a
    gateway's retry: every item a duplicate) keeps the current assessment, which saw those readings
    when they were first stored; a stale one (another day, another pack, awaited) is redone."""
    if not stored_any:
        assert patient.id is not None
        record = patient_store.latest_assessment(session, patient.id)
        if record is not None and is_current(record, config, now, patient):
            return record
    return reassess_or_defer(session, patient, config, now)


def _evaluate(session: Session, patient: Patient, config: PathwayConfig, now: datetime) -> Assessment | None:
    """The assessment, or None if the rule engine failed (logged). Database errors propagate.

    Only the recent part of a long self-measured stream is read: the same snapshot (horizon.py)."""
    history = history_of(
        session,
        patient,
        evaluated_at=now,
        horizon=config.reading_horizon,
        prescriptions=config.medication is not None,
    )
    return _assessed(config, history, now, patient.id)


def _assessed(
    config: PathwayConfig, history: PatientHistory, now: datetime, patient_id: int | None
) -> Assessment | None:
    """The engine's assessment of a history read, or None if it failed (logged)."""
    try:
        return config.assess(history, now)
    except Exception:  # the engine (C core, pack, snapshot code): never lose the data it was given
        log.exception("evaluation failed for patient %s; it awaits a reassessment", patient_id)
        return None


def _await_reassessment(session: Session, patient: Patient, now: datetime) -> None:
    """The engine failed: keep what was stored and mark the patient as awaiting a reassessment (the
    next read, ingest or scheduler run completes it)."""
    if patient.reassessment_due_since is None:
        patient.reassessment_due_since = now
        session.add(patient)


def reassess_many(
    session: Session,
    patients: Sequence[Patient],
    config: PathwayConfig,
    now: datetime,
    previous: Mapping[int, tuple[str, str | None]],
) -> dict[int, AssessmentRecord | None]:
    """:func:`reassess_or_defer` of a batch of patients the caller has locked, with ``previous``
    the (tier, referral urgency) of each one's newest stored assessment: the histories read, the
    assessments stored, their events, referrals and tasks written together — a dozen statements for
    the batch instead of eight or more a patient (the population re-tier). What is stored is what
    :func:`reassess_or_defer` of each in turn would store; a patient the engine fails on awaits a
    reassessment (None)."""
    histories = histories_of(
        session,
        patients,
        evaluated_at=now,
        horizon=config.reading_horizon,
        prescriptions=config.medication is not None,
    )
    evaluated: list[tuple[Patient, Assessment]] = []
    outcome: dict[int, AssessmentRecord | None] = {}
    for patient in patients:
        assert patient.id is not None
        result = _assessed(config, histories[patient.id], now, patient.id)
        if result is None:
            outcome[patient.id] = None
            _await_reassessment(session, patient, now)
        else:
            evaluated.append((patient, result))
    values = [_assessment_values(patient, result, now) for patient, result in evaluated]
    ids = patient_store.insert_assessments(session, values)
    records = [AssessmentRecord(id=ids[row["patient_id"]], **row) for row in values]
    active = referral_flow.active_referrals(
        session, [r.patient_id for r in records if r.referral_urgency is not None]
    )
    outbox.assessments_stored(
        session,
        [
            row
            for (patient, _), record in zip(evaluated, records, strict=True)
            for row in outbox.assessment_events(record, previous.get(record.patient_id), patient.team_id)
        ],
    )
    synced: list[tuple[Patient, AssessmentRecord]] = []
    for (patient, _), record in zip(evaluated, records, strict=True):
        outcome[record.patient_id] = record
        if patient.status == PatientStatus.ACTIVE.value:
            synced.append((patient, _referred(session, record, now, config.referral_tasks, active)))
        if patient.reassessment_due_since is not None:
            patient.reassessment_due_since = None
            session.add(patient)
    sync.sync_from_assessments(session, synced, now)
    return outcome


def _referred(
    session: Session,
    record: AssessmentRecord,
    now: datetime,
    referral_tasks: frozenset[str],
    active: Mapping[int, Referral] | None = None,
) -> AssessmentRecord:
    """The referral an active patient's new assessment calls for, opened or upgraded — or kept
    quiet after a return (下转), the assessment then without its referral's tasks; the assessment
    its tasks follow. ``active``: the batch's active referrals, read together (else each is read)."""
    if record.referral_urgency is None:  # neither opens nor quiets anything: no statement
        return record
    if referral_flow.quiet_after_return(session, record, active):
        return referral_flow.without_referral_tasks(record, referral_tasks)
    referral_flow.refer_from_assessment(session, record, now, active)
    return record


def _assessment_values(patient: Patient, result: Assessment, now: datetime) -> dict[str, Any]:
    assert patient.id is not None
    return {
        "patient_id": patient.id,
        "as_of": now,
        "evaluated_at": now,
        "pack_id": result.pack.id,
        "pack_version": result.pack.version,
        "pack_sha256": result.pack.sha256,
        "tier": result.tier.value,
        "level": result.level.value,
        "referral_urgency": result.referral.urgency.value if result.referral else None,
        "follow_up_due": result.follow_up.due,
        "result": result.to_json(),
    }


def _store_assessment(
    session: Session, patient: Patient, result: Assessment, now: datetime, referral_tasks: frozenset[str]
) -> AssessmentRecord:
    assert patient.id is not None
    values = _assessment_values(patient, result, now)
    assessment_id, previous = patient_store.insert_assessment(session, values)
    record = AssessmentRecord(id=assessment_id, **values)
    outbox.assessment_stored(session, record, previous, patient.team_id)  # tier changed, red, crisis
    if patient.status == PatientStatus.ACTIVE.value:  # management ended: no new referrals or tasks
        # returned (下转) with nothing new since: quiet, the tasks without the referral's
        sync.sync_from_assessment(session, patient, _referred(session, record, now, referral_tasks), now)
    if patient.reassessment_due_since is not None:
        patient.reassessment_due_since = None
        session.add(patient)
    return record
