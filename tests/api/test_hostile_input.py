"""Hostile input: malformed JSON, NaN and Infinity, huge numbers, wrong types, the NUL character — a
4xx naming the field, never a 500; unicode, SQL and HTML in free text are stored inertly and given back
verbatim; an item of a readings batch that is not a reading is a rejected item, not a 422."""

from __future__ import annotations

import asyncio
import json
import re
from typing import Any

import psycopg.errors
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import func
from sqlalchemy.exc import DataError
from sqlmodel import Session, SQLModel, select

from api import errors
from pathway.access import permissions
from pathway.access.permissions import Role
from pathway.store.tables import CareCheckRecord, Encounter, Patient, Reading
from tests.api.conftest import new_key, register_patient

AT = "2026-02-28T08:00:00+08:00"


def _raw(client: TestClient, path: str, body: str) -> tuple[int, Any]:
    response = client.post(path, content=body, headers={"Content-Type": "application/json"})
    return response.status_code, response.json()


@pytest.mark.parametrize("systolic", ["NaN", "Infinity", "-Infinity", '"一百三十"', "true"])
def test_non_numbers_are_rejected_items_naming_the_field(client: TestClient, systolic: str) -> None:
    patient_id = register_patient(client)
    body = f"[{_reading('130')[1:-1]}, {_reading(systolic)[1:-1]}]"
    status, answer = _raw(client, f"/v1/patients/{patient_id}/readings", body)
    assert status == 201  # a batch answers per item: this one is rejected, the other one stored
    item = answer["items"][1]
    assert (answer["created"], item["status"], item["error"]["code"]) == (1, "rejected", "invalid-input")
    assert item["error"]["field"] == "readings.1.systolic"
    assert _rows(client, Reading) == 1


@pytest.mark.parametrize("systolic", ["1e308", "1" + "0" * 400, "-5"])
def test_huge_or_impossible_numbers_are_rejected_items_with_the_accepted_range(
    client: TestClient, systolic: str
) -> None:
    patient_id = register_patient(client)
    status, answer = _raw(client, f"/v1/patients/{patient_id}/readings", _reading(systolic))
    assert status == 201  # a batch answers per item: this one is rejected, nothing stored
    item = answer["items"][0]
    assert (answer["created"], item["status"], item["error"]["code"]) == (0, "rejected", "implausible-value")
    assert item["error"]["field"] == "readings.0.systolic"


def _reading(systolic: str) -> str:
    fields = f'"kind": "bp", "systolic": {systolic}, "diastolic": 80, "source": "home", "measured_at": "{AT}"'
    return f"[{{{fields}}}]"


@pytest.mark.parametrize(
    "body",
    ['[{"kind": "bp", "systolic": 130,', "{", "null", '"readings"', "[]", '[{"kind": "bp"}] trailing'],
)
def test_malformed_json_is_a_clear_422(client: TestClient, body: str) -> None:
    patient_id = register_patient(client)
    status, answer = _raw(client, f"/v1/patients/{patient_id}/readings", body)
    assert status == 422
    assert answer["code"] == "invalid-input"


def test_unicode_sql_and_html_in_free_text_are_stored_inertly(client: TestClient) -> None:
    name = "王小明 𠮷 Zoë 😀 ‮gnp.exe"
    patient_id = register_patient(client, "p-hostile", name=name)
    assert client.get(f"/v1/patients/{patient_id}").json()["patient"]["name"] == name
    reason = "'); DROP TABLE patient; -- <script>alert('x')</script> \" OR 1=1"
    referral = client.post(
        f"/v1/patients/{patient_id}/referrals", json={"urgency": "routine", "reason": reason}
    )
    assert referral.status_code == 201, referral.text
    stored = client.get(f"/v1/patients/{patient_id}/referrals").json()
    assert [r["reason"] for r in stored] == [reason]
    assert client.get(f"/v1/patients/{patient_id}").status_code == 200  # the table is still there


def test_a_control_character_or_oversized_text_is_refused_not_truncated(client: TestClient) -> None:
    patient_id = register_patient(client)
    too_long = client.post(
        f"/v1/patients/{patient_id}/referrals", json={"urgency": "routine", "reason": "x" * 501}
    )
    assert too_long.status_code == 422
    assert too_long.json()["field"] == "reason"


# --- The NUL character (U+0000): PostgreSQL text cannot hold it, so every inbound text refuses it ----

NUL = "\u0000"


def _rows(client: TestClient, table: type[SQLModel]) -> int:
    with Session(client.app.state.engine) as session:  # type: ignore[attr-defined]
        return session.exec(select(func.count()).select_from(table)).one()


def _refused(response: Any, field: str) -> None:
    assert response.status_code == 422, response.text
    assert (response.json()["code"], response.json()["field"]) == ("invalid-input", field)
    assert NUL not in response.text


def _bp(**fields: Any) -> dict[str, Any]:
    return {"kind": "bp", "systolic": 130, "diastolic": 80, "source": "home", "measured_at": AT, **fields}


@pytest.mark.parametrize("field", ["source_system", "external_id", "name", "team_code"])
def test_a_nul_character_in_a_patients_text_is_refused_naming_the_field(
    client: TestClient, field: str
) -> None:
    body = {"source_system": "ehr", "external_id": "p1", "sex": "male", "birth_date": "1960-01-01"}
    _refused(client.post("/v1/patients", json={**body, field: f"a{NUL}b"}), field)
    assert _rows(client, Patient) == 0


@pytest.mark.parametrize("field", ["device_id", "source_reading_id", "unit"])
def test_a_nul_character_in_a_readings_text_rejects_that_item_naming_the_field(
    client: TestClient, field: str
) -> None:
    patient_id = register_patient(client)
    readings = [_bp(source_reading_id="r1"), _bp(**{"source_reading_id": "r2", field: f"d{NUL}1"})]
    # Like any other wrong type in an item (a string for a number), that item alone is rejected.
    answer = client.post(
        f"/v1/patients/{patient_id}/readings", json=readings, headers={"Idempotency-Key": "nul-1"}
    )
    _rejected_item(answer, 1, f"readings.1.{field}")
    assert _rows(client, Reading) == 1


def test_an_unknown_field_named_with_a_nul_character_is_named_without_it(client: TestClient) -> None:
    """The answer of a keyed request is stored (JSONB on PostgreSQL, which cannot hold U+0000)."""
    patient_id = register_patient(client)
    readings = [_bp(), _bp(measured_at="2026-02-28T09:00:00+08:00", **{f"no{NUL}te": "x"})]
    url = f"/v1/patients/{patient_id}/readings"
    first = client.post(url, json=readings, headers={"Idempotency-Key": "nul-2"})
    _rejected_item(first, 1, "readings.1.no\\u0000te")
    again = client.post(url, json=readings, headers={"Idempotency-Key": "nul-2"})
    assert (again.headers["Idempotent-Replayed"], again.json()) == ("true", first.json())
    assert _rows(client, Reading) == 1


def test_a_lone_surrogate_in_an_item_is_a_rejected_item_not_a_server_error(client: TestClient) -> None:
    """JSON may spell half of a UTF-16 pair (``\\ud800``): not text, so its item is rejected."""
    patient_id = register_patient(client)
    value = json.dumps(_bp(measured_at="2026-02-28T09:00:00+08:00"))[:-1] + ', "device_id": "d\\udc00"}'
    key = json.dumps(_bp(measured_at="2026-02-28T10:00:00+08:00"))[:-1] + ', "no\\ud800te": 1}'
    body = f"[{json.dumps(_bp())}, {value}, {key}]"
    headers = {"Content-Type": "application/json", "Idempotency-Key": "surrogate-1"}
    url = f"/v1/patients/{patient_id}/readings"
    first = client.post(url, content=body, headers=headers)
    assert first.status_code == 201, first.text
    answer = [
        (i["status"], i["error"] and (i["error"]["code"], i["error"]["field"])) for i in first.json()["items"]
    ]
    assert answer == [
        ("created", None),
        ("rejected", ("invalid-input", "readings.1.device_id")),
        ("rejected", ("invalid-input", "readings.2")),
    ]
    again = client.post(url, content=body, headers=headers)
    assert (again.headers["Idempotent-Replayed"], again.json()) == ("true", first.json())
    assert _rows(client, Reading) == 1


def _rejected_item(response: Any, index: int, field: str) -> None:
    assert response.status_code == 201, response.text
    answer = response.json()
    item = answer["items"][index]
    assert (answer["rejected"], item["status"]) == (1, "rejected")
    assert (item["error"]["code"], item["error"]["field"]) == ("invalid-input", field)
    assert NUL not in response.text


@pytest.mark.parametrize("source_system", [f"ehr{NUL}x", "x" * 65], ids=["nul", "over-64"])
@pytest.mark.parametrize(
    ("path", "body", "table"),
    [
        ("readings", [_bp()], Reading),
        ("encounters", {"at": AT, "readings": [{"kind": "bp", "systolic": 130, "diastolic": 80}]}, Encounter),
        ("checks", [{"kind": "fundus", "at": AT}], CareCheckRecord),
    ],
    ids=["readings", "encounters", "checks"],
)
def test_a_source_system_parameter_the_database_cannot_store_is_refused(
    client: TestClient, path: str, body: Any, table: type[SQLModel], source_system: str
) -> None:
    patient_id = register_patient(client)
    answer = client.post(
        f"/v1/patients/{patient_id}/{path}", params={"source_system": source_system}, json=body
    )
    _refused(answer, "source_system")
    assert _rows(client, table) == 0
    assert _rows(client, Reading) == 0


def test_a_nul_character_in_a_visits_source_id_is_refused(client: TestClient) -> None:
    patient_id = register_patient(client)
    visit = {"at": AT, "source_encounter_id": f"v{NUL}1"}
    _refused(client.post(f"/v1/patients/{patient_id}/encounters", json=visit), "source_encounter_id")
    assert _rows(client, Encounter) == 0


def test_a_nul_character_in_any_step_of_the_referral_loop_is_refused(client: TestClient) -> None:
    patient_id = register_patient(client)
    referrals = f"/v1/patients/{patient_id}/referrals"
    _refused(client.post(referrals, json={"urgency": "routine", "reason": f"r{NUL}"}), "reason")
    assert client.get(referrals).json() == []
    referral_id = client.post(referrals, json={"urgency": "routine", "reason": "BP 182/110 twice"}).json()[
        "id"
    ]
    steps = [
        ("accept", "receiving_institution", {}),
        ("complete", "outcome", {}),
        ("return", "note", {"follow_up_in_days": 14}),
    ]
    for step, field, rest in steps:
        url = f"/v1/referrals/{referral_id}/{step}"
        _refused(client.post(url, json={field: f"x{NUL}y", **rest}), field)
        assert client.post(url, json={field: "fine", **rest}).status_code == 200
    [stored] = client.get(referrals).json()
    assert (stored["receiving_institution"], stored["outcome"], stored["return_note"]) == ("fine",) * 3


def test_a_nul_character_in_a_tasks_note_assignee_or_snooze_reason_is_refused(client: TestClient) -> None:
    patient_id = register_patient(client)
    task = client.get(f"/v1/patients/{patient_id}/tasks").json()[0]
    url = f"/v1/tasks/{task['id']}"
    _refused(client.post(f"{url}/outcome", json={"outcome": "done", "note": f"n{NUL}"}), "note")
    _refused(client.post(f"{url}/reassign", json={"member": f"m{NUL}"}), "member")
    until = "2026-03-05T08:00:00+08:00"
    _refused(client.post(f"{url}/snooze", json={"until": until, "reason": f"r{NUL}"}), "reason")
    [unchanged] = [t for t in client.get(f"/v1/patients/{patient_id}/tasks").json() if t["id"] == task["id"]]
    assert unchanged == task
    assert [e["action"] for e in client.get(f"{url}/history").json()] == ["opened"]


def test_a_nul_character_in_the_team_lists_member_filter_is_refused(client: TestClient) -> None:
    with Session(client.app.state.engine) as session:  # type: ignore[attr-defined]
        team = permissions.create_team(session, "jimo-01", "即墨 家庭医生团队 1", "home")
        session.commit()
        team_id = team.id
    _refused(client.get(f"/v1/teams/{team_id}/tasks", params={"member": f"王{NUL}"}), "member")


def _observation(patient_id: int, ident: str, device: str = "Device/omron-1") -> dict[str, Any]:
    return {
        "resourceType": "Observation",
        "status": "final",
        "identifier": [{"system": "urn:gateway:omron", "value": ident}],
        "code": {"coding": [{"system": "http://loinc.org", "code": "1558-6"}]},
        "subject": {"reference": f"Patient/{patient_id}"},
        "device": {"reference": device},
        "effectiveDateTime": AT,
        "valueQuantity": {
            "value": 6.1,
            "unit": "mmol/L",
            "system": "http://unitsofmeasure.org",
            "code": "mmol/L",
        },
    }


@pytest.mark.parametrize(
    ("ident", "device", "where"),
    [
        (f"o{NUL}1", "Device/omron-1", "identifier.0.value"),
        ("o1", f"Device/omron{NUL}1", "device.reference"),
        ("o" * 129, "Device/omron-1", "identifier.0.value"),  # over the stored length: was a 500 too
    ],
    ids=["nul-identifier", "nul-device", "long-identifier"],
)
def test_an_observation_text_we_cannot_store_is_refused_naming_the_fhir_element(
    client: TestClient, ident: str, device: str, where: str
) -> None:
    patient_id = register_patient(client)
    bad = _observation(patient_id, ident, device)
    _refused(client.post("/v1/fhir/Observation", json=bad), f"Observation.{where}")
    entries = [{"resource": bad}, {"resource": _observation(patient_id, "o2")}]
    bundle = {"resourceType": "Bundle", "type": "collection", "entry": entries}
    answer = client.post("/v1/fhir", json=bundle)
    assert answer.status_code == 201, answer.text
    rejected, created = answer.json()["entries"]
    assert (rejected["status"], rejected["error"]["field"]) == (
        "rejected",
        f"Bundle.entry.0.resource.{where}",
    )
    assert created["status"] == "created"
    assert _rows(client, Reading) == 1


def _login_form(page: Any, key: str) -> dict[str, str]:
    token = re.search(r'name="login_token" value="([^"]+)"', page.text)
    assert token is not None, page.text
    return {"login_token": token.group(1), "next": "", "api_key": key}


def test_a_nul_character_in_a_workbench_form_or_filter_is_refused(client: TestClient) -> None:
    app: FastAPI = client.app  # type: ignore[assignment]
    with Session(app.state.engine) as session:
        permissions.create_team(session, "jimo-01", "即墨 家庭医生团队 1", "home")
        session.commit()
    patient_id = register_patient(client, team_code="jimo-01")
    task = client.get(f"/v1/patients/{patient_id}/tasks").json()[0]
    browser = TestClient(app)
    refused = browser.post(
        "/workbench/login", data=_login_form(browser.get("/workbench/login"), f"pw_x{NUL}_y")
    )
    assert refused.status_code == 401  # not a key: the sign-in form again
    key = new_key(app, Role.TEAM, team="jimo-01")
    signed_in = browser.post("/workbench/login", data=_login_form(refused, key), follow_redirects=False)
    assert signed_in.status_code == 303, signed_in.text
    page = browser.get(signed_in.headers["location"])
    csrf = re.search(r'data-csrf="([^"]+)"', page.text)
    assert csrf is not None
    assert browser.get(page.url.path, params={"member": f"王{NUL}"}).status_code == 422
    answer = browser.post(
        f"/workbench/tasks/{task['id']}/outcome",
        data={"csrf": csrf.group(1), "outcome": "done", "note": f"n{NUL}"},
        headers={"Accept": "application/json"},
    )
    assert (answer.status_code, answer.json()["code"], answer.json()["field"]) == (
        422,
        "invalid-input",
        "note",
    )
    assert [e["action"] for e in client.get(f"/v1/tasks/{task['id']}/history").json()] == ["opened"]


def test_a_value_the_database_cannot_store_is_a_422_logged_without_the_value(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The safety net behind validation: a DataError from the driver is never a 500."""
    app = FastAPI()
    errors.install(app)
    orig = psycopg.errors.InvalidTextRepresentation(
        'invalid input syntax for type date: "370283199001011234"'
    )
    error = DataError("INSERT INTO patient …", {"external_id": "370283199001011234"}, orig)
    caplog.set_level("INFO", logger="pathway.api")
    handler = app.exception_handlers[DataError]
    response: Any = asyncio.run(handler(None, error))  # type: ignore[arg-type]
    assert response.status_code == 422
    assert json.loads(bytes(response.body))["code"] == "invalid-input"
    assert "370283199001011234" not in caplog.text + bytes(response.body).decode()
    assert "InvalidTextRepresentation (22P02)" in caplog.text
