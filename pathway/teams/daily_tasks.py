"""The GP team's daily list (今日任务, PATHWAY.md §5) as a use-case, flat or one card per patient.

The team's open tasks due on the day or before (overdue), not snoozed past that day, ordered by
priority, then days overdue (most first), then tier (red first). Each item carries the patient,
their current tier with the reasons in one line, the latest BP, glucose and LDL-C the rules saw,
and what to do. A route builds the :class:`ListQuery` of the page it shows. Nothing here commits.
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

from pathway.clinical.tiers import RiskTier, TaskKind
from pathway.clinical.vocabulary import CareCheck
from pathway.store.tables import Team
from pathway.teams import team_store

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
    TaskKind.MEDICATION_REVIEW.value: ("调整用药方案", "Review the medication"),
    TaskKind.ADHERENCE_SUPPORT.value: ("服药依从性干预", "Support adherence"),
    TaskKind.STATIN_START.value: ("评估启动他汀治疗", "Consider starting a statin"),
    TaskKind.REFILL_REVIEW.value: ("用药回访（长处方续方）", "Refill review (long prescription)"),
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


@dataclass(frozen=True)
class ListQuery:
    """Which page of the team's list of ``day`` (``until``: the day's end in the team's time zone):
    the tasks of ``role`` or ``member`` if given, and those of the pack's ``at_once`` kinds from the
    moment they were called for."""

    team_id: int
    day: date
    until: datetime
    role: str | None = None
    member: str | None = None
    limit: int = 50
    offset: int = 0
    at_once: tuple[str, ...] = ()

    @classmethod
    def of(
        cls,
        team: Team,
        day: date,
        *,
        role: str | None = None,
        member: str | None = None,
        limit: int = 50,
        offset: int = 0,
        listed_at_once: Sequence[str] = (),
    ) -> ListQuery:
        """The query of the team's list of ``day``, which ends at the next midnight in the team's zone."""
        assert team.id is not None
        zone = ZoneInfo(team.timezone)
        end_of_day = datetime.combine(day + timedelta(days=1), time(0), tzinfo=zone)
        return cls(team.id, day, end_of_day, role, member, limit, offset, tuple(listed_at_once))


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


def daily_list(session: Session, query: ListQuery) -> DailyList:
    """The team's list of the query's day: open tasks due by then or issued by then, and those of
    the pack's ``listed_at_once`` kinds from the moment they were called for (an urgent referral due
    within 24 h is on today's list, not tomorrow's), not snoozed past the day."""
    total, rows = team_store.daily_list(session, query, _TIER_RANK)
    return DailyList(
        team_id=query.team_id, date=query.day, total=total, items=_items(session, rows, query.day)
    )


def daily_cards(session: Session, query: ListQuery) -> DailyCards:
    """The day's list (as :func:`daily_list`) with each patient's tasks on one card: cards by the
    most urgent task's priority, then tier (red first), then those with something due that day
    before those with only overdue work, then the oldest due; a page is ``query.limit`` patients."""
    patients, tasks, rows = team_store.daily_cards(session, query, _TIER_RANK)
    cards: dict[int, PatientCard] = {}
    for item in _items(session, rows, query.day):
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
        team_id=query.team_id, date=query.day, total=patients, tasks_total=tasks, cards=list(cards.values())
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


def english_reasons(session: Session, items: list[ListItem]) -> dict[int, str]:
    """The reasons line in English (the list carries the Chinese messages of the same assessments)."""
    summaries = team_store.latest_summaries(session, sorted({i.patient_id for i in items}), ())
    return {
        patient_id: "; ".join(r["message_en"] for r in summary.reasons)
        for patient_id, summary in summaries.items()
    }


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
