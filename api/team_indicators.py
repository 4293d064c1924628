"""The GP team's indicators (绩效考核, PATHWAY.md §6 and the §7 additions): a thin route over
pathway.teams.indicators."""

from __future__ import annotations

from datetime import date, datetime, time
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict, Field

from api.deps import ClockDep, CurrentKey, PathwayDep, SessionDep
from api.errors import error_responses
from api.teams import TeamId, team_for
from pathway.clinical.errors import InvalidInput
from pathway.ingest.inbound import Day
from pathway.teams import indicators

router = APIRouter(prefix="/v1/teams", tags=["teams"])


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
                    "pack_version": "2020.4",
                    "managed_patients": 2,
                    "bp_control": {"numerator": 1, "denominator": 2, "rate": 0.5},
                    "glucose_control": {"numerator": 0, "denominator": 1, "rate": 0.0},
                    "standard_management": {"numerator": 1, "denominator": 2, "rate": 0.5},
                    "ldl_control_by_stratum": {"high": {"numerator": 1, "denominator": 1, "rate": 1.0}},
                    "hearts_bp_control": {"numerator": 1, "denominator": 2, "rate": 0.5},
                    "tier_distribution": {"red": 0, "yellow": 1, "blue": 1},
                    "regular_adherence": {"numerator": 1, "denominator": 2, "rate": 0.5},
                    "statin_use_ascvd": {"numerator": 1, "denominator": 1, "rate": 1.0},
                    "statin_use_high_risk": {"numerator": 1, "denominator": 2, "rate": 0.5},
                    "antihypertensive_combination": {"numerator": 1, "denominator": 2, "rate": 0.5},
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
    regular_adherence: RateRead | None = Field(
        None,
        description="规律服药率 (§7): latest adherence recorded in the pack's window is regular / "
        "patients with one recorded; null under a pack without medication indicators",
    )
    statin_use_ascvd: RateRead | None = Field(
        None, description="他汀使用率 (§7) among ASCVD patients: on a statin / ASCVD patients"
    )
    statin_use_high_risk: RateRead | None = Field(
        None,
        description="他汀使用率 (§7) among patients of the pack's lipid strata (high or above): "
        "on a statin / those patients",
    )
    antihypertensive_combination: RateRead | None = Field(
        None,
        description="降压药联合治疗率 (§7): hypertensive patients on at least the pack's number of "
        "antihypertensive classes / hypertensive patients on any",
    )
    open_referrals_by_urgency: dict[str, int]
    overdue_tasks_by_priority: dict[int, int]
    encounters_in_period: int
    active_contact_flags: ContactFlagCounts


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
    """PATHWAY.md §6 (and §7's medication rates) as of the end of ``to``: each rate with its
    numerator and denominator."""
    now = clock.now()
    team = team_for(session, key, team_id, "team.indicators.read", now)
    zone = ZoneInfo(team.timezone)
    today = now.astimezone(zone).date()
    end = end or today
    start = start or date(end.year, 1, 1)
    if start > end:
        raise InvalidInput("from must not be after to", "from")
    if end > today:
        raise InvalidInput("to must not be in the future", "to")
    as_of = min(datetime.combine(end, time.max, tzinfo=zone), now)
    result, counts = indicators.team_indicators(
        session, team, pathway, datetime.combine(start, time(0), tzinfo=zone), as_of
    )
    session.commit()  # the audit row

    def rate(r: Any) -> RateRead:
        ids = {"numerator_patient_ids": r.numerator_ids, "denominator_patient_ids": r.denominator_ids}
        return RateRead(
            numerator=r.numerator, denominator=r.denominator, rate=r.rate, **(ids if detail else {})
        )

    treated = result.medication
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
        regular_adherence=rate(treated.regular_adherence) if treated else None,
        statin_use_ascvd=rate(treated.statin_use_ascvd) if treated else None,
        statin_use_high_risk=rate(treated.statin_use_high_risk) if treated else None,
        antihypertensive_combination=rate(treated.antihypertensive_combination) if treated else None,
        open_referrals_by_urgency=counts.open_referrals_by_urgency,
        overdue_tasks_by_priority=counts.overdue_tasks_by_priority,
        encounters_in_period=counts.encounters,
        active_contact_flags=ContactFlagCounts.model_validate(counts.active_contact_flags),
    )
