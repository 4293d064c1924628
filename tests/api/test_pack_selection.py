"""A deployment selects its pack with ``PATHWAY_PACK_ID``: the API assesses, lists and paces tasks with
that pack's edition in force, and the default stays the default pack."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from pydantic import ValidationError

from api.main import create_app
from pathway.access.permissions import Role
from pathway.ingest.cases import read_case
from pathway.settings import DEFAULT_PACK_ID as SETTINGS_DEFAULT_PACK_ID
from pathway.settings import Settings
from pathway.store.db import migrate
from rules.evaluation import Evaluator
from rules.registry import DEFAULT_PACK_ID
from scheduler import runner
from tests.api.conftest import SettableClock, new_key
from tests.api.test_cases_through_api import _post_case
from tests.builders import AS_OF

EDITION = "sangao-qingdao-jimo"
PAIRS = Path(__file__).parents[1] / "rules" / "editions" / EDITION
HOME_MEAN_132_82 = "home-mean-132-82-under-65"


def test_the_default_deployment_uses_the_default_pack(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PATHWAY_PACK_ID", raising=False)
    assert Settings().pack_id == SETTINGS_DEFAULT_PACK_ID == DEFAULT_PACK_ID
    monkeypatch.setenv("PATHWAY_PACK_ID", EDITION)
    assert Settings().pack_id == EDITION
    with pytest.raises(ValidationError):
        Settings(pack_id="Not A Pack Id")


@pytest.fixture
def county(sqlite_url: str, evaluator: Evaluator, clock: SettableClock) -> Iterator[TestClient]:
    """An API whose deployment selected the county edition (``PATHWAY_PACK_ID=sangao-qingdao-jimo``)."""
    migrate(sqlite_url)
    app = create_app(Settings(database_url=sqlite_url, pack_id=EDITION), clock=clock, evaluator=evaluator)
    with TestClient(app, headers={"Authorization": f"Bearer {new_key(app, Role.ADMIN)}"}) as client:
        yield client
    app.state.engine.dispose()


def test_a_county_deployment_assesses_with_its_edition(county: TestClient, clock: SettableClock) -> None:
    packs = county.get("/v1/rule-packs").json()
    assert [(p["id"], p["version"]) for p in packs] == [(EDITION, "2026.1")]
    case = read_case(PAIRS / f"{HOME_MEAN_132_82}.{EDITION}.json")
    default_side = read_case(PAIRS / f"{HOME_MEAN_132_82}.{DEFAULT_PACK_ID}.json")
    assert case.expect is not None
    assert default_side.expect is not None
    assert case.expect.tier != default_side.expect.tier  # the pair differs: the county's home target
    clock.at = case.as_of
    stored = _post_case(county, case, external_id="jimo-1")
    assert (stored["pack_id"], stored["tier"]) == (EDITION, case.expect.tier.value)
    assert stored["result"]["follow_up"]["interval_days"] == case.expect.follow_up_days


def test_the_scheduler_reads_the_follow_through_of_the_selected_pack(
    sqlite_url: str, evaluator: Evaluator
) -> None:
    edition = evaluator.registry.in_force(EDITION, on=None)
    ctx = runner.context(
        Settings(database_url=sqlite_url, pack_id=EDITION), SettableClock(AS_OF), evaluator.registry
    )
    try:
        assert ctx.rules == edition.pack.policy.follow_through
    finally:
        ctx.engine.dispose()
