"""The GP team's daily list and indicators, checked against hand-computed answers."""

from __future__ import annotations

import csv
import io
from datetime import datetime, timedelta
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import update
from sqlmodel import Session

from pathway.access.permissions import Role
from pathway.store.work_tables import CareTask
from tests.api.conftest import SettableClock, add_task, new_key, register_patient, two_teams
from tests.builders import AS_OF

TODAY = AS_OF.date()


def _as(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def _close_all(session: Session) -> None:
    session.execute(update(CareTask).values(status="cancelled"))


def _listed(client: TestClient, team_id: int, **params: Any) -> list[tuple[int, str, int]]:
    response = client.get(f"/v1/teams/{team_id}/tasks", params={"date": TODAY.isoformat(), **params})
    assert response.status_code == 200, response.text
    return [(i["priority"], i["kind"], i["days_overdue"]) for i in response.json()["items"]]


def test_the_daily_list_orders_by_priority_then_days_overdue_then_tier(client: TestClient) -> None:
    team, other = two_teams(client)
    patients = [register_patient(client, f"p{i}") for i in range(7)]
    with Session(client.app.state.engine) as session:  # type: ignore[attr-defined]
        _close_all(session)  # what registration scheduled: the list holds exactly the tasks below
        add_task(session, patients[0], team, "annual_check", priority=5, due_date=TODAY - timedelta(days=30))
        add_task(session, patients[1], team, "follow_up_visit", priority=3, due_date=TODAY, tier="blue")
        add_task(session, patients[2], team, "lipid_recheck", priority=3, due_date=TODAY, tier="red")
        add_task(session, patients[3], team, "data_gap", priority=3, due_date=TODAY - timedelta(days=4))
        add_task(
            session, patients[4], team, "urgent_referral", priority=2, due_date=TODAY - timedelta(days=1)
        )
        add_task(
            session, patients[5], team, "data_gap", priority=1, due_date=TODAY + timedelta(days=1)
        )  # not yet
        add_task(session, patients[6], other, "bp_recheck", priority=1, due_date=TODAY)  # another team
        session.commit()
    assert _listed(client, team) == [
        (2, "urgent_referral", 1),
        (3, "data_gap", 4),
        (3, "lipid_recheck", 0),  # red before blue on the same day
        (3, "follow_up_visit", 0),
        (5, "annual_check", 30),
    ]
    page = client.get(f"/v1/teams/{team}/tasks", params={"date": TODAY.isoformat(), "per_page": 2, "page": 2})
    assert page.json()["total"] == 5
    assert [i["kind"] for i in page.json()["items"]] == ["lipid_recheck", "follow_up_visit"]
    past_the_end = client.get(
        f"/v1/teams/{team}/tasks", params={"date": TODAY.isoformat(), "per_page": 2, "page": 4}
    )
    assert (past_the_end.json()["total"], past_the_end.json()["items"]) == (5, [])


def test_snoozed_and_closed_tasks_leave_the_list_and_filters_apply(client: TestClient) -> None:
    team, _ = two_teams(client)
    patients = [register_patient(client, f"p{i}") for i in range(4)]
    with Session(client.app.state.engine) as session:  # type: ignore[attr-defined]
        _close_all(session)
        add_task(session, patients[0], team, "data_gap", priority=4, due_date=TODAY, role="health_manager")
        add_task(session, patients[1], team, "follow_up_visit", priority=4, due_date=TODAY, assignee="李医生")
        snoozed = AS_OF + timedelta(days=2)
        add_task(
            session, patients[2], team, "lipid_recheck", priority=4, due_date=TODAY, snoozed_until=snoozed
        )
        add_task(session, patients[3], team, "annual_check", priority=5, due_date=TODAY, status="done")
        session.commit()
    assert [k for _, k, _ in _listed(client, team)] == ["data_gap", "follow_up_visit"]
    assert [k for _, k, _ in _listed(client, team, role="health_manager")] == ["data_gap"]
    assert [k for _, k, _ in _listed(client, team, member="李医生")] == ["follow_up_visit"]
    later = (TODAY + timedelta(days=2)).isoformat()
    assert "lipid_recheck" in [k for _, k, _ in _listed(client, team, date=later)]


def test_a_listed_item_carries_the_patient_tier_reasons_latest_values_and_what_to_do(
    client: TestClient,
) -> None:
    team, _ = two_teams(client)
    patient_id = register_patient(client, "p1", team_code="jimo-01", name="王建国")
    visit = {
        "at": (AS_OF - timedelta(hours=1)).isoformat(),
        "readings": [
            {"kind": "bp", "systolic": 186, "diastolic": 112},
            {"kind": "ldl_c", "value": 3.1, "unit": "mmol/L"},
        ],
    }
    assert client.post(f"/v1/patients/{patient_id}/encounters", json=visit).status_code == 201
    tomorrow = (TODAY + timedelta(days=1)).isoformat()  # the urgent referral is due within 24 h
    items = client.get(f"/v1/teams/{team}/tasks", params={"date": tomorrow}).json()["items"]
    referral = next(i for i in items if i["kind"] == "urgent_referral")
    assert referral["patient_name"] == "王建国"
    assert referral["tier"] == "red"
    assert referral["what_to_do"] == "24小时内紧急转诊"
    assert "180/110" in referral["reasons"]
    assert referral["latest"]["office_sbp"] == 186.0
    assert referral["latest"]["ldl_c"] == 3.1
    assert referral["pack_version"]


def test_the_list_comes_as_csv_for_printing(client: TestClient) -> None:
    team, _ = two_teams(client)
    patient_id = register_patient(client, "p1", team_code="jimo-01", name="王建国")
    visit = {"at": AS_OF.isoformat(), "readings": [{"kind": "bp", "systolic": 186, "diastolic": 112}]}
    client.post(f"/v1/patients/{patient_id}/encounters", json=visit)
    tomorrow = (TODAY + timedelta(days=1)).isoformat()
    response = client.get(f"/v1/teams/{team}/tasks?date={tomorrow}", headers={"Accept": "text/csv"})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(response.content.decode("utf-8-sig"))))
    assert rows[0][0] == "优先级 priority"
    assert any(row[3] == "王建国" and row[10] == "186/112" for row in rows[1:])


def test_a_team_key_sees_its_own_list_only(client: TestClient) -> None:
    team, other = two_teams(client)
    app = client.app
    own = _as(new_key(app, Role.TEAM, team="jimo-01"))  # type: ignore[arg-type]
    gateway = _as(new_key(app, Role.GATEWAY))  # type: ignore[arg-type]
    assert client.get(f"/v1/teams/{team}/tasks", headers=own).status_code == 200
    refused = client.get(f"/v1/teams/{other}/tasks", headers=own)
    assert refused.status_code == 404  # as if the other team did not exist
    assert refused.json() == {
        "code": "unknown-team",
        "message": f"no team with id {other}",
        "field": "team_id",
    }
    assert client.get(f"/v1/teams/{other}/indicators", headers=own).status_code == 404
    assert client.get(f"/v1/teams/{team}/tasks", headers=gateway).status_code == 403
    assert client.get("/v1/teams/999/tasks").status_code == 404


# --- Indicators: a small team whose every rate is worked out by hand ------------------------------


def _visit(client: TestClient, patient_id: int, at: datetime, *readings: dict[str, Any]) -> None:
    response = client.post(
        f"/v1/patients/{patient_id}/encounters", json={"at": at.isoformat(), "readings": list(readings)}
    )
    assert response.status_code == 201, response.text


def _bp(systolic: int, diastolic: int) -> dict[str, Any]:
    return {"kind": "bp", "systolic": systolic, "diastolic": diastolic}


def _at(day: str) -> datetime:
    return datetime.fromisoformat(f"{day}T09:00:00+08:00")


def test_indicators_match_hand_computed_numerators_and_denominators(
    client: TestClient, clock: SettableClock
) -> None:
    team, _ = two_teams(client)
    born_1966 = {"birth_date": "1966-01-01", "team_code": "jimo-01"}
    clock.at = _at("2025-06-01")  # A: hypertensive, 60, target 140/90, registered 9 months ago
    a = register_patient(client, "A", **born_1966)
    clock.at = _at("2025-04-01")  # B: hypertension + diabetes, target 130/80
    b = register_patient(client, "B", conditions=["hypertension", "diabetes"], **born_1966)
    clock.at = _at("2025-01-01")  # D: hypertensive, last seen 5 months ago
    d = register_patient(client, "D", **born_1966)
    clock.at = _at("2026-02-15")  # C: diabetic, registered two weeks ago
    c = register_patient(client, "C", conditions=["diabetes"], **born_1966)
    clock.at = _at("2025-06-01")  # E: another team's patient, never counted
    register_patient(client, "E", birth_date="1966-01-01")
    clock.at = AS_OF

    _visit(client, a, _at("2025-06-01"), _bp(150, 95))
    _visit(client, a, _at("2026-02-01"), _bp(132, 84), {"kind": "ldl_c", "value": 3.0, "unit": "mmol/L"})
    for day in ("2025-04-10", "2025-07-10", "2025-10-10"):
        _visit(client, b, _at(day), _bp(128, 78), {"kind": "fpg", "value": 8.2, "unit": "mmol/L"})
    _visit(client, b, _at("2026-01-10"), _bp(135, 85), {"kind": "fpg", "value": 6.5, "unit": "mmol/L"})
    _visit(client, c, _at("2026-02-20"), {"kind": "fpg", "value": 8.0, "unit": "mmol/L"})
    _visit(client, d, _at("2025-10-01"), _bp(120, 70))

    response = client.get(f"/v1/teams/{team}/indicators", params={"to": TODAY.isoformat(), "detail": True})
    assert response.status_code == 200, response.text
    body = response.json()

    def rate(name: str) -> tuple[int, int, list[int]]:
        r = body[name]
        return r["numerator"], r["denominator"], sorted(r["numerator_patient_ids"])

    assert body["managed_patients"] == 4
    # BP: A (132/84 < 140/90) and D (120/70, 5 months ago: within the year) of A, B, D;
    # B's 135/85 misses 130/80.
    assert rate("bp_control") == (2, 3, sorted([a, d]))
    # Glucose: B's latest FPG 6.5 < 7.0; C's 8.0 is not.
    assert rate("glucose_control") == (1, 2, [b])
    # 规范管理: only B has 4 encounters in the last 365 days.
    assert rate("standard_management") == (1, 4, [b])
    # HEARTS (<140/90 at the last visit within 90 days, registered > 90 days): A and B; D's last
    # visit is 151 days old.
    assert rate("hearts_bp_control") == (2, 3, sorted([a, b]))
    # A: hypertension + 1 risk factor (male ≥ 45), LDL-C 3.0 → moderate stratum, target 2.6: missed.
    assert body["ldl_control_by_stratum"] == {
        "moderate": {"numerator": 0, "denominator": 1, "rate": 0.0, "numerator_patient_ids": [],
                     "denominator_patient_ids": [a]}
    }  # fmt: skip
    assert sum(body["tier_distribution"].values()) == 4
    assert body["encounters_in_period"] == 3  # 1 Jan 2026 to today: A, B, C once each


def test_indicators_refuse_a_period_in_the_future_or_backwards(client: TestClient) -> None:
    team, _ = two_teams(client)
    future = (TODAY + timedelta(days=1)).isoformat()
    assert client.get(f"/v1/teams/{team}/indicators", params={"to": future}).json()["field"] == "to"
    backwards = {"from": TODAY.isoformat(), "to": (TODAY - timedelta(days=1)).isoformat()}
    assert client.get(f"/v1/teams/{team}/indicators", params=backwards).json()["field"] == "from"
