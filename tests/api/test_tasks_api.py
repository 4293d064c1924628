"""Tasks over HTTP on both databases: due times per kind, one open task per kind, resolution by
evidence, the GP team's actions with their history, and team scoping."""

from __future__ import annotations

from collections import Counter
from datetime import datetime
from typing import Any

from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlmodel import Session, col, select

from pathway.access import permissions
from pathway.access.permissions import Role
from pathway.store.work_tables import CareTask, CareTaskEvent
from tests.api.conftest import SettableClock, new_key, register_patient

Tasks = dict[tuple[str, str], dict[str, Any]]


def _app(client: TestClient) -> FastAPI:
    app: FastAPI = client.app  # type: ignore[assignment]
    return app


def _tasks(client: TestClient, patient_id: int, status: str = "open") -> Tasks:
    response = client.get(f"/v1/patients/{patient_id}/tasks", params={"status": status})
    assert response.status_code == 200, response.text
    return {(t["kind"], t["subject"]): t for t in response.json()}


def _visit(
    client: TestClient, patient_id: int, at: str, readings: list[dict[str, Any]], **extra: Any
) -> None:
    response = client.post(
        f"/v1/patients/{patient_id}/encounters", json={"at": at, "readings": readings, **extra}
    )
    assert response.status_code == 201, response.text


def _readings(client: TestClient, patient_id: int, *items: dict[str, Any]) -> None:
    response = client.post(f"/v1/patients/{patient_id}/readings", json=list(items))
    assert response.status_code == 201, response.text


def _home_bp(systolic: int, diastolic: int, at: str) -> dict[str, Any]:
    return {"kind": "bp", "systolic": systolic, "diastolic": diastolic, "source": "home", "measured_at": at}


def _lab(kind: str, value: float, at: str) -> dict[str, Any]:
    return {"kind": kind, "value": value, "source": "lab", "measured_at": at}


def _due(task: dict[str, Any]) -> tuple[str, int, str]:
    return task["due_at"], task["priority"], task["role"]


def _actions(client: TestClient, task_id: int) -> list[str]:
    response = client.get(f"/v1/tasks/{task_id}/history")
    assert response.status_code == 200, response.text
    return [e["action"] for e in response.json()]


def test_each_task_kind_falls_due_when_the_pathway_says(client: TestClient) -> None:
    # AS_OF is 2026-03-01 09:00 +08:00 (01:00 UTC); due times come back in UTC.
    both = register_patient(client, "both", conditions=["hypertension", "diabetes"])
    tasks = _tasks(client, both)
    assert _due(tasks[("data_gap", "")]) == ("2026-03-01T01:00:00Z", 4, "health_manager")
    assert _due(tasks[("annual_check", "")]) == ("2026-03-01T01:00:00Z", 5, "gp")
    for check in ("fundus", "uacr_egfr", "foot", "ecg"):
        assert _due(tasks[("complication_screening", check)]) == ("2026-03-01T01:00:00Z", 5, "specialist")
    assert _due(tasks[("follow_up_visit", "")]) == ("2026-03-14T16:00:00Z", 4, "gp")  # 14 d (data.gap)
    assert tasks[("data_gap", "")]["time_limit_at"] == "2026-03-08T01:00:00Z"
    assert tasks[("data_gap", "")]["pack_version"] == "2020.4"

    _visit(client, both, "2026-03-01T07:00:00+08:00", [{"kind": "bp", "systolic": 184, "diastolic": 96}])
    tasks = _tasks(client, both)
    assert _due(tasks[("urgent_referral", "")]) == ("2026-03-02T01:00:00Z", 2, "gp")  # within 24 h
    assert _due(tasks[("referral_follow_up", "")]) == ("2026-03-15T01:00:00Z", 3, "health_manager")
    assert _due(tasks[("follow_up_visit", "")]) == ("2026-03-14T16:00:00Z", 3, "gp")  # red: priority 3
    assert tasks[("urgent_referral", "")]["rule_id"] == "bp.crisis"

    emergency = register_patient(client, "emergency")
    _visit(
        client,
        emergency,
        "2026-03-01T08:30:00+08:00",
        [{"kind": "bp", "systolic": 188, "diastolic": 100}],
        symptoms=["chest_pain"],
    )
    task = _tasks(client, emergency)[("emergency_referral", "")]
    assert (_due(task), task["time_limit_at"]) == (("2026-03-01T01:00:00Z", 1, "gp"), "2026-03-01T02:00:00Z")

    recheck = register_patient(client, "recheck")
    _readings(client, recheck, _home_bp(186, 112, "2026-03-01T08:00:00+08:00"))
    assert _due(_tasks(client, recheck)[("bp_recheck", "")]) == ("2026-03-01T02:00:00Z", 2, "health_manager")

    lipids = register_patient(client, "lipids", conditions=["diabetes"])  # 66, diabetic: LDL-C target 2.6
    _readings(client, lipids, _lab("ldl_c", 3.0, "2026-02-01T08:00:00+08:00"))
    assert _due(_tasks(client, lipids)[("lipid_recheck", "")]) == (
        "2026-03-15T00:00:00Z",
        4,
        "health_manager",
    )
    severe = register_patient(client, "severe", conditions=["dyslipidemia"])
    _readings(client, severe, _lab("ldl_c", 5.0, "2026-03-01T08:00:00+08:00"))
    assert _due(_tasks(client, severe)[("routine_referral", "")]) == ("2026-03-15T01:00:00Z", 3, "gp")


def test_a_burst_of_readings_keeps_one_open_task_per_kind(client: TestClient, clock: SettableClock) -> None:
    patient = register_patient(client, "burst", conditions=["hypertension", "diabetes"])
    for minute in range(0, 60, 4):
        at = f"2026-03-01T08:{minute:02d}:00+08:00"
        _readings(
            client, patient, _home_bp(150 + minute // 4, 95, at), {**_lab("fpg", 8.0, at), "source": "home"}
        )
    _readings(client, patient, *(_home_bp(148, 92, f"2026-02-2{d}T07:00:00+08:00") for d in range(1, 9)))
    with Session(_app(client).state.engine) as session:
        opened = Counter(
            session.exec(select(CareTaskEvent.task_id).where(col(CareTaskEvent.action) == "opened")).all()
        )
    listed = client.get(f"/v1/patients/{patient}/tasks", params={"status": "all"}).json()
    open_per_kind = Counter((t["kind"], t["subject"]) for t in listed if t["status"] == "open")
    assert set(open_per_kind.values()) == {1}
    assert len(open_per_kind) >= 6
    assert len(listed) == len(opened)  # nothing opened twice: one task per kind, updated in place
    assert set(opened.values()) == {1}


def test_evidence_resolves_tasks_and_a_satisfied_need_is_not_reopened(
    client: TestClient, clock: SettableClock
) -> None:
    patient = register_patient(client, "evidence", conditions=["hypertension", "diabetes"])
    first = _tasks(client, patient)
    _visit(
        client,
        patient,
        "2026-03-01T08:00:00+08:00",
        [{"kind": "bp", "systolic": 150, "diastolic": 95}, {"kind": "fpg", "value": 8.0}],
    )
    _readings(
        client,
        patient,
        _lab("uacr", 20, "2026-03-01T08:10:00+08:00"),
        _lab("egfr", 90, "2026-03-01T08:10:00+08:00"),
    )
    now = _tasks(client, patient)
    assert (
        now[("follow_up_visit", "")]["id"] != first[("follow_up_visit", "")]["id"]
    )  # a new one, from the visit
    assert now[("follow_up_visit", "")]["due_at"] == "2026-03-14T16:00:00Z"
    assert ("data_gap", "") not in now  # measured: data.gap no longer fires
    assert now[("complication_screening", "uacr_egfr")]["due_at"] == "2027-03-01T00:10:00Z"  # next year's
    history = client.get(f"/v1/tasks/{first[('follow_up_visit', '')]['id']}/history").json()
    assert [(e["action"], e["to_status"], e["actor"]) for e in history] == [
        ("opened", "open", "engine"),
        ("resolved", "resolved", "engine"),
    ]
    assert history[1]["details"]["evidence"] == "encounter"
    closed = _tasks(client, patient, "all")
    assert {k for k, t in closed.items() if t["status"] == "resolved"} >= {("data_gap", "")}

    recheck = register_patient(client, "recheck2")
    _readings(client, recheck, _home_bp(186, 112, "2026-03-01T08:00:00+08:00"))
    task_id = _tasks(client, recheck)[("bp_recheck", "")]["id"]
    clock.at = clock.at.replace(hour=10, minute=30)
    _readings(client, recheck, _home_bp(150, 90, "2026-03-01T10:20:00+08:00"))
    assert ("bp_recheck", "") not in _tasks(client, recheck)  # still an unconfirmed crisis, but rechecked
    assert _actions(client, task_id) == ["opened", "resolved"]

    lipids = register_patient(client, "lipids2", conditions=["diabetes"])
    _readings(client, lipids, _lab("ldl_c", 3.0, "2026-02-01T08:00:00+08:00"))
    old = _tasks(client, lipids)[("lipid_recheck", "")]["id"]
    _readings(client, lipids, _lab("ldl_c", 2.9, "2026-03-01T08:00:00+08:00"))
    new = _tasks(client, lipids)[("lipid_recheck", "")]
    assert (new["id"] != old, new["due_at"]) == (True, "2026-04-12T00:00:00Z")

    referred = register_patient(client, "referred")
    _visit(client, referred, "2026-03-01T07:00:00+08:00", [{"kind": "bp", "systolic": 184, "diastolic": 96}])
    urgent = _tasks(client, referred)[("urgent_referral", "")]["id"]
    referral = client.get(f"/v1/patients/{referred}/referrals").json()[0]["id"]
    accepted = client.post(f"/v1/referrals/{referral}/accept", json={"receiving_institution": "三高中心"})
    assert accepted.status_code == 200
    assert ("urgent_referral", "") not in _tasks(client, referred)
    _readings(client, referred, _home_bp(182, 100, "2026-03-01T10:00:00+08:00"))  # the rule still fires
    assert ("urgent_referral", "") not in _tasks(client, referred)
    assert ("referral_follow_up", "") in _tasks(client, referred)
    assert client.get(f"/v1/tasks/{urgent}/history").json()[-1]["note"] == f"referral #{referral} is accepted"


def test_the_team_closes_reassigns_and_snoozes_a_task_and_every_change_is_recorded(
    client: TestClient, clock: SettableClock
) -> None:
    patient = register_patient(client, "actions", conditions=["hypertension"])
    task = _tasks(client, patient)[("follow_up_visit", "")]
    url = f"/v1/tasks/{task['id']}"
    assert client.post(f"{url}/reassign", json={"member": "李医生"}).json()["assignee"] == "李医生"
    too_long = client.post(f"{url}/snooze", json={"until": "2026-03-16T09:00:01+08:00", "reason": "外出"})
    assert (too_long.status_code, too_long.json()["code"], too_long.json()["field"]) == (
        422,
        "snooze-too-long",
        "until",
    )
    past = client.post(f"{url}/snooze", json={"until": "2026-03-01T08:00:00+08:00", "reason": "外出"})
    assert past.status_code == 422
    snoozed = client.post(f"{url}/snooze", json={"until": "2026-03-15T09:00:00+08:00", "reason": "外出探亲"})
    until = datetime.fromisoformat(snoozed.json()["snoozed_until"])
    assert (until, snoozed.json()["snooze_reason"]) == (
        datetime.fromisoformat("2026-03-15T01:00:00+00:00"),
        "外出探亲",
    )
    done = client.post(f"{url}/outcome", json={"outcome": "done", "note": "电话随访完成"})
    assert (done.json()["status"], done.json()["outcome"], done.json()["note"]) == (
        "done",
        "done",
        "电话随访完成",
    )
    again = client.post(f"{url}/outcome", json={"outcome": "refused"})
    assert (again.status_code, again.json()["code"]) == (409, "task-closed")
    history = client.get(f"{url}/history").json()
    assert [(e["action"], e["from_status"], e["to_status"]) for e in history] == [
        ("opened", None, "open"),
        ("reassigned", "open", "open"),
        ("snoozed", "open", "open"),
        ("outcome", "open", "done"),
    ]
    assert history[1]["actor"].startswith("key:")
    assert history[1]["details"] == {"from": None, "to": "李医生"}

    _readings(client, patient, _home_bp(150, 95, "2026-03-01T08:30:00+08:00"))
    assert ("follow_up_visit", "") not in _tasks(client, patient)  # done by hand: not reopened...
    _visit(client, patient, "2026-03-01T08:45:00+08:00", [{"kind": "bp", "systolic": 150, "diastolic": 95}])
    assert ("follow_up_visit", "") in _tasks(client, patient)  # ...until a visit calls for the next one

    moved = register_patient(client, "moved", conditions=["hypertension", "diabetes"])
    some = next(iter(_tasks(client, moved).values()))
    assert client.post(f"/v1/tasks/{some['id']}/outcome", json={"outcome": "moved"}).status_code == 200
    assert _tasks(client, moved) == {}
    assert {t["status"] for t in _tasks(client, moved, "all").values()} == {"moved", "cancelled"}


def test_a_team_key_sees_and_acts_on_its_own_teams_tasks_only(client: TestClient) -> None:
    app = _app(client)
    with Session(app.state.engine) as session:
        permissions.create_team(session, "east", "东区家庭医生团队", "home")
        permissions.create_team(session, "west", "西区家庭医生团队", "home")
        session.commit()
    patient = register_patient(client, "scoped", team_code="east")
    task = _tasks(client, patient)[("follow_up_visit", "")]
    east = {"Authorization": f"Bearer {new_key(app, Role.TEAM, 'east')}"}
    west = {"Authorization": f"Bearer {new_key(app, Role.TEAM, 'west')}"}
    assert task["team_id"] is not None
    refused = [
        client.get(f"/v1/patients/{patient}/tasks", headers=west),
        client.get(f"/v1/tasks/{task['id']}/history", headers=west),
        client.post(f"/v1/tasks/{task['id']}/outcome", json={"outcome": "done"}, headers=west),
        client.post(f"/v1/tasks/{task['id']}/reassign", json={"member": "x"}, headers=west),
        client.post(
            f"/v1/tasks/{task['id']}/snooze",
            json={"until": "2026-03-02T09:00:00+08:00", "reason": "x"},
            headers=west,
        ),
    ]
    # As if they did not exist: the patient's, then the task's own unknown-id answer.
    assert refused[0].json() == {"code": "unknown-patient", "message": f"no patient with id {patient}",
                                 "field": "patient_id"}  # fmt: skip
    for response in refused:
        assert response.status_code == 404
    for response in refused[1:]:
        assert response.json() == {"code": "unknown-task", "message": f"no task with id {task['id']}",
                                   "field": "task_id"}  # fmt: skip
    assert client.get(f"/v1/tasks/{task['id']}/history", headers=east).status_code == 200
    reassigned = client.post(f"/v1/tasks/{task['id']}/reassign", json={"member": "王护士"}, headers=east)
    assert reassigned.status_code == 200
    unknown = client.get("/v1/tasks/999999/history", headers=east)
    assert (unknown.status_code, unknown.json()["code"]) == (404, "unknown-task")
    assert _tasks(client, patient)[("follow_up_visit", "")]["status"] == "open"


def test_screening_for_a_condition_removed_from_the_patient_is_resolved_and_the_rest_stays(
    client: TestClient,
) -> None:
    patient = register_patient(client, "corrected", conditions=["hypertension", "diabetes"])
    screening = {subject for kind, subject in _tasks(client, patient) if kind == "complication_screening"}
    assert screening == {"fundus", "uacr_egfr", "foot", "ecg"}

    corrected = {
        "source_system": "ehr",
        "external_id": "corrected",
        "sex": "male",
        "birth_date": "1960-01-01",
        "conditions": ["hypertension"],  # the diabetes was recorded in error
    }
    assert client.post("/v1/patients", json=corrected).status_code == 200

    still_open = _tasks(client, patient)
    assert {s for k, s in still_open if k == "complication_screening"} == {"ecg"}  # hypertension's
    assert ("annual_check", "") in still_open
    every = _tasks(client, patient, "all")
    for subject in ("fundus", "uacr_egfr", "foot"):
        task = every[("complication_screening", subject)]
        assert task["status"] == "resolved"
        history = client.get(f"/v1/tasks/{task['id']}/history").json()
        assert history[-1]["note"] == "the assessment no longer calls for it"


def test_a_screening_closed_by_hand_is_not_reopened_by_an_unrelated_reading(
    client: TestClient,
) -> None:
    patient = register_patient(client, "declined", conditions=["diabetes"])
    fundus = _tasks(client, patient)[("complication_screening", "fundus")]
    assert client.post(f"/v1/tasks/{fundus['id']}/outcome", json={"outcome": "refused"}).status_code == 200

    _readings(client, patient, _lab("fpg", 7.9, "2026-03-01T07:00:00+08:00"))

    assert ("complication_screening", "fundus") not in _tasks(client, patient)


def test_an_open_task_takes_the_evidence_of_the_pack_in_force_with_its_next_firing(
    client: TestClient,
) -> None:
    patient = register_patient(client, "upgraded", conditions=["hypertension", "diabetes"])
    foot = _tasks(client, patient)[("complication_screening", "foot")]
    with Session(_app(client).state.engine) as session:  # as an earlier edition opened it: a check only
        task = session.get(CareTask, foot["id"])
        assert task is not None
        task.evidence = ["check:foot"]
        session.add(task)
        session.commit()

    _readings(client, patient, _home_bp(134, 84, "2026-03-01T07:00:00+08:00"))  # fires it again
    corrected = {
        "source_system": "ehr",
        "external_id": "upgraded",
        "sex": "male",
        "birth_date": "1960-01-01",
        "conditions": ["hypertension"],
    }
    assert client.post("/v1/patients", json=corrected).status_code == 200

    assert _tasks(client, patient, "all")[("complication_screening", "foot")]["status"] == "resolved"
    assert _actions(client, foot["id"]) == ["opened", "updated", "resolved"]
