"""An API client per test on a fresh, migrated database of each dialect, with a clock tests can move."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime

import pytest
from fastapi.testclient import TestClient

from api.main import create_app
from pathway.db import migrate
from pathway.settings import Settings
from rules.evaluation import Evaluator
from tests.builders import AS_OF
from tests.conftest import DIALECTS, database


class SettableClock:
    """A fixed clock that a test may move (replaying cases at their own as_of)."""

    def __init__(self, at: datetime) -> None:
        self.at = at

    def now(self) -> datetime:
        return self.at


@pytest.fixture
def clock() -> SettableClock:
    return SettableClock(AS_OF)


@pytest.fixture(params=DIALECTS)
def client(
    request: pytest.FixtureRequest, evaluator: Evaluator, clock: SettableClock
) -> Iterator[TestClient]:
    url = database(request, request.param)
    migrate(url)
    app = create_app(Settings(database_url=url), clock=clock, evaluator=evaluator)
    with TestClient(app) as test_client:
        yield test_client
    app.state.engine.dispose()
