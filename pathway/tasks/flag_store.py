"""SQL of the contact flags (PATHWAY.md §5): ``missed_3m`` after 90 days without contact of any kind,
``lost_to_follow_up`` after 365.

Part of the repository layer: functions take a Session and never commit. The daily run raises and
clears them in bulk (:mod:`pathway.tasks.issuing`); the patient summary, the workbench and the team views
read them. A flag is *shown* while it is not cleared and the patient has not been seen since: a
reading or a visit after the last contact the flag recorded hides it at once, and the next daily
run clears it for good (the same condition), so a patient who comes back is not listed as lost
for the rest of the day.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from typing import Any

from sqlalchemy import ColumnElement, Insert, case, func, literal, update
from sqlalchemy import select as select_columns
from sqlmodel import Session, SQLModel, col, select

from pathway.store.rows import IN_FORCE
from pathway.store.sql import dialect_insert
from pathway.store.tables import Encounter, Patient, Reading
from pathway.store.work_tables import PatientFlag
from pathway.tasks.issuing_store import Scope

_TABLES = SQLModel.metadata.tables
_patient_table = _TABLES[Patient.__tablename__]
_patient = _patient_table.c
_reading = _TABLES[Reading.__tablename__].c
_encounter = _TABLES[Encounter.__tablename__].c
_flag_table = _TABLES[PatientFlag.__tablename__]
_flag = _flag_table.c
_FLAGGED_PATIENTS = _flag_table.join(_patient_table, _patient.id == _flag.patient_id)


def _last_contact(patient_id: Any) -> ColumnElement[datetime]:
    """The latest encounter or reading of a patient, else when the patient was registered."""
    latest = func.max(_reading.measured_at)
    reading = select_columns(latest).where(_reading.patient_id == patient_id, IN_FORCE).scalar_subquery()
    encounter = (
        select_columns(func.max(_encounter.at)).where(_encounter.patient_id == patient_id).scalar_subquery()
    )
    later = case(
        (reading.is_(None), encounter),
        (encounter.is_(None), reading),
        (reading > encounter, reading),
        else_=encounter,
    )
    return func.coalesce(later, _patient.created_at, type_=_patient.created_at.type)


def _seen_since_flagged() -> ColumnElement[bool]:
    """The flag's patient (``patient`` beside the flag) has a reading or a visit after the last
    contact the flag recorded (else after registration)."""
    return _last_contact(_patient.id) > func.coalesce(_flag.last_contact_at, _patient.created_at)


_SHOWN = (_flag.cleared_at.is_(None), ~_seen_since_flagged())


def clear_flags(session: Session, scope: Scope, flags: Sequence[str], now: datetime) -> int:
    """Clear active flags of patients seen (a reading or an encounter) since the flag was raised."""
    seen_again = (
        select_columns(_patient.id)
        .where(_patient.id == _flag.patient_id, scope.patients(), _seen_since_flagged())
        .exists()
    )
    statement = (
        update(_flag_table)
        .where(_flag.cleared_at.is_(None), _flag.flag.in_(list(flags)), seen_again)
        .values(cleared_at=now)
        .returning(_flag.id)
    )
    return len(session.execute(statement).all())


def raise_flag(
    session: Session, scope: Scope, flag: str, contact_before: datetime, business_date: date, now: datetime
) -> list[int]:
    """Flag (once) every patient in scope whose last contact is before ``contact_before``; their ids."""
    contact = _last_contact(_patient.id).label("last_contact_at")
    candidates = (
        select_columns(_patient.id.label("patient_id"), contact).where(scope.patients()).subquery("contacts")
    )
    rows = select_columns(
        candidates.c.patient_id,
        literal(flag).label("flag"),
        literal(business_date, _flag.business_date.type).label("business_date"),
        literal(now, _flag.raised_at.type).label("raised_at"),
        candidates.c.last_contact_at,
    ).where(candidates.c.last_contact_at < literal(contact_before, _flag.raised_at.type))
    statement: Insert = (
        dialect_insert(session)(_flag_table)
        .from_select(["patient_id", "flag", "business_date", "raised_at", "last_contact_at"], rows)
        .on_conflict_do_nothing()
        .returning(_flag.patient_id)
    )
    return [int(p) for (p,) in session.execute(statement)]


def shown_flags(session: Session, patient_id: int) -> Sequence[PatientFlag]:
    """The patient's shown contact flags (``missed_3m``, ``lost_to_follow_up``), oldest first."""
    statement = (
        select(PatientFlag)
        .join(_patient_table, _patient.id == _flag.patient_id)
        .where(col(PatientFlag.patient_id) == patient_id, *_SHOWN)
        .order_by(col(PatientFlag.raised_at), col(PatientFlag.id))
    )
    return session.exec(statement).all()


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
    return [_patient.team_id == team_id, *_SHOWN, ~more_severe]


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


def clear_patient_flags(session: Session, patient_id: int, now: datetime) -> int:
    """Clear the patient's active flags (management ended: nobody is to contact them); how many."""
    statement = (
        update(_flag_table)
        .where(_flag.patient_id == patient_id, _flag.cleared_at.is_(None))
        .values(cleared_at=now)
        .returning(_flag.id)
    )
    return len(session.execute(statement).all())
