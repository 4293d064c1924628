"""The workbench's team dashboard (团队看板): the indicators now and at each month end, drawn.

A thin route like :mod:`api.web.pages`' (the same check of the team, audited); the indicators over
months are computed off the request (:mod:`api.web.dashboard`).
"""

from __future__ import annotations

import math
import time
from datetime import datetime
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, Response

from api.deps import ClockDep, PathwayDep, SessionDep
from api.web import dashboard, dashboard_charts
from api.web.common import PREFIX, StateDep, TDep, WebRoute, WebSessionDep, markup, render
from api.web.i18n import Translator
from api.web.pages import TeamId, team_for
from pathway.clinical.tiers import RiskTier
from pathway.patients import retier
from pathway.teams import indicator_store
from pathway.teams.indicators import TeamIndicators
from pathway.teams.rates import Rate

router = APIRouter(prefix=PREFIX, include_in_schema=False, route_class=WebRoute)

RATES = ("bp_control", "glucose_control", "standard_management", "hearts_bp_control")
# PATHWAY.md §7 (under a pack with medication indicators): attributes of MedicationRates.
MEDICATION_RATES = (
    "regular_adherence",
    "statin_use_ascvd",
    "statin_use_high_risk",
    "antihypertensive_combination",
)


@router.get("/teams/{team_id}/dashboard", response_class=HTMLResponse)
def dashboard_page(
    team_id: TeamId,
    request: Request,
    web: WebSessionDep,
    session: SessionDep,
    clock: ClockDep,
    pathway: PathwayDep,
    state: StateDep,
    t: TDep,
    months: Annotated[int, Query(ge=2, le=24)] = 12,
) -> Response:
    """The indicators now and at each month end, tier distribution, overdue tasks, active referrals."""
    started = time.perf_counter()
    now = clock.now()
    team = team_for(session, web.caller, team_id, "team.indicators.read", now)
    zone = ZoneInfo(team.timezone)
    today = now.astimezone(zone).date()
    year_start = datetime(today.year, 1, 1, tzinfo=zone)
    overdue = indicator_store.overdue_tasks(session, team_id, today)
    referrals = indicator_store.open_referrals_by_urgency(session, team_id, now)
    encounters = indicator_store.encounters_between(session, team_id, year_start, now)
    edition = retier.edition_status(session, pathway)  # the whole population's, not the team's
    session.commit()  # the audit row
    engine, timezone = request.app.state.engine, team.timezone
    data, refreshing = state.dashboards.get(
        (team_id, months, pathway.pack.sha256),
        lambda: dashboard.compute(engine, pathway, team_id, timezone, months, now),
    )
    context: dict[str, Any] = {
        "session": web,
        "team": team,
        "tz": zone,
        "months": months,
        "data": data,
        "refreshing": refreshing,
        "overdue": sorted(overdue.items()),
        "overdue_total": sum(overdue.values()),
        "referrals": referrals,
        "referrals_total": sum(referrals.values()),
        "encounters": encounters,
        "pack_version": pathway.pack.version,
        "edition": edition,
    }
    if data is not None:
        order = {s: float(v) for s, v in pathway.targets.lipids.ldl_targets.items()}
        context.update(_dashboard_charts(data, t, zone, order))
    return render(request, state, t, "dashboard.html", context, started=started)


def _dashboard_charts(
    data: dashboard.DashboardData, t: Translator, zone: ZoneInfo, ldl_targets: dict[str, float]
) -> dict[str, Any]:
    """The charts of one computed dashboard; strata ordered as the pack's targets (strictest first)."""
    current = data.current
    series = [
        dashboard_charts.Series(name, t(f"ind.{name}"), [_rate(i, name).rate for i in data.trend])
        for name in RATES
    ]
    trend = dashboard_charts.trend_chart("indicators", t("dash.trend"), data.moments, series, t, zone)
    strata = sorted(
        {s for i in data.trend for s in i.ldl_control_by_stratum},
        key=lambda s: (ldl_targets.get(s, math.inf), s),
    )
    ldl_series = [
        dashboard_charts.Series(s, t.word("stratum", s), [_ldl(i, s) for i in data.trend]) for s in strata
    ]
    ldl_trend = dashboard_charts.trend_chart("ldl", t("dash.ldl_trend"), data.moments, ldl_series, t, zone)
    tiers = [
        (tier.value, t.word("tier", tier.value), current.tier_distribution.get(tier.value, 0))
        for tier in sorted(RiskTier, key=lambda r: -r.severity)
    ]
    return {
        "current": current,
        "rates": [(name, _rate(current, name)) for name in RATES],
        "medication_rates": [
            (name, getattr(current.medication, name)) for name in MEDICATION_RATES if current.medication
        ],
        "ldl_rates": [
            (s, current.ldl_control_by_stratum[s]) for s in strata if s in current.ldl_control_by_stratum
        ],
        "trend_svg": markup(trend),
        "trend_legend": [s.label for s in series],
        "ldl_legend": [s.label for s in ldl_series],
        "ldl_svg": markup(ldl_trend),
        "tiers_svg": markup(dashboard_charts.stacked_bar("tier-distribution", tiers, t)),
        "tiers": tiers,
    }


def _rate(indicators: TeamIndicators, name: str) -> Rate:
    rate: Rate = getattr(indicators, name)
    return rate


def _ldl(indicators: TeamIndicators, stratum: str) -> float | None:
    rate = indicators.ldl_control_by_stratum.get(stratum)
    return rate.rate if rate is not None else None
