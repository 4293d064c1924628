"""Prescriptions (PATHWAY.md §7): a batch from the EHR, a stop, a patient's list; each write and the
reassessment after it in one transaction. Thin routes over pathway.ingest.prescribing."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Body, Header, Path, Query, Response, status
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from api.batches import answered_once
from api.deps import ClockDep, CurrentKey, KeyCacheDep, PathwayDep, PatientId, SessionDep, patient_for
from api.errors import error_responses
from api.recording import PostingSystem
from api.schemas import AssessmentRead
from pathway.access import permissions
from pathway.access.permissions import Role
from pathway.ingest import idempotency, prescribing
from pathway.ingest.inbound import Text
from pathway.ingest.medication_in import (
    MAX_PRESCRIPTIONS,
    BatchPrescription,
    PrescriptionItemResult,
    StopIn,
)
from pathway.patients import reassessment
from pathway.store.tables import PrescriptionRecord

router = APIRouter(prefix="/v1/patients", tags=["prescriptions"])


class PrescriptionRead(BaseModel):
    """The current version of a prescription (``id`` changes with each new version)."""

    id: int
    source_system: str
    source_prescription_id: str
    classes: list[str]
    atc_code: str | None
    drug: str
    dose: str | None
    started_on: date
    supply_days: int
    supply_end: date = Field(description="started_on + supply_days")
    stopped_on: date | None
    traceability_codes: list[str]
    recorded_at: datetime = Field(description="when this version was stored")

    @classmethod
    def of(cls, row: PrescriptionRecord) -> PrescriptionRead:
        return cls.model_validate(
            {**row.model_dump(), "supply_end": row.started_on + timedelta(days=row.supply_days)}
        )


class PrescriptionBatchResult(BaseModel):
    """Per-item outcome: created, duplicate, updated (a new version: changed or stopped) or rejected."""

    created: int
    duplicate: int
    updated: int
    rejected: int
    items: list[PrescriptionItemResult]
    assessment: AssessmentRead | None
    assessment_pending: bool = False


class StopResult(BaseModel):
    prescription: PrescriptionRead
    stopped: bool = Field(description="false when the prescription already said this stopped_on")
    supersedes: int | None = None
    assessment: AssessmentRead | None
    assessment_pending: bool = False


class PrescriptionList(BaseModel):
    prescriptions: list[PrescriptionRead]


@router.post(
    "/{patient_id}/prescriptions",
    response_model=PrescriptionBatchResult,
    status_code=status.HTTP_201_CREATED,
    responses=error_responses(401, 403, 404, 409, 413, 422, 429, 503),
    operation_id="prescriptions-batch",
)
def post_prescriptions(
    patient_id: PatientId,
    prescriptions: Annotated[list[BatchPrescription], Body(min_length=1, max_length=MAX_PRESCRIPTIONS)],
    session: SessionDep,
    clock: ClockDep,
    pathway: PathwayDep,
    key: CurrentKey,
    cache: KeyCacheDep,
    source_system: PostingSystem = None,
    idempotency_key: Annotated[Text | None, Header(alias="Idempotency-Key", max_length=200)] = None,
) -> PrescriptionBatchResult | JSONResponse:
    """Store a batch of prescriptions (each once) and re-tier the patient in the same transaction.

    A prescription is identified by (patient, source system, ``source_prescription_id``); the
    source system is the key's registered one unless an ehr or admin key names another. Each item
    is answered on its own: ``created``; ``duplicate`` (the stored version says the same);
    ``updated`` (a new version: another drug, dose, supply, classes, or a ``stopped_on``; the old
    one is kept, and a replay of an earlier moment sees it); ``rejected`` with an error naming
    ``prescriptions.<index>.<field>`` (``unknown-code`` for an unknown class or ATC code,
    ``future-timestamp`` for a date after today, ``invalid-input`` otherwise), nothing of it stored.
    Under a pack without a medication table the request is refused (422 ``medication-not-in-pack``).
    ``Idempotency-Key`` as for readings: a replay returns the first answer; another body is a 409.
    """
    now = clock.now()
    patient = patient_for(
        session, key, patient_id, "prescriptions.post", now, Role.EHR, cache=cache, write=True
    )
    now = clock.now()
    prescribing.medication_table(pathway)
    system = permissions.posting_system(key, source_system)
    scope = f"prescriptions:{patient_id}:{system}"

    def answer() -> PrescriptionBatchResult:
        items = prescribing.record_prescriptions(
            session, patient, prescriptions, source_system=system, config=pathway, now=now
        )
        for item in items:
            if item.status == "updated":
                permissions.audit(session, key, "prescription.update", patient_id, now)
        stored_any = any(item.status in ("created", "updated") for item in items)
        record = reassessment.reassess_after_ingest(session, patient, pathway, now, stored_any=stored_any)
        return PrescriptionBatchResult(
            created=sum(i.status == "created" for i in items),
            duplicate=sum(i.status == "duplicate" for i in items),
            updated=sum(i.status == "updated" for i in items),
            rejected=sum(i.status == "rejected" for i in items),
            items=items,
            assessment=AssessmentRead.of(record) if record else None,
            assessment_pending=record is None,
        )

    return answered_once(
        session,
        key,
        scope,
        idempotency_key,
        fingerprint=lambda: idempotency.prescriptions_fingerprint(prescriptions),
        answer=answer,
        now=now,
    )


@router.post(
    "/{patient_id}/prescriptions/{prescription_id}/stop",
    response_model=StopResult,
    status_code=status.HTTP_201_CREATED,
    responses=error_responses(401, 403, 404, 409, 413, 422, 429, 503),
    operation_id="prescriptions-stop",
)
def stop_prescription(
    patient_id: PatientId,
    prescription_id: Annotated[int, Path(ge=1, le=2_147_483_647, description="the prescription's id")],
    data: StopIn,
    session: SessionDep,
    clock: ClockDep,
    pathway: PathwayDep,
    key: CurrentKey,
    response: Response,
) -> StopResult:
    """Record that a prescription was stopped (停药) on ``stopped_on``: a new version of it (201),
    or 200 with ``stopped: false`` when it already said so; re-tier the patient. A superseded
    version is 409 (stop the current one); another patient's prescription, or none, is 404."""
    now = clock.now()
    patient = patient_for(session, key, patient_id, "prescriptions.stop", now, Role.EHR, write=True)
    now = clock.now()
    old_id = prescription_id
    row, stopped = prescribing.stop_prescription(
        session, patient, prescription_id, data.stopped_on, config=pathway, now=now
    )
    if stopped:
        permissions.audit(session, key, "prescription.stop", patient_id, now)
    record = reassessment.reassess_after_ingest(session, patient, pathway, now, stored_any=stopped)
    session.commit()
    if not stopped:
        response.status_code = status.HTTP_200_OK
    return StopResult(
        prescription=PrescriptionRead.of(row),
        stopped=stopped,
        supersedes=old_id if stopped else None,
        assessment=AssessmentRead.of(record) if record else None,
        assessment_pending=record is None,
    )


@router.get(
    "/{patient_id}/prescriptions",
    response_model=PrescriptionList,
    responses=error_responses(401, 403, 404, 429, 503),
    operation_id="prescriptions-list",
)
def list_prescriptions(
    patient_id: PatientId,
    session: SessionDep,
    clock: ClockDep,
    pathway: PathwayDep,
    key: CurrentKey,
    everything: Annotated[
        bool, Query(alias="all", description="include stopped prescriptions and lapsed supplies")
    ] = False,
) -> PrescriptionList:
    """The patient's current prescriptions (not stopped, supply not lapsed more than 30 days), newest
    start first; ``?all=true`` adds the stopped and lapsed ones. Superseded versions are not listed."""
    now = clock.now()
    patient = patient_for(session, key, patient_id, "prescriptions.read", now, Role.EHR, Role.TEAM)
    rows = prescribing.current_prescriptions(session, patient, config=pathway, now=now, everything=everything)
    session.commit()
    return PrescriptionList(prescriptions=[PrescriptionRead.of(row) for row in rows])
