"""Care tasks (PATHWAY.md §5): the work assessments call for, followed through until it is done.

- :func:`sync_from_assessment` (every reassessment): one open task per (patient, kind, subject); a
  new firing updates the open task (reasons, rule ids; its due time only ever moves earlier: the
  first firing starts the clock), and evidence resolves it (a new encounter, reading or check, the
  referral loop moving, the assessment no longer calling for it — the pack says which, per kind).
  A need the team already closed by hand is not reopened until new evidence arrives.
- :func:`record_outcome`, :func:`reassign`, :func:`snooze`, :func:`history`: the GP team's actions.
- The scheduler's daily and hourly runs are in :mod:`pathway.tasks.issuing`.

Every change is recorded as a task event (who, when, from → to). Nothing here commits.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, tzinfo
from enum import StrEnum
from typing import Any
from zoneinfo import ZoneInfo

from sqlmodel import Session

from pathway.clinical.assessment import (
    EVIDENCE_NO_LONGER_CALLED,
    EVIDENCE_REFERRAL,
    SnoozeLimit,
    UnreachableRetry,
)
from pathway.clinical.clock import CLINIC_TZ
from pathway.clinical.errors import InvalidInput, PathwayError
from pathway.clinical.vocabulary import PatientStatus
from pathway.patients import registration
from pathway.store import db
from pathway.store.tables import AssessmentRecord, Patient, Referral
from pathway.store.work_tables import CareTask, CareTaskEvent
from pathway.tasks import flag_store, task_store
from pathway.tasks.task_store import OPEN, TaskRow


class TaskStatus(StrEnum):
    OPEN = "open"
    DONE = "done"
    UNREACHABLE = "unreachable"
    REFUSED = "refused"
    MOVED = "moved"
    DECEASED = "deceased"
    RESOLVED = "resolved"  # by evidence
    CANCELLED = "cancelled"  # the patient moved away or died


class TaskOutcome(StrEnum):
    """What the GP team records when it closes a task by hand."""

    DONE = "done"
    UNREACHABLE = "unreachable"
    REFUSED = "refused"
    MOVED = "moved"
    DECEASED = "deceased"


class FlagKind(StrEnum):
    """No contact of any kind (PATHWAY.md §5): 90 days ``missed_3m``, 365 days ``lost_to_follow_up``."""

    MISSED_3M = "missed_3m"
    LOST_TO_FOLLOW_UP = "lost_to_follow_up"


ENGINE = "engine"
SCHEDULER = "scheduler"
# Closed by hand with these, a need stays closed until new evidence (unreachable: tried again).
_HANDLED = [s.value for s in (TaskStatus.DONE, TaskStatus.REFUSED, TaskStatus.MOVED, TaskStatus.DECEASED)]
_HANDLED.append(TaskStatus.CANCELLED.value)
_ENDS_ALL_TASKS = (TaskOutcome.MOVED, TaskOutcome.DECEASED)
UNREACHABLE = TaskOutcome.UNREACHABLE.value
ACTIVE_REFERRAL = ("open", "accepted")  # as pathway.referrals.ACTIVE (which imports this module)


def key_actor(api_key_id: int | None) -> str:
    return f"key:{api_key_id}"


class UnknownTask(PathwayError):
    code = "unknown-task"
    status = 404


class TaskClosed(PathwayError):
    code = "task-closed"
    status = 409


class SnoozeTooLong(InvalidInput):
    code = "snooze-too-long"


class SnoozeNotAllowed(PathwayError):
    """Emergency and urgent work is never snoozed (the pack's limit for its priority is 0)."""

    code = "snooze-not-allowed"
    status = 409


# --- Sync on every reassessment -----------------------------------------------------------------


@dataclass(frozen=True)
class _Called:
    """A task as the assessment's JSON carries it."""

    kind: str
    subject: str
    due: datetime
    priority: int
    rule_id: str
    rule_ids: list[str]
    role: str
    time_limit: timedelta
    evidence: list[str]
    recheck_of: datetime | None

    @classmethod
    def of(cls, item: dict[str, Any]) -> _Called:
        due = datetime.fromisoformat(item["due"])
        recheck_of = item.get("recheck_of")
        return cls(
            kind=item["kind"],
            subject=item.get("subject") or "",
            due=due,
            priority=int(item["priority"]),
            rule_id=item["rule_id"],
            rule_ids=list(item["rule_ids"]),
            role=item["role"],
            time_limit=datetime.fromisoformat(item["time_limit_at"]) - due,
            evidence=list(item["evidence"]),
            recheck_of=datetime.fromisoformat(recheck_of) if recheck_of else None,
        )


@dataclass(frozen=True)
class TaskSync:
    """What one sync did, by (kind, subject)."""

    opened: list[tuple[str, str]]
    updated: list[tuple[str, str]]
    resolved: list[tuple[str, str]]


def sync_from_assessment(
    session: Session, patient: Patient, record: AssessmentRecord, now: datetime
) -> TaskSync:
    """Bring the patient's open tasks in line with a new assessment (one read, at most three writes)."""
    assert patient.id is not None
    result = record.result
    called = {(c.kind, c.subject): c for c in (_Called.of(item) for item in result.get("tasks", []))}
    seen = {key: datetime.fromisoformat(at) for key, at in (result.get("evidence") or {}).items()}
    state = task_store.patient_task_state(session, patient.id, patient.team_id, _HANDLED)
    zone: tzinfo = (
        ZoneInfo(state.team_timezone)
        if state.team_timezone
        else datetime.fromisoformat(result["as_of"]).tzinfo or CLINIC_TZ
    )
    changes: list[dict[str, Any]] = []
    events: list[dict[str, Any]] = []
    still_open: dict[tuple[str, str], TaskRow] = {}
    resolved: list[tuple[str, str]] = []
    for row in state.open:
        key = (row.kind, row.subject)
        found = _resolving_evidence(row, called.get(key), seen, state.open_referral_since)
        if found is not None:
            note, details = found
            resolved.append(key)
            changes.append(_change(row.id, TaskStatus.RESOLVED, row.tier, row.team_id, now))
            events.append(
                event(row.id, now, ENGINE, "resolved", OPEN, TaskStatus.RESOLVED, note=note, details=details)
            )
            continue
        still_open[key] = row
        if key not in called and (row.tier, row.team_id) != (record.tier, patient.team_id):
            changes.append(_change(row.id, TaskStatus.OPEN, record.tier, patient.team_id, now))
            details = {"tier": [row.tier, record.tier], "team_id": [row.team_id, patient.team_id]}
            events.append(event(row.id, now, ENGINE, "updated", OPEN, TaskStatus.OPEN, details=details))

    handled = {(t.kind, t.subject): t for t in state.handled}
    upserts: list[dict[str, Any]] = []
    pending: dict[tuple[str, str], tuple[str, dict[str, Any]]] = {}
    for key, task in called.items():
        current = still_open.get(key)
        if current is None:
            if _already_done(task, seen, state.open_referral_since, handled.get(key)):
                continue
            upserts.append(_new_row(patient, record, task, zone, seen, now))
            pending[key] = ("opened", {"due_at": task.due.isoformat(), "rule_ids": task.rule_ids})
            continue
        merged = _merge(current, task, patient, record, zone, now)
        if merged is not None:
            upserts.append(merged[0])
            pending[key] = ("updated", merged[1])

    task_store.update_open_tasks(session, changes)
    ids = task_store.upsert_open_tasks(session, upserts)
    for key, (action, details) in pending.items():
        details["assessment_id"] = record.id
        events.append(
            event(ids[key], now, ENGINE, action, None if action == "opened" else OPEN, OPEN, details=details)
        )
    task_store.add_events(session, events)
    return TaskSync(
        opened=[k for k, (a, _) in pending.items() if a == "opened"],
        updated=[k for k, (a, _) in pending.items() if a == "updated"],
        resolved=resolved,
    )


def _latest(keys: Sequence[str], seen: dict[str, datetime]) -> datetime | None:
    moments = [seen[k] for k in keys if k in seen]
    return max(moments) if moments else None


def _resolving_evidence(
    row: TaskRow, called: _Called | None, seen: dict[str, datetime], open_referral_since: datetime | None
) -> tuple[str, dict[str, Any]] | None:
    """The evidence that resolves an open task (a note and details), or None.

    A reading up to the one a recheck still called for rechecks is not its recheck (a second crisis
    reading is not the recheck of the first, PATHWAY.md §2): the assessment has judged it already.
    """
    anchor = called.recheck_of if called is not None else None
    for key in row.evidence:
        if key == EVIDENCE_REFERRAL:
            if open_referral_since is None:
                return "the referral is no longer open (the loop moved)", {"evidence": key}
        elif key == EVIDENCE_NO_LONGER_CALLED:
            if called is None:
                return "the assessment no longer calls for it", {"evidence": key}
        else:
            at = seen.get(key)
            if (
                at is not None
                and (row.evidence_at is None or at > row.evidence_at)
                and (anchor is None or at > anchor)
            ):
                return f"new {key} at {at.isoformat()}", {"evidence": key, "at": at.isoformat()}
    return None


def _need_since(task: _Called, seen: dict[str, datetime]) -> datetime | None:
    """The latest evidence behind a task: of its own kinds (a screening: its check), or of any kind
    for a task that only ends when no longer called for (a data gap)."""
    own = [key for key in task.evidence if key != EVIDENCE_NO_LONGER_CALLED]
    if not own and EVIDENCE_NO_LONGER_CALLED in task.evidence:
        return max(seen.values(), default=None)
    return _latest(own, seen)


def _already_done(
    task: _Called, seen: dict[str, datetime], open_referral_since: datetime | None, handled: TaskRow | None
) -> bool:
    """Whether a task the assessment calls for is already satisfied, or closed by hand with no new
    evidence since (the team's decision stands until something new happens)."""
    if EVIDENCE_REFERRAL in task.evidence:
        if open_referral_since is None:
            return True  # the referral it calls for was accepted (or none is open)
        return (
            handled is not None and handled.closed_at is not None and handled.closed_at >= open_referral_since
        )
    # Evidence after the moment an anchored task counts from (a BP after the newest crisis reading)
    # already kept the assessment from calling for it: decided there, once (assessment._done_since).
    if handled is None:
        return False
    since = _need_since(task, seen)
    return since is None or (handled.evidence_at is not None and since <= handled.evidence_at)


def _change(
    task_id: int, status: TaskStatus, tier: str, team_id: int | None, now: datetime
) -> dict[str, Any]:
    closed = status is not TaskStatus.OPEN
    return {
        "b_id": task_id,
        "b_status": status.value,
        "b_tier": tier,
        "b_team_id": team_id,
        "b_now": now,
        "b_closed_at": now if closed else None,
    }


def _new_row(
    patient: Patient,
    record: AssessmentRecord,
    task: _Called,
    zone: tzinfo,
    seen: dict[str, datetime],
    now: datetime,
) -> dict[str, Any]:
    return {
        "patient_id": patient.id,
        "team_id": patient.team_id,
        "kind": task.kind,
        "subject": task.subject,
        "status": OPEN,
        "due_at": task.due,
        "due_date": task.due.astimezone(zone).date(),
        "issued_at": None,
        "overdue_at": None,
        "time_limit_at": task.due + task.time_limit,
        "priority": task.priority,
        "role": task.role,
        "assignee": None,
        "rule_id": task.rule_id,
        "rule_ids": task.rule_ids,
        "pack_id": record.pack_id,
        "pack_version": record.pack_version,
        "assessment_id": record.id,
        "tier": record.tier,
        "evidence": task.evidence,
        "evidence_at": _need_since(task, seen),
        "escalated_at": None,
        "snoozed_until": None,
        "snooze_reason": None,
        "outcome": None,
        "note": None,
        "created_at": now,
        "updated_at": now,
        "closed_at": None,
    }


def _merge(
    row: TaskRow, task: _Called, patient: Patient, record: AssessmentRecord, zone: tzinfo, now: datetime
) -> tuple[dict[str, Any], dict[str, Any]] | None:
    """The open task updated by a new firing (its upsert row and what changed), or None if nothing did.

    Its due time only moves earlier, except a recheck's: that follows the newest reading it rechecks.
    """
    earlier = task.due < row.due_at or (task.recheck_of is not None and task.due != row.due_at)
    due = task.due if earlier else row.due_at
    values: dict[str, Any] = {
        "due_at": due,
        "priority": min(row.priority, task.priority),
        "rule_id": task.rule_id if earlier else row.rule_id,
        "rule_ids": task.rule_ids,
        "tier": record.tier,
        "team_id": patient.team_id,
        "role": task.role,
        "time_limit_at": due + task.time_limit,
        # What resolves it is the pack in force's word: a task opened under an earlier edition
        # takes the new edition's evidence with its next firing.
        "evidence": task.evidence,
    }
    before = {
        "due_at": row.due_at,
        "priority": row.priority,
        "rule_id": row.rule_id,
        "rule_ids": row.rule_ids,
        "tier": row.tier,
        "team_id": row.team_id,
        "role": row.role,
        "time_limit_at": row.time_limit_at,
        "evidence": row.evidence,
    }
    changed = {
        name: [_plain(before[name]), _plain(value)] for name, value in values.items() if before[name] != value
    }
    if not changed:
        return None
    upsert = _new_row(patient, record, task, zone, {}, now)
    upsert.update(values, due_date=due.astimezone(zone).date(), evidence_at=row.evidence_at)
    return upsert, changed


def _plain(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime) else value


def event(
    task_id: int,
    at: datetime,
    actor: str,
    action: str,
    from_status: str | None,
    to_status: str,
    *,
    outcome: str | None = None,
    note: str | None = None,
    details: dict[str, Any] | None = None,
) -> dict[str, Any]:
    return {
        "task_id": task_id,
        "at": at,
        "actor": actor,
        "action": action,
        "from_status": from_status,
        "to_status": to_status,
        "outcome": outcome,
        "note": note,
        "details": details or {},
    }


def referral_moved(session: Session, referral: Referral, now: datetime) -> None:
    """The referral loop moved: resolve the patient's referral tasks once no referral is open."""
    state = task_store.patient_task_state(session, referral.patient_id, None, [])
    if state.open_referral_since is not None:
        return
    rows = [row for row in state.open if EVIDENCE_REFERRAL in row.evidence]
    task_store.update_open_tasks(
        session, [_change(r.id, TaskStatus.RESOLVED, r.tier, r.team_id, now) for r in rows]
    )
    note = f"referral #{referral.id} is {referral.status}"
    details = {"evidence": EVIDENCE_REFERRAL, "referral_id": referral.id, "referral_status": referral.status}
    task_store.add_events(
        session,
        [
            event(r.id, now, ENGINE, "resolved", OPEN, TaskStatus.RESOLVED, note=note, details=details)
            for r in rows
        ],
    )


# --- The GP team's actions ----------------------------------------------------------------------


def require_task(session: Session, task_id: int) -> CareTask:
    task = task_store.task_by_id(session, task_id)
    if task is None:
        raise UnknownTask(f"no task with id {task_id}", "task_id")
    return task


def _require_open(task: CareTask) -> None:
    if task.status != OPEN:
        raise TaskClosed(f"task {task.id} is {task.status}", "status")


def record_outcome(
    session: Session,
    task: CareTask,
    outcome: TaskOutcome,
    note: str | None,
    actor: str,
    now: datetime,
    retry: UnreachableRetry,
) -> CareTask:
    """Close a task by hand. Of outcomes recorded at the same moment only one wins (the others:
    :class:`TaskClosed`), and only the winner's side effects happen.

    - ``unreachable`` on a task of a priority the pack retries (emergency, urgent): the task stays
      open, due again after the pack's interval, and is escalated to the team lead at once.
    - ``moved`` / ``deceased``: management ends (:func:`end_management`).
    """
    _require_open(task)
    assert task.id is not None
    after = retry.retry_after(task.priority) if outcome is TaskOutcome.UNREACHABLE else None
    if after is not None:
        return _retry_unreachable(session, task, after, note, retry, actor, now)
    status = TaskStatus(outcome.value)
    values = {
        "status": status.value,
        "outcome": outcome.value,
        "note": note,
        "closed_at": now,
        "updated_at": now,
    }
    if not task_store.change_if_open(session, task.id, values):
        raise TaskClosed(f"task {task.id} is closed already", "status")
    task_store.add_events(
        session, [event(task.id, now, actor, "outcome", OPEN, status.value, outcome=outcome.value, note=note)]
    )
    if outcome in _ENDS_ALL_TASKS:
        end_management(session, task.patient_id, PatientStatus(outcome.value), actor, now, task.id)
    session.refresh(task)
    return task


def _retry_unreachable(
    session: Session,
    task: CareTask,
    after: timedelta,
    note: str | None,
    retry: UnreachableRetry,
    actor: str,
    now: datetime,
) -> CareTask:
    """The patient was not reached for urgent work: try again later, and tell the team lead now."""
    assert task.id is not None
    zone_name = task_store.team_timezone(session, task.team_id)
    zone: tzinfo = ZoneInfo(zone_name) if zone_name else CLINIC_TZ
    due = now + after
    values = {
        "due_at": due,
        "due_date": due.astimezone(zone).date(),
        "time_limit_at": due + (task.time_limit_at - task.due_at),
        "escalated_at": now,
        "note": note,
        "updated_at": now,
    }
    if not task_store.change_if_open(session, task.id, values):
        raise TaskClosed(f"task {task.id} is closed already", "status")
    retried = {"retry_due_at": due.isoformat(), "source": retry.source}
    escalated = {"to": retry.escalate_to, "reason": UNREACHABLE}
    task_store.add_events(
        session,
        [
            event(
                task.id, now, actor, "outcome", OPEN, OPEN, outcome=UNREACHABLE, note=note, details=retried
            ),
            event(task.id, now, actor, "escalated", OPEN, OPEN, details=escalated),
        ],
    )
    session.refresh(task)
    return task


def end_management(
    session: Session, patient_id: int, status: PatientStatus, actor: str, now: datetime, task_id: int
) -> None:
    """The patient died or moved away: management ends. The patient's status records it (no new
    tasks or referrals from then on, out of the indicators), every other open task is cancelled,
    active referrals are closed and contact flags cleared; the history stays."""
    patient = registration.require_patient(session, patient_id, for_update=True)
    patient.status, patient.status_changed_at, patient.updated_at = status.value, now, now
    db.add(session, patient)
    note = f"patient {status.value} (task {task_id})"
    cancelled = task_store.cancel_open_tasks(session, patient_id, now, note)
    task_store.add_events(
        session, [event(i, now, actor, "cancelled", OPEN, TaskStatus.CANCELLED, note=note) for i in cancelled]
    )
    task_store.close_active_referrals(session, patient_id, ACTIVE_REFERRAL, now, note)
    flag_store.clear_patient_flags(session, patient_id, now)


def reassign(session: Session, task: CareTask, member: str, actor: str, now: datetime) -> CareTask:
    """Give an open task to a member of the team."""
    _require_open(task)
    assert task.id is not None
    before, task.assignee, task.updated_at = task.assignee, member, now
    task_store.save(session, task)
    details = {"from": before, "to": member}
    task_store.add_events(session, [event(task.id, now, actor, "reassigned", OPEN, OPEN, details=details)])
    return task


def snooze(
    session: Session,
    task: CareTask,
    until: datetime,
    reason: str,
    limit: SnoozeLimit,
    actor: str,
    now: datetime,
) -> CareTask:
    """Keep an open task off the list (and from escalating) until ``until``, at most the pack's limit."""
    _require_open(task)
    assert task.id is not None
    max_days = limit.days_for(task.priority)
    if max_days == 0:
        raise SnoozeNotAllowed(
            f"a task of priority {task.priority} may not be snoozed ({limit.source})", "priority"
        )
    if until <= now:
        raise InvalidInput("a snooze must end in the future", "until")
    if until > now + timedelta(days=max_days):
        raise SnoozeTooLong(f"a task may be snoozed for at most {max_days} days ({limit.source})", "until")
    task.snoozed_until, task.snooze_reason, task.updated_at = until, reason, now
    task_store.save(session, task)
    details = {"until": until.isoformat()}
    task_store.add_events(
        session, [event(task.id, now, actor, "snoozed", OPEN, OPEN, note=reason, details=details)]
    )
    return task


def history(session: Session, task_id: int) -> Sequence[CareTaskEvent]:
    """Every change of the task, oldest first."""
    require_task(session, task_id)
    return task_store.events_of(session, task_id)
