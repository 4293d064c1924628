"""The GP team's screens as use-cases: the daily list (今日任务), the patients without contact
(3个月未随访 / 失访), the patient search (患者) and the indicators (绩效考核).

Daily list (PATHWAY.md §5): the team's open tasks due on the day or before (overdue), not snoozed
past that day, ordered by priority, then days overdue (most first), then tier (red first). Each
item carries the patient, their current tier with the reasons in one line, the latest BP, glucose
and LDL-C the rules saw, and what to do.

Contact flags (PATHWAY.md §5): the daily run flags ``missed_3m`` after 90 days without contact and
``lost_to_follow_up`` after 365 (a patient lost to follow-up keeps ``missed_3m`` too). The team
list shows each flagged patient once, under the most severe flag, so the two groups do not overlap:
``missed_3m`` is 90–364 days, ``lost_to_follow_up`` 365 and more; the indicators count the same way.
Nothing here commits.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlmodel import Session

from pathway.clinical.errors import PathwayError
from pathway.clinical.tiers import RiskTier, TaskKind
from pathway.clinical.vocabulary import CareCheck, Condition, PatientStatus
from pathway.patients import patient_store
from pathway.patients.history import history_from_rows
from pathway.patients.reassessment import PathwayConfig
from pathway.store.tables import Patient, Team
from pathway.tasks import flag_store
from pathway.tasks.tasks import FlagKind
from pathway.teams import indicators, team_store

# What a task asks of the team, in the team's words (the catalogue of PATHWAY.md §5).
WHAT_TO_DO: dict[str, tuple[str, str]] = {
    TaskKind.EMERGENCY_REFERRAL.value: ("立即急诊转诊（120）", "Emergency referral now (120)"),
    TaskKind.URGENT_REFERRAL.value: ("24小时内紧急转诊", "Urgent referral within 24 h"),
    TaskKind.BP_RECHECK.value: ("复测血压，确认是否危急", "Recheck BP to confirm a crisis"),
    TaskKind.ROUTINE_REFERRAL.value: ("安排常规上转", "Arrange a routine referral"),
    TaskKind.REFERRAL_FOLLOW_UP.value: ("转诊后随访", "Follow up after the referral"),
    TaskKind.FOLLOW_UP_VISIT.value: ("面对面随访", "Follow-up visit"),
    TaskKind.LIPID_RECHECK.value: ("复查血脂", "Recheck the lipid panel"),
    TaskKind.DATA_GAP.value: ("联系患者测量血压/血糖", "Contact the patient to measure"),
    TaskKind.ANNUAL_CHECK.value: ("年度健康检查", "Annual health check"),
    TaskKind.COMPLICATION_SCREENING.value: ("并发症筛查", "Complication screening"),
}
SCREENING: dict[str, tuple[str, str]] = {
    CareCheck.FUNDUS.value: ("眼底检查", "fundus exam"),
    CareCheck.UACR_EGFR.value: ("尿白蛋白/肌酐比值+eGFR", "UACR + eGFR"),
    CareCheck.FOOT.value: ("足部检查", "foot exam"),
    CareCheck.ECG.value: ("心电图", "ECG"),
}
_TIER_RANK = {tier.value: rank for rank, tier in enumerate(sorted(RiskTier, key=lambda t: -t.severity))}
_LATEST_FACTS = (
    "office_sbp",
    "office_dbp",
    "home_sbp_mean",
    "home_dbp_mean",
    "latest_encounter_glucose",
    "hba1c",
    "ldl_c",
    "ldl_target",
)
CSV_LIMIT = 5000
# Most severe first: the order of the team's list of flagged patients, and the flag each is shown under.
FLAG_SEVERITY = (FlagKind.LOST_TO_FOLLOW_UP, FlagKind.MISSED_3M)
_FLAG_RANK = {flag.value: rank for rank, flag in enumerate(FLAG_SEVERITY)}


class UnknownTeam(PathwayError):
    code = "unknown-team"
    status = 404


@dataclass
class ListItem:
    task_id: int
    patient_id: int
    patient_name: str | None
    external_id: str
    kind: str
    subject: str | None
    what_to_do: str
    what_to_do_en: str
    priority: int
    due_at: datetime
    days_overdue: int
    time_limit_at: datetime
    role: str
    assignee: str | None
    tier: str
    escalated: bool
    reasons: str
    rule_id: str
    pack_version: str
    latest: dict[str, float | None] = field(default_factory=dict)
    crisis_reading: team_store.CrisisReading | None = None  # a bp_recheck's: the reading to confirm


@dataclass
class DailyList:
    team_id: int
    date: date
    total: int
    items: list[ListItem]


@dataclass
class PatientCard:
    """One patient's tasks on the day's list, as one card."""

    patient_id: int
    patient_name: str | None
    external_id: str
    tier: str
    reasons: str
    priority: int  # the most urgent task's
    days_overdue: int  # the most overdue task's
    due_today: bool  # something is due that day (or listed before it is due)
    escalated: bool
    latest: dict[str, float | None]
    items: list[ListItem]


@dataclass
class DailyCards:
    team_id: int
    date: date
    total: int  # patients
    tasks_total: int
    cards: list[PatientCard]


def require_team(session: Session, team_id: int) -> Team:
    team = team_store.team_by_id(session, team_id)
    if team is None:
        raise UnknownTeam(f"no team with id {team_id}", "team_id")
    return team


def team_today(team: Team, now: datetime) -> date:
    return now.astimezone(ZoneInfo(team.timezone)).date()


def daily_list(
    session: Session,
    team: Team,
    day: date,
    *,
    role: str | None = None,
    member: str | None = None,
    limit: int = 50,
    offset: int = 0,
    listed_at_once: Sequence[str] = (),
) -> DailyList:
    """The team's list of ``day``: open tasks due by then or issued by then, and those of the pack's
    ``listed_at_once`` kinds from the moment they were called for (an urgent referral due within 24 h
    is on today's list, not tomorrow's), not snoozed past the day."""
    assert team.id is not None
    zone = ZoneInfo(team.timezone)
    end_of_day = datetime.combine(day + timedelta(days=1), time(0), tzinfo=zone)
    total, rows = team_store.daily_list(
        session,
        team.id,
        day,
        end_of_day,
        _TIER_RANK,
        role=role,
        member=member,
        limit=limit,
        offset=offset,
        at_once=listed_at_once,
    )
    return DailyList(team_id=team.id, date=day, total=total, items=_items(session, rows, day))


def daily_cards(
    session: Session,
    team: Team,
    day: date,
    *,
    role: str | None = None,
    member: str | None = None,
    limit: int = 50,
    offset: int = 0,
    listed_at_once: Sequence[str] = (),
) -> DailyCards:
    """The day's list (as :func:`daily_list`) with each patient's tasks on one card: cards by the
    most urgent task's priority, then tier (red first), then those with something due that day
    before those with only overdue work, then the oldest due; a page is ``limit`` patients."""
    assert team.id is not None
    zone = ZoneInfo(team.timezone)
    end_of_day = datetime.combine(day + timedelta(days=1), time(0), tzinfo=zone)
    patients, tasks, rows = team_store.daily_cards(
        session,
        team.id,
        day,
        end_of_day,
        _TIER_RANK,
        role=role,
        member=member,
        limit=limit,
        offset=offset,
        at_once=listed_at_once,
    )
    cards: dict[int, PatientCard] = {}
    for item in _items(session, rows, day):
        card = cards.get(item.patient_id)
        if card is None:
            cards[item.patient_id] = PatientCard(
                patient_id=item.patient_id,
                patient_name=item.patient_name,
                external_id=item.external_id,
                tier=item.tier,
                reasons=item.reasons,
                priority=item.priority,
                days_overdue=item.days_overdue,
                due_today=item.days_overdue == 0,
                escalated=item.escalated,
                latest=item.latest,
                items=[item],
            )
            continue
        card.items.append(item)
        card.priority = min(card.priority, item.priority)
        card.days_overdue = max(card.days_overdue, item.days_overdue)
        card.due_today = card.due_today or item.days_overdue == 0
        card.escalated = card.escalated or item.escalated
    return DailyCards(
        team_id=team.id, date=day, total=patients, tasks_total=tasks, cards=list(cards.values())
    )


def _items(session: Session, rows: Sequence[Any], day: date) -> list[ListItem]:
    """The list items of task rows: with each patient's newest assessment, and the reading a
    ``bp_recheck`` is to confirm."""
    latest = team_store.latest_summaries(session, sorted({row.patient_id for row in rows}), _LATEST_FACTS)
    recheck = TaskKind.BP_RECHECK.value
    crises = team_store.crisis_readings(
        session, [(r.id, r.patient_id, r.assessment_id) for r in rows if r.kind == recheck], recheck
    )
    items = [_item(row, latest.get(row.patient_id), day) for row in rows]
    for item in items:
        item.crisis_reading = crises.get(item.task_id)
    return items


def _item(row: Any, summary: team_store.AssessmentSummary | None, day: date) -> ListItem:
    todo_zh, todo_en = WHAT_TO_DO.get(row.kind, (row.kind, row.kind))
    if row.subject:
        check_zh, check_en = SCREENING.get(row.subject, (row.subject, row.subject))
        todo_zh, todo_en = f"{todo_zh}：{check_zh}", f"{todo_en}: {check_en}"
    facts = summary.facts if summary is not None else {}
    return ListItem(
        task_id=row.id,
        patient_id=row.patient_id,
        patient_name=row.name,
        external_id=row.external_id,
        kind=row.kind,
        subject=row.subject or None,
        what_to_do=todo_zh,
        what_to_do_en=todo_en,
        priority=row.priority,
        due_at=row.due_at,
        days_overdue=max((day - row.due_date).days, 0),
        time_limit_at=row.time_limit_at,
        role=row.role,
        assignee=row.assignee,
        tier=summary.tier if summary is not None else row.tier,
        escalated=row.escalated_at is not None,
        reasons="；".join(r["message"] for r in summary.reasons) if summary is not None else "",
        rule_id=row.rule_id,
        pack_version=row.pack_version,
        latest={name: _number(facts.get(name)) for name in _LATEST_FACTS},
    )


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def as_csv(day_list: DailyList) -> str:
    """The day's list as CSV (UTF-8 with BOM so spreadsheet programs read the Chinese)."""
    out = io.StringIO()
    out.write("\ufeff")
    writer = csv.writer(out)
    writer.writerow(
        ["优先级 priority", "逾期天数 days overdue", "分层 tier", "患者 patient", "编号 id", "任务 task",
         "岗位 role", "负责人 assignee", "截止 due", "时限 time limit", "血压 BP", "血糖 glucose",
         "LDL-C", "原因 reasons", "规则 rule", "版本 pack"]
    )  # fmt: skip
    for item in day_list.items:
        latest = item.latest
        sbp, dbp = (
            latest.get("office_sbp") or latest.get("home_sbp_mean"),
            (latest.get("office_dbp") or latest.get("home_dbp_mean")),
        )
        writer.writerow(
            [
                item.priority,
                item.days_overdue,
                item.tier,
                _cell(item.patient_name or ""),
                _cell(item.external_id),
                _cell(item.what_to_do),
                _cell(item.role),
                _cell(item.assignee or ""),
                item.due_at.isoformat(),
                item.time_limit_at.isoformat(),
                f"{sbp:g}/{dbp:g}" if sbp is not None and dbp is not None else "",
                _text(latest.get("latest_encounter_glucose")),
                _text(latest.get("ldl_c")),
                _cell(item.reasons),
                _cell(item.rule_id),
                _cell(item.pack_version),
            ]
        )
    return out.getvalue()


_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _cell(text: str) -> str:
    """A text cell a spreadsheet will not run: one starting like a formula (= + - @, tab, CR) gets a
    leading single quote (OWASP CSV injection). Only texts that came from people (names, ids,
    assignees, reasons) pass here; the numbers (priority, days overdue, BP, glucose, LDL-C) are
    written by us and never start so, so a negative number is never mangled."""
    return f"'{text}" if text.startswith(_FORMULA_START) else text


def _text(value: float | None) -> str:
    return f"{value:g}" if value is not None else ""


# --- Patients without contact (3个月未随访 / 失访) ---------------------------------------------------


@dataclass
class FlaggedPatient:
    patient_id: int
    name: str | None
    external_id: str
    flag: FlagKind
    business_date: date
    raised_at: datetime
    last_contact_at: datetime | None
    days_without_contact: int
    tier: str | None


@dataclass
class FlaggedList:
    team_id: int
    total: int
    items: list[FlaggedPatient]


def days_without_contact(since: datetime, now: datetime, zone: ZoneInfo) -> int:
    """Whole days from ``since`` to ``now``, counted in the team's calendar."""
    return (now.astimezone(zone).date() - since.astimezone(zone).date()).days


def contact_flags(
    session: Session, team: Team, now: datetime, *, flag: FlagKind | None, limit: int, offset: int
) -> FlaggedList:
    """The team's patients flagged for no contact, each once under the most severe active flag:
    lost to follow-up first, then the longest without contact, then by patient id."""
    assert team.id is not None
    zone = ZoneInfo(team.timezone)
    total, rows = flag_store.team_flags(
        session, team.id, _FLAG_RANK, flag=flag.value if flag else None, limit=limit, offset=offset
    )
    tiers = team_store.latest_tiers(session, sorted({row.patient_id for row in rows}))
    items = [
        FlaggedPatient(
            patient_id=row.patient_id,
            name=row.name,
            external_id=row.external_id,
            flag=FlagKind(row.flag),
            business_date=row.business_date,
            raised_at=row.raised_at,
            last_contact_at=row.last_contact_at,
            days_without_contact=days_without_contact(row.last_contact_at or row.created_at, now, zone),
            tier=tiers.get(row.patient_id),
        )
        for row in rows
    ]
    return FlaggedList(team_id=team.id, total=total, items=items)


def contact_flag_counts(session: Session, team: Team) -> dict[str, int]:
    """The team's flagged patients now, by most severe flag (every flag kind present)."""
    assert team.id is not None
    found = flag_store.team_flag_counts(session, team.id, _FLAG_RANK)
    return {flag.value: found.get(flag.value, 0) for flag in FlagKind}


# --- Patients --------------------------------------------------------------------------------------


@dataclass
class FoundPatient:
    id: int
    source_system: str
    external_id: str
    team_id: int | None
    name: str | None
    phone: str | None
    sex: str
    birth_date: date
    tier: str | None


@dataclass
class PatientList:
    total: int
    items: list[FoundPatient]


def find_patients(
    session: Session, team_id: int | None, query: str | None, *, limit: int, offset: int
) -> PatientList:
    """The patients of a team (every patient when ``team_id`` is None) whose name or external id
    holds ``query`` (any case), or whose phone holds its digits; each with the newest assessment's
    tier. An exact external id comes first, then registration order."""
    query = query.strip() if query else None
    total, rows = patient_store.search(
        session, team_id=team_id, query=query or None, limit=limit, offset=offset
    )
    tiers = team_store.latest_tiers(session, sorted({row.id for row in rows}))
    items = [
        FoundPatient(
            id=row.id,
            source_system=row.source_system,
            external_id=row.external_id,
            team_id=row.team_id,
            name=row.name,
            phone=row.phone,
            sex=row.sex,
            birth_date=row.birth_date,
            tier=tiers.get(row.id),
        )
        for row in rows
    ]
    return PatientList(total=total, items=items)


# --- Indicators -----------------------------------------------------------------------------------


def registered_at(patient: Patient, zone: ZoneInfo) -> datetime:
    """When the patient was registered for the indicators: the start of the enrolment day (建档日期)
    in the team's time zone, or, for a patient stored before enrolment dates were kept, when stored."""
    if patient.enrolled_on is None:
        return patient.created_at
    return datetime.combine(patient.enrolled_on, time(0), tzinfo=zone)


def managed_at(patient: Patient, moment: datetime) -> bool:
    """Whether the patient was still managed at ``moment``: active, or ended (died, moved) later."""
    ended = patient.status_changed_at
    return patient.status == PatientStatus.ACTIVE.value or (ended is not None and ended > moment)


@dataclass
class PeriodCounts:
    encounters: int
    open_referrals_by_urgency: dict[str, int]
    overdue_tasks_by_priority: dict[int, int]
    active_contact_flags: dict[str, int]


def team_indicators(
    session: Session, team: Team, config: PathwayConfig, start: datetime, end: datetime
) -> tuple[indicators.TeamIndicators, PeriodCounts]:
    """The indicators as of ``end`` (each patient's history up to then) and the period's counts."""
    assert team.id is not None
    zone = ZoneInfo(team.timezone)
    patients = [p for p in team_store.team_patients(session, team.id, end, zone) if managed_at(p, end)]
    ids = [p.id for p in patients if p.id is not None]
    rows = team_store.clinical_rows(session, ids, end)
    tiers = team_store.latest_tiers(session, ids, made_by=end)
    managed = []
    for patient in patients:
        assert patient.id is not None
        mine = rows[patient.id]
        history = history_from_rows(
            patient, mine.complications, mine.readings, mine.encounters, mine.symptoms, mine.checks
        )
        tier = tiers.get(patient.id)
        managed.append(
            indicators.ManagedPatient(
                patient_id=patient.id,
                registered_at=registered_at(patient, zone),
                conditions=frozenset(Condition(c) for c in patient.conditions),
                history=history,
                facts=config.facts(history, end),
                tier=RiskTier(tier) if tier is not None else None,
            )
        )
    result = indicators.compute(managed, config.indicators, config.targets.glucose, end, zone)
    counts = PeriodCounts(
        encounters=team_store.encounters_between(session, team.id, start, end),
        open_referrals_by_urgency=team_store.open_referrals_by_urgency(session, team.id, end),
        overdue_tasks_by_priority=team_store.overdue_tasks(session, team.id, end.astimezone(zone).date()),
        active_contact_flags=contact_flag_counts(session, team),
    )
    return result, counts
