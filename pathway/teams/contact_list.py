"""The GP team's patients without contact (3个月未随访 / 失访, PATHWAY.md §5) as a use-case.

The daily run flags ``missed_3m`` after 90 days without contact and ``lost_to_follow_up`` after 365
(a patient lost to follow-up keeps ``missed_3m`` too). The team list shows each flagged patient
once, under the most severe flag, so the two groups do not overlap: ``missed_3m`` is 90–364 days,
``lost_to_follow_up`` 365 and more; the indicators count the same way. Nothing here commits.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from zoneinfo import ZoneInfo

from sqlmodel import Session

from pathway.store.tables import Team
from pathway.tasks.status import FlagKind
from pathway.teams import contact_store, team_store

# Most severe first: the order of the team's list of flagged patients, and the flag each is shown under.
FLAG_SEVERITY = (FlagKind.LOST_TO_FOLLOW_UP, FlagKind.MISSED_3M)
_FLAG_RANK = {flag.value: rank for rank, flag in enumerate(FLAG_SEVERITY)}


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
    total, rows = contact_store.team_flags(
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
    found = contact_store.team_flag_counts(session, team.id, _FLAG_RANK)
    return {flag.value: found.get(flag.value, 0) for flag in FlagKind}
