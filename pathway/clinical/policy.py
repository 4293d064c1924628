"""The pack's assessment policy as validated values (PATHWAY.md §4–5): what a fired rule calls for
(:class:`Outcome`), the task catalogue (due time, priority, role, 时限, what resolves a task), the
referral catalogue, the follow-through of the scheduler (escalation, missed and lost contact, snooze,
unreachable patients, hourly issuing) and the management level of each tier (:class:`Policy`).
:func:`pathway.clinical.assessment.assess` applies it to the fired rules.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, NonNegativeInt, PositiveInt, model_validator

from pathway.clinical.anchors import ANCHOR_UNCONFIRMED_CRISIS
from pathway.clinical.medication import Adherence, MedicationClass, MedicationGroup
from pathway.clinical.medication_facts import adherence_evidence, prescription_evidence, refill_evidence
from pathway.clinical.tiers import ManagementLevel, ReferralUrgency, RiskTier, TaskKind, TeamRole
from pathway.clinical.vocabulary import CareCheck, ReadingKind


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Message(_Strict):
    zh: str = Field(min_length=1)
    en: str = Field(min_length=1)


class Outcome(_Strict):
    """What a rule calls for when it fires."""

    referral: ReferralUrgency | None = None
    follow_up_days: PositiveInt | None = None
    tasks: list[TaskKind] = Field(default_factory=list)
    # When a task of this rule is due, where it differs from the task catalogue's due time.
    task_due: dict[TaskKind, TaskDue] = Field(default_factory=dict)
    # The medication group the rule's tasks are about (PATHWAY.md §7: a medication review is resolved
    # by a prescription of that group); none: any group.
    medication_group: MedicationGroup | None = None
    message: Message

    @model_validator(mode="after")
    def _due_of_own_tasks(self) -> Outcome:
        extra = set(self.task_due) - set(self.tasks)
        if extra:
            raise ValueError(f"task_due names tasks the rule does not call for: {sorted(extra)}")
        return self


Anchor = Literal[
    "as_of",
    "unconfirmed_crisis_reading",
    "ldl_c_measured",
    "follow_up_due",
    "last_check",
    "latest_encounter",
    "supply_end",
]
# Anchors that are a reading the task rechecks, of a kind that also resolves the task: only a reading
# taken after the anchor is the recheck (a second crisis reading is not the recheck of the first,
# PATHWAY.md §2), and the due time follows the newest such reading.
RECHECK_ANCHORS: frozenset[str] = frozenset({ANCHOR_UNCONFIRMED_CRISIS})


class TaskDue(_Strict):
    """Due = anchor + after; ``not_before_as_of`` clamps to the assessment moment.

    ``last_check`` anchors on the last time the task's check was done, or ``as_of`` if never.
    """

    anchor: Anchor
    after_hours: int = Field(default=0, ge=0)
    after_days: int = Field(default=0, ge=0)
    before_days: int = Field(default=0, ge=0)
    not_before_as_of: bool = False


# Evidence keys: what an assessment saw last (``Assessment.evidence``) and what resolves a task.
EVIDENCE_ENCOUNTER = "encounter"
EVIDENCE_REFERRAL = "referral"
EVIDENCE_NO_LONGER_CALLED = "no_longer_called"


def reading_evidence(kind: ReadingKind) -> str:
    return f"reading:{kind.value}"


def check_evidence(check: CareCheck) -> str:
    return f"check:{check.value}"


class Resolution(_Strict):
    """What resolves an open task by evidence (PATHWAY.md §5, §7), any of:

    a new encounter; a new reading of one of ``readings``; the task's check done again; the
    referral it calls for leaving ``open`` (the loop moved); the assessment no longer calling for it;
    a prescription of the rule's medication group started, changed or stopped (``prescription``), or
    of one of ``prescription_classes``; an encounter recording one of ``adherence``; the
    prescription the task is about renewed (a newer one of its class) or stopped (``refill``).
    """

    encounter: bool = False
    readings: list[ReadingKind] = Field(default_factory=list)
    check: bool = False
    referral: bool = False
    no_longer_called: bool = False
    prescription: bool = False
    prescription_classes: list[MedicationClass] = Field(default_factory=list)
    adherence: list[Adherence] = Field(default_factory=list)
    refill: bool = False

    @model_validator(mode="after")
    def _some_evidence(self) -> Resolution:
        medication = self.prescription or self.prescription_classes or self.adherence or self.refill
        if not (
            self.encounter
            or self.readings
            or self.check
            or self.referral
            or self.no_longer_called
            or medication
        ):
            raise ValueError("resolved_by needs at least one kind of evidence")
        return self

    def keys(
        self,
        check: CareCheck | None,
        groups: list[MedicationGroup] | None = None,
        subject: str | None = None,
    ) -> list[str]:
        """The evidence keys of a task of this kind (``check``: the check it schedules; ``groups``:
        the medication groups of the rules behind it, empty for any; ``subject``: the prescription
        a refill review is about)."""
        found = [EVIDENCE_ENCOUNTER] if self.encounter else []
        found += [reading_evidence(kind) for kind in self.readings]
        if self.check and check is not None:
            found.append(check_evidence(check))
        if self.prescription:
            found += [prescription_evidence(g.value) for g in (groups or list(MedicationGroup))]
        found += [prescription_evidence(c.value) for c in self.prescription_classes]
        found += [adherence_evidence(a) for a in self.adherence]
        if self.refill and subject is not None:
            found.append(refill_evidence(subject))
        if self.referral:
            found.append(EVIDENCE_REFERRAL)
        if self.no_longer_called:
            found.append(EVIDENCE_NO_LONGER_CALLED)
        return found


Outcome.model_rebuild()


class TaskSpec(_Strict):
    priority: PositiveInt | None = None
    priority_by_tier: dict[RiskTier, PositiveInt] | None = None
    due: TaskDue
    role: TeamRole = Field(description="who in the GP team does it")
    time_limit_hours: PositiveInt = Field(description="时限: hours after the due time to complete it")
    resolved_by: Resolution
    source: str

    @model_validator(mode="after")
    def _one_priority(self) -> TaskSpec:
        if (self.priority is None) == (self.priority_by_tier is None):
            raise ValueError("a task needs exactly one of priority or priority_by_tier")
        if self.priority_by_tier is not None and set(self.priority_by_tier) != set(RiskTier):
            raise ValueError("priority_by_tier needs a priority for every tier")
        return self


class ReferralSpec(_Strict):
    rank: PositiveInt = Field(description="1 is the most urgent")
    task: TaskKind
    follow_up_task: TaskKind | None = None


class Escalation(_Strict):
    """An open task of a ``tier`` patient overdue by ``overdue_days`` or more goes to the team lead."""

    tier: RiskTier
    overdue_days: PositiveInt
    to: Literal["team_lead"]
    source: str = Field(min_length=1)


class ContactFlag(_Strict):
    """Flag a patient with no contact (encounter or reading) for ``no_contact_days`` or more."""

    no_contact_days: PositiveInt
    source: str = Field(min_length=1)


class SnoozeLimit(_Strict):
    """A task may be snoozed at most ``max_days`` ahead; a priority listed in ``max_days_by_priority``
    has its own limit, and 0 there means a task of that priority is never snoozed."""

    max_days: PositiveInt
    max_days_by_priority: dict[PositiveInt, NonNegativeInt] = Field(default_factory=dict)
    source: str = Field(min_length=1)

    def days_for(self, priority: int) -> int:
        """The longest snooze (days) of a task of ``priority``; 0: it may not be snoozed."""
        return self.max_days_by_priority.get(priority, self.max_days)


class UnreachableRetry(_Strict):
    """A patient not reached for a task of a priority listed here is not the end of it: the task
    stays open, due again the listed hours later, and goes to the team lead at once."""

    retry_after_hours_by_priority: dict[PositiveInt, PositiveInt]
    escalate_to: Literal["team_lead"]
    source: str = Field(min_length=1)

    def retry_after(self, priority: int) -> timedelta | None:
        """How long until a task of ``priority`` whose patient was not reached is due again; None
        when such a task simply closes as unreachable."""
        hours = self.retry_after_hours_by_priority.get(priority)
        return timedelta(hours=hours) if hours is not None else None


class HourlyIssue(_Strict):
    """Task kinds the hourly run issues as they fall due (the daily run issues every kind)."""

    kinds: list[TaskKind]
    source: str = Field(min_length=1)


class ListedAtOnce(_Strict):
    """Task kinds on the team's daily list from the moment they are called for, whenever due (the
    due time orders them, it does not hide them); other kinds are listed once issued or due."""

    kinds: list[TaskKind]
    source: str = Field(min_length=1)


class FollowThrough(_Strict):
    """What the scheduler does with tasks and patients that are not followed through (PATHWAY.md §5)."""

    escalation: Escalation
    missed_3m: ContactFlag
    lost_to_follow_up: ContactFlag
    snooze: SnoozeLimit
    unreachable: UnreachableRetry
    hourly: HourlyIssue
    listed_at_once: ListedAtOnce

    @model_validator(mode="after")
    def _ordered(self) -> FollowThrough:
        if self.missed_3m.no_contact_days >= self.lost_to_follow_up.no_contact_days:
            raise ValueError("missed_3m must come before lost_to_follow_up")
        return self


class Policy(_Strict):
    source: str
    levels: dict[RiskTier, ManagementLevel]
    default_follow_up_days: PositiveInt
    follow_up_task: TaskKind
    referrals: dict[ReferralUrgency, ReferralSpec]
    tasks: dict[TaskKind, TaskSpec]
    follow_through: FollowThrough

    @model_validator(mode="after")
    def _complete(self) -> Policy:
        if set(self.levels) != set(RiskTier):
            raise ValueError("levels needs a management level for every tier")
        if set(self.referrals) != set(ReferralUrgency):
            raise ValueError("referrals needs every urgency")
        named = {self.follow_up_task} | {r.task for r in self.referrals.values()}
        named |= {r.follow_up_task for r in self.referrals.values() if r.follow_up_task}
        named |= set(self.follow_through.hourly.kinds) | set(self.follow_through.listed_at_once.kinds)
        missing = named - set(self.tasks)
        if missing:
            raise ValueError(f"tasks missing from the task catalogue: {sorted(missing)}")
        return self
