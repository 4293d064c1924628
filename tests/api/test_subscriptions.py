"""Webhook subscriptions over HTTP on both stores: create, list, read, delete; a team key sees and
subscribes to its own team's events only; the URL must be http(s); the secret is never returned;
a subscription disabled after repeated failures shows why, and enabled again sends what it kept."""

from __future__ import annotations

import socket
from datetime import timedelta
from typing import Any

from fastapi.testclient import TestClient

from pathway.access.permissions import Role
from pathway.clinical.clock import CLINIC_TZ
from pathway.events.delivery import DeliveryPolicy
from rules.registry import LoadedPack
from scheduler import jobs
from tests.api.conftest import SettableClock, new_key, register_patient, two_teams

SECRET = "whsec-0123456789abcdef-team"
HOOK = {
    "url": "https://hooks.example.org/pathway",
    "kinds": ["tier_changed", "red_tier_entered"],
    "secret": SECRET,
}


def _as(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def test_create_list_read_delete_and_the_secret_is_never_returned(client: TestClient) -> None:
    created = client.post("/v1/subscriptions", json=HOOK)
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["url"] == HOOK["url"]
    assert body["kinds"] == ["red_tier_entered", "tier_changed"]
    assert body["team_id"] is None  # an admin's without a team: every team's events
    assert body["secret_prefix"] == SECRET[:4]
    listed = client.get("/v1/subscriptions")
    read = client.get(f"/v1/subscriptions/{body['id']}")
    assert [s["id"] for s in listed.json()] == [body["id"]]
    assert read.json() == body
    for text in (created.text, listed.text, read.text):
        assert SECRET not in text
        assert 'secret"' not in text.replace("secret_prefix", "")

    assert client.delete(f"/v1/subscriptions/{body['id']}").status_code == 204
    assert client.get("/v1/subscriptions").json() == []
    gone = client.get(f"/v1/subscriptions/{body['id']}")
    assert (gone.status_code, gone.json()["code"]) == (404, "unknown-subscription")


def test_a_team_key_subscribes_to_and_sees_its_own_teams_events_only(client: TestClient) -> None:
    team_a, _team_b = two_teams(client)
    app: Any = client.app
    key_a, key_b = new_key(app, Role.TEAM, team="jimo-01"), new_key(app, Role.TEAM, team="jimo-02")
    mine = client.post("/v1/subscriptions", json=HOOK, headers=_as(key_a))
    assert mine.status_code == 201, mine.text
    assert mine.json()["team_id"] == team_a
    other = client.post("/v1/subscriptions", json={**HOOK, "team": "jimo-02"}, headers=_as(key_a))
    assert (other.status_code, other.json()["field"]) == (403, "team")
    everything = client.post("/v1/subscriptions", json={**HOOK, "team": "jimo-02"})  # an admin may
    assert everything.status_code == 201

    assert [s["id"] for s in client.get("/v1/subscriptions", headers=_as(key_a)).json()] == [
        mine.json()["id"]
    ]
    assert [s["id"] for s in client.get("/v1/subscriptions", headers=_as(key_b)).json()] == [
        everything.json()["id"]
    ]
    path = f"/v1/subscriptions/{mine.json()['id']}"
    for method, url in (
        ("GET", path),
        ("DELETE", path),
        ("GET", f"{path}/deliveries"),
        ("POST", f"{path}/enable"),
    ):
        response = client.request(method, url, headers=_as(key_b))
        assert (response.status_code, response.json()["code"]) == (404, "unknown-subscription"), url
    ehr = client.post("/v1/subscriptions", json=HOOK, headers=_as(new_key(app, Role.EHR)))
    assert ehr.status_code == 403


def test_the_url_must_be_http_or_https_and_the_fields_valid(client: TestClient) -> None:
    for url in (
        "ftp://hooks.example.org/x",
        "javascript:alert(1)",
        "hooks.example.org",
        "http://",
        "http://h:99999/",
    ):
        response = client.post("/v1/subscriptions", json={**HOOK, "url": url})
        assert (response.status_code, response.json()["field"]) == (422, "url"), url
    short = client.post("/v1/subscriptions", json={**HOOK, "secret": "short"})
    assert (short.status_code, short.json()["field"]) == (422, "secret")
    unknown = client.post("/v1/subscriptions", json={**HOOK, "kinds": ["patient_name_changed"]})
    assert (unknown.status_code, unknown.json()["code"]) == (422, "unknown-code")
    none = client.post("/v1/subscriptions", json={**HOOK, "kinds": []})
    assert (none.status_code, none.json()["field"]) == (422, "kinds")
    assert client.get("/v1/subscriptions").json() == []


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def test_a_failing_subscription_shows_why_it_was_disabled_and_its_log(
    client: TestClient, clock: SettableClock, default_pack: LoadedPack
) -> None:
    url = f"http://127.0.0.1:{_closed_port()}/hook"
    created = client.post("/v1/subscriptions", json={**HOOK, "url": url, "kinds": ["tier_changed"]})
    register_patient(client, "p1")  # its first assessment: a tier_changed event
    app: Any = client.app
    ctx = jobs.Context(
        engine=app.state.engine,
        clock=clock,
        rules=default_pack.pack.policy.follow_through,
        default_zone=CLINIC_TZ,
        webhooks=DeliveryPolicy(timeout_seconds=0.5, backoff_base_seconds=1, max_failures=2),
    )
    for _tick in range(4):
        jobs.deliver_webhooks(ctx)
        clock.at += timedelta(minutes=1)

    shown = client.get(f"/v1/subscriptions/{created.json()['id']}").json()
    assert shown["disabled_at"] is not None
    assert shown["disabled_reason"].startswith(
        "2 consecutive failed deliveries; the last: ConnectionRefusedError"
    )
    (log,) = client.get(f"/v1/subscriptions/{created.json()['id']}/deliveries").json()
    assert (log["event_kind"], log["status"], log["attempts"]) == ("tier_changed", "pending", 2)
    assert [a["attempt"] for a in log["log"]] == [1, 2]
    assert all(not a["succeeded"] and a["error"].startswith("ConnectionRefusedError") for a in log["log"])

    enabled = client.post(f"/v1/subscriptions/{created.json()['id']}/enable")
    assert (enabled.json()["disabled_at"], enabled.json()["consecutive_failures"]) == (None, 0)
    jobs.deliver_webhooks(ctx)  # tried again at once (and fails again: nothing listens)
    (log,) = client.get(f"/v1/subscriptions/{created.json()['id']}/deliveries").json()
    assert log["attempts"] == 3
