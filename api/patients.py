"""Patients and their assessments: thin routes over pathway.patients.service."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Body, Header, Path, Query, Response, status
from fastapi.responses import JSONResponse
from pydantic import ConfigDict, Field
from sqlmodel import Session

from api.deps import ClockDep, CurrentKey, KeyCacheDep, PathwayDep, PatientId, SessionDep, patient_for
from api.errors import error_responses
from api.referrals import ReferralRead
from api.schemas import (
    AssessmentRead,
    BatchResult,
    ContactFlagRead,
    EncounterResult,
    PatientListItem,
    PatientListRead,
    PatientRead,
    PatientSummary,
    PendingAssessment,
    RetractionResult,
)
from pathway.access import permissions
from pathway.access.permissions import Forbidden, Role
from pathway.clinical.clock import Clock
from pathway.clinical.errors import InvalidInput
from pathway.ingest import recording
from pathway.ingest.inbound import (
    MAX_BATCH,
    MAX_ROW_ID,
    BatchReading,
    CheckIn,
    EncounterIn,
    Inbound,
    Instant,
    ItemResult,
    PatientIn,
    SymptomIn,
    Text,
)
from pathway.patients import repository, service
from pathway.patients.service import PathwayConfig
from pathway.referrals import referral_flow
from pathway.store.tables import AssessmentRecord, Patient
from pathway.tasks import flag_store
from pathway.teams import patient_search, teams

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
    "",
    response_model=PatientRead,
    status_code=status.HTTP_201_CREATED,
    responses=error_responses(401, 403, 413, 422, 429, 503),
    operation_id="patients-upsert",
)
def upsert_patient(
    data: PatientIn,
    session: SessionDep,
    clock: ClockDep,
    pathway: PathwayDep,
    response: Response,
    key: CurrentKey,
) -> PatientRead:
    """Create or update a patient by (source_system, external_id), then reassess."""
    permissions.require_role(key, Role.EHR)
    now = clock.now()
    patient, created = service.upsert_patient(session, data, now, pathway.tz)
    permissions.audit(session, key, "patient.upsert", patient.id, now)
    service.reassess_or_defer(session, patient, pathway, now)
    session.commit()
    if not created:
        response.status_code = status.HTTP_200_OK
    return PatientRead.of(patient)


@router.get(
    "",
    response_model=PatientListRead,
    responses=error_responses(401, 403, 404, 422, 429, 503),
    operation_id="patients-search",
)
def search_patients(
    session: SessionDep,
    clock: ClockDep,
    key: CurrentKey,
    q: Annotated[
        Text | None,
        Query(max_length=200, description="part of the name or external id (any case), or of the phone"),
    ] = None,
    team: Annotated[
        int | None, Query(ge=1, le=2_147_483_647, description="only this team's patients (its id)")
    ] = None,
    page: Annotated[int, Query(ge=1, le=100_000)] = 1,
    per_page: Annotated[int, Query(ge=1, le=500)] = 50,
) -> PatientListRead:
    """Find patients by name, external id or phone; without ``q``, list them. Each with the tier of
    the newest assessment; an exact external id first, then in order of registration.

    A team key sees only its own team's patients (``team`` defaults to it; another team is a 404,
    as for a team that does not exist);
    ehr and admin keys see every patient, or one team's with ``team``.
    """
    permissions.require_role(key, Role.EHR, Role.TEAM)
    if key.role is Role.TEAM:
        if key.team_id is None:
            raise Forbidden("this team key has no team")
        if team is not None and team != key.team_id:
            raise teams.UnknownTeam(f"no team with id {team}", "team")  # as if it did not exist
        team = key.team_id
    if team is not None:
        teams.require_team(session, team)
    permissions.audit(session, key, "patients.search" + (f":team:{team}" if team else ""), None, clock.now())
    found = patient_search.find_patients(session, team, q, limit=per_page, offset=(page - 1) * per_page)
    session.commit()  # the audit row
    return PatientListRead(
        total=found.total,
        page=page,
        per_page=per_page,
        items=[PatientListItem.model_validate(item, from_attributes=True) for item in found.items],
    )


@router.get(
    "/{patient_id}",
    response_model=PatientSummary,
    responses=error_responses(401, 403, 404, 429, 503),
    operation_id="patients-read",
)
def read_patient(
    patient_id: PatientId, session: SessionDep, clock: ClockDep, key: CurrentKey
) -> PatientSummary:
    """The patient with the current tier, level, reasons and next follow-up, and any active contact
    flag (``missed_3m``, ``lost_to_follow_up``) with the last contact it saw."""
    patient = patient_for(session, key, patient_id, "patient.read", clock.now(), Role.EHR, Role.TEAM)
    record = repository.latest_assessment(session, patient_id)
    referral = repository.active_referral(session, patient_id, referral_flow.ACTIVE)
    flags = flag_store.shown_flags(session, patient_id)
    summary = PatientSummary(
        patient=PatientRead.of(patient),
        assessment=AssessmentRead.of(record) if record else None,
        active_referral=ReferralRead.of(referral) if referral else None,
        contact_flags=[ContactFlagRead.of(flag) for flag in flags],
        assessment_pending=patient.reassessment_due_since is not None,
    )
    session.commit()
    return summary


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
    fingerprint = service.readings_fingerprint(readings) if idempotency_key is not None else ""
    if idempotency_key is not None:
        prior = service.replayed_answer(session, key.id, scope, idempotency_key, fingerprint)
        if prior is not None:
            session.commit()  # the audit of this replay
            return JSONResponse(
                prior.response, status_code=prior.status_code, headers={"Idempotent-Replayed": "true"}
            )
    items = recording.record_readings(
        session, patient, readings, source_system=system, config=pathway, now=now, caller=key
    )
    permissions.audit_new_versions(session, key, (item.status for item in items), patient_id, now)
    stored_any = any(item.status in ("created", "amended") for item in items)
    record = service.reassess_after_ingest(session, patient, pathway, now, stored_any=stored_any)
    result = BatchResult(
        created=_count(items, "created"),
        duplicate=_count(items, "duplicate"),
        rejected=_count(items, "rejected"),
        amended=_count(items, "amended"),
        items=items,
        assessment=AssessmentRead.of(record) if record else None,
        assessment_pending=record is None,
    )
    if idempotency_key is not None:
        body = result.model_dump(mode="json")
        service.remember_answer(
            session, key.id, scope, idempotency_key, fingerprint, status.HTTP_201_CREATED, body, now
        )
    session.commit()
    return result


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
    record = service.reassess_after_ingest(session, patient, pathway, now, stored_any=retracted)
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
    reassessed = service.reassess_or_defer(session, patient, pathway, now)
    session.commit()
    assert patient.id is not None
    return _assessed(reassessed, patient.id)


def _count(items: list[ItemResult], status_name: str) -> int:
    return sum(1 for item in items if item.status == status_name)


@router.get(
    "/{patient_id}/assessments",
    response_model=list[AssessmentRead],
    responses=error_responses(401, 403, 404, 429, 503),
    operation_id="assessments-history",
)
def assessment_history(
    patient_id: PatientId, session: SessionDep, clock: ClockDep, key: CurrentKey
) -> list[AssessmentRead]:
    """Every assessment of the patient, newest first, with pack id, version and sha256."""
    patient_for(session, key, patient_id, "assessments.read", clock.now(), Role.EHR, Role.TEAM)
    history = [AssessmentRead.of(r) for r in repository.assessments_of(session, patient_id)]
    session.commit()
    return history


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
    record = service.reassess_after_ingest(session, patient, pathway, now, stored_any=stored)
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


@router.get(
    "/{patient_id}/assessment",
    response_model=AssessmentRead,
    responses=error_responses(401, 403, 404, 429, 503),
    operation_id="assessment-current",
)
def current_assessment(
    patient_id: PatientId, session: SessionDep, clock: ClockDep, pathway: PathwayDep, key: CurrentKey
) -> AssessmentRead:
    """The current assessment: the stored one if made today under the pack in force, else re-evaluated."""
    now = clock.now()
    patient = patient_for(session, key, patient_id, "assessment.read", now, Role.EHR, Role.TEAM)
    record = service.current_assessment(session, patient, pathway, clock)
    session.commit()
    return AssessmentRead.of(record)


@router.post(
    "/{patient_id}/assessment:preview",
    response_model=dict[str, Any],
    responses=error_responses(401, 403, 404, 422, 429, 503),
    operation_id="assessment-preview",
)
def preview_assessment(
    patient_id: PatientId,
    as_of: Instant,
    session: SessionDep,
    clock: ClockDep,
    pathway: PathwayDep,
    key: CurrentKey,
) -> dict[str, Any]:
    """Replay the stored history as of any past moment (nothing is stored; readings after it are ignored)."""
    if as_of > clock.now():
        raise InvalidInput("as_of must not be in the future", "as_of")
    patient = patient_for(session, key, patient_id, "assessment.preview", clock.now(), Role.EHR, Role.TEAM)
    result = service.preview(session, patient, pathway, as_of).to_json()
    session.commit()
    return result


class GatewayLinkIn(Inbound):
    model_config = ConfigDict(extra="forbid")
    api_key_id: int = Field(ge=1, le=MAX_ROW_ID)


@router.post(
    "/{patient_id}/gateways",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=error_responses(401, 403, 404, 413, 422, 429, 503),
    operation_id="gateways-link",
)
def link_gateway(
    patient_id: PatientId, data: GatewayLinkIn, session: SessionDep, clock: ClockDep, key: CurrentKey
) -> Response:
    """Let a gateway key post readings for this patient."""
    now = clock.now()
    patient = patient_for(session, key, patient_id, "gateway.link", now, Role.EHR)
    permissions.link_gateway(session, data.api_key_id, patient, now)
    session.commit()
    return Response(status_code=status.HTTP_204_NO_CONTENT)
