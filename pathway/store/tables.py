"""Table models (SQLModel ``table=True`` only): the durable home of teams, patients and their history.

Instants are stored in UTC (SQLModel's datetime type: ``timestamptz`` on PostgreSQL, aware UTC on
both dialects); values as received are kept beside canonical ones. Unique keys make ingest
idempotent: a reading's identity ``(patient_id, source_system, source_reading_id)`` and its natural
key ``(patient_id, kind, measured_at, device_key, value_key)``, both over current versions only (a
superseded version is kept, out of both). Schema changes go through Alembic
(``pathway/migrations``); table models do not validate, so API input is validated before it gets here.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import JSON, Index, UniqueConstraint, or_, text
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
    # are kept, and no history read sees them (pathway.patients.history_store.IN_FORCE).
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


class IdempotentRequest(SQLModel, table=True):
    """A write answered under an ``Idempotency-Key``: replaying the key returns the same answer.

    A key is the caller's own: unique per (API key, scope, key), the scope naming the patient, so
    two gateways may use one key for a patient without refusing or replaying each other's batches.
    ``api_key_id`` is NULL only on answers kept before migration 0013 (never replayed).
    """

    __tablename__ = "idempotent_request"
    __table_args__ = (UniqueConstraint("api_key_id", "scope", "key"),)
    id: int | None = Field(default=None, primary_key=True)
    api_key_id: int | None = Field(default=None, foreign_key="api_key.id")
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
    # The system whose data this key posts: readings and visits are stored under it, and a reading's
    # identity is (patient, this system, source_reading_id). Keys of one system share it (rotation).
    source_system: str = Field(max_length=64)
    team_id: int | None = Field(default=None, foreign_key="team.id")
    name: str = Field(max_length=200)
    created_at: datetime
    revoked_at: datetime | None = None


class WorkbenchSession(SQLModel, table=True):
    """A signed-in workbench browser. The cookie holds a random token; only its keyed digest is
    stored (an HMAC under the server's secret), so neither a copy of this table nor of the key rows
    makes a cookie. Signing out, revoking the key or the expiry ends it."""

    __tablename__ = "workbench_session"
    id: int | None = Field(default=None, primary_key=True)
    token_digest: str = Field(max_length=64, unique=True)
    api_key_id: int = Field(foreign_key="api_key.id", index=True)
    created_at: datetime
    expires_at: datetime = Field(index=True)
    ended_at: datetime | None = None


class ServerSecret(SQLModel, table=True):
    """A secret the servers generate once and share (the workbench's, when none is configured)."""

    __tablename__ = "server_secret"
    name: str = Field(max_length=64, primary_key=True)
    value: str = Field(max_length=128)
    created_at: datetime


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


# --- Tasks, their history, scheduler runs and patient flags (issue 4, PATHWAY.md §5) -------------

_OPEN = text("status = 'open'")
_OPEN_UNISSUED = text("status = 'open' AND issued_at IS NULL")


class CareTask(SQLModel, table=True):
    """One piece of work for a GP team, from the assessment that called for it (PATHWAY.md §5).

    At most one open task per (patient, kind, subject): a partial unique index, so a new firing
    updates the open task. ``issued_at`` stays NULL until the scheduler puts the task on the team's
    list (it falls due); ``due_date`` is the due time's date in the team's time zone, so the daily
    list (team, date) is one range scan of ``ix_care_task_daily_list``. ``evidence`` names what
    resolves it, ``evidence_at`` the latest such evidence when it was opened.
    """

    __tablename__ = "care_task"
    __table_args__ = (
        Index(
            "uq_care_task_open_patient_kind_subject",
            "patient_id",
            "kind",
            "subject",
            unique=True,
            sqlite_where=_OPEN,
            postgresql_where=_OPEN,
        ),
        Index(
            "ix_care_task_daily_list",
            "team_id",
            "due_date",
            "priority",
            sqlite_where=_OPEN,
            postgresql_where=_OPEN,
        ),
        Index(
            "ix_care_task_unissued_kind_due",
            "kind",
            "due_at",
            sqlite_where=_OPEN_UNISSUED,
            postgresql_where=_OPEN_UNISSUED,
        ),
    )
    id: int | None = Field(default=None, primary_key=True)
    patient_id: int = Field(foreign_key="patient.id", index=True)
    team_id: int | None = Field(default=None, foreign_key="team.id")
    kind: str = Field(max_length=32)
    subject: str = Field(default="", max_length=32)  # the check of a screening; "" if none
    status: str = Field(default="open", max_length=16)
    due_at: datetime
    due_date: date
    issued_at: datetime | None = None
    overdue_at: datetime | None = None
    time_limit_at: datetime
    priority: int
    role: str = Field(max_length=16)
    assignee: str | None = Field(default=None, max_length=200)
    rule_id: str = Field(max_length=64)
    rule_ids: list[str] = Field(default_factory=list, sa_type=JSON_TYPE)
    pack_id: str = Field(max_length=64)
    pack_version: str = Field(max_length=32)
    assessment_id: int | None = Field(default=None, foreign_key="assessment.id")
    tier: str = Field(max_length=8)
    evidence: list[str] = Field(default_factory=list, sa_type=JSON_TYPE)
    evidence_at: datetime | None = None
    escalated_at: datetime | None = None
    snoozed_until: datetime | None = None
    snooze_reason: str | None = Field(default=None, max_length=500)
    outcome: str | None = Field(default=None, max_length=16)
    note: str | None = Field(default=None, max_length=4000)
    created_at: datetime
    updated_at: datetime
    closed_at: datetime | None = None


class CareTaskEvent(SQLModel, table=True):
    """Every change of a task: who (an API key, the engine or the scheduler), when, from → to."""

    __tablename__ = "care_task_event"
    id: int | None = Field(default=None, primary_key=True)
    task_id: int = Field(foreign_key="care_task.id", index=True)
    at: datetime
    actor: str = Field(max_length=64)  # "key:<api key id>" | "engine" | "scheduler"
    action: str = Field(max_length=32)
    from_status: str | None = Field(default=None, max_length=16)
    to_status: str = Field(max_length=16)
    outcome: str | None = Field(default=None, max_length=16)
    note: str | None = Field(default=None, max_length=4000)
    details: dict[str, Any] = Field(default_factory=dict, sa_type=JSON_TYPE)


class SchedulerRun(SQLModel, table=True):
    """A claimed scheduler run: whoever inserts (job, business_date) first does it, once.

    ``job`` names the run completely (kind, time zone, hour, team). A claim without
    ``finished_at`` after its lease has run out may be claimed again (its process died).
    """

    __tablename__ = "scheduler_run"
    __table_args__ = (UniqueConstraint("job", "business_date"),)
    id: int | None = Field(default=None, primary_key=True)
    job: str = Field(max_length=120)
    business_date: date
    team_id: int | None = Field(default=None, foreign_key="team.id")
    claimed_by: str = Field(max_length=200)
    started_at: datetime
    finished_at: datetime | None = None
    error: str | None = Field(default=None, max_length=4000)
    details: dict[str, Any] = Field(default_factory=dict, sa_type=JSON_TYPE)


class PatientFlag(SQLModel, table=True):
    """``missed_3m`` / ``lost_to_follow_up``: raised once, cleared when the patient is seen again."""

    __tablename__ = "patient_flag"
    __table_args__ = (
        Index(
            "uq_patient_flag_active_patient_flag",
            "patient_id",
            "flag",
            unique=True,
            sqlite_where=text("cleared_at IS NULL"),
            postgresql_where=text("cleared_at IS NULL"),
        ),
    )
    id: int | None = Field(default=None, primary_key=True)
    patient_id: int = Field(foreign_key="patient.id", index=True)
    flag: str = Field(max_length=32)
    business_date: date
    raised_at: datetime
    last_contact_at: datetime | None = None
    cleared_at: datetime | None = None


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
Index("ix_encounter_patient_id_at", col(Encounter.patient_id), col(Encounter.at))
# A patient's open referral is one index probe (by status alone, every request scanned the whole
# county's open referrals).
Index("ix_referral_patient_id_status", col(Referral.patient_id), col(Referral.status))
# A patient's newest assessment is one index probe, however many it has (an hourly wearable makes
# 8,760 a year). With patient_id alone the planner walked the primary key backwards, filtering: a
# patient not assessed lately cost a scan of every newer assessment of the county.
Index("ix_assessment_patient_id_id", col(AssessmentRecord.patient_id), col(AssessmentRecord.id))
