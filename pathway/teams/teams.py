"""The GP team (家庭医生团队) itself: the team of an id, and its calendar day."""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

from sqlmodel import Session

from pathway.clinical.errors import PathwayError
from pathway.store.tables import Team
from pathway.teams import team_store


class UnknownTeam(PathwayError):
    code = "unknown-team"
    status = 404


def require_team(session: Session, team_id: int) -> Team:
    team = team_store.team_by_id(session, team_id)
    if team is None:
        raise UnknownTeam(f"no team with id {team_id}", "team_id")
    return team


def team_today(team: Team, now: datetime) -> date:
    return now.astimezone(ZoneInfo(team.timezone)).date()
