"""API keys and roles: no key is 401; a key outside its role is 403; a patient outside its team or
gateway link is 404, answered exactly like an id that does not exist, so the key learns nothing."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlmodel import Session, select

from pathway.access.permissions import Role
from pathway.store.work_tables import ApiKey, AuditEvent
from tests.api.conftest import new_key, register_patient, two_teams

READING = {
    "kind": "bp",
    "systolic": 130,
    "diastolic": 80,
    "source": "wearable",
    "measured_at": "2026-02-28T08:00:00+08:00",
}


def _patient(client: TestClient, external_id: str, team: str | None) -> int:
    return register_patient(client, external_id, team_code=team)


def _as(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def test_no_key_or_a_wrong_key_is_401(client: TestClient) -> None:
    for headers in (
        {"Authorization": ""},
        {"Authorization": "Bearer pw_000000000000_nope"},
        {"X-API-Key": "x"},
    ):
        response = client.get("/v1/rule-packs", headers=headers)
        assert response.status_code == 401
        assert response.json()["code"] == "unauthenticated"


def test_a_team_key_sees_its_own_patients_only(client: TestClient) -> None:
    two_teams(client)
    mine = _patient(client, "m1", "jimo-01")
    theirs = _patient(client, "t1", "jimo-02")
    team_key = new_key(client.app, Role.TEAM, team="jimo-01")  # type: ignore[arg-type]
    assert client.get(f"/v1/patients/{mine}", headers=_as(team_key)).status_code == 200
    for path in (
        f"/v1/patients/{theirs}",
        f"/v1/patients/{theirs}/assessment",
        f"/v1/patients/{theirs}/referrals",
    ):
        refused = client.get(path, headers=_as(team_key))
        unknown = client.get(path.replace(f"/{theirs}", "/999999"), headers=_as(team_key))
        assert (refused.status_code, unknown.status_code) == (404, 404)
        assert refused.json() == {**unknown.json(), "message": f"no patient with id {theirs}"}
    posted = client.post(f"/v1/patients/{mine}/readings", json=[READING], headers=_as(team_key))
    assert posted.status_code == 403  # outside the role: refused whatever the patient


def test_a_gateway_posts_only_for_linked_patients_and_reads_nothing(client: TestClient) -> None:
    patient_id = _patient(client, "g1", None)
    gateway_key = new_key(client.app, Role.GATEWAY, name="band gateway")  # type: ignore[arg-type]
    unlinked = client.post(f"/v1/patients/{patient_id}/readings", json=[READING], headers=_as(gateway_key))
    assert unlinked.status_code == 404  # as if the patient did not exist
    with Session(client.app.state.engine) as session:  # type: ignore[attr-defined]
        prefix = gateway_key.split("_")[1]
        key_id = session.exec(select(ApiKey.id).where(ApiKey.prefix == prefix)).one()
    assert client.post(f"/v1/patients/{patient_id}/gateways", json={"api_key_id": key_id}).status_code == 204
    assert (
        client.post(
            f"/v1/patients/{patient_id}/readings", json=[READING], headers=_as(gateway_key)
        ).status_code
        == 201
    )
    assert client.get(f"/v1/patients/{patient_id}", headers=_as(gateway_key)).status_code == 403
    assert client.post("/v1/patients", json={}, headers=_as(gateway_key)).status_code in (403, 422)


def test_every_read_of_patient_data_is_audited(client: TestClient) -> None:
    patient_id = _patient(client, "a1", None)
    client.get(f"/v1/patients/{patient_id}")
    client.get(f"/v1/patients/{patient_id}/assessments")
    with Session(client.app.state.engine) as session:  # type: ignore[attr-defined]
        actions = [
            e.action for e in session.exec(select(AuditEvent).where(AuditEvent.patient_id == patient_id))
        ]
    assert actions == ["patient.upsert", "patient.read", "assessments.read"]
