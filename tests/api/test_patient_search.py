"""A patient's phone, and GET /v1/patients: found by name, external id or phone, within the key's team."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from pathway.access.permissions import Role
from tests.api.conftest import new_key, register_patient, two_teams


def _auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def test_a_patients_phone_is_stored_and_returned(client: TestClient) -> None:
    patient = register_patient(client, "P-1", phone=" +86 138-0013-8000 ")
    assert client.get(f"/v1/patients/{patient}").json()["patient"]["phone"] == "+86 138-0013-8000"
    again = client.post(
        "/v1/patients",
        json={"source_system": "ehr", "external_id": "P-1", "sex": "male", "birth_date": "1960-01-01"},
    )
    assert again.status_code == 200
    assert again.json()["phone"] is None  # an update sends the whole patient


def test_a_phone_is_checked_loosely(client: TestClient) -> None:
    for phone in ("0532-8888 1234", "13800138000", "+1 555 0100"):
        register_patient(client, f"ok-{phone}", phone=phone)
    for phone in ("12", "138-call-me", "1" * 33, "+-1", "(0532) 8888", "138\x000"):
        body = {"source_system": "ehr", "external_id": "bad", "sex": "male", "birth_date": "1960-01-01"}
        answer = client.post("/v1/patients", json={**body, "phone": phone})
        assert answer.status_code == 422, phone
        assert answer.json()["field"] == "phone", answer.json()


def _world(client: TestClient) -> tuple[int, int, dict[str, int]]:
    team_a, team_b = two_teams(client)
    ids = {
        "wang": register_patient(
            client, "JM-0001", name="王建国", phone="138-0013-8000", team_code="jimo-01"
        ),
        "li": register_patient(client, "JM-0002", name="李秀英", phone="0532 8888 1234", team_code="jimo-01"),
        "wang-b": register_patient(client, "JM-0003", name="王芳", phone="13800138000", team_code="jimo-02"),
        "nobody": register_patient(client, "X-0001", name="Zhang Wei"),
    }
    return team_a, team_b, ids


def _found(answer: Any) -> list[int]:
    assert answer.status_code == 200, answer.text
    return [item["id"] for item in answer.json()["items"]]


def test_patients_are_found_by_name_external_id_or_phone(client: TestClient) -> None:
    team_a, _team_b, ids = _world(client)
    assert _found(client.get("/v1/patients", params={"q": "王"})) == [ids["wang"], ids["wang-b"]]
    assert _found(client.get("/v1/patients", params={"q": "jm-000"})) == [
        ids["wang"],
        ids["li"],
        ids["wang-b"],
    ]
    assert _found(client.get("/v1/patients", params={"q": "zhang"})) == [ids["nobody"]]
    # The phone by its digits, however it was written.
    assert _found(client.get("/v1/patients", params={"q": "13800138000"})) == [ids["wang"], ids["wang-b"]]
    assert _found(client.get("/v1/patients", params={"q": "8888-1234"})) == [ids["li"]]
    assert _found(client.get("/v1/patients", params={"q": "%"})) == []  # no wildcard
    # An exact external id first.
    assert _found(client.get("/v1/patients", params={"q": "JM-0003"})) == [ids["wang-b"]]
    listed = client.get("/v1/patients", params={"team": team_a}).json()
    assert [i["id"] for i in listed["items"]] == [ids["wang"], ids["li"]]
    item = listed["items"][0]
    assert item["name"] == "王建国"
    assert item["phone"] == "138-0013-8000"
    assert item["team_id"] == team_a
    assert item["tier"] in {"red", "yellow", "blue"}  # assessed at registration


def test_the_list_is_paged(client: TestClient) -> None:
    _world(client)
    first = client.get("/v1/patients", params={"per_page": 3}).json()
    second = client.get("/v1/patients", params={"per_page": 3, "page": 2}).json()
    past = client.get("/v1/patients", params={"per_page": 3, "page": 5}).json()
    assert (first["total"], len(first["items"])) == (4, 3)
    assert (second["total"], len(second["items"])) == (4, 1)
    assert (past["total"], past["items"]) == (4, [])


def test_a_team_key_finds_only_its_own_teams_patients(client: TestClient) -> None:
    team_a, team_b, ids = _world(client)
    app: Any = client.app
    team_key = _auth(new_key(app, Role.TEAM, team="jimo-01"))
    assert _found(client.get("/v1/patients", params={"q": "王"}, headers=team_key)) == [ids["wang"]]
    assert _found(client.get("/v1/patients", headers=team_key)) == [ids["wang"], ids["li"]]
    assert _found(client.get("/v1/patients", params={"team": team_a}, headers=team_key)) == [
        ids["wang"],
        ids["li"],
    ]
    refused = client.get("/v1/patients", params={"team": team_b, "q": "王"}, headers=team_key)
    assert (refused.status_code, refused.json()["code"]) == (404, "unknown-team")  # as if it did not exist
    assert "王芳" not in refused.text
    ehr = _auth(new_key(app, Role.EHR))
    assert _found(client.get("/v1/patients", params={"q": "王", "team": team_b}, headers=ehr)) == [
        ids["wang-b"]
    ]
    assert client.get("/v1/patients", params={"team": 9999}, headers=ehr).status_code == 404
    assert client.get("/v1/patients", headers=_auth(new_key(app, Role.GATEWAY))).status_code == 403
