"""Table models (SQLModel ``table=True`` only) of the work around the care record: answers kept
under an ``Idempotency-Key``, API keys, workbench sessions and the server's secrets, gateway links,
the audit trail, care tasks and their history, scheduler runs and patient flags. The care record's
tables are in :mod:`pathway.store.tables` (imported first: its naming convention and JSON type).
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import Index, UniqueConstraint, text
from sqlmodel import Field, SQLModel

from pathway.store.tables import JSON_TYPE


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


# --- Events out (issue 17): the outbox, webhook subscriptions, deliveries and their attempts ------

_UNROUTED = text("routed_at IS NULL")
_PENDING = text("status = 'pending'")


class OutboxEvent(SQLModel, table=True):
    """Something that happened to a patient (a tier changed, a referral opened, a task overdue…),
    written in the transaction that caused it. It carries ids and the tier, never free text about
    the patient. ``routed_at`` is set once the scheduler has queued it for every subscription."""

    __tablename__ = "outbox_event"
    __table_args__ = (
        Index("ix_outbox_event_unrouted", "id", sqlite_where=_UNROUTED, postgresql_where=_UNROUTED),
    )
    id: int | None = Field(default=None, primary_key=True)
    kind: str = Field(max_length=32)
    occurred_at: datetime
    patient_id: int = Field(foreign_key="patient.id", index=True)
    team_id: int | None = Field(default=None, foreign_key="team.id")
    payload: dict[str, Any] = Field(default_factory=dict, sa_type=JSON_TYPE)
    routed_at: datetime | None = None


class WebhookSubscription(SQLModel, table=True):
    """A URL that receives events of some kinds: a team's (its patients' events) or, with no team,
    every event (an admin's). The secret signs each delivery, so it is kept; it is never shown after
    creation (``secret_prefix`` identifies it). Disabled after repeated failures, with the reason."""

    __tablename__ = "webhook_subscription"
    id: int | None = Field(default=None, primary_key=True)
    url: str = Field(max_length=2000)
    kinds: list[str] = Field(default_factory=list, sa_type=JSON_TYPE)
    team_id: int | None = Field(default=None, foreign_key="team.id")
    secret: str = Field(max_length=200)
    secret_prefix: str = Field(max_length=8)
    created_by: int = Field(foreign_key="api_key.id")
    created_at: datetime
    consecutive_failures: int = 0
    disabled_at: datetime | None = None
    disabled_reason: str | None = Field(default=None, max_length=500)
    deleted_at: datetime | None = None


class WebhookDelivery(SQLModel, table=True):
    """One event for one subscription: pending until the receiver answers 2xx. Per (subscription,
    patient) only the oldest pending one is sent, so a patient's events arrive in order. A claim
    (``claimed_by`` until ``claimed_until``) keeps two schedulers from sending the same attempt."""

    __tablename__ = "webhook_delivery"
    __table_args__ = (
        UniqueConstraint("subscription_id", "event_id"),
        Index(
            "ix_webhook_delivery_pending",
            "subscription_id",
            "patient_id",
            "event_id",
            sqlite_where=_PENDING,
            postgresql_where=_PENDING,
        ),
    )
    id: int | None = Field(default=None, primary_key=True)
    subscription_id: int = Field(foreign_key="webhook_subscription.id")
    event_id: int = Field(foreign_key="outbox_event.id")
    patient_id: int
    status: str = Field(max_length=16)  # pending | delivered | cancelled (subscription deleted)
    attempts: int
    next_attempt_at: datetime
    claimed_by: str | None = Field(default=None, max_length=200)
    claimed_until: datetime | None = None
    delivered_at: datetime | None = None
    last_status_code: int | None = None
    last_error: str | None = Field(default=None, max_length=500)
    created_at: datetime


class WebhookAttempt(SQLModel, table=True):
    """The delivery log: every attempt to send a delivery, with the answer or the failure."""

    __tablename__ = "webhook_attempt"
    id: int | None = Field(default=None, primary_key=True)
    delivery_id: int = Field(foreign_key="webhook_delivery.id", index=True)
    attempt: int
    at: datetime
    status_code: int | None = None
    error: str | None = Field(default=None, max_length=500)
    duration_ms: int
    succeeded: bool
