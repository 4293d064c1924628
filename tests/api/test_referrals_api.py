"""The referral loop end to end: opened by a rule, accepted, completed, then returned (下转)."""

from __future__ import annotations

from fastapi.testclient import TestClient

from tests.api.conftest import register_patient


def _visit(
    client: TestClient, patient_id: int, systolic: int, at: str, symptoms: list[str] | None = None
) -> None:
    body = {
        "at": at,
        "readings": [{"kind": "bp", "systolic": systolic, "diastolic": 96}],
        "symptoms": symptoms or [],
    }
    assert client.post(f"/v1/patients/{patient_id}/encounters", json=body).status_code == 201


def test_a_rule_opens_one_referral_and_a_more_urgent_call_upgrades_it(client: TestClient) -> None:
    patient_id = register_patient(client, "r1")
    _visit(client, patient_id, 184, "2026-03-01T07:00:00+08:00")
    _visit(client, patient_id, 186, "2026-03-01T08:00:00+08:00")  # still urgent: no second referral
    referrals = client.get(f"/v1/patients/{patient_id}/referrals").json()
    assert [(r["urgency"], r["status"], r["rule_id"]) for r in referrals] == [("urgent", "open", "bp.crisis")]
    _visit(client, patient_id, 188, "2026-03-01T08:30:00+08:00", symptoms=["chest_pain"])
    referrals = client.get(f"/v1/patients/{patient_id}/referrals").json()
    assert [(r["urgency"], r["rule_id"]) for r in referrals] == [("emergency", "bp.crisis.symptomatic")]
    summary = client.get(f"/v1/patients/{patient_id}").json()
    assert summary["active_referral"]["urgency"] == "emergency"


def test_the_loop_accept_complete_return(client: TestClient) -> None:
    patient_id = register_patient(client, "r1")
    _visit(client, patient_id, 184, "2026-03-01T07:00:00+08:00")
    referral_id = client.get(f"/v1/patients/{patient_id}/referrals").json()[0]["id"]
    early = client.post(f"/v1/referrals/{referral_id}/complete", json={"outcome": "seen"})
    assert early.status_code == 409
    assert early.json()["code"] == "invalid-transition"
    accepted = client.post(
        f"/v1/referrals/{referral_id}/accept", json={"receiving_institution": "即墨区人民医院 三高中心"}
    )
    assert accepted.json()["status"] == "accepted"
    completed = client.post(
        f"/v1/referrals/{referral_id}/complete", json={"outcome": "调整降压方案，血压 142/88"}
    )
    assert completed.json()["status"] == "completed"
    returned = client.post(
        f"/v1/referrals/{referral_id}/return", json={"follow_up_in_days": 14, "note": "两周后随访"}
    )
    body = returned.json()
    assert (body["status"], body["return_follow_up_due"]) == ("returned", "2026-03-15")
    assert body["receiving_institution"] == "即墨区人民医院 三高中心"
    assert (
        client.post(f"/v1/referrals/{referral_id}/accept", json={"receiving_institution": "x"}).status_code
        == 409
    )


def test_a_gp_can_refer_by_hand_and_unknown_referrals_are_404(client: TestClient) -> None:
    patient_id = register_patient(client, "r1")
    made = client.post(
        f"/v1/patients/{patient_id}/referrals", json={"urgency": "routine", "reason": "疑似继发性高血压"}
    )
    assert made.status_code == 201
    assert (made.json()["rule_id"], made.json()["reason"]) == (None, "疑似继发性高血压")
    missing = client.post("/v1/referrals/999999/accept", json={"receiving_institution": "x"})
    assert (missing.status_code, missing.json()["code"]) == (404, "unknown-referral")
