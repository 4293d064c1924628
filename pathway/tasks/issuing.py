"""The scheduler's runs over tasks and patients (PATHWAY.md §5): bulk statements, never a loop over patients.

- :func:`issue_due` — the daily run of one business date: issue what falls due, mark overdue,
  escalate, clear and raise ``missed_3m`` / ``lost_to_follow_up`` flags; the tasks marked overdue
  or escalated and the flags raised are events in the outbox (:mod:`pathway.events.outbox`).
- :func:`issue_hourly` — issue the pack's hourly kinds (rechecks, urgent referrals) as they fall due.

Each is idempotent: a second run of the same date changes nothing and records nothing. The callers
(scheduler jobs) own the transaction and the claim of the run.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlmodel import Session

from pathway.clinical.clock import CLINIC_TZ
from pathway.clinical.policy import FollowThrough
from pathway.events import outbox
from pathway.events.outbox import EventKind
from pathway.tasks import flag_store, issuing_store
from pathway.tasks.issuing_store import RunEvent, Scope
from pathway.tasks.status import SCHEDULER, FlagKind


@dataclass
class IssueReport:
    issued: int = 0
    overdue: int = 0
    escalated: int = 0
    missed_3m: int = 0
    lost_to_follow_up: int = 0
    flags_cleared: int = 0

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


def _scopes(
    session: Session, team_id: int | None, zone: str | None, default_zone: ZoneInfo
) -> list[tuple[ZoneInfo, Scope]]:
    """The teams a run covers grouped by time zone; patients without a team go with ``default_zone``."""
    by_zone: dict[str, list[int]] = {}
    for found_id, found_zone in issuing_store.teams(session, team_id):
        if zone is None or found_zone == zone:
            by_zone.setdefault(found_zone, []).append(found_id)
    teamless = team_id is None and zone in (None, default_zone.key)
    if teamless:
        by_zone.setdefault(default_zone.key, [])
    return [
        (ZoneInfo(name), Scope(tuple(ids), teamless and name == default_zone.key))
        for name, ids in sorted(by_zone.items())
    ]


def _start_of(day: date, zone: ZoneInfo) -> datetime:
    return datetime.combine(day, time(0), tzinfo=zone)


def issue_due(
    session: Session,
    now: datetime,
    rules: FollowThrough,
    *,
    team_id: int | None = None,
    zone: str | None = None,
    business_date: date | None = None,
    default_zone: ZoneInfo = CLINIC_TZ,
) -> IssueReport:
    """The daily run for one business date (default: today in each team's time zone).

    Issues what falls due on or before the date, marks overdue tasks, escalates tasks of the
    escalation tier overdue by the pack's days, clears the flags of patients seen again and flags
    patients without contact (missed_3m, lost_to_follow_up). Each is once: a rerun changes nothing.
    """
    report = IssueReport()
    escalation = rules.escalation
    for tz, scope in _scopes(session, team_id, zone, default_zone):
        day = business_date or now.astimezone(tz).date()
        on = {"business_date": day.isoformat()}
        report.issued += issuing_store.issue_due_by_date(
            session, scope, day, now, RunEvent(SCHEDULER, "issued", on)
        )
        overdue = issuing_store.mark_overdue(
            session, scope, day, now, RunEvent(SCHEDULER, "overdue", on, overdue_on=day)
        )
        outbox.tasks_marked(session, EventKind.TASK_OVERDUE, overdue, now)
        report.overdue += len(overdue)
        escalated = issuing_store.escalate(
            session,
            scope,
            escalation.tier.value,
            day - timedelta(days=escalation.overdue_days),
            now,
            RunEvent(SCHEDULER, "escalated", {**on, "to": escalation.to}, escalation.source, overdue_on=day),
        )
        outbox.tasks_marked(session, EventKind.TASK_ESCALATED, escalated, now)
        report.escalated += len(escalated)
        flags = [f.value for f in FlagKind]
        report.flags_cleared += flag_store.clear_flags(session, scope, flags, now)
        for flag, spec in (
            (FlagKind.MISSED_3M, rules.missed_3m),
            (FlagKind.LOST_TO_FOLLOW_UP, rules.lost_to_follow_up),
        ):
            # No contact for N days or more: the last contact's date is N or more days before ``day``.
            before = _start_of(day - timedelta(days=spec.no_contact_days - 1), tz)
            raised = flag_store.raise_flag(session, scope, flag.value, before, day, now)
            outbox.flags_raised(session, flag.value, raised, now)
            setattr(report, flag.value, getattr(report, flag.value) + len(raised))
    return report


def issue_hourly(
    session: Session,
    now: datetime,
    rules: FollowThrough,
    *,
    until: datetime,
    team_id: int | None = None,
    zone: str | None = None,
    default_zone: ZoneInfo = CLINIC_TZ,
) -> int:
    """Issue the pack's hourly kinds (rechecks, urgent referrals) due before ``until``; how many."""
    kinds = [k.value for k in rules.hourly.kinds]
    hourly = RunEvent(SCHEDULER, "issued", {"hourly": True})
    return sum(
        issuing_store.issue_due_by_time(session, scope, kinds, until, now, hourly)
        for _tz, scope in _scopes(session, team_id, zone, default_zone)
    )
