"""Every route, every role: what a key's role may not do is refused with 403 and no data; a patient,
task, referral or team outside the key's team or gateway link is 404, like an id that does not exist.

The matrix below is the access policy. A new route fails the first test until it is given a line.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session

from pathway.access import permissions
from pathway.access.permissions import Role
from tests.api.conftest import new_key, register_patient
from tests.builders import AS_OF

EHR, TEAM, GATEWAY = Role.EHR, Role.TEAM, Role.GATEWAY
PATIENT_READERS = {EHR, TEAM}
# operation id → the roles (besides admin) that may call it.
ALLOWED: dict[str, set[Role]] = {
    "patients-upsert": {EHR},
    "patients-read": PATIENT_READERS,
    "patients-search": PATIENT_READERS,
    "readings-batch": {EHR, GATEWAY},
    "readings-retract": {EHR, GATEWAY},
    "assessments-history": PATIENT_READERS,
    "encounters-create": {EHR},
    "symptoms-report": {EHR, GATEWAY},
    "checks-record": PATIENT_READERS,
    "assessment-current": PATIENT_READERS,
    "assessment-preview": PATIENT_READERS,
    "gateways-link": {EHR},
    "referrals-list": PATIENT_READERS,
    "referrals-create": PATIENT_READERS,
    "referrals-accept": PATIENT_READERS,
    "referrals-complete": PATIENT_READERS,
    "referrals-return": PATIENT_READERS,
    "fhir-observation": {EHR, GATEWAY},
    "fhir-bundle": {EHR, GATEWAY},
    "rule-packs-list": {EHR, TEAM, GATEWAY},
    "packs-impact": set(),  # admin only
    "tasks-list": PATIENT_READERS,
    "tasks-history": PATIENT_READERS,
    "tasks-outcome": PATIENT_READERS,
    "tasks-reassign": PATIENT_READERS,
    "tasks-snooze": PATIENT_READERS,
    "team-daily-list": PATIENT_READERS,
    "team-indicators": PATIENT_READERS,
    "team-contact-flags": PATIENT_READERS,
    "care-plan": PATIENT_READERS,
    "prescriptions-batch": {EHR},
    "prescriptions-stop": {EHR},
    "prescriptions-list": PATIENT_READERS,
    "fhir-request-medication": {EHR},
    "fhir-statement-medication": {EHR},
    "fhir-patient": {EHR},
    "fhir-condition": {EHR},
    "fhir-encounter": {EHR},
    "fhir-metadata": {EHR, TEAM, GATEWAY},
    "fhir-read-patient": PATIENT_READERS,
    "fhir-search-observation": PATIENT_READERS,
    "fhir-search-riskassessment": PATIENT_READERS,
    "fhir-search-servicerequest": PATIENT_READERS,
    "fhir-search-task": PATIENT_READERS,
    "fhir-search-careplan": PATIENT_READERS,
    "cds-discovery": {EHR, TEAM, GATEWAY},
    "cds-patient-view": PATIENT_READERS,
    "subscriptions-create": {TEAM},
    "subscriptions-list": {TEAM},
    "subscriptions-read": {TEAM},
    "subscriptions-delete": {TEAM},
    "subscriptions-enable": {TEAM},
    "subscriptions-deliveries": {TEAM},
}
# Routes about no patient, team or subscription of another's: another team's key is answered too.
NO_PATIENT_DATA = {
    "rule-packs-list",
    "packs-impact",
    "fhir-metadata",
    "cds-discovery",
    "subscriptions-create",
    "subscriptions-list",
}


@dataclass
class World:
    """Team A's patient with a referral and a task; keys of every role, some for team B."""

    patient: int
    referral: int
    task: int
    team_a: int
    keys: dict[str, str]
    subscription: int


def _request(operation: str, w: World) -> tuple[str, str, Any]:
    at = (AS_OF - timedelta(hours=1)).isoformat()
    reading = {"kind": "bp", "systolic": 150, "diastolic": 92, "source": "wearable", "measured_at": at}
    p = f"/v1/patients/{w.patient}"
    prescription = {
        "source_prescription_id": "rx-1",
        "classes": ["ccb"],
        "drug": "苯磺酸氨氯地平片",
        "started_on": "2026-02-20",
        "supply_days": 28,
    }
    medication_request = _medication(
        "MedicationRequest",
        w.patient,
        intent="order",
        authoredOn="2026-02-20",
        dispenseRequest={"expectedSupplyDuration": {"value": 28, "code": "d"}},
    )
    medication_statement = _medication(
        "MedicationStatement", w.patient, effectivePeriod={"start": "2026-02-20", "end": "2026-02-28"}
    )
    observation = {
        "resourceType": "Observation",
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "2339-0"}]},
        "subject": {"reference": f"Patient/{w.patient}"},
        "effectiveDateTime": at,
        "valueQuantity": {
            "value": 6.1,
            "unit": "mmol/L",
            "system": "http://unitsofmeasure.org",
            "code": "mmol/L",
        },
    }
    fhir_patient = {
        "resourceType": "Patient",
        "identifier": [{"system": "ehr", "value": "A2"}],
        "gender": "female",
        "birthDate": "1962-03-04",
        "generalPractitioner": [{"reference": "Organization/team-a"}],
    }
    condition = {
        "resourceType": "Condition",
        "subject": {"reference": f"Patient/{w.patient}"},
        "code": {"coding": [{"system": "http://hl7.org/fhir/sid/icd-10", "code": "E11"}]},
    }
    encounter = {
        "resourceType": "Encounter",
        "status": "finished",
        "class": {"code": "AMB"},
        "identifier": [{"system": "his", "value": "visit-1"}],
        "subject": {"reference": f"Patient/{w.patient}"},
        "period": {"start": at},
    }
    patient_body = {"source_system": "ehr", "external_id": "A1", "sex": "male", "birth_date": "1960-01-01"}
    visit = {"at": at, "readings": [{"kind": "bp", "systolic": 150, "diastolic": 92}]}
    as_of = AS_OF.isoformat().replace("+", "%2B")
    referral, task = f"/v1/referrals/{w.referral}", f"/v1/tasks/{w.task}"
    subscription = f"/v1/subscriptions/{w.subscription}"
    hook = {"url": "http://127.0.0.1:9/hook", "kinds": ["tier_changed"], "secret": "s" * 32}
    snooze = {"until": (AS_OF + timedelta(days=2)).isoformat(), "reason": "患者外出"}
    bundle = {"resourceType": "Bundle", "type": "collection", "entry": [{"resource": observation}]}
    cds_request = {
        "hook": "patient-view",
        "hookInstance": "d1577c69-dfbe-44ad-ba6d-3e05e953b2ea",
        "context": {"userId": "Practitioner/1", "patientId": str(w.patient)},
    }
    requests: dict[str, tuple[str, str, Any]] = {
        "patients-upsert": ("POST", "/v1/patients", {**patient_body, "team_code": "team-a"}),
        "patients-read": ("GET", p, None),
        "patients-search": ("GET", f"/v1/patients?team={w.team_a}", None),
        "readings-batch": ("POST", f"{p}/readings", [reading]),
        "readings-retract": ("DELETE", f"{p}/readings/1", None),
        "assessments-history": ("GET", f"{p}/assessments", None),
        "encounters-create": ("POST", f"{p}/encounters", visit),
        "symptoms-report": ("POST", f"{p}/symptoms", [{"code": "severe_headache", "at": at}]),
        "checks-record": ("POST", f"{p}/checks", [{"kind": "fundus", "at": at}]),
        "assessment-current": ("GET", f"{p}/assessment", None),
        "assessment-preview": ("POST", f"{p}/assessment:preview?as_of={as_of}", None),
        "gateways-link": ("POST", f"{p}/gateways", {"api_key_id": 1}),
        "referrals-list": ("GET", f"{p}/referrals", None),
        "referrals-create": ("POST", f"{p}/referrals", {"urgency": "routine", "reason": "复查"}),
        "referrals-accept": ("POST", f"{referral}/accept", {"receiving_institution": "即墨区人民医院"}),
        "referrals-complete": ("POST", f"{referral}/complete", {"outcome": "调整用药"}),
        "referrals-return": ("POST", f"{referral}/return", {"note": "下转", "follow_up_in_days": 14}),
        "fhir-observation": ("POST", "/v1/fhir/Observation", observation),
        "fhir-bundle": ("POST", "/v1/fhir", bundle),
        "rule-packs-list": ("GET", "/v1/rule-packs", None),
        "packs-impact": ("POST", "/v1/packs/impact", {"pack_version": "2020.4"}),
        "tasks-list": ("GET", f"{p}/tasks", None),
        "tasks-history": ("GET", f"{task}/history", None),
        "tasks-outcome": ("POST", f"{task}/outcome", {"outcome": "unreachable", "note": "电话未接"}),
        "tasks-reassign": ("POST", f"{task}/reassign", {"member": "李医生"}),
        "tasks-snooze": ("POST", f"{task}/snooze", snooze),
        "team-daily-list": ("GET", f"/v1/teams/{w.team_a}/tasks", None),
        "team-indicators": ("GET", f"/v1/teams/{w.team_a}/indicators", None),
        "team-contact-flags": ("GET", f"/v1/teams/{w.team_a}/contact-flags", None),
        "care-plan": ("GET", f"{p}/care-plan", None),
        "prescriptions-batch": ("POST", f"{p}/prescriptions", [prescription]),
        "prescriptions-stop": ("POST", f"{p}/prescriptions/1/stop", {"stopped_on": "2026-02-28"}),
        "prescriptions-list": ("GET", f"{p}/prescriptions", None),
        "fhir-request-medication": ("POST", "/v1/fhir/MedicationRequest", medication_request),
        "fhir-statement-medication": ("POST", "/v1/fhir/MedicationStatement", medication_statement),
        "fhir-patient": ("POST", "/v1/fhir/Patient", fhir_patient),
        "fhir-condition": ("POST", "/v1/fhir/Condition", condition),
        "fhir-encounter": ("POST", "/v1/fhir/Encounter", encounter),
        "fhir-metadata": ("GET", "/v1/fhir/metadata", None),
        "fhir-read-patient": ("GET", f"/v1/fhir/Patient/{w.patient}", None),
        "fhir-search-observation": ("GET", f"/v1/fhir/Observation?patient={w.patient}", None),
        "fhir-search-riskassessment": ("GET", f"/v1/fhir/RiskAssessment?patient={w.patient}", None),
        "fhir-search-servicerequest": ("GET", f"/v1/fhir/ServiceRequest?patient={w.patient}", None),
        "fhir-search-task": ("GET", f"/v1/fhir/Task?owner=CareTeam/{w.team_a}", None),
        "fhir-search-careplan": ("GET", f"/v1/fhir/CarePlan?patient={w.patient}", None),
        "cds-discovery": ("GET", "/cds-services", None),
        "cds-patient-view": ("POST", "/cds-services/sangao-pathway", cds_request),
        "subscriptions-create": ("POST", "/v1/subscriptions", hook),
        "subscriptions-list": ("GET", "/v1/subscriptions", None),
        "subscriptions-read": ("GET", subscription, None),
        "subscriptions-delete": ("DELETE", subscription, None),
        "subscriptions-enable": ("POST", f"{subscription}/enable", None),
        "subscriptions-deliveries": ("GET", f"{subscription}/deliveries", None),
    }
    return requests[operation]


def _medication(kind: str, patient: int, **fields: Any) -> dict[str, Any]:
    return {
        "resourceType": kind,
        "status": "active",
        "identifier": [{"value": "rx-1"}],
        "subject": {"reference": f"Patient/{patient}"},
        "medicationCodeableConcept": {"coding": [{"system": "http://www.whocc.no/atc", "code": "C08CA01"}]},
        **fields,
    }


@pytest.fixture
def world(client: TestClient) -> World:
    app: Any = client.app
    with Session(app.state.engine) as session:
        team_a = permissions.create_team(session, "team-a", "即墨 家庭医生团队 A", "home")
        permissions.create_team(session, "team-b", "即墨 家庭医生团队 B", "home")
        session.commit()
        assert team_a.id is not None
        team_a_id = team_a.id
    patient = register_patient(client, "A1", team_code="team-a")
    referral = client.post(f"/v1/patients/{patient}/referrals", json={"urgency": "routine", "reason": "复查"})
    assert referral.status_code == 201, referral.text
    tasks = client.get(f"/v1/patients/{patient}/tasks").json()
    keys = {
        "ehr": new_key(app, EHR),
        "team-a": new_key(app, TEAM, team="team-a"),
        "team-b": new_key(app, TEAM, team="team-b"),
        "gateway-unlinked": new_key(app, GATEWAY),
    }
    hook = {"url": "http://127.0.0.1:9/hook", "kinds": ["tier_changed"], "secret": "s" * 32, "team": "team-a"}
    subscription = client.post("/v1/subscriptions", json=hook)
    assert subscription.status_code == 201, subscription.text
    return World(patient, referral.json()["id"], tasks[0]["id"], team_a_id, keys, subscription.json()["id"])


def _call(client: TestClient, operation: str, w: World, key: str) -> Any:
    method, path, body = _request(operation, w)
    return client.request(method, path, json=body, headers={"Authorization": f"Bearer {key}"})


def test_every_route_has_an_access_decision(client: TestClient) -> None:
    spec = client.app.openapi()  # type: ignore[attr-defined]
    operations = {op["operationId"] for path in spec["paths"].values() for op in path.values()}
    assert operations == set(ALLOWED)


def _plain(response: Any) -> dict[str, Any]:
    """The error body in our shape; a FHIR read-out's OperationOutcome read as one (its one issue's
    code and diagnostics), refused if it carries more than that issue."""
    body: dict[str, Any] = response.json()
    if body.get("resourceType") != "OperationOutcome":
        return body
    if set(body) != {"resourceType", "issue"} or len(body["issue"]) != 1:
        return {"outcome": body}
    issue = body["issue"][0]
    plain = {"code": issue["details"]["coding"][0]["code"], "message": issue["diagnostics"]}
    return {**plain, **({"field": issue["expression"][0]} if "expression" in issue else {})}


def _refusal_problem(operation: str, who: str, response: Any) -> str | None:
    """None if ``response`` is a clean refusal; else what is wrong with it."""
    body = _plain(response)
    if response.status_code != 403 or body.get("code") != "forbidden":
        return f"{operation} as {who}: {response.status_code} {response.text[:200]}"
    if not set(body) <= {"code", "message", "field"}:
        return f"{operation} as {who}: the refusal carries {sorted(body)}"
    return None


def test_a_role_outside_the_route_is_refused_with_no_data(client: TestClient, world: World) -> None:
    denied = {TEAM: "team-a", GATEWAY: "gateway-unlinked", EHR: "ehr"}
    problems = [
        _refusal_problem(operation, key, _call(client, operation, world, world.keys[key]))
        for operation in sorted(ALLOWED)
        for role, key in denied.items()
        if role not in ALLOWED[operation]
    ]
    assert [p for p in problems if p] == []


def _unknown_problem(operation: str, who: str, response: Any) -> str | None:
    """None if ``response`` is the 404 of an unknown id (nothing else); else what is wrong with it."""
    body = _plain(response)
    if response.status_code != 404 or not str(body.get("code", "")).startswith("unknown-"):
        return f"{operation} as {who}: {response.status_code} {response.text[:200]}"
    if not set(body) <= {"code", "message", "field"}:
        return f"{operation} as {who}: the refusal carries {sorted(body)}"
    return None


def test_another_teams_key_and_an_unlinked_gateway_get_404_as_for_an_unknown_id(
    client: TestClient, world: World
) -> None:
    problems = []
    for operation in sorted(set(ALLOWED) - NO_PATIENT_DATA):
        for role, key in ((TEAM, "team-b"), (GATEWAY, "gateway-unlinked")):
            if role in ALLOWED[operation]:
                response = _call(client, operation, world, world.keys[key])
                problems.append(_unknown_problem(operation, key, response))
    assert [p for p in problems if p] == []


def test_the_own_teams_key_is_let_through(client: TestClient, world: World) -> None:
    own_team = (
        "patients-read",
        "patients-search",
        "team-daily-list",
        "team-indicators",
        "team-contact-flags",
        "care-plan",
        "fhir-read-patient",
        "fhir-search-observation",
        "fhir-search-task",
        "fhir-search-careplan",
        "cds-patient-view",
    )
    for operation in (*own_team, "tasks-list"):
        assert _call(client, operation, world, world.keys["team-a"]).status_code == 200, operation
