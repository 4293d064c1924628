"""Declarative conditions over snapshot facts, and their plain-Python meaning.

A condition is ``{all: [...]}``, ``{any: [...]}`` or a comparison ``{fact: name, <op>: value}``
where ``op`` is one of eq, ne, lt, lte, gt, gte, exists and ``value`` is a scalar or
``{fact: other}``. A comparison with an absent fact (on either side) is false; ``exists``
tests presence. There is deliberately no ``not``: durable_rules cannot express it for one
fact, and absent facts would make its meaning ambiguous.

:func:`holds` is the reference meaning. The rules engine compiles the same conditions to
durable_rules, and tests check that both agree.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Iterator, Mapping
from functools import cached_property
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Discriminator, Tag, model_validator

FactValue = float | int | bool | str
Facts = Mapping[str, FactValue]

COMPARISON_OPS = ("eq", "ne", "lt", "lte", "gt", "gte")


class FactRef(BaseModel):
    """The value of another fact of the same snapshot."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    fact: str


Operand = Annotated[bool | int | float | str | FactRef, "operand"]


class Comparison(BaseModel):
    """One test of one fact: exactly one operator is given."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    fact: str
    eq: Operand | None = None
    ne: Operand | None = None
    lt: Operand | None = None
    lte: Operand | None = None
    gt: Operand | None = None
    gte: Operand | None = None
    exists: bool | None = None

    @model_validator(mode="after")
    def _exactly_one_operator(self) -> Comparison:
        given = [op for op in (*COMPARISON_OPS, "exists") if getattr(self, op) is not None]
        if len(given) != 1:
            raise ValueError(
                f"a comparison of '{self.fact}' needs exactly one operator of "
                f"{', '.join((*COMPARISON_OPS, 'exists'))}; got {given or 'none'}"
            )
        return self

    @cached_property
    def op(self) -> str:
        return next(op for op in (*COMPARISON_OPS, "exists") if getattr(self, op) is not None)

    @cached_property
    def operand(self) -> Operand | bool:
        value: Operand | bool = getattr(self, self.op)
        return value


class AllOf(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    all: list[Condition]


class AnyOf(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    any: list[Condition]


def _condition_kind(value: Any) -> str:
    if isinstance(value, dict):
        if "all" in value:
            return "all"
        if "any" in value:
            return "any"
        return "comparison"
    if isinstance(value, AllOf):
        return "all"
    if isinstance(value, AnyOf):
        return "any"
    return "comparison"


Condition = Annotated[
    Annotated[AllOf, Tag("all")] | Annotated[AnyOf, Tag("any")] | Annotated[Comparison, Tag("comparison")],
    Discriminator(_condition_kind),
]

AllOf.model_rebuild()
AnyOf.model_rebuild()

_OPS: dict[str, Callable[[Any, Any], bool]] = {
    "eq": operator.eq,
    "ne": operator.ne,
    "lt": operator.lt,
    "lte": operator.le,
    "gt": operator.gt,
    "gte": operator.ge,
}


def holds(condition: AllOf | AnyOf | Comparison, facts: Facts) -> bool:
    """Whether ``condition`` is true of ``facts`` (the reference semantics)."""
    if isinstance(condition, AllOf):
        return all(holds(c, facts) for c in condition.all)
    if isinstance(condition, AnyOf):
        return any(holds(c, facts) for c in condition.any)
    if condition.op == "exists":
        return (condition.fact in facts) is condition.exists
    if condition.fact not in facts:
        return False
    operand = condition.operand
    if isinstance(operand, FactRef):
        if operand.fact not in facts:
            return False
        right: FactValue = facts[operand.fact]
    else:
        right = operand
    return _OPS[condition.op](facts[condition.fact], right)


def comparisons(condition: AllOf | AnyOf | Comparison) -> Iterator[Comparison]:
    """Every comparison inside a condition, depth first."""
    if isinstance(condition, AllOf):
        for c in condition.all:
            yield from comparisons(c)
    elif isinstance(condition, AnyOf):
        for c in condition.any:
            yield from comparisons(c)
    else:
        yield condition


def referenced_facts(condition: AllOf | AnyOf | Comparison) -> list[str]:
    """The fact names a condition reads, in order of first use (the evidence of a reason)."""
    names: dict[str, None] = {}
    for comparison in comparisons(condition):
        names[comparison.fact] = None
        if isinstance(comparison.operand, FactRef):
            names[comparison.operand.fact] = None
    return list(names)


ConditionKind = Literal["all", "any", "comparison"]
