"""The workbench session: its secret checked at start (or generated and shared), the cookie Secure when
asked, bound to the secret; a session the server keeps, so no copy of the database makes one, and
logout, key revocation and the cap end it; a sign-in form only the server issued (login CSRF)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from datetime import timedelta

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from pydantic import SecretStr, ValidationError
from sqlalchemy import update
from sqlmodel import Session, select

from api.main import create_app
from api.web.common import build_state
from api.web.session import WebSettings
from pathway.access import permissions
from pathway.settings import Settings
from pathway.store.work_tables import ApiKey, ServerSecret, WorkbenchSession
from rules.evaluation import Evaluator
from tests.api.conftest import SettableClock
from tests.web.conftest import NOW, sign_in
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


def _today(world: World) -> str:
    return f"/workbench/teams/{world.team_a}/today"


def _status(app: FastAPI, world: World, cookie: str) -> int:
    """What a browser holding only this session cookie gets for team A's list."""
    browser = TestClient(app)
    browser.cookies.set("pw_session", cookie, path="/workbench")
    return browser.get(_today(world), follow_redirects=False).status_code


def test_a_cookie_forged_from_the_key_row_with_no_secret_set_is_no_session(
    app: FastAPI, world: World
) -> None:
    """Read access to the database was enough: the MAC's key came from the api_key row alone."""
    with Session(app.state.engine) as session:
        key = session.exec(select(ApiKey).where(ApiKey.id == world.key_ids["admin"])).one()
    expires = str(int(NOW.timestamp()) + 10 * 365 * 86400)  # a ten-year admin session
    nonce = "forged-nonce"
    mac_key = hmac.new(b"", key.secret_sha256.encode(), hashlib.sha256).digest()
    message = f"session|{key.id}|{key.prefix}|{expires}|{nonce}".encode()
    mac = base64.urlsafe_b64encode(hmac.new(mac_key, message, hashlib.sha256).digest()).rstrip(b"=").decode()

    assert _status(app, world, f"{key.id}.{key.prefix}.{expires}.{nonce}.{mac}") == 303


def test_the_database_holds_no_session_token(client: TestClient, app: FastAPI, world: World) -> None:
    sign_in(client, world.keys["team-a"])
    token = client.cookies["pw_session"]
    with Session(app.state.engine) as session:
        (row,) = session.exec(select(WorkbenchSession)).all()
    assert token not in row.token_digest
    assert row.token_digest != hashlib.sha256(token.encode()).hexdigest()
    assert _status(app, world, row.token_digest) == 303  # the stored digest is no cookie


def test_a_session_ends_at_the_cap_whatever_expiry_it_was_given(
    client: TestClient, app: FastAPI, world: World, clock: SettableClock
) -> None:
    sign_in(client, world.keys["team-a"])
    cookie = client.cookies["pw_session"]
    with Session(app.state.engine) as session:  # an expiry ten years ahead, beyond any cap
        session.execute(update(WorkbenchSession).values(expires_at=NOW + timedelta(days=3650)))
        session.commit()
    clock.at = NOW + timedelta(hours=11, minutes=59)
    assert _status(app, world, cookie) == 200
    clock.at = NOW + timedelta(hours=12)  # PATHWAY_WEB_SESSION_HOURS (12) after signing in
    assert _status(app, world, cookie) == 303


def test_lowering_the_cap_shortens_open_sessions(
    client: TestClient, app: FastAPI, world: World, clock: SettableClock
) -> None:
    sign_in(client, world.keys["team-a"])
    cookie = client.cookies["pw_session"]
    app.state.web = build_state(WebSettings(session_hours=1))  # the server restarted with a lower cap
    clock.at = NOW + timedelta(minutes=59)
    assert _status(app, world, cookie) == 200
    clock.at = NOW + timedelta(hours=2)
    assert _status(app, world, cookie) == 303


def test_after_logout_the_old_cookie_opens_nothing(client: TestClient, app: FastAPI, world: World) -> None:
    csrf = sign_in(client, world.keys["team-a"])
    kept = client.cookies["pw_session"]
    assert _status(app, world, kept) == 200

    out = client.post("/workbench/logout", data={"csrf": csrf}, follow_redirects=False)

    assert out.status_code == 303
    assert _status(app, world, kept) == 303  # a copy of the cookie kept elsewhere: ended on the server
    with Session(app.state.engine) as session:
        (row,) = session.exec(select(WorkbenchSession)).all()
    assert row.ended_at is not None


def test_revoking_the_key_ends_its_sessions_at_once_even_with_the_key_cache(
    app: FastAPI, world: World, evaluator: Evaluator, clock: SettableClock
) -> None:
    cached = create_app(
        Settings(database_url=str(app.state.engine.url), key_cache_seconds=600),
        clock=clock,
        evaluator=evaluator,
    )
    try:
        client = TestClient(cached)
        sign_in(client, world.keys["team-a"])
        assert client.get(_today(world), follow_redirects=False).status_code == 200
        prefix = world.keys["team-a"].removeprefix("pw_").partition("_")[0]
        with Session(cached.state.engine) as session:
            permissions.revoke_key(session, prefix, NOW)
            session.commit()
        assert client.get(_today(world), follow_redirects=False).status_code == 303
    finally:
        cached.state.engine.dispose()


def _login_form(client: TestClient) -> str:
    form = client.get("/workbench/login")
    token = re.search(r'name="login_token" value="([^"]+)"', form.text)
    assert token is not None
    return token.group(1)


def test_a_sign_in_post_without_the_form_token_is_refused(app: FastAPI, world: World) -> None:
    client = TestClient(app)
    _login_form(client)  # the sign-in cookie, but not the form's token

    answer = client.post("/workbench/login", data={"api_key": world.keys["team-a"]}, follow_redirects=False)

    assert answer.status_code == 400
    assert "pw_session" not in client.cookies


def test_a_sign_in_token_the_server_did_not_issue_is_refused(app: FastAPI, world: World) -> None:
    """Login CSRF: a page elsewhere that planted a cookie of its choosing and posts the same value
    (a plain double-submit check takes any equal pair) signs the victim in as the attacker."""
    client = TestClient(app)
    client.cookies.set("pw_login", "attacker-chosen", path="/workbench")

    answer = client.post(
        "/workbench/login",
        data={"api_key": world.keys["team-a"], "login_token": "attacker-chosen", "next": ""},
        follow_redirects=False,
    )

    assert answer.status_code == 400
    assert "pw_session" not in client.cookies


def test_a_sign_in_token_is_good_for_an_hour(app: FastAPI, world: World, clock: SettableClock) -> None:
    client = TestClient(app)
    token = _login_form(client)
    clock.at = NOW + timedelta(hours=1, seconds=1)

    answer = client.post(
        "/workbench/login",
        data={"api_key": world.keys["team-a"], "login_token": token, "next": ""},
        follow_redirects=False,
    )

    assert answer.status_code == 400


def test_a_sign_in_posted_from_another_site_is_refused(app: FastAPI, world: World) -> None:
    client = TestClient(app)
    token = _login_form(client)

    answer = client.post(
        "/workbench/login",
        data={"api_key": world.keys["team-a"], "login_token": token, "next": ""},
        headers={"Sec-Fetch-Site": "cross-site"},
        follow_redirects=False,
    )

    assert answer.status_code == 403
    assert "pw_session" not in client.cookies
    login_cookie = [c for c in client.cookies.jar if c.name == "pw_login"]
    assert login_cookie
    assert all(c.get_nonstandard_attr("SameSite", "").lower() == "strict" for c in login_cookie)


def test_without_a_configured_secret_one_is_generated_once_and_shared(app: FastAPI, world: World) -> None:
    client = TestClient(app)
    sign_in(client, world.keys["team-a"])
    cookie = client.cookies["pw_session"]
    app.state.web = build_state()  # another server process on the same database
    assert _status(app, world, cookie) == 200
    with Session(app.state.engine) as session:
        (secret,) = session.exec(select(ServerSecret)).all()
    assert len(secret.value) >= 43  # 256 random bits


def test_a_configured_secret_is_not_written_to_the_database(app: FastAPI, world: World) -> None:
    app.state.web = build_state(WebSettings(session_secret=SecretStr(SECRET)))
    client = TestClient(app)
    sign_in(client, world.keys["team-a"])
    assert _status(app, world, client.cookies["pw_session"]) == 200
    with Session(app.state.engine) as session:
        assert session.exec(select(ServerSecret)).all() == []


def test_an_address_guessing_workbench_keys_is_refused_for_a_while(app: FastAPI, world: World) -> None:
    from api.rate_limit import RateLimiter

    ticks = [0.0]
    app.state.auth_failures = RateLimiter(1.0, 2, monotonic=lambda: ticks[0])
    client = TestClient(app)

    def attempt(key: str) -> int:
        token = _login_form(client)
        data = {"api_key": key, "login_token": token, "next": ""}
        return client.post("/workbench/login", data=data, follow_redirects=False).status_code

    assert [attempt("pw_wrong_000000000000") for _ in range(2)] == [401, 401]
    assert attempt(world.keys["team-a"]) == 429  # refused before the key is looked up
    ticks[0] += 2
    assert attempt(world.keys["team-a"]) == 303
