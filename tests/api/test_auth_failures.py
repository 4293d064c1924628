"""Failed authentications are rate-limited per client address (#21 item 9c): an address that keeps
presenting invalid keys is refused (429, Retry-After) without its keys being looked up, until its
bucket refills; other addresses and a missing key are not counted."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.testclient import TestClient

from api.rate_limit import RateLimiter
from pathway.access.permissions import Role
from tests.api.conftest import new_key


class Ticks:
    def __init__(self) -> None:
        self.at = 0.0

    def __call__(self) -> float:
        return self.at


def _limit(app: FastAPI, burst: int) -> Ticks:
    ticks = Ticks()
    app.state.auth_failures = RateLimiter(1.0, burst, monotonic=ticks)
    return ticks


def test_an_address_guessing_keys_is_refused_until_its_bucket_refills(client: TestClient) -> None:
    app: FastAPI = client.app  # type: ignore[assignment]
    ticks = _limit(app, burst=3)
    valid = {"Authorization": f"Bearer {new_key(app, Role.EHR)}"}
    guess = {"Authorization": "Bearer pw_nope_0000000000000000"}

    assert [client.get("/v1/rule-packs", headers=guess).status_code for _ in range(3)] == [401] * 3
    refused = client.get("/v1/rule-packs", headers=guess)
    assert (refused.status_code, refused.json()["code"]) == (429, "rate-limited")
    assert int(refused.headers["Retry-After"]) >= 1
    # While the address is refused even a valid key is not looked up: no guess can succeed.
    assert client.get("/v1/rule-packs", headers=valid).status_code == 429

    ticks.at += 2
    assert client.get("/v1/rule-packs", headers=valid).status_code == 200
    assert client.get("/v1/rule-packs", headers=guess).status_code == 401


def test_valid_keys_and_requests_without_a_key_are_not_counted(client: TestClient) -> None:
    app: FastAPI = client.app  # type: ignore[assignment]
    _limit(app, burst=2)
    valid = {"Authorization": f"Bearer {new_key(app, Role.EHR)}"}
    for _ in range(5):
        assert client.get("/v1/rule-packs", headers=valid).status_code == 200
    bare = TestClient(app)
    for _ in range(5):
        assert bare.get("/v1/rule-packs").status_code == 401
    assert client.get("/v1/rule-packs", headers=valid).status_code == 200
