"""The patient page: tier and level with every reason, any contact flag (3个月未随访 / 失访), the
open referral's loop, the open tasks, the care plan of the year, and charts (BP, glucose, LDL-C,
the tier over time) drawn on the server.

The same use-cases and access rules as ``GET /v1/patients/{id}/assessment`` and ``/care-plan``: a
team key sees only its own team's patients (403 page, naming nothing, otherwise); the assessment
shown is the current one (made today under the pack in force), reassessed first if it is stale.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, Response

from api.deps import ClockDep, PathwayDep, PatientId, SessionDep, patient_for
from api.tasks import FollowThroughDep
from api.web import chart_values, charts, medication
from api.web.common import PREFIX, StateDep, TDep, WebRoute, WebSessionDep, markup, render
from api.web.pages import OUTCOMES, snooze_bounds, unsnoozable
from pathway.access.permissions import Role
from pathway.clinical.errors import DatabaseBusy
from pathway.clinical.snapshot import completed_years
from pathway.patients import care_plan, patient_store, reassessment
from pathway.patients.display_store import Span
from pathway.patients.reassessment import EvaluationUnavailable
from pathway.referrals import referral_flow, referral_store
from pathway.store.tables import AssessmentRecord, Referral
from pathway.tasks import flag_store, patient_tasks
from pathway.teams import team_store
from rules.registry import PackRegistry

router = APIRouter(prefix=PREFIX, include_in_schema=False, route_class=WebRoute)
TIMELINE_ASSESSMENTS = 400  # the newest stored assessments the tier timeline reads


@dataclass(frozen=True)
class LoopStep:
    status: str
    at: datetime | None
    detail: str | None
    state: str  # done | current | pending


def referral_loop(referral: Referral) -> list[LoopStep]:
    """open → accepted → completed → returned, each with its moment and detail."""
    steps = [
        ("open", referral.created_at, referral.reason),
        ("accepted", referral.accepted_at, referral.receiving_institution),
        ("completed", referral.completed_at, referral.outcome),
        ("returned", referral.returned_at, referral.return_note),
    ]
    order = [s for s, _, _ in steps]
    current = order.index(referral.status) if referral.status in order else 0
    return [
        LoopStep(status, at, detail, "current" if i == current else ("done" if i < current else "pending"))
        for i, (status, at, detail) in enumerate(steps)
    ]


def _marks(records: list[AssessmentRecord]) -> list[chart_values.TierMark]:
    return [
        chart_values.TierMark(
            at=r.evaluated_at,
            tier=r.tier,
            level=r.level,
            rule_ids=tuple(reason["rule_id"] for reason in r.result.get("reasons", [])),
            pack_version=r.pack_version,
        )
        for r in records
    ]


@router.get("/patients/{patient_id}", response_class=HTMLResponse)
def patient_page(
    patient_id: PatientId,
    request: Request,
    web: WebSessionDep,
    session: SessionDep,
    clock: ClockDep,
    pathway: PathwayDep,
    state: StateDep,
    t: TDep,
    rules: FollowThroughDep,
    months: Annotated[int, Query(ge=1, le=36)] = 12,
    year: Annotated[int | None, Query(ge=2000, le=2100)] = None,
) -> Response:
    started = time.perf_counter()
    now = clock.now()
    patient = patient_for(session, web.caller, patient_id, "patient.read", now, Role.EHR, Role.TEAM)
    team = team_store.team_by_id(session, patient.team_id) if patient.team_id is not None else None
    zone = ZoneInfo(team.timezone) if team is not None else pathway.tz
    record = patient_store.latest_assessment(session, patient_id)
    pending = patient.reassessment_due_since is not None
    if record is None or not reassessment.is_current(record, pathway, now, patient):
        try:
            record = reassessment.current_assessment(session, patient, pathway, clock)
            pending = patient.reassessment_due_since is not None
        except (EvaluationUnavailable, DatabaseBusy):
            pending = True  # show what is stored; the next read or run completes it
    today = now.astimezone(zone).date()
    year = year or today.year
    since = now - timedelta(days=round(months * 30.44))
    # The year's plan and the charts' window: a wearable's stream is not read back to its first day.
    history = care_plan.history_shown(session, patient, year, pathway.tz, every=Span(since, now))
    plan = None if record is None else care_plan.plan_year(session, record, history, year, today, pathway.tz)
    referral = referral_store.active_referral(session, patient_id, referral_flow.ACTIVE)
    contact_flags = flag_store.shown_flags(session, patient_id)
    open_tasks = patient_tasks.tasks_of(session, patient_id, open_only=True)
    marks = _marks(list(patient_store.assessments_of(session, patient_id, limit=TIMELINE_ASSESSMENTS)))
    medication_shown = medication.medication_block(session, patient, pathway, now, zone)
    session.commit()  # the audit row and any reassessment

    registry: PackRegistry = request.app.state.registry
    pack = registry.get(pathway.pack.id, pathway.pack.version).pack
    bands = chart_values.glucose_bands(
        ((r.id, r.when) for r in pack.rules), pack.targets.glucose, pack.snapshot
    )
    facts: dict[str, Any] = record.result.get("facts", {}) if record is not None else {}
    drawn = chart_values.patient_charts(history, facts, bands, marks, since, now)
    context = {
        "session": web,
        "team": team,
        "tz": zone,
        "patient": patient,
        "age": completed_years(patient.birth_date, today),
        "record": record,
        "result": record.result if record is not None else None,
        "pending": pending,
        "contact_flags": contact_flags,
        "referral": referral,
        "loop": referral_loop(referral) if referral is not None else [],
        "open_tasks": open_tasks,
        "medication": medication_shown,
        "plan": plan,
        "months": months,
        "charts": drawn,
        "bp_svg": markup(charts.bp_chart(drawn.bp, drawn.bp_target, since, now, t, zone)),
        "glucose_svg": markup(charts.glucose_chart(drawn.glucose, bands, since, now, t, zone)),
        "ldl_svg": markup(charts.ldl_chart(drawn.ldl, drawn.lipid_target, since, now, t, zone)),
        "tiers_svg": markup(charts.tier_timeline(drawn.tiers, since, now, t, zone)),
        "outcomes": OUTCOMES,
        "snooze": snooze_bounds(now, rules.snooze.max_days, zone),
        "unsnoozable": unsnoozable(rules.snooze),
        "next": request.url.path + (f"?{request.url.query}" if request.url.query else ""),
    }
    return render(request, state, t, "patient.html", context, started=started)
