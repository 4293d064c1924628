"""An ``Idempotency-Key`` belongs to the API key that sent it: two gateways linked to one patient
may use the same key without refusing or replaying each other's batches; the gateway that sent it
still gets its own answer replayed."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from fastapi.testclient import TestClient
from sqlmodel import Session

from pathway.access import permissions
from pathway.access.permissions import Role
from tests.api.conftest import register_patient
from tests.builders import AS_OF


def _gateway(client: TestClient, name: str) -> tuple[int, dict[str, str]]:
    """A new gateway key: its id and the headers it sends."""
    with Session(client.app.state.engine) as session:  # type: ignore[attr-defined]
        key, plaintext = permissions.create_key(session, Role.GATEWAY, name, AS_OF)
        session.commit()
        assert key.id is not None
        return key.id, {"Authorization": f"Bearer {plaintext}"}


def _bp(device: str, systolic: int) -> list[dict[str, Any]]:
    return [
        {
            "kind": "bp",
            "systolic": systolic,
            "diastolic": 88,
            "source": "wearable",
            "device_id": device,
            "measured_at": (AS_OF - timedelta(minutes=20)).isoformat(),
        }
    ]


def test_two_gateways_may_use_the_same_idempotency_key_for_one_patient(client: TestClient) -> None:
    patient_id = register_patient(client)
    a_id, a = _gateway(client, "band gateway A")
    b_id, b = _gateway(client, "cuff gateway B")
    for gateway_id in (a_id, b_id):
        linked = client.post(f"/v1/patients/{patient_id}/gateways", json={"api_key_id": gateway_id})
        assert linked.status_code == 204, linked.text
    url = f"/v1/patients/{patient_id}/readings"
    same_key = {"Idempotency-Key": "batch-0001"}

    from_a = client.post(url, json=_bp("band-1", 141), headers={**a, **same_key})
    from_b = client.post(url, json=_bp("cuff-9", 152), headers={**b, **same_key})

    assert from_a.status_code == 201, from_a.text
    assert from_b.status_code == 201, from_b.text  # not 409: A's key is not B's
    assert "Idempotent-Replayed" not in from_b.headers
    assert from_b.json()["created"] == 1
    assert from_b.json()["items"] != from_a.json()["items"]

    # Each gateway's retry replays its own answer, never the other's.
    again_a = client.post(url, json=_bp("band-1", 141), headers={**a, **same_key})
    again_b = client.post(url, json=_bp("cuff-9", 152), headers={**b, **same_key})
    assert again_a.headers.get("Idempotent-Replayed") == "true"
    assert again_a.json() == from_a.json()
    assert again_b.headers.get("Idempotent-Replayed") == "true"
    assert again_b.json() == from_b.json()


def test_b_cannot_replay_a_s_answer_by_sending_a_s_body_under_a_s_key(client: TestClient) -> None:
    patient_id = register_patient(client)
    a_id, a = _gateway(client, "band gateway A")
    b_id, b = _gateway(client, "cuff gateway B")
    for gateway_id in (a_id, b_id):
        client.post(f"/v1/patients/{patient_id}/gateways", json={"api_key_id": gateway_id})
    url = f"/v1/patients/{patient_id}/readings"
    same_key = {"Idempotency-Key": "batch-0001"}
    from_a = client.post(url, json=_bp("band-1", 141), headers={**a, **same_key})

    from_b = client.post(url, json=_bp("band-1", 141), headers={**b, **same_key})

    assert from_a.status_code == from_b.status_code == 201
    assert "Idempotent-Replayed" not in from_b.headers  # processed as B's own batch
    assert from_b.json()["items"][0]["status"] == "duplicate"


def test_the_same_gateway_with_another_body_under_its_key_is_still_refused(client: TestClient) -> None:
    patient_id = register_patient(client)
    a_id, a = _gateway(client, "band gateway A")
    client.post(f"/v1/patients/{patient_id}/gateways", json={"api_key_id": a_id})
    url = f"/v1/patients/{patient_id}/readings"
    same_key = {"Idempotency-Key": "batch-0001"}
    client.post(url, json=_bp("band-1", 141), headers={**a, **same_key})

    other = client.post(url, json=_bp("band-1", 160), headers={**a, **same_key})

    assert other.status_code == 409
    assert other.json()["code"] == "idempotency-key-reused"
