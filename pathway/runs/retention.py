"""The daily retention run's statements: delete, in short batches, rows the engine never reads again.

- ``idempotent_request``: the answer kept for each ``Idempotency-Key`` (the whole batch answer,
  ~3 KB a row, as many rows as keyed batches), deleted ``PATHWAY_IDEMPOTENCY_RETENTION_DAYS`` after
  it was given (30 by default; 0 keeps them forever). A key sent again after that is processed as
  a new request: its readings are stored once anyway and come back ``duplicate``.
- ``audit_event``: a legal record, kept forever unless ``PATHWAY_AUDIT_RETENTION_DAYS`` is set.

No index on the time columns is needed: rows are written in id order, so the old ones come first
in the primary key. Each batch is one statement in its own transaction (short locks, no long
transaction), over the next ``batch`` rows of the primary key after the previous batch: it deletes
those written before the cut-off and the run stops at the first batch holding a newer row (a row
written out of order just before the cut-off, after a newer one, goes with a later run). On
PostgreSQL the batch's ids are one array (``id = ANY(ARRAY(SELECT id … ORDER BY id LIMIT n))``):
with ``IN (SELECT …)`` the planner hash-joined a sequential scan of the whole table to the batch
(500,000 answers: 141 ms for 5,000 rows, 77 ms for a last batch of 17; 16 and 9 ms as an array).
SQLite looks the batch up by rowid either way.

Part of the repository layer (functions take a Session or an Engine; the scheduler job in
:mod:`scheduler.jobs` claims the run and records what was deleted).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Column, Engine, Integer, Table, any_, bindparam, delete, func, select
from sqlalchemy.sql.dml import ReturningDelete
from sqlmodel import Session, SQLModel

from pathway.settings import DEFAULT_IDEMPOTENCY_RETENTION_DAYS, KEEP_FOREVER
from pathway.store.work_tables import AuditEvent, IdempotentRequest

BATCH = 5_000  # rows a statement (and a transaction) deletes at most

_TABLES = SQLModel.metadata.tables
_idempotent = _TABLES[IdempotentRequest.__tablename__]
_audit = _TABLES[AuditEvent.__tablename__]
# Each purged table, with the column that says when a row was written.
WRITTEN_AT: dict[str, tuple[Table, Column[Any]]] = {
    _idempotent.name: (_idempotent, _idempotent.c.created_at),
    _audit.name: (_audit, _audit.c.at),
}


@dataclass(frozen=True)
class Retention:
    """How many days each kind of row is kept (0: forever), and the rows a batch deletes at most."""

    idempotency_days: int = DEFAULT_IDEMPOTENCY_RETENTION_DAYS
    audit_days: int = KEEP_FOREVER
    batch: int = BATCH

    def cutoffs(self, now: datetime) -> dict[str, datetime | None]:
        """Each purged table's cut-off at ``now`` (rows written before it go), or None (kept forever)."""
        days = {_idempotent.name: self.idempotency_days, _audit.name: self.audit_days}
        return {name: now - timedelta(days=n) if n != KEEP_FOREVER else None for name, n in days.items()}


def _batch_delete(table: Table, written_at: Column[Any], dialect: str) -> ReturningDelete[Any]:
    window = select(table.c.id).where(table.c.id > bindparam("after")).order_by(table.c.id)
    window = window.limit(bindparam("batch", type_=Integer))
    if dialect == "postgresql":
        in_window = table.c.id == any_(func.array(window.scalar_subquery()))
    else:
        in_window = table.c.id.in_(window)
    return delete(table).where(in_window, written_at < bindparam("before")).returning(table.c.id)


# Built once per table and dialect (compiled once, then cached).
_DELETE_BATCH = {
    (name, dialect): _batch_delete(table, column, dialect)
    for name, (table, column) in WRITTEN_AT.items()
    for dialect in ("postgresql", "sqlite")
}


def delete_batch(session: Session, table: str, before: datetime, after: int, batch: int) -> Sequence[int]:
    """Of the ``batch`` rows of ``table`` following id ``after``, delete those written before
    ``before``; their ids."""
    statement = _DELETE_BATCH[table, session.get_bind().dialect.name]
    found = session.execute(statement, {"after": after, "batch": batch, "before": before}).scalars()
    return [int(i) for i in found]


def purge(engine: Engine, table: str, before: datetime, batch: int = BATCH) -> int:
    """Delete the rows of ``table`` written before ``before``, oldest first, a batch per committed
    transaction, up to the first batch holding a newer row; how many."""
    deleted, after = 0, 0
    while True:
        with Session(engine) as session:
            ids = delete_batch(session, table, before, after, batch)
            session.commit()
        deleted += len(ids)
        if len(ids) < batch:  # the batch held a newer row (or was the end of the table): done
            return deleted
        after = max(ids)


def purge_expired(engine: Engine, retention: Retention, now: datetime) -> dict[str, Any]:
    """Every table past its retention at ``now``: how many rows went, and each cut-off (None: kept)."""
    details: dict[str, Any] = {}
    for table, before in retention.cutoffs(now).items():
        details[table] = purge(engine, table, before, retention.batch) if before is not None else 0
        details[f"{table}_before"] = before.isoformat() if before is not None else None
    return details
