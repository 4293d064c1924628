"""durable_rules decides; the plain-Python meaning of the same conditions must agree, for any facts.

Facts are drawn from the catalogue around every threshold the pack names (and absent), so each
operator, each missing fact and each fact-to-fact comparison is exercised at its boundary.
"""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pathway.clinical.conditions import FactRef, FactValue, comparisons
from pathway.clinical.snapshot import FACT_TYPES
from rules.evaluation import Evaluator, reference_fired_rule_ids
from rules.registry import PackRegistry


def _boundaries() -> dict[str, list[float]]:
    """Every number the default pack compares each fact with, and its neighbours."""
    pack = PackRegistry.from_directory().get().pack
    found: dict[str, set[float]] = {name: {0.0} for name in FACT_TYPES}
    for item in pack.conditional_items():
        for comparison in comparisons(item.when):
            operand = comparison.operand
            if isinstance(operand, int | float) and not isinstance(operand, bool):
                found[comparison.fact] |= {operand - 0.1, float(operand), operand + 0.1}
    for band in pack.targets.blood_pressure:
        for target in (band.office, band.home):
            for value in (float(target.systolic), float(target.diastolic)):
                for name in ("office_sbp", "office_dbp", "home_sbp_mean", "home_dbp_mean"):
                    found[name] |= {value - 1, value, value + 1}
    return {name: sorted(values) for name, values in found.items()}


BOUNDARIES = _boundaries()


def _value(name: str) -> st.SearchStrategy[FactValue]:
    kind = FACT_TYPES[name]
    if kind is bool:
        return st.booleans()
    if kind is str:
        return st.sampled_from(["male", "female", "low", "moderate", "high", "very_high", "ultra_high"])
    numbers = st.sampled_from(BOUNDARIES[name])
    if kind is int:
        return numbers.map(lambda v: round(v))
    return numbers


facts_strategy = st.fixed_dictionaries({}, optional={name: _value(name) for name in FACT_TYPES})


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(facts=facts_strategy)
def test_durable_rules_and_the_reference_meaning_agree(
    evaluator: Evaluator, facts: dict[str, FactValue]
) -> None:
    pack = evaluator.registry.get().pack
    assert sorted(evaluator.engine.fired_rule_ids(pack, facts)) == sorted(
        reference_fired_rule_ids(pack, facts)
    )
    assert evaluator.engine.live_sessions() == 0


def test_the_strategy_reaches_every_fact_the_pack_reads() -> None:
    pack = PackRegistry.from_directory().get().pack
    read = {c.fact for item in pack.conditional_items() for c in comparisons(item.when)}
    read |= {
        c.operand.fact
        for item in pack.conditional_items()
        for c in comparisons(item.when)
        if isinstance(c.operand, FactRef)
    }
    assert read <= set(FACT_TYPES)
