"""Examinations recorded as done are the evidence that closes their screening task."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from fastapi.testclient import TestClient

from tests.api.conftest import register_patient
from tests.builders import AS_OF


def _open(client: TestClient, patient_id: int, kind: str) -> dict[str | None, Any]:
    tasks = client.get(f"/v1/patients/{patient_id}/tasks").json()
    return {t["subject"]: t for t in tasks if t["kind"] == kind and t["status"] == "open"}


def test_a_recorded_fundus_exam_closes_its_screening_and_plans_the_next_one(client: TestClient) -> None:
    patient_id = register_patient(client, conditions=["hypertension", "diabetes"])
    assert "fundus" in _open(client, patient_id, "complication_screening")
    done_at = AS_OF - timedelta(hours=2)
    response = client.post(
        f"/v1/patients/{patient_id}/checks", json=[{"kind": "fundus", "at": done_at.isoformat()}]
    )
    assert response.status_code == 201, response.text
    planned = {
        t["subject"]: t["due"]
        for t in response.json()["result"]["tasks"]
        if t["kind"] == "complication_screening"
    }
    assert planned["fundus"].startswith((done_at + timedelta(days=365)).date().isoformat())
    still_open = _open(client, patient_id, "complication_screening")
    fundus = still_open.get("fundus")
    assert fundus is None or fundus["due_at"] >= (AS_OF + timedelta(days=364)).isoformat()  # next year's
    assert {"foot", "uacr_egfr", "ecg"} <= set(still_open)  # the others are still to do
    again = client.post(
        f"/v1/patients/{patient_id}/checks", json=[{"kind": "fundus", "at": done_at.isoformat()}]
    )
    assert again.status_code == 201  # recorded once: a replay changes nothing
    plan = client.get(f"/v1/patients/{patient_id}/care-plan", params={"year": 2026}).json()
    done = [(i["kind"], i["subject"]) for i in plan["items"] if i["status"] == "done"]
    assert ("complication_screening", "fundus") in done


def test_checks_done_at_a_visit_count_and_future_checks_are_refused(client: TestClient) -> None:
    patient_id = register_patient(client)
    visit = {
        "at": AS_OF.isoformat(),
        "readings": [{"kind": "bp", "systolic": 128, "diastolic": 78}],
        "checks": ["ecg"],
    }
    assert client.post(f"/v1/patients/{patient_id}/encounters", json=visit).status_code == 201
    ecg = _open(client, patient_id, "complication_screening").get("ecg")
    assert ecg is None or ecg["due_at"] >= (AS_OF + timedelta(days=364)).isoformat()  # next year's
    future = (AS_OF + timedelta(days=1)).isoformat()
    refused = client.post(f"/v1/patients/{patient_id}/checks", json=[{"kind": "foot", "at": future}])
    assert refused.status_code == 422
    assert refused.json()["field"] == "checks.0.at"


def test_a_symptom_reported_in_the_future_refuses_the_report_naming_it(client: TestClient) -> None:
    patient_id = register_patient(client)
    report = [
        {"code": "palpitations", "at": AS_OF.isoformat()},
        {"code": "severe_headache", "at": (AS_OF + timedelta(days=1)).isoformat()},
    ]

    refused = client.post(f"/v1/patients/{patient_id}/symptoms", json=report)

    assert refused.status_code == 422
    assert refused.json()["field"] == "symptoms.1.at"
    assert client.post(f"/v1/patients/{patient_id}/symptoms", json=report[:1]).status_code == 201
