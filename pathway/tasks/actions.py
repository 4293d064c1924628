"""The GP team's actions on a care task (PATHWAY.md §5): :func:`record_outcome` (with the
unreachable retry, and :func:`end_management` when the patient moved or died), :func:`reassign`,
:func:`snooze`, :func:`history`.

The tasks themselves are opened, updated and resolved by :mod:`pathway.tasks.sync`. Every change is
recorded as a task event (who, when, from → to). Nothing here commits.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta, tzinfo
from zoneinfo import ZoneInfo

from sqlmodel import Session

from pathway.clinical.clock import CLINIC_TZ
from pathway.clinical.errors import InvalidInput
from pathway.clinical.policy import SnoozeLimit, UnreachableRetry
from pathway.clinical.vocabulary import PatientStatus
from pathway.patients import registration
from pathway.store import db
from pathway.store.work_tables import CareTask, CareTaskEvent
from pathway.tasks import flag_store, task_store
from pathway.tasks.status import (
    ACTIVE_REFERRAL,
    SnoozeNotAllowed,
    SnoozeTooLong,
    TaskClosed,
    TaskOutcome,
    TaskStatus,
    UnknownTask,
    event,
)
from pathway.tasks.task_store import OPEN

_ENDS_ALL_TASKS = (TaskOutcome.MOVED, TaskOutcome.DECEASED)
UNREACHABLE = TaskOutcome.UNREACHABLE.value


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
