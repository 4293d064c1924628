"""SQL of the outbox and of deliveries: write events, route them to subscriptions, claim what is
due, record each attempt.

Part of the repository layer: functions take a Session and never commit. Writing an event is one
INSERT in the transaction of its cause; routing (fan-out to subscriptions) and sending happen in
the scheduler, off the request path.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, exists, func, insert, literal_column, or_, select, update
from sqlmodel import Session, SQLModel

from pathway.store.sql import dialect_insert
from pathway.store.tables import AssessmentRecord, Patient
from pathway.store.work_tables import (
    CareTask,
    OutboxEvent,
    WebhookAttempt,
    WebhookDelivery,
    WebhookSubscription,
)

_TABLES = SQLModel.metadata.tables
_event_table = _TABLES[OutboxEvent.__tablename__]
_event = _event_table.c
_delivery_table = _TABLES[WebhookDelivery.__tablename__]
_delivery = _delivery_table.c
_subscription_table = _TABLES[WebhookSubscription.__tablename__]
_subscription = _subscription_table.c
_attempt_table = _TABLES[WebhookAttempt.__tablename__]
_task = _TABLES[CareTask.__tablename__].c
_patient = _TABLES[Patient.__tablename__].c
_assessment = _TABLES[AssessmentRecord.__tablename__].c
PENDING = "pending"
DELIVERED = "delivered"
CANCELLED = "cancelled"
_IS_PENDING: ColumnElement[str] = literal_column("'pending'")  # a literal, so the partial index matches
_CHUNK = 5000  # ids per IN list (well below either driver's bound-parameter limit)


def _chunks(ids: Sequence[int]) -> Iterator[list[int]]:
    for start in range(0, len(ids), _CHUNK):
        yield list(ids[start : start + _CHUNK])


def insert_events(session: Session, rows: list[dict[str, Any]]) -> None:
    """Store events (kind, occurred_at, patient_id, team_id, payload): one executemany."""
    if rows:
        session.execute(insert(_event_table), rows)


def patient_teams(session: Session, patient_ids: Sequence[int]) -> dict[int, int | None]:
    """The team of each patient."""
    found: dict[int, int | None] = {}
    for chunk in _chunks(patient_ids):
        statement = select(_patient.id, _patient.team_id).where(_patient.id.in_(chunk))
        found.update({int(i): t for i, t in session.execute(statement)})
    return found


def tasks_of(session: Session, task_ids: Sequence[int]) -> list[tuple[int, int, int | None, str, str, str]]:
    """(id, patient, team, tier, kind, pack version) of each task."""
    found = []
    for chunk in _chunks(task_ids):
        statement = (
            select(_task.id, _task.patient_id, _task.team_id, _task.tier, _task.kind, _task.pack_version)
            .where(_task.id.in_(chunk))
            .order_by(_task.id)
        )
        found += [
            (int(i), int(p), t, str(tier), str(k), str(v))
            for i, p, t, tier, k, v in session.execute(statement)
        ]
    return found


# --- Routing and delivery (the scheduler) -----------------------------------------------------


def _postgres(session: Session) -> bool:
    return session.get_bind().dialect.name == "postgresql"


def route_events(session: Session, now: datetime, limit: int) -> int:
    """Queue up to ``limit`` unrouted events, oldest first, for every subscription (not deleted)
    that wants their kind and team, and mark them routed; how many events.

    The events are locked (``FOR UPDATE SKIP LOCKED`` on PostgreSQL; SQLite has one writer), so two
    schedulers route each event once; a delivery is unique per (subscription, event) anyway."""
    pick = select(_event.id).where(_event.routed_at.is_(None)).order_by(_event.id).limit(limit)
    if _postgres(session):
        pick = pick.with_for_update(skip_locked=True)
    events = session.execute(
        select(_event.id, _event.kind, _event.patient_id, _event.team_id)
        .where(_event.id.in_(pick.scalar_subquery()))
        .order_by(_event.id)
    ).all()
    if not events:
        return 0
    subscriptions = session.execute(
        select(_subscription.id, _subscription.kinds, _subscription.team_id).where(
            _subscription.deleted_at.is_(None)
        )
    ).all()
    rows = [
        {
            "subscription_id": sub_id,
            "event_id": event_id,
            "patient_id": patient_id,
            "status": PENDING,
            "attempts": 0,
            "next_attempt_at": now,
            "created_at": now,
        }
        for event_id, kind, patient_id, team_id in events
        for sub_id, kinds, sub_team in subscriptions
        if kind in kinds and (sub_team is None or sub_team == team_id)
    ]
    if rows:
        session.execute(dialect_insert(session)(_delivery_table).on_conflict_do_nothing(), rows)
    ids = [int(e[0]) for e in events]
    for chunk in _chunks(ids):
        session.execute(update(_event_table).where(_event.id.in_(chunk)).values(routed_at=now))
    return len(ids)


def claim_due(session: Session, now: datetime, worker: str, until: datetime, limit: int) -> list[int]:
    """Claim up to ``limit`` due deliveries for ``worker`` until ``until``; their ids, oldest first.

    Due: pending, its next attempt reached, not claimed by another worker (or its claim ran out),
    its subscription active, and the oldest pending delivery of its (subscription, patient) — so a
    later event for a patient is not sent while an earlier one is pending. One UPDATE (PostgreSQL:
    the candidates locked ``FOR UPDATE SKIP LOCKED``, so racing schedulers claim different rows)."""
    earlier = _delivery_table.alias("earlier")
    candidates = (
        select(_delivery.id)
        .join(_subscription_table, _subscription.id == _delivery.subscription_id)
        .where(
            _delivery.status == _IS_PENDING,
            _delivery.next_attempt_at <= now,
            or_(_delivery.claimed_until.is_(None), _delivery.claimed_until <= now),
            _subscription.deleted_at.is_(None),
            _subscription.disabled_at.is_(None),
            ~exists().where(
                earlier.c.subscription_id == _delivery.subscription_id,
                earlier.c.patient_id == _delivery.patient_id,
                earlier.c.status == _IS_PENDING,
                earlier.c.event_id < _delivery.event_id,
            ),
        )
        .order_by(_delivery.event_id)
        .limit(limit)
    )
    if _postgres(session):
        candidates = candidates.with_for_update(of=_delivery_table, skip_locked=True)
    statement = (
        update(_delivery_table)
        .where(
            _delivery.id.in_(candidates.scalar_subquery()),
            or_(_delivery.claimed_until.is_(None), _delivery.claimed_until <= now),
        )
        .values(claimed_by=worker, claimed_until=until)
        .returning(_delivery.id, _delivery.event_id)
    )
    return [int(i) for i, _e in sorted(session.execute(statement).all(), key=lambda row: row[1])]


def claimants(session: Session, now: datetime) -> list[str]:
    """The workers holding unexpired claims on pending deliveries."""
    statement = (
        select(_delivery.claimed_by)
        .where(_delivery.status == _IS_PENDING, _delivery.claimed_until > now)
        .distinct()
    )
    return sorted(str(w) for (w,) in session.execute(statement) if w is not None)


def release_claims(session: Session, workers: Sequence[str]) -> None:
    session.execute(
        update(_delivery_table)
        .where(_delivery.status == _IS_PENDING, _delivery.claimed_by.in_(list(workers)))
        .values(claimed_by=None, claimed_until=None)
    )


def claimed(session: Session, delivery_ids: Sequence[int]) -> list[dict[str, Any]]:
    """What sending each claimed delivery needs, oldest event first: the delivery (``delivery_id``,
    ``attempts``), its subscription (``subscription_id``, ``url``, ``secret``) and its event
    (``event_id``, ``kind``, ``occurred_at``, ``patient_id``, ``team_id``, ``payload``)."""
    if not delivery_ids:
        return []
    statement = (
        select(
            _delivery.id.label("delivery_id"),
            _delivery.attempts,
            _subscription.id.label("subscription_id"),
            _subscription.url,
            _subscription.secret,
            _event.id.label("event_id"),
            _event.kind,
            _event.occurred_at,
            _event.patient_id,
            _event.team_id,
            _event.payload,
        )
        .join(_event_table, _event.id == _delivery.event_id)
        .join(_subscription_table, _subscription.id == _delivery.subscription_id)
        .where(_delivery.id.in_(list(delivery_ids)))
        .order_by(_delivery.event_id)
    )
    return [dict(row) for row in session.execute(statement).mappings()]


def record_attempt(
    session: Session, delivery_id: int, worker: str, attempt: dict[str, Any], values: dict[str, Any]
) -> bool:
    """Record one attempt of a delivery still claimed by ``worker`` and update the delivery; False
    if the claim was lost (its lease ran out and another worker took it): nothing recorded."""
    changed = session.execute(
        update(_delivery_table)
        .where(_delivery.id == delivery_id, _delivery.claimed_by == worker, _delivery.status == _IS_PENDING)
        .values(claimed_by=None, claimed_until=None, attempts=_delivery.attempts + 1, **values)
        .returning(_delivery.attempts)
    ).first()
    if changed is None:
        return False
    session.execute(
        insert(_attempt_table).values(delivery_id=delivery_id, attempt=int(changed[0]), **attempt)
    )
    return True


def count_failure(session: Session, subscription_id: int) -> int:
    """One more consecutive failure of the subscription; the count now."""
    statement = (
        update(_subscription_table)
        .where(_subscription.id == subscription_id)
        .values(consecutive_failures=_subscription.consecutive_failures + 1)
        .returning(_subscription.consecutive_failures)
    )
    return int(session.execute(statement).scalar_one())


def count_success(session: Session, subscription_id: int) -> None:
    session.execute(
        update(_subscription_table)
        .where(_subscription.id == subscription_id, _subscription.consecutive_failures != 0)
        .values(consecutive_failures=0)
    )


def disable(session: Session, subscription_id: int, now: datetime, reason: str) -> None:
    session.execute(
        update(_subscription_table)
        .where(_subscription.id == subscription_id, _subscription.disabled_at.is_(None))
        .values(disabled_at=now, disabled_reason=reason)
    )


def pending_count(session: Session) -> int:
    """Deliveries still pending (any subscription)."""
    statement = select(func.count()).select_from(_delivery_table).where(_delivery.status == _IS_PENDING)
    return int(session.execute(statement).scalar_one())
