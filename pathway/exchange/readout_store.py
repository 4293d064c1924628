"""The SQL of the read-out: one keyset page of a patient's readings in force, or of a team's tasks.

Both in a stable order (the instant, then the id), resumed after the last row of the previous page.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import and_, or_
from sqlmodel import Session, col, select

from pathway.store.rows import IN_FORCE
from pathway.store.tables import Reading
from pathway.store.work_tables import CareTask

Bound = tuple[str, datetime]
"""A comparison (``ge``, ``gt``, ``le``, ``lt``) and the instant it compares with."""

_OPERATORS = {
    "ge": lambda column, at: column >= at,
    "gt": lambda column, at: column > at,
    "le": lambda column, at: column <= at,
    "lt": lambda column, at: column < at,
}


def readings_page(
    session: Session,
    patient_id: int,
    kinds: Sequence[str] | None,
    bounds: Sequence[Bound],
    after: tuple[datetime, int] | None,
    limit: int,
) -> Sequence[Reading]:
    """Up to ``limit`` readings in force of the patient, by measured_at then id, after ``after``."""
    measured = col(Reading.measured_at)
    statement = select(Reading).where(Reading.patient_id == patient_id, IN_FORCE)
    if kinds is not None:
        statement = statement.where(col(Reading.kind).in_(kinds))
    for operator, at in bounds:
        statement = statement.where(_OPERATORS[operator](measured, at))
    if after is not None:
        at, last_id = after
        statement = statement.where(or_(measured > at, and_(measured == at, col(Reading.id) > last_id)))
    return session.exec(statement.order_by(measured, col(Reading.id)).limit(limit)).all()


def team_tasks_page(
    session: Session,
    team_id: int,
    statuses: Sequence[str] | None,
    after: tuple[datetime, int] | None,
    limit: int,
) -> Sequence[CareTask]:
    """Up to ``limit`` of the team's tasks (of ``statuses``), by due time then id, after ``after``."""
    due = col(CareTask.due_at)
    statement = select(CareTask).where(CareTask.team_id == team_id)
    if statuses is not None:
        statement = statement.where(col(CareTask.status).in_(statuses))
    if after is not None:
        at, last_id = after
        statement = statement.where(or_(due > at, and_(due == at, col(CareTask.id) > last_id)))
    return session.exec(statement.order_by(due, col(CareTask.id)).limit(limit)).all()
