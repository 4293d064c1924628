"""Oversized bodies and batches are refused early (413); a burst from one key is rate-limited (429)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from api.main import create_app
from pathway.access.permissions import Role
from pathway.settings import Settings
from pathway.store.db import migrate
from rules.evaluation import Evaluator
from tests.api.conftest import SettableClock, new_key, register_patient
from tests.builders import AS_OF

READING = {"kind": "bp", "systolic": 130, "diastolic": 80, "source": "wearable"}


@pytest.fixture
def limited(tmp_path: Path, evaluator: Evaluator) -> Iterator[TestClient]:
    url = f"sqlite:///{tmp_path / 'limits.db'}"
    migrate(url)
    settings = Settings(database_url=url, max_body_bytes=4096, rate_limit_per_second=1, rate_limit_burst=3)
    app = create_app(settings, clock=SettableClock(AS_OF), evaluator=evaluator)
    with TestClient(app) as client:
        yield client
    app.state.engine.dispose()


def _auth(client: TestClient, role: Role = Role.ADMIN) -> dict[str, str]:
    return {"Authorization": f"Bearer {new_key(client.app, role)}"}  # type: ignore[arg-type]


def test_a_body_over_the_limit_is_413_before_it_is_read(limited: TestClient) -> None:
    body = json.dumps([{**READING, "measured_at": "2026-02-28T08:00:00+08:00"}] * 60)
    assert len(body) > 4096
    response = limited.post(
        "/v1/patients/1/readings",
        content=body,
        headers={**_auth(limited), "Content-Type": "application/json"},
    )
    assert response.status_code == 413
    assert response.json()["code"] == "payload-too-large"


def test_a_chunked_body_is_counted_as_it_arrives(limited: TestClient) -> None:
    def chunks() -> Iterator[bytes]:
        yield b"["
        for _ in range(100):
            yield json.dumps({**READING, "measured_at": "2026-02-28T08:00:00+08:00"}).encode() + b","
        yield b"{}]"

    response = limited.post(
        "/v1/patients/1/readings",
        content=chunks(),
        headers={**_auth(limited), "Content-Type": "application/json"},
    )
    assert response.status_code == 413


def test_a_batch_over_1000_readings_is_413_and_stores_nothing(client: TestClient) -> None:
    patient_id = register_patient(client)
    batch = [
        {
            **READING,
            "measured_at": f"2026-02-27T{i // 60 % 24:02d}:{i % 60:02d}:00+08:00",
            "device_id": f"d{i}",
        }
        for i in range(1001)
    ]
    response = client.post(f"/v1/patients/{patient_id}/readings", json=batch)
    assert response.status_code == 413
    assert response.json()["code"] == "payload-too-large"
    assert (
        client.get(f"/v1/patients/{patient_id}")
        .json()["assessment"]["result"]["facts"]
        .get("home_bp_reading_count", 0)
        == 0
    )


def test_a_burst_from_one_key_is_limited_without_starving_another(limited: TestClient) -> None:
    noisy, quiet = _auth(limited), _auth(limited)
    answers = [limited.get("/v1/rule-packs", headers=noisy).status_code for _ in range(4)]
    assert answers == [200, 200, 200, 429]
    refused = limited.get("/v1/rule-packs", headers=noisy)
    assert refused.status_code == 429
    assert refused.json()["code"] == "rate-limited"
    assert int(refused.headers["Retry-After"]) >= 1
    assert limited.get("/v1/rule-packs", headers=quiet).status_code == 200
