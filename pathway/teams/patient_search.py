"""The GP team's patients (患者), listed and searched, as a use-case. Nothing here commits."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from sqlmodel import Session

from pathway.teams import search_store, team_store


@dataclass
class FoundPatient:
    id: int
    source_system: str
    external_id: str
    team_id: int | None
    name: str | None
    phone: str | None
    sex: str
    birth_date: date
    tier: str | None


@dataclass
class PatientList:
    total: int
    items: list[FoundPatient]


def find_patients(
    session: Session, team_id: int | None, query: str | None, *, limit: int, offset: int
) -> PatientList:
    """The patients of a team (every patient when ``team_id`` is None) whose name or external id
    holds ``query`` (any case), or whose phone holds its digits; each with the newest assessment's
    tier. An exact external id comes first, then registration order."""
    query = query.strip() if query else None
    total, rows = search_store.search(
        session, team_id=team_id, query=query or None, limit=limit, offset=offset
    )
    tiers = team_store.latest_tiers(session, sorted({row.id for row in rows}))
    items = [
        FoundPatient(
            id=row.id,
            source_system=row.source_system,
            external_id=row.external_id,
            team_id=row.team_id,
            name=row.name,
            phone=row.phone,
            sex=row.sex,
            birth_date=row.birth_date,
            tier=tiers.get(row.id),
        )
        for row in rows
    ]
    return PatientList(total=total, items=items)
