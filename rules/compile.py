"""RulePack → durable_rules JSON ruleset (pure; no durable import).

Every rule's condition is wrapped in ``{"$and": [MARKER, ...]}`` so that only the asserted
snapshot can match (durable_rules also matches its own state object, whose ``sid`` field would
otherwise loop ``$ex``/``$nex`` rules forever), and a sentinel rule that always matches the
snapshot keeps every evaluation "handled". A comparison with another fact also requires both
facts to exist: durable_rules treats a missing right-hand fact as a match.
"""

from __future__ import annotations

import re
from typing import Any

from pathway.conditions import AllOf, AnyOf, Comparison, FactRef
from rules.schema import RulePack

MARKER_FIELD = "pathway_snapshot"
SENTINEL_RULE = "pathway__evaluated"

_DURABLE_OPS = {"ne": "$neq", "lt": "$lt", "lte": "$lte", "gt": "$gt", "gte": "$gte"}


def ruleset_name(pack: RulePack) -> str:
    """``<pack>__v<version>`` with only characters durable_rules keeps intact."""
    return re.sub(r"[^A-Za-z0-9_]", "_", f"{pack.id}__v{pack.version}")


def durable_rule_name(rule_id: str) -> str:
    return rule_id.replace(".", "__")


def compile_pack(pack: RulePack) -> dict[str, dict[str, Any]]:
    """The durable_rules JSON definition of a pack: one rule per rule and schedule, plus the sentinel.

    Rule names are the rule ids (dots as ``__``); actions are attached by the engine.
    """
    marker = {MARKER_FIELD: 1}
    ruleset: dict[str, dict[str, Any]] = {SENTINEL_RULE: {"all": [{"m": marker}]}}
    for item in pack.conditional_items():
        ruleset[durable_rule_name(item.id)] = {
            "all": [{"m": {"$and": [marker, compile_condition(item.when)]}}]
        }
    return ruleset


def compile_condition(condition: AllOf | AnyOf | Comparison) -> dict[str, Any]:
    if isinstance(condition, AllOf):
        return {"$and": [compile_condition(c) for c in condition.all]}
    if isinstance(condition, AnyOf):
        return {"$or": [compile_condition(c) for c in condition.any]}
    fact, op, operand = condition.fact, condition.op, condition.operand
    if op == "exists":
        return {"$ex" if operand else "$nex": {fact: 1}}
    if isinstance(operand, FactRef):
        test = (
            {fact: {"$m": operand.fact}} if op == "eq" else {_DURABLE_OPS[op]: {fact: {"$m": operand.fact}}}
        )
        return {"$and": [{"$ex": {fact: 1}}, {"$ex": {operand.fact: 1}}, test]}
    if op == "eq":
        return {fact: operand}
    return {"$and": [{"$ex": {fact: 1}}, {_DURABLE_OPS[op]: {fact: operand}}]}
