"""SQL of the team's contact list (失访管理): the team's patients with a shown contact flag, each
under its most severe flag, paged and counted.

Part of the repository layer: functions take a Session and never commit. Flags are raised and
cleared by the daily run (:mod:`pathway.tasks.flag_store`); when one is shown is
:data:`pathway.store.contact.SHOWN`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import case, func
from sqlalchemy import select as select_columns
from sqlmodel import Session, SQLModel

from pathway.store.contact import SHOWN
from pathway.store.tables import Patient
from pathway.store.work_tables import PatientFlag

_TABLES = SQLModel.metadata.tables
_patient_table = _TABLES[Patient.__tablename__]
_patient = _patient_table.c
_flag_table = _TABLES[PatientFlag.__tablename__]
_flag = _flag_table.c
_FLAGGED_PATIENTS = _flag_table.join(_patient_table, _patient.id == _flag.patient_id)


def _team_flags(team_id: int, flag_rank: dict[str, int]) -> list[Any]:
    """The team's shown contact flags, each patient's most severe only (``flag_rank``: 0 most severe):
    a patient lost to follow-up also has ``missed_3m`` active, and is shown (and counted) once. The
    two flags of a patient recorded the same last contact, so a contact since hides both."""
    worse = _flag_table.alias("worse")
    more_severe = (
        select_columns(worse.c.id)
        .where(
            worse.c.patient_id == _flag.patient_id,
            worse.c.cleared_at.is_(None),
            case(flag_rank, value=worse.c.flag, else_=len(flag_rank))
            < case(flag_rank, value=_flag.flag, else_=len(flag_rank)),
        )
        .exists()
    )
    return [_patient.team_id == team_id, *SHOWN, ~more_severe]


def team_flags(
    session: Session, team_id: int, flag_rank: dict[str, int], *, flag: str | None, limit: int, offset: int
) -> tuple[int, Sequence[Any]]:
    """(total, page) of the team's patients with a shown contact flag, once each under the most
    severe: by flag (``flag_rank``), then the oldest last contact (else registration), then patient."""
    conditions = _team_flags(team_id, flag_rank)
    if flag is not None:
        conditions.append(_flag.flag == flag)
    statement = (
        select_columns(
            _flag.patient_id,
            _flag.flag,
            _flag.business_date,
            _flag.raised_at,
            _flag.last_contact_at,
            _patient.name,
            _patient.external_id,
            _patient.created_at,
            func.count().over().label("total"),
        )
        .select_from(_FLAGGED_PATIENTS)
        .where(*conditions)
        .order_by(
            case(flag_rank, value=_flag.flag, else_=len(flag_rank)),
            func.coalesce(_flag.last_contact_at, _patient.created_at),
            _flag.patient_id,
        )
        .limit(limit)
        .offset(offset)
    )
    page = session.execute(statement).all()
    if page or offset == 0:
        return (int(page[0].total) if page else 0), page
    total = session.execute(
        select_columns(func.count()).select_from(_FLAGGED_PATIENTS).where(*conditions)
    ).scalar_one()
    return int(total), page


def team_flag_counts(session: Session, team_id: int, flag_rank: dict[str, int]) -> dict[str, int]:
    """The team's patients with a shown contact flag, by their most severe flag."""
    statement = (
        select_columns(_flag.flag, func.count())
        .select_from(_FLAGGED_PATIENTS)
        .where(*_team_flags(team_id, flag_rank))
        .group_by(_flag.flag)
    )
    return {str(flag): int(count) for flag, count in session.execute(statement)}
