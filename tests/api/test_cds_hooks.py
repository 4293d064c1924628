"""Issue #17 item 3: CDS Hooks discovery and the patient-view service's cards, on both stores."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient
from sqlmodel import Session, select

from pathway.access.permissions import Role
from pathway.store.work_tables import AuditEvent
from tests.api.conftest import new_key, register_patient, two_teams
from tests.api.test_fhir_read import _red_patient

SERVICE = "/cds-services/sangao-pathway"


def _hook(patient: str) -> dict[str, Any]:
    return {
        "hook": "patient-view",
        "hookInstance": "d1577c69-dfbe-44ad-ba6d-3e05e953b2ea",
        "context": {"userId": "Practitioner/7", "patientId": patient},
    }


def test_discovery_offers_the_patient_view_service(client: TestClient) -> None:
    response = client.get("/cds-services")
    assert response.status_code == 200, response.text
    (service,) = response.json()["services"]
    assert (service["id"], service["hook"]) == ("sangao-pathway", "patient-view")
    assert client.get("/cds-services", headers={"Authorization": "Bearer pw_no_no"}).status_code == 401


def test_a_red_patient_with_an_urgent_referral_and_a_medication_step(client: TestClient) -> None:
    patient_id = _red_patient(client)
    by_id = client.post(SERVICE, json=_hook(str(patient_id)))
    assert by_id.status_code == 200, by_id.text
    cards = by_id.json()["cards"]
    assert all(len(c["summary"]) < 140 for c in cards)
    assert all(c["source"]["label"].startswith("三高共管 pathway sangao-cn ") for c in cards)
    tier, referral, medication, tasks = cards
    assert tier["indicator"] == "critical"
    assert "RED" in tier["summary"]
    assert "`glu.high`" in tier["detail"]
    assert "*source:*" in tier["detail"]
    assert referral["indicator"] == "warning"
    assert referral["summary"].startswith("Referral urgent (open)")
    assert medication["summary"].startswith("Medication step: ")
    assert "med.bp.intensify" in medication["detail"]
    assert "urgent_referral" in tasks["summary"]
    assert tasks["indicator"] == "warning"
    by_identifier = client.post(SERVICE, json=_hook("ehr|A1"))
    assert by_identifier.json()["cards"] == cards  # the same patient by the EHR's own identifier
    app: Any = client.app
    with Session(app.state.engine) as session:
        audited = session.exec(select(AuditEvent).where(AuditEvent.action == "cds.patient_view")).all()
    assert [a.patient_id for a in audited] == [patient_id, patient_id]


def test_a_blue_patient_gets_one_info_card(client: TestClient) -> None:
    patient_id = register_patient(client, "B1", conditions=[])
    cards = client.post(SERVICE, json=_hook(str(patient_id))).json()["cards"]
    assert [c["indicator"] for c in cards][0] == "info"
    assert not any(c["summary"].startswith(("Referral", "Medication")) for c in cards)


def test_an_unknown_or_another_teams_patient_is_the_same_404(client: TestClient) -> None:
    two_teams(client, "team-a", "team-b")
    patient_id = _red_patient(client, team="team-a")
    other = {"Authorization": f"Bearer {new_key(client.app, Role.TEAM, team='team-b')}"}  # type: ignore[arg-type]
    theirs = client.post(SERVICE, json=_hook(str(patient_id)), headers=other)
    unknown = client.post(SERVICE, json=_hook("999999"), headers=other)
    no_identifier = client.post(SERVICE, json=_hook("ehr|nobody"), headers=other)
    assert theirs.status_code == unknown.status_code == no_identifier.status_code == 404
    assert theirs.json() == unknown.json() == no_identifier.json()
    wrong_hook = client.post(SERVICE, json={**_hook(str(patient_id)), "hook": "order-sign"})
    assert (wrong_hook.status_code, wrong_hook.json()["field"]) == (422, "hook")
