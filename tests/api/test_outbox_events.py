"""The outbox on both stores: each event is written by its cause in the cause's transaction — a
tier change, a red tier entered and a crisis by the assessment, a referral opened and returned by
the referral loop — carrying ids and the tier, never the patient's name; a rolled-back
reassessment leaves none, and an assessment that changes nothing emits nothing."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from fastapi.testclient import TestClient
from sqlmodel import Session, col, select

from pathway.patients import reassessment
from pathway.store.tables import Patient, Reading
from pathway.store.work_tables import OutboxEvent
from tests.api.conftest import register_patient, two_teams
from tests.builders import AS_OF


def _events(client: TestClient) -> list[OutboxEvent]:
    with Session(client.app.state.engine) as session:  # type: ignore[attr-defined]
        return list(session.exec(select(OutboxEvent).order_by(col(OutboxEvent.id))))


def _kinds(events: list[OutboxEvent]) -> list[str]:
    return [e.kind for e in events]


def _crisis_visit(at: datetime) -> dict[str, Any]:
    return {
        "at": at.isoformat(),
        "readings": [{"kind": "bp", "systolic": 188, "diastolic": 112}],
        "symptoms": ["severe_headache"],
    }


def test_a_crisis_visit_emits_tier_red_crisis_and_referral_events_with_ids_only(client: TestClient) -> None:
    team, _other = two_teams(client)
    patient = register_patient(client, "p1", name="张三丰", phone="13800000000", team_code="jimo-01")
    first = _events(client)
    assert [(e.kind, e.payload.get("previous_tier"), e.patient_id, e.team_id) for e in first] == [
        ("tier_changed", None, patient, team)
    ]

    visit = client.post(f"/v1/patients/{patient}/encounters", json=_crisis_visit(AS_OF - timedelta(hours=1)))
    assert visit.status_code == 201, visit.text
    new = _events(client)[len(first) :]
    assert _kinds(new) == ["tier_changed", "red_tier_entered", "crisis", "referral_opened"]
    tier_changed, red, crisis, referral = new
    assert tier_changed.payload["tier"] == "red"
    assert tier_changed.payload["previous_tier"] == first[0].payload["tier"]
    assert red.payload == tier_changed.payload
    assert crisis.payload["rule_id"] == "bp.crisis.symptomatic"
    referral_id = client.get(f"/v1/patients/{patient}/referrals").json()[0]["id"]
    assert referral.payload["referral_id"] == referral_id
    assert referral.payload["urgency"] == "emergency"
    for event in (*first, *new):
        assert event.team_id == team
        assert "张三丰" not in str(event.payload)
        assert "13800000000" not in str(event.payload)

    again = client.post(
        f"/v1/patients/{patient}/encounters", json=_crisis_visit(AS_OF - timedelta(minutes=30))
    )
    assert again.status_code == 201, again.text
    assert len(_events(client)) == len(first) + len(new)  # still red, still a crisis: nothing new


def test_a_returned_referral_is_an_event(client: TestClient) -> None:
    patient = register_patient(client, "p2")
    referral = client.post(f"/v1/patients/{patient}/referrals", json={"urgency": "routine", "reason": "复查"})
    rid = referral.json()["id"]
    assert (
        client.post(f"/v1/referrals/{rid}/accept", json={"receiving_institution": "区医院"}).status_code
        == 200
    )
    assert client.post(f"/v1/referrals/{rid}/complete", json={"outcome": "调整用药"}).status_code == 200
    before = len(_events(client))
    returned = client.post(f"/v1/referrals/{rid}/return", json={"follow_up_in_days": 14, "note": "下转"})
    assert returned.status_code == 200, returned.text
    new = _events(client)[before:]
    assert [(e.kind, e.payload.get("referral_id")) for e in new] == [("referral_returned", rid)]
    assert "下转" not in str(new[0].payload)
    assert "复查" not in str(new[0].payload)
    opened = [e for e in _events(client) if e.kind == "referral_opened"]
    assert [e.payload["referral_id"] for e in opened] == [rid]


def test_a_rolled_back_reassessment_leaves_no_event(client: TestClient) -> None:
    patient_id = register_patient(client, "p3")
    before = len(_events(client))
    app: Any = client.app
    with Session(app.state.engine) as session:
        at = AS_OF - timedelta(minutes=10)
        session.add(
            Reading(
                patient_id=patient_id, kind="bp", source="clinic", measured_at=at, received_at=at,
                systolic=190, diastolic=115, source_system="ehr",
            )
        )  # fmt: skip
        session.flush()
        patient = session.get(Patient, patient_id)
        assert patient is not None
        record = reassessment.reassess(session, patient, app.state.pathway, AS_OF)
        assert record.tier == "red"
        written = session.exec(select(OutboxEvent).where(col(OutboxEvent.patient_id) == patient_id)).all()
        assert "tier_changed" in _kinds(list(written))  # in the transaction...
        session.rollback()
    assert len(_events(client)) == before  # ...and gone with it
