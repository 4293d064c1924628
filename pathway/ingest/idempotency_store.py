"""SQL of the answers kept under an ``Idempotency-Key``: read back for a replay, kept once.

Part of the repository layer: functions take a Session and never commit: the request owns the
transaction (:mod:`pathway.ingest.idempotency` is its use-case).
"""

from __future__ import annotations

from typing import Any, NamedTuple

from sqlalchemy import bindparam, insert
from sqlalchemy import select as select_columns
from sqlmodel import Session, SQLModel

from pathway.store.work_tables import IdempotentRequest

_TABLES = SQLModel.metadata.tables


class StoredAnswer(NamedTuple):
    """The answer kept for an ``Idempotency-Key``, with the fingerprint of the request it answered."""

    request_sha256: str
    status_code: int
    response: dict[str, Any]


_idempotent = _TABLES[IdempotentRequest.__tablename__]
_IDEMPOTENT_ANSWER = select_columns(
    _idempotent.c.request_sha256, _idempotent.c.status_code, _idempotent.c.response
).where(
    _idempotent.c.api_key_id == bindparam("api_key_id"),
    _idempotent.c.scope == bindparam("scope"),
    _idempotent.c.key == bindparam("key"),
)
_INSERT_IDEMPOTENT_ANSWER = insert(_idempotent)


def idempotent_answer(session: Session, api_key_id: int, scope: str, key: str) -> StoredAnswer | None:
    """The answer this API key was given under ``key`` in ``scope`` (another key's is not its own)."""
    parameters = {"api_key_id": api_key_id, "scope": scope, "key": key}
    row = session.execute(_IDEMPOTENT_ANSWER, parameters).first()
    return StoredAnswer(*row) if row is not None else None


def insert_idempotent_answer(session: Session, values: dict[str, Any]) -> None:
    """Keep an answer; a concurrent request of the same API key that kept one for the same key first
    makes this fail (the unique (api_key_id, scope, key) constraint), so two different answers are
    never both acknowledged."""
    session.execute(_INSERT_IDEMPOTENT_ANSWER, values)
