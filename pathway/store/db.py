"""The database engine and sessions, built from Settings (no engine at import time).

SQLite is the embedded default (foreign keys on, WAL journal, a busy timeout); PostgreSQL is the
production store, reached through psycopg 3. Schema changes go through Alembic only
(:func:`migrate`); ``create_all`` is never used outside unit tests.
"""

from __future__ import annotations

import fcntl
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, NullPool, create_engine, event, make_url, text
from sqlalchemy.exc import ArgumentError
from sqlmodel import Session

from pathway.clinical.errors import PathwayError
from pathway.settings import DEFAULT_POOL_SIZE, Settings

MIGRATIONS = Path(__file__).parent / "migrations"


def database_url(url: str) -> str:
    """SQLAlchemy URL with the psycopg 3 driver for PostgreSQL."""
    if url.startswith("postgresql://"):
        return "postgresql+psycopg://" + url.removeprefix("postgresql://")
    return url


def make_engine(
    url: str,
    pool_size: int = DEFAULT_POOL_SIZE,
    *,
    pool_timeout: float = 30,
    lock_timeout: float = 0,
    statement_timeout: float = 0,
) -> Engine:
    """No ping before each checkout (it costs a round trip a request): when the database has gone
    away, the first statement fails (a 503 with Retry-After), SQLAlchemy sees the disconnect and
    drops every pooled connection, and the next request connects afresh.

    PostgreSQL keeps ``pool_size`` connections open. SQLAlchemy's default of 5 was below a server
    process's concurrent requests, so under load connections beyond it were opened and closed all
    the time: a backend forked, its catalog caches warmed and its statements prepared again, again
    and again (bench/load.py: about 90 backends in 15 s, a third of the machine's CPU in PostgreSQL).

    PostgreSQL sessions run in UTC (``TimeZone``): every stored instant is read back in UTC anyway
    (``UTCDateTime``), and psycopg then returns ``timezone.utc`` datetimes on its fast path instead of
    a ``ZoneInfo`` per value (1,000 instants fetched: 1.86 -> 1.28 ms; each conversion to UTC 0.65 ->
    0.20 µs). No statement derives a date from an instant in SQL, so nothing else depends on it.

    The API server's engine is bounded (:func:`api_engine`): a checkout waits at most
    ``pool_timeout`` seconds for a connection (SQLAlchemy's ``TimeoutError``), and its sessions
    cancel a statement waiting ``lock_timeout`` seconds for a lock or running ``statement_timeout``
    seconds (0: no limit; SQLSTATE 55P03 and 57014). The API answers each with 503 and Retry-After.
    Other hosts (the scheduler, the CLI) keep PostgreSQL's defaults: a daily run waits its turn.
    """
    if url.startswith(("postgresql://", "postgresql+psycopg://")):
        options = ["-c TimeZone=UTC"]
        if lock_timeout > 0:
            options.append(f"-c lock_timeout={_milliseconds(lock_timeout)}")
        if statement_timeout > 0:
            options.append(f"-c statement_timeout={_milliseconds(statement_timeout)}")
        return create_engine(
            database_url(url),
            pool_size=pool_size,
            max_overflow=pool_size // 2,
            pool_timeout=pool_timeout,
            connect_args={"options": " ".join(options)},
        )
    engine = create_engine(database_url(url))
    event.listen(engine, "connect", _sqlite_pragmas)
    return engine


def api_engine(settings: Settings) -> Engine:
    """The API server's engine: its pool and its PostgreSQL sessions bounded by the settings."""
    return make_engine(
        settings.database_url,
        settings.database_pool_size,
        pool_timeout=settings.database_pool_timeout_seconds,
        lock_timeout=settings.database_lock_timeout_seconds,
        statement_timeout=settings.database_statement_timeout_seconds,
    )


def _milliseconds(seconds: float) -> int:
    return max(1, round(seconds * 1000))


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


# The key of the PostgreSQL advisory lock that migrations take (any fixed 64-bit number would do).
MIGRATION_LOCK_KEY = zlib.crc32(b"pathway schema migrations")


def migrate(url: str, revision: str = "head") -> None:
    """Bring the database at ``url`` to ``revision`` (idempotent).

    ``pathway serve``, ``pathway scheduler`` and other hosts may start at the same moment on an
    empty database: one process at a time migrates (a PostgreSQL advisory lock; on SQLite a lock on
    a file beside the database), so the others wait and then find nothing left to do, instead of
    failing on "table already exists".
    """
    with _migration_lock(url):
        command.upgrade(alembic_config(url), revision)


@contextmanager
def _migration_lock(url: str) -> Iterator[None]:
    target = make_url(database_url(url))
    if target.get_backend_name() == "postgresql":
        engine = create_engine(target, poolclass=NullPool)
        try:
            with engine.connect() as connection:
                connection.execute(text("SELECT pg_advisory_lock(:key)"), {"key": MIGRATION_LOCK_KEY})
                connection.commit()
                try:
                    yield
                finally:
                    connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": MIGRATION_LOCK_KEY})
                    connection.commit()
        finally:
            engine.dispose()
        return
    if not target.database or target.database == ":memory:":
        yield  # a private in-memory database: no other process can see it
        return
    with open(f"{target.database}.migrate-lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


class DatabaseUnreachable(PathwayError):
    """The store cannot be opened or migrated at start-up (no server there, no such file, a schema
    this version does not know)."""

    code = "database-unreachable"
    status = 503


def shown_url(url: str) -> str:
    """The database URL as it may be printed: without its password."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return "(an unreadable URL)"


def unreachable(url: str, error: Exception) -> DatabaseUnreachable:
    """One line saying which store could not be opened and why (the driver's first line)."""
    reason: BaseException = getattr(error, "orig", None) or error
    if isinstance(reason, OSError) and reason.strerror:
        text = f"{reason.strerror}" + (f": {reason.filename}" if reason.filename else "")
    else:
        lines = str(reason).strip().splitlines()
        text = lines[0].strip() if lines else type(reason).__name__
    return DatabaseUnreachable(f"cannot open the database {shown_url(url)}: {text}", "PATHWAY_DATABASE_URL")


def add(session: Session, row: Any) -> None:
    session.add(row)
    session.flush()
