"""SQL of the team's indicators: its patients, their clinical rows, and the period's counts.

Part of the repository layer: functions take a Session and never commit. The tiers of the
patients are :func:`pathway.teams.team_store.latest_tiers`.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from zoneinfo import ZoneInfo

from sqlalchemy import and_, bindparam, func, or_
from sqlalchemy import select as select_columns
from sqlalchemy.sql.expression import BindParameter
from sqlmodel import Session, SQLModel, col, select

from pathway.clinical.vocabulary import ReadingSource, is_self_measured
from pathway.store.rows import IN_FORCE, PRESCRIPTION_COLUMNS, READING_COLUMNS, ClinicalRows
from pathway.store.sql import IS_OPEN
from pathway.store.tables import (
    CareCheckRecord,
    Encounter,
    Patient,
    PatientComplication,
    PrescriptionRecord,
    Reading,
    Referral,
    SymptomReport,
)
from pathway.store.work_tables import CareTask
from pathway.teams.team_store import chunks

_TABLES = SQLModel.metadata.tables
_task = _TABLES[CareTask.__tablename__].c
_patient_table = _TABLES[Patient.__tablename__]
_patient = _patient_table.c
_referral = _TABLES[Referral.__tablename__].c
_encounter_table = _TABLES[Encounter.__tablename__]
_encounter = _encounter_table.c
_reading = _TABLES[Reading.__tablename__].c
_symptom = _TABLES[SymptomReport.__tablename__].c
_complication = _TABLES[PatientComplication.__tablename__].c
_check = _TABLES[CareCheckRecord.__tablename__].c
_prescription = _TABLES[PrescriptionRecord.__tablename__].c
_PRESCRIPTION_COLUMNS = (
    _prescription.patient_id,
    *PRESCRIPTION_COLUMNS,
)  # the patient, then a PrescriptionRow


def team_patients(
    session: Session, team_id: int, registered_by: datetime, zone: ZoneInfo
) -> Sequence[Patient]:
    """The team's patients registered by ``registered_by``, by id: enrolled (建档) on or before its
    date in ``zone``, or, with no enrolment date kept, stored by then. Whatever their status (a
    patient who died later was managed then: the callers compare ``status_changed_at``)."""
    enrolled, created = col(Patient.enrolled_on), col(Patient.created_at)
    statement = (
        select(Patient)
        .where(
            Patient.team_id == team_id,
            or_(
                enrolled <= registered_by.astimezone(zone).date(),
                and_(enrolled.is_(None), created <= registered_by),
            ),
        )
        .order_by(col(Patient.id))
    )
    return session.exec(statement).all()


# Written as the sources kept (not those left out), as literals: then PostgreSQL can prove that the
# condition implies the predicate of ix_reading_patient_id_measured_at_clinical, also in a generic
# plan of the prepared statement, and reads a team's clinic and lab readings without its
# self-measured streams (a team of 500 with 8 wearables: 8,000 rows read instead of 103,335).
_CLINICAL_SOURCES: BindParameter[list[str]] = bindparam(
    "clinical_sources",
    [source.value for source in ReadingSource if not is_self_measured(source.value)],
    expanding=True,
    literal_execute=True,
)


def clinical_rows(
    session: Session,
    patient_ids: Sequence[int],
    until: datetime,
    with_prescriptions: Sequence[int] = (),
) -> dict[int, ClinicalRows]:
    """Per patient: the rows :func:`pathway.patients.history.history_from_rows` takes, up to ``until``,
    without self-measured readings (the indicators read encounters and labs only). Encounters carry
    their medication answers (id, at, medications_reviewed, adherence, adverse_reaction); the
    prescriptions are read for the patients of ``with_prescriptions`` only (those with
    ``Patient.has_prescriptions``): the versions in force at ``until``, none retracted, in one
    statement per chunk."""
    rows = {patient_id: ClinicalRows() for patient_id in patient_ids}
    for chunk in chunks(patient_ids):
        statement = select_columns(_complication.patient_id, _complication.code, _complication.onset).where(
            _complication.patient_id.in_(chunk)
        )
        for patient_id, *rest in session.execute(statement.order_by(_complication.onset)):
            rows[patient_id].complications.append(tuple(rest))
        readings = (
            select_columns(_reading.patient_id, *READING_COLUMNS)
            .where(
                _reading.patient_id.in_(chunk),
                IN_FORCE,
                _reading.measured_at <= until,
                _reading.source.in_(_CLINICAL_SOURCES),
            )
            .order_by(_reading.measured_at)
        )
        for patient_id, *rest in session.execute(readings):
            rows[patient_id].readings.append(tuple(rest))
        encounters = select_columns(
            _encounter.patient_id,
            _encounter.id,
            _encounter.at,
            _encounter.medications_reviewed,
            _encounter.adherence,
            _encounter.adverse_reaction,
        ).where(_encounter.patient_id.in_(chunk), _encounter.at <= until)
        for patient_id, *rest in session.execute(encounters):
            rows[patient_id].encounters.append(tuple(rest))
        symptoms = select_columns(
            _symptom.patient_id, _symptom.encounter_id, _symptom.code, _symptom.at
        ).where(_symptom.patient_id.in_(chunk), _symptom.at <= until)
        for patient_id, *rest in session.execute(symptoms):
            rows[patient_id].symptoms.append(tuple(rest))
        checks = select_columns(_check.patient_id, _check.kind, _check.at).where(
            _check.patient_id.in_(chunk), _check.at <= until
        )
        for patient_id, *rest in session.execute(checks):
            rows[patient_id].checks.append(tuple(rest))
    for chunk in chunks(list(with_prescriptions)):
        prescriptions = (
            select_columns(*_PRESCRIPTION_COLUMNS)
            .where(
                _prescription.patient_id.in_(chunk),
                _prescription.recorded_at <= until,
                or_(_prescription.superseded_at.is_(None), _prescription.superseded_at > until),
                _prescription.retracted_at.is_(None),
            )
            .order_by(_prescription.started_on, _prescription.id)
        )
        for patient_id, *rest in session.execute(prescriptions):
            rows[patient_id].prescriptions.append(tuple(rest))
    return rows


def open_referrals_by_urgency(session: Session, team_id: int, at: datetime) -> dict[str, int]:
    """Referrals of the team's patients opened by ``at`` and still active (open or accepted)."""
    statement = (
        select_columns(_referral.urgency, func.count())
        .join(_patient_table, _patient.id == _referral.patient_id)
        .where(
            _patient.team_id == team_id,
            _referral.status.in_(("open", "accepted")),
            _referral.created_at <= at,
        )
        .group_by(_referral.urgency)
    )
    return {urgency: int(count) for urgency, count in session.execute(statement)}


def overdue_tasks(session: Session, team_id: int, before: date) -> dict[int, int]:
    """Open tasks of the team due before ``before`` (a date), counted by priority."""
    statement = (
        select_columns(_task.priority, func.count())
        .where(_task.team_id == team_id, IS_OPEN, _task.due_date < before)
        .group_by(_task.priority)
    )
    return {int(priority): int(count) for priority, count in session.execute(statement)}


def encounters_between(session: Session, team_id: int, start: datetime, end: datetime) -> int:
    statement = (
        select_columns(func.count())
        .select_from(_encounter_table)
        .join(_patient_table, _patient.id == _encounter.patient_id)
        .where(_patient.team_id == team_id, _encounter.at >= start, _encounter.at <= end)
    )
    return int(session.execute(statement).scalar_one())
