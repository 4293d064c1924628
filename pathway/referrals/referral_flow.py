"""The closed referral loop (双向转诊): open → accepted → completed → returned (下转).

A rule-driven referral is opened by the assessment that calls for it; while a referral is active
(open or accepted), a more urgent call upgrades an open one instead of opening a second. GP teams
and receiving institutions move it along; every other transition is refused with a 409. Once no
referral of the patient is open, its referral tasks are resolved (:func:`pathway.tasks.sync.referral_moved`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date, datetime
from typing import Any

from sqlmodel import Session

from pathway.clinical import fact_evidence
from pathway.clinical.errors import PathwayError
from pathway.clinical.tiers import ReferralUrgency
from pathway.clinical.vocabulary import PatientStatus
from pathway.events import outbox
from pathway.events.outbox import EventKind
from pathway.referrals import referral_store
from pathway.store import db
from pathway.store.tables import AssessmentRecord, Patient, Referral
from pathway.tasks import sync
from pathway.tasks.status import ACTIVE_REFERRAL

ACTIVE = ACTIVE_REFERRAL  # open or accepted; "closed": management ended (died, moved)
# The urgencies from most to least urgent (the order of the vocabulary, PATHWAY.md §4).
_URGENCY_ORDER = [
    u.value for u in (ReferralUrgency.EMERGENCY, ReferralUrgency.URGENT, ReferralUrgency.ROUTINE)
]
_NEXT = {
    "accept": ("open", "accepted"),
    "complete": ("accepted", "completed"),
    "return": ("completed", "returned"),
}


class UnknownReferral(PathwayError):
    code = "unknown-referral"
    status = 404


class InvalidTransition(PathwayError):
    code = "invalid-transition"
    status = 409


def active_referrals(session: Session, patient_ids: Sequence[int]) -> dict[int, Referral]:
    """The active referral of each of a batch of patients that has one, in one statement: what
    :func:`refer_from_assessment` and :func:`quiet_after_return` read of each, read together."""
    return referral_store.active_referrals(session, patient_ids, ACTIVE) if patient_ids else {}


def _active(session: Session, patient_id: int, known: Mapping[int, Referral] | None) -> Referral | None:
    if known is not None:
        return known.get(patient_id)
    return referral_store.active_referral(session, patient_id, ACTIVE)


def refer_from_assessment(
    session: Session,
    record: AssessmentRecord,
    now: datetime,
    active_known: Mapping[int, Referral] | None = None,
) -> Referral | None:
    """Open (or upgrade) the referral an assessment calls for; None when it calls for none.
    ``active_known``: the active referrals of a batch, read by :func:`active_referrals`."""
    urgency = record.referral_urgency
    if urgency is None:
        return None
    result_referral = record.result.get("referral") or {}
    rule_id = result_referral.get("rule_id")
    active = _active(session, record.patient_id, active_known)
    if active is not None:
        if active.status == "open" and _URGENCY_ORDER.index(urgency) < _URGENCY_ORDER.index(active.urgency):
            active.urgency = urgency
            active.rule_id = rule_id
            active.assessment_id = record.id
            active.pack_version = record.pack_version
            active.updated_at = now
            db.add(session, active)
        return active
    referral = Referral(
        patient_id=record.patient_id,
        assessment_id=record.id,
        urgency=urgency,
        rule_id=rule_id,
        pack_version=record.pack_version,
        created_at=now,
        updated_at=now,
    )
    db.add(session, referral)
    outbox.referral_moved(session, EventKind.REFERRAL_OPENED, referral, now)
    return referral


def quiet_after_return(
    session: Session, record: AssessmentRecord, active_known: Mapping[int, Referral] | None = None
) -> bool:
    """Whether the referral this assessment calls for is kept quiet by a return (下转).

    Once a referral from a rule is returned, the receiving institution has seen what that rule saw:
    the same rule refers again only when evidence its condition reads (a reading of a kind behind
    the facts it fired on) was measured after the return. While a referral is active the usual
    upgrade applies instead; another rule refers as usual.
    """
    referral = record.result.get("referral") or {}
    rule_id = referral.get("rule_id")
    if record.referral_urgency is None or rule_id is None:
        return False
    if _active(session, record.patient_id, active_known) is not None:
        return False
    returned = referral_store.latest_returned_referral(session, record.patient_id, rule_id)
    if returned is None or returned.returned_at is None:
        return False
    fired: dict[str, Any] = next(
        (r for r in record.result.get("reasons", []) if r.get("rule_id") == rule_id), {}
    )
    keys = fact_evidence.evidence_keys(fired.get("evidence") or {})
    seen = record.result.get("evidence") or {}
    return not any(datetime.fromisoformat(seen[key]) > returned.returned_at for key in keys if key in seen)


def without_referral_tasks(record: AssessmentRecord, kinds: frozenset[str]) -> AssessmentRecord:
    """The assessment as the task sync sees it while its referral is kept quiet: without the
    referral's own tasks (``kinds``: the referral and referral follow-up tasks of the pack)."""
    referral = record.result.get("referral") or {}
    tasks_ = [
        t
        for t in record.result.get("tasks", [])
        if not (t.get("kind") in kinds and t.get("rule_id") == referral.get("rule_id"))
    ]
    return AssessmentRecord(**{**record.model_dump(), "result": {**record.result, "tasks": tasks_}})


class PatientNotManaged(PathwayError):
    """The patient died or moved away: management ended, nothing new is opened for them."""

    code = "patient-not-managed"
    status = 409


def refer_by_hand(
    session: Session, patient: Patient, urgency: ReferralUrgency, reason: str, now: datetime
) -> Referral:
    assert patient.id is not None
    if patient.status != PatientStatus.ACTIVE.value:
        raise PatientNotManaged(f"the patient is {patient.status}: management has ended", "patient_id")
    referral = Referral(
        patient_id=patient.id,
        urgency=urgency.value,
        reason=reason,
        rule_id=None,
        created_at=now,
        updated_at=now,
    )
    db.add(session, referral)
    outbox.referral_moved(session, EventKind.REFERRAL_OPENED, referral, now)
    return referral


def advance(
    session: Session,
    referral_id: int,
    step: str,
    now: datetime,
    *,
    receiving_institution: str | None = None,
    outcome: str | None = None,
    return_note: str | None = None,
    return_follow_up_due: date | None = None,
) -> Referral:
    """Move a referral one step along the loop (accept, complete, return)."""
    referral = referral_store.referral_by_id(session, referral_id)
    if referral is None:
        raise UnknownReferral(f"no referral with id {referral_id}", "referral_id")
    before, after = _NEXT[step]
    if referral.status != before:
        raise InvalidTransition(f"a referral that is {referral.status} cannot be {after}", "status")
    referral.status = after
    referral.updated_at = now
    if step == "accept":
        referral.receiving_institution = receiving_institution
        referral.accepted_at = now
    elif step == "complete":
        referral.outcome = outcome
        referral.completed_at = now
    else:
        referral.return_note = return_note
        referral.return_follow_up_due = return_follow_up_due
        referral.returned_at = now
        outbox.referral_moved(session, EventKind.REFERRAL_RETURNED, referral, now)
    db.add(session, referral)
    sync.referral_moved(session, referral, now)
    db.add(session, referral)
    sync.referral_moved(session, referral, now)
    return referral


def referrals_of(session: Session, patient_id: int) -> list[Referral]:
    """Every referral of the patient, newest first (the read-out's ServiceRequests, a CDS card's)."""
    return list(referral_store.referrals_of(session, patient_id))
