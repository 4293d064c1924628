"""The workbench's fixtures: the small team of :mod:`tests.web.world` on SQLite, built once per session
and copied for each test (so each test changes its own store), an app on it with a fixed clock, and a
signed-in browser-like client."""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from api.main import create_app, pathway_config
from api.web.common import build_state
from api.web.session import WebSettings
from pathway.clinical.clock import CLINIC_TZ
from pathway.settings import Settings
from pathway.store.db import make_engine, migrate
from rules.evaluation import Evaluator
from tests.api.conftest import SettableClock
from tests.web.world import World, build_world

NOW = datetime(2026, 3, 3, 9, 30, tzinfo=CLINIC_TZ)


@pytest.fixture(scope="session")
def world_template(tmp_path_factory: pytest.TempPathFactory, evaluator: Evaluator) -> tuple[Path, World]:
    path = tmp_path_factory.mktemp("world") / "pathway.db"
    url = f"sqlite:///{path}"
    migrate(url)
    engine = make_engine(url)
    world = build_world(engine, pathway_config(evaluator, Settings(database_url=url)), NOW)
    engine.dispose()
    return path, world


@pytest.fixture
def world(world_template: tuple[Path, World]) -> World:
    return world_template[1]


@pytest.fixture
def clock() -> SettableClock:
    return SettableClock(NOW)


@pytest.fixture
def app(
    world_template: tuple[Path, World], tmp_path: Path, evaluator: Evaluator, clock: SettableClock
) -> Iterator[FastAPI]:
    path = tmp_path / "pathway.db"
    shutil.copyfile(world_template[0], path)
    settings = Settings(database_url=f"sqlite:///{path}", key_cache_seconds=0)
    app = create_app(settings, clock=clock, evaluator=evaluator)
    app.state.web = build_state(WebSettings(dashboard_wait_seconds=30))
    yield app
    app.state.engine.dispose()


@pytest.fixture
def client(app: FastAPI) -> TestClient:
    return TestClient(app)


def sign_in(client: TestClient, key: str, next_url: str = "") -> str:
    """Sign in through the form; the session's CSRF token (as the pages carry it)."""
    form = client.get("/workbench/login")
    token = re.search(r'name="login_token" value="([^"]+)"', form.text)
    assert token is not None, form.text
    answer = client.post(
        "/workbench/login",
        data={"api_key": key, "login_token": token.group(1), "next": next_url},
        follow_redirects=False,
    )
    assert answer.status_code == 303, answer.text
    page = client.get(answer.headers["location"])
    assert page.status_code == 200, page.text
    csrf = re.search(r'data-csrf="([^"]+)"', page.text)
    assert csrf is not None
    return csrf.group(1)
