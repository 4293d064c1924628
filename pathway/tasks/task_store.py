"""The SQL of one patient's care tasks: the sync that runs when an assessment is stored, and the
single-task reads and writes of the API (record an outcome, snooze, reassign, list a patient's tasks).

Part of the repository layer: functions take a Session and never commit. The ingest hot path
(:func:`patient_task_state`, :func:`update_open_tasks`, :func:`upsert_open_tasks`, :func:`add_events`)
is at most four round trips and usually one. Both dialects: ON CONFLICT on the partial unique index
of open tasks (``index_where``).

Also the home of what the other task statements share: :data:`OPEN`, :data:`task_table` and
:func:`add_events` (the open-task predicate ``IS_OPEN`` and ``dialect_insert`` are in
:mod:`pathway.store.sql`). The scheduler's bulk statements are in :mod:`pathway.tasks.issuing_store`,
its run claims in :mod:`pathway.runs.claims`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pydantic_core
from sqlalchemy import (
    ARRAY,
    BindParameter,
    Select,
    String,
    and_,
    any_,
    bindparam,
    cast,
    column,
    func,
    literal,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.dialects.postgresql import JSONB
from sqlmodel import Session, SQLModel

from pathway.store.sql import IS_OPEN, among
from pathway.store.tables import Referral, Team
from pathway.store.work_tables import CareTask, CareTaskEvent

OPEN = "open"
_TABLES = SQLModel.metadata.tables
task_table = _TABLES[CareTask.__tablename__]
_task = task_table.c
_event = _TABLES[CareTaskEvent.__tablename__]
_team = _TABLES[Team.__tablename__].c
_referral = _TABLES[Referral.__tablename__].c
_OPEN_PREDICATE = text("status = 'open'")


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


def patient_task_states(
    session: Session, patients: Sequence[tuple[int, int | None]], handled_statuses: Sequence[str]
) -> dict[int, PatientTaskState]:
    """:func:`patient_task_state` of each of a batch of patients ((id, team id) pairs) in three
    statements for the batch (the population re-tier): the teams' time zones, the open referrals,
    the open and latest-handled tasks."""
    ids = [patient_id for patient_id, _ in patients]
    if not ids:
        return {}
    teams = sorted({team_id for _, team_id in patients if team_id is not None})
    zones: dict[int, str | None] = {}
    if teams:
        zones = {
            int(i): z
            for i, z in session.execute(
                select(_team.id, _team.timezone).where(among(session, _team.id, teams))
            )
        }
    referrals = (
        select(_referral.patient_id, func.min(_referral.created_at))
        .where(among(session, _referral.patient_id, ids), _referral.status == OPEN)
        .group_by(_referral.patient_id)
    )
    open_since = {int(patient_id): at for patient_id, at in session.execute(referrals)}
    latest_handled = (
        select(func.max(_task.id))
        .where(among(session, _task.patient_id, ids), _task.status.in_(list(handled_statuses)))
        .group_by(_task.patient_id, _task.kind, _task.subject)
    )
    tasks: dict[int, list[TaskRow]] = {patient_id: [] for patient_id in ids}
    statement = (
        select(_task.patient_id, *_TASK_COLUMNS)
        .where(among(session, _task.patient_id, ids), or_(IS_OPEN, _task.id.in_(latest_handled)))
        .order_by(_task.id)
    )
    for patient_id, *row in session.execute(statement):
        tasks[int(patient_id)].append(TaskRow(*row))
    return {
        patient_id: PatientTaskState(
            team_timezone=zones.get(team_id) if team_id is not None else None,
            open_referral_since=open_since.get(patient_id),
            open=[t for t in tasks[patient_id] if t.status == OPEN],
            handled=[t for t in tasks[patient_id] if t.status != OPEN],
        )
        for patient_id, team_id in patients
    }


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
    ).returning(_task.id, _task.patient_id, _task.kind, _task.subject)


# Built once per dialect (compiled once, then cached). SQLite: the rows go as executemany
# parameters, which SQLAlchemy sends as multi-row VALUES batches ("insertmanyvalues") with RETURNING.
# PostgreSQL: as one JSON array unpacked by jsonb_to_recordset (as the readings are, see
# record_store.py): the multi-row VALUES text changed with the number of tasks and ran past psycopg's
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
    """Insert one patient's open tasks, or update its open task of the same (kind, subject): one
    statement. Returns the task ids by (kind, subject)."""
    return {(kind, subject): task_id for (_, kind, subject), task_id in upsert_many(session, rows).items()}


def upsert_many(session: Session, rows: list[dict[str, Any]]) -> dict[tuple[int, str, str], int]:
    """:func:`upsert_open_tasks` of any number of patients (one statement); the task ids by
    (patient, kind, subject)."""
    if not rows:
        return {}
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        # pydantic-core writes datetimes and dates as ISO 8601 itself (no Python call per value)
        parameters: Any = {"rows": pydantic_core.to_json(rows).decode()}
    else:
        parameters = rows[0] if len(rows) == 1 else rows
    found = session.execute(_UPSERT_OPEN[dialect], parameters).all()
    return {(int(patient), kind, subject): int(task_id) for task_id, patient, kind, subject in found}


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


# --- Closing by hand: one winner (issue 21) -----------------------------------------------------


def change_if_open(session: Session, task_id: int, values: dict[str, Any]) -> bool:
    """Set ``values`` on the task if it is still open: a conditional ``UPDATE … WHERE status = 'open'
    RETURNING``. Of concurrent changes, one finds it open; on PostgreSQL the others wait for its
    row lock, then see it closed (read committed re-checks the condition) and change nothing."""
    statement = update(task_table).where(_task.id == task_id, IS_OPEN).values(**values).returning(_task.id)
    return session.execute(statement).first() is not None


def cancel_open_tasks(session: Session, patient_id: int, now: datetime, note: str) -> list[int]:
    """Cancel every open task of the patient (conditionally, as above); the ids cancelled."""
    statement = (
        update(task_table)
        .where(_task.patient_id == patient_id, IS_OPEN)
        .values(status="cancelled", note=note, closed_at=now, updated_at=now)
        .returning(_task.id)
    )
    return sorted(int(task_id) for (task_id,) in session.execute(statement).all())


def close_active_referrals(
    session: Session, patient_id: int, active: Sequence[str], now: datetime, outcome: str
) -> int:
    """Close the patient's active referrals (management ended); how many."""
    statement = (
        update(_TABLES[Referral.__tablename__])
        .where(_referral.patient_id == patient_id, _referral.status.in_(list(active)))
        .values(status="closed", outcome=outcome, updated_at=now)
        .returning(_referral.id)
    )
    return len(session.execute(statement).all())


def team_timezone(session: Session, team_id: int | None) -> str | None:
    if team_id is None:
        return None
    found = session.execute(select(_team.timezone).where(_team.id == team_id)).scalar_one_or_none()
    return str(found) if found is not None else None
