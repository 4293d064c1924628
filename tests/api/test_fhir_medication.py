"""Issue #16: FHIR R4 MedicationRequest and MedicationStatement, alone and in a Bundle."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from fastapi.testclient import TestClient
from sqlmodel import Session

from pathway.clinical.medication import MedicationClass
from pathway.patients.history import history_of
from pathway.store.tables import Patient
from tests.api.conftest import linked_gateway, register_patient
from tests.builders import AS_OF

TODAY = AS_OF.date()
ATC = "http://www.whocc.no/atc"
CLASS = "https://sangao.example/medication-class"


def _request(patient_id: int, source_id: str = "mr-1", **changes: Any) -> dict[str, Any]:
    return {
        "resourceType": "MedicationRequest",
        "status": "active",
        "intent": "order",
        "identifier": [{"system": "his-jimo", "value": source_id}],
        "subject": {"reference": f"Patient/{patient_id}"},
        "medicationCodeableConcept": {
            "coding": [{"system": ATC, "code": "C10AA05"}],
            "text": "阿托伐他汀钙片",
        },
        "authoredOn": (TODAY - timedelta(days=3)).isoformat(),
        "dosageInstruction": [{"text": "20 mg qn"}],
        "dispenseRequest": {"expectedSupplyDuration": {"value": 84, "unit": "d", "code": "d"}},
        **changes,
    }


def _statement(patient_id: int, source_id: str = "ms-1", **changes: Any) -> dict[str, Any]:
    return {
        "resourceType": "MedicationStatement",
        "status": "active",
        "identifier": [{"value": source_id}],
        "subject": {"reference": f"Patient/{patient_id}"},
        "medicationCodeableConcept": {
            "coding": [{"system": CLASS, "code": "metformin"}],
            "text": "二甲双胍片",
        },
        "effectivePeriod": {"start": (TODAY - timedelta(days=20)).isoformat(), "end": TODAY.isoformat()},
        **changes,
    }


def _prescriptions(client: TestClient, patient_id: int) -> Any:
    with Session(client.app.state.engine) as session:  # type: ignore[attr-defined]
        patient = session.get(Patient, patient_id)
        assert patient is not None
        return history_of(session, patient).prescriptions


def test_a_medication_request_and_a_statement_are_prescriptions(client: TestClient) -> None:
    patient_id = register_patient(client, conditions=["hypertension", "diabetes"])
    one = client.post("/v1/fhir/MedicationRequest", json=_request(patient_id))
    assert one.status_code == 201, one.text
    assert one.json()["entries"][0]["status"] == "created"
    two = client.post("/v1/fhir/MedicationStatement", json=_statement(patient_id))
    assert two.json()["created"] == 1, two.text
    again = client.post("/v1/fhir/MedicationRequest", json=_request(patient_id))
    assert again.json()["duplicate"] == 1
    by_id = {p.source_id: p for p in _prescriptions(client, patient_id)}
    assert by_id["mr-1"].classes == (MedicationClass.STATIN,)
    assert (by_id["mr-1"].supply_days, by_id["mr-1"].dose) == (84, "20 mg qn")
    assert (by_id["ms-1"].classes, by_id["ms-1"].supply_days) == ((MedicationClass.METFORMIN,), 20)
    listed = client.get(f"/v1/patients/{patient_id}/prescriptions").json()["prescriptions"]
    assert len(listed) == 2
    assert "his-jimo" in {p["source_system"] for p in listed}  # the identifier's system, for an admin key


def test_a_stopped_request_is_a_new_version_and_entered_in_error_retracts(client: TestClient) -> None:
    patient_id = register_patient(client)
    client.post("/v1/fhir/MedicationRequest", json=_request(patient_id))
    stopped = _request(
        patient_id,
        status="stopped",
        dispenseRequest={
            "expectedSupplyDuration": {"value": 84, "unit": "d", "code": "d"},
            "validityPeriod": {"end": TODAY.isoformat()},
        },
    )
    answer = client.post("/v1/fhir/MedicationRequest", json=stopped)
    assert answer.json()["amended"] == 1, answer.text
    assert [p.stopped_on for p in _prescriptions(client, patient_id)] == [TODAY]
    withdrawn = client.post(
        "/v1/fhir/MedicationRequest", json=_request(patient_id, status="entered-in-error")
    )
    assert withdrawn.json()["retracted"] == 1, withdrawn.text
    assert _prescriptions(client, patient_id) == ()


def test_errors_name_the_element(client: TestClient) -> None:
    patient_id = register_patient(client)
    cases = [
        (_request(patient_id, status="draft"), "result-not-final", "MedicationRequest.status"),
        (
            _request(patient_id, medicationCodeableConcept={"coding": [{"system": ATC, "code": "Z01"}]}),
            "unknown-code",
            "MedicationRequest.atc",
        ),
        (_request(patient_id, authoredOn=None), "invalid-input", "MedicationRequest.authoredOn"),
        (
            _request(patient_id, subject={"reference": "Group/1"}),
            "invalid-input",
            "MedicationRequest.subject.reference",
        ),
    ]
    for body, code, field in cases:
        body = {k: v for k, v in body.items() if v is not None}
        answer = client.post("/v1/fhir/MedicationRequest", json=body)
        assert answer.status_code == 422, answer.text
        error = answer.json()
        assert (error["code"], error.get("field")) == (code, field), body
    days = _request(patient_id, dispenseRequest={"expectedSupplyDuration": {"value": 400, "code": "d"}})
    error = client.post("/v1/fhir/MedicationRequest", json=days).json()
    assert error["field"] == "MedicationRequest.dispenseRequest.expectedSupplyDuration.value"


def test_a_bundle_with_one_bad_entry_fails_only_itself(client: TestClient) -> None:
    patient_id = register_patient(client)
    bundle = {
        "resourceType": "Bundle",
        "type": "batch",
        "entry": [
            {"resource": _request(patient_id)},
            {
                "resource": _statement(
                    patient_id, medicationCodeableConcept={"coding": [{"system": CLASS, "code": "aspirin"}]}
                )
            },
            {"resource": _statement(patient_id, "ms-2")},
        ],
    }
    answer = client.post("/v1/fhir", json=bundle)
    assert answer.status_code == 201, answer.text
    entries = answer.json()["entries"]
    assert [e["status"] for e in entries] == ["created", "rejected", "created"]
    assert entries[1]["error"]["code"] == "unknown-code"
    assert entries[1]["error"]["field"].startswith("Bundle.entry.1.resource")
    assert sorted(p.source_id for p in _prescriptions(client, patient_id)) == ["mr-1", "ms-2"]


def test_a_gateway_may_not_post_medication(client: TestClient) -> None:
    patient_id = register_patient(client)
    gateway = linked_gateway(client, patient_id)
    headers = {"Authorization": f"Bearer {gateway}"}
    assert (
        client.post("/v1/fhir/MedicationRequest", json=_request(patient_id), headers=headers).status_code
        == 403
    )
    bundle = {"resourceType": "Bundle", "type": "batch", "entry": [{"resource": _request(patient_id)}]}
    answer = client.post("/v1/fhir", json=bundle, headers=headers)
    assert answer.json()["entries"][0]["error"]["code"] == "forbidden"
    assert _prescriptions(client, patient_id) == ()
