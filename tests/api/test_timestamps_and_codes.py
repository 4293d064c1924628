"""A number is no timestamp (pydantic would read 1700000000 as epoch seconds and store a reading in
2023, or 0 in 1970): a JSON number for measured_at, at or until is a 422 naming the field. FHIR
Observations: the mmol/L LOINC codes Chinese labs send, eGFR and UACR, ``mmHg`` spelled plainly, and
a comparator (``<``) refused instead of dropped."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session, select

from pathway.store.tables import Reading
from tests.api.conftest import register_patient

AT = "2026-02-28T08:00:00+08:00"
UCUM = "http://unitsofmeasure.org"


@pytest.mark.parametrize("when", [1772236800, 0, 1.5, "1772236800"])
def test_a_number_for_measured_at_rejects_the_reading_naming_the_field(client: TestClient, when: Any) -> None:
    patient_id = register_patient(client)
    reading = {"kind": "bp", "systolic": 130, "diastolic": 80, "source": "home", "measured_at": when}
    answer = client.post(f"/v1/patients/{patient_id}/readings", json=[reading])
    assert answer.status_code == 201, answer.text
    [item] = answer.json()["items"]
    assert (item["status"], item["error"]["field"]) == ("rejected", "readings.0.measured_at")


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("symptoms", [{"code": "severe_headache", "at": 1772236800}], "0.at"),
        ("checks", [{"kind": "fundus", "at": 1772236800}], "0.at"),
        ("encounters", {"at": 1772236800}, "at"),
    ],
)
def test_a_number_for_any_timestamp_is_a_422_naming_it(
    client: TestClient, path: str, body: Any, field: str
) -> None:
    patient_id = register_patient(client)
    answer = client.post(f"/v1/patients/{patient_id}/{path}", json=body)
    assert answer.status_code == 422, answer.text
    assert answer.json()["field"] == field


def _lab(patient_id: int, loinc: str, value: float, unit: str, ident: str, **quantity: Any) -> dict[str, Any]:
    return {
        "resourceType": "Observation",
        "status": "final",
        "identifier": [{"value": ident}],
        "category": [{"coding": [{"code": "laboratory"}]}],
        "code": {"coding": [{"system": "http://loinc.org", "code": loinc}]},
        "subject": {"reference": f"Patient/{patient_id}"},
        "effectiveDateTime": "2026-02-20T09:00:00+08:00",
        "valueQuantity": {"value": value, "unit": unit, "system": UCUM, "code": unit, **quantity},
    }


@pytest.mark.parametrize(
    ("loinc", "value", "unit", "fact", "expected"),
    [
        ("22748-8", 4.1, "mmol/L", "ldl_c", 4.1),  # Cholesterol in LDL [Moles/volume]
        ("59261-8", 53, "mmol/mol", "hba1c", 7.0),  # HbA1c by IFCC protocol
        ("14647-2", 6.2, "mmol/L", "tc", 6.2),  # Cholesterol [Moles/volume]
    ],
)
def test_the_mmol_loinc_codes_of_a_chinese_lab_are_read(
    client: TestClient, loinc: str, value: float, unit: str, fact: str, expected: float
) -> None:
    patient_id = register_patient(client, conditions=["hypertension", "diabetes"])
    answer = client.post("/v1/fhir/Observation", json=_lab(patient_id, loinc, value, unit, "x1"))
    assert answer.status_code == 201, answer.text
    facts = client.get(f"/v1/patients/{patient_id}/assessment").json()["result"]["facts"]
    assert facts[fact] == expected


@pytest.mark.parametrize(
    ("loinc", "value", "unit", "kind"),
    [("62238-1", 55, "mL/min/{1.73_m2}", "egfr"), ("33914-3", 55, "mL/min/{1.73_m2}", "egfr"),
     ("9318-7", 45, "mg/g", "uacr"), ("14958-3", 5.1, "mg/mmol", "uacr"), ("2345-7", 120, "mg/dL", "rpg"),
     ("14771-0", 7.4, "mmol/L", "fpg"), ("1521-4", 160, "mg/dL", "ppg2h")],
)  # fmt: skip
def test_egfr_uacr_and_glucose_codes_are_stored_as_their_kind(
    client: TestClient, loinc: str, value: float, unit: str, kind: str
) -> None:
    patient_id = register_patient(client)
    answer = client.post("/v1/fhir/Observation", json=_lab(patient_id, loinc, value, unit, "x1"))
    assert answer.status_code == 201, answer.text
    with Session(client.app.state.engine) as session:  # type: ignore[attr-defined]
        assert session.exec(select(Reading.kind)).all() == [kind]


def test_mmhg_spelled_plainly_is_accepted(client: TestClient) -> None:
    patient_id = register_patient(client)
    quantity = {"unit": "mmHg", "system": UCUM, "code": "mmHg"}
    observation = {
        "resourceType": "Observation",
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "85354-9"}]},
        "subject": {"reference": f"Patient/{patient_id}"},
        "effectiveDateTime": AT,
        "component": [
            {"code": {"coding": [{"system": "http://loinc.org", "code": "8480-6"}]},
             "valueQuantity": {"value": 152, **quantity}},
            {"code": {"coding": [{"system": "http://loinc.org", "code": "8462-4"}]},
             "valueQuantity": {"value": 94, **quantity}},
        ],
    }  # fmt: skip
    answer = client.post("/v1/fhir/Observation", json=observation)
    assert answer.status_code == 201, answer.text


@pytest.mark.parametrize("comparator", ["<", ">", "<=", ">="])
def test_a_value_with_a_comparator_is_refused_not_stored_bare(client: TestClient, comparator: str) -> None:
    patient_id = register_patient(client)
    observation = _lab(patient_id, "2339-0", 2.0, "mmol/L", "x1", comparator=comparator)
    answer = client.post("/v1/fhir/Observation", json=observation)
    assert answer.status_code == 422, answer.text
    assert answer.json()["field"] == "Observation.valueQuantity.comparator"
