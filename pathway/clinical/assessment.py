"""From fired rules to an assessment: tier, level, referral, follow-up and tasks (PATHWAY.md §4–5).

Worst tier wins; the most urgent referral wins; the shortest follow-up interval wins. Every part
of the result names the rule that caused it and the pack (id, version, sha256) it came from.
The policy (levels, referral and task catalogues, default interval: :mod:`pathway.clinical.policy`)
is pack data.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from pydantic import TypeAdapter

from pathway.clinical.anchors import ANCHOR_LATEST_ENCOUNTER, check_anchor, reading_anchor
from pathway.clinical.clock import CLINIC_TZ
from pathway.clinical.conditions import FactValue
from pathway.clinical.medication import MedicationGroup
from pathway.clinical.medication_facts import RefillDue
from pathway.clinical.policy import (
    EVIDENCE_ENCOUNTER,
    RECHECK_ANCHORS,
    Outcome,
    Policy,
    TaskDue,
    TaskSpec,
    check_evidence,
    reading_evidence,
)
from pathway.clinical.snapshot import Snapshot
from pathway.clinical.tiers import ManagementLevel, ReferralUrgency, RiskTier, TaskKind, TeamRole
from pathway.clinical.vocabulary import CareCheck, ReadingKind


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
    check: CareCheck | None


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
        group = f.outcome.medication_group
        for kind in f.outcome.tasks:
            builder.add(kind, f.rule_id, due=f.outcome.task_due.get(kind), groups=[group] if group else [])
    for s in schedules:
        if s.check is not None:
            builder.add(s.task, s.schedule_id, check=s.check)
            continue
        # A schedule without a check is about prescriptions: one task per refill due (PATHWAY.md §7).
        for refill in snapshot.refills:
            builder.add(s.task, s.schedule_id, refill=refill)

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
    found.update(snapshot.medication_evidence)
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

    def add(
        self,
        kind: TaskKind,
        rule_id: str,
        check: CareCheck | None = None,
        *,
        due: TaskDue | None = None,
        groups: list[MedicationGroup] | None = None,
        refill: RefillDue | None = None,
    ) -> None:
        """Call for a task (``due``: the rule's own due time; ``groups``: the medication groups the
        rule is about; ``refill``: the prescription a refill review is about, its subject)."""
        spec = self._policy.tasks[kind]
        timing = self._due(due or spec.due, check, refill)
        if timing is None:
            return
        due_at, anchor_at = timing
        subject = refill.subject if refill is not None else None
        evidence = spec.resolved_by.keys(check, groups, subject)
        if anchor_at is not None and self._done_since(evidence, anchor_at):
            return
        priority = spec.priority if spec.priority is not None else (spec.priority_by_tier or {})[self._tier]
        if check is not None and check.value != kind.value:
            subject = check.value
        existing = self._tasks.get((kind, subject))
        if existing is None:
            self._tasks[(kind, subject)] = _PendingTask(
                kind,
                subject,
                due_at,
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
        existing.evidence += [key for key in evidence if key not in existing.evidence]
        if due_at < existing.due:
            existing.due = due_at
            existing.rule_id = rule_id
            existing.anchor_at = anchor_at

    def _done_since(self, evidence: list[str], anchor_at: datetime) -> bool:
        """Whether evidence that resolves a task was recorded after the moment it counts from: a BP
        measured after the newest unconfirmed crisis reading is its recheck, so the recheck is no
        longer called for. The one place this is decided, for ``pathway evaluate`` and the stored
        tasks alike (the task sync keeps what the assessment calls for)."""
        seen = self.evidence
        return any(key in seen and seen[key] > anchor_at for key in evidence)

    def _due(
        self, due: TaskDue, check: CareCheck | None, refill: RefillDue | None
    ) -> tuple[datetime, datetime | None] | None:
        """The due time, and the recorded moment it counts from (None for as_of, follow-up dates, the
        latest visit and supply ends: nothing recorded after them is the task done)."""
        as_of = self._snapshot.as_of
        anchors = self._snapshot.anchors
        start: datetime | None
        anchor_at: datetime | None = None
        if due.anchor == "as_of":
            start = as_of
        elif due.anchor == "follow_up_due":
            start = datetime.combine(self._follow_up.due, time(0), tzinfo=self._tz)
        elif due.anchor == "latest_encounter":
            start = anchors.get(ANCHOR_LATEST_ENCOUNTER)
        elif due.anchor == "supply_end":
            if refill is None:
                return None
            start = datetime.combine(refill.supply_end, time(0), tzinfo=self._tz)
        elif due.anchor == "last_check":
            start = anchor_at = anchors.get(check_anchor(check)) if check is not None else None
            if start is None:
                return as_of, None
        else:
            start = anchor_at = anchors.get(due.anchor)
        if start is None:
            return None
        at = start + timedelta(days=due.after_days - due.before_days, hours=due.after_hours)
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
