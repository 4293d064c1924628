"""Contact flags as the team sees them (PATHWAY.md §5): raised by the daily run after 90 days
(missed_3m) and 365 days (lost_to_follow_up) without contact; no longer shown once the patient is
seen again (a visit or a reading), and cleared by the next run; shown in the patient summary, the
team's list and the indicators."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import update
from sqlmodel import Session, col, select

from pathway.access import permissions
from pathway.clinical.clock import CLINIC_TZ
from pathway.store.tables import Patient
from pathway.store.work_tables import AuditEvent, PatientFlag
from pathway.teams import contact_list
from rules.registry import LoadedPack
from scheduler import jobs
from tests.api.conftest import SettableClock, new_key, register_patient, two_teams
from tests.builders import AS_OF

DAY = timedelta(days=1)
ZONE = "Asia/Shanghai"


def _daily_run(client: TestClient, clock: SettableClock, pack: LoadedPack, at: datetime) -> None:
    """The scheduler's daily run of ``at``'s date, at ``at``."""
    app: Any = client.app
    clock.at = at
    ctx = jobs.Context(
        engine=app.state.engine, clock=clock, rules=pack.pack.policy.follow_through, default_zone=CLINIC_TZ
    )
    assert jobs.run_daily(ctx, ZONE, at.astimezone(CLINIC_TZ).date()) is not None


def _flags(client: TestClient, patient_id: int) -> list[dict[str, Any]]:
    response = client.get(f"/v1/patients/{patient_id}")
    assert response.status_code == 200, response.text
    flags: list[dict[str, Any]] = response.json()["contact_flags"]
    return flags


def _instant(value: str) -> datetime:
    return datetime.fromisoformat(value)


def test_no_contact_for_90_days_flags_missed_3m_and_a_visit_or_reading_clears_it(
    client: TestClient, clock: SettableClock, default_pack: LoadedPack
) -> None:
    visited = register_patient(client, "visited")  # registered at AS_OF, never seen since
    measured = register_patient(client, "measured")
    assert _flags(client, visited) == []

    _daily_run(client, clock, default_pack, AS_OF + 89 * DAY)
    assert _flags(client, visited) == []  # 89 days: not yet

    _daily_run(client, clock, default_pack, AS_OF + 90 * DAY)
    for patient in (visited, measured):
        (flag,) = _flags(client, patient)
        assert flag["flag"] == "missed_3m"
        assert flag["business_date"] == (AS_OF + 90 * DAY).date().isoformat()
        assert _instant(flag["raised_at"]) == AS_OF + 90 * DAY
        assert _instant(flag["last_contact_at"]) == AS_OF  # the registration: no contact since

    seen = (AS_OF + 90 * DAY - timedelta(hours=1)).isoformat()  # after the last contact the flag saw
    visit = {"at": seen, "readings": [{"kind": "bp", "systolic": 132, "diastolic": 82}]}
    assert client.post(f"/v1/patients/{visited}/encounters", json=visit).status_code == 201
    reading = {"kind": "bp", "systolic": 131, "diastolic": 81, "source": "home", "measured_at": seen}
    assert client.post(f"/v1/patients/{measured}/readings", json=[reading]).status_code == 201
    # Seen again: no longer shown at once, though the flags stay uncleared until the next daily run.
    assert _flags(client, visited) == []
    assert _flags(client, measured) == []
    assert _uncleared(client) == {visited: ["missed_3m"], measured: ["missed_3m"]}

    _daily_run(client, clock, default_pack, AS_OF + 91 * DAY)
    assert _uncleared(client) == {}
    assert _flags(client, visited) == []
    assert _flags(client, measured) == []


def _uncleared(client: TestClient) -> dict[int, list[str]]:
    with Session(client.app.state.engine) as session:  # type: ignore[attr-defined]
        rows = session.exec(select(PatientFlag).where(col(PatientFlag.cleared_at).is_(None))).all()
        found: dict[int, list[str]] = {}
        for row in rows:
            found.setdefault(row.patient_id, []).append(row.flag)
        return found


def test_no_contact_for_365_days_adds_lost_to_follow_up(
    client: TestClient, clock: SettableClock, default_pack: LoadedPack
) -> None:
    patient = register_patient(client)
    _daily_run(client, clock, default_pack, AS_OF + 364 * DAY)
    assert [f["flag"] for f in _flags(client, patient)] == ["missed_3m"]
    _daily_run(client, clock, default_pack, AS_OF + 365 * DAY)
    flags = _flags(client, patient)
    assert [f["flag"] for f in flags] == ["missed_3m", "lost_to_follow_up"]  # oldest first
    assert flags[1]["business_date"] == (AS_OF + 365 * DAY).date().isoformat()


def _registered(client: TestClient, external_id: str, team: str, days_ago: int) -> int:
    """A patient of ``team`` registered ``days_ago`` days before AS_OF (at the same hour)."""
    patient_id = register_patient(client, external_id, team_code=team)
    with Session(client.app.state.engine) as session:  # type: ignore[attr-defined]
        session.execute(
            update(Patient).where(col(Patient.id) == patient_id).values(created_at=AS_OF - days_ago * DAY)
        )
        session.commit()
    return patient_id


def _flagged_world(
    client: TestClient, clock: SettableClock, pack: LoadedPack
) -> tuple[int, int, dict[str, int]]:
    team_a, team_b = two_teams(client, "team-a", "team-b")
    p = {
        "lost_500": _registered(client, "lost-500", "team-a", 500),
        "lost_400": _registered(client, "lost-400", "team-a", 400),
        "missed_200": _registered(client, "missed-200", "team-a", 200),
        "missed_120": _registered(client, "missed-120", "team-a", 500),  # seen 120 days ago
        "missed_100_a": _registered(client, "missed-100-a", "team-a", 100),
        "missed_100_b": _registered(client, "missed-100-b", "team-a", 100),  # a tie: by patient id
        "recent": _registered(client, "recent", "team-a", 30),
        "seen": _registered(client, "seen", "team-a", 300),
        "other_team": _registered(client, "other", "team-b", 200),
    }
    for name, days_ago in (("missed_120", 120), ("seen", 10)):
        at = (AS_OF - days_ago * DAY).isoformat()
        reading = {"kind": "bp", "systolic": 128, "diastolic": 80, "source": "home", "measured_at": at}
        assert client.post(f"/v1/patients/{p[name]}/readings", json=[reading]).status_code == 201
    _daily_run(client, clock, pack, AS_OF)
    return team_a, team_b, p


def _listed(client: TestClient, team_id: int, **params: Any) -> dict[str, Any]:
    response = client.get(f"/v1/teams/{team_id}/contact-flags", params=params)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def test_the_team_list_orders_lost_first_then_longest_without_contact_once_per_patient(
    client: TestClient, clock: SettableClock, default_pack: LoadedPack
) -> None:
    team_a, _, p = _flagged_world(client, clock, default_pack)
    body = _listed(client, team_a)
    shown = [(i["patient_id"], i["flag"], i["days_without_contact"]) for i in body["items"]]
    assert shown == [
        (p["lost_500"], "lost_to_follow_up", 500),  # also missed_3m: listed once, under the worse
        (p["lost_400"], "lost_to_follow_up", 400),
        (p["missed_200"], "missed_3m", 200),
        (p["missed_120"], "missed_3m", 120),  # from the last reading, not the registration
        (p["missed_100_a"], "missed_3m", 100),
        (p["missed_100_b"], "missed_3m", 100),
    ]
    assert (body["team_id"], body["total"], body["page"], body["per_page"]) == (team_a, 6, 1, 50)
    item = body["items"][3]
    assert _instant(item["last_contact_at"]) == AS_OF - 120 * DAY
    assert item["external_id"] == "missed-120"
    assert (item["business_date"], _instant(item["raised_at"])) == (AS_OF.date().isoformat(), AS_OF)
    current = client.get(f"/v1/patients/{p['missed_120']}").json()["assessment"]["tier"]
    assert item["tier"] == current


def test_the_team_list_filters_by_flag_and_pages(
    client: TestClient, clock: SettableClock, default_pack: LoadedPack
) -> None:
    team_a, _, p = _flagged_world(client, clock, default_pack)
    lost = _listed(client, team_a, flag="lost_to_follow_up")
    assert (lost["total"], [i["patient_id"] for i in lost["items"]]) == (2, [p["lost_500"], p["lost_400"]])
    missed = _listed(client, team_a, flag="missed_3m")
    assert missed["total"] == 4  # 90–364 days: the patients lost to follow-up are in the other group
    assert p["lost_500"] not in [i["patient_id"] for i in missed["items"]]
    page = _listed(client, team_a, per_page=2, page=2)
    assert (page["total"], [i["patient_id"] for i in page["items"]]) == (
        6,
        [p["missed_200"], p["missed_120"]],
    )
    past_the_end = _listed(client, team_a, per_page=2, page=4)
    assert (past_the_end["total"], past_the_end["items"]) == (6, [])
    assert client.get(f"/v1/teams/{team_a}/contact-flags", params={"flag": "overdue"}).status_code == 422
    assert client.get(f"/v1/teams/{team_a}/contact-flags", params={"per_page": 501}).status_code == 422


def test_a_team_key_reads_its_own_teams_flags_only_and_the_read_is_audited(
    client: TestClient, clock: SettableClock, default_pack: LoadedPack
) -> None:
    team_a, team_b, p = _flagged_world(client, clock, default_pack)
    app: Any = client.app
    own = {"Authorization": f"Bearer {new_key(app, permissions.Role.TEAM, team='team-b')}"}
    mine = client.get(f"/v1/teams/{team_b}/contact-flags", headers=own)
    assert mine.status_code == 200, mine.text
    assert [i["patient_id"] for i in mine.json()["items"]] == [p["other_team"]]

    refused = client.get(f"/v1/teams/{team_a}/contact-flags", headers=own)
    assert refused.status_code == 404  # as if the other team did not exist
    assert set(refused.json()) <= {"code", "message", "field"}
    assert "lost" not in refused.text

    unknown = client.get("/v1/teams/999999/contact-flags")
    assert (unknown.status_code, unknown.json()["code"]) == (404, "unknown-team")
    with Session(app.state.engine) as session:
        actions = session.exec(select(AuditEvent.action)).all()
    assert f"team.contact_flags.read:team:{team_b}" in actions
    assert f"team.contact_flags.read:team:{team_a}" not in actions  # refused before anything was read


def test_the_indicators_count_the_flagged_patients_of_the_team(
    client: TestClient, clock: SettableClock, default_pack: LoadedPack
) -> None:
    team_a, team_b, _ = _flagged_world(client, clock, default_pack)
    counts = client.get(f"/v1/teams/{team_a}/indicators").json()["active_contact_flags"]
    assert counts == {"missed_3m": 4, "lost_to_follow_up": 2}
    other = client.get(f"/v1/teams/{team_b}/indicators").json()["active_contact_flags"]
    assert other == {"missed_3m": 1, "lost_to_follow_up": 0}


def test_a_patient_seen_again_leaves_the_list_and_the_counts_at_once(
    client: TestClient, clock: SettableClock, default_pack: LoadedPack
) -> None:
    team_a, _, p = _flagged_world(client, clock, default_pack)
    visit = {"at": AS_OF.isoformat(), "readings": [{"kind": "bp", "systolic": 130, "diastolic": 80}]}
    assert client.post(f"/v1/patients/{p['lost_500']}/encounters", json=visit).status_code == 201
    body = _listed(client, team_a)
    assert body["total"] == 5
    assert p["lost_500"] not in [i["patient_id"] for i in body["items"]]  # neither flag shows now
    counts = client.get(f"/v1/teams/{team_a}/indicators").json()["active_contact_flags"]
    assert counts == {"missed_3m": 4, "lost_to_follow_up": 1}
    assert sorted(_uncleared(client)[p["lost_500"]]) == ["lost_to_follow_up", "missed_3m"]  # till the run


def test_days_without_contact_count_the_teams_calendar_days() -> None:
    late = datetime(2026, 2, 27, 23, 30, tzinfo=CLINIC_TZ)
    assert contact_list.days_without_contact(late, late + timedelta(hours=1), CLINIC_TZ) == 1
    assert contact_list.days_without_contact(late, late + timedelta(minutes=20), CLINIC_TZ) == 0
    utc_before_midnight = datetime(2026, 2, 27, 15, 30, tzinfo=UTC)  # 23:30 in Shanghai
    assert contact_list.days_without_contact(utc_before_midnight, late + 2 * DAY, CLINIC_TZ) == 2
