"""The GP team's daily list (JSON or CSV) and patients without contact: thin routes over
pathway.teams.daily_tasks and pathway.teams.contact_list (the indicators: api.team_indicators)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Header, Path, Query
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field

from api.deps import ClockDep, CurrentKey, SessionDep
from api.errors import error_responses
from api.tasks import FollowThroughDep
from pathway.access import permissions
from pathway.access.permissions import Caller, Role
from pathway.clinical.tiers import TeamRole
from pathway.ingest.inbound import MAX_ROW_ID, Day, Text
from pathway.store.tables import Team
from pathway.tasks.status import FlagKind
from pathway.teams import contact_list, daily_tasks, teams

router = APIRouter(prefix="/v1/teams", tags=["teams"])

TeamId = Annotated[int, Path(ge=1, le=MAX_ROW_ID, description="the team's id in this system")]


class CrisisReadingRead(BaseModel):
    """The BP reading a recheck is to confirm (a home or wearable reading at or above the crisis line)."""

    systolic: float
    diastolic: float
    measured_at: datetime
    source: str


class ListItemRead(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "task_id": 17,
                    "patient_id": 42,
                    "patient_name": "王建国",
                    "external_id": "JM-000042",
                    "kind": "follow_up_visit",
                    "subject": None,
                    "what_to_do": "面对面随访",
                    "what_to_do_en": "Follow-up visit",
                    "priority": 3,
                    "due_at": "2026-03-01T00:00:00+08:00",
                    "days_overdue": 2,
                    "time_limit_at": "2026-03-08T00:00:00+08:00",
                    "role": "gp",
                    "assignee": None,
                    "tier": "red",
                    "escalated": False,
                    "reasons": "连续两次随访血压未达标，转诊",
                    "rule_id": "htn.uncontrolled.twice",
                    "pack_version": "2020.4",
                    "latest": {"office_sbp": 162.0, "office_dbp": 98.0, "ldl_c": 3.1},
                }
            ]
        }
    )
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
    reasons: str = Field(description="the current assessment's reasons in one line")
    rule_id: str
    pack_version: str
    latest: dict[str, float | None] = Field(description="latest BP, glucose and LDL-C the rules saw")
    crisis_reading: CrisisReadingRead | None = Field(
        default=None, description="a bp_recheck's: the crisis reading it is to confirm; else null"
    )


class DailyListRead(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"team_id": 1, "date": "2026-03-03", "total": 1, "page": 1,
                                         "per_page": 50, "items": []}]}
    )  # fmt: skip
    team_id: int
    date: date
    total: int
    page: int
    per_page: int
    items: list[ListItemRead]


class PatientCardRead(BaseModel):
    """One patient's tasks on the day's list, as one card."""

    patient_id: int
    patient_name: str | None
    external_id: str
    tier: str = Field(description="the tier of the patient's newest assessment")
    reasons: str = Field(description="the current assessment's reasons in one line")
    priority: int = Field(description="the most urgent task's priority (1 is the most urgent)")
    days_overdue: int = Field(description="the most overdue task's days overdue")
    due_today: bool = Field(description="something is due that day (or listed before it is due)")
    escalated: bool
    latest: dict[str, float | None] = Field(description="latest BP, glucose and LDL-C the rules saw")
    items: list[ListItemRead] = Field(description="the patient's tasks: priority, then due date")


class DailyCardsRead(BaseModel):
    """今日任务 by patient (``group=patient``): one card per patient; ``total`` counts patients."""

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"team_id": 1, "date": "2026-03-03", "group": "patient", "total": 1,
                                         "tasks_total": 3, "page": 1, "per_page": 50, "cards": []}]}
    )  # fmt: skip
    team_id: int
    date: date
    group: Literal["patient"]
    total: int = Field(description="patients on the list")
    tasks_total: int = Field(description="their tasks on the list")
    page: int
    per_page: int = Field(description="patients a page")
    cards: list[PatientCardRead]


class FlaggedPatientRead(BaseModel):
    """A patient of the team flagged for no contact, under the most severe active flag."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "patient_id": 42,
                    "name": "王建国",
                    "external_id": "JM-000042",
                    "flag": "lost_to_follow_up",
                    "business_date": "2026-03-01",
                    "raised_at": "2026-02-28T22:00:00Z",
                    "last_contact_at": "2025-02-20T01:30:00Z",
                    "days_without_contact": 374,
                    "tier": "yellow",
                }
            ]
        }
    )
    patient_id: int
    name: str | None
    external_id: str
    flag: FlagKind
    business_date: date = Field(description="the team's day of the daily run that raised the flag")
    raised_at: datetime
    last_contact_at: datetime | None = Field(
        description="the last visit or reading when flagged; null if none since registration"
    )
    days_without_contact: int = Field(
        description="whole days, in the team's calendar, from the last contact (else registration) to today"
    )
    tier: str | None = Field(description="the tier of the newest assessment; null if never assessed")


class ContactFlagsRead(BaseModel):
    """3个月未随访 / 失访: the team's patients without contact, one item per patient."""

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"team_id": 1, "total": 1, "page": 1, "per_page": 50, "items": []}]}
    )
    team_id: int
    total: int
    page: int
    per_page: int
    items: list[FlaggedPatientRead]


def team_for(session: SessionDep, key: Caller, team_id: int, action: str, now: datetime) -> Team:
    """The team, if this key may see it (a team key: only its own); the access is audited."""
    permissions.require_role(key, Role.EHR, Role.TEAM)
    if key.role is Role.TEAM and key.team_id != team_id:
        raise teams.UnknownTeam(f"no team with id {team_id}", "team_id")  # as if it did not exist
    team = teams.require_team(session, team_id)
    permissions.audit(session, key, f"{action}:team:{team_id}", None, now)
    return team


@router.get(
    "/{team_id}/tasks",
    response_model=DailyListRead | DailyCardsRead,
    responses={
        200: {"content": {"text/csv": {"schema": {"type": "string"}}}, "description": "the day's list"},
        **error_responses(401, 403, 404, 422, 429, 503),
    },
    operation_id="team-daily-list",
)
def daily_list(
    team_id: TeamId,
    session: SessionDep,
    clock: ClockDep,
    key: CurrentKey,
    rules: FollowThroughDep,
    day: Annotated[Day | None, Query(alias="date", description="the team's date (default: today)")] = None,
    role: TeamRole | None = None,
    member: Annotated[Text | None, Query(max_length=200)] = None,
    page: Annotated[int, Query(ge=1, le=100_000)] = 1,
    per_page: Annotated[int, Query(ge=1, le=500)] = 50,
    group: Annotated[
        Literal["patient"] | None,
        Query(description="patient: one card per patient with its tasks (paged by patient)"),
    ] = None,
    accept: Annotated[Text | None, Header()] = None,
) -> Any:
    """今日任务: the team's open tasks due that day or overdue, issued, or called for and of a kind
    listed at once (emergency and urgent referrals, BP rechecks: whenever due), by priority, days
    overdue, tier. A ``bp_recheck`` carries the crisis reading it is to confirm.

    ``group=patient``: one card per patient (:class:`DailyCardsRead`), by the most urgent task's
    priority, then tier (red first), then those with something due today before those only
    overdue, then the oldest due. With ``Accept: text/csv`` the whole list (up to 5,000 rows, no
    paging, not grouped) comes as CSV to print.
    """
    now = clock.now()
    team = team_for(session, key, team_id, "team.tasks.read", now)
    day = day or teams.team_today(team, now)
    wants_csv = accept is not None and "text/csv" in accept
    limit, offset = (daily_tasks.CSV_LIMIT, 0) if wants_csv else (per_page, (page - 1) * per_page)
    query = daily_tasks.ListQuery.of(
        team,
        day,
        role=role.value if role else None,
        member=member,
        limit=limit,
        offset=offset,
        listed_at_once=[k.value for k in rules.listed_at_once.kinds],
    )
    if group == "patient" and not wants_csv:
        cards = daily_tasks.daily_cards(session, query)
        session.commit()  # the audit row
        return DailyCardsRead(
            team_id=cards.team_id,
            date=cards.date,
            group="patient",
            total=cards.total,
            tasks_total=cards.tasks_total,
            page=page,
            per_page=per_page,
            cards=[PatientCardRead.model_validate(card, from_attributes=True) for card in cards.cards],
        )
    result = daily_tasks.daily_list(session, query)
    session.commit()  # the audit row
    if wants_csv:
        return Response(
            daily_tasks.as_csv(result),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="tasks-{team_id}-{day}.csv"'},
        )
    return DailyListRead(
        team_id=result.team_id,
        date=result.date,
        total=result.total,
        page=page,
        per_page=per_page,
        items=[ListItemRead.model_validate(item, from_attributes=True) for item in result.items],
    )


@router.get(
    "/{team_id}/contact-flags",
    response_model=ContactFlagsRead,
    responses=error_responses(401, 403, 404, 422, 429, 503),
    operation_id="team-contact-flags",
)
def contact_flags(
    team_id: TeamId,
    session: SessionDep,
    clock: ClockDep,
    key: CurrentKey,
    flag: Annotated[FlagKind | None, Query(description="only the patients shown under this flag")] = None,
    page: Annotated[int, Query(ge=1, le=100_000)] = 1,
    per_page: Annotated[int, Query(ge=1, le=500)] = 50,
) -> ContactFlagsRead:
    """3个月未随访 / 失访: the team's patients without contact (PATHWAY.md §5), from the daily run.

    A patient lost to follow-up (365 days) also has ``missed_3m`` active; each patient is listed
    once, under the most severe flag, so ``flag=missed_3m`` lists those 90–364 days without
    contact. Order: ``lost_to_follow_up`` first, then the longest without contact, then patient id.
    """
    now = clock.now()
    team = team_for(session, key, team_id, "team.contact_flags.read", now)
    result = contact_list.contact_flags(
        session, team, now, flag=flag, limit=per_page, offset=(page - 1) * per_page
    )
    session.commit()  # the audit row
    return ContactFlagsRead(
        team_id=result.team_id,
        total=result.total,
        page=page,
        per_page=per_page,
        items=[FlaggedPatientRead.model_validate(item, from_attributes=True) for item in result.items],
    )
