"""SQL of patients and their assessments: a patient's row (by id, by external id, with its write
lock), its complications and the assessments stored of it; and the patient search: a team's
patients (or every patient), found by name, external id or phone.

Part of the repository layer: functions take a Session and never commit: the request, job or
command owns the transaction. The history a reassessment reads is in
:mod:`pathway.patients.history_store`.

A team's patients are one range of ``ix_patient_team_id``; the text tests run on those rows only (a
team has a few thousand patients), so no text index is kept. The phone is matched on its digits:
``138-0013 8000`` is found by ``13800138000`` and by ``0013 8000``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from sqlalchemy import ColumnElement, case, delete, func, insert, or_
from sqlalchemy import select as select_columns
from sqlmodel import Session, SQLModel, col, select

from pathway.store.tables import AssessmentRecord, Patient, PatientComplication


def patient_by_external_id(session: Session, source_system: str, external_id: str) -> Patient | None:
    statement = select(Patient).where(
        Patient.source_system == source_system, Patient.external_id == external_id
    )
    return session.exec(statement).first()


def has_patients(session: Session) -> bool:
    return session.exec(select(Patient.id).limit(1)).first() is not None


# The patient's write lock: PostgreSQL's FOR NO KEY UPDATE. Writers take turns on it, but, unlike
# FOR UPDATE, it does not conflict with the KEY SHARE lock that inserting a row referring to the
# patient takes (the foreign-key check): the audit row every read of the patient writes.
_WRITE_LOCK: dict[str, bool] = {"key_share": True}


def patient_by_id(session: Session, patient_id: int, *, for_update: bool = False) -> Patient | None:
    """The patient; ``for_update`` also takes its write lock until the transaction ends (PostgreSQL:
    writes to one patient's history take turns, so each reassessment sees every reading committed
    before it; reads take no lock and are not held up; SQLite has a single writer already and
    ignores it)."""
    return session.get(Patient, patient_id, with_for_update=_WRITE_LOCK if for_update else None)


def lock_patient_if_free(session: Session, patient_id: int) -> Patient | None:
    """The patient with its write lock, taken until the transaction ends, if no other transaction
    holds it; else None at once, without waiting (``SKIP LOCKED``; SQLite has no row locks, so there
    it is always free). Its attributes are read again, as committed now."""
    lock = {**_WRITE_LOCK, "skip_locked": True}
    return session.get(Patient, patient_id, with_for_update=lock, populate_existing=True)


_TABLES = SQLModel.metadata.tables
_assessment = _TABLES[AssessmentRecord.__tablename__]
_INSERT_ASSESSMENT = insert(_assessment).returning(_assessment.c.id)


def insert_assessment(session: Session, values: dict[str, Any]) -> int:
    """Store one assessment (a Core INSERT, no ORM object); its id."""
    return int(session.execute(_INSERT_ASSESSMENT, values).scalar_one())


def replace_complications(session: Session, patient_id: int, items: list[PatientComplication]) -> None:
    session.execute(delete(PatientComplication).where(col(PatientComplication.patient_id) == patient_id))
    session.add_all(items)


def latest_assessment(session: Session, patient_id: int) -> AssessmentRecord | None:
    statement = (
        select(AssessmentRecord)
        .where(AssessmentRecord.patient_id == patient_id)
        .order_by(col(AssessmentRecord.id).desc())  # the last stored: patient writes take turns
        .limit(1)  # Result.first() adds no LIMIT: without it every stored assessment was loaded
    )
    return session.exec(statement).first()


def assessments_of(session: Session, patient_id: int, limit: int = 100) -> Sequence[AssessmentRecord]:
    statement = (
        select(AssessmentRecord)
        .where(AssessmentRecord.patient_id == patient_id)
        # Newest first in the order they were made (a patient's writes take turns): the (patient_id,
        # id) index serves it; by evaluated_at, every one of the patient's assessments was sorted.
        .order_by(col(AssessmentRecord.id).desc())
        .limit(limit)
    )
    return session.exec(statement).all()


_patient_table = SQLModel.metadata.tables[Patient.__tablename__]
_patient = _patient_table.c
# A query made only of what a phone number holds is also looked for among the phones' digits.
_PHONE_LIKE = re.compile(r"[0-9+ -]+")


def _phone_digits() -> ColumnElement[str]:
    return func.replace(func.replace(func.replace(_patient.phone, " ", ""), "-", ""), "+", "")


def _matching(query: str) -> ColumnElement[bool]:
    found = [
        _patient.name.icontains(query, autoescape=True),
        _patient.external_id.icontains(query, autoescape=True),
    ]
    digits = re.sub(r"[^0-9]", "", query)
    if digits and _PHONE_LIKE.fullmatch(query):
        found.append(_phone_digits().contains(digits, autoescape=True))
    return or_(*found)


def search(
    session: Session, *, team_id: int | None, query: str | None, limit: int, offset: int
) -> tuple[int, Sequence[Any]]:
    """(total, page) of the patients of ``team_id`` (every patient when None) matching ``query`` (all
    when None): an exact external id first, then by registration (patient id)."""
    conditions: list[ColumnElement[bool]] = []
    if team_id is not None:
        conditions.append(_patient.team_id == team_id)
    if query:
        conditions.append(_matching(query))
    exact = case((_patient.external_id == query, 0), else_=1) if query else None
    statement = (
        select_columns(
            _patient.id,
            _patient.source_system,
            _patient.external_id,
            _patient.team_id,
            _patient.name,
            _patient.phone,
            _patient.sex,
            _patient.birth_date,
            func.count().over().label("total"),
        )
        .where(*conditions)
        .order_by(*([exact] if exact is not None else []), _patient.id)
        .limit(limit)
        .offset(offset)
    )
    page = session.execute(statement).all()
    if page or offset == 0:
        return (int(page[0].total) if page else 0), page
    total = session.execute(select_columns(func.count()).select_from(_patient_table).where(*conditions))
    return int(total.scalar_one()), page
