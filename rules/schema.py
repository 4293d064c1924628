"""The rule-pack schema: every block of a pack's YAML, validated on load (unknown keys are errors).

A pack is one edition of one pathway: its units, plausibility ranges, snapshot windows, targets,
assessment policy, rules and care schedules, each with the ``source`` it follows.
"""

from __future__ import annotations

from datetime import date

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, model_validator

from pathway.clinical.conditions import (
    AllOf,
    AnyOf,
    Comparison,
    Condition,
    FactRef,
    comparisons,
    referenced_facts,
)
from pathway.clinical.medication import MedicationTable
from pathway.clinical.parameters import IndicatorDefinitions, Plausibility, SnapshotWindows, Targets, Units
from pathway.clinical.policy import Message, Outcome, Policy
from pathway.clinical.snapshot import FACT_TYPES
from pathway.clinical.tiers import RiskTier, TaskKind
from pathway.clinical.vocabulary import CareCheck

RULE_ID = r"^[a-z][a-z0-9_]*(\.[a-z0-9_]+)*$"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Rule(_Strict):
    """When ``when`` holds of a snapshot, the patient gets ``tier`` and the rule's outcome."""

    id: str = Field(pattern=RULE_ID)
    tier: RiskTier
    when: Condition
    then: Outcome
    source: str = Field(min_length=1)
    _facts_read: tuple[str, ...] = PrivateAttr(default=())

    @model_validator(mode="after")
    def _remember_facts_read(self) -> Rule:
        self._facts_read = tuple(referenced_facts(self.when))
        return self

    @property
    def facts_read(self) -> tuple[str, ...]:
        """The facts the condition reads: a fired rule's evidence."""
        return self._facts_read


class Schedule(_Strict):
    """A recurring check (annual check, complication screening) for the patients ``when`` selects;
    without a ``check``, a task per prescription due for a refill review (PATHWAY.md §7)."""

    id: str = Field(pattern=RULE_ID)
    when: Condition
    task: TaskKind
    check: CareCheck | None = None
    source: str = Field(min_length=1)


class RulePack(_Strict):
    id: str = Field(pattern=r"^[a-z][a-z0-9-]*$")
    version: str = Field(pattern=r"^[0-9A-Za-z][0-9A-Za-z.\-]*$")
    effective_from: date
    title: Message
    sources: dict[str, str]
    units: Units
    plausibility: Plausibility
    snapshot: SnapshotWindows
    targets: Targets
    indicators: IndicatorDefinitions
    policy: Policy
    # PATHWAY.md §7 (pack 2020.4 on): the medication classes' groups and the ATC map. A pack without
    # it knows no treatment: prescriptions cannot be recorded under it.
    medication: MedicationTable | None = None
    rules: list[Rule] = Field(min_length=1)
    schedules: list[Schedule] = Field(default_factory=list)

    @model_validator(mode="after")
    def _coherent(self) -> RulePack:
        seen: set[str] = set()
        for item in self.conditional_items():
            if item.id in seen:
                raise ValueError(f"rule '{item.id}': id used twice in pack {self.id}")
            seen.add(item.id)
            _check_facts(item.id, item.when)
        for rule in self.rules:
            unknown = [t.value for t in rule.then.tasks if t not in self.policy.tasks]
            if unknown:
                raise ValueError(f"rule '{rule.id}': tasks {unknown} are not in the policy's task catalogue")
        for schedule in self.schedules:
            if schedule.task not in self.policy.tasks:
                raise ValueError(
                    f"rule '{schedule.id}': task '{schedule.task.value}' is not in the catalogue"
                )
        for band in self.targets.blood_pressure:
            _check_facts(f"targets.blood_pressure.{band.label}", band.when)
        for stratum in self.targets.lipids.strata:
            _check_facts(f"targets.lipids.{stratum.stratum}", stratum.when)
        return self

    def conditional_items(self) -> list[Rule | Schedule]:
        """Rules and schedules: everything the engine evaluates, in pack order."""
        return [*self.rules, *self.schedules]

    def rule(self, rule_id: str) -> Rule:
        return next(r for r in self.rules if r.id == rule_id)


def _check_facts(owner: str, condition: AllOf | AnyOf | Comparison) -> None:
    """Every fact a condition names exists, and is compared with an operand of its type."""
    for comparison in comparisons(condition):
        fact_type = _fact_type(owner, comparison.fact)
        op, operand = comparison.op, comparison.operand
        if op == "exists":
            continue
        if isinstance(operand, FactRef):
            other = _fact_type(owner, operand.fact)
            if _family(other) != _family(fact_type):
                raise ValueError(
                    f"rule '{owner}': '{comparison.fact}' and '{operand.fact}' are not comparable"
                )
            continue
        if _family(type(operand)) != _family(fact_type):
            raise ValueError(
                f"rule '{owner}': '{comparison.fact}' is {fact_type.__name__}, "
                f"compared with {operand!r} ({type(operand).__name__})"
            )
        if fact_type in (bool, str) and op not in ("eq", "ne"):
            raise ValueError(f"rule '{owner}': '{comparison.fact}' is {fact_type.__name__}; use eq or ne")


def _fact_type(owner: str, name: str) -> type:
    try:
        return FACT_TYPES[name]
    except KeyError:
        raise ValueError(f"rule '{owner}': unknown fact '{name}'") from None


def _family(kind: type) -> str:
    if kind is bool:
        return "bool"
    if kind in (int, float):
        return "number"
    return "text"
