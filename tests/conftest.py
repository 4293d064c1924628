"""Shared fixtures: the built-in packs and one evaluator (one durable_rules host) per test session."""

from __future__ import annotations

from datetime import datetime

import pytest

from pathway.assessment import Assessment
from pathway.history import PatientHistory
from pathway.snapshot import Snapshot
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
