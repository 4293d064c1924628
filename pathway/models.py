"""Table models (SQLModel ``table=True`` only): the durable home of teams, patients and their history.

Instants are stored in UTC (SQLModel's datetime type: ``timestamptz`` on PostgreSQL, aware UTC on
both dialects); values as received are kept beside canonical ones. Unique keys make ingest
idempotent: ``(source_system, source_reading_id)`` and the natural key
``(patient_id, kind, measured_at, device_key)`` of a reading. Schema changes go through Alembic
(``pathway/migrations``); table models do not validate, so API input is validated before it gets here.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import JSON, UniqueConstraint
from sqlalchemy.dialects.postgresql import JSONB
from sqlmodel import Field, SQLModel

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
    sex: str = Field(max_length=8)
    birth_date: date
    conditions: list[str] = Field(default_factory=list, sa_type=JSON_TYPE)
    smoker: bool = False
    pregnant: bool = False
    created_at: datetime
    updated_at: datetime


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


class Reading(SQLModel, table=True):
    """One measurement: canonical value(s) for the rules, and the numbers and unit as received."""

    __tablename__ = "reading"
    __table_args__ = (
        UniqueConstraint("source_system", "source_reading_id"),
        UniqueConstraint("patient_id", "kind", "measured_at", "device_key"),
    )
    id: int | None = Field(default=None, primary_key=True)
    patient_id: int = Field(foreign_key="patient.id", index=True)
    encounter_id: int | None = Field(default=None, foreign_key="encounter.id", index=True)
    kind: str = Field(max_length=16)
    source: str = Field(max_length=16)
    measured_at: datetime = Field(index=True)
    received_at: datetime
    value: float | None = None
    systolic: float | None = None
    diastolic: float | None = None
    pulse: float | None = None
    unit_received: str | None = Field(default=None, max_length=32)
    values_received: list[str] = Field(default_factory=list, sa_type=JSON_TYPE)
    device_id: str | None = Field(default=None, max_length=128)
    device_key: str = Field(default="", max_length=128)  # device_id or "" so the natural key is NULL-free
    source_system: str = Field(max_length=64)
    source_reading_id: str | None = Field(default=None, max_length=128)


class SymptomReport(SQLModel, table=True):
    __tablename__ = "symptom_report"
    __table_args__ = (UniqueConstraint("patient_id", "code", "at"),)
    id: int | None = Field(default=None, primary_key=True)
    patient_id: int = Field(foreign_key="patient.id", index=True)
    encounter_id: int | None = Field(default=None, foreign_key="encounter.id")
    code: str = Field(max_length=32)
    at: datetime


class AssessmentRecord(SQLModel, table=True):
    """Every assessment ever made, with its provenance and the facts the rules saw."""

    __tablename__ = "assessment"
    id: int | None = Field(default=None, primary_key=True)
    patient_id: int = Field(foreign_key="patient.id", index=True)
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
    patient_id: int = Field(foreign_key="patient.id", index=True)
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


class IdempotentRequest(SQLModel, table=True):
    """A write answered under an ``Idempotency-Key``: replaying the key returns the same answer."""

    __tablename__ = "idempotent_request"
    __table_args__ = (UniqueConstraint("scope", "key"),)
    id: int | None = Field(default=None, primary_key=True)
    scope: str = Field(max_length=200)
    key: str = Field(max_length=200)
    request_sha256: str = Field(max_length=64)
    status_code: int
    response: dict[str, Any] = Field(default_factory=dict, sa_type=JSON_TYPE)
    created_at: datetime


class ApiKey(SQLModel, table=True):
    """An API key: only its sha256 is stored; ``prefix`` identifies it in logs and the audit trail."""

    __tablename__ = "api_key"
    id: int | None = Field(default=None, primary_key=True)
    prefix: str = Field(max_length=16, unique=True)
    secret_sha256: str = Field(max_length=64)
    role: str = Field(max_length=16)  # ehr | gateway | team | admin
    team_id: int | None = Field(default=None, foreign_key="team.id")
    name: str = Field(max_length=200)
    created_at: datetime
    revoked_at: datetime | None = None


class GatewayLink(SQLModel, table=True):
    """A gateway key may post readings for the patients it is linked to, and no others."""

    __tablename__ = "gateway_link"
    __table_args__ = (UniqueConstraint("api_key_id", "patient_id"),)
    id: int | None = Field(default=None, primary_key=True)
    api_key_id: int = Field(foreign_key="api_key.id", index=True)
    patient_id: int = Field(foreign_key="patient.id")
    created_at: datetime


class AuditEvent(SQLModel, table=True):
    """Who did what to whose data, when: every read of patient data and every write."""

    __tablename__ = "audit_event"
    id: int | None = Field(default=None, primary_key=True)
    at: datetime = Field(index=True)
    api_key_id: int = Field(foreign_key="api_key.id")
    action: str = Field(max_length=64)
    patient_id: int | None = Field(default=None, foreign_key="patient.id", index=True)
