"""The GP team's daily list (JSON or CSV), patients without contact and indicators: thin routes over
pathway.teams.team_views."""

from __future__ import annotations

from datetime import date, datetime, time
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Header, Path, Query
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field

from api.deps import ClockDep, CurrentKey, PathwayDep, SessionDep
from api.errors import error_responses
from api.tasks import FollowThroughDep
from pathway.access import permissions
from pathway.access.permissions import Caller, Role
from pathway.clinical.errors import InvalidInput
from pathway.clinical.tiers import TeamRole
from pathway.ingest.inbound import MAX_ROW_ID, Day, Text
from pathway.store.tables import Team
from pathway.tasks.status import FlagKind
from pathway.teams import team_views

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
                    "pack_version": "2020.3",
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


class ContactFlagCounts(BaseModel):
    """The team's patients flagged for no contact now (whatever the period), each counted once under
    the most severe flag: ``missed_3m`` 90–364 days without contact, ``lost_to_follow_up`` 365 and more."""

    missed_3m: int
    lost_to_follow_up: int


class RateRead(BaseModel):
    numerator: int
    denominator: int
    rate: float | None = Field(description="numerator / denominator, or null without a denominator")
    numerator_patient_ids: list[int] | None = None
    denominator_patient_ids: list[int] | None = None


class IndicatorsRead(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "team_id": 1,
                    "from": "2026-01-01",
                    "to": "2026-03-31",
                    "as_of": "2026-03-31T23:59:59+08:00",
                    "pack_version": "2020.3",
                    "managed_patients": 2,
                    "bp_control": {"numerator": 1, "denominator": 2, "rate": 0.5},
                    "glucose_control": {"numerator": 0, "denominator": 1, "rate": 0.0},
                    "standard_management": {"numerator": 1, "denominator": 2, "rate": 0.5},
                    "ldl_control_by_stratum": {"high": {"numerator": 1, "denominator": 1, "rate": 1.0}},
                    "hearts_bp_control": {"numerator": 1, "denominator": 2, "rate": 0.5},
                    "tier_distribution": {"red": 0, "yellow": 1, "blue": 1},
                    "open_referrals_by_urgency": {"urgent": 1},
                    "overdue_tasks_by_priority": {"3": 2},
                    "encounters_in_period": 5,
                    "active_contact_flags": {"missed_3m": 3, "lost_to_follow_up": 1},
                }
            ]
        },
        populate_by_name=True,
    )
    team_id: int
    from_: date = Field(alias="from")
    to: date
    as_of: datetime
    pack_version: str
    managed_patients: int
    bp_control: RateRead
    glucose_control: RateRead
    standard_management: RateRead
    ldl_control_by_stratum: dict[str, RateRead]
    hearts_bp_control: RateRead
    tier_distribution: dict[str, int]
    open_referrals_by_urgency: dict[str, int]
    overdue_tasks_by_priority: dict[int, int]
    encounters_in_period: int
    active_contact_flags: ContactFlagCounts


def _team_for(session: SessionDep, key: Caller, team_id: int, action: str, now: datetime) -> Team:
    """The team, if this key may see it (a team key: only its own); the access is audited."""
    permissions.require_role(key, Role.EHR, Role.TEAM)
    if key.role is Role.TEAM and key.team_id != team_id:
        raise team_views.UnknownTeam(f"no team with id {team_id}", "team_id")  # as if it did not exist
    team = team_views.require_team(session, team_id)
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
    team = _team_for(session, key, team_id, "team.tasks.read", now)
    day = day or team_views.team_today(team, now)
    wants_csv = accept is not None and "text/csv" in accept
    limit, offset = (team_views.CSV_LIMIT, 0) if wants_csv else (per_page, (page - 1) * per_page)
    filters: dict[str, Any] = {
        "role": role.value if role else None,
        "member": member,
        "listed_at_once": [k.value for k in rules.listed_at_once.kinds],
    }
    if group == "patient" and not wants_csv:
        cards = team_views.daily_cards(session, team, day, limit=limit, offset=offset, **filters)
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
    result = team_views.daily_list(session, team, day, limit=limit, offset=offset, **filters)
    session.commit()  # the audit row
    if wants_csv:
        return Response(
            team_views.as_csv(result),
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
    team = _team_for(session, key, team_id, "team.contact_flags.read", now)
    result = team_views.contact_flags(
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


@router.get(
    "/{team_id}/indicators",
    response_model=IndicatorsRead,
    response_model_by_alias=True,
    responses=error_responses(401, 403, 404, 422, 429, 503),
    operation_id="team-indicators",
)
def team_indicators(
    team_id: TeamId,
    session: SessionDep,
    clock: ClockDep,
    pathway: PathwayDep,
    key: CurrentKey,
    start: Annotated[Day | None, Query(alias="from", description="first day (default: 1 January)")] = None,
    end: Annotated[Day | None, Query(alias="to", description="last day (default: today)")] = None,
    detail: Annotated[bool, Query(description="list the patient ids behind every rate")] = False,
) -> IndicatorsRead:
    """PATHWAY.md §6 as of the end of ``to``: each rate with its numerator and denominator."""
    now = clock.now()
    team = _team_for(session, key, team_id, "team.indicators.read", now)
    zone = ZoneInfo(team.timezone)
    today = now.astimezone(zone).date()
    end = end or today
    start = start or date(end.year, 1, 1)
    if start > end:
        raise InvalidInput("from must not be after to", "from")
    if end > today:
        raise InvalidInput("to must not be in the future", "to")
    as_of = min(datetime.combine(end, time.max, tzinfo=zone), now)
    result, counts = team_views.team_indicators(
        session, team, pathway, datetime.combine(start, time(0), tzinfo=zone), as_of
    )
    session.commit()  # the audit row

    def rate(r: Any) -> RateRead:
        ids = {"numerator_patient_ids": r.numerator_ids, "denominator_patient_ids": r.denominator_ids}
        return RateRead(
            numerator=r.numerator, denominator=r.denominator, rate=r.rate, **(ids if detail else {})
        )

    return IndicatorsRead(
        team_id=team_id,
        from_=start,
        to=end,
        as_of=as_of,
        pack_version=pathway.pack.version,
        managed_patients=result.managed_patients,
        bp_control=rate(result.bp_control),
        glucose_control=rate(result.glucose_control),
        standard_management=rate(result.standard_management),
        ldl_control_by_stratum={k: rate(v) for k, v in result.ldl_control_by_stratum.items()},
        hearts_bp_control=rate(result.hearts_bp_control),
        tier_distribution=result.tier_distribution,
        open_referrals_by_urgency=counts.open_referrals_by_urgency,
        overdue_tasks_by_priority=counts.overdue_tasks_by_priority,
        encounters_in_period=counts.encounters,
        active_contact_flags=ContactFlagCounts.model_validate(counts.active_contact_flags),
    )
