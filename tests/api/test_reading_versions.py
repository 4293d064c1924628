"""Issue #20 before any pilot: a reading's identity is (patient, source system, source id); the value
is part of its natural key; results can be amended and retracted; a gateway posts only what
patients measure themselves (and #21: not as another system)."""

from __future__ import annotations

import copy
from datetime import timedelta
from typing import Any

from fastapi.testclient import TestClient

from api.fhir import OBSERVATION_EXAMPLE
from tests.api.conftest import linked_gateway, register_patient, two_teams
from tests.builders import AS_OF

AT = (AS_OF - timedelta(hours=1)).isoformat()


def _bp(systolic: int, diastolic: int, source: str = "clinic", **fields: Any) -> dict[str, Any]:
    return {
        "kind": "bp",
        "systolic": systolic,
        "diastolic": diastolic,
        "source": source,
        "measured_at": AT,
        **fields,
    }


def _as(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def _post(client: TestClient, patient_id: int, *items: dict[str, Any], key: str | None = None) -> Any:
    response = client.post(
        f"/v1/patients/{patient_id}/readings", json=list(items), headers=_as(key) if key else None
    )
    assert response.status_code == 201, response.text
    return response.json()


def _facts(client: TestClient, patient_id: int) -> dict[str, Any]:
    facts: dict[str, Any] = client.get(f"/v1/patients/{patient_id}/assessment").json()["result"]["facts"]
    return facts


def _tier(client: TestClient, patient_id: int) -> str:
    tier: str = client.get(f"/v1/patients/{patient_id}").json()["assessment"]["tier"]
    return tier


def _observation(patient_id: int, systolic: int, diastolic: int, **changes: Any) -> dict[str, Any]:
    observation: dict[str, Any] = copy.deepcopy(OBSERVATION_EXAMPLE)
    observation["subject"] = {"reference": f"Patient/{patient_id}"}
    observation["effectiveDateTime"] = AT
    observation["component"][0]["valueQuantity"]["value"] = systolic
    observation["component"][1]["valueQuantity"]["value"] = diastolic
    return {**observation, **changes}


# --- 1. identity: (patient, source system, source id) -------------------------------------------


def test_another_patients_reading_with_the_same_source_id_is_a_reading_of_its_own(client: TestClient) -> None:
    first, second = register_patient(client, "a"), register_patient(client, "b")
    mine = _post(client, first, _bp(186, 112, source_reading_id="r-1"))["items"][0]

    theirs = _post(client, second, _bp(128, 78, source_reading_id="r-1"))

    assert theirs["items"][0]["status"] == "created"
    assert theirs["items"][0]["reading_id"] not in (None, mine["reading_id"])
    assert (_facts(client, second)["office_sbp"], _facts(client, first)["office_sbp"]) == (128, 186)


def test_two_gateways_may_use_the_same_reading_id_for_one_patient(client: TestClient) -> None:
    patient_id = register_patient(client)
    band, cuff = linked_gateway(client, patient_id), linked_gateway(client, patient_id)
    at = (AS_OF - timedelta(hours=2)).isoformat()
    reading = _bp(150, 92, source="wearable", source_reading_id="000001", measured_at=at)
    assert _post(client, patient_id, reading, key=band)["created"] == 1

    other = _post(client, patient_id, {**reading, "systolic": 132, "device_id": "cuff"}, key=cuff)

    assert other["created"] == 1


def test_a_fhir_identifier_for_another_patient_is_another_reading(client: TestClient) -> None:
    first, second = register_patient(client, "a"), register_patient(client, "b")
    posted = client.post("/v1/fhir/Observation", json=_observation(first, 186, 112)).json()

    theirs = client.post("/v1/fhir/Observation", json=_observation(second, 128, 78)).json()

    assert theirs["entries"][0]["status"] == "created"
    assert theirs["entries"][0]["reading_id"] != posted["entries"][0]["reading_id"]


# --- 2. amend and retract ---------------------------------------------------------------------


def test_a_re_post_with_other_values_amends_the_reading_and_re_tiers(client: TestClient) -> None:
    patient_id = register_patient(client)
    first = _post(client, patient_id, _bp(186, 112, source_reading_id="visit-bp-1"))
    assert first["assessment"]["tier"] == "red"

    amended = _post(client, patient_id, _bp(128, 78, source_reading_id="visit-bp-1"))

    item = amended["items"][0]
    assert (item["status"], item["supersedes"]) == ("amended", first["items"][0]["reading_id"])
    assert amended["amended"] == 1
    assert amended["assessment"]["tier"] != "red"
    assert _facts(client, patient_id)["office_sbp"] == 128
    preview = client.post(
        f"/v1/patients/{patient_id}/assessment:preview", params={"as_of": AS_OF.isoformat()}
    )
    assert preview.json()["facts"]["office_sbp"] == 128
    again = _post(client, patient_id, _bp(128, 78, source_reading_id="visit-bp-1"))
    assert (again["items"][0]["status"], again["items"][0]["reading_id"]) == ("duplicate", item["reading_id"])


def test_a_reading_retracted_by_delete_no_longer_counts(client: TestClient) -> None:
    patient_id = register_patient(client)
    posted = _post(client, patient_id, _bp(186, 112))
    reading_id = posted["items"][0]["reading_id"]
    assert _tier(client, patient_id) == "red"

    retracted = client.delete(f"/v1/patients/{patient_id}/readings/{reading_id}")

    assert retracted.status_code == 200, retracted.text
    assert retracted.json()["assessment"]["tier"] != "red"
    assert "office_sbp" not in _facts(client, patient_id)
    retry = _post(client, patient_id, _bp(186, 112))
    assert retry["items"][0]["status"] == "duplicate"
    assert _tier(client, patient_id) != "red"
    assert client.delete(f"/v1/patients/{patient_id}/readings/{reading_id}").status_code == 200
    other = register_patient(client, "other")
    assert client.delete(f"/v1/patients/{other}/readings/{reading_id}").status_code == 404


def test_a_superseded_version_cannot_be_retracted(client: TestClient) -> None:
    patient_id = register_patient(client)
    old = _post(client, patient_id, _bp(186, 112, source_reading_id="x"))["items"][0]["reading_id"]
    _post(client, patient_id, _bp(128, 78, source_reading_id="x"))

    response = client.delete(f"/v1/patients/{patient_id}/readings/{old}")

    assert (response.status_code, response.json()["code"]) == (409, "reading-superseded")


def test_fhir_status_amends_retracts_or_refuses(client: TestClient) -> None:
    patient_id = register_patient(client)
    crisis = _observation(patient_id, 186, 112)
    assert (
        client.post("/v1/fhir/Observation", json=crisis, params={"source": "clinic"}).json()["created"] == 1
    )
    assert _tier(client, patient_id) == "red"

    corrected = client.post(
        "/v1/fhir/Observation", json={**_observation(patient_id, 128, 78), "status": "amended"}
    ).json()
    assert corrected["entries"][0]["status"] == "amended"
    assert _facts(client, patient_id)["office_sbp"] == 128

    withdrawn = client.post(
        "/v1/fhir/Observation", json={**_observation(patient_id, 128, 78), "status": "entered-in-error"}
    ).json()
    assert withdrawn["entries"][0]["status"] == "retracted"
    assert "office_sbp" not in _facts(client, patient_id)

    preliminary = client.post(
        "/v1/fhir/Observation", json={**_observation(patient_id, 190, 115), "status": "preliminary"}
    )
    assert preliminary.status_code == 422
    assert (preliminary.json()["code"], preliminary.json()["field"]) == (
        "result-not-final",
        "Observation.status",
    )
    assert "office_sbp" not in _facts(client, patient_id)


def test_a_re_sent_visit_with_other_values_replaces_the_old_ones(client: TestClient) -> None:
    patient_id = register_patient(client)
    visit = {
        "at": AT,
        "source_encounter_id": "v-1",
        "readings": [{"kind": "bp", "systolic": 186, "diastolic": 112}],
    }
    first = client.post(f"/v1/patients/{patient_id}/encounters", json=visit)
    assert first.json()["assessment"]["tier"] == "red"
    visit["readings"] = [{"kind": "bp", "systolic": 128, "diastolic": 78}]

    again = client.post(f"/v1/patients/{patient_id}/encounters", json=visit)

    assert again.status_code == 200, again.text
    assert (again.json()["created"], again.json()["amended"]) == (False, True)
    assert again.json()["assessment"]["tier"] != "red"
    assert _facts(client, patient_id)["office_sbp"] == 128
    same = client.post(f"/v1/patients/{patient_id}/encounters", json=visit).json()
    assert (same["created"], same["amended"]) == (False, False)


# --- 3. the value is part of the natural key --------------------------------------------------


def test_two_values_of_one_kind_at_one_instant_are_two_readings(client: TestClient) -> None:
    patient_id = register_patient(client)
    first = _post(client, patient_id, _bp(150, 92, source="home"))

    second = _post(client, patient_id, _bp(196, 121, source="home"), _bp(150, 92, source="home"))

    assert [item["status"] for item in second["items"]] == ["created", "duplicate"]
    assert second["items"][1]["reading_id"] == first["items"][0]["reading_id"]


# --- 4. a gateway posts home, wearable or CGM, as its own system ------------------------------


def test_a_gateway_may_not_post_clinic_or_lab_readings(client: TestClient) -> None:
    patient_id = register_patient(client)
    gateway = linked_gateway(client, patient_id)

    answer = _post(
        client, patient_id, _bp(186, 112, source="clinic"), _bp(150, 92, source="wearable"), key=gateway
    )

    assert [item["status"] for item in answer["items"]] == ["rejected", "created"]
    error = answer["items"][0]["error"]
    assert (error["code"], error["field"]) == ("source-not-allowed", "readings.0.source")
    assert _tier(client, patient_id) != "red"


def test_a_gateway_may_not_post_as_another_source_system(client: TestClient) -> None:
    patient_id = register_patient(client)
    gateway = linked_gateway(client, patient_id)

    response = client.post(
        f"/v1/patients/{patient_id}/readings",
        params={"source_system": "ehr"},
        json=[_bp(186, 112, source="clinic")],
        headers=_as(gateway),
    )

    assert (response.status_code, response.json()["field"]) == (403, "source_system")
    assert _tier(client, patient_id) != "red"


def test_a_gateways_fhir_bp_is_a_wearable_reading_not_an_office_crisis(client: TestClient) -> None:
    patient_id = register_patient(client)
    gateway = linked_gateway(client, patient_id)

    posted = client.post(
        "/v1/fhir/Observation", json=_observation(patient_id, 186, 112), headers=_as(gateway)
    )

    assert posted.status_code == 201, posted.text
    assert posted.json()["created"] == 1
    facts = _facts(client, patient_id)
    assert "office_sbp" not in facts
    assert _tier(client, patient_id) != "red"
    as_clinic = client.post(
        "/v1/fhir/Observation",
        json=_observation(patient_id, 190, 115),
        params={"source": "clinic"},
        headers=_as(gateway),
    )
    assert (as_clinic.status_code, as_clinic.json()["code"]) == (403, "source-not-allowed")


# --- every history read sees only readings in force -------------------------------------------


def test_team_indicators_and_the_care_plan_see_only_readings_in_force(client: TestClient) -> None:
    team, _ = two_teams(client)
    patient_id = register_patient(client, "t1", birth_date="1966-01-01", team_code="jimo-01")
    visit = {
        "at": (AS_OF - timedelta(days=5)).isoformat(),
        "source_encounter_id": "v-7",
        "readings": [{"kind": "bp", "systolic": 150, "diastolic": 95}],
    }
    client.post(f"/v1/patients/{patient_id}/encounters", json=visit)
    visit["readings"] = [{"kind": "bp", "systolic": 128, "diastolic": 78}]
    assert client.post(f"/v1/patients/{patient_id}/encounters", json=visit).json()["amended"] is True
    lab = {
        "kind": "ldl_c",
        "value": 3.0,
        "source": "lab",
        "measured_at": (AS_OF - timedelta(days=3)).isoformat(),
    }
    lab_id = _post(client, patient_id, lab)["items"][0]["reading_id"]
    assert client.delete(f"/v1/patients/{patient_id}/readings/{lab_id}").status_code == 200

    indicators = client.get(
        f"/v1/teams/{team}/indicators", params={"to": AS_OF.date().isoformat(), "detail": True}
    ).json()
    plan = client.get(f"/v1/patients/{patient_id}/care-plan", params={"year": 2026}).json()

    assert (indicators["bp_control"]["numerator"], indicators["bp_control"]["denominator"]) == (1, 1)
    assert indicators["ldl_control_by_stratum"] == {}
    assert [i for i in plan["items"] if i["kind"] == "lipid_recheck" and i["status"] == "done"] == []
