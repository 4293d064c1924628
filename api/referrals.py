"""The referral loop: opened by rules or by hand, then accepted, completed and returned (下转)."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Path, status
from pydantic import BaseModel, ConfigDict, Field

from api.deps import ClockDep, CurrentKey, PathwayDep, PatientId, SessionDep, patient_for
from api.errors import error_responses
from pathway.access import permissions
from pathway.access.permissions import Role
from pathway.clinical.tiers import ReferralUrgency
from pathway.ingest.inbound import MAX_ROW_ID, Inbound, Text
from pathway.referrals import referral_flow, referral_store
from pathway.store.tables import Referral

router = APIRouter(tags=["referrals"])
ReferralId = Annotated[int, Path(ge=1, le=MAX_ROW_ID)]


class ReferralRead(BaseModel):
    id: int
    patient_id: int
    urgency: str
    status: str = Field(
        description="open | accepted | completed | returned (下转) | closed (the patient died or moved away)"
    )
    rule_id: str | None
    pack_version: str | None
    reason: str | None
    receiving_institution: str | None
    outcome: str | None
    return_note: str | None
    return_follow_up_due: date | None
    created_at: datetime
    accepted_at: datetime | None
    completed_at: datetime | None
    returned_at: datetime | None

    @classmethod
    def of(cls, referral: Referral) -> ReferralRead:
        return cls.model_validate(referral, from_attributes=True)


class ReferralIn(Inbound):
    model_config = ConfigDict(extra="forbid")
    urgency: ReferralUrgency
    reason: Text = Field(min_length=1, max_length=500)


class Acceptance(Inbound):
    model_config = ConfigDict(extra="forbid")
    receiving_institution: Text = Field(min_length=1, max_length=200)


class Completion(Inbound):
    model_config = ConfigDict(extra="forbid")
    outcome: Text = Field(min_length=1, max_length=4000, description="the receiving institution's findings")


class Return(Inbound):
    """下转: back to the GP team, with the follow-up it should do."""

    model_config = ConfigDict(extra="forbid")
    follow_up_in_days: int = Field(ge=1, le=365)
    note: Text = Field(default="", max_length=4000)


@router.get(
    "/v1/patients/{patient_id}/referrals",
    response_model=list[ReferralRead],
    responses=error_responses(401, 403, 404, 429, 503),
    operation_id="referrals-list",
)
def list_referrals(
    patient_id: PatientId, session: SessionDep, clock: ClockDep, key: CurrentKey
) -> list[ReferralRead]:
    """Every referral of the patient, newest first."""
    patient_for(session, key, patient_id, "referral_flow.read", clock.now(), Role.EHR, Role.TEAM)
    found = [ReferralRead.of(r) for r in referral_store.referrals_of(session, patient_id)]
    session.commit()
    return found


@router.post(
    "/v1/patients/{patient_id}/referrals",
    response_model=ReferralRead,
    status_code=status.HTTP_201_CREATED,
    responses=error_responses(401, 403, 404, 409, 413, 422, 429, 503),
    operation_id="referrals-create",
)
def refer_by_hand(
    patient_id: PatientId, data: ReferralIn, session: SessionDep, clock: ClockDep, key: CurrentKey
) -> ReferralRead:
    """A referral the GP decides on, outside the rules (409 ``patient-not-managed`` once the
    patient died or moved away)."""
    now = clock.now()
    patient = patient_for(session, key, patient_id, "referral.create", now, Role.EHR, Role.TEAM, write=True)
    referral = referral_flow.refer_by_hand(session, patient, data.urgency, data.reason, now)
    session.commit()
    return ReferralRead.of(referral)


@router.post(
    "/v1/referrals/{referral_id}/accept",
    response_model=ReferralRead,
    responses=error_responses(401, 403, 404, 409, 413, 422, 429, 503),
    operation_id="referrals-accept",
)
def accept(
    referral_id: ReferralId, data: Acceptance, session: SessionDep, clock: ClockDep, key: CurrentKey
) -> ReferralRead:
    """The receiving institution takes the patient."""
    return _move(
        session, key, referral_id, "accept", clock.now(), receiving_institution=data.receiving_institution
    )


@router.post(
    "/v1/referrals/{referral_id}/complete",
    response_model=ReferralRead,
    responses=error_responses(401, 403, 404, 409, 413, 422, 429, 503),
    operation_id="referrals-complete",
)
def complete(
    referral_id: ReferralId, data: Completion, session: SessionDep, clock: ClockDep, key: CurrentKey
) -> ReferralRead:
    """The receiving institution records its outcome."""
    return _move(session, key, referral_id, "complete", clock.now(), outcome=data.outcome)


@router.post(
    "/v1/referrals/{referral_id}/return",
    response_model=ReferralRead,
    responses=error_responses(401, 403, 404, 409, 413, 422, 429, 503),
    operation_id="referrals-return",
)
def return_to_team(
    referral_id: ReferralId,
    data: Return,
    session: SessionDep,
    clock: ClockDep,
    pathway: PathwayDep,
    key: CurrentKey,
) -> ReferralRead:
    """下转: the patient goes back to the GP team, with a follow-up due in the given days."""
    now = clock.now()
    due = now.astimezone(pathway.tz).date() + timedelta(days=data.follow_up_in_days)
    return _move(session, key, referral_id, "return", now, return_note=data.note, return_follow_up_due=due)


def _move(
    session: SessionDep, key: CurrentKey, referral_id: int, step: str, now: datetime, **fields: Any
) -> ReferralRead:
    """One step of the loop, if this key may act on the referral's patient; committed before answering."""
    referral = referral_store.referral_by_id(session, referral_id)
    if referral is None:
        raise referral_flow.UnknownReferral(f"no referral with id {referral_id}", "referral_id")
    try:
        patient_for(
            session, key, referral.patient_id, "referral.update", now, Role.EHR, Role.TEAM, write=True
        )
    except permissions.NotYours:
        raise referral_flow.UnknownReferral(f"no referral with id {referral_id}", "referral_id") from None
    moved = referral_flow.advance(session, referral_id, step, now, **fields)
    session.commit()
    return ReferralRead.of(moved)
