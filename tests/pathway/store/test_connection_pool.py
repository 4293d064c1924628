"""A server process keeps its PostgreSQL connections open: requests beyond SQLAlchemy's default
pool of 5 do not open (and close) a connection each."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import text

from pathway.settings import Settings
from pathway.store.db import api_engine, make_engine


@pytest.mark.postgres
def test_twelve_concurrent_sessions_reuse_twelve_connections(postgres_url: str) -> None:
    engine = make_engine(postgres_url, pool_size=12)
    backends: list[int] = []

    def one_request(_: int) -> int:
        with engine.connect() as connection:
            backend = int(connection.execute(text("SELECT pg_backend_pid(), pg_sleep(0.05)")).scalar_one())
            return backend

    try:
        with ThreadPoolExecutor(12) as pool:
            for _round in range(3):
                backends.extend(pool.map(one_request, range(12)))
        assert len(set(backends)) <= 12  # a pool of 5 opens 7 fresh ones each round
        assert engine.pool.checkedin() == len(set(backends))  # type: ignore[attr-defined]
    finally:
        engine.dispose()


def test_the_pool_size_is_a_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATHWAY_DATABASE_POOL_SIZE", "40")
    assert Settings().database_pool_size == 40
    monkeypatch.setenv("PATHWAY_DATABASE_POOL_SIZE", "0")
    with pytest.raises(ValueError, match="database_pool_size"):
        Settings()


@pytest.mark.postgres
def test_the_api_engine_bounds_its_pool_wait_locks_and_statements_by_the_settings(postgres_url: str) -> None:
    settings = Settings(
        database_url=postgres_url,
        database_pool_timeout_seconds=1.5,
        database_lock_timeout_seconds=2.5,
        database_statement_timeout_seconds=40,
    )
    engine = api_engine(settings)
    try:
        assert engine.pool.timeout() == 1.5  # type: ignore[attr-defined]
        with engine.connect() as connection:
            assert connection.execute(text("SHOW lock_timeout")).scalar_one() == "2500ms"
            assert connection.execute(text("SHOW statement_timeout")).scalar_one() == "40s"
    finally:
        engine.dispose()
    unbounded = make_engine(postgres_url)  # the scheduler's and the CLI's: PostgreSQL's defaults
    try:
        with unbounded.connect() as connection:
            assert connection.execute(text("SHOW lock_timeout")).scalar_one() == "0"
    finally:
        unbounded.dispose()
