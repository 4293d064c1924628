"""The annual care plan (年度医防融合一体化照护计划) of one patient for one calendar year.

Planned: the follow-up visits at the current assessment's interval, from its next due date to
the end of the year; every task the current assessment calls for whose due date falls in the
year (screenings — fundus, UACR + eGFR, foot, ECG —, the annual health check, a lipid recheck, a
referral and its follow-up). Done: the year's encounters, lipid panels and checks on record, and
the tasks the team closed in the year. An item planned for a day already past and not done is
``overdue``. Everything comes from stored data and the assessment; nothing here commits.

:func:`history_shown` reads only the part of the stored history that the plan of a year shows
(:mod:`pathway.patients.display_store`): a wearable's or CGM's stream is not read back to its first day.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlmodel import Session

from pathway.clinical.history import PatientHistory
from pathway.clinical.tiers import TaskKind
from pathway.clinical.visits import clinic_encounters
from pathway.clinical.vocabulary import ReadingKind
from pathway.patients import display_store
from pathway.patients.display_store import Span
from pathway.patients.history import history_from_rows
from pathway.store.tables import AssessmentRecord, Patient
from pathway.tasks import patient_tasks

# Tasks resolved by evidence are not listed again: the evidence itself (visit, panel, check) is.
DONE_STATUSES = ("done",)


@dataclass(frozen=True)
class PlanItem:
    kind: str
    subject: str | None
    status: str  # done | planned | overdue
    on: date
    rule_id: str | None
    detail: str | None = None


@dataclass(frozen=True)
class CarePlan:
    patient_id: int
    year: int
    tier: str
    level: str
    follow_up_interval_days: int
    pack_version: str
    items: list[PlanItem]


def year_span(year: int, tz: ZoneInfo) -> Span:
    """Every instant whose day in ``tz`` falls in ``year``, and a day more on each side (the plan
    keeps only its own days; the margin spares any doubt about a zone's midnight)."""
    return Span(
        datetime(year, 1, 1, tzinfo=tz) - timedelta(days=1),
        datetime(year + 1, 1, 1, tzinfo=tz) + timedelta(days=1),
    )


def history_shown(
    session: Session, patient: Patient, year: int, tz: ZoneInfo, every: Span | None = None
) -> PatientHistory:
    """What :func:`plan_year` of ``year`` reads of the stored history (the year's encounters, loose
    clinic readings and LDL-C readings) and, with ``every``, every reading of that span; its plan is
    the plan of the whole history. Only for showing: no snapshot may be built from it (it lacks the
    complications, symptoms, checks and every other reading)."""
    assert patient.id is not None
    rows = display_store.shown_rows(session, patient.id, year_span(year, tz), every)
    return history_from_rows(patient, (), rows.readings, rows.encounters, ())


def plan_year(
    session: Session,
    record: AssessmentRecord,
    history: PatientHistory,
    year: int,
    today: date,
    tz: ZoneInfo,
) -> CarePlan:
    """The plan of ``year`` from the current assessment ``record`` and the stored history."""
    result: dict[str, Any] = record.result
    first, last = date(year, 1, 1), date(year, 12, 31)
    items: list[PlanItem] = []

    end_of_year = datetime(year, 12, 31, 23, 59, 59, tzinfo=tz)
    for encounter in clinic_encounters(history, end_of_year, tz):
        day = encounter.at.astimezone(tz).date()
        if first <= day <= last:
            items.append(PlanItem(TaskKind.FOLLOW_UP_VISIT.value, None, "done", day, None, "encounter"))
    lipid_days = {
        r.at.astimezone(tz).date()
        for r in (*history.readings, *(r for e in history.encounters for r in e.readings))
        if r.kind is ReadingKind.LDL_C and first <= r.at.astimezone(tz).date() <= last
    }
    items += [
        PlanItem(TaskKind.LIPID_RECHECK.value, None, "done", d, None, "lipid panel") for d in lipid_days
    ]
    for key, moment in (result.get("evidence") or {}).items():
        if key.startswith("check:"):
            day = datetime.fromisoformat(moment).astimezone(tz).date()
            if first <= day <= last:
                check = key.removeprefix("check:")
                kind = _check_kind(check)
                items.append(PlanItem(kind, None if kind == check else check, "done", day, None, "check"))
    assert record.patient_id is not None
    for task in patient_tasks.tasks_of(session, record.patient_id, open_only=False):
        closed = task.closed_at.astimezone(tz).date() if task.closed_at else None
        if task.status in DONE_STATUSES and closed is not None and first <= closed <= last:
            items.append(PlanItem(task.kind, task.subject or None, "done", closed, task.rule_id, task.status))

    follow_up = result["follow_up"]
    interval = int(follow_up["interval_days"])
    due = date.fromisoformat(follow_up["due"])
    while due <= last:
        if due >= first:
            items.append(_planned(TaskKind.FOLLOW_UP_VISIT.value, None, due, follow_up.get("rule_id"), today))
        due += timedelta(days=interval)
    for task in result.get("tasks", []):
        if task["kind"] == TaskKind.FOLLOW_UP_VISIT.value:
            continue
        day = datetime.fromisoformat(task["due"]).astimezone(tz).date()
        if first <= day <= last:
            items.append(_planned(task["kind"], task.get("subject"), day, task.get("rule_id"), today))
    items = _without_doubles(items)
    items.sort(key=lambda i: (i.on, i.status != "done", i.kind, i.subject or ""))
    return CarePlan(
        patient_id=record.patient_id,
        year=year,
        tier=record.tier,
        level=record.level,
        follow_up_interval_days=interval,
        pack_version=record.pack_version,
        items=items,
    )


def _check_kind(check: str) -> str:
    return TaskKind.ANNUAL_CHECK.value if check == TaskKind.ANNUAL_CHECK.value else "complication_screening"


def _planned(kind: str, subject: str | None, on: date, rule_id: str | None, today: date) -> PlanItem:
    return PlanItem(kind, subject, "overdue" if on < today else "planned", on, rule_id)


def _without_doubles(items: list[PlanItem]) -> list[PlanItem]:
    """One item per (kind, subject, day, status); a task closed the day its evidence arrived once."""
    seen: dict[tuple[str, str | None, date], PlanItem] = {}
    for item in items:
        key = (item.kind, item.subject, item.on)
        if key not in seen or (item.status == "done" and seen[key].status != "done"):
            seen[key] = item
    return list(seen.values())
