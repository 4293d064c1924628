"""Care tasks: a patient's tasks, a task's history, and the GP team's actions on a task.

Team keys act only on their own team's patients (403 otherwise, naming nothing about the task).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query, Request
from pydantic import BaseModel, ConfigDict, Field
from sqlmodel import Session

from api.deps import ClockDep, CurrentKey, PatientId, SessionDep, patient_for
from api.errors import error_responses
from pathway.access import permissions
from pathway.access.permissions import Caller, Role
from pathway.clinical.clock import Clock
from pathway.clinical.policy import FollowThrough
from pathway.ingest.inbound import MAX_ROW_ID, Inbound, Instant, Text
from pathway.patients.reassessment import PathwayConfig
from pathway.store.work_tables import CareTask, CareTaskEvent
from pathway.tasks import actions, patient_tasks
from pathway.tasks.status import TaskOutcome, UnknownTask, key_actor
from rules.registry import PackRegistry

router = APIRouter(tags=["tasks"])
TaskId = Annotated[int, Path(ge=1, le=MAX_ROW_ID, description="the task's id")]
_ROLES = (Role.EHR, Role.TEAM)

_TASK_EXAMPLE: dict[str, Any] = {
    "id": 42,
    "patient_id": 7,
    "team_id": 3,
    "kind": "follow_up_visit",
    "subject": "",
    "status": "open",
    "due_at": "2026-03-15T00:00:00+08:00",
    "due_date": "2026-03-15",
    "issued_at": None,
    "overdue_at": None,
    "time_limit_at": "2026-03-22T00:00:00+08:00",
    "priority": 3,
    "role": "gp",
    "assignee": "李医生",
    "rule_id": "bp.crisis",
    "rule_ids": ["bp.crisis"],
    "pack_id": "sangao-cn",
    "pack_version": "2020.4",
    "assessment_id": 118,
    "tier": "red",
    "escalated_at": None,
    "snoozed_until": None,
    "snooze_reason": None,
    "outcome": None,
    "note": None,
    "created_at": "2026-03-01T09:00:00+08:00",
    "updated_at": "2026-03-01T09:00:00+08:00",
    "closed_at": None,
}


class TaskRead(BaseModel):
    """One task: what to do for whom, by when, by which role, and why (rule and pack version)."""

    model_config = ConfigDict(json_schema_extra={"examples": [_TASK_EXAMPLE]})
    id: int
    patient_id: int
    team_id: int | None
    kind: str
    subject: str = Field(description="the check of a complication screening (fundus, ecg…); '' if none")
    status: str = Field(
        description="open | done | unreachable | refused | moved | deceased | resolved | cancelled"
    )
    due_at: datetime
    due_date: date = Field(description="the due time's date in the team's time zone")
    issued_at: datetime | None = Field(description="when the scheduler put it on the team's list")
    overdue_at: datetime | None
    time_limit_at: datetime = Field(description="时限: to be completed by then")
    priority: int = Field(description="1 is the most urgent")
    role: str = Field(description="gp | health_manager | specialist")
    assignee: str | None
    rule_id: str
    rule_ids: list[str]
    pack_id: str
    pack_version: str
    assessment_id: int | None
    tier: str
    escalated_at: datetime | None
    snoozed_until: datetime | None
    snooze_reason: str | None
    outcome: str | None
    note: str | None
    created_at: datetime
    updated_at: datetime
    closed_at: datetime | None

    @classmethod
    def of(cls, task: CareTask) -> TaskRead:
        return cls.model_validate(task, from_attributes=True)


class TaskEventRead(BaseModel):
    """One change of a task: who (``key:<id>``, ``engine`` or ``scheduler``), when, from → to."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": 9,
                    "task_id": 42,
                    "at": "2026-03-15T06:00:00+08:00",
                    "actor": "scheduler",
                    "action": "issued",
                    "from_status": "open",
                    "to_status": "open",
                    "outcome": None,
                    "note": None,
                    "details": {"business_date": "2026-03-15"},
                }
            ]
        }
    )
    id: int
    task_id: int
    at: datetime
    actor: str
    action: str = Field(
        description="opened | updated | resolved | issued | overdue | escalated | outcome | reassigned | "
        "snoozed | cancelled"
    )
    from_status: str | None
    to_status: str
    outcome: str | None
    note: str | None
    details: dict[str, Any]

    @classmethod
    def of(cls, event: CareTaskEvent) -> TaskEventRead:
        return cls.model_validate(event, from_attributes=True)


class OutcomeIn(Inbound):
    """Close an open task by hand."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"outcome": "unreachable", "note": "电话三次未接通，已留言"}]},
    )
    outcome: TaskOutcome
    note: Text | None = Field(default=None, max_length=4000)


class ReassignIn(Inbound):
    """Give an open task to a member of the team."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"member": "王健康管理师"}]})
    member: Text = Field(min_length=1, max_length=200)


class SnoozeIn(Inbound):
    """Keep an open task off the list until ``until`` (at most the pack's limit ahead)."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"until": "2026-03-08T08:00:00+08:00", "reason": "患者外出探亲，下周返回"}]
        },
    )
    until: Instant
    reason: Text = Field(min_length=1, max_length=500)


async def _follow_through(request: Request) -> FollowThrough:
    registry: PackRegistry = request.app.state.registry
    config: PathwayConfig = request.app.state.pathway  # the deployment's pack in force
    return registry.get(config.pack.id, config.pack.version).pack.policy.follow_through


FollowThroughDep = Annotated[FollowThrough, Depends(_follow_through)]


def _task_for(session: Session, key: Caller, task_id: int, action: str, now: datetime) -> CareTask:
    """The task, if this key may act on its patient; the access is audited."""
    task = actions.require_task(session, task_id)
    # The patient's row is locked first, as every ingest does, so a task change and a reassessment
    # of the same patient take turns instead of deadlocking on each other's rows.
    try:
        patient_for(session, key, task.patient_id, action, now, *_ROLES, write=True)
    except permissions.NotYours:
        raise UnknownTask(f"no task with id {task_id}", "task_id") from None
    return task


TaskChange = Callable[[CareTask, str, datetime], None]
"""One change to a task, given the task, the acting key (``key_actor``) and the moment."""


def change_task(
    session: Session, key: Caller, task_id: int, action: str, clock: Clock, change: TaskChange
) -> CareTask:
    """Apply ``change`` to the task as this key at the clock's now, if the key may act on the
    task's patient (audited as ``action``), and commit. The API and the workbench both use it."""
    now = clock.now()
    task = _task_for(session, key, task_id, action, now)
    change(task, key_actor(key.id), now)
    session.commit()
    return task


@router.get(
    "/v1/patients/{patient_id}/tasks",
    response_model=list[TaskRead],
    responses=error_responses(401, 403, 404, 422, 429, 503),
    operation_id="tasks-list",
)
def list_tasks(
    patient_id: PatientId,
    session: SessionDep,
    clock: ClockDep,
    key: CurrentKey,
    status: Annotated[Literal["open", "all"], Query(description="open tasks only, or every task")] = "open",
) -> list[TaskRead]:
    """The patient's tasks, most urgent first."""
    patient_for(session, key, patient_id, "tasks.read", clock.now(), *_ROLES)
    found = [TaskRead.of(t) for t in patient_tasks.tasks_of(session, patient_id, open_only=status == "open")]
    session.commit()
    return found


@router.get(
    "/v1/tasks/{task_id}/history",
    response_model=list[TaskEventRead],
    responses=error_responses(401, 403, 404, 422, 429, 503),
    operation_id="tasks-history",
)
def task_history(
    task_id: TaskId, session: SessionDep, clock: ClockDep, key: CurrentKey
) -> list[TaskEventRead]:
    """Every change of the task, oldest first."""
    _task_for(session, key, task_id, "task.history", clock.now())
    found = [TaskEventRead.of(e) for e in actions.history(session, task_id)]
    session.commit()
    return found


@router.post(
    "/v1/tasks/{task_id}/outcome",
    response_model=TaskRead,
    responses=error_responses(401, 403, 404, 409, 413, 422, 429, 503),
    operation_id="tasks-outcome",
)
def record_outcome(
    task_id: TaskId,
    data: OutcomeIn,
    session: SessionDep,
    clock: ClockDep,
    key: CurrentKey,
    rules: FollowThroughDep,
) -> TaskRead:
    """Close the task: done, unreachable, refused, moved or deceased.

    ``moved`` and ``deceased`` end the patient's management: every other task is cancelled, active
    referrals are closed, no new tasks or referrals are made and the patient leaves the indicators.
    ``unreachable`` on emergency or urgent work (the pack's priorities) keeps the task open, due
    again after the pack's interval, and escalates it to the team lead. Of outcomes recorded at
    once only one wins; the others get 409 ``task-closed``.
    """

    def close(task: CareTask, actor: str, now: datetime) -> None:
        actions.record_outcome(session, task, data.outcome, data.note, actor, now, rules.unreachable)

    return TaskRead.of(change_task(session, key, task_id, "task.outcome", clock, close))


@router.post(
    "/v1/tasks/{task_id}/reassign",
    response_model=TaskRead,
    responses=error_responses(401, 403, 404, 409, 413, 422, 429, 503),
    operation_id="tasks-reassign",
)
def reassign(
    task_id: TaskId, data: ReassignIn, session: SessionDep, clock: ClockDep, key: CurrentKey
) -> TaskRead:
    """Give the task to a member of the team."""

    def give(task: CareTask, actor: str, now: datetime) -> None:
        actions.reassign(session, task, data.member, actor, now)

    return TaskRead.of(change_task(session, key, task_id, "task.reassign", clock, give))


@router.post(
    "/v1/tasks/{task_id}/snooze",
    response_model=TaskRead,
    responses=error_responses(401, 403, 404, 409, 413, 422, 429, 503),
    operation_id="tasks-snooze",
)
def snooze(
    task_id: TaskId,
    data: SnoozeIn,
    session: SessionDep,
    clock: ClockDep,
    key: CurrentKey,
    rules: FollowThroughDep,
) -> TaskRead:
    """Snooze the task with a reason, for at most the pack's limit for its priority
    (``snooze-too-long`` otherwise); emergency and urgent work is never snoozed (409
    ``snooze-not-allowed``)."""

    def defer(task: CareTask, actor: str, now: datetime) -> None:
        actions.snooze(session, task, data.until, data.reason, rules.snooze, actor, now)

    return TaskRead.of(change_task(session, key, task_id, "task.snooze", clock, defer))
