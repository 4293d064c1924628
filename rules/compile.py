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

from pathway.clinical.conditions import AllOf, AnyOf, Comparison, FactRef
from rules.schema import RulePack

MARKER_FIELD = "pathway_snapshot"
SENTINEL_RULE = "evaluated"

_DURABLE_OPS = {"ne": "$neq", "lt": "$lt", "lte": "$lte", "gt": "$gt", "gte": "$gte"}


def ruleset_name(pack: RulePack) -> str:
    """``<pack>__v<version>`` in characters durable_rules keeps intact (``-`` → ``_m``, ``.`` → ``_d``).

    The mapping is injective for the ids and versions the schema allows, so two packs never share
    a ruleset.
    """
    escaped = f"{pack.id}__v{pack.version}".replace("_", "__").replace("-", "_m").replace(".", "_d")
    return re.sub(r"[^A-Za-z0-9_]", "_", escaped)


def durable_rule_name(position: int) -> str:
    """The engine-side name of the pack's ``position``-th rule or schedule (never collides)."""
    return f"r{position}"


def compile_pack(pack: RulePack) -> dict[str, dict[str, Any]]:
    """The durable_rules JSON definition of a pack: one rule per rule and schedule, plus the sentinel.

    Rules are named by position (``r0``, ``r1``…, in ``pack.conditional_items()`` order), so no two
    rule ids can collide on the engine side; the engine maps names back to rule ids.
    """
    marker = {MARKER_FIELD: 1}
    ruleset: dict[str, dict[str, Any]] = {SENTINEL_RULE: {"all": [{"m": marker}]}}
    for position, item in enumerate(pack.conditional_items()):
        ruleset[durable_rule_name(position)] = {
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
