"""A patient's newest assessment is read alone, however many the patient has: an hourly wearable
makes thousands a year, and each summary, assessment read and retried batch needs only the last."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import event

from pathway.store.tables import AssessmentRecord
from tests.api.conftest import register_patient
from tests.builders import AS_OF

ASSESSMENTS = 12


@pytest.fixture
def loaded() -> Iterator[list[int]]:
    """The ids of the assessments the ORM builds while the test runs."""
    ids: list[int] = []

    def remember(record: AssessmentRecord, _context: Any) -> None:
        assert record.id is not None
        ids.append(record.id)

    event.listen(AssessmentRecord, "load", remember)
    yield ids
    event.remove(AssessmentRecord, "load", remember)


def _hourly_readings(client: TestClient, patient_id: int) -> dict[str, Any]:
    """One home BP an hour, each post its own assessment; the last post's answer."""
    answer: dict[str, Any] = {}
    for hour in range(ASSESSMENTS):
        reading = {
            "kind": "bp",
            "systolic": 130 + hour,
            "diastolic": 80,
            "source": "home",
            "measured_at": (AS_OF - timedelta(hours=ASSESSMENTS - hour)).isoformat(),
            "source_reading_id": f"bp-{hour}",
        }
        response = client.post(f"/v1/patients/{patient_id}/readings", json=[reading])
        assert response.status_code == 201, response.text
        answer = response.json()
    return answer


@pytest.mark.parametrize("path", ["", "/assessment", "/care-plan"])
def test_a_read_of_the_patient_loads_only_the_newest_of_its_assessments(
    client: TestClient, loaded: list[int], path: str
) -> None:
    patient_id = register_patient(client)
    newest = _hourly_readings(client, patient_id)["assessment"]["id"]
    assert len(client.get(f"/v1/patients/{patient_id}/assessments").json()) > ASSESSMENTS

    loaded.clear()
    response = client.get(f"/v1/patients/{patient_id}{path}")

    assert response.status_code == 200, response.text
    assert loaded == [newest]


def test_a_retried_batch_loads_only_the_newest_assessment(client: TestClient, loaded: list[int]) -> None:
    patient_id = register_patient(client)
    newest = _hourly_readings(client, patient_id)["assessment"]["id"]
    retry = {
        "kind": "bp",
        "systolic": 130,
        "diastolic": 80,
        "source": "home",
        "measured_at": (AS_OF - timedelta(hours=ASSESSMENTS)).isoformat(),
        "source_reading_id": "bp-0",
    }

    loaded.clear()
    response = client.post(f"/v1/patients/{patient_id}/readings", json=[retry])

    assert response.status_code == 201, response.text
    assert response.json()["duplicate"] == 1
    assert response.json()["assessment"]["id"] == newest
    assert loaded == [newest]
