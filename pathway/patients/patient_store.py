"""SQL of patients and their assessments: a patient's row (by id, by external id, with its write
lock), its complications and the assessments stored of it.

Part of the repository layer: functions take a Session and never commit: the request, job or
command owns the transaction. The history a reassessment reads is in
:mod:`pathway.patients.history_store`; the patient search in :mod:`pathway.teams.search_store`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import delete, insert, literal_column
from sqlalchemy import select as select_columns
from sqlalchemy.orm import aliased
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
_before = aliased(_assessment, name="before")
# The inserted row's columns, qualified (SQLAlchemy renders RETURNING's own columns bare, which in
# the subquery SQLite reads as the alias's: ambiguous).
_INSERTED_PATIENT: Any = literal_column(f"{AssessmentRecord.__tablename__}.patient_id")
_INSERTED_ID: Any = literal_column(f"{AssessmentRecord.__tablename__}.id")


def _of_the_one_before(column: Any) -> Any:
    """``column`` of the patient's assessment stored just before the inserted one (a correlated
    subquery of RETURNING: the (patient, id) index, newest first; patient writes take turns)."""
    return (
        select_columns(column)
        .where(_before.c.patient_id == _INSERTED_PATIENT, _before.c.id < _INSERTED_ID)
        .order_by(_before.c.id.desc())
        .limit(1)
        .scalar_subquery()
    )


_INSERT_ASSESSMENT = insert(_assessment).returning(
    _assessment.c.id, _of_the_one_before(_before.c.tier), _of_the_one_before(_before.c.referral_urgency)
)


def insert_assessment(session: Session, values: dict[str, Any]) -> tuple[int, tuple[str, str | None] | None]:
    """Store one assessment (a Core INSERT, no ORM object): its id, and the (tier, referral
    urgency) of the one stored before it, if any — what the outbox's events compare with — in the
    same round trip."""
    assessment_id, tier, urgency = session.execute(_INSERT_ASSESSMENT, values).one()
    return int(assessment_id), (str(tier), urgency) if tier is not None else None


def insert_assessments(session: Session, rows: list[dict[str, Any]]) -> dict[int, int]:
    """Store a batch of assessments, one a patient, in multi-row INSERTs with RETURNING; their ids by
    patient. (The order of RETURNING is not asked for: on SQLite that makes it one row a statement.)"""
    if not rows:
        return {}
    statement = insert(_assessment).returning(_assessment.c.id, _assessment.c.patient_id)
    return {int(patient_id): int(i) for i, patient_id in session.execute(statement, rows)}


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


def complications_of(session: Session, patient_id: int) -> list[PatientComplication]:
    statement = select(PatientComplication).where(col(PatientComplication.patient_id) == patient_id)
    return list(session.exec(statement.order_by(col(PatientComplication.code))).all())
