"""A gateway's retry (a batch of nothing but duplicates) keeps the current assessment instead of
storing another one; a retry that finds the assessment stale (another day, or a patient awaiting a
reassessment) re-tiers the patient as any ingest does."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from fastapi.testclient import TestClient

from tests.api.conftest import SettableClock, register_patient
from tests.builders import AS_OF


def _batch() -> list[dict[str, Any]]:
    return [
        {
            "kind": "bp",
            "systolic": 150 + index,
            "diastolic": 92,
            "source": "wearable",
            "device_id": "cuff-7",
            "source_reading_id": f"cuff-7-{index}",
            "measured_at": (AS_OF - timedelta(minutes=10 * index + 5)).isoformat(),
        }
        for index in range(5)
    ]


def _assessment_ids(client: TestClient, patient_id: int) -> list[int]:
    history = client.get(f"/v1/patients/{patient_id}/assessments")
    assert history.status_code == 200, history.text
    return [item["id"] for item in history.json()]


def test_a_retried_batch_returns_the_current_assessment_and_stores_no_other(client: TestClient) -> None:
    patient_id = register_patient(client)
    first = client.post(f"/v1/patients/{patient_id}/readings", json=_batch())
    assert first.status_code == 201, first.text
    assert first.json()["created"] == 5
    stored = _assessment_ids(client, patient_id)

    retry = client.post(f"/v1/patients/{patient_id}/readings", json=_batch())

    assert retry.status_code == 201
    assert retry.json()["duplicate"] == 5
    assert retry.json()["assessment"] == first.json()["assessment"]
    assert _assessment_ids(client, patient_id) == stored


def test_a_batch_with_one_new_reading_among_duplicates_re_tiers(client: TestClient) -> None:
    patient_id = register_patient(client)
    client.post(f"/v1/patients/{patient_id}/readings", json=_batch())
    stored = _assessment_ids(client, patient_id)
    crisis = {
        "kind": "bp",
        "systolic": 196,
        "diastolic": 121,
        "source": "wearable",
        "device_id": "cuff-7",
        "measured_at": (AS_OF - timedelta(minutes=1)).isoformat(),
    }

    posted = client.post(f"/v1/patients/{patient_id}/readings", json=[*_batch(), crisis])

    assert posted.json()["created"] == 1
    assert _assessment_ids(client, patient_id) == [posted.json()["assessment"]["id"], *stored]


def test_a_retry_on_a_later_day_reassesses(client: TestClient, clock: SettableClock) -> None:
    patient_id = register_patient(client)
    first = client.post(f"/v1/patients/{patient_id}/readings", json=_batch())
    clock.at = AS_OF + timedelta(days=1)

    retry = client.post(f"/v1/patients/{patient_id}/readings", json=_batch())

    assert retry.json()["duplicate"] == 5
    assert retry.json()["assessment"]["id"] != first.json()["assessment"]["id"]
    assert retry.json()["assessment"]["evaluated_at"] > first.json()["assessment"]["evaluated_at"]


def test_a_resent_visit_returns_the_current_assessment(client: TestClient) -> None:
    patient_id = register_patient(client)
    visit = {
        "at": (AS_OF - timedelta(hours=2)).isoformat(),
        "source_encounter_id": "visit-1",
        "readings": [{"kind": "bp", "systolic": 148, "diastolic": 90}],
    }
    first = client.post(f"/v1/patients/{patient_id}/encounters", json=visit)
    assert first.status_code == 201, first.text
    stored = _assessment_ids(client, patient_id)

    again = client.post(f"/v1/patients/{patient_id}/encounters", json=visit)

    assert again.status_code == 200
    assert again.json()["assessment"] == first.json()["assessment"]
    assert _assessment_ids(client, patient_id) == stored
