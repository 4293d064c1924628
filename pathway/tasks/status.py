"""Care tasks (PATHWAY.md §5): their statuses, the outcomes the GP team records, the contact flags,
who acts (the engine, the scheduler, a key), the errors of the team's actions, and the task event
every change is recorded as (who, when, from → to).

The work itself: :mod:`pathway.tasks.sync` (every reassessment), :mod:`pathway.tasks.actions` (the
GP team's actions), :mod:`pathway.tasks.issuing` (the scheduler's daily and hourly runs).
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from pathway.clinical.errors import InvalidInput, PathwayError


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
ACTIVE_REFERRAL = ("open", "accepted")  # as pathway.referrals.referral_flow.ACTIVE (which imports it)


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
