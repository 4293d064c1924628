"""The task loop (issue 20, items 5–10; issue 21, item 4) through the API on both stores: imported
enrolment dates, the end of management, snooze and retry rules of urgent work, referrals returned
(下转), the grouped daily list, and racing outcomes."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

from fastapi.testclient import TestClient

from pathway.clock import CLINIC_TZ
from tests.api.conftest import register_patient, two_teams
from tests.builders import AS_OF

TODAY = AS_OF.date()


def _at(day: str, hour: int = 9) -> str:
    return datetime.fromisoformat(day).replace(hour=hour, tzinfo=CLINIC_TZ).isoformat()


def _visit(client: TestClient, patient_id: int, at: str, *readings: dict[str, Any], **extra: Any) -> None:
    response = client.post(
        f"/v1/patients/{patient_id}/encounters", json={"at": at, "readings": list(readings), **extra}
    )
    assert response.status_code == 201, response.text


def _readings(client: TestClient, patient_id: int, *items: dict[str, Any]) -> None:
    response = client.post(f"/v1/patients/{patient_id}/readings", json=list(items))
    assert response.status_code == 201, response.text


def _bp(systolic: int, diastolic: int) -> dict[str, Any]:
    return {"kind": "bp", "systolic": systolic, "diastolic": diastolic}


Tasks = dict[tuple[str, str], dict[str, Any]]


def _tasks(client: TestClient, patient_id: int, status: str = "open") -> Tasks:
    response = client.get(f"/v1/patients/{patient_id}/tasks", params={"status": status})
    assert response.status_code == 200, response.text
    return {(t["kind"], t["subject"]): t for t in response.json()}


def _indicators(client: TestClient, team: int, to: date) -> dict[str, Any]:
    response = client.get(f"/v1/teams/{team}/indicators", params={"to": to.isoformat(), "detail": True})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


# --- 9. Imported patients keep their enrolment date (建档日期) ------------------------------------------


def test_an_imported_patient_is_registered_on_the_enrolment_date_sent_and_counts_in_hearts(
    client: TestClient,
) -> None:
    team, _ = two_teams(client)
    imported = register_patient(client, "imported", team_code="jimo-01", enrolled_on="2024-05-10")
    _visit(client, imported, _at("2026-02-20"), _bp(132, 84))
    new = register_patient(client, "new", team_code="jimo-01")  # enrolled today
    _visit(client, new, _at("2026-02-25"), _bp(128, 80))

    read = client.get(f"/v1/patients/{imported}").json()["patient"]
    assert (read["enrolled_on"], read["status"]) == ("2024-05-10", "active")
    assert client.get(f"/v1/patients/{new}").json()["patient"]["enrolled_on"] == TODAY.isoformat()

    hearts = _indicators(client, team, TODAY)["hearts_bp_control"]  # registered > 90 days: the import only
    assert (hearts["numerator_patient_ids"], hearts["denominator_patient_ids"]) == ([imported], [imported])
    assert _indicators(client, team, date(2025, 6, 30))["managed_patients"] == 1  # the trend sees it
    assert _indicators(client, team, date(2024, 5, 9))["managed_patients"] == 0

    body = {"source_system": "ehr", "external_id": "imported", "sex": "male", "birth_date": "1960-01-01",
            "conditions": ["hypertension"], "team_code": "jimo-01"}  # fmt: skip
    assert client.post("/v1/patients", json=body).json()["enrolled_on"] == "2024-05-10"  # an update keeps it
    tomorrow = (TODAY + timedelta(days=1)).isoformat()
    future = client.post("/v1/patients", json={**body, "enrolled_on": tomorrow})
    before_birth = client.post("/v1/patients", json={**body, "enrolled_on": "1959-12-31"})
    for refused in (future, before_birth):
        assert (refused.status_code, refused.json()["field"]) == (422, "enrolled_on")
