"""SQL of the contact flags (PATHWAY.md §5): ``missed_3m`` after 90 days without contact of any kind,
``lost_to_follow_up`` after 365.

Part of the repository layer: functions take a Session and never commit. The daily run raises and
clears them in bulk (:mod:`pathway.tasks.issuing`); the patient summary and the workbench read them,
the team's contact list too (:mod:`pathway.teams.contact_store`). A flag is *shown*
(:data:`pathway.store.contact.SHOWN`) while it is not cleared and the patient has not been seen
since: a reading or a visit after the last contact the flag recorded hides it at once, and the next
daily run clears it for good (the same condition), so a patient who comes back is not listed as
lost for the rest of the day.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime

from sqlalchemy import Insert, literal, update
from sqlalchemy import select as select_columns
from sqlmodel import Session, SQLModel, col, select

from pathway.store.contact import SHOWN, last_contact, seen_since_flagged
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


def clear_flags(session: Session, scope: Scope, flags: Sequence[str], now: datetime) -> int:
    """Clear active flags of patients seen (a reading or an encounter) since the flag was raised."""
    seen_again = (
        select_columns(_patient.id)
        .where(_patient.id == _flag.patient_id, scope.patients(), seen_since_flagged())
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
    contact = last_contact(_patient.id).label("last_contact_at")
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
        .where(col(PatientFlag.patient_id) == patient_id, *SHOWN)
        .order_by(col(PatientFlag.raised_at), col(PatientFlag.id))
    )
    return session.exec(statement).all()


def clear_patient_flags(session: Session, patient_id: int, now: datetime) -> int:
    """Clear the patient's active flags (management ended: nobody is to contact them); how many."""
    statement = (
        update(_flag_table)
        .where(_flag.patient_id == patient_id, _flag.cleared_at.is_(None))
        .values(cleared_at=now)
        .returning(_flag.id)
    )
    return len(session.execute(statement).all())
