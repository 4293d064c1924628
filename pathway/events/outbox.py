"""The outbox: the events a use-case emits inside its own transaction, so an event exists exactly
when what caused it was stored (a rolled-back assessment leaves none).

An event carries ids, codes and the tier — never a name, a phone or free text about the patient:
``{id, kind, occurred_at, patient_id, team_id, tier, previous_tier, referral_id | task_id | flag,
rule_id, task_kind, pack_version}`` (the keys that apply). Emitting is one INSERT; nothing is sent
here: the scheduler routes and delivers (:mod:`pathway.events.delivery`).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlmodel import Session

from pathway.clinical.tiers import ReferralUrgency, RiskTier
from pathway.events import event_store
from pathway.store.tables import AssessmentRecord, Referral


class EventKind(StrEnum):
    TIER_CHANGED = "tier_changed"  # an assessment's tier differs from the one before (or is the first)
    RED_TIER_ENTERED = "red_tier_entered"  # the tier became red
    CRISIS = "crisis"  # the assessment calls for an emergency referral (and the one before did not)
    REFERRAL_OPENED = "referral_opened"
    REFERRAL_RETURNED = "referral_returned"  # 下转: back to the GP team
    TASK_OVERDUE = "task_overdue"
    TASK_ESCALATED = "task_escalated"
    CONTACT_FLAG_RAISED = "contact_flag_raised"  # missed_3m / lost_to_follow_up


def _row(
    kind: EventKind, at: datetime, patient_id: int, team_id: int | None, **payload: Any
) -> dict[str, Any]:
    return {
        "kind": kind.value,
        "occurred_at": at,
        "patient_id": patient_id,
        "team_id": team_id,
        "payload": {k: v for k, v in payload.items() if v is not None},
    }


def assessment_stored(
    session: Session,
    record: AssessmentRecord,
    previous: tuple[str, str | None] | None,
    team_id: int | None,
) -> None:
    """Store the events of a new assessment (:func:`assessment_events`)."""
    event_store.insert_events(session, assessment_events(record, previous, team_id))


def assessments_stored(session: Session, rows: list[dict[str, Any]]) -> None:
    """Store the events of a batch of new assessments (:func:`assessment_events` of each): one
    executemany (the population re-tier)."""
    event_store.insert_events(session, rows)


def assessment_events(
    record: AssessmentRecord, previous: tuple[str, str | None] | None, team_id: int | None
) -> list[dict[str, Any]]:
    """The events of a new assessment compared with the one before: tier changed, red tier
    entered, crisis (an emergency referral called for), as rows to store; none when nothing changed
    (the usual case for a stream of home readings)."""
    before_tier, before_urgency = previous if previous is not None else (None, None)
    ids: dict[str, Any] = {
        "tier": record.tier,
        "previous_tier": before_tier,
        "pack_version": record.pack_version,
    }
    rows = []
    if record.tier != before_tier:
        rows.append(_row(EventKind.TIER_CHANGED, record.evaluated_at, record.patient_id, team_id, **ids))
        if record.tier == RiskTier.RED.value:
            rows.append(
                _row(EventKind.RED_TIER_ENTERED, record.evaluated_at, record.patient_id, team_id, **ids)
            )
    emergency = ReferralUrgency.EMERGENCY.value
    if record.referral_urgency == emergency and before_urgency != emergency:
        rule_id = (record.result.get("referral") or {}).get("rule_id")
        rows.append(
            _row(EventKind.CRISIS, record.evaluated_at, record.patient_id, team_id, rule_id=rule_id, **ids)
        )
    return rows


def referral_moved(session: Session, kind: EventKind, referral: Referral, now: datetime) -> None:
    """A referral opened or returned (下转)."""
    assert referral.id is not None
    team_id = event_store.patient_teams(session, [referral.patient_id]).get(referral.patient_id)
    row = _row(
        kind,
        now,
        referral.patient_id,
        team_id,
        referral_id=referral.id,
        urgency=referral.urgency,
        rule_id=referral.rule_id,
        pack_version=referral.pack_version,
    )
    event_store.insert_events(session, [row])


def tasks_marked(session: Session, kind: EventKind, task_ids: Sequence[int], now: datetime) -> None:
    """Tasks a scheduler run marked overdue or escalated (one event each)."""
    rows = [
        _row(
            kind,
            now,
            patient_id,
            team_id,
            task_id=task_id,
            tier=tier,
            task_kind=task_kind,
            pack_version=version,
        )
        for task_id, patient_id, team_id, tier, task_kind, version in event_store.tasks_of(session, task_ids)
    ]
    event_store.insert_events(session, rows)


def flags_raised(session: Session, flag: str, patient_ids: Sequence[int], now: datetime) -> None:
    """Contact flags (``missed_3m``, ``lost_to_follow_up``) the daily run raised."""
    teams = event_store.patient_teams(session, patient_ids)
    rows = [
        _row(EventKind.CONTACT_FLAG_RAISED, now, patient_id, teams.get(patient_id), flag=flag)
        for patient_id in patient_ids
    ]
    event_store.insert_events(session, rows)
