"""Engine-side names: rule ids and pack versions that look alike never collide in durable_rules."""

from __future__ import annotations

import copy
from pathlib import Path

from pathway.clinical.tiers import RiskTier
from rules.compile import ruleset_name
from rules.engine import DurableEngine
from rules.evaluation import Evaluator, reference_fired_rule_ids
from rules.registry import LoadedPack, PackRegistry, load_pack
from tests.builders import AS_OF, bp_crisis_at_clinic
from tests.rules.test_pack_validation import default_data, entry, write_pack


def test_rule_ids_differing_only_by_dots_and_underscores_both_fire(tmp_path: Path) -> None:
    data = default_data()
    twin = copy.deepcopy(entry(data, "glu.high"))
    twin["id"] = "bp__crisis"
    data["rules"].append(twin)
    sentinel_lookalike = copy.deepcopy(entry(data, "glu.high"))
    sentinel_lookalike["id"] = "evaluated"
    data["rules"].append(sentinel_lookalike)
    loaded = load_pack(write_pack(tmp_path / "pack.yaml", data))
    evaluator = Evaluator(PackRegistry([loaded]))
    history = bp_crisis_at_clinic()
    facts = evaluator.snapshot(history, AS_OF, loaded).facts
    fired = evaluator.engine.fired_rule_ids(loaded.pack, facts)
    assert sorted(fired) == sorted(reference_fired_rule_ids(loaded.pack, facts))
    assert "bp.crisis" in fired
    assert evaluator.assess(history, AS_OF, loaded).tier is RiskTier.RED


def test_versions_that_sanitise_alike_get_distinct_rulesets(tmp_path: Path, default_pack: LoadedPack) -> None:
    data = default_data()
    data["version"] = "2020-1"
    other = load_pack(write_pack(tmp_path / "other.yaml", data))
    assert ruleset_name(other.pack) != ruleset_name(default_pack.pack)
    DurableEngine([default_pack.pack, other.pack])  # both register
