"""Hostile input: malformed JSON, NaN and Infinity, huge numbers, wrong types — a 4xx naming the
field, never a 500; unicode, SQL and HTML in free text are stored inertly and given back verbatim."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.api.conftest import register_patient

AT = "2026-02-28T08:00:00+08:00"


def _raw(client: TestClient, path: str, body: str) -> tuple[int, Any]:
    response = client.post(path, content=body, headers={"Content-Type": "application/json"})
    return response.status_code, response.json()


@pytest.mark.parametrize("systolic", ["NaN", "Infinity", "-Infinity", '"一百三十"', "true"])
def test_non_numbers_refuse_the_request_naming_the_field(client: TestClient, systolic: str) -> None:
    patient_id = register_patient(client)
    status, answer = _raw(client, f"/v1/patients/{patient_id}/readings", _reading(systolic))
    assert (status, answer["code"], answer["field"]) == (422, "invalid-input", "0.systolic")


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
