"""What arrives for a patient: readings (and their retraction), clinic visits, symptoms and
checks, each recorded and the patient re-tiered in one transaction: thin routes over
pathway.ingest.recording and pathway.patients.reassessment.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Body, Header, Path, Query, Response, status
from fastapi.responses import JSONResponse
from sqlmodel import Session

from api.batches import answered_once
from api.deps import ClockDep, CurrentKey, KeyCacheDep, PathwayDep, PatientId, SessionDep, patient_for
from api.errors import error_responses
from api.schemas import (
    AssessmentRead,
    BatchResult,
    EncounterResult,
    PendingAssessment,
    RetractionResult,
)
from pathway.access import permissions
from pathway.access.permissions import Role
from pathway.clinical.clock import Clock
from pathway.ingest import idempotency, recording
from pathway.ingest.inbound import (
    MAX_BATCH,
    BatchReading,
    CheckIn,
    EncounterIn,
    ItemResult,
    SymptomIn,
    Text,
)
from pathway.patients import reassessment
from pathway.patients.reassessment import PathwayConfig
from pathway.store.tables import AssessmentRecord, Patient

router = APIRouter(prefix="/v1/patients", tags=["patients"])
# Stored with each reading, visit and check (the same bound as a patient's source_system).
SourceSystem = Annotated[Text, Query(max_length=64, description="the system the data comes from")]
# Readings and visits: the key's registered system unless an ehr or admin key names another.
PostingSystem = Annotated[
    Text | None,
    Query(
        max_length=64,
        description="the system the data comes from; by default the key's registered one (a gateway"
        " key may name no other: 403)",
    ),
]


@router.post(
    "/{patient_id}/readings",
    response_model=BatchResult,
    status_code=status.HTTP_201_CREATED,
    responses=error_responses(401, 403, 404, 409, 413, 422, 429, 503),
    operation_id="readings-batch",
)
def post_readings(
    patient_id: PatientId,
    readings: Annotated[list[BatchReading], Body(min_length=1, max_length=MAX_BATCH)],
    session: SessionDep,
    clock: ClockDep,
    pathway: PathwayDep,
    key: CurrentKey,
    cache: KeyCacheDep,
    source_system: PostingSystem = None,
    idempotency_key: Annotated[Text | None, Header(alias="Idempotency-Key", max_length=200)] = None,
) -> BatchResult | JSONResponse:
    """Store a batch of readings (each at most once) and re-tier the patient in the same transaction.

    Each item is answered on its own (``created``, ``duplicate``, ``amended`` or ``rejected`` with an
    error naming ``readings.<index>.<field>``): an item that is not a valid reading (a wrong type, a
    missing or extra field, an element that is not a JSON object) is rejected as ``invalid-input``,
    one with an unknown ``kind`` or ``source`` as ``unknown-code`` (naming the accepted values), one
    with a source the key's role may not post (a gateway: only ``home``, ``wearable``, ``cgm``) as
    ``source-not-allowed``, and the others are stored. The whole request is refused only when the
    body is not a JSON array or is empty (422), or holds more items than a batch may (413).

    Readings are stored under the key's registered source system, and a reading is identified by
    (patient, that system, ``source_reading_id``): the same id with the same content is a
    ``duplicate``; with other values (or time, device, source) it is a new version, ``amended``,
    that supersedes the stored one (kept, seen by no history read). Without a source id, a reading
    of the same kind, instant, device and value is a duplicate; another value is another reading.

    With an ``Idempotency-Key``, a replay of the same body returns the first answer unchanged
    (header ``Idempotent-Replayed: true``); the same key with another body is a 409.
    """
    now = clock.now()
    patient = patient_for(
        session, key, patient_id, "readings.post", now, Role.EHR, Role.GATEWAY, cache=cache, write=True
    )
    now = clock.now()  # after the patient's lock: this reassessment sees every committed reading
    system = permissions.posting_system(key, source_system)
    scope = f"readings:{patient_id}:{system}"

    def answer() -> BatchResult:
        items = recording.record_readings(
            session, patient, readings, source_system=system, config=pathway, now=now, caller=key
        )
        permissions.audit_new_versions(session, key, (item.status for item in items), patient_id, now)
        stored_any = any(item.status in ("created", "amended") for item in items)
        record = reassessment.reassess_after_ingest(session, patient, pathway, now, stored_any=stored_any)
        return BatchResult(
            created=_count(items, "created"),
            duplicate=_count(items, "duplicate"),
            rejected=_count(items, "rejected"),
            amended=_count(items, "amended"),
            items=items,
            assessment=AssessmentRead.of(record) if record else None,
            assessment_pending=record is None,
        )

    return answered_once(
        session,
        key,
        scope,
        idempotency_key,
        fingerprint=lambda: idempotency.readings_fingerprint(readings),
        answer=answer,
        now=now,
    )


@router.delete(
    "/{patient_id}/readings/{reading_id}",
    response_model=RetractionResult,
    responses=error_responses(401, 403, 404, 409, 429, 503),
    operation_id="readings-retract",
)
def retract_reading(
    patient_id: PatientId,
    reading_id: Annotated[int, Path(ge=1, le=2_147_483_647, description="the reading's id")],
    session: SessionDep,
    clock: ClockDep,
    pathway: PathwayDep,
    key: CurrentKey,
    cache: KeyCacheDep,
) -> RetractionResult:
    """Retract a reading entered in error and re-tier the patient without it, in one transaction.

    The reading is kept (``retracted_at``) and no history read sees it again; a retry of it is a
    duplicate and leaves it retracted. Retracting it again answers the first retraction. A gateway
    retracts only readings of its own source system (403); a superseded version is 409 (retract the
    current one); a reading of another patient's, or none, is 404.
    """
    now = clock.now()
    patient = patient_for(
        session, key, patient_id, "readings.retract", now, Role.EHR, Role.GATEWAY, cache=cache, write=True
    )
    now = clock.now()
    reading, retracted = recording.retract_reading(session, patient, reading_id, caller=key, now=now)
    if retracted:
        permissions.audit_new_versions(session, key, ["retracted"], patient_id, now)
    record = reassessment.reassess_after_ingest(session, patient, pathway, now, stored_any=retracted)
    session.commit()
    assert reading.retracted_at is not None
    return RetractionResult(
        reading_id=reading_id,
        retracted_at=reading.retracted_at,
        assessment=AssessmentRead.of(record) if record else None,
        assessment_pending=record is None,
    )


def _assessed(record: AssessmentRecord | None, patient_id: int) -> AssessmentRead | JSONResponse:
    """The new assessment, or 202 when the engine failed and the patient awaits a reassessment."""
    if record is None:
        pending = PendingAssessment(patient_id=patient_id).model_dump()
        return JSONResponse(pending, status_code=status.HTTP_202_ACCEPTED)
    return AssessmentRead.of(record)


# Symptoms and checks: 201 with the new assessment, or 202 when the engine failed (stored; pending).
_STORED_OR_PENDING: dict[int | str, dict[str, object]] = {
    202: {"model": PendingAssessment, "description": "stored; the evaluation is pending"},
    **error_responses(401, 403, 404, 413, 422, 429, 503),
}


def _recorded_then_reassessed(
    session: Session,
    patient: Patient,
    pathway: PathwayConfig,
    clock: Clock,
    record: Callable[[datetime], object],
) -> AssessmentRead | JSONResponse:
    """Record (at a clock read after the patient's lock, so the reassessment sees every committed
    reading), reassess, commit; the new assessment, or 202 if it is pending."""
    now = clock.now()
    record(now)
    reassessed = reassessment.reassess_or_defer(session, patient, pathway, now)
    session.commit()
    assert patient.id is not None
    return _assessed(reassessed, patient.id)


def _count(items: list[ItemResult], status_name: str) -> int:
    return sum(1 for item in items if item.status == status_name)


@router.post(
    "/{patient_id}/encounters",
    response_model=EncounterResult,
    status_code=status.HTTP_201_CREATED,
    responses=error_responses(401, 403, 404, 413, 422, 429, 503),
    operation_id="encounters-create",
)
def post_encounter(
    patient_id: PatientId,
    data: EncounterIn,
    session: SessionDep,
    clock: ClockDep,
    pathway: PathwayDep,
    response: Response,
    key: CurrentKey,
    source_system: PostingSystem = None,
) -> EncounterResult:
    """Store a clinic visit with its readings and symptoms, then re-tier the patient.

    Once per (source system, ``source_encounter_id``): the same visit sent again is answered 200
    with ``created: false``; sent again with other content (time, readings, symptoms, checks) it
    replaces the stored one (200, ``amended: true``): the old readings are superseded (kept, seen
    by no history read), and the patient is re-tiered on the new ones.
    """
    now = clock.now()
    patient = patient_for(session, key, patient_id, "encounter.post", now, Role.EHR, write=True)
    now = clock.now()
    encounter_id, outcome = recording.record_encounter(
        session,
        patient,
        data,
        source_system=permissions.posting_system(key, source_system),
        config=pathway,
        now=now,
    )
    if outcome == "amended":
        permissions.audit(session, key, "encounter.amend", patient_id, now)
    stored = outcome != "duplicate"
    record = reassessment.reassess_after_ingest(session, patient, pathway, now, stored_any=stored)
    session.commit()
    if outcome != "created":
        response.status_code = status.HTTP_200_OK
    return EncounterResult(
        encounter_id=encounter_id,
        created=outcome == "created",
        amended=outcome == "amended",
        assessment=AssessmentRead.of(record) if record else None,
        assessment_pending=record is None,
    )


@router.post(
    "/{patient_id}/symptoms",
    response_model=AssessmentRead,
    status_code=status.HTTP_201_CREATED,
    responses=_STORED_OR_PENDING,
    operation_id="symptoms-report",
)
def post_symptoms(
    patient_id: PatientId,
    symptoms: Annotated[list[SymptomIn], Body(min_length=1, max_length=100)],
    session: SessionDep,
    clock: ClockDep,
    pathway: PathwayDep,
    key: CurrentKey,
    cache: KeyCacheDep,
) -> AssessmentRead | JSONResponse:
    """Record symptoms reported outside a visit (each once), then re-tier the patient."""
    now = clock.now()
    patient = patient_for(
        session, key, patient_id, "symptoms.post", now, Role.EHR, Role.GATEWAY, cache=cache, write=True
    )

    def record(now: datetime) -> None:
        recording.record_symptoms(session, patient, symptoms, config=pathway, now=now)

    return _recorded_then_reassessed(session, patient, pathway, clock, record)


@router.post(
    "/{patient_id}/checks",
    response_model=AssessmentRead,
    status_code=status.HTTP_201_CREATED,
    responses=_STORED_OR_PENDING,
    operation_id="checks-record",
)
def post_checks(
    patient_id: PatientId,
    checks: Annotated[list[CheckIn], Body(min_length=1, max_length=20)],
    session: SessionDep,
    clock: ClockDep,
    pathway: PathwayDep,
    key: CurrentKey,
    source_system: SourceSystem = "ehr",
) -> AssessmentRead | JSONResponse:
    """Record examinations as done (annual check, fundus, foot exam, ECG…), each once; re-tier.

    A recorded check is the evidence that closes its screening task and starts the next interval.
    """
    now = clock.now()
    patient = patient_for(session, key, patient_id, "checks.post", now, Role.EHR, Role.TEAM, write=True)

    def record(now: datetime) -> None:
        recording.record_checks(
            session, patient, checks, source_system=source_system, config=pathway, now=now
        )

    return _recorded_then_reassessed(session, patient, pathway, clock, record)
