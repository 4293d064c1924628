"""The workbench's pages: the team's daily list (今日任务), its patients (患者: listed and searched), its
patients without contact (失访), the team dashboard, the team picker.

Thin routes, like the JSON API's: check the session's key may see the team (a team key: only its
own; a 404 page otherwise, as for a team that does not exist), call the same use-cases
(:mod:`pathway.teams.daily_tasks`, :mod:`~pathway.teams.contact_list`,
:mod:`~pathway.teams.patient_search`), audit the access,
render. The patient page is :mod:`api.web.patient`.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Annotated
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlmodel import Session

from api.deps import ClockDep, SessionDep
from api.tasks import FollowThroughDep
from api.web.common import PREFIX, StateDep, TDep, WebRoute, WebSessionDep, render
from pathway.access import permissions
from pathway.access.permissions import Caller, Role
from pathway.clinical.errors import InvalidInput
from pathway.clinical.policy import SnoozeLimit
from pathway.clinical.snapshot import completed_years
from pathway.clinical.tiers import TeamRole
from pathway.ingest.inbound import MAX_ROW_ID, plausible_day, storable
from pathway.store.tables import Team
from pathway.tasks import issuing_store
from pathway.tasks.status import FlagKind, TaskOutcome
from pathway.teams import contact_list, daily_tasks, patient_search, team_store, teams
from pathway.teams.daily_tasks import ListItem

router = APIRouter(prefix=PREFIX, include_in_schema=False, route_class=WebRoute)
TeamId = Annotated[int, Path(ge=1, le=MAX_ROW_ID)]
PER_PAGE = 50
OUTCOMES = [o.value for o in TaskOutcome]


def team_for(session: Session, caller: Caller, team_id: int, action: str, now: datetime) -> Team:
    """The team, if this key may see it (a team key: only its own); the access is audited."""
    permissions.require_role(caller, Role.EHR, Role.TEAM)
    if caller.role is Role.TEAM and caller.team_id != team_id:
        raise teams.UnknownTeam(f"no team with id {team_id}", "team_id")  # as if it did not exist
    team = teams.require_team(session, team_id)
    permissions.audit(session, caller, action, None, now)
    return team


def home_of(caller: Caller) -> str:
    """Where a key lands: its team's list, or the team picker (admin and EHR keys)."""
    if caller.role is Role.TEAM and caller.team_id is not None:
        return f"{PREFIX}/teams/{caller.team_id}/today"
    return f"{PREFIX}/teams"


@router.get("", response_class=HTMLResponse)
def index(web: WebSessionDep) -> Response:
    return RedirectResponse(home_of(web.caller), status_code=303)


@router.get("/teams", response_class=HTMLResponse)
def teams_page(
    request: Request, web: WebSessionDep, session: SessionDep, state: StateDep, t: TDep
) -> Response:
    """Admin and EHR keys pick a team; a team key goes straight to its own list."""
    if web.caller.role is Role.TEAM:
        return RedirectResponse(home_of(web.caller), status_code=303)
    permissions.require_role(web.caller, Role.EHR)
    found = [team_store.team_by_id(session, team_id) for team_id, _ in issuing_store.teams(session)]
    session.commit()
    return render(
        request,
        state,
        t,
        "teams.html",
        {"session": web, "team": None, "teams": [x for x in found if x is not None]},
    )


# --- 今日任务 --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Latest:
    """The latest values the rules saw, as the list shows them."""

    bp: str | None
    bp_home: str | None
    glucose: str | None
    hba1c: str | None
    ldl: str | None
    ldl_target: str | None


def latest_of(item: ListItem) -> Latest:
    values = item.latest

    def pair(s: str, d: str) -> str | None:
        sv, dv = values.get(s), values.get(d)
        return f"{sv:.0f}/{dv:.0f}" if sv is not None and dv is not None else None

    def one(name: str) -> str | None:
        value = values.get(name)
        return f"{value:.1f}" if value is not None else None

    return Latest(
        bp=pair("office_sbp", "office_dbp"),
        bp_home=pair("home_sbp_mean", "home_dbp_mean"),
        glucose=one("latest_encounter_glucose"),
        hba1c=one("hba1c"),
        ldl=one("ldl_c"),
        ldl_target=one("ldl_target"),
    )


def _optional(value: str | None) -> str | None:
    return value.strip() or None if value is not None else None


@router.get("/teams/{team_id}/today", response_class=HTMLResponse)
def today_page(
    team_id: TeamId,
    request: Request,
    web: WebSessionDep,
    session: SessionDep,
    clock: ClockDep,
    state: StateDep,
    t: TDep,
    rules: FollowThroughDep,
    day_text: Annotated[str | None, Query(alias="date", max_length=10)] = None,
    role_text: Annotated[str | None, Query(alias="role", max_length=32)] = None,
    member_text: Annotated[str | None, Query(alias="member", max_length=200)] = None,
    page: Annotated[int, Query(ge=1, le=100_000)] = 1,
) -> Response:
    """今日任务: the team's list of the day as one card per patient (most urgent first: priority,
    then red, then due today before only overdue), each task with its actions."""
    started = time.perf_counter()
    now = clock.now()
    team = team_for(session, web.caller, team_id, "team.tasks.read", now)
    zone = ZoneInfo(team.timezone)
    today = teams.team_today(team, now)
    day, role, member = _list_filters(day_text, role_text, member_text, today)
    query = daily_tasks.ListQuery.of(
        team,
        day,
        role=role,
        member=member,
        limit=PER_PAGE,
        offset=(page - 1) * PER_PAGE,
        listed_at_once=[k.value for k in rules.listed_at_once.kinds],
    )
    found = daily_tasks.daily_cards(session, query)
    items = [item for card in found.cards for item in card.items]
    reasons = daily_tasks.english_reasons(session, items) if t.lang == "en" else {}
    session.commit()  # the audit row
    cards = [(card, [(item, latest_of(item)) for item in card.items]) for card in found.cards]
    pages = max(1, math.ceil(found.total / PER_PAGE))
    members = sorted({i.assignee for i in items if i.assignee} | ({member} if member else set()))
    context = {
        "session": web,
        "team": team,
        "tz": zone,
        "day": day,
        "today": today,
        "total": found.tasks_total,
        "patients_total": found.total,
        "cards": cards,
        "reasons": reasons,
        "page": page,
        "pages": pages,
        "role": role,
        "member": member,
        "roles": [r.value for r in TeamRole],
        "members": members,
        "outcomes": OUTCOMES,
        "snooze": snooze_bounds(now, rules.snooze.max_days, zone),
        "unsnoozable": unsnoozable(rules.snooze),
        "next": request.url.path + (f"?{request.url.query}" if request.url.query else ""),
        "query": {
            "date": day.isoformat() if day != today else "",
            "role": role or "",
            "member": member or "",
        },
    }
    return render(request, state, t, "today.html", context, started=started)


def _list_filters(
    day_text: str | None, role_text: str | None, member_text: str | None, today: date
) -> tuple[date, str | None, str | None]:
    day_text, role_text, member_text = _optional(day_text), _optional(role_text), _optional(member_text)
    day = plausible_day(day_text, "date") if day_text else today
    if role_text is not None and role_text not in {r.value for r in TeamRole}:
        raise InvalidInput("unknown role", "role")
    if member_text is not None and not storable(member_text):
        raise InvalidInput("member must not contain the NUL character (U+0000)", "member")
    return day, role_text, member_text


def unsnoozable(limit: SnoozeLimit) -> set[int]:
    """The priorities the pack never snoozes (their tasks show no snooze form)."""
    return {priority for priority, days in limit.max_days_by_priority.items() if days == 0}


@dataclass(frozen=True)
class SnoozeBounds:
    min: str
    max: str
    default: str
    max_days: int


def snooze_bounds(now: datetime, max_days: int, zone: ZoneInfo) -> SnoozeBounds:
    """The datetime-local bounds of the snooze field: from now to the pack's limit (checked again on POST)."""
    fmt = "%Y-%m-%dT%H:%M"
    local = now.astimezone(zone)
    latest = local + timedelta(days=max_days)
    default = min(local + timedelta(days=1), latest)
    return SnoozeBounds(
        (local + timedelta(minutes=1)).strftime(fmt), latest.strftime(fmt), default.strftime(fmt), max_days
    )


# --- 失访管理 --------------------------------------------------------------------------------------


@router.get("/teams/{team_id}/contact", response_class=HTMLResponse)
def contact_page(
    team_id: TeamId,
    request: Request,
    web: WebSessionDep,
    session: SessionDep,
    clock: ClockDep,
    state: StateDep,
    t: TDep,
    flag_text: Annotated[str | None, Query(alias="flag", max_length=32)] = None,
    page: Annotated[int, Query(ge=1, le=100_000)] = 1,
) -> Response:
    """3个月未随访 / 失访: the team's patients without contact (PATHWAY.md §5), lost first, then the
    longest without contact; a patient seen since the flag was raised is not listed."""
    started = time.perf_counter()
    now = clock.now()
    team = team_for(session, web.caller, team_id, "team.contact_flags.read", now)
    flag = _flag_filter(flag_text)
    found = contact_list.contact_flags(
        session, team, now, flag=flag, limit=PER_PAGE, offset=(page - 1) * PER_PAGE
    )
    session.commit()  # the audit row
    context = {
        "session": web,
        "team": team,
        "tz": ZoneInfo(team.timezone),
        "total": found.total,
        "items": found.items,
        "flag": flag.value if flag else "",
        "flags": [f.value for f in FlagKind],
        "page": page,
        "pages": max(1, math.ceil(found.total / PER_PAGE)),
    }
    return render(request, state, t, "contact.html", context, started=started)


def _flag_filter(flag_text: str | None) -> FlagKind | None:
    flag_text = _optional(flag_text)
    if flag_text is None:
        return None
    try:
        return FlagKind(flag_text)
    except ValueError:
        raise InvalidInput("unknown flag", "flag") from None


# --- 患者 ------------------------------------------------------------------------------------------


@router.get("/teams/{team_id}/patients", response_class=HTMLResponse)
def patients_page(
    team_id: TeamId,
    request: Request,
    web: WebSessionDep,
    session: SessionDep,
    clock: ClockDep,
    state: StateDep,
    t: TDep,
    q: Annotated[str | None, Query(max_length=200)] = None,
    page: Annotated[int, Query(ge=1, le=100_000)] = 1,
) -> Response:
    """患者: the team's patients with their tier, or those whose name, external id or phone holds ``q``."""
    started = time.perf_counter()
    now = clock.now()
    team = team_for(session, web.caller, team_id, "patients.search", now)
    query = _optional(q)
    if query is not None and not storable(query):
        raise InvalidInput("q must not contain the NUL character (U+0000)", "q")
    found = patient_search.find_patients(
        session, team_id, query, limit=PER_PAGE, offset=(page - 1) * PER_PAGE
    )
    session.commit()  # the audit row
    today = teams.team_today(team, now)
    context = {
        "session": web,
        "team": team,
        "total": found.total,
        "items": [(item, completed_years(item.birth_date, today)) for item in found.items],
        "q": query or "",
        "page": page,
        "pages": max(1, math.ceil(found.total / PER_PAGE)),
    }
    return render(request, state, t, "patients.html", context, started=started)
