"""Patients and their assessments: thin routes over pathway.patients (registration, reassessment).

What arrives for a patient (readings, visits, symptoms, checks) has its routes in :mod:`api.recording`.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Response, status
from pydantic import ConfigDict, Field

from api.deps import ClockDep, CurrentKey, PathwayDep, PatientId, SessionDep, patient_for
from api.errors import error_responses
from api.referrals import ReferralRead
from api.schemas import (
    AssessmentRead,
    ContactFlagRead,
    PatientListItem,
    PatientListRead,
    PatientRead,
    PatientSummary,
)
from pathway.access import permissions
from pathway.access.permissions import Forbidden, Role
from pathway.clinical.errors import InvalidInput
from pathway.ingest.inbound import MAX_ROW_ID, Inbound, Instant, PatientIn, Text
from pathway.patients import patient_store, reassessment, registration
from pathway.referrals import referral_flow, referral_store
from pathway.tasks import flag_store
from pathway.teams import patient_search, teams

router = APIRouter(prefix="/v1/patients", tags=["patients"])


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
    patient, created = registration.upsert_patient(session, data, now, pathway.tz)
    permissions.audit(session, key, "patient.upsert", patient.id, now)
    reassessment.reassess_or_defer(session, patient, pathway, now)
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
    record = patient_store.latest_assessment(session, patient_id)
    referral = referral_store.active_referral(session, patient_id, referral_flow.ACTIVE)
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
    history = [AssessmentRead.of(r) for r in patient_store.assessments_of(session, patient_id)]
    session.commit()
    return history


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
    record = reassessment.current_assessment(session, patient, pathway, clock)
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
    result = reassessment.preview(session, patient, pathway, as_of).to_json()
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
