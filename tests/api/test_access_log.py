"""The access log: one line a request (method, path, status, duration, key prefix), never a key,
a query string or a body; on by default, PATHWAY_ACCESS_LOG=false turns it off."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from api.main import create_app
from pathway.access.permissions import Role
from pathway.settings import Settings
from pathway.store.db import migrate
from rules.evaluation import Evaluator
from tests.api.conftest import new_key


def _client(tmp_path: Path, evaluator: Evaluator, **settings: object) -> Iterator[TestClient]:
    url = f"sqlite:///{tmp_path / 'pathway.db'}"
    migrate(url)
    app = create_app(Settings(database_url=url, **settings), evaluator=evaluator)  # type: ignore[arg-type]
    with TestClient(app) as client:
        yield client
    app.state.engine.dispose()


@pytest.fixture
def logged(tmp_path: Path, evaluator: Evaluator) -> Iterator[TestClient]:
    yield from _client(tmp_path, evaluator)


def _lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "pathway.access"]


def test_each_request_is_one_line_naming_the_key_by_its_prefix_only(
    logged: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    key = new_key(logged.app, Role.EHR)  # type: ignore[arg-type]
    prefix, secret = key.removeprefix("pw_").split("_", 1)
    caplog.set_level(logging.INFO, logger="pathway.access")
    body = {
        "source_system": "ehr",
        "external_id": "A-1",
        "name": "王建国",
        "sex": "male",
        "birth_date": "1960-01-01",
    }
    headers = {"Authorization": f"Bearer {key}"}
    assert logged.post("/v1/patients", json=body, headers=headers).status_code == 201
    assert logged.get("/v1/patients", params={"q": "王建国"}, headers=headers).status_code == 200
    assert logged.get("/v1/patients/1", headers={"Authorization": "Bearer pw_nosuch_key"}).status_code == 401
    lines = _lines(caplog)
    assert len(lines) == 3
    assert re.fullmatch(rf"POST /v1/patients 201 \d+\.\dms key={prefix}", lines[0])
    assert re.fullmatch(rf"GET /v1/patients 200 \d+\.\dms key={prefix}", lines[1])
    assert re.fullmatch(r"GET /v1/patients/1 401 \d+\.\dms key=-", lines[2])  # not authenticated
    text = "\n".join(lines)
    for private in (secret, "王建国", "q=", "nosuch", "A-1"):
        assert private not in text


def test_the_access_log_can_be_turned_off(
    tmp_path: Path, evaluator: Evaluator, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATHWAY_ACCESS_LOG", "false")
    assert Settings().access_log is False
    caplog.set_level(logging.INFO, logger="pathway.access")
    for client in _client(tmp_path, evaluator, access_log=False):
        assert client.get("/v1/patients/1").status_code == 401
    assert _lines(caplog) == []
