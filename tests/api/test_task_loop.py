"""The task loop (issue 20, items 5–10; issue 21, item 4) through the API on both stores: imported
enrolment dates, the end of management, snooze and retry rules of urgent work, referrals returned
(下转), the grouped daily list, and racing outcomes."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import date, datetime, timedelta
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import update
from sqlmodel import Session

from pathway.clinical.clock import CLINIC_TZ
from pathway.store.work_tables import CareTask
from rules.registry import LoadedPack
from scheduler import jobs
from tests.api.conftest import SettableClock, add_task, register_patient, two_teams
from tests.builders import AS_OF

TODAY = AS_OF.date()
DAY = timedelta(days=1)


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


def _daily_run(client: TestClient, clock: SettableClock, pack: LoadedPack, at: datetime) -> None:
    """The scheduler's daily run of ``at``'s date, at ``at``."""
    app: Any = client.app
    clock.at = at
    ctx = jobs.Context(
        engine=app.state.engine, clock=clock, rules=pack.pack.policy.follow_through, default_zone=CLINIC_TZ
    )
    assert jobs.run_daily(ctx, "Asia/Shanghai", at.astimezone(CLINIC_TZ).date()) is not None


def _outcome(client: TestClient, task_id: int, outcome: str, **extra: Any) -> Any:
    return client.post(f"/v1/tasks/{task_id}/outcome", json={"outcome": outcome, **extra})


def _history(client: TestClient, task_id: int) -> list[dict[str, Any]]:
    response = client.get(f"/v1/tasks/{task_id}/history")
    assert response.status_code == 200, response.text
    events: list[dict[str, Any]] = response.json()
    return events


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


# --- 8. Death (or a move away) ends management ---------------------------------------------------------


def test_a_deceased_patient_leaves_management_with_the_history_kept(
    client: TestClient, clock: SettableClock, default_pack: LoadedPack
) -> None:
    team, _ = two_teams(client)
    enrolled = {"team_code": "jimo-01", "enrolled_on": "2025-01-01"}
    patient = register_patient(client, "died", conditions=["hypertension", "diabetes"], **enrolled)
    other = register_patient(client, "alive", **enrolled)
    _visit(client, patient, _at("2026-03-01", 8), _bp(184, 96))  # crisis: red, urgent referral
    assert client.get(f"/v1/patients/{patient}").json()["active_referral"]["status"] == "open"
    before = _indicators(client, team, TODAY)
    assert (before["managed_patients"], before["open_referrals_by_urgency"]) == (2, {"urgent": 1})
    follow_up = _tasks(client, patient)[("follow_up_visit", "")]

    died = _outcome(client, follow_up["id"], "deceased", note="家属告知")
    assert (died.status_code, died.json()["status"]) == (200, "deceased")
    summary = client.get(f"/v1/patients/{patient}").json()
    assert (summary["patient"]["status"], summary["active_referral"]) == ("deceased", None)
    assert datetime.fromisoformat(summary["patient"]["status_changed_at"]) == AS_OF
    assert [r["status"] for r in client.get(f"/v1/patients/{patient}/referrals").json()] == ["closed"]
    assert _tasks(client, patient) == {}
    every = client.get(f"/v1/patients/{patient}/tasks", params={"status": "all"}).json()
    assert {t["status"] for t in every if t["id"] != follow_up["id"]} >= {"cancelled"}
    assert [t["status"] for t in every if t["id"] == follow_up["id"]] == ["deceased"]
    assert "open" not in {t["status"] for t in every}

    # Late data is kept and read, but makes no task and no referral.
    clock.at = AS_OF + timedelta(hours=2)
    _visit(client, patient, _at("2026-03-01", 10), _bp(190, 100), symptoms=["chest_pain"])
    assert _tasks(client, patient) == {}
    assert [r["status"] for r in client.get(f"/v1/patients/{patient}/referrals").json()] == ["closed"]
    assert len(client.get(f"/v1/patients/{patient}/assessments").json()) >= 3  # history readable
    by_hand = client.post(f"/v1/patients/{patient}/referrals", json={"urgency": "urgent", "reason": "胸痛"})
    assert (by_hand.status_code, by_hand.json()["code"]) == (409, "patient-not-managed")

    after = _indicators(client, team, TODAY)
    assert (after["managed_patients"], after["open_referrals_by_urgency"]) == (1, {})
    assert after["bp_control"]["denominator_patient_ids"] == [other]
    assert sum(after["tier_distribution"].values()) == 1
    # ...but the indicators of a day before the death still count the patient.
    assert _indicators(client, team, TODAY - DAY)["managed_patients"] == 2

    _daily_run(client, clock, default_pack, AS_OF + 400 * DAY)  # a year without contact
    flagged = client.get(f"/v1/teams/{team}/contact-flags").json()["items"]
    assert [item["patient_id"] for item in flagged] == [other]
    assert client.get(f"/v1/teams/{team}/tasks", params={"date": (TODAY + 400 * DAY).isoformat()}).json()[
        "total"
    ] == len(_tasks(client, other))


# --- Issue 21, item 4: racing outcomes -----------------------------------------------------------------


def test_of_outcomes_recorded_at_once_on_one_task_one_wins_and_only_its_side_effects_happen(
    client: TestClient,
) -> None:
    outcomes = ["done", "refused", "deceased", "moved", "unreachable", "done", "deceased", "refused"]
    for round_ in range(3):
        patient = register_patient(client, f"race-{round_}", conditions=["hypertension", "diabetes"])
        opened = _tasks(client, patient)
        assert len(opened) >= 6
        target = opened[("follow_up_visit", "")]["id"]
        barrier = threading.Barrier(len(outcomes))

        def record(
            outcome: str, target: int = target, barrier: threading.Barrier = barrier
        ) -> tuple[str, Any]:
            barrier.wait()
            return outcome, _outcome(client, target, outcome)

        with ThreadPoolExecutor(len(outcomes)) as pool:
            answers = list(pool.map(record, outcomes))
        won = [outcome for outcome, answer in answers if answer.status_code == 200]
        lost = [answer for _, answer in answers if answer.status_code != 200]
        assert len(won) == 1, [(o, a.status_code, a.text) for o, a in answers]
        assert {(a.status_code, a.json()["code"]) for a in lost} == {(409, "task-closed")}
        winner = won[0]

        every = client.get(f"/v1/patients/{patient}/tasks", params={"status": "all"}).json()
        task = next(t for t in every if t["id"] == target)
        assert (task["status"], task["outcome"]) == (winner, winner)
        others = {t["status"] for t in every if t["id"] != target and t["status"] != "resolved"}
        ends = winner in ("deceased", "moved")
        assert others == ({"cancelled"} if ends else {"open"})
        status = client.get(f"/v1/patients/{patient}").json()["patient"]["status"]
        assert status == (winner if ends else "active")
        assert [e["outcome"] for e in _history(client, target) if e["action"] == "outcome"] == [winner]


# --- 6. Emergency and urgent work is not snoozed, and an unreachable patient is tried again -------------


def test_emergency_and_urgent_work_cannot_be_snoozed_but_routine_work_can(client: TestClient) -> None:
    emergency = register_patient(client, "emergency")
    _visit(client, emergency, _at("2026-03-01", 8), _bp(188, 100), symptoms=["chest_pain"])
    urgent = register_patient(client, "urgent")
    _visit(client, urgent, _at("2026-03-01", 8), _bp(184, 96))
    tomorrow = (AS_OF + 2 * DAY).isoformat()
    for patient, kind in ((emergency, "emergency_referral"), (urgent, "urgent_referral")):
        task = _tasks(client, patient)[(kind, "")]
        refused = client.post(f"/v1/tasks/{task['id']}/snooze", json={"until": tomorrow, "reason": "外出"})
        assert (refused.status_code, refused.json()["code"]) == (409, "snooze-not-allowed"), kind
        assert _tasks(client, patient)[(kind, "")]["snoozed_until"] is None
    routine = _tasks(client, urgent)[("follow_up_visit", "")]
    snoozed = client.post(f"/v1/tasks/{routine['id']}/snooze", json={"until": tomorrow, "reason": "外出"})
    assert snoozed.status_code == 200, snoozed.text


def test_an_unreachable_patient_keeps_urgent_work_open_due_again_and_escalated_to_the_team_lead(
    client: TestClient, default_pack: LoadedPack
) -> None:
    retry = default_pack.pack.policy.follow_through.unreachable
    patient = register_patient(client, "unreachable")
    _visit(client, patient, _at("2026-03-01", 8), _bp(184, 96))
    urgent = _tasks(client, patient)[("urgent_referral", "")]

    answer = _outcome(client, urgent["id"], "unreachable", note="电话未接通")
    assert answer.status_code == 200, answer.text
    task = answer.json()
    retry_at = AS_OF + (retry.retry_after(urgent["priority"]) or timedelta(0))
    assert (task["status"], datetime.fromisoformat(task["due_at"])) == ("open", retry_at)
    assert datetime.fromisoformat(task["escalated_at"]) == AS_OF
    events = _history(client, urgent["id"])
    assert [(e["action"], e["to_status"], e["outcome"]) for e in events[-2:]] == [
        ("outcome", "open", "unreachable"),
        ("escalated", "open", None),
    ]
    assert events[-1]["details"]["to"] == "team_lead"
    assert _tasks(client, patient)[("urgent_referral", "")]["id"] == urgent["id"]  # the same, still open

    routine = _tasks(client, patient)[("follow_up_visit", "")]  # routine work closes as unreachable
    assert _outcome(client, routine["id"], "unreachable").json()["status"] == "unreachable"


# --- 5. Urgent work is on today's list from the moment it is called for ---------------------------------


def test_an_urgent_referral_due_within_24_hours_is_on_todays_list_not_tomorrows(client: TestClient) -> None:
    team, _ = two_teams(client)
    patient = register_patient(client, "crisis", team_code="jimo-01")
    _visit(client, patient, _at("2026-03-01", 8), _bp(184, 96))  # confirmed crisis: urgent, due in 24 h
    urgent = _tasks(client, patient)[("urgent_referral", "")]
    assert urgent["due_at"] == "2026-03-02T01:00:00Z"  # tomorrow: "due" orders it...
    listed = client.get(f"/v1/teams/{team}/tasks", params={"date": TODAY.isoformat(), "per_page": 500})
    kinds = {(i["kind"], i["days_overdue"]) for i in listed.json()["items"] if i["patient_id"] == patient}
    assert ("urgent_referral", 0) in kinds  # ...it does not hide it
    assert ("follow_up_visit", 0) not in kinds  # routine work still waits for its day (14 days)
    yesterday = client.get(f"/v1/teams/{team}/tasks", params={"date": (TODAY - DAY).isoformat()}).json()
    assert yesterday["total"] == 0  # not before it was called for


# --- 10. The day's list by patient ----------------------------------------------------------------------


def _insert_task(client: TestClient, patient_id: int, team_id: int, kind: str, **fields: Any) -> None:
    with Session(client.app.state.engine) as session:  # type: ignore[attr-defined]
        add_task(session, patient_id, team_id, kind, created_at=AS_OF - 400 * DAY, **fields)
        session.commit()


def test_the_days_list_by_patient_puts_each_patients_tasks_on_one_card_red_and_due_today_first(
    client: TestClient,
) -> None:
    team, _ = two_teams(client)
    yellow = register_patient(client, "yellow", team_code="jimo-01")  # no BP in 90 days: data.gap
    red_today = register_patient(client, "red-today", team_code="jimo-01")
    red_overdue = register_patient(client, "red-overdue", team_code="jimo-01")
    for red in (red_today, red_overdue):
        _visit(client, red, _at("2026-03-01", 7), _bp(184, 96))
    with Session(client.app.state.engine) as session:  # type: ignore[attr-defined]
        session.execute(update(CareTask).values(status="cancelled"))  # only the tasks below are listed
        session.commit()
    year_ago = TODAY - 365 * DAY
    _insert_task(client, yellow, team, "follow_up_visit", priority=3, due_date=year_ago, tier="yellow")
    _insert_task(client, yellow, team, "annual_check", priority=5, due_date=year_ago, tier="yellow")
    _insert_task(client, red_today, team, "follow_up_visit", priority=3, due_date=TODAY, tier="red")
    _insert_task(client, red_today, team, "lipid_recheck", priority=4, due_date=TODAY, tier="red")
    _insert_task(client, red_today, team, "data_gap", priority=4, due_date=TODAY - 2 * DAY, tier="red")
    _insert_task(
        client, red_overdue, team, "follow_up_visit", priority=3, due_date=TODAY - 5 * DAY, tier="red"
    )
    recheck = register_patient(client, "recheck", team_code="jimo-01")
    crisis_at = "2026-03-01T08:00:00+08:00"
    _readings(client, recheck, {**_bp(186, 112), "source": "home", "measured_at": crisis_at})

    flat = client.get(f"/v1/teams/{team}/tasks", params={"date": TODAY.isoformat(), "per_page": 500}).json()
    assert "items" in flat  # the old shape stays
    grouped = client.get(f"/v1/teams/{team}/tasks", params={"date": TODAY.isoformat(), "group": "patient"})
    assert grouped.status_code == 200, grouped.text
    body = grouped.json()
    cards = body["cards"]
    assert [c["patient_id"] for c in cards] == [recheck, red_today, red_overdue, yellow]
    assert (body["group"], body["total"], body["tasks_total"]) == ("patient", 4, flat["total"])
    assert sum(len(c["items"]) for c in cards) == flat["total"]
    by_patient = {c["patient_id"]: c for c in cards}
    today_card = by_patient[red_today]
    assert [i["kind"] for i in today_card["items"]] == ["follow_up_visit", "data_gap", "lipid_recheck"]
    assert (today_card["tier"], today_card["priority"], today_card["days_overdue"]) == ("red", 3, 2)
    assert (today_card["due_today"], by_patient[red_overdue]["due_today"]) == (True, False)

    first = by_patient[recheck]["items"][0]
    assert (first["kind"], by_patient[recheck]["priority"]) == ("bp_recheck", 2)
    reading = first["crisis_reading"]
    assert (reading["systolic"], reading["diastolic"], reading["source"]) == (186.0, 112.0, "home")
    assert datetime.fromisoformat(reading["measured_at"]) == datetime.fromisoformat(crisis_at)
    assert next(i for i in flat["items"] if i["kind"] == "bp_recheck")["crisis_reading"] == reading

    second = client.get(
        f"/v1/teams/{team}/tasks",
        params={"date": TODAY.isoformat(), "group": "patient", "per_page": 2, "page": 2},
    ).json()
    assert ([c["patient_id"] for c in second["cards"]], second["total"]) == ([red_overdue, yellow], 4)


# --- 7. A referral returned (下转) keeps its rule quiet until new evidence ------------------------------


def _lab(kind: str, value: float, at: str) -> dict[str, Any]:
    return {"kind": kind, "value": value, "source": "lab", "measured_at": at}


def _referrals(client: TestClient, patient_id: int) -> list[tuple[str, str | None]]:
    found = client.get(f"/v1/patients/{patient_id}/referrals").json()
    return sorted((r["status"], r["rule_id"]) for r in found)


def test_a_returned_referral_is_not_reopened_by_the_next_lab_but_by_a_new_reading_its_rule_reads(
    client: TestClient, clock: SettableClock
) -> None:
    patient = register_patient(client, "returned", conditions=["dyslipidemia", "diabetes"])
    _readings(client, patient, _lab("ldl_c", 5.2, "2026-03-01T08:00:00+08:00"))  # lipid.severe: routine
    (referral,) = client.get(f"/v1/patients/{patient}/referrals").json()
    assert referral["rule_id"] == "lipid.severe"
    for step, body in (
        ("accept", {"receiving_institution": "三高中心"}),
        ("complete", {"outcome": "起始他汀，6周复查"}),
        ("return", {"follow_up_in_days": 14, "note": "下转社区随访"}),
    ):
        clock.at += timedelta(hours=1)
        assert client.post(f"/v1/referrals/{referral['id']}/{step}", json=body).status_code == 200
    returned_at = clock.at
    referral_work = {("routine_referral", ""), ("referral_follow_up", "")}

    def referral_task_ids() -> set[int]:
        return {t["id"] for key, t in _tasks(client, patient).items() if key in referral_work}

    before = referral_task_ids()  # the follow-up of the first referral (until a visit)

    clock.at += DAY  # the next lab results: an HbA1c, and the LDL-C the centre already saw, sent late
    _readings(
        client,
        patient,
        _lab("hba1c", 7.4, (returned_at + DAY).isoformat()),
        _lab("ldl_c", 5.2, (returned_at - 2 * timedelta(hours=1)).isoformat()),
    )
    assert _referrals(client, patient) == [("returned", "lipid.severe")]
    assert referral_task_ids() == before  # no new referral task
    assert client.get(f"/v1/patients/{patient}/assessment").json()["tier"] == "red"  # still red

    clock.at += DAY  # a new LDL-C, measured after the return: the rule's facts may have changed
    _readings(client, patient, _lab("ldl_c", 5.0, clock.at.isoformat()))
    assert _referrals(client, patient) == [("open", "lipid.severe"), ("returned", "lipid.severe")]
    assert ("routine_referral", "") in _tasks(client, patient)
