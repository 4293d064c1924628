"""A fresh migrated database of each dialect, and makers of teams, patients, tasks and readings.

Rows are written directly (no rule engine): the runs under test read nothing but these tables.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import Engine
from sqlmodel import Session

from pathway.clinical.clock import CLINIC_TZ
from pathway.clinical.policy import FollowThrough
from pathway.store.db import make_engine, migrate
from pathway.store.tables import Patient, Reading, Team
from pathway.store.work_tables import CareTask
from rules.registry import LoadedPack
from tests.api.conftest import client, clock  # noqa: F401 - the API on each store (the re-tier's tests)
from tests.conftest import DIALECTS, database

DAY = timedelta(days=1)


@pytest.fixture(params=DIALECTS)
def engine(request: pytest.FixtureRequest) -> Iterator[Engine]:
    url = database(request, request.param)
    migrate(url)
    engine = make_engine(url)
    yield engine
    engine.dispose()


@pytest.fixture(scope="session")
def rules(default_pack: LoadedPack) -> FollowThrough:
    return default_pack.pack.policy.follow_through


def local(day: date, hour: int = 9, minute: int = 0, zone: ZoneInfo = CLINIC_TZ) -> datetime:
    return datetime.combine(day, time(hour, minute), tzinfo=zone)


def add_team(session: Session, code: str = "t1", zone: str = "Asia/Shanghai") -> int:
    team = Team(code=code, name=code, institution_level="home", timezone=zone)
    session.add(team)
    session.flush()
    assert team.id is not None
    return team.id


def add_patient(session: Session, team_id: int | None, registered: datetime, external_id: str = "p") -> int:
    patient = Patient(
        source_system="ehr",
        external_id=f"{external_id}-{registered.isoformat()}-{team_id}",
        team_id=team_id,
        sex="male",
        birth_date=date(1960, 1, 1),
        conditions=["hypertension"],
        created_at=registered,
        updated_at=registered,
    )
    session.add(patient)
    session.flush()
    assert patient.id is not None
    return patient.id


def add_task(
    session: Session,
    patient_id: int,
    team_id: int | None,
    due_at: datetime,
    *,
    kind: str = "follow_up_visit",
    subject: str = "",
    tier: str = "yellow",
    zone: ZoneInfo = CLINIC_TZ,
    snoozed_until: datetime | None = None,
) -> int:
    task = CareTask(
        patient_id=patient_id,
        team_id=team_id,
        kind=kind,
        subject=subject,
        due_at=due_at,
        due_date=due_at.astimezone(zone).date(),
        time_limit_at=due_at + DAY,
        priority=3,
        role="gp",
        rule_id="test",
        rule_ids=["test"],
        pack_id="sangao-cn",
        pack_version="2020.4",
        tier=tier,
        evidence=["encounter"],
        snoozed_until=snoozed_until,
        created_at=due_at - 30 * DAY,
        updated_at=due_at - 30 * DAY,
    )
    session.add(task)
    session.flush()
    assert task.id is not None
    return task.id


def add_reading(session: Session, patient_id: int, at: datetime) -> None:
    session.add(
        Reading(
            patient_id=patient_id,
            kind="bp",
            source="home",
            measured_at=at,
            received_at=at,
            systolic=132,
            diastolic=82,
            source_system="gw",
        )
    )
    session.flush()
