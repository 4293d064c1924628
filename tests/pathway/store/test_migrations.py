"""Alembic is the only way the schema changes: migrations build exactly the models, on both dialects."""

from __future__ import annotations

import multiprocessing
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect, text
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, SQLModel

from pathway.ingest import recording
from pathway.store.db import alembic_config, make_engine, migrate
from pathway.store.tables import Patient, Reading
from tests.conftest import DIALECTS, database

TABLES = {
    "idempotent_request",
    "api_key",
    "gateway_link",
    "audit_event",
    "team",
    "patient",
    "patient_complication",
    "encounter",
    "reading",
    "symptom_report",
    "assessment",
    "referral",
    "prescription",
    "care_task",
    "care_task_event",
    "scheduler_run",
    "patient_flag",
    "workbench_session",
    "server_secret",
    "outbox_event",
    "webhook_subscription",
    "webhook_delivery",
    "webhook_attempt",
}


@pytest.mark.parametrize("dialect", DIALECTS)
def test_migrations_build_exactly_the_models(request: pytest.FixtureRequest, dialect: str) -> None:
    url = database(request, dialect)
    migrate(url)
    migrate(url)  # a second run is a no-op
    engine = make_engine(url)
    try:
        assert set(inspect(engine).get_table_names()) >= TABLES
        with engine.connect() as connection:
            drift = compare_metadata(MigrationContext.configure(connection), SQLModel.metadata)
        assert drift == []
    finally:
        engine.dispose()


@pytest.mark.parametrize("dialect", DIALECTS)
def test_migrations_downgrade_to_nothing(request: pytest.FixtureRequest, dialect: str) -> None:
    url = database(request, dialect)
    migrate(url)
    command.downgrade(alembic_config(url), "base")
    engine = make_engine(url)
    try:
        assert set(inspect(engine).get_table_names()) & TABLES == set()
    finally:
        engine.dispose()


@pytest.mark.parametrize("dialect", DIALECTS)
def test_a_reading_is_stored_once_per_natural_key_with_instants_in_utc(
    request: pytest.FixtureRequest, dialect: str
) -> None:
    url = database(request, dialect)
    migrate(url)
    engine = make_engine(url)
    now = datetime(2026, 3, 1, 1, 0, tzinfo=UTC)
    try:
        with Session(engine) as session:
            patient = Patient(
                source_system="ehr-a",
                external_id="p1",
                sex="male",
                birth_date=date(1960, 1, 1),
                conditions=["hypertension"],
                created_at=now,
                updated_at=now,
            )
            session.add(patient)
            session.commit()
            session.refresh(patient)
            assert patient.id is not None

            def reading(source_id: str) -> Reading:
                return Reading(
                    patient_id=patient.id or 0,
                    kind="bp",
                    source="home",
                    measured_at=now,
                    received_at=now,
                    systolic=150,
                    diastolic=95,
                    values_received=["20.0", "12.7"],
                    unit_received="kPa",
                    device_key="cuff-1",
                    device_id="cuff-1",
                    source_system="gw",
                    source_reading_id=source_id,
                )

            session.add(reading("r1"))
            session.commit()
            session.add(reading("r2"))  # same patient, kind, instant and device: the same reading
            with pytest.raises(IntegrityError):
                session.commit()
            session.rollback()
            stored = session.get(Reading, 1)
            assert stored is not None
            assert stored.measured_at == now
            assert stored.measured_at.utcoffset() is not None
            assert stored.values_received == ["20.0", "12.7"]
    finally:
        engine.dispose()


def _migrate_when_released(url: str, start: Any) -> None:
    start.wait()
    migrate(url)


@pytest.mark.parametrize("dialect", DIALECTS)
def test_processes_starting_together_on_an_empty_database_migrate_it_once(
    request: pytest.FixtureRequest, dialect: str
) -> None:
    """`pathway serve`, `pathway scheduler` and other hosts may start at the same moment on an
    empty database: one migrates, the others wait for it and find nothing left to do."""
    url = database(request, dialect)
    spawn = multiprocessing.get_context("spawn")
    start = spawn.Barrier(4)
    processes = [spawn.Process(target=_migrate_when_released, args=(url, start)) for _ in range(4)]
    for process in processes:
        process.start()
    for process in processes:
        process.join(timeout=120)
    assert [process.exitcode for process in processes] == [0, 0, 0, 0]
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            heads = MigrationContext.configure(connection).get_current_heads()
        assert heads == (ScriptDirectory.from_config(alembic_config(url)).get_current_head(),)
    finally:
        engine.dispose()


@pytest.mark.parametrize("dialect", DIALECTS)
def test_0014_fills_each_readings_value_key_and_each_keys_source_system(
    request: pytest.FixtureRequest, dialect: str
) -> None:
    """Readings stored before 0014 get the value_key new ones are stored with (so a retry of one is a
    duplicate), and keys the system their data was stored under (gateway / ehr)."""
    url = database(request, dialect)
    migrate(url, "0012")
    engine = make_engine(url)
    now = datetime(2026, 3, 1, 1, 0, tzinfo=UTC)
    values = [(None, 152.0, 94.0, 71.0), (7.4, None, None, None), (5.55, None, None, None)]
    try:
        with engine.begin() as connection:
            connection.execute(
                text(
                    "INSERT INTO patient (source_system, external_id, sex, birth_date, conditions, smoker,"
                    " pregnant, created_at, updated_at) VALUES ('ehr', 'p1', 'male', '1960-01-01', '[]',"
                    " false, false, :now, :now)"
                ),
                {"now": now},
            )
            for role in ("gateway", "ehr"):
                connection.execute(
                    text(
                        "INSERT INTO api_key (prefix, secret_sha256, role, name, created_at)"
                        " VALUES (:role, 'x', :role, :role, :now)"
                    ),
                    {"role": role, "now": now},
                )
            for minute, (value, systolic, diastolic, pulse) in enumerate(values):
                connection.execute(
                    text(
                        "INSERT INTO reading (patient_id, kind, source, measured_at, received_at, value,"
                        " systolic, diastolic, pulse, values_received, device_key, source_system)"
                        " VALUES (1, 'bp', 'home', :at, :at, :value, :systolic, :diastolic, :pulse, '[]',"
                        " '', 'gateway')"
                    ),
                    {
                        "at": now + timedelta(minutes=minute),
                        "value": value,
                        "systolic": systolic,
                        "diastolic": diastolic,
                        "pulse": pulse,
                    },
                )
        migrate(url)
        with engine.connect() as connection:
            keys = connection.execute(text("SELECT value_key FROM reading ORDER BY id")).scalars().all()
            rows = connection.execute(text("SELECT role, source_system FROM api_key")).all()
            systems = {str(role): str(system) for role, system in rows}
        assert keys == [recording.value_key(*row) for row in values]
        assert systems == {"gateway": "gateway", "ehr": "ehr"}
    finally:
        engine.dispose()
