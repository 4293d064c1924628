"""Issue #16: prescriptions arrive (a batch, once per source id, versions for a change or a stop),
are stored, and are read back into the patient's history; visits record the medication answers."""

from __future__ import annotations

import dataclasses
from datetime import date, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session, select

from pathway.access.permissions import Role
from pathway.clinical.history import PatientHistory
from pathway.clinical.medication import Adherence, MedicationClass
from pathway.patients import reassessment
from pathway.patients.history import history_of
from pathway.store.tables import Patient, PrescriptionRecord
from tests.api.conftest import linked_gateway, new_key, register_patient, two_teams
from tests.builders import AS_OF

TODAY = AS_OF.date()


def _rx(source_id: str = "rx-1", **fields: Any) -> dict[str, Any]:
    return {
        "source_prescription_id": source_id,
        "atc": "C08CA01",
        "drug": "苯磺酸氨氯地平片",
        "dose": "5 mg qd",
        "started_on": (TODAY - timedelta(days=10)).isoformat(),
        "supply_days": 56,
        **fields,
    }


def _as(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def _post(client: TestClient, patient_id: int, *items: Any, **kwargs: Any) -> Any:
    response = client.post(f"/v1/patients/{patient_id}/prescriptions", json=list(items), **kwargs)
    assert response.status_code == 201, response.text
    return response.json()


def _history(client: TestClient, patient_id: int) -> PatientHistory:
    with Session(client.app.state.engine) as session:  # type: ignore[attr-defined]
        patient = session.get(Patient, patient_id)
        assert patient is not None
        return history_of(session, patient)


def _versions(client: TestClient, patient_id: int) -> list[PrescriptionRecord]:
    with Session(client.app.state.engine) as session:  # type: ignore[attr-defined]
        statement = select(PrescriptionRecord).where(PrescriptionRecord.patient_id == patient_id)
        return list(session.exec(statement.order_by(PrescriptionRecord.id)))  # type: ignore[arg-type]


def test_a_batch_is_answered_per_item_and_nothing_of_a_rejected_item_is_stored(client: TestClient) -> None:
    patient_id = register_patient(client)
    body = _post(
        client,
        patient_id,
        _rx("rx-1"),
        _rx("rx-2", atc=None, classes=["statin"], drug="阿托伐他汀钙片"),
        _rx("rx-3", atc="Z99"),
        _rx("rx-1"),
    )

    assert [item["status"] for item in body["items"]] == ["created", "created", "rejected", "duplicate"]
    assert body["items"][2]["error"] == {
        "code": "unknown-code",
        "message": body["items"][2]["error"]["message"],
        "field": "prescriptions.2.atc",
    }
    assert body["items"][3]["prescription_id"] == body["items"][0]["prescription_id"]
    assert (body["created"], body["duplicate"], body["rejected"], body["updated"]) == (2, 1, 1, 0)
    assert body["assessment"] is not None
    assert sorted(v.source_prescription_id for v in _versions(client, patient_id)) == ["rx-1", "rx-2"]
    history = _history(client, patient_id)
    assert {p.source_id: p.classes for p in history.prescriptions} == {
        "rx-1": (MedicationClass.CCB,),
        "rx-2": (MedicationClass.STATIN,),
    }
    assert all(p.recorded_at is not None for p in history.prescriptions)


@pytest.mark.parametrize(
    ("changes", "code", "field"),
    [
        ({"classes": ["aspirin"]}, "unknown-code", "prescriptions.0.classes.0"),
        ({"atc": "X01"}, "unknown-code", "prescriptions.0.atc"),
        ({"atc": None}, "invalid-input", "prescriptions.0.classes"),
        ({"supply_days": 0}, "invalid-input", "prescriptions.0.supply_days"),
        ({"supply_days": 366}, "invalid-input", "prescriptions.0.supply_days"),
        ({"stopped_on": "2026-01-01"}, "invalid-input", "prescriptions.0.stopped_on"),
        ({"started_on": "2026-03-05"}, "future-timestamp", "prescriptions.0.started_on"),
        ({"drug": ""}, "invalid-input", "prescriptions.0.drug"),
        ({"colour": "red"}, "invalid-input", "prescriptions.0.colour"),
        ({"started_on": 20260101}, "invalid-input", "prescriptions.0.started_on"),
    ],
)
def test_each_validation_error_names_its_field(
    client: TestClient, changes: dict[str, Any], code: str, field: str
) -> None:
    patient_id = register_patient(client)
    item = _post(client, patient_id, _rx(**changes))["items"][0]
    assert item["status"] == "rejected"
    assert (item["error"]["code"], item["error"]["field"]) == (code, field)
    assert _versions(client, patient_id) == []


def test_a_change_and_a_stop_are_versions_and_a_replay_before_them_sees_the_old_one(
    client: TestClient, clock: Any
) -> None:
    patient_id = register_patient(client)
    first = _post(client, patient_id, _rx(dose="5 mg qd"))["items"][0]
    recorded = clock.at
    clock.at = recorded + timedelta(hours=2)
    changed = _post(client, patient_id, _rx(dose="10 mg qd"))["items"][0]
    assert changed["status"] == "updated"
    assert changed["supersedes"] == first["prescription_id"]
    clock.at = recorded + timedelta(hours=4)
    stopped = client.post(
        f"/v1/patients/{patient_id}/prescriptions/{changed['prescription_id']}/stop",
        json={"stopped_on": TODAY.isoformat()},
    )
    assert stopped.status_code == 201, stopped.text
    assert stopped.json()["prescription"]["stopped_on"] == TODAY.isoformat()
    again = client.post(
        f"/v1/patients/{patient_id}/prescriptions/{stopped.json()['prescription']['id']}/stop",
        json={"stopped_on": TODAY.isoformat()},
    )
    assert (again.status_code, again.json()["stopped"]) == (200, False)
    old = client.post(
        f"/v1/patients/{patient_id}/prescriptions/{first['prescription_id']}/stop",
        json={"stopped_on": TODAY.isoformat()},
    )
    assert (old.status_code, old.json()["code"]) == (409, "prescription-superseded")
    assert [v.dose for v in _versions(client, patient_id)] == ["5 mg qd", "10 mg qd", "10 mg qd"]

    seen: dict[datetime, PatientHistory] = {}
    app: Any = client.app

    def spy(history: PatientHistory, as_of: datetime) -> Any:
        seen[as_of] = history
        return app.state.pathway.assess(history, as_of)

    config = dataclasses.replace(app.state.pathway, assess=spy)
    with Session(app.state.engine) as session:
        patient = session.get(Patient, patient_id)
        assert patient is not None
        for at in (
            recorded + timedelta(hours=1),
            recorded + timedelta(hours=3),
            recorded + timedelta(hours=5),
        ):
            reassessment.preview(session, patient, config, at)
        before = reassessment.preview(session, patient, config, recorded - timedelta(minutes=1))
    assert before is not None
    doses = [[(p.dose, p.stopped_on) for p in seen[at].prescriptions] for at in sorted(seen)]
    assert doses == [[], [("5 mg qd", None)], [("10 mg qd", None)], [("10 mg qd", TODAY)]]
    assert client.get(f"/v1/patients/{patient_id}/prescriptions").json()["prescriptions"] == []
    listed = client.get(f"/v1/patients/{patient_id}/prescriptions?all=true").json()["prescriptions"]
    assert [(p["dose"], p["stopped_on"]) for p in listed] == [("10 mg qd", TODAY.isoformat())]


def test_a_re_post_with_stopped_on_is_an_update(client: TestClient) -> None:
    patient_id = register_patient(client)
    _post(client, patient_id, _rx())
    item = _post(client, patient_id, _rx(stopped_on=TODAY.isoformat()))["items"][0]
    assert item["status"] == "updated"
    assert [p.stopped_on for p in _history(client, patient_id).prescriptions] == [TODAY]


def test_an_idempotency_key_replays_the_answer_and_refuses_another_body(client: TestClient) -> None:
    patient_id = register_patient(client)
    headers = {"Idempotency-Key": "rx-batch-1"}
    first = client.post(f"/v1/patients/{patient_id}/prescriptions", json=[_rx()], headers=headers)
    replay = client.post(f"/v1/patients/{patient_id}/prescriptions", json=[_rx()], headers=headers)
    assert first.status_code == replay.status_code == 201
    assert replay.headers["Idempotent-Replayed"] == "true"
    assert replay.json() == first.json()
    other = client.post(f"/v1/patients/{patient_id}/prescriptions", json=[_rx(dose="10 mg")], headers=headers)
    assert (other.status_code, other.json()["code"]) == (409, "idempotency-key-reused")
    assert len(_versions(client, patient_id)) == 1


def test_identity_is_per_source_system(client: TestClient) -> None:
    patient_id = register_patient(client)
    _post(client, patient_id, _rx())
    other = _post(client, patient_id, _rx(), params={"source_system": "his-2"})["items"][0]
    assert other["status"] == "created"
    assert len({v.source_system for v in _versions(client, patient_id)}) == 2


def test_a_gateway_may_not_post_and_another_team_reads_nothing(client: TestClient) -> None:
    one, _two = two_teams(client)
    patient_id = register_patient(client, team_code="jimo-01")
    gateway = linked_gateway(client, patient_id)
    refused = client.post(f"/v1/patients/{patient_id}/prescriptions", json=[_rx()], headers=_as(gateway))
    assert refused.status_code == 403
    _post(client, patient_id, _rx())
    app: Any = client.app
    mine, theirs = new_key(app, Role.TEAM, team="jimo-01"), new_key(app, Role.TEAM, team="jimo-02")
    read = client.get(f"/v1/patients/{patient_id}/prescriptions", headers=_as(mine))
    assert read.status_code == 200
    assert [p["drug"] for p in read.json()["prescriptions"]] == ["苯磺酸氨氯地平片"]
    assert client.get(f"/v1/patients/{patient_id}/prescriptions", headers=_as(theirs)).status_code == 404
    posted = client.post(f"/v1/patients/{patient_id}/prescriptions", json=[_rx()], headers=_as(mine))
    assert posted.status_code == 403
    assert one


def test_a_visit_records_the_medication_answers_and_a_change_is_a_new_version(client: TestClient) -> None:
    patient_id = register_patient(client)
    visit = {
        "at": (AS_OF - timedelta(hours=1)).isoformat(),
        "source_encounter_id": "v-1",
        "readings": [{"kind": "bp", "systolic": 150, "diastolic": 92}],
        "medications_reviewed": True,
        "adherence": "intermittent",
        "adverse_reaction": False,
    }
    assert client.post(f"/v1/patients/{patient_id}/encounters", json=visit).status_code == 201
    assert client.post(f"/v1/patients/{patient_id}/encounters", json=visit).json()["created"] is False
    changed = {**visit, "adherence": "regular", "adverse_reaction": True, "adverse_reaction_text": "干咳"}
    answer = client.post(f"/v1/patients/{patient_id}/encounters", json=changed)
    assert (answer.status_code, answer.json()["amended"]) == (200, True)
    (encounter,) = _history(client, patient_id).encounters
    assert (encounter.medications_reviewed, encounter.adherence, encounter.adverse_reaction) == (
        True,
        Adherence.REGULAR,
        True,
    )
    bad = client.post(
        f"/v1/patients/{patient_id}/encounters",
        json={**visit, "source_encounter_id": "v-2", "adherence": "sometimes"},
    )
    assert (bad.status_code, bad.json()["code"], bad.json()["field"]) == (422, "unknown-code", "adherence")
    text_alone = {
        **visit,
        "source_encounter_id": "v-3",
        "adverse_reaction": None,
        "adverse_reaction_text": "x",
    }
    bad = client.post(f"/v1/patients/{patient_id}/encounters", json=text_alone)
    assert (bad.status_code, bad.json()["field"]) == (422, "adverse_reaction_text")


def test_a_patient_without_prescriptions_reads_none_and_is_assessed_as_before(client: TestClient) -> None:
    patient_id = register_patient(client)
    with Session(client.app.state.engine) as session:  # type: ignore[attr-defined]
        patient = session.get(Patient, patient_id)
        assert patient is not None
        assert patient.has_prescriptions is False
    assert _history(client, patient_id).prescriptions == ()
    _post(client, patient_id, _rx())
    with Session(client.app.state.engine) as session:  # type: ignore[attr-defined]
        patient = session.get(Patient, patient_id)
        assert patient is not None
        assert patient.has_prescriptions is True


def test_the_started_on_may_be_today_and_dates_compare_as_clinic_days(client: TestClient) -> None:
    patient_id = register_patient(client)
    item = _post(client, patient_id, _rx(started_on=TODAY.isoformat()))["items"][0]
    assert item["status"] == "created"
    assert date.fromisoformat(
        client.get(f"/v1/patients/{patient_id}/prescriptions").json()["prescriptions"][0]["supply_end"]
    ) == TODAY + timedelta(days=56)
