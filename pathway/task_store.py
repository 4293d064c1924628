"""Every SQL statement about care tasks, their events, scheduler runs and patient flags.

Part of the repository layer: functions take a Session and never commit. Statements that touch
many rows (the scheduler's runs) are single bulk ``UPDATE … RETURNING`` / ``INSERT … SELECT``
statements; the ingest hot path (:func:`patient_task_state`, :func:`update_open_tasks`,
:func:`upsert_open_tasks`, :func:`add_events`) is at most four round trips and usually one.
Both dialects: ON CONFLICT on the partial unique index of open tasks (``index_where``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import pydantic_core
from sqlalchemy import (
    ARRAY,
    BindParameter,
    ColumnElement,
    Date,
    Insert,
    Select,
    String,
    and_,
    any_,
    bindparam,
    case,
    cast,
    column,
    func,
    insert,
    literal,
    literal_column,
    or_,
    select,
    text,
    type_coerce,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.dialects.postgresql import JSONB
from sqlmodel import Session, SQLModel

from pathway.models import (
    CareTask,
    CareTaskEvent,
    Encounter,
    Patient,
    PatientFlag,
    Reading,
    Referral,
    SchedulerRun,
    Team,
)

OPEN = "open"
_TABLES = SQLModel.metadata.tables
task_table = _TABLES[CareTask.__tablename__]
_task = task_table.c
_event = _TABLES[CareTaskEvent.__tablename__]
_team = _TABLES[Team.__tablename__].c
_referral = _TABLES[Referral.__tablename__].c
_patient = _TABLES[Patient.__tablename__].c
_reading = _TABLES[Reading.__tablename__].c
_encounter = _TABLES[Encounter.__tablename__].c
_flag_table = _TABLES[PatientFlag.__tablename__]
_flag = _flag_table.c
_run_table = _TABLES[SchedulerRun.__tablename__]
_run = _run_table.c
_OPEN_PREDICATE = text("status = 'open'")
# The open-task predicate as a literal (not a bound parameter), so PostgreSQL matches the partial
# indexes (``WHERE status = 'open'``) in generic plans of prepared statements too.
IS_OPEN = _task.status == literal_column("'open'")


def _insert(session: Session) -> Any:
    return postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert


# --- The ingest hot path ----------------------------------------------------------------------


@dataclass(frozen=True)
class TaskRow:
    """A task as :func:`patient_task_state` reads it (plain values, not an ORM object)."""

    id: int
    kind: str
    subject: str
    status: str
    due_at: datetime
    priority: int
    rule_id: str
    rule_ids: list[str]
    tier: str
    team_id: int | None
    role: str
    time_limit_at: datetime
    evidence: list[str]
    evidence_at: datetime | None
    closed_at: datetime | None


@dataclass(frozen=True)
class PatientTaskState:
    """What sync needs in one read: the team's time zone, since when a referral is open, the open
    tasks, and the latest task of each (kind, subject) closed by hand with one of the given statuses."""

    team_timezone: str | None
    open_referral_since: datetime | None
    open: list[TaskRow]
    handled: list[TaskRow]


_PATIENT: BindParameter[int] = bindparam("patient_id")
_TEAM: BindParameter[int | None] = bindparam("team_id")
_HANDLED: BindParameter[list[str]] = bindparam("handled", expanding=True)
_TASK_COLUMNS = (
    _task.id,
    _task.kind,
    _task.subject,
    _task.status,
    _task.due_at,
    _task.priority,
    _task.rule_id,
    _task.rule_ids,
    _task.tier,
    _task.team_id,
    _task.role,
    _task.time_limit_at,
    _task.evidence,
    _task.evidence_at,
    _task.closed_at,
)
_one = select(literal(1).label("one")).subquery("one")


def _state(dialect: str) -> Select[Any]:
    """The task state statement. The handled statuses are one array parameter on PostgreSQL
    (``= ANY``); an expanding ``IN`` made SQLAlchemy render the statement anew on every call."""
    if dialect == "postgresql":
        handled = _task.status == any_(bindparam("handled", type_=ARRAY(String)))
    else:
        handled = _task.status.in_(_HANDLED)
    latest_handled = (
        select(func.max(_task.id))
        .where(_task.patient_id == _PATIENT, handled)
        .group_by(_task.kind, _task.subject)
    )
    return (
        select(
            select(_team.timezone).where(_team.id == _TEAM).scalar_subquery().label("team_timezone"),
            select(func.min(_referral.created_at))
            .where(_referral.patient_id == _PATIENT, _referral.status == OPEN)
            .scalar_subquery()
            .label("open_referral_since"),
            *_TASK_COLUMNS,
        )
        .select_from(_one)
        .outerjoin(
            task_table,
            and_(_task.patient_id == _PATIENT, or_(IS_OPEN, _task.id.in_(latest_handled))),
        )
    )


_STATE = {dialect: _state(dialect) for dialect in ("postgresql", "sqlite")}


def patient_task_state(
    session: Session, patient_id: int, team_id: int | None, handled_statuses: Sequence[str]
) -> PatientTaskState:
    """One statement: always one row, plus one per open or latest-handled task."""
    rows = session.execute(
        _STATE[session.get_bind().dialect.name],
        {"patient_id": patient_id, "team_id": team_id, "handled": list(handled_statuses)},
    ).all()
    tasks = [TaskRow(*row[2:]) for row in rows if row[2] is not None]
    return PatientTaskState(
        team_timezone=rows[0][0],
        open_referral_since=rows[0][1],
        open=[t for t in tasks if t.status == OPEN],
        handled=[t for t in tasks if t.status != OPEN],
    )


_UPDATE_OPEN = (
    update(task_table)
    .where(_task.id == bindparam("b_id"), IS_OPEN)
    .values(
        status=bindparam("b_status"),
        tier=bindparam("b_tier"),
        team_id=bindparam("b_team_id"),
        updated_at=bindparam("b_now"),
        closed_at=bindparam("b_closed_at"),
    )
)


def update_open_tasks(session: Session, rows: list[dict[str, Any]]) -> None:
    """Close (resolve) or refresh tier and team of open tasks: keys b_id, b_status, b_tier,
    b_team_id, b_now, b_closed_at. Tasks no longer open are left alone."""
    if rows:
        session.execute(_UPDATE_OPEN, rows)


_UPSERT_SET = (
    "team_id",
    "due_at",
    "due_date",
    "time_limit_at",
    "priority",
    "role",
    "rule_id",
    "rule_ids",
    "pack_id",
    "pack_version",
    "assessment_id",
    "tier",
    "evidence",  # the pack in force's (an earlier edition's task takes it with its next firing)
    "updated_at",
)


def _on_conflict(statement: Any) -> Any:
    return statement.on_conflict_do_update(
        index_elements=[_task.patient_id, _task.kind, _task.subject],
        index_where=_OPEN_PREDICATE,
        set_={name: statement.excluded[name] for name in _UPSERT_SET},
    ).returning(_task.id, _task.kind, _task.subject)


# Built once per dialect (compiled once, then cached). SQLite: the rows go as executemany
# parameters, which SQLAlchemy sends as multi-row VALUES batches ("insertmanyvalues") with RETURNING.
# PostgreSQL: as one JSON array unpacked by jsonb_to_recordset (as the readings are, see
# repository.py): the multi-row VALUES text changed with the number of tasks and ran past psycopg's
# 4 KB statement cache, so each sync re-split it with a regex (half of the upsert's CPU, profiled
# under bench/load.py) and PostgreSQL planned it anew.
_STORED_COLUMNS = [c for c in task_table.c if not c.primary_key]
_incoming_tasks = (
    func.jsonb_to_recordset(cast(bindparam("rows", type_=String), JSONB))
    .table_valued(*(column(c.name, c.type) for c in _STORED_COLUMNS))
    .render_derived(name="incoming", with_types=True)
)
_insert_postgresql = postgresql.insert(task_table).from_select(
    [c.name for c in _STORED_COLUMNS], select(*(_incoming_tasks.c[c.name] for c in _STORED_COLUMNS))
)
_UPSERT_OPEN = {
    "postgresql": _on_conflict(_insert_postgresql),
    "sqlite": _on_conflict(sqlite.insert(task_table)),
}


def upsert_open_tasks(session: Session, rows: list[dict[str, Any]]) -> dict[tuple[str, str], int]:
    """Insert open tasks, or update the open task of the same (patient, kind, subject): one statement.

    Returns the task ids by (kind, subject).
    """
    if not rows:
        return {}
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        # pydantic-core writes datetimes and dates as ISO 8601 itself (no Python call per value)
        parameters: Any = {"rows": pydantic_core.to_json(rows).decode()}
    else:
        parameters = rows[0] if len(rows) == 1 else rows
    found = session.execute(_UPSERT_OPEN[dialect], parameters).all()
    return {(kind, subject): int(task_id) for task_id, kind, subject in found}


def add_events(session: Session, rows: list[dict[str, Any]]) -> None:
    """Record task events (one executemany)."""
    if rows:
        session.execute(_event.insert(), rows)


# --- Single tasks (the API) -------------------------------------------------------------------


def task_by_id(session: Session, task_id: int) -> CareTask | None:
    return session.get(CareTask, task_id)


def save(session: Session, task: CareTask) -> None:
    session.add(task)
    session.flush()


def events_of(session: Session, task_id: int) -> Sequence[CareTaskEvent]:
    statement = select(CareTaskEvent).where(_event.c.task_id == task_id).order_by(_event.c.at, _event.c.id)
    return session.scalars(statement).all()


def tasks_of(session: Session, patient_id: int, *, open_only: bool) -> Sequence[CareTask]:
    statement = select(CareTask).where(_task.patient_id == patient_id)
    if open_only:
        statement = statement.where(IS_OPEN)
    return session.scalars(statement.order_by(_task.priority, _task.due_at, _task.id)).all()


def open_tasks_of(session: Session, patient_id: int) -> Sequence[CareTask]:
    return tasks_of(session, patient_id, open_only=True)


# --- Scheduler runs: bulk statements over a scope of teams ------------------------------------


@dataclass(frozen=True)
class Scope:
    """The patients a run covers: some teams, and/or the patients without a team."""

    team_ids: tuple[int, ...]
    teamless: bool

    def tasks(self) -> ColumnElement[bool]:
        return self._of(_task.team_id)

    def patients(self) -> ColumnElement[bool]:
        return self._of(_patient.team_id)

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
) -> int:
    """Mark the open tasks in scope matching ``where`` and record an event for each; how many.

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
        return len(marked)
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
    statement = insert(_event).from_select(columns, rows).returning(_event.c.id)
    return len(session.execute(statement).all())


def issue_due_by_date(
    session: Session, scope: Scope, business_date: date, now: datetime, event: RunEvent
) -> int:
    """Issue every open task due on or before ``business_date`` not issued yet; how many."""
    return _mark(
        session,
        scope,
        [_task.issued_at.is_(None), _task.due_date <= business_date],
        {"issued_at": now, "updated_at": now},
        event,
        now,
    )


def issue_due_by_time(
    session: Session, scope: Scope, kinds: Sequence[str], until: datetime, now: datetime, event: RunEvent
) -> int:
    """Issue open tasks of ``kinds`` due before ``until`` not issued yet; how many."""
    return _mark(
        session,
        scope,
        [_task.issued_at.is_(None), _task.kind.in_(list(kinds)), _task.due_at < until],
        {"issued_at": now, "updated_at": now},
        event,
        now,
    )


def mark_overdue(session: Session, scope: Scope, business_date: date, now: datetime, event: RunEvent) -> int:
    """Mark open tasks due before ``business_date`` as overdue (once); how many."""
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
) -> int:
    """Escalate (once) open tasks of ``tier`` due on or before a date, unless snoozed past ``now``."""
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


def _last_contact(patient_id: Any) -> ColumnElement[datetime]:
    """The latest encounter or reading of a patient, else when the patient was registered."""
    reading = (
        select(func.max(_reading.measured_at)).where(_reading.patient_id == patient_id).scalar_subquery()
    )
    encounter = select(func.max(_encounter.at)).where(_encounter.patient_id == patient_id).scalar_subquery()
    later = case(
        (reading.is_(None), encounter),
        (encounter.is_(None), reading),
        (reading > encounter, reading),
        else_=encounter,
    )
    return func.coalesce(later, _patient.created_at, type_=_patient.created_at.type)


def clear_flags(session: Session, scope: Scope, flags: Sequence[str], now: datetime) -> int:
    """Clear active flags of patients seen (a reading or an encounter) since the flag was raised."""
    seen_again = (
        select(_patient.id)
        .where(
            _patient.id == _flag.patient_id,
            scope.patients(),
            _last_contact(_patient.id) > func.coalesce(_flag.last_contact_at, _patient.created_at),
        )
        .exists()
    )
    statement = (
        update(_flag_table)
        .where(_flag.cleared_at.is_(None), _flag.flag.in_(list(flags)), seen_again)
        .values(cleared_at=now)
        .returning(_flag.id)
    )
    return len(session.execute(statement).all())


def raise_flag(
    session: Session, scope: Scope, flag: str, contact_before: datetime, business_date: date, now: datetime
) -> list[int]:
    """Flag (once) every patient in scope whose last contact is before ``contact_before``; their ids."""
    contact = _last_contact(_patient.id).label("last_contact_at")
    candidates = select(_patient.id.label("patient_id"), contact).where(scope.patients()).subquery("contacts")
    rows = select(
        candidates.c.patient_id,
        literal(flag).label("flag"),
        literal(business_date, _flag.business_date.type).label("business_date"),
        literal(now, _flag.raised_at.type).label("raised_at"),
        candidates.c.last_contact_at,
    ).where(candidates.c.last_contact_at < literal(contact_before, _flag.raised_at.type))
    statement: Insert = (
        _insert(session)(_flag_table)
        .from_select(["patient_id", "flag", "business_date", "raised_at", "last_contact_at"], rows)
        .on_conflict_do_nothing()
        .returning(_flag.patient_id)
    )
    return [int(p) for (p,) in session.execute(statement)]


def active_flags(session: Session, patient_id: int) -> Sequence[PatientFlag]:
    statement = select(PatientFlag).where(_flag.patient_id == patient_id, _flag.cleared_at.is_(None))
    return session.scalars(statement.order_by(_flag.raised_at)).all()


# --- Claims ------------------------------------------------------------------------------------


def claim_run(
    session: Session,
    job: str,
    business_date: date,
    claimed_by: str,
    now: datetime,
    team_id: int | None = None,
) -> int | None:
    """Insert the claim of (job, business_date); its id, or None when someone else holds it."""
    statement = (
        _insert(session)(_run_table)
        .values(
            job=job,
            business_date=business_date,
            team_id=team_id,
            claimed_by=claimed_by,
            started_at=now,
            details={},
        )
        .on_conflict_do_nothing()
        .returning(_run.id)
    )
    row = session.execute(statement).first()
    return int(row[0]) if row is not None else None


def reclaim_stale_run(
    session: Session, job: str, business_date: date, claimed_by: str, now: datetime, started_before: datetime
) -> int | None:
    """Take over an unfinished claim whose lease ran out (compare-and-set); its id, or None."""
    return _take_over(session, job, business_date, claimed_by, now, _run.started_at < started_before)


def unfinished_claimant(session: Session, job: str, business_date: date) -> str | None:
    """Who holds the unfinished claim of (job, business_date), if anyone."""
    statement = select(_run.claimed_by).where(
        _run.job == job, _run.business_date == business_date, _run.finished_at.is_(None)
    )
    row = session.execute(statement).first()
    return str(row[0]) if row is not None else None


def take_over_run(
    session: Session, job: str, business_date: date, dead_claimant: str, claimed_by: str, now: datetime
) -> int | None:
    """Take over the unfinished claim of a process known to be dead (compare-and-set on its name)."""
    return _take_over(session, job, business_date, claimed_by, now, _run.claimed_by == dead_claimant)


def _take_over(
    session: Session, job: str, business_date: date, claimed_by: str, now: datetime, condition: Any
) -> int | None:
    statement = (
        update(_run_table)
        .where(_run.job == job, _run.business_date == business_date, _run.finished_at.is_(None), condition)
        .values(claimed_by=claimed_by, started_at=now, error=None)
        .returning(_run.id)
    )
    row = session.execute(statement).first()
    return int(row[0]) if row is not None else None


def finish_run(session: Session, run_id: int, now: datetime, details: dict[str, Any]) -> None:
    session.execute(update(_run_table).where(_run.id == run_id).values(finished_at=now, details=details))


def fail_run(session: Session, run_id: int, error: str) -> None:
    session.execute(update(_run_table).where(_run.id == run_id).values(error=error[:4000]))


def last_finished_date(session: Session, job: str) -> date | None:
    statement = select(func.max(_run.business_date)).where(_run.job == job, _run.finished_at.is_not(None))
    found: date | None = session.execute(statement).scalar()
    return found


def unfinished_dates(session: Session, job: str) -> list[date]:
    """Business dates of ``job`` claimed but never finished (failed, crashed or still running)."""
    statement = select(_run.business_date).where(_run.job == job, _run.finished_at.is_(None))
    return sorted(d for (d,) in session.execute(statement))


def runs(session: Session, job_prefix: str = "") -> Sequence[SchedulerRun]:
    statement = select(SchedulerRun).where(_run.job.startswith(job_prefix))
    return session.scalars(statement.order_by(_run.business_date, _run.job)).all()
