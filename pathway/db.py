"""The database engine and sessions, built from Settings (no engine at import time).

SQLite is the embedded default (foreign keys on, WAL journal, a busy timeout); PostgreSQL is the
production store, reached through psycopg 3. Schema changes go through Alembic only
(:func:`migrate`); ``create_all`` is never used outside unit tests.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, event

from pathway.settings import DEFAULT_POOL_SIZE

MIGRATIONS = Path(__file__).parent / "migrations"


def database_url(url: str) -> str:
    """SQLAlchemy URL with the psycopg 3 driver for PostgreSQL."""
    if url.startswith("postgresql://"):
        return "postgresql+psycopg://" + url.removeprefix("postgresql://")
    return url


def make_engine(url: str, pool_size: int = DEFAULT_POOL_SIZE) -> Engine:
    """No ping before each checkout (it costs a round trip a request): when the database has gone
    away, the first statement fails (a 503 with Retry-After), SQLAlchemy sees the disconnect and
    drops every pooled connection, and the next request connects afresh.

    PostgreSQL keeps ``pool_size`` connections open. SQLAlchemy's default of 5 was below a server
    process's concurrent requests, so under load connections beyond it were opened and closed all
    the time: a backend forked, its catalog caches warmed and its statements prepared again, again
    and again (bench/load.py: about 90 backends in 15 s, a third of the machine's CPU in PostgreSQL).
    """
    if url.startswith(("postgresql://", "postgresql+psycopg://")):
        return create_engine(database_url(url), pool_size=pool_size, max_overflow=pool_size // 2)
    engine = create_engine(database_url(url))
    event.listen(engine, "connect", _sqlite_pragmas)
    return engine


def _sqlite_pragmas(connection: Any, _record: Any) -> None:
    cursor = connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.close()


def alembic_config(url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", database_url(url).replace("%", "%%"))
    return config


def migrate(url: str, revision: str = "head") -> None:
    """Bring the database at ``url`` to ``revision`` (idempotent)."""
    command.upgrade(alembic_config(url), revision)
