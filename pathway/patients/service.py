"""Use-cases: register patients, reassess. They never commit.

The caller (a request, a job, a command) owns the transaction, so "readings + new assessment" is
stored atomically: the tier on the patient summary is never behind an acknowledged reading.
The rule pack reaches the service through :class:`PathwayConfig`, built by the composition root.
What arrives (readings, visits, symptoms, checks) is recorded by :mod:`pathway.ingest.recording`.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from pydantic import TypeAdapter
from sqlmodel import Session

from pathway.access import permissions
from pathway.clinical.assessment import Assessment, PackRef
from pathway.clinical.clock import CLINIC_TZ, Clock, clinic_date
from pathway.clinical.conditions import FactValue
from pathway.clinical.errors import DatabaseBusy, InvalidInput, PathwayError
from pathway.clinical.history import (
    CheckDone,
    ComplicationRecord,
    Encounter,
    Measurement,
    PatientHistory,
    PatientProfile,
    SymptomReport,
    check_patient,
)
from pathway.clinical.horizon import ReadingHorizon
from pathway.clinical.parameters import IndicatorDefinitions, Plausibility, Targets, Units
from pathway.clinical.vocabulary import (
    CareCheck,
    Complication,
    Condition,
    PatientStatus,
    ReadingKind,
    ReadingSource,
    Sex,
    Symptom,
)
from pathway.ingest.inbound import InvalidReading, PatientIn, ReadingIn
from pathway.patients import history_reads, history_store, repository
from pathway.referrals import referral_flow
from pathway.store.tables import AssessmentRecord, Patient, PatientComplication
from pathway.tasks import sync

log = logging.getLogger("pathway.service")


class UnknownPatient(PathwayError):
    code = "unknown-patient"
    status = 404


class EvaluationUnavailable(PathwayError):
    code = "evaluation-unavailable"
    status = 503

    def __init__(self, detail: str) -> None:
        super().__init__(detail, None, {"Retry-After": "5"})


class IdempotencyKeyReused(PathwayError):
    code = "idempotency-key-reused"
    status = 409


_READINGS = TypeAdapter(list[ReadingIn])


def request_fingerprint(payload: Any) -> str:
    """sha256 of a request body in canonical JSON (key order and spacing do not matter).

    Lone surrogates (``\\ud800`` in the JSON, left in an item that is rejected) are hashed too.
    """
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return hashlib.sha256(text.encode(errors="surrogatepass")).hexdigest()


def readings_fingerprint(items: Sequence[ReadingIn | InvalidReading]) -> str:
    """sha256 of a readings batch: the readings as validated (fields in the model's order, so key
    order and spacing do not matter; serialised in one call to pydantic's core), then each invalid
    item as sent, with its place, in canonical JSON."""
    valid = [item for item in items if not isinstance(item, InvalidReading)]
    invalid = [(index, item.raw) for index, item in enumerate(items) if isinstance(item, InvalidReading)]
    digest = hashlib.sha256(_READINGS.dump_json(valid))
    if invalid:
        digest.update(request_fingerprint(invalid).encode())
    return digest.hexdigest()


def replayed_answer(
    session: Session, api_key_id: int, scope: str, key: str, fingerprint: str
) -> repository.StoredAnswer | None:
    """The stored answer to an earlier request of this API key with this key, or None; a different
    body is a 409. Another API key's use of the same key is not seen."""
    prior = repository.idempotent_answer(session, api_key_id, scope, key)
    if prior is not None and prior.request_sha256 != fingerprint:
        raise IdempotencyKeyReused(
            "this Idempotency-Key was used for a different request body", "Idempotency-Key"
        )
    return prior


def remember_answer(
    session: Session,
    api_key_id: int,
    scope: str,
    key: str,
    fingerprint: str,
    status_code: int,
    body: dict[str, Any],
    now: datetime,
) -> None:
    repository.insert_idempotent_answer(
        session,
        {
            "api_key_id": api_key_id,
            "scope": scope,
            "key": key,
            "request_sha256": fingerprint,
            "status_code": status_code,
            "response": body,
            "created_at": now,
        },
    )


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
    # return (pathway.referrals.quiet_after_return).
    referral_tasks: frozenset[str] = frozenset()


def upsert_patient(
    session: Session, data: PatientIn, now: datetime, tz: ZoneInfo = CLINIC_TZ
) -> tuple[Patient, bool]:
    """Create or update the patient of (source_system, external_id); whether it was created.

    ``enrolled_on`` (建档日期) is kept as sent (not after today in the team's time zone, else
    ``tz``; not before birth); a new patient sent without one is enrolled today, an update
    without one keeps it.
    """
    patient = repository.patient_by_external_id(session, data.source_system, data.external_id)
    created = patient is None
    team = permissions.team_by_code(session, data.team_code) if data.team_code else None
    today = now.astimezone(ZoneInfo(team.timezone) if team is not None else tz).date()
    check_patient(data.sex, data.birth_date, data.pregnant, today)
    if data.enrolled_on is not None:
        if data.enrolled_on > today:
            raise InvalidInput(f"enrolled_on must not be after today ({today})", "enrolled_on")
        if data.enrolled_on < data.birth_date:
            raise InvalidInput("enrolled_on must not be before birth_date", "enrolled_on")
    if patient is None:
        patient = Patient(
            source_system=data.source_system,
            external_id=data.external_id,
            sex=data.sex.value,
            birth_date=data.birth_date,
            created_at=now,
            updated_at=now,
            enrolled_on=today,
        )
    if data.enrolled_on is not None:
        patient.enrolled_on = data.enrolled_on
    patient.name = data.name
    patient.phone = data.phone
    patient.team_id = team.id if team is not None else None
    patient.sex = data.sex.value
    patient.birth_date = data.birth_date
    patient.conditions = sorted(c.value for c in data.conditions)
    patient.smoker = data.smoker
    patient.pregnant = data.pregnant
    patient.updated_at = now
    repository.add(session, patient)
    assert patient.id is not None
    complications = [
        PatientComplication(patient_id=patient.id, code=c.code.value, onset=c.onset)
        for c in data.complications
    ]
    repository.replace_complications(session, patient.id, complications)
    return patient, created


def require_patient(session: Session, patient_id: int, *, for_update: bool = False) -> Patient:
    patient = repository.patient_by_id(session, patient_id, for_update=for_update)
    if patient is None:
        raise UnknownPatient(f"no patient with id {patient_id}", "patient_id")
    return patient


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
    (:func:`pathway.patients.history_reads.replay_rows`)."""
    assert patient.id is not None
    if clinic_date(as_of, config.tz) < patient.birth_date:
        raise InvalidInput(f"as_of is before the patient's birth date {patient.birth_date}", "as_of")
    rows = history_reads.replay_rows(session, patient.id, as_of, config.reading_horizon)
    history = history_from_rows(
        patient, rows.complications, rows.readings, rows.encounters, rows.symptoms, rows.checks
    )
    return config.assess(history, as_of)


def _decimal(value: float | None) -> Decimal | None:
    return _exact(value) if value is not None else None


@functools.lru_cache(maxsize=4096)
def _exact(value: float) -> Decimal:
    """The stored float as the decimal it was written from (readings repeat: 132/84 comes back often)."""
    return Decimal(repr(value))


# Enum lookups by value, without EnumType.__call__ (a reassessment makes two per stored reading).
_READING_KINDS = {kind.value: kind for kind in ReadingKind}
_READING_SOURCES = {source.value: source for source in ReadingSource}


def history_of(
    session: Session,
    patient: Patient,
    *,
    evaluated_at: datetime | None = None,
    horizon: ReadingHorizon | None = None,
) -> PatientHistory:
    """The patient's stored history as the snapshot builder sees it (one cached SELECT of rows).
    With ``evaluated_at`` and ``horizon``, only what an evaluation at that moment reads of it:
    :func:`pathway.clinical.horizon.recent` (a wearable's stream is not read back to its first day)."""
    assert patient.id is not None
    recent = None
    if evaluated_at is not None and horizon is not None:
        recent = history_store.RecentReadings(
            since=evaluated_at - horizon.every,
            peaks_since=evaluated_at - horizon.peaks,
            until=evaluated_at,
            peak_kinds=sorted(kind.value for kind in horizon.peak_kinds),
        )
    rows = history_store.history_rows(session, patient.id, recent)
    return history_from_rows(
        patient, rows.complications, rows.readings, rows.encounters, rows.symptoms, rows.checks
    )


def history_from_rows(
    patient: Patient,
    complications: Iterable[tuple[str, date]],
    readings: Iterable[history_store.ReadingRow],
    encounters: Iterable[tuple[int, datetime]],
    symptoms: Sequence[tuple[int | None, str, datetime]],
    checks: Iterable[tuple[str, datetime]] = (),
) -> PatientHistory:
    """A patient's history from the rows of :mod:`pathway.patients.history_store` (one patient's, or a bulk
    load's share for that patient). Readings carry their canonical values, which is all the rules
    read; the numbers and unit as received stay in the store."""
    profile = PatientProfile(
        sex=Sex(patient.sex),
        birth_date=patient.birth_date,
        conditions=frozenset(Condition(c) for c in patient.conditions),
        complications=tuple(ComplicationRecord(Complication(code), onset) for code, onset in complications),
        smoker=patient.smoker,
        pregnant=patient.pregnant,
    )
    by_encounter: dict[int, list[Measurement]] = {}
    loose: list[Measurement] = []
    for row in readings:
        encounter_id, kind, source, at, value, systolic, diastolic, pulse = row
        measurement = Measurement(
            kind=_READING_KINDS[kind],
            source=_READING_SOURCES[source],
            at=at,
            value=_decimal(value),
            systolic=_decimal(systolic),
            diastolic=_decimal(diastolic),
            pulse=_decimal(pulse),
        )
        if encounter_id is None:
            loose.append(measurement)
        else:
            by_encounter.setdefault(encounter_id, []).append(measurement)
    return PatientHistory(
        profile=profile,
        encounters=tuple(
            Encounter(
                at=at,
                readings=tuple(by_encounter.get(encounter_id, ())),
                symptoms=tuple(Symptom(code) for of, code, _ in symptoms if of == encounter_id),
            )
            # One total order for every read, whatever order its query returned: instant, then id
            # (two visits at one instant: the later-recorded is the most recent, stored or replayed).
            for encounter_id, at in sorted(encounters, key=_instant_then_id)
        ),
        readings=tuple(loose),
        symptoms=tuple(SymptomReport(Symptom(code), at) for of, code, at in symptoms if of is None),
        checks=tuple(CheckDone(CareCheck(kind), at) for kind, at in checks),
    )


def _instant_then_id(encounter: tuple[int, datetime]) -> tuple[datetime, int]:
    return encounter[1], encounter[0]


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
    record = repository.latest_assessment(session, patient.id)
    if record is not None and is_current(record, config, clock.now(), patient):
        return record
    locked = repository.lock_patient_if_free(session, patient.id)
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
        if patient.reassessment_due_since is None:
            patient.reassessment_due_since = now
            session.add(patient)
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
        record = repository.latest_assessment(session, patient.id)
        if record is not None and is_current(record, config, now, patient):
            return record
    return reassess_or_defer(session, patient, config, now)


def _evaluate(session: Session, patient: Patient, config: PathwayConfig, now: datetime) -> Assessment | None:
    """The assessment, or None if the rule engine failed (logged). Database errors propagate.

    Only the recent part of a long self-measured stream is read: the same snapshot (horizon.py)."""
    history = history_of(session, patient, evaluated_at=now, horizon=config.reading_horizon)
    try:
        return config.assess(history, now)
    except Exception:  # the engine (C core, pack, snapshot code): never lose the data it was given
        log.exception("evaluation failed for patient %s; it awaits a reassessment", patient.id)
        return None


def _store_assessment(
    session: Session, patient: Patient, result: Assessment, now: datetime, referral_tasks: frozenset[str]
) -> AssessmentRecord:
    assert patient.id is not None
    values: dict[str, Any] = {
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
    record = AssessmentRecord(id=repository.insert_assessment(session, values), **values)
    if patient.status == PatientStatus.ACTIVE.value:  # management ended: no new referrals or tasks
        if referral_flow.quiet_after_return(session, record):  # returned (下转), nothing new since
            sync.sync_from_assessment(
                session, patient, referral_flow.without_referral_tasks(record, referral_tasks), now
            )
        else:
            referral_flow.refer_from_assessment(session, record, now)
            sync.sync_from_assessment(session, patient, record, now)
    if patient.reassessment_due_since is not None:
        patient.reassessment_due_since = None
        session.add(patient)
    return record
