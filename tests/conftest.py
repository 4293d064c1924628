"""Shared fixtures: the built-in packs and one evaluator (one durable_rules host) per test session."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from pathway.clinical.assessment import Assessment
from pathway.clinical.history import PatientHistory
from pathway.clinical.snapshot import Snapshot
from rules.evaluation import Evaluator
from rules.registry import LoadedPack, PackRegistry
from tests.builders import AS_OF


@pytest.fixture(scope="session")
def registry() -> PackRegistry:
    return PackRegistry.from_directory()


@pytest.fixture(scope="session")
def default_pack(registry: PackRegistry) -> LoadedPack:
    return registry.get()


@pytest.fixture(scope="session")
def evaluator(registry: PackRegistry) -> Evaluator:
    return Evaluator(registry)


class Pathway:
    """Evaluate a history with the default pack at AS_OF (or another moment)."""

    def __init__(self, evaluator: Evaluator, pack: LoadedPack) -> None:
        self.evaluator = evaluator
        self.pack = pack

    def assess(self, history: PatientHistory, as_of: datetime = AS_OF) -> Assessment:
        return self.evaluator.assess(history, as_of, self.pack)

    def snapshot(self, history: PatientHistory, as_of: datetime = AS_OF) -> Snapshot:
        return self.evaluator.snapshot(history, as_of, self.pack)

    def fired(self, history: PatientHistory) -> set[str]:
        return {r.rule_id for r in self.assess(history).reasons}


@pytest.fixture(scope="session")
def pathway(evaluator: Evaluator, default_pack: LoadedPack) -> Pathway:
    return Pathway(evaluator, default_pack)


# --- Databases: a fresh SQLite file or a fresh PostgreSQL database per test ---------------------

POSTGRES_URL = os.environ.get("PATHWAY_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
TABLES = {
    "team",
    "patient",
    "patient_complication",
    "encounter",
    "reading",
    "symptom_report",
    "assessment",
    "referral",
}


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'pathway.db'}"


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A fresh, empty PostgreSQL database for one test, dropped afterwards."""
    name = f"pathway_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(
        POSTGRES_URL.replace("postgresql://", "postgresql+psycopg://"), isolation_level="AUTOCOMMIT"
    )
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield POSTGRES_URL.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def database(request: pytest.FixtureRequest, dialect: str) -> str:
    """The URL of a fresh, empty database of ``dialect`` for the requesting test."""
    return str(request.getfixturevalue("postgres_url" if dialect == "postgresql" else "sqlite_url"))


DIALECTS = [
    pytest.param("sqlite", id="sqlite"),
    pytest.param("postgresql", id="postgresql", marks=pytest.mark.postgres),
]
