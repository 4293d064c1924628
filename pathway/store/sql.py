"""SQL pieces that several concepts' store modules share.

- :func:`dialect_insert`: the ``insert`` with ON CONFLICT of the session's dialect (the run claims of
  :mod:`pathway.runs.claims`, the contact flags of :mod:`pathway.tasks.flag_store`).
- :func:`among`: ``column IN (ids)`` of a batch's ids, one array parameter on PostgreSQL.
- :data:`IS_OPEN`: the open-task predicate (the task statements of :mod:`pathway.tasks.task_store`
  and :mod:`pathway.tasks.issuing_store`, the team views of :mod:`pathway.teams.team_store`).

Part of the repository layer: nothing here runs a statement.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Integer, any_, bindparam, literal_column
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session, SQLModel

from pathway.store.work_tables import CareTask

_task = SQLModel.metadata.tables[CareTask.__tablename__].c
# The open-task predicate as a literal (not a bound parameter), so PostgreSQL matches the partial
# indexes (``WHERE status = 'open'``) in generic plans of prepared statements too.
IS_OPEN = _task.status == literal_column("'open'")


def dialect_insert(session: Session) -> Any:
    """The ``insert`` of the session's dialect (PostgreSQL or SQLite), the one with ON CONFLICT."""
    return postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert


def among(session: Session, column: Any, ids: Sequence[int]) -> Any:
    """``column IN (ids)`` for a batch's ids; on PostgreSQL ``column = ANY(:ids)``, one array
    parameter whatever their number: the statement's text stays the same, so psycopg does not split
    a long one anew (its 4 KB cache) and PostgreSQL does not parse 500 placeholders."""
    if session.get_bind().dialect.name == "postgresql":
        return column == any_(bindparam(None, list(ids), type_=postgresql.ARRAY(Integer), unique=True))
    return column.in_(list(ids))
