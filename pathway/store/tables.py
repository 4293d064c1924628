"""Table models (SQLModel ``table=True`` only) of the care record: teams, patients and their
history (visits, readings, symptoms, checks), assessments and referrals. The tables of the work
around it (kept answers, API keys, sessions, audit, care tasks, scheduler runs, flags) are in
:mod:`pathway.store.work_tables`; whatever needs ``SQLModel.metadata`` whole imports both.

Instants are stored in UTC (SQLModel's datetime type: ``timestamptz`` on PostgreSQL, aware UTC on
both dialects); values as received are kept beside canonical ones. Unique keys make ingest
idempotent: a reading's identity ``(patient_id, source_system, source_reading_id)`` and its natural
key ``(patient_id, kind, measured_at, device_key, value_key)``, both over current versions only (a
superseded version is kept, out of both). Schema changes go through Alembic
(``pathway/store/migrations``); table models do not validate, so API input is validated before it
gets here.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import JSON, Index, UniqueConstraint, false, or_, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlmodel import Field, SQLModel, col

from pathway.clinical.vocabulary import ReadingSource

SQLModel.metadata.naming_convention = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

JSON_TYPE = JSON().with_variant(JSONB(), "postgresql")


class Team(SQLModel, table=True):
    """A family-doctor team (家庭医生团队) at one level of the 三高 network."""

    __tablename__ = "team"
    id: int | None = Field(default=None, primary_key=True)
    code: str = Field(max_length=64, unique=True)
    name: str = Field(max_length=200)
    institution_level: str = Field(max_length=16)  # home 三高之家 | base 三高基地 | center 三高中心
    timezone: str = Field(default="Asia/Shanghai", max_length=64)


class Patient(SQLModel, table=True):
    __tablename__ = "patient"
    __table_args__ = (UniqueConstraint("source_system", "external_id"),)
    id: int | None = Field(default=None, primary_key=True)
    source_system: str = Field(max_length=64)
    external_id: str = Field(max_length=128)
    team_id: int | None = Field(default=None, foreign_key="team.id", index=True)
    name: str | None = Field(default=None, max_length=200)
    phone: str | None = Field(default=None, max_length=32)  # as the EHR sent it (digits, +, -, spaces)
    sex: str = Field(max_length=8)
    birth_date: date
    conditions: list[str] = Field(default_factory=list, sa_type=JSON_TYPE)
    smoker: bool = False
    pregnant: bool = False
    created_at: datetime
    updated_at: datetime
    # Set when an evaluation failed after the patient's data was stored: the patient awaits one.
    reassessment_due_since: datetime | None = Field(default=None, index=True)
    # 建档日期: the day the patient was enrolled in management (registration for the indicators);
    # NULL for patients stored before it was kept: then the day they were created.
    enrolled_on: date | None = None
    # active | deceased | moved: management ends with death or a move (no new tasks or referrals,
    # out of the indicators from then on); the history is kept. ``status_changed_at``: when it ended.
    status: str = Field(default="active", max_length=16, sa_column_kwargs={"server_default": "active"})
    status_changed_at: datetime | None = None
    # Set when the patient's first prescription is stored: a reassessment reads the prescription
    # table only for patients who have some (a gateway's batch for the others costs no query more).
    has_prescriptions: bool = Field(default=False, sa_column_kwargs={"server_default": false()})


class PatientComplication(SQLModel, table=True):
    __tablename__ = "patient_complication"
    __table_args__ = (UniqueConstraint("patient_id", "code"),)
    id: int | None = Field(default=None, primary_key=True)
    patient_id: int = Field(foreign_key="patient.id", index=True)
    code: str = Field(max_length=32)
    onset: date


class Encounter(SQLModel, table=True):
    """A clinic visit (随访/门诊)."""

    __tablename__ = "encounter"
    __table_args__ = (UniqueConstraint("source_system", "source_encounter_id"),)
    id: int | None = Field(default=None, primary_key=True)
    patient_id: int = Field(foreign_key="patient.id", index=True)
    at: datetime
    source_system: str = Field(max_length=64)
    source_encounter_id: str | None = Field(default=None, max_length=128)
    received_at: datetime
    # What the visit recorded of the medication (PATHWAY.md §7): reviewed ("takes none" included),
    # 服药依从性 (regular | intermittent | none; NULL: not asked), 药物不良反应 (NULL: not asked).
    medications_reviewed: bool = Field(default=False, sa_column_kwargs={"server_default": false()})
    adherence: str | None = Field(default=None, max_length=16)
    adverse_reaction: bool | None = None
    adverse_reaction_text: str | None = Field(default=None, max_length=500)


class Reading(SQLModel, table=True):
    """One measurement: canonical value(s) for the rules, and the numbers and unit as received."""

    __tablename__ = "reading"
    id: int | None = Field(default=None, primary_key=True)
    # Indexed by (patient, time) and the unique (patient, kind, time, device, value) below: every
    # query names the patient. An index on encounter_id alone served no query and misled the planner
    # ("encounter_id IS NULL" is most rows); one on the time alone served none and cost every insert.
    patient_id: int = Field(foreign_key="patient.id")
    encounter_id: int | None = Field(default=None, foreign_key="encounter.id")
    kind: str = Field(max_length=16)
    source: str = Field(max_length=16)
    measured_at: datetime
    received_at: datetime
    value: float | None = None
    systolic: float | None = None
    diastolic: float | None = None
    pulse: float | None = None
    unit_received: str | None = Field(default=None, max_length=32)
    values_received: list[str] = Field(default_factory=list, sa_type=JSON_TYPE)
    device_id: str | None = Field(default=None, max_length=128)
    device_key: str = Field(default="", max_length=128)  # device_id or "" so the natural key is NULL-free
    # The canonical value(s), "value/systolic/diastolic/pulse" (repr of each, "" if none), so the
    # natural key is NULL-free: the same instant with another value is another reading.
    value_key: str = Field(default="", max_length=128)
    source_system: str = Field(max_length=64)  # the posting key's registered system
    source_reading_id: str | None = Field(default=None, max_length=128)
    # A reading is in force until a new version of it (same source id, other values; a re-sent
    # visit) supersedes it, or it is retracted (FHIR entered-in-error / cancelled, DELETE). Both
    # are kept, and no history read sees them (pathway.store.rows.IN_FORCE).
    superseded_at: datetime | None = None
    superseded_by: int | None = Field(default=None, foreign_key="reading.id")
    retracted_at: datetime | None = None


class SymptomReport(SQLModel, table=True):
    __tablename__ = "symptom_report"
    __table_args__ = (UniqueConstraint("patient_id", "code", "at"),)
    id: int | None = Field(default=None, primary_key=True)
    patient_id: int = Field(foreign_key="patient.id", index=True)
    encounter_id: int | None = Field(default=None, foreign_key="encounter.id")
    code: str = Field(max_length=32)
    at: datetime


class CareCheckRecord(SQLModel, table=True):
    """An examination recorded as done (annual check, fundus, foot exam, ECG, UACR + eGFR)."""

    __tablename__ = "care_check"
    __table_args__ = (UniqueConstraint("patient_id", "kind", "at"),)
    id: int | None = Field(default=None, primary_key=True)
    patient_id: int = Field(foreign_key="patient.id", index=True)
    encounter_id: int | None = Field(default=None, foreign_key="encounter.id")
    kind: str = Field(max_length=16)
    at: datetime
    source_system: str = Field(max_length=64)
    received_at: datetime


class PrescriptionRecord(SQLModel, table=True):
    """One version of a prescription (PATHWAY.md §7), identified like a reading by (patient, source
    system, source prescription id). A change or a stop is a new version: the old one gets
    ``superseded_at`` / ``superseded_by`` and is kept, so a replay of an earlier moment sees the
    version recorded by then (``recorded_at``); a retraction (FHIR entered-in-error) sets
    ``retracted_at`` and no history read sees it again."""

    __tablename__ = "prescription"
    id: int | None = Field(default=None, primary_key=True)
    patient_id: int = Field(foreign_key="patient.id")  # first column of the identity index below
    source_system: str = Field(max_length=64)
    source_prescription_id: str = Field(max_length=128)
    classes: list[str] = Field(default_factory=list, sa_type=JSON_TYPE)  # the medication classes
    atc_code: str | None = Field(default=None, max_length=16)
    drug: str = Field(max_length=200)  # as written (苯磺酸氨氯地平片)
    dose: str | None = Field(default=None, max_length=200)
    started_on: date
    supply_days: int
    stopped_on: date | None = None
    traceability_codes: list[str] = Field(default_factory=list, sa_type=JSON_TYPE)  # 追溯码
    recorded_at: datetime  # when this version was stored
    superseded_at: datetime | None = None
    superseded_by: int | None = Field(default=None, foreign_key="prescription.id")
    retracted_at: datetime | None = None


class AssessmentRecord(SQLModel, table=True):
    """Every assessment ever made, with its provenance and the facts the rules saw."""

    __tablename__ = "assessment"
    id: int | None = Field(default=None, primary_key=True)
    patient_id: int = Field(foreign_key="patient.id")  # indexed with id: ix_assessment_patient_id_id
    as_of: datetime
    evaluated_at: datetime
    pack_id: str = Field(max_length=64)
    pack_version: str = Field(max_length=32)
    pack_sha256: str = Field(max_length=64)
    tier: str = Field(max_length=8)
    level: str = Field(max_length=8)
    referral_urgency: str | None = Field(default=None, max_length=16)
    follow_up_due: date
    result: dict[str, Any] = Field(default_factory=dict, sa_type=JSON_TYPE)


class Referral(SQLModel, table=True):
    """A referral up (上转) and its closed loop: open → accepted → completed → returned (下转)."""

    __tablename__ = "referral"
    id: int | None = Field(default=None, primary_key=True)
    patient_id: int = Field(foreign_key="patient.id")
    assessment_id: int | None = Field(default=None, foreign_key="assessment.id")
    urgency: str = Field(max_length=16)
    rule_id: str | None = Field(default=None, max_length=64)
    pack_version: str | None = Field(default=None, max_length=32)
    status: str = Field(default="open", max_length=16, index=True)
    reason: str | None = Field(default=None, max_length=500)
    receiving_institution: str | None = Field(default=None, max_length=200)
    outcome: str | None = None
    return_note: str | None = None
    return_follow_up_due: date | None = None
    created_at: datetime
    updated_at: datetime
    accepted_at: datetime | None = None
    completed_at: datetime | None = None
    returned_at: datetime | None = None


# A reading's identity and its natural key hold over current versions: a superseded version keeps
# its values and source id beside the new one. A retracted reading stays in both, so a retry of it
# is a duplicate and it stays retracted.
_CURRENT_VERSION = text("superseded_at IS NULL")
Index(
    "uq_reading_patient_id_source_system_source_reading_id",
    col(Reading.patient_id),
    col(Reading.source_system),
    col(Reading.source_reading_id),
    unique=True,
    sqlite_where=_CURRENT_VERSION,
    postgresql_where=_CURRENT_VERSION,
)
Index(
    "uq_reading_patient_id_kind_measured_at_device_key_value_key",
    col(Reading.patient_id),
    col(Reading.kind),
    col(Reading.measured_at),
    col(Reading.device_key),
    col(Reading.value_key),
    unique=True,
    sqlite_where=_CURRENT_VERSION,
    postgresql_where=_CURRENT_VERSION,
)
# The last contact of every patient (the daily run's missed_3m / lost_to_follow_up) is one index probe.
Index("ix_reading_patient_id_measured_at", col(Reading.patient_id), col(Reading.measured_at))
# A patient's clinical readings (at a visit, in the clinic, from the lab) without its self-measured
# stream: a reassessment reads them whole, team indicators count them. A few a year against
# thousands of wearable or CGM readings.
CLINICAL_SOURCES = (ReadingSource.CLINIC.value, ReadingSource.LAB.value)
CLINICAL_READING = or_(col(Reading.encounter_id).is_not(None), col(Reading.source).in_(CLINICAL_SOURCES))
Index(
    "ix_reading_patient_id_measured_at_clinical",
    col(Reading.patient_id),
    col(Reading.measured_at),
    postgresql_where=CLINICAL_READING,
    sqlite_where=CLINICAL_READING,
)
# A prescription's identity holds over current versions (as a reading's does).
Index(
    "uq_prescription_patient_id_source_system_source_prescription_id",
    col(PrescriptionRecord.patient_id),
    col(PrescriptionRecord.source_system),
    col(PrescriptionRecord.source_prescription_id),
    unique=True,
    sqlite_where=_CURRENT_VERSION,
    postgresql_where=_CURRENT_VERSION,
)
Index(
    "ix_prescription_patient_id_started_on",
    col(PrescriptionRecord.patient_id),
    col(PrescriptionRecord.started_on),
)
Index("ix_encounter_patient_id_at", col(Encounter.patient_id), col(Encounter.at))
# A patient's open referral is one index probe (by status alone, every request scanned the whole
# county's open referrals).
Index("ix_referral_patient_id_status", col(Referral.patient_id), col(Referral.status))
# A patient's newest assessment is one index probe, however many it has (an hourly wearable makes
# 8,760 a year). With patient_id alone the planner walked the primary key backwards, filtering: a
# patient not assessed lately cost a scan of every newer assessment of the county.
Index("ix_assessment_patient_id_id", col(AssessmentRecord.patient_id), col(AssessmentRecord.id))
