"""Ids, dates and nesting from a request are bounded before they reach Python or the database: a
reference to ``Patient/²`` or to 5,000 digits, a day in year 9999, a resource nested 400 deep, a
forged session cookie — each a 4xx naming the field (a 5xx tells a gateway to retry forever), and in
a Bundle only the entry that holds it is rejected."""

from __future__ import annotations

import asyncio
import json
from collections.abc import MutableMapping
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlmodel import Session

from pathway.access import permissions
from pathway.access.permissions import Role
from tests.api.conftest import new_key, register_patient

AT = "2026-02-28T08:00:00+08:00"
NOT_ROW_IDS = ["Patient/²", "Patient/" + "9" * 5000, "Patient/" + "9" * 20, "Patient/2147483648", "Patient/0"]


def _observation(reference: str, ident: str = "o1") -> dict[str, Any]:
    return {
        "resourceType": "Observation",
        "status": "final",
        "identifier": [{"value": ident}],
        "code": {"coding": [{"system": "http://loinc.org", "code": "1558-6"}]},
        "subject": {"reference": reference},
        "effectiveDateTime": AT,
        "valueQuantity": {
            "value": 6.1,
            "unit": "mmol/L",
            "system": "http://unitsofmeasure.org",
            "code": "mmol/L",
        },
    }


def _bundle(*resources: dict[str, Any]) -> dict[str, Any]:
    return {"resourceType": "Bundle", "type": "batch", "entry": [{"resource": r} for r in resources]}


def _as(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


@pytest.mark.parametrize(
    "reference", NOT_ROW_IDS, ids=["superscript", "5000-digits", "20-digits", "2^31", "0"]
)
def test_a_subject_that_is_no_row_id_is_a_422_naming_the_reference(
    client: TestClient, reference: str
) -> None:
    gateway = new_key(client.app, Role.GATEWAY)  # type: ignore[arg-type]  # not linked to anyone
    for headers in ({}, _as(gateway)):
        answer = client.post("/v1/fhir/Observation", json=_observation(reference), headers=headers)
        assert answer.status_code == 422, answer.text
        assert answer.json()["field"] == "Observation.subject.reference"


@pytest.mark.parametrize("reference", NOT_ROW_IDS[:3], ids=["superscript", "5000-digits", "20-digits"])
def test_a_bad_subject_in_a_bundle_rejects_only_its_entry(client: TestClient, reference: str) -> None:
    patient_id = register_patient(client)
    bundle = _bundle(_observation(reference), _observation(f"Patient/{patient_id}", "o2"))
    answer = client.post("/v1/fhir", json=bundle)
    assert answer.status_code == 201, answer.text
    bad, good = answer.json()["entries"]
    assert (bad["status"], bad["error"]["field"]) == ("rejected", "Bundle.entry.0.resource.subject.reference")
    assert good["status"] == "created"


def _nested(depth: int, element: str, patient_id: int) -> dict[str, Any]:
    resource = _observation(f"Patient/{patient_id}", f"deep-{element}")
    node = resource
    for _ in range(depth):
        child: dict[str, Any] = (
            {"url": "http://example.org/x"}
            if element == "extension"
            else {"resourceType": "Observation", "status": "final", "code": {"text": "x"}}
        )
        node[element] = [child]
        node = child
    return resource


@pytest.mark.parametrize("depth", [200, 400])
@pytest.mark.parametrize("element", ["extension", "contained"])
def test_a_resource_nested_hundreds_deep_is_a_422_and_in_a_bundle_rejects_only_itself(
    client: TestClient, depth: int, element: str
) -> None:
    patient_id = register_patient(client)
    deep = _nested(depth, element, patient_id)
    body = json.dumps(deep)  # the JSON itself parses: the FHIR models recursed past Python's limit
    single = client.post("/v1/fhir/Observation", content=body, headers={"Content-Type": "application/json"})
    assert single.status_code == 422, single.text[:300]
    assert single.json()["field"].startswith(f"Observation.{element}.0.")
    bundle = _bundle(deep, _observation(f"Patient/{patient_id}", "o2"))
    answer = client.post("/v1/fhir", json=bundle)
    assert answer.status_code == 201, answer.text[:300]
    bad, good = answer.json()["entries"]
    assert bad["status"] == "rejected"
    assert bad["error"]["field"].startswith(f"Bundle.entry.0.resource.{element}.0.")
    assert good["status"] == "created"


def test_an_invalid_observation_in_a_bundle_rejects_only_its_entry(client: TestClient) -> None:
    patient_id = register_patient(client)
    invalid = {**_observation(f"Patient/{patient_id}"), "effectiveDateTime": "last tuesday"}
    answer = client.post("/v1/fhir", json=_bundle(invalid, _observation(f"Patient/{patient_id}", "o2")))
    assert answer.status_code == 201, answer.text
    bad, good = answer.json()["entries"]
    assert (bad["status"], bad["error"]["field"]) == ("rejected", "Bundle.entry.0.resource.effectiveDateTime")
    assert good["status"] == "created"


def _team(client: TestClient) -> int:
    with Session(client.app.state.engine) as session:  # type: ignore[attr-defined]
        team = permissions.create_team(session, "jimo-01", "即墨 家庭医生团队 1", "home")
        session.commit()
        assert team.id is not None
        return team.id


@pytest.mark.parametrize(
    ("path", "params", "field"),
    [
        ("tasks", {"date": "9999-12-31"}, "date"),
        ("tasks", {"date": "0001-01-01"}, "date"),
        ("indicators", {"from": "0001-01-01"}, "from"),
        ("indicators", {"from": "2026-01-01", "to": "0001-01-01"}, "to"),
        ("indicators", {"from": "9999-12-31", "to": "9999-12-31"}, "from"),
    ],
)
def test_a_date_outside_the_plausible_years_is_a_422_naming_it(
    client: TestClient, path: str, params: dict[str, str], field: str
) -> None:
    team_id = _team(client)
    answer = client.get(f"/v1/teams/{team_id}/{path}", params=params)
    assert answer.status_code == 422, answer.text
    assert (answer.json()["code"], answer.json()["field"]) == ("invalid-input", field)


def test_the_workbench_list_refuses_a_date_in_year_9999(client: TestClient) -> None:
    app: FastAPI = client.app  # type: ignore[assignment]
    team_id = _team(client)
    browser = TestClient(app)
    page = browser.get("/workbench/login")
    token = page.text.split('name="login_token" value="')[1].split('"')[0]
    form = {"login_token": token, "next": "", "api_key": new_key(app, Role.TEAM, team="jimo-01")}
    assert browser.post("/workbench/login", data=form, follow_redirects=False).status_code == 303
    answer = browser.get(f"/workbench/teams/{team_id}/today", params={"date": "9999-12-31"})
    assert answer.status_code == 422


def _raw_get(app: FastAPI, path: str, headers: list[tuple[bytes, bytes]]) -> int:
    """A GET with headers as raw bytes, as a browser's may arrive (the test client re-encodes them)."""
    sent: list[MutableMapping[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: MutableMapping[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"testserver"), *headers],
        "client": ("127.0.0.1", 50000),
        "server": ("testserver", 80),
    }
    asyncio.run(app(scope, receive, send))
    status: int = sent[0]["status"]
    return status


@pytest.mark.parametrize(
    "cookie",
    [b"\xb2.x.1.a.b", b"1.x.\xb2\xb3.a.b", b"1.x." + b"9" * 5000 + b".a.b", b"9" * 5000 + b".x.1.a.b"],
    ids=["superscript-id", "superscript-expiry", "5000-digit-expiry", "5000-digit-id"],
)
def test_a_forged_session_cookie_is_no_session_not_a_server_error(client: TestClient, cookie: bytes) -> None:
    status = _raw_get(client.app, "/workbench/teams", [(b"cookie", b"pw_session=" + cookie)])  # type: ignore[arg-type]
    assert status == 303  # to the sign-in form, like any cookie that is not a session
