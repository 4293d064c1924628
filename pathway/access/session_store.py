"""Workbench sessions and the servers' shared secret: every query on ``workbench_session`` and
``server_secret``.

A session row holds the keyed digest of the random token in the browser's cookie, never the token.
The shared secret is generated once, by whichever server asks first (``INSERT … ON CONFLICT DO
NOTHING``, then read back: every process and machine on the database gets the same one).
"""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta
from typing import NamedTuple

from sqlalchemy import Engine, bindparam, delete, insert, or_, update
from sqlalchemy import select as select_columns
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session, SQLModel

from pathway.store.work_tables import ApiKey, ServerSecret, WorkbenchSession

_TABLES = SQLModel.metadata.tables
_session = _TABLES[WorkbenchSession.__tablename__]
_key = _TABLES[ApiKey.__tablename__]
_secret = _TABLES[ServerSecret.__tablename__]


def shared_secret(engine: Engine, name: str, now: datetime) -> str:
    """The secret called ``name``, generated (256 random bits) and stored on first use, in a short
    transaction of its own."""
    read = select_columns(_secret.c.value).where(_secret.c.name == name)
    with engine.begin() as connection:
        found = connection.execute(read).scalar_one_or_none()
        if found is not None:
            return str(found)
        dialect_insert = postgresql.insert if engine.dialect.name == "postgresql" else sqlite.insert
        values = {"name": name, "value": secrets.token_urlsafe(32), "created_at": now}
        connection.execute(dialect_insert(_secret).values(**values).on_conflict_do_nothing())
        return str(connection.execute(read).scalar_one())


class OpenSession(NamedTuple):
    """A session not ended, of an active key: when it was opened and ends, and the key's identity."""

    id: int
    created_at: datetime
    expires_at: datetime
    api_key_id: int
    prefix: str
    role: str
    team_id: int | None
    name: str
    source_system: str


_OPEN_SESSION = (
    select_columns(
        _session.c.id,
        _session.c.created_at,
        _session.c.expires_at,
        _key.c.id,
        _key.c.prefix,
        _key.c.role,
        _key.c.team_id,
        _key.c.name,
        _key.c.source_system,
    )
    .join(_key, _key.c.id == _session.c.api_key_id)
    .where(
        _session.c.token_digest == bindparam("digest"),
        _session.c.ended_at.is_(None),
        _key.c.revoked_at.is_(None),
    )
)


def open_session(session: Session, digest: str) -> OpenSession | None:
    """The session with this token digest, unless it was ended or its key revoked."""
    row = session.execute(_OPEN_SESSION, {"digest": digest}).first()
    return OpenSession(*row) if row is not None else None


def add_session(session: Session, digest: str, api_key_id: int, now: datetime, expires_at: datetime) -> None:
    values = {
        "token_digest": digest,
        "api_key_id": api_key_id,
        "created_at": now,
        "expires_at": expires_at,
    }
    session.execute(insert(_session), values)


def end_session(session: Session, digest: str, now: datetime) -> None:
    """Sign out: the session no longer opens any page."""
    statement = update(_session).where(_session.c.token_digest == digest, _session.c.ended_at.is_(None))
    session.execute(statement.values(ended_at=now))


def end_sessions_of_key(session: Session, api_key_id: int, now: datetime) -> None:
    """The key was revoked: every browser signed in with it is signed out."""
    statement = update(_session).where(_session.c.api_key_id == api_key_id, _session.c.ended_at.is_(None))
    session.execute(statement.values(ended_at=now))


def delete_expired(session: Session, now: datetime, longest: timedelta) -> None:
    """Forget sessions past their expiry, or opened longer ago than the longest a session may last."""
    statement = delete(_session).where(
        or_(_session.c.expires_at < now, _session.c.created_at < now - longest)
    )
    session.execute(statement)
