"""SQL of webhook subscriptions and their delivery log.

Part of the repository layer: functions take a Session and never commit.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import update
from sqlmodel import Session, SQLModel, col, select

from pathway.events.event_store import CANCELLED, PENDING
from pathway.store import db
from pathway.store.work_tables import OutboxEvent, WebhookAttempt, WebhookDelivery, WebhookSubscription

_delivery_table = SQLModel.metadata.tables[WebhookDelivery.__tablename__]
_delivery = _delivery_table.c


def add(session: Session, subscription: WebhookSubscription) -> None:
    db.add(session, subscription)


def subscription_by_id(session: Session, subscription_id: int) -> WebhookSubscription | None:
    found = session.get(WebhookSubscription, subscription_id)
    return found if found is not None and found.deleted_at is None else None


def subscriptions(
    session: Session, team_id: int | None, *, every_team: bool
) -> Sequence[WebhookSubscription]:
    """Subscriptions not deleted: all of them (``every_team``), or the team's, oldest first."""
    statement = select(WebhookSubscription).where(col(WebhookSubscription.deleted_at).is_(None))
    if not every_team:
        statement = statement.where(WebhookSubscription.team_id == team_id)
    return session.exec(statement.order_by(col(WebhookSubscription.id))).all()


def cancel_pending(session: Session, subscription_id: int) -> int:
    """Cancel the subscription's pending deliveries (it was deleted); how many."""
    statement = (
        update(_delivery_table)
        .where(_delivery.subscription_id == subscription_id, _delivery.status == PENDING)
        .values(status=CANCELLED, claimed_by=None, claimed_until=None)
        .returning(_delivery.id)
    )
    return len(session.execute(statement).all())


def retry_pending_now(session: Session, subscription_id: int, now: datetime) -> None:
    """Make the subscription's pending deliveries due now (it was enabled again)."""
    session.execute(
        update(_delivery_table)
        .where(_delivery.subscription_id == subscription_id, _delivery.status == PENDING)
        .values(next_attempt_at=now)
    )


def deliveries(
    session: Session, subscription_id: int, limit: int, offset: int
) -> list[tuple[WebhookDelivery, str, list[WebhookAttempt]]]:
    """The subscription's deliveries, newest event first, each with its event's kind and attempts."""
    rows = session.exec(
        select(WebhookDelivery, OutboxEvent.kind)
        .join(OutboxEvent, col(OutboxEvent.id) == col(WebhookDelivery.event_id))
        .where(WebhookDelivery.subscription_id == subscription_id)
        .order_by(col(WebhookDelivery.event_id).desc())
        .limit(limit)
        .offset(offset)
    ).all()
    ids = [d.id for d, _kind in rows]
    attempts: dict[int, list[WebhookAttempt]] = {}
    if ids:
        found = session.exec(
            select(WebhookAttempt)
            .where(col(WebhookAttempt.delivery_id).in_(ids))
            .order_by(col(WebhookAttempt.delivery_id), col(WebhookAttempt.attempt))
        ).all()
        for attempt in found:
            attempts.setdefault(attempt.delivery_id, []).append(attempt)
    return [(d, kind, attempts.get(d.id or 0, [])) for d, kind in rows]
