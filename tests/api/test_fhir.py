"""FHIR R4 ingest: Observations by LOINC code and UCUM unit, alone or in a Bundle."""

from __future__ import annotations

import copy
from typing import Any

from fastapi.testclient import TestClient

from api.fhir import OBSERVATION_EXAMPLE
from tests.api.conftest import register_patient

UCUM = "http://unitsofmeasure.org"


def _patient(client: TestClient) -> int:
    return register_patient(client, "f1", conditions=["hypertension", "diabetes"])


def _lab(patient_id: int, loinc: str, value: float, code: str, ident: str) -> dict[str, Any]:
    return {
        "resourceType": "Observation",
        "status": "final",
        "identifier": [{"value": ident}],
        "category": [{"coding": [{"code": "laboratory"}]}],
        "code": {"coding": [{"system": "http://loinc.org", "code": loinc}]},
        "subject": {"reference": f"Patient/{patient_id}"},
        "effectiveDateTime": "2026-02-20T09:00:00+08:00",
        "valueQuantity": {"value": value, "unit": code, "system": UCUM, "code": code},
    }


def test_a_bp_panel_observation_becomes_a_bp_reading_and_re_tiers(client: TestClient) -> None:
    patient_id = _patient(client)
    observation: dict[str, Any] = copy.deepcopy(OBSERVATION_EXAMPLE)
    observation["subject"] = {"reference": f"Patient/{patient_id}"}
    observation["component"][0]["valueQuantity"]["value"] = 186
    observation["component"][1]["valueQuantity"]["value"] = 112
    first = client.post("/v1/fhir/Observation", json=observation, params={"source": "clinic"})
    assert first.status_code == 201, first.text
    assert first.json()["created"] == 1
    summary = client.get(f"/v1/patients/{patient_id}").json()
    assert summary["assessment"]["tier"] == "red"
    again = client.post("/v1/fhir/Observation", json=observation, params={"source": "clinic"})
    assert again.json()["duplicate"] == 1


def test_an_unmapped_code_or_unit_is_rejected_with_the_reason(client: TestClient) -> None:
    patient_id = _patient(client)
    unknown_code = client.post("/v1/fhir/Observation", json=_lab(patient_id, "718-7", 13.5, "g/dL", "x1"))
    assert unknown_code.status_code == 422
    assert unknown_code.json()["code"] == "unknown-code"
    assert unknown_code.json()["field"] == "Observation.code"
    bad_unit = client.post("/v1/fhir/Observation", json=_lab(patient_id, "1558-6", 6.1, "g/L", "x2"))
    assert (bad_unit.status_code, bad_unit.json()["field"]) == (422, "Observation.valueQuantity.code")
    not_fhir = client.post("/v1/fhir/Observation", json={"resourceType": "Observation", "status": "bogus"})
    assert not_fhir.status_code == 422


def test_a_bundle_stores_each_mapped_entry_and_names_each_rejected_one(client: TestClient) -> None:
    patient_id = _patient(client)
    entries = [
        _lab(patient_id, "1558-6", 126, "mg/dL", "g1"),  # fasting glucose 126 mg/dL → 7.0 mmol/L
        _lab(patient_id, "4548-4", 53, "mmol/mol", "a1"),  # HbA1c 53 mmol/mol → 7.0 %
        _lab(patient_id, "18262-6", 190, "mg/dL", "l1"),  # LDL-C 190 mg/dL → 4.9 mmol/L
        _lab(patient_id, "2160-0", 80, "umol/L", "c1"),  # creatinine: not a reading kind of ours
        {"resourceType": "Patient"},
    ]
    bundle = {"resourceType": "Bundle", "type": "collection", "entry": [{"resource": e} for e in entries]}
    response = client.post("/v1/fhir", json=bundle)
    assert response.status_code == 201, response.text
    body = response.json()
    assert [e["status"] for e in body["entries"]] == ["created", "created", "created", "rejected", "rejected"]
    assert body["entries"][3]["error"]["field"] == "Bundle.entry.3.resource.code"
    assessment = client.get(f"/v1/patients/{patient_id}/assessment").json()
    facts = assessment["result"]["facts"]
    assert (facts["hba1c"], facts["ldl_c"]) == (7.0, 4.9)
    assert "lipid.severe" in [r["rule_id"] for r in assessment["result"]["reasons"]]
