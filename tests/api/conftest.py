"""An API client per test on a fresh, migrated database of each dialect, with a clock tests can move."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, datetime, timedelta
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlmodel import Session, select

from api.main import create_app
from pathway.access import permissions
from pathway.access.permissions import Role
from pathway.clinical.clock import CLINIC_TZ
from pathway.settings import Settings
from pathway.store.db import migrate
from pathway.store.work_tables import ApiKey, CareTask
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
    with TestClient(app, headers={"Authorization": f"Bearer {new_key(app, Role.ADMIN)}"}) as test_client:
        yield test_client
    app.state.engine.dispose()


def new_key(
    app: FastAPI, role: Role, team: str | None = None, name: str = "tests", source_system: str | None = None
) -> str:
    """A fresh API key of ``role`` in the app's database (its plaintext), posting for
    ``source_system`` (by default its own)."""
    with Session(app.state.engine) as session:
        _key, plaintext = permissions.create_key(
            session, role, name, AS_OF, team_code=team, source_system=source_system
        )
        session.commit()
    return plaintext


def linked_gateway(client: TestClient, *patient_ids: int, source_system: str | None = None) -> str:
    """A new gateway key linked to the patients (its plaintext)."""
    app: Any = client.app
    plaintext = new_key(app, Role.GATEWAY, name="band gateway", source_system=source_system)
    with Session(app.state.engine) as session:
        key_id = session.exec(select(ApiKey.id).where(ApiKey.prefix == plaintext.split("_")[1])).one()
    for patient_id in patient_ids:
        linked = client.post(f"/v1/patients/{patient_id}/gateways", json={"api_key_id": key_id})
        assert linked.status_code == 204, linked.text
    return plaintext


def two_teams(client: TestClient, first: str = "jimo-01", second: str = "jimo-02") -> tuple[int, int]:
    """Two home-level GP teams (家庭医生团队) with codes ``first`` and ``second``; their ids."""
    with Session(client.app.state.engine) as session:  # type: ignore[attr-defined]
        one = permissions.create_team(session, first, f"即墨 家庭医生团队 {first}", "home")
        two = permissions.create_team(session, second, f"即墨 家庭医生团队 {second}", "home")
        session.commit()
        assert one.id is not None
        assert two.id is not None
        return one.id, two.id


def register_patient(client: TestClient, external_id: str = "p1", **changes: Any) -> int:
    """Register a hypertensive man born 1960 (with ``changes`` applied); his id."""
    body = {
        "source_system": "ehr",
        "external_id": external_id,
        "sex": "male",
        "birth_date": "1960-01-01",
        "conditions": ["hypertension"],
        **changes,
    }
    response = client.post("/v1/patients", json=body)
    assert response.status_code == 201, response.text
    patient_id: int = response.json()["id"]
    return patient_id


def add_task(session: Session, patient_id: int, team_id: int, kind: str, **fields: Any) -> None:
    """A care task of the patient on the team's list, due at 08:00 on ``due_date`` (a blue tier's,
    created at AS_OF, unless ``fields`` say otherwise); added to the session, not committed."""
    due_date: date = fields.pop("due_date")
    due_at = datetime(due_date.year, due_date.month, due_date.day, 8, tzinfo=CLINIC_TZ)
    values: dict[str, Any] = {
        "patient_id": patient_id,
        "team_id": team_id,
        "kind": kind,
        "due_at": due_at,
        "due_date": due_date,
        "time_limit_at": due_at + timedelta(days=7),
        "role": "gp",
        "rule_id": "test.rule",
        "pack_id": "sangao-cn",
        "pack_version": "test",
        "tier": "blue",
        "created_at": AS_OF,
        "updated_at": AS_OF,
        **fields,
    }
    session.add(CareTask(**values))
