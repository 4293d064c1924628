"""The workbench on PostgreSQL (production's store): the three pages, an outcome, the dashboard's numbers."""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from api.main import create_app, pathway_config
from api.web.common import build_state
from api.web.session import WebSettings
from pathway.access import session_store
from pathway.settings import Settings
from pathway.store.db import migrate
from rules.evaluation import Evaluator
from tests.api.conftest import SettableClock
from tests.web.conftest import NOW, sign_in
from tests.web.world import WANG_BP_CLINIC, WANG_BP_HOME, World, build_world

pytestmark = pytest.mark.postgres


@pytest.fixture
def pg_app(postgres_url: str, evaluator: Evaluator) -> Iterator[tuple[FastAPI, World]]:
    migrate(postgres_url)
    settings = Settings(database_url=postgres_url, key_cache_seconds=0)
    app = create_app(settings, clock=SettableClock(NOW), evaluator=evaluator)
    app.state.web = build_state(WebSettings(dashboard_wait_seconds=30))
    world = build_world(app.state.engine, pathway_config(evaluator, settings), NOW)
    yield app, world
    app.state.engine.dispose()


def test_the_workbench_on_postgresql(pg_app: tuple[FastAPI, World]) -> None:
    app, world = pg_app
    client = TestClient(app)
    csrf = sign_in(client, world.keys["team-a"])
    today = client.get(f"/workbench/teams/{world.team_a}/today").text
    tasks = re.findall(r'id="task-(\d+)"', today)
    assert tasks
    assert "赵敏" not in today
    answer = client.post(
        f"/workbench/tasks/{tasks[0]}/outcome",
        data={"outcome": "done"},
        headers={"Accept": "application/json", "X-CSRF-Token": csrf},
    )
    assert answer.json()["ok"] is True
    assert f'id="task-{tasks[0]}"' not in client.get(f"/workbench/teams/{world.team_a}/today").text
    patient = client.get(f"/workbench/patients/{world.patients['A-001']}").text
    assert f'data-chart="bp" data-points="{WANG_BP_CLINIC + WANG_BP_HOME}"' in patient
    assert client.get(f"/workbench/patients/{world.patients['B-001']}").status_code == 404
    dashboard = client.get(f"/workbench/teams/{world.team_a}/dashboard").text
    api = TestClient(app, headers={"Authorization": f"Bearer {world.keys['admin']}"})
    indicators = api.get(f"/v1/teams/{world.team_a}/indicators").json()
    for name in ("bp_control", "glucose_control", "standard_management", "hearts_bp_control"):
        rate = indicators[name]
        numerator, denominator = rate["numerator"], rate["denominator"]
        expected = f'data-indicator="{name}" data-numerator="{numerator}" data-denominator="{denominator}"'
        assert expected in dashboard, name


def test_servers_without_a_configured_secret_share_one_and_a_logout_ends_the_session_on_each(
    pg_app: tuple[FastAPI, World], postgres_url: str, evaluator: Evaluator
) -> None:
    app, world = pg_app
    start = threading.Barrier(4)

    def ask() -> str:  # servers starting together, each generating a secret
        start.wait()
        return session_store.shared_secret(app.state.engine, "race", NOW)

    with ThreadPoolExecutor(4) as pool:
        secrets = [future.result() for future in [pool.submit(ask) for _ in range(4)]]
    assert len(set(secrets)) == 1
    other = create_app(Settings(database_url=postgres_url), clock=SettableClock(NOW), evaluator=evaluator)
    try:
        one, two = TestClient(app), TestClient(other)
        csrf = sign_in(one, world.keys["team-a"])
        cookie = one.cookies["pw_session"]
        two.cookies.set("pw_session", cookie, path="/workbench")
        today = f"/workbench/teams/{world.team_a}/today"
        assert two.get(today, follow_redirects=False).status_code == 200  # the other server's too
        assert one.post("/workbench/logout", data={"csrf": csrf}, follow_redirects=False).status_code == 303
        assert two.get(today, follow_redirects=False).status_code == 303
    finally:
        other.state.engine.dispose()


def test_the_patients_page_on_postgresql(pg_app: tuple[FastAPI, World]) -> None:
    app, world = pg_app
    client = TestClient(app)
    sign_in(client, world.keys["team-a"])
    url = f"/workbench/teams/{world.team_a}/patients"
    listed = re.findall(r'data-patient="(\d+)"', client.get(url).text)
    assert listed == [str(world.patients[p]) for p in ("A-001", "A-002", "A-003", "A-004")]
    assert re.findall(r'data-patient="(\d+)"', client.get(url, params={"q": "a-00"}).text) == listed
    assert re.findall(r'data-patient="(\d+)"', client.get(url, params={"q": "李"}).text) == [
        str(world.patients["A-002"])
    ]
