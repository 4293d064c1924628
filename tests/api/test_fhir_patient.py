"""Issue #17 item 1: FHIR R4 Patient, Condition and Encounter, alone and in batch / transaction Bundles."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient
from fhir.resources.R4B.condition import Condition
from fhir.resources.R4B.patient import Patient as FhirPatient
from sqlmodel import Session, select

from pathway.access.permissions import Role
from pathway.store.tables import Encounter, Patient, PatientComplication
from tests.api.conftest import new_key, two_teams

ICD10 = "http://hl7.org/fhir/sid/icd-10"


def _patient(value: str = "370282-1", **changes: Any) -> dict[str, Any]:
    resource = FhirPatient(
        identifier=[{"system": "ehr-jimo", "value": value}],
        name=[{"family": "王", "given": ["建国"]}],
        gender="male",
        birthDate="1958-04-10",
        telecom=[{"system": "phone", "value": "+86 138-0013-8000"}],
    ).model_dump(mode="json")
    return {**resource, **changes}


def _condition(subject: str, code: str, **changes: Any) -> dict[str, Any]:
    resource = Condition(
        subject={"reference": subject}, code={"coding": [{"system": ICD10, "code": code}]}
    ).model_dump(mode="json")
    return {**resource, **changes}


def _stored(client: TestClient, patient_id: int) -> tuple[Patient, dict[str, Any]]:
    with Session(client.app.state.engine) as session:  # type: ignore[attr-defined]
        patient = session.get(Patient, patient_id)
        assert patient is not None
        rows = session.exec(select(PatientComplication).where(PatientComplication.patient_id == patient_id))
        return patient, {c.code: c.onset.isoformat() for c in rows}


def test_a_patient_is_registered_then_updated_then_a_duplicate(client: TestClient) -> None:
    two_teams(client)
    created = client.post("/v1/fhir/Patient", json=_patient())
    assert created.status_code == 201, created.text
    patient_id = created.json()["entries"][0]["patient_id"]
    patient, _ = _stored(client, patient_id)
    assert (patient.name, patient.sex, patient.source_system, patient.external_id) == (
        "王建国", "male", "ehr-jimo", "370282-1"
    )  # fmt: skip
    moved = _patient(generalPractitioner=[{"reference": "Organization/jimo-02"}])
    updated = client.post("/v1/fhir/Patient", json=moved)
    assert (updated.status_code, updated.json()["amended"]) == (200, 1)
    again = client.post("/v1/fhir/Patient", json=moved)
    assert again.json()["duplicate"] == 1
    assert again.json()["entries"][0]["patient_id"] == patient_id


def test_a_patient_without_identifier_or_with_other_gender_is_named(client: TestClient) -> None:
    none = client.post("/v1/fhir/Patient", json={**_patient(), "identifier": []})
    assert (none.status_code, none.json()["field"]) == (422, "Patient.identifier")
    other = client.post(
        "/v1/fhir/Patient", json=_patient(gender="other"), headers={"Accept": "application/fhir+json"}
    )
    assert other.status_code == 422
    issue = other.json()["issue"][0]
    assert (issue["code"], issue["expression"]) == ("invalid", ["Patient.gender"])


def test_conditions_and_complications_are_recorded_and_removed(client: TestClient) -> None:
    patient_id = client.post("/v1/fhir/Patient", json=_patient()).json()["entries"][0]["patient_id"]
    subject = f"Patient/{patient_id}"
    assert client.post("/v1/fhir/Condition", json=_condition(subject, "I10")).status_code == 201
    assert client.post("/v1/fhir/Condition", json=_condition(subject, "E11.9")).json()["created"] == 1
    chd = _condition(subject, "I25.1", onsetDateTime="2019-05-01")
    assert client.post("/v1/fhir/Condition", json=chd).json()["created"] == 1
    patient, complications = _stored(client, patient_id)
    assert (patient.conditions, complications) == (["diabetes", "hypertension"], {"chd": "2019-05-01"})
    ended = _condition(subject, "E11", clinicalStatus={"coding": [{"code": "resolved"}]})
    assert client.post("/v1/fhir/Condition", json=ended).json()["retracted"] == 1
    assert _stored(client, patient_id)[0].conditions == ["hypertension"]
    unknown = client.post("/v1/fhir/Condition", json=_condition(subject, "J45"))
    assert (unknown.status_code, unknown.json()["field"]) == (422, "Condition.code")
    no_onset = client.post("/v1/fhir/Condition", json=_condition(subject, "I63.9"))
    assert no_onset.json()["field"] == "Condition.onsetDateTime"


def test_a_gateway_or_team_key_may_not_post_patients_or_conditions(client: TestClient) -> None:
    two_teams(client)
    for role, team in ((Role.GATEWAY, None), (Role.TEAM, "jimo-01")):
        headers = {"Authorization": f"Bearer {new_key(client.app, role, team)}"}  # type: ignore[arg-type]
        assert client.post("/v1/fhir/Patient", json=_patient(), headers=headers).status_code == 403
        refused = client.post("/v1/fhir/Condition", json=_condition("Patient/1", "I10"), headers=headers)
        assert refused.status_code == 403


def _bundle(kind: str, *resources: dict[str, Any]) -> dict[str, Any]:
    entries = [
        {"fullUrl": f"urn:uuid:{n:08d}-0000-4000-8000-000000000000", "resource": r}
        for n, r in enumerate(resources)
    ]
    return {"resourceType": "Bundle", "type": kind, "entry": entries}


PATIENT_URL = "urn:uuid:00000000-0000-4000-8000-000000000000"
VISIT_URL = "urn:uuid:00000002-0000-4000-8000-000000000000"


def _bp(subject: str, **changes: Any) -> dict[str, Any]:
    return {
        "resourceType": "Observation",
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "85354-9"}]},
        "subject": {"reference": subject},
        "effectiveDateTime": "2026-03-01T07:30:00+08:00",
        "component": [
            {"code": {"coding": [{"system": "http://loinc.org", "code": c}]},
             "valueQuantity": {"value": v, "system": "http://unitsofmeasure.org", "code": "mm[Hg]"}}
            for c, v in (("8480-6", 186), ("8462-4", 112))
        ],
        **changes,
    }  # fmt: skip


def _visit(subject: str) -> dict[str, Any]:
    return {
        "resourceType": "Encounter",
        "status": "finished",
        "class": {"code": "AMB"},
        "identifier": [{"system": "his-jimo", "value": "visit-1"}],
        "subject": {"reference": subject},
        "period": {"start": "2026-03-01T08:40:00+08:00"},
    }


def test_a_transaction_registers_a_patient_with_conditions_a_visit_and_readings(client: TestClient) -> None:
    body = _bundle(
        "transaction",
        _patient(),
        _condition(PATIENT_URL, "I10"),
        _visit(PATIENT_URL),
        _bp(PATIENT_URL, encounter={"reference": VISIT_URL}),
    )
    answer = client.post("/v1/fhir", json=body)
    assert answer.status_code == 201, answer.text
    entries = answer.json()["entries"]
    assert [e["status"] for e in entries] == ["created"] * 4
    patient_id = entries[0]["patient_id"]
    assert entries[3]["encounter_id"] == entries[2]["encounter_id"] is not None
    summary = client.get(f"/v1/patients/{patient_id}").json()
    assert summary["assessment"]["tier"] == "red"  # 186/112 at the visit, assessed
    with Session(client.app.state.engine) as session:  # type: ignore[attr-defined]
        assert len(session.exec(select(Encounter).where(Encounter.patient_id == patient_id)).all()) == 1


def test_a_transaction_with_a_bad_entry_stores_nothing(client: TestClient) -> None:
    body = _bundle(
        "transaction", _patient(), _condition(PATIENT_URL, "I10"), _patient("x2", gender="unknown")
    )
    answer = client.post("/v1/fhir", json=body)
    assert answer.status_code == 422, answer.text
    assert answer.json()["resourceType"] == "OperationOutcome"
    assert answer.json()["issue"][0]["expression"] == ["Bundle.entry[2].resource.gender"]
    with Session(client.app.state.engine) as session:  # type: ignore[attr-defined]
        assert session.exec(select(Patient)).all() == []


def test_a_batch_with_a_bad_entry_stores_the_others(client: TestClient) -> None:
    body = _bundle("batch", _patient(), _condition(PATIENT_URL, "Z99"), _condition(PATIENT_URL, "E78.5"))
    answer = client.post("/v1/fhir", json=body)
    assert answer.status_code == 201, answer.text
    entries = answer.json()["entries"]
    assert [e["status"] for e in entries] == ["created", "rejected", "created"]
    assert entries[1]["outcome"]["issue"][0]["expression"] == ["Bundle.entry[1].resource.code"]
    assert _stored(client, entries[0]["patient_id"])[0].conditions == ["dyslipidemia"]


def test_an_encounter_alone_is_a_visit_stored_once(client: TestClient) -> None:
    patient_id = client.post("/v1/fhir/Patient", json=_patient()).json()["entries"][0]["patient_id"]
    visit = _visit(f"Patient/{patient_id}")

    first = client.post("/v1/fhir/Encounter", json=visit)
    again = client.post("/v1/fhir/Encounter", json=visit)

    assert first.status_code == 201, first.text
    (entry,) = first.json()["entries"]
    assert (entry["status"], entry["patient_id"]) == ("created", patient_id)
    assert again.status_code in (200, 201), again.text
    assert again.json()["entries"][0]["status"] == "duplicate"
    assert again.json()["entries"][0]["encounter_id"] == entry["encounter_id"] is not None
    with Session(client.app.state.engine) as session:  # type: ignore[attr-defined]
        stored = session.exec(select(Encounter).where(Encounter.patient_id == patient_id)).all()
    assert [(e.source_encounter_id, e.at.isoformat()) for e in stored] == [
        ("visit-1", "2026-03-01T00:40:00+00:00")
    ]
