"""When the database is busy the API answers 503 with Retry-After, quickly, instead of hanging:
a request finding every pooled connection in use waits only the pool timeout; a write waiting on a
patient's row lock only the lock timeout; a statement runs at most the statement timeout. Reads take
no patient lock: a write holding one does not hold up any GET (PostgreSQL)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from datetime import timedelta
from typing import Any, TypeVar

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import text
from sqlmodel import Session

from api.main import create_app
from pathway.access.permissions import Role
from pathway.patients import registration
from pathway.settings import Settings
from pathway.store.db import migrate
from rules.evaluation import Evaluator
from tests.api.conftest import SettableClock, new_key, register_patient
from tests.builders import AS_OF

pytestmark = pytest.mark.postgres
T = TypeVar("T")


def _app(url: str, evaluator: Evaluator, clock: SettableClock, **settings: Any) -> FastAPI:
    migrate(url)
    return create_app(Settings(database_url=url, **settings), clock=clock, evaluator=evaluator)


@pytest.fixture
def busy_app(postgres_url: str, evaluator: Evaluator) -> Iterator[tuple[FastAPI, TestClient, SettableClock]]:
    clock = SettableClock(AS_OF)
    app = _app(
        postgres_url,
        evaluator,
        clock,
        database_lock_timeout_seconds=0.5,
        database_statement_timeout_seconds=1,
    )
    headers = {"Authorization": f"Bearer {new_key(app, Role.ADMIN)}"}
    with TestClient(app, headers=headers) as client:
        yield app, client, clock
    app.state.engine.dispose()


def _bp(systolic: int, minutes_ago: int) -> list[dict[str, Any]]:
    at = AS_OF - timedelta(minutes=minutes_ago)
    return [
        {
            "kind": "bp",
            "systolic": systolic,
            "diastolic": 90,
            "source": "clinic",
            "measured_at": at.isoformat(),
        }
    ]


def _within(seconds: float, call: Callable[[], T], release: Callable[[], None]) -> T:
    """``call()``'s result if it comes within ``seconds``; else ``release()`` (so the test ends) and fail."""
    with ThreadPoolExecutor(1) as pool:
        future = pool.submit(call)
        try:
            return future.result(timeout=seconds)
        except FutureTimeout:
            release()
            future.result(timeout=30)
            pytest.fail(f"no answer within {seconds} s: the request waited on the database")


def _assert_busy(response: Any) -> None:
    assert response.status_code == 503, response.text
    assert response.json()["code"] == "database-busy"
    assert int(response.headers["Retry-After"]) >= 1


def test_a_request_finding_the_pool_used_up_gets_503_with_retry_after_quickly(
    postgres_url: str, evaluator: Evaluator
) -> None:
    clock = SettableClock(AS_OF)
    app = _app(postgres_url, evaluator, clock, database_pool_size=1, database_pool_timeout_seconds=0.3)
    headers = {"Authorization": f"Bearer {new_key(app, Role.ADMIN)}"}
    try:
        with TestClient(app, headers=headers) as client:
            patient_id = register_patient(client)
            held = app.state.engine.connect()  # the pool's only connection, in use elsewhere
            try:
                started = time.monotonic()
                answer = _within(10, lambda: client.get(f"/v1/patients/{patient_id}"), held.close)
                assert time.monotonic() - started < 3
                _assert_busy(answer)
            finally:
                held.close()
            assert client.get(f"/v1/patients/{patient_id}").status_code == 200  # free again: served
    finally:
        app.state.engine.dispose()


def test_reads_do_not_wait_for_a_patient_lock_that_a_write_holds(
    busy_app: tuple[FastAPI, TestClient, SettableClock],
) -> None:
    app, client, clock = busy_app
    patient_id = register_patient(client)
    other_id = register_patient(client, "p2")
    stored = {}
    for patient in (patient_id, other_id):
        posted = client.post(f"/v1/patients/{patient}/readings", json=_bp(150, 30))
        assert posted.status_code == 201, posted.text
        stored[patient] = posted.json()["assessment"]["id"]
    clock.at = AS_OF + timedelta(days=1)  # every stored assessment is now stale: a read renews it
    writer = Session(app.state.engine)
    registration.require_patient(writer, patient_id, for_update=True)  # a write in progress holds the lock
    try:
        for path in (
            f"/v1/patients/{patient_id}",
            f"/v1/patients/{patient_id}/assessment",
            f"/v1/patients/{patient_id}/care-plan",
            f"/v1/patients/{patient_id}/assessments",
            f"/v1/patients/{patient_id}/tasks",
            f"/v1/patients/{other_id}/assessment",
        ):
            answer = _within(5, lambda path=path: client.get(path), writer.rollback)  # type: ignore[misc]
            assert answer.status_code == 200, (path, answer.text)
        # The read answered with what is stored: the write holding the lock renews it as it commits.
        assert client.get(f"/v1/patients/{patient_id}/assessment").json()["id"] == stored[patient_id]
    finally:
        writer.rollback()
        writer.close()
    renewed = client.get(f"/v1/patients/{patient_id}/assessment").json()  # the lock is free: renewed
    assert renewed["id"] != stored[patient_id]
    assert (
        renewed["evaluated_at"]
        > client.get(f"/v1/patients/{other_id}/assessments").json()[-1]["evaluated_at"]
    )


def test_a_write_waiting_on_a_held_patient_lock_gets_503_with_retry_after(
    busy_app: tuple[FastAPI, TestClient, SettableClock],
) -> None:
    app, client, _clock = busy_app
    patient_id = register_patient(client)
    writer = Session(app.state.engine)
    registration.require_patient(writer, patient_id, for_update=True)
    try:
        started = time.monotonic()
        post = lambda: client.post(f"/v1/patients/{patient_id}/readings", json=_bp(150, 30))  # noqa: E731
        answer = _within(10, post, writer.rollback)
        assert time.monotonic() - started < 5
        _assert_busy(answer)
    finally:
        writer.rollback()
        writer.close()
    assert client.post(f"/v1/patients/{patient_id}/readings", json=_bp(150, 30)).status_code == 201


def test_a_statement_running_past_the_statement_timeout_gets_503_with_retry_after(
    busy_app: tuple[FastAPI, TestClient, SettableClock],
) -> None:
    app, client, _clock = busy_app

    def slow() -> None:
        with Session(app.state.engine) as session:
            session.execute(text("SELECT pg_sleep(5)"))

    app.add_api_route("/test/slow", slow)
    started = time.monotonic()
    answer = _within(10, lambda: client.get("/test/slow"), lambda: None)
    assert time.monotonic() - started < 4
    _assert_busy(answer)
