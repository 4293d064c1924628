"""From fired rules to an assessment: tier, level, referral, follow-up and tasks (PATHWAY.md §4–5).

Worst tier wins; the most urgent referral wins; the shortest follow-up interval wins. Every part
of the result names the rule that caused it and the pack (id, version, sha256) it came from.
The policy (levels, referral and task catalogues, default interval) is pack data.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    NonNegativeInt,
    PositiveInt,
    TypeAdapter,
    model_validator,
)

from pathway.clinical.clock import CLINIC_TZ
from pathway.clinical.conditions import FactValue
from pathway.clinical.snapshot import (
    ANCHOR_LATEST_ENCOUNTER,
    ANCHOR_UNCONFIRMED_CRISIS,
    Snapshot,
    check_anchor,
    reading_anchor,
)
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
    message: Message


Anchor = Literal["as_of", "unconfirmed_crisis_reading", "ldl_c_measured", "follow_up_due", "last_check"]
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
    """What resolves an open task by evidence (PATHWAY.md §5), any of:

    a new encounter; a new reading of one of ``readings``; the task's check done again; the
    referral it calls for leaving ``open`` (the loop moved); the assessment no longer calling for it.
    """

    encounter: bool = False
    readings: list[ReadingKind] = Field(default_factory=list)
    check: bool = False
    referral: bool = False
    no_longer_called: bool = False

    @model_validator(mode="after")
    def _some_evidence(self) -> Resolution:
        if not (self.encounter or self.readings or self.check or self.referral or self.no_longer_called):
            raise ValueError("resolved_by needs at least one kind of evidence")
        return self

    def keys(self, check: CareCheck | None) -> list[str]:
        """The evidence keys of a task of this kind (``check``: the check it schedules)."""
        found = [EVIDENCE_ENCOUNTER] if self.encounter else []
        found += [reading_evidence(kind) for kind in self.readings]
        if self.check and check is not None:
            found.append(check_evidence(check))
        if self.referral:
            found.append(EVIDENCE_REFERRAL)
        if self.no_longer_called:
            found.append(EVIDENCE_NO_LONGER_CALLED)
        return found


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


# --- Results -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class PackRef:
    id: str
    version: str
    sha256: str


@dataclass(frozen=True)
class Reason:
    rule_id: str
    tier: RiskTier
    message: str
    message_en: str
    evidence: dict[str, FactValue]
    source: str


@dataclass(frozen=True)
class ReferralDecision:
    urgency: ReferralUrgency
    rule_id: str


@dataclass(frozen=True)
class FollowUp:
    interval_days: int
    due: date
    rule_id: str | None


@dataclass(frozen=True)
class DueTask:
    """A task the assessment calls for; ``evidence``: the keys of what resolves it, ``anchor_at``:
    the moment its due time counts from, when that is a recorded event (a reading, a check);
    ``recheck_of``: for a recheck, the reading it rechecks (evidence up to it is not the recheck)."""

    kind: TaskKind
    due: datetime
    priority: int
    rule_id: str
    rule_ids: list[str]
    role: TeamRole
    time_limit_at: datetime
    evidence: list[str]
    subject: str | None = None
    anchor_at: datetime | None = None
    recheck_of: datetime | None = None


@dataclass(frozen=True)
class Assessment:
    """The result of one evaluation (plain values: built on the hot path, serialised on demand)."""

    pack: PackRef
    as_of: datetime
    tier: RiskTier
    level: ManagementLevel
    referral: ReferralDecision | None
    follow_up: FollowUp
    reasons: list[Reason]
    tasks: list[DueTask]
    facts: dict[str, FactValue]
    evidence: dict[str, datetime] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict (ISO dates and times, enum values)."""
        data: dict[str, Any] = _ASSESSMENT_JSON.dump_python(self, mode="json")
        return data


@dataclass(frozen=True)
class FiredRule:
    rule_id: str
    tier: RiskTier
    outcome: Outcome
    evidence: dict[str, FactValue]
    source: str


@dataclass(frozen=True)
class FiredSchedule:
    schedule_id: str
    task: TaskKind
    check: CareCheck


def assess(
    snapshot: Snapshot,
    fired: Sequence[FiredRule],
    schedules: Sequence[FiredSchedule],
    policy: Policy,
    pack: PackRef,
    tz: ZoneInfo = CLINIC_TZ,
) -> Assessment:
    """Combine the fired rules of one evaluation into the patient's assessment."""
    as_of = snapshot.as_of
    tier = max((f.tier for f in fired), key=lambda t: t.severity, default=RiskTier.BLUE)
    reasons = [
        Reason(
            rule_id=f.rule_id,
            tier=f.tier,
            message=f.outcome.message.zh,
            message_en=f.outcome.message.en,
            evidence=f.evidence,
            source=f.source,
        )
        for f in sorted(fired, key=lambda f: -f.tier.severity)
    ]
    referring = [f for f in fired if f.outcome.referral is not None]
    referral = None
    if referring:
        top = min(referring, key=lambda f: policy.referrals[_urgency(f)].rank)
        referral = ReferralDecision(urgency=_urgency(top), rule_id=top.rule_id)

    intervals = [f for f in fired if f.outcome.follow_up_days is not None]
    shortest = min(intervals, key=lambda f: (f.outcome.follow_up_days or 0, -f.tier.severity), default=None)
    interval = (
        shortest.outcome.follow_up_days
        if shortest is not None and shortest.outcome.follow_up_days is not None
        else policy.default_follow_up_days
    )
    latest_encounter = snapshot.anchors.get(ANCHOR_LATEST_ENCOUNTER)
    today = as_of.astimezone(tz).date()
    base = latest_encounter.astimezone(tz).date() if latest_encounter else today
    follow_up = FollowUp(
        interval_days=interval,
        due=max(base + timedelta(days=interval), today),
        rule_id=shortest.rule_id if shortest else None,
    )

    builder = _TaskList(snapshot, policy, tier, follow_up, tz)
    if referral is not None:
        spec = policy.referrals[referral.urgency]
        builder.add(spec.task, referral.rule_id)
        if spec.follow_up_task is not None:
            builder.add(spec.follow_up_task, referral.rule_id)
    builder.add(policy.follow_up_task, follow_up.rule_id or "policy.default_follow_up")
    for f in fired:
        for kind in f.outcome.tasks:
            builder.add(kind, f.rule_id)
    for s in schedules:
        builder.add(s.task, s.schedule_id, check=s.check)

    return Assessment(
        pack=pack,
        as_of=as_of,
        tier=tier,
        level=policy.levels[tier],
        referral=referral,
        follow_up=follow_up,
        reasons=reasons,
        tasks=builder.tasks(),
        facts=snapshot.facts,
        evidence=builder.evidence,
    )


def evidence_of(snapshot: Snapshot) -> dict[str, datetime]:
    """When the latest encounter, reading of each kind and each check happened (as far as known)."""
    anchors = snapshot.anchors
    found: dict[str, datetime] = {}
    if ANCHOR_LATEST_ENCOUNTER in anchors:
        found[EVIDENCE_ENCOUNTER] = anchors[ANCHOR_LATEST_ENCOUNTER]
    for kind in ReadingKind:
        if reading_anchor(kind) in anchors:
            found[reading_evidence(kind)] = anchors[reading_anchor(kind)]
    for check in CareCheck:
        if check_anchor(check) in anchors:
            found[check_evidence(check)] = anchors[check_anchor(check)]
    return found


def _urgency(fired: FiredRule) -> ReferralUrgency:
    assert fired.outcome.referral is not None
    return fired.outcome.referral


@dataclass
class _PendingTask:
    kind: TaskKind
    subject: str | None
    due: datetime
    priority: int
    rule_id: str
    rule_ids: list[str]
    spec: TaskSpec
    evidence: list[str]
    anchor_at: datetime | None


class _TaskList:
    """Tasks keyed by (kind, subject): one each, with the earliest due and every rule behind it."""

    def __init__(
        self, snapshot: Snapshot, policy: Policy, tier: RiskTier, follow_up: FollowUp, tz: ZoneInfo
    ) -> None:
        self._snapshot = snapshot
        self._policy = policy
        self._tier = tier
        self._follow_up = follow_up
        self._tz = tz
        self._tasks: dict[tuple[TaskKind, str | None], _PendingTask] = {}
        self.evidence = evidence_of(snapshot)

    def add(self, kind: TaskKind, rule_id: str, check: CareCheck | None = None) -> None:
        spec = self._policy.tasks[kind]
        timing = self._due(spec.due, check)
        if timing is None:
            return
        due, anchor_at = timing
        evidence = spec.resolved_by.keys(check)
        if anchor_at is not None and self._done_since(evidence, anchor_at):
            return
        priority = spec.priority if spec.priority is not None else (spec.priority_by_tier or {})[self._tier]
        subject = check.value if check is not None and check.value != kind.value else None
        existing = self._tasks.get((kind, subject))
        if existing is None:
            self._tasks[(kind, subject)] = _PendingTask(
                kind,
                subject,
                due,
                priority,
                rule_id,
                [rule_id],
                spec,
                evidence,
                anchor_at,
            )
            return
        if rule_id not in existing.rule_ids:
            existing.rule_ids.append(rule_id)
        if due < existing.due:
            existing.due = due
            existing.rule_id = rule_id
            existing.anchor_at = anchor_at

    def _done_since(self, evidence: list[str], anchor_at: datetime) -> bool:
        """Whether evidence that resolves a task was recorded after the moment it counts from: a BP
        measured after the newest unconfirmed crisis reading is its recheck, so the recheck is no
        longer called for. The one place this is decided, for ``pathway evaluate`` and the stored
        tasks alike (the task sync keeps what the assessment calls for)."""
        seen = self.evidence
        return any(key in seen and seen[key] > anchor_at for key in evidence)

    def _due(self, due: TaskDue, check: CareCheck | None) -> tuple[datetime, datetime | None] | None:
        """The due time, and the recorded moment it counts from (None for as_of and follow-up dates)."""
        as_of = self._snapshot.as_of
        anchors = self._snapshot.anchors
        start: datetime | None
        anchor_at: datetime | None = None
        if due.anchor == "as_of":
            start = as_of
        elif due.anchor == "follow_up_due":
            start = datetime.combine(self._follow_up.due, time(0), tzinfo=self._tz)
        elif due.anchor == "last_check":
            start = anchor_at = anchors.get(check_anchor(check)) if check is not None else None
            if start is None:
                return as_of, None
        else:
            start = anchor_at = anchors.get(due.anchor)
        if start is None:
            return None
        at = start + timedelta(days=due.after_days, hours=due.after_hours)
        if due.not_before_as_of and at < as_of:
            at = as_of
        return at.astimezone(as_of.tzinfo), anchor_at

    def tasks(self) -> list[DueTask]:
        ordered = sorted(self._tasks.values(), key=lambda t: (t.priority, t.due, t.kind.value))
        return [
            DueTask(
                kind=t.kind,
                subject=t.subject,
                due=t.due,
                priority=t.priority,
                rule_id=t.rule_id,
                rule_ids=t.rule_ids,
                role=t.spec.role,
                time_limit_at=t.due + timedelta(hours=t.spec.time_limit_hours),
                evidence=t.evidence,
                anchor_at=t.anchor_at,
                recheck_of=t.anchor_at if t.spec.due.anchor in RECHECK_ANCHORS else None,
            )
            for t in ordered
        ]


_ASSESSMENT_JSON: TypeAdapter[Assessment] = TypeAdapter(Assessment)
