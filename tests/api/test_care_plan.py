"""The annual care plan of a red, a yellow and a blue patient."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

from fastapi.testclient import TestClient

from tests.api.conftest import register_patient
from tests.builders import AS_OF


def _visit(client: TestClient, patient_id: int, at: datetime, *readings: dict[str, Any]) -> None:
    body = {"at": at.isoformat(), "readings": list(readings)}
    assert client.post(f"/v1/patients/{patient_id}/encounters", json=body).status_code == 201


def _plan(client: TestClient, patient_id: int, year: int = 2026) -> dict[str, Any]:
    response = client.get(f"/v1/patients/{patient_id}/care-plan", params={"year": year})
    assert response.status_code == 200, response.text
    plan: dict[str, Any] = response.json()
    return plan


def _items(plan: dict[str, Any], kind: str, status: str | None = None) -> list[str]:
    return [i["on"] for i in plan["items"] if i["kind"] == kind and (status is None or i["status"] == status)]


def _every(start: date, days: int, until: date) -> list[str]:
    out = []
    while start <= until:
        out.append(start.isoformat())
        start += timedelta(days=days)
    return out


def test_a_blue_patient_is_seen_every_90_days_and_screened_once(client: TestClient) -> None:
    patient_id = register_patient(client, "blue", birth_date="1966-01-01")
    seen = AS_OF - timedelta(days=10)  # 19 February 2026, controlled
    _visit(client, patient_id, seen, {"kind": "bp", "systolic": 128, "diastolic": 78})
    plan = _plan(client, patient_id)
    assert plan["tier"] == "blue"
    assert plan["follow_up_interval_days"] == 90
    assert _items(plan, "follow_up_visit", "done") == ["2026-02-19"]
    assert _items(plan, "follow_up_visit", "planned") == _every(date(2026, 5, 20), 90, date(2026, 12, 31))
    assert _items(plan, "annual_check") == ["2026-03-01"]  # never done: due now
    screenings = [(i["subject"], i["status"]) for i in plan["items"] if i["kind"] == "complication_screening"]
    assert screenings == [("ecg", "planned")]  # hypertension only: no fundus, UACR or foot exam


def test_a_yellow_patient_is_seen_monthly(client: TestClient) -> None:
    patient_id = register_patient(client, "yellow", birth_date="1966-01-01")
    _visit(client, patient_id, AS_OF - timedelta(days=40), {"kind": "bp", "systolic": 132, "diastolic": 84})
    _visit(client, patient_id, AS_OF - timedelta(days=2), {"kind": "bp", "systolic": 150, "diastolic": 92})
    plan = _plan(client, patient_id)
    assert plan["tier"] == "yellow"
    interval = plan["follow_up_interval_days"]
    assert interval < 90
    first = date(2026, 2, 27) + timedelta(days=interval)
    assert _items(plan, "follow_up_visit", "planned") == _every(first, interval, date(2026, 12, 31))
    assert _items(plan, "follow_up_visit", "done") == ["2026-01-20", "2026-02-27"]


def test_a_red_patient_has_the_referral_and_two_weekly_visits_in_the_plan(client: TestClient) -> None:
    patient_id = register_patient(client, "red", conditions=["hypertension", "diabetes"])
    _visit(client, patient_id, AS_OF - timedelta(hours=1), {"kind": "bp", "systolic": 186, "diastolic": 112})
    plan = _plan(client, patient_id)
    assert plan["tier"] == "red"
    assert plan["follow_up_interval_days"] == 14
    assert _items(plan, "follow_up_visit", "planned")[:2] == ["2026-03-15", "2026-03-29"]
    assert _items(plan, "urgent_referral") == ["2026-03-02"]
    assert _items(plan, "referral_follow_up") == ["2026-03-15"]
    screenings = {i["subject"] for i in plan["items"] if i["kind"] == "complication_screening"}
    assert screenings == {"fundus", "uacr_egfr", "foot", "ecg"}  # diabetes and hypertension
    assert _plan(client, patient_id, year=2027)["items"][0]["on"].startswith("2027")
