"""PATHWAY.md §1–§2 through the API on both stores: a burst of crisis readings keeps its recheck,
a loose clinic reading is its own encounter, and impossible patient facts are refused."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from fastapi.testclient import TestClient
from sqlmodel import Session

from pathway.access import permissions
from pathway.access.permissions import Role
from pathway.clinical.clock import CLINIC_TZ
from tests.api.conftest import SettableClock, register_patient
from tests.builders import AS_OF


def _at(hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 3, 1, hour, minute, tzinfo=CLINIC_TZ)


def _gateway(client: TestClient, patient_id: int) -> dict[str, str]:
    """A gateway key linked to the patient: its headers."""
    with Session(client.app.state.engine) as session:  # type: ignore[attr-defined]
        key, plaintext = permissions.create_key(session, Role.GATEWAY, "band gateway", AS_OF)
        session.commit()
        key_id = key.id
    linked = client.post(f"/v1/patients/{patient_id}/gateways", json={"api_key_id": key_id})
    assert linked.status_code == 204, linked.text
    return {"Authorization": f"Bearer {plaintext}"}


def _wearable_bp(systolic: int, diastolic: int, at: datetime) -> dict[str, Any]:
    return {
        "kind": "bp",
        "systolic": systolic,
        "diastolic": diastolic,
        "source": "wearable",
        "measured_at": at.isoformat(),
    }


def _open_tasks(client: TestClient, patient_id: int) -> dict[str, dict[str, Any]]:
    response = client.get(f"/v1/patients/{patient_id}/tasks", params={"status": "open"})
    assert response.status_code == 200, response.text
    return {t["kind"]: t for t in response.json() if not t["subject"]}


def _preview(client: TestClient, patient_id: int, as_of: datetime) -> dict[str, Any]:
    response = client.post(
        f"/v1/patients/{patient_id}/assessment:preview", params={"as_of": as_of.isoformat()}
    )
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


def _z(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def test_a_wearable_burst_of_two_crisis_readings_leaves_a_recheck_due_after_the_newest(
    client: TestClient, clock: SettableClock
) -> None:
    patient = register_patient(client, "burst")
    gateway = _gateway(client, patient)

    for at in (_at(7, 30), _at(7, 32)):
        clock.at = at
        reading = _wearable_bp(186, 112, at) if at.minute == 30 else _wearable_bp(188, 114, at)
        posted = client.post(f"/v1/patients/{patient}/readings", json=[reading], headers=gateway)
        assert posted.status_code == 201, posted.text

    recheck = _open_tasks(client, patient).get("bp_recheck")
    assert recheck is not None, "an unconfirmed crisis burst must leave a bp_recheck open"
    assert recheck["due_at"] == _z(_at(9, 32))  # 2 h after the newest crisis reading
    replayed = _preview(client, patient, _at(7, 32))
    assert [t["due"] for t in replayed["tasks"] if t["kind"] == "bp_recheck"] == [_at(9, 32).isoformat()]

    clock.at = _at(8, 5)
    calm = client.post(
        f"/v1/patients/{patient}/readings", json=[_wearable_bp(150, 90, _at(8))], headers=gateway
    )
    assert calm.status_code == 201, calm.text
    assert "bp_recheck" not in _open_tasks(client, patient)  # a BP after the newest crisis: rechecked
    assert "bp_recheck" not in {t["kind"] for t in _preview(client, patient, _at(8, 5))["tasks"]}


def test_a_burst_in_one_batch_also_leaves_its_recheck(client: TestClient, clock: SettableClock) -> None:
    patient = register_patient(client, "batch")
    gateway = _gateway(client, patient)
    clock.at = _at(7, 33)
    burst = [_wearable_bp(186, 112, _at(7, 30)), _wearable_bp(188, 114, _at(7, 32))]
    assert client.post(f"/v1/patients/{patient}/readings", json=burst, headers=gateway).status_code == 201

    assert _open_tasks(client, patient)["bp_recheck"]["due_at"] == _z(_at(9, 32))


def test_a_crisis_reading_later_in_the_burst_moves_the_open_recheck_to_it(
    client: TestClient, clock: SettableClock
) -> None:
    patient = register_patient(client, "moved")
    gateway = _gateway(client, patient)
    clock.at = _at(7, 31)
    client.post(
        f"/v1/patients/{patient}/readings", json=[_wearable_bp(186, 112, _at(7, 30))], headers=gateway
    )
    first = _open_tasks(client, patient)["bp_recheck"]
    assert first["due_at"] == _z(_at(9, 30))

    clock.at = _at(7, 34)
    client.post(
        f"/v1/patients/{patient}/readings", json=[_wearable_bp(190, 112, _at(7, 33))], headers=gateway
    )
    second = _open_tasks(client, patient)["bp_recheck"]
    assert (second["id"], second["due_at"]) == (first["id"], _z(_at(9, 33)))  # the same task, not resolved
    history = client.get(f"/v1/tasks/{first['id']}/history").json()
    assert [e["action"] for e in history] == ["opened", "updated"]


def _lab_ldl(at: datetime) -> dict[str, Any]:
    return {"kind": "ldl_c", "value": 1.6, "source": "lab", "measured_at": at.isoformat()}


def test_a_recheck_never_done_stays_open_through_other_readings_within_the_24_hours(
    client: TestClient, clock: SettableClock
) -> None:
    patient = register_patient(client, "lab-within")
    clock.at = _at(6, 1)
    crisis = {**_wearable_bp(118, 110, _at(6)), "source": "home"}  # diastolic alone is a crisis
    assert client.post(f"/v1/patients/{patient}/readings", json=[crisis]).status_code == 201
    opened = _open_tasks(client, patient)["bp_recheck"]

    later = datetime(2026, 3, 2, 5, 59, tzinfo=CLINIC_TZ)  # 23 h 59 min after the crisis reading
    clock.at = later
    assert client.post(f"/v1/patients/{patient}/readings", json=[_lab_ldl(later)]).status_code == 201
    assert _open_tasks(client, patient)["bp_recheck"]["id"] == opened["id"]  # a lab value is no recheck


def test_a_recheck_no_longer_called_for_once_the_crisis_is_24_hours_old_is_resolved_saying_so(
    client: TestClient, clock: SettableClock
) -> None:
    """Found by the property test: the stored recheck outlived the assessment's call for it."""
    patient = register_patient(client, "lab-after")
    clock.at = _at(6, 0)
    crisis = {**_wearable_bp(118, 110, _at(6)), "source": "home"}
    assert client.post(f"/v1/patients/{patient}/readings", json=[crisis]).status_code == 201
    opened = _open_tasks(client, patient)["bp_recheck"]

    after = datetime(2026, 3, 2, 6, 0, tzinfo=CLINIC_TZ)
    clock.at = after.replace(second=30)
    assert client.post(f"/v1/patients/{patient}/readings", json=[_lab_ldl(after)]).status_code == 201
    assert "bp_recheck" not in {t["kind"] for t in _preview(client, patient, clock.at)["tasks"]}
    assert "bp_recheck" not in _open_tasks(client, patient)
    history = client.get(f"/v1/tasks/{opened['id']}/history").json()
    last = history[-1]
    assert (last["action"], last["note"]) == ("resolved", "the assessment no longer calls for it")


def test_a_loose_clinic_crisis_in_the_evening_is_its_own_encounter_not_averaged_into_the_visit(
    client: TestClient, clock: SettableClock
) -> None:
    patient = register_patient(client, "evening")
    clock.at = _at(8, 5)
    visit = {"at": _at(8).isoformat(), "readings": [{"kind": "bp", "systolic": 130, "diastolic": 80}]}
    assert client.post(f"/v1/patients/{patient}/encounters", json=visit).status_code == 201

    clock.at = _at(20, 5)
    loose = {
        "kind": "bp",
        "systolic": 186,
        "diastolic": 104,
        "source": "clinic",
        "measured_at": _at(20).isoformat(),
    }
    assert client.post(f"/v1/patients/{patient}/readings", json=[loose]).status_code == 201

    assessment = client.get(f"/v1/patients/{patient}/assessment").json()
    assert (assessment["tier"], assessment["referral_urgency"]) == ("red", "urgent")
    facts = assessment["result"]["facts"]
    assert (facts["office_sbp"], facts["office_dbp"]) == (186.0, 104.0)
    assert "urgent_referral" in _open_tasks(client, patient)


def test_a_birth_date_after_today_or_a_pregnant_man_is_refused_naming_the_field(client: TestClient) -> None:
    body = {"source_system": "ehr", "external_id": "x", "sex": "male", "conditions": ["hypertension"]}
    tomorrow = client.post("/v1/patients", json={**body, "birth_date": "2026-03-02"})
    assert (tomorrow.status_code, tomorrow.json()["field"]) == (422, "birth_date")
    pregnant = client.post("/v1/patients", json={**body, "birth_date": "1990-01-01", "pregnant": True})
    assert (pregnant.status_code, pregnant.json()["field"]) == (422, "pregnant")
    assert client.post("/v1/patients", json={**body, "birth_date": "2026-03-01"}).status_code == 201


def test_a_replay_before_the_patient_was_born_is_refused_naming_as_of(client: TestClient) -> None:
    patient = register_patient(client, "young", birth_date="2020-06-01")
    before = client.post(
        f"/v1/patients/{patient}/assessment:preview", params={"as_of": "2020-05-31T09:00:00+08:00"}
    )
    assert (before.status_code, before.json()["field"]) == (422, "as_of")


def test_two_visits_at_one_instant_are_read_in_one_order_stored_and_replayed(
    client: TestClient, clock: SettableClock
) -> None:
    patient = register_patient(client, "same-instant")
    clock.at = _at(8, 5)
    for systolic, diastolic in ((186, 104), (130, 80)):  # recorded in this order, at the same instant
        visit = {
            "at": _at(8).isoformat(),
            "readings": [{"kind": "bp", "systolic": systolic, "diastolic": diastolic}],
        }
        assert client.post(f"/v1/patients/{patient}/encounters", json=visit).status_code == 201

    stored = client.get(f"/v1/patients/{patient}/assessment").json()
    replayed = _preview(client, patient, _at(8, 5))
    assert stored["result"]["facts"]["office_sbp"] == replayed["facts"]["office_sbp"] == 130.0  # the later id
    assert stored["referral_urgency"] == (replayed["referral"] or {}).get("urgency")


def test_encounters_are_ordered_by_instant_then_id_whatever_order_the_rows_come_in() -> None:
    from pathway.patients.history import history_from_rows
    from pathway.store.tables import Patient

    patient = Patient(
        source_system="x",
        external_id="y",
        sex="male",
        birth_date=date(1960, 1, 1),
        created_at=AS_OF,
        updated_at=AS_OF,
    )
    at = _at(8)
    rows: list[Any] = [
        (2, "bp", "clinic", at, None, 130.0, 80.0, None),
        (1, "bp", "clinic", at, None, 186.0, 104.0, None),
    ]
    history = history_from_rows(patient, [], rows, [(2, at), (1, at)], [])
    assert [e.readings[0].systolic for e in history.encounters] == [186, 130]
