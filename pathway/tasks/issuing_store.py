"""The scheduler's runs over tasks and patients: bulk statements over a scope of teams.

Part of the repository layer: functions take a Session and never commit. Each run touches many rows
in single bulk ``UPDATE … RETURNING`` / ``INSERT … SELECT`` statements, never a loop over patients:
issue what falls due (by date, or by time for the hourly kinds), mark overdue, escalate (the contact
flags are raised and cleared in :mod:`pathway.tasks.flag_store`). Used by :mod:`pathway.tasks.issuing`
and the scheduler jobs, which own the transaction and the claim of the run
(:mod:`pathway.runs.claims`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Date,
    String,
    and_,
    any_,
    func,
    insert,
    literal,
    literal_column,
    or_,
    select,
    type_coerce,
    update,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlmodel import Session, SQLModel

from pathway.store.sql import IS_OPEN
from pathway.store.tables import Encounter, Patient, Reading, Team
from pathway.store.work_tables import CareTaskEvent, PatientFlag
from pathway.tasks.task_store import OPEN, add_events, task_table

_TABLES = SQLModel.metadata.tables
_task = task_table.c
_event = _TABLES[CareTaskEvent.__tablename__]
_team = _TABLES[Team.__tablename__].c
_patient = _TABLES[Patient.__tablename__].c
_reading = _TABLES[Reading.__tablename__].c
_encounter = _TABLES[Encounter.__tablename__].c
_flag_table = _TABLES[PatientFlag.__tablename__]
_flag = _flag_table.c


@dataclass(frozen=True)
class Scope:
    """The patients a run covers: some teams, and/or the patients without a team."""

    team_ids: tuple[int, ...]
    teamless: bool

    def tasks(self) -> ColumnElement[bool]:
        return self._of(_task.team_id)

    def patients(self) -> ColumnElement[bool]:
        """The patients in scope still managed (a patient who died or moved away is not flagged)."""
        return and_(self._of(_patient.team_id), _patient.status == literal_column("'active'"))

    def _of(self, column: Any) -> ColumnElement[bool]:
        parts: list[ColumnElement[bool]] = []
        if self.team_ids:
            parts.append(column.in_(self.team_ids))
        if self.teamless:
            parts.append(column.is_(None))
        return or_(*parts) if parts else literal(False)


def teams(session: Session, team_id: int | None = None) -> list[tuple[int, str]]:
    """(id, time zone) of every team, or of one."""
    statement = select(_team.id, _team.timezone).order_by(_team.id)
    if team_id is not None:
        statement = statement.where(_team.id == team_id)
    return [(int(i), str(tz)) for i, tz in session.execute(statement)]


def timezones_in_use(session: Session) -> list[str]:
    return sorted({str(tz) for (tz,) in session.execute(select(_team.timezone).distinct())})


@dataclass(frozen=True)
class RunEvent:
    """The event each task marked by a run gets: ``details``, plus ``days_overdue`` counted to
    ``overdue_on`` when given."""

    actor: str
    action: str
    details: dict[str, Any]
    note: str | None = None
    overdue_on: date | None = None

    def row(self, task_id: int, due_date: date, now: datetime) -> dict[str, Any]:
        details = dict(self.details)
        if self.overdue_on is not None:
            details["days_overdue"] = (self.overdue_on - due_date).days
        return {
            "task_id": task_id,
            "at": now,
            "actor": self.actor,
            "action": self.action,
            "from_status": OPEN,
            "to_status": OPEN,
            "outcome": None,
            "note": self.note,
            "details": details,
        }


def _mark(
    session: Session,
    scope: Scope,
    where: list[ColumnElement[bool]],
    values: dict[str, Any],
    event: RunEvent,
    now: datetime,
) -> list[int]:
    """Mark the open tasks in scope matching ``where`` and record an event for each; their ids.

    PostgreSQL: one statement — the rows are locked in id order (a ``FOR UPDATE`` CTE), updated, and
    their events inserted from the UPDATE's RETURNING. Runs that overlap (two dates, the daily and
    the hourly run) wait for each other instead of deadlocking; a row changed meanwhile is checked
    again by the lock: each task is marked once, with one event. The UPDATE takes the locked ids as
    one array (``id = ANY(ARRAY(SELECT id FROM locked))``), so it probes the primary key once per
    marked task. Joined to the CTE instead (``UPDATE … FROM locked``), it was planned from the
    CTE's estimate, which comes from the whole table (closed tasks have NULL ``overdue_at`` /
    ``escalated_at`` too): thousands of rows expected for a hundred found, so a merge or hash join
    over every task ever created, closed history included (a county's year, 367k tasks, 125 marked:
    138 ms, 107 of them reading the history, growing every day, once per time zone; 3.7 ms with the
    array). SQLite (one writer at a time): UPDATE … RETURNING, then the events in one executemany.
    """
    condition = and_(IS_OPEN, scope.tasks(), *where)
    if session.get_bind().dialect.name != "postgresql":
        marked = session.execute(
            update(task_table).where(condition).values(**values).returning(_task.id, _task.due_date)
        ).all()
        add_events(session, [event.row(int(i), d, now) for i, d in marked])
        return [int(i) for i, _d in marked]
    locked = select(_task.id).where(condition).order_by(_task.id).with_for_update().cte("locked")
    locked_ids = func.array(select(locked.c.id).scalar_subquery())
    changed = (
        update(task_table)
        .where(_task.id == any_(locked_ids))
        .values(**values)
        .returning(_task.id, _task.due_date)
        .cte("marked")
    )
    details: ColumnElement[Any] = literal(event.details, JSONB)
    if event.overdue_on is not None:
        overdue = func.jsonb_build_object(
            "days_overdue", literal(event.overdue_on, Date) - changed.c.due_date
        )
        details = type_coerce(details.op("||")(overdue), JSONB)
    rows = select(
        changed.c.id,
        literal(now, _event.c.at.type),
        literal(event.actor),
        literal(event.action),
        literal(OPEN),
        literal(OPEN),
        literal(None, String),
        literal(event.note, String),
        details,
    ).select_from(changed)
    columns = ["task_id", "at", "actor", "action", "from_status", "to_status", "outcome", "note", "details"]
    statement = insert(_event).from_select(columns, rows).returning(_event.c.task_id)
    return [int(i) for (i,) in session.execute(statement)]


def issue_due_by_date(
    session: Session, scope: Scope, business_date: date, now: datetime, event: RunEvent
) -> int:
    """Issue every open task due on or before ``business_date`` not issued yet; how many."""
    return len(
        _mark(
            session,
            scope,
            [_task.issued_at.is_(None), _task.due_date <= business_date],
            {"issued_at": now, "updated_at": now},
            event,
            now,
        )
    )


def issue_due_by_time(
    session: Session, scope: Scope, kinds: Sequence[str], until: datetime, now: datetime, event: RunEvent
) -> int:
    """Issue open tasks of ``kinds`` due before ``until`` not issued yet; how many."""
    return len(
        _mark(
            session,
            scope,
            [_task.issued_at.is_(None), _task.kind.in_(list(kinds)), _task.due_at < until],
            {"issued_at": now, "updated_at": now},
            event,
            now,
        )
    )


def mark_overdue(
    session: Session, scope: Scope, business_date: date, now: datetime, event: RunEvent
) -> list[int]:
    """Mark open tasks due before ``business_date`` as overdue (once); their ids."""
    return _mark(
        session,
        scope,
        [_task.overdue_at.is_(None), _task.due_date < business_date],
        {"overdue_at": now, "updated_at": now},
        event,
        now,
    )


def escalate(
    session: Session, scope: Scope, tier: str, due_on_or_before: date, now: datetime, event: RunEvent
) -> list[int]:
    """Escalate (once) open tasks of ``tier`` due on or before a date, unless snoozed past ``now``;
    their ids."""
    return _mark(
        session,
        scope,
        [
            _task.escalated_at.is_(None),
            _task.tier == tier,
            _task.due_date <= due_on_or_before,
            or_(_task.snoozed_until.is_(None), _task.snoozed_until <= now),
        ],
        {"escalated_at": now, "updated_at": now},
        event,
        now,
    )
