"""A gateway's Idempotency-Key through the retention run: replayed while its answer is kept, processed
as a new request (its readings come back duplicate, stored once) after the run deleted it."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from fastapi.testclient import TestClient

from pathway.clinical.clock import CLINIC_TZ
from pathway.settings import DEFAULT_IDEMPOTENCY_RETENTION_DAYS
from rules.registry import LoadedPack
from scheduler import jobs
from tests.api.conftest import SettableClock, register_patient
from tests.builders import AS_OF

WINDOW = timedelta(days=DEFAULT_IDEMPOTENCY_RETENTION_DAYS)
HOUR = timedelta(hours=1)


def _batch() -> list[dict[str, Any]]:
    return [
        {
            "kind": "bp",
            "systolic": 148 + index,
            "diastolic": 91,
            "source": "wearable",
            "device_id": "cuff-9",
            "source_reading_id": f"cuff-9-{index}",
            "measured_at": (AS_OF - timedelta(minutes=15 * index + 5)).isoformat(),
        }
        for index in range(3)
    ]


def _retention_run(client: TestClient, clock: SettableClock, pack: LoadedPack) -> dict[str, Any] | None:
    app: Any = client.app
    ctx = jobs.Context(
        engine=app.state.engine,
        clock=clock,
        rules=pack.pack.policy.follow_through,
        default_zone=CLINIC_TZ,
    )
    return jobs.run_retention(ctx)


def test_a_key_is_replayed_inside_the_window_and_processed_anew_after_the_run_purged_it(
    client: TestClient, clock: SettableClock, default_pack: LoadedPack
) -> None:
    patient_id = register_patient(client)
    url, headers = f"/v1/patients/{patient_id}/readings", {"Idempotency-Key": "cuff-9-upload-1"}
    first = client.post(url, json=_batch(), headers=headers)
    assert (first.status_code, first.json()["created"]) == (201, 3)

    clock.at = AS_OF + WINDOW - 12 * HOUR  # the last retention run inside the window keeps the answer
    run = _retention_run(client, clock, default_pack)
    assert run is not None
    assert run["idempotent_request"] == 0
    retry = client.post(url, json=_batch(), headers=headers)
    assert retry.headers.get("Idempotent-Replayed") == "true"
    assert retry.json() == first.json()

    clock.at = AS_OF + WINDOW + HOUR  # the next day's run deletes it
    run = _retention_run(client, clock, default_pack)
    assert run is not None
    assert run["idempotent_request"] == 1
    late = client.post(url, json=_batch(), headers=headers)
    assert late.status_code == 201
    assert "Idempotent-Replayed" not in late.headers
    assert (late.json()["created"], late.json()["duplicate"]) == (0, 3)  # stored once all the same
