"""The evaluation pipeline: history → snapshot → durable_rules → assessment.

``Evaluator.assess`` is a pure function of (history, pack, as_of): no database, no clock.
``reference_fired_rule_ids`` evaluates the same pack in plain Python; tests use it as an oracle
for the engine.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from zoneinfo import ZoneInfo

from pathway.clinical.assessment import Assessment, FiredRule, FiredSchedule, assess
from pathway.clinical.clock import CLINIC_TZ
from pathway.clinical.conditions import FactValue, holds
from pathway.clinical.history import PatientHistory
from pathway.clinical.snapshot import Snapshot, build_snapshot
from rules.engine import DurableEngine
from rules.registry import DEFAULT_PACK_ID, LoadedPack, PackRegistry
from rules.schema import Rule, RulePack


class Evaluator:
    """Holds the packs and the one durable_rules engine of the process."""

    def __init__(self, registry: PackRegistry, engine: DurableEngine | None = None) -> None:
        self.registry = registry
        self.engine = engine or DurableEngine(p.pack for p in registry.all())

    def snapshot(
        self, history: PatientHistory, as_of: datetime, pack: LoadedPack, tz: ZoneInfo = CLINIC_TZ
    ) -> Snapshot:
        return build_snapshot(
            history, pack.pack.snapshot, pack.pack.targets, as_of, tz, medication=pack.pack.medication
        )

    def assess(
        self,
        history: PatientHistory,
        as_of: datetime,
        pack: LoadedPack | None = None,
        tz: ZoneInfo = CLINIC_TZ,
    ) -> Assessment:
        loaded = pack or self.registry.in_force(DEFAULT_PACK_ID, on=as_of.astimezone(tz).date())
        snapshot = self.snapshot(history, as_of, loaded, tz)
        fired = self.engine.fired_rule_ids(loaded.pack, snapshot.facts)
        return assessment_from(snapshot, loaded, fired, tz)


def assessment_from(snapshot: Snapshot, loaded: LoadedPack, fired_ids: list[str], tz: ZoneInfo) -> Assessment:
    """Turn fired rule ids (in any order) into the assessment, in the pack's rule order."""
    pack = loaded.pack
    fired = set(fired_ids)
    rules = [
        FiredRule(
            rule_id=rule.id,
            tier=rule.tier,
            outcome=rule.then,
            evidence=_evidence(rule, snapshot.facts),
            source=rule.source,
        )
        for rule in pack.rules
        if rule.id in fired
    ]
    schedules = [
        FiredSchedule(schedule_id=s.id, task=s.task, check=s.check) for s in pack.schedules if s.id in fired
    ]
    return assess(snapshot, rules, schedules, pack.policy, loaded.ref, tz)


def _evidence(rule: Rule, facts: Mapping[str, FactValue]) -> dict[str, FactValue]:
    return {name: facts[name] for name in rule.facts_read if name in facts}


def reference_fired_rule_ids(pack: RulePack, facts: Mapping[str, FactValue]) -> list[str]:
    """The rules and schedules whose conditions hold, evaluated in plain Python (the oracle)."""
    return [item.id for item in pack.conditional_items() if holds(item.when, facts)]
