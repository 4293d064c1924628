"""When a patient was last in contact, and when a contact flag is shown: the predicates that the
flags' SQL (:mod:`pathway.tasks.flag_store`) and the team's contact list
(:mod:`pathway.teams.contact_store`) share. A flag is shown while it is not cleared and the patient
has not been seen since the last contact it recorded.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, case, func
from sqlalchemy import select as select_columns
from sqlmodel import SQLModel

from pathway.store.rows import IN_FORCE
from pathway.store.tables import Encounter, Patient, Reading
from pathway.store.work_tables import PatientFlag

_TABLES = SQLModel.metadata.tables
_patient = _TABLES[Patient.__tablename__].c
_reading = _TABLES[Reading.__tablename__].c
_encounter = _TABLES[Encounter.__tablename__].c
_flag = _TABLES[PatientFlag.__tablename__].c


def last_contact(patient_id: Any) -> ColumnElement[datetime]:
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


def seen_since_flagged() -> ColumnElement[bool]:
    """The flag's patient (``patient`` beside the flag) has a reading or a visit after the last
    contact the flag recorded (else after registration)."""
    return last_contact(_patient.id) > func.coalesce(_flag.last_contact_at, _patient.created_at)


SHOWN = (_flag.cleared_at.is_(None), ~seen_since_flagged())
