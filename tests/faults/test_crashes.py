"""Fault tests: a server killed in the middle of a batch, and PostgreSQL going away for a while.

Run on their own with ``pytest -m faults``; they are part of the normal run too.
"""

from __future__ import annotations

import contextlib
import threading
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlmodel import Session

from pathway.clinical.clock import CLINIC_TZ
from pathway.patients import patient_store, registration
from pathway.patients.history import history_of
from pathway.store.db import make_engine
from pathway.store.tables import Reading
from rules.evaluation import Evaluator
from tests.conftest import DIALECTS, database
from tests.faults.server import Server, admin_key, throwaway_postgres

pytestmark = pytest.mark.faults

PATIENT = {
    "source_system": "ehr",
    "external_id": "crash-1",
    "sex": "male",
    "birth_date": "1958-05-01",
    "conditions": ["hypertension", "diabetes"],
}


def _batch(size: int) -> list[dict[str, Any]]:
    start = datetime.now(CLINIC_TZ).replace(microsecond=0) - timedelta(hours=1)
    return [
        {
            "kind": "bp",
            "systolic": 120 + i % 70,
            "diastolic": 70 + i % 45,
            "source": "wearable",
            "device_id": "band-7",
            "source_reading_id": f"band-7-{i}",
            "measured_at": (start - timedelta(minutes=7 * i)).isoformat(),
        }
        for i in range(size)
    ]


@pytest.mark.parametrize("dialect", DIALECTS)
def test_a_server_killed_mid_batch_stores_each_reading_once_after_the_gateway_retries(
    request: pytest.FixtureRequest, dialect: str, tmp_path: Path, evaluator: Evaluator
) -> None:
    url = database(request, dialect)
    server = Server(url, admin_key(url), tmp_path / "serve.log")
    server.start()
    try:
        status, _, patient = server.request("POST", "/v1/patients", PATIENT)
        assert status == 201
        path = f"/v1/patients/{patient['id']}/readings?source_system=band"
        batch, retry = _batch(1000), {"Idempotency-Key": "band-7-upload-0001"}
        for delay in (0.02, 0.1, 0.25):  # three crashes at different points of the batch
            sender = threading.Thread(target=_post_ignoring_errors, args=(server, path, batch, retry))
            sender.start()
            time.sleep(delay)
            server.kill()
            sender.join(timeout=30)
            server.start()
        status, _, answer = server.request("POST", path, batch, retry)  # the gateway's retry
        assert status == 201
        assert answer["created"] + answer["duplicate"] == 1000
        assert answer["rejected"] == 0
    finally:
        server.stop()

    engine = make_engine(url)
    with Session(engine) as session:
        stored = session.execute(select(func.count(), func.count(Reading.source_reading_id.distinct()))).one()  # type: ignore[union-attr]
        assert tuple(stored) == (1000, 1000)  # every reading once: none lost, none twice
        record = patient_store.latest_assessment(session, patient["id"])
        assert record is not None
        stored_patient = registration.require_patient(session, patient["id"])
        fresh = evaluator.assess(history_of(session, stored_patient), record.as_of)
        assert (record.tier, record.referral_urgency) == (
            fresh.tier.value,
            fresh.referral.urgency.value if fresh.referral else None,
        )
    engine.dispose()


def _post_ignoring_errors(server: Server, path: str, body: Any, headers: dict[str, str]) -> None:
    with contextlib.suppress(OSError):  # the server dies under us: that is the point
        server.request("POST", path, body, headers, timeout=20)


def test_postgresql_away_for_a_while_gives_503_then_the_service_recovers_by_itself(tmp_path: Path) -> None:
    with throwaway_postgres() as (url, cluster):
        server = Server(url, admin_key(url), tmp_path / "serve.log")
        server.start()
        try:
            status, _, patient = server.request("POST", "/v1/patients", PATIENT)
            assert status == 201
            read = f"/v1/patients/{patient['id']}"
            cluster.stop(mode="immediate")
            for _ in range(3):
                status, headers, body = server.request("GET", read)
                assert status == 503
                assert body["code"] == "database-unavailable"
                assert int(headers["retry-after"]) > 0
            cluster.start()
            deadline = time.monotonic() + 30
            while (status := server.request("GET", read)[0]) != 200:
                assert status == 503  # while it reconnects: never a 500
                assert time.monotonic() < deadline, "the service did not recover"
                time.sleep(0.2)
            reading = [{"kind": "bp", "systolic": 128, "diastolic": 82, "source": "home",
                        "measured_at": datetime.now(CLINIC_TZ).isoformat()}]  # fmt: skip
            assert server.request("POST", f"{read}/readings", reading)[0] == 201
        finally:
            server.stop()
