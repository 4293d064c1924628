"""The workbench session: its secret checked at start, the cookie Secure when asked, bound to the secret."""

from __future__ import annotations

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from pydantic import SecretStr, ValidationError

from api.web.common import build_state
from api.web.session import WebSettings
from tests.web.conftest import sign_in
from tests.web.world import World

SECRET = "k3Yb0ard-cat-walked-over-this-32+chars"


@pytest.mark.parametrize("secret", ["changeme", "short-secret"])
def test_a_placeholder_or_short_session_secret_fails_at_start_without_echoing_it(secret: str) -> None:
    with pytest.raises(ValidationError) as raised:
        WebSettings(session_secret=SecretStr(secret))
    assert secret not in str(raised.value)


def test_the_cookie_is_secure_when_configured(app: FastAPI, world: World) -> None:
    app.state.web = build_state(WebSettings(cookie_secure=True))
    client = TestClient(app, base_url="https://testserver")
    sign_in(client, world.keys["team-a"])
    cookie = client.cookies.jar
    assert [c.secure for c in cookie if c.name == "pw_session"] == [True]


def test_a_cookie_signed_under_another_secret_is_no_session(app: FastAPI, world: World) -> None:
    client = TestClient(app)
    sign_in(client, world.keys["team-a"])
    today = f"/workbench/teams/{world.team_a}/today"
    assert client.get(today, follow_redirects=False).status_code == 200
    app.state.web = build_state(WebSettings(session_secret=SecretStr(SECRET)))
    assert client.get(today, follow_redirects=False).status_code == 303
    sign_in(client, world.keys["team-a"])
    assert client.get(today, follow_redirects=False).status_code == 200
