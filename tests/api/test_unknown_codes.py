"""A value outside our vocabulary (an Enum or a Literal of a request) is ``unknown-code``.

The field is named as for any other validation error, and the message names the accepted values.
"""

from __future__ import annotations

import copy
from typing import Any

from fastapi.testclient import TestClient

from api.fhir import OBSERVATION_EXAMPLE
from tests.api.conftest import register_patient

AT = "2026-02-28T08:00:00+08:00"


def _bp(minute: int, **changes: Any) -> dict[str, Any]:
    at = f"2026-02-28T08:{minute:02d}:00+08:00"
    return {"kind": "bp", "systolic": 150, "diastolic": 95, "source": "home", "measured_at": at, **changes}


def _unknown(error: dict[str, Any], field: str, *accepted: str) -> None:
    assert (error["code"], error["field"]) == ("unknown-code", field)
    assert all(f"'{value}'" in error["message"] for value in accepted), error["message"]


def test_a_batch_item_of_unknown_kind_is_rejected_as_unknown_code_and_the_others_are_stored(
    client: TestClient,
) -> None:
    patient_id = register_patient(client)
    batch = [_bp(0), _bp(10, kind="bp-cuff"), _bp(20), _bp(30, systolic="high")]
    response = client.post(f"/v1/patients/{patient_id}/readings", json=batch)
    assert response.status_code == 201, response.text
    body = response.json()
    assert (body["created"], body["rejected"]) == (2, 2)
    assert [i["status"] for i in body["items"]] == ["created", "rejected", "created", "rejected"]
    _unknown(body["items"][1]["error"], "readings.1.kind", "bp", "fpg", "uacr")
    assert body["items"][1]["error"]["message"].startswith("unknown code")
    wrong_type = body["items"][3]["error"]  # any other validation error stays invalid-input
    assert (wrong_type["code"], wrong_type["field"]) == ("invalid-input", "readings.3.systolic")


def test_a_single_reading_from_an_unknown_source_is_a_422_unknown_code(client: TestClient) -> None:
    patient_id = register_patient(client)
    observation: dict[str, Any] = copy.deepcopy(OBSERVATION_EXAMPLE)
    observation["subject"] = {"reference": f"Patient/{patient_id}"}
    response = client.post("/v1/fhir/Observation", json=observation, params={"source": "fax"})
    assert response.status_code == 422, response.text
    _unknown(response.json(), "source", "clinic", "home", "wearable", "cgm", "lab")
    stored = client.post("/v1/fhir/Observation", json=observation, params={"source": "clinic"})
    assert stored.status_code == 201, stored.text


def test_a_patient_with_an_unknown_condition_is_refused_on_create_and_on_update(client: TestClient) -> None:
    body = {"source_system": "ehr", "external_id": "p9", "sex": "male", "birth_date": "1960-01-01"}
    created = client.post("/v1/patients", json={**body, "conditions": ["hypertension", "gout"]})
    assert created.status_code == 422, created.text
    _unknown(created.json(), "conditions.1", "hypertension", "diabetes", "dyslipidemia", "ckd")
    patient_id = register_patient(client, "p9")
    updated = client.post("/v1/patients", json={**body, "conditions": ["diabetes", "gout"]})
    assert updated.status_code == 422, updated.text
    _unknown(updated.json(), "conditions.1", "hypertension", "diabetes")
    stored = client.get(f"/v1/patients/{patient_id}").json()["patient"]
    assert stored["conditions"] == ["hypertension"]


def test_an_unknown_complication_sex_or_symptom_is_an_unknown_code(client: TestClient) -> None:
    body = {"source_system": "ehr", "external_id": "p9", "sex": "male", "birth_date": "1960-01-01"}
    complications = [{"code": "gout", "onset": "2019-05-01"}]
    complication = client.post("/v1/patients", json={**body, "complications": complications})
    _unknown(complication.json(), "complications.0.code", "chd", "stroke")
    _unknown(client.post("/v1/patients", json={**body, "sex": "m"}).json(), "sex", "male")
    patient_id = register_patient(client)
    visit = {"at": AT, "symptoms": ["severe_headache", "hiccups"]}
    symptom = client.post(f"/v1/patients/{patient_id}/encounters", json=visit)
    assert symptom.status_code == 422, symptom.text
    _unknown(symptom.json(), "symptoms.1", "severe_headache", "chest_pain")
    malformed = client.post("/v1/patients", json={**body, "birth_date": "yesterday"})
    assert (malformed.status_code, malformed.json()["code"]) == (422, "invalid-input")


def test_a_query_value_outside_a_literal_is_an_unknown_code(client: TestClient) -> None:
    patient_id = register_patient(client)
    response = client.get(f"/v1/patients/{patient_id}/tasks", params={"status": "closed"})
    assert response.status_code == 422, response.text
    _unknown(response.json(), "status", "open", "all")
