"""Webhook subscriptions: where events go out (issue #17). Team keys subscribe to their own team's
events, admins to one team's or every team's; the secret is accepted once and never returned."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Path, Query, Response, status
from pydantic import BaseModel, ConfigDict, Field

from api.deps import ClockDep, CurrentKey, SessionDep
from api.errors import error_responses
from pathway.events import subscriptions
from pathway.events.outbox import EventKind
from pathway.ingest.inbound import MAX_ROW_ID, Inbound, Text
from pathway.store.work_tables import WebhookAttempt, WebhookDelivery, WebhookSubscription

router = APIRouter(tags=["subscriptions"])
SubscriptionId = Annotated[int, Path(ge=1, le=MAX_ROW_ID, description="the subscription's id")]


class SubscriptionIn(Inbound):
    model_config = ConfigDict(extra="forbid")
    url: Text = Field(min_length=1, max_length=2000, description="http:// or https:// receiver")
    kinds: list[EventKind] = Field(min_length=1, max_length=len(EventKind))
    secret: Text = Field(
        min_length=subscriptions.MIN_SECRET,
        max_length=200,
        description="signs every delivery (HMAC-SHA256); never returned, only its first characters",
    )
    team: Text | None = Field(
        default=None, max_length=64, description="a team's code (admin only; a team key: its own)"
    )


class SubscriptionRead(BaseModel):
    id: int
    url: str
    kinds: list[str]
    team_id: int | None = Field(description="the team whose events it receives; null: every team's")
    secret_prefix: str = Field(description="the secret's first characters (the secret is never shown)")
    created_at: datetime
    consecutive_failures: int
    disabled_at: datetime | None
    disabled_reason: str | None = Field(description="why it was disabled (repeated failed deliveries)")

    @classmethod
    def of(cls, subscription: WebhookSubscription) -> SubscriptionRead:
        """In UTC, as stored (a subscription just created is shown as it will be read)."""
        read = cls.model_validate(subscription, from_attributes=True)
        disabled = read.disabled_at.astimezone(UTC) if read.disabled_at else None
        return read.model_copy(
            update={"created_at": read.created_at.astimezone(UTC), "disabled_at": disabled}
        )


class AttemptRead(BaseModel):
    attempt: int
    at: datetime
    status_code: int | None
    error: str | None
    duration_ms: int
    succeeded: bool

    @classmethod
    def of(cls, attempt: WebhookAttempt) -> AttemptRead:
        return cls.model_validate(attempt, from_attributes=True)


class DeliveryRead(BaseModel):
    id: int
    event_id: int
    event_kind: str
    patient_id: int
    status: str = Field(description="pending | delivered | cancelled (the subscription was deleted)")
    attempts: int
    next_attempt_at: datetime
    delivered_at: datetime | None
    last_status_code: int | None
    last_error: str | None
    log: list[AttemptRead]

    @classmethod
    def of(cls, delivery: WebhookDelivery, kind: str, attempts: list[WebhookAttempt]) -> DeliveryRead:
        assert delivery.id is not None
        return cls(
            id=delivery.id,
            event_id=delivery.event_id,
            event_kind=kind,
            patient_id=delivery.patient_id,
            status=delivery.status,
            attempts=delivery.attempts,
            next_attempt_at=delivery.next_attempt_at,
            delivered_at=delivery.delivered_at,
            last_status_code=delivery.last_status_code,
            last_error=delivery.last_error,
            log=[AttemptRead.of(a) for a in attempts],
        )


@router.post(
    "/v1/subscriptions",
    response_model=SubscriptionRead,
    status_code=status.HTTP_201_CREATED,
    responses=error_responses(401, 403, 413, 422, 429, 503),
    operation_id="subscriptions-create",
)
def create_subscription(
    data: SubscriptionIn, session: SessionDep, clock: ClockDep, key: CurrentKey
) -> SubscriptionRead:
    """Subscribe a URL to event kinds; deliveries are signed with the secret."""
    subscription = subscriptions.create(
        session, key, data.url, data.kinds, data.secret, clock.now(), team_code=data.team
    )
    session.commit()
    return SubscriptionRead.of(subscription)


@router.get(
    "/v1/subscriptions",
    response_model=list[SubscriptionRead],
    responses=error_responses(401, 403, 429, 503),
    operation_id="subscriptions-list",
)
def list_subscriptions(session: SessionDep, key: CurrentKey) -> list[SubscriptionRead]:
    """The subscriptions the key may see (an admin: all; a team key: its team's)."""
    return [SubscriptionRead.of(s) for s in subscriptions.visible(session, key)]


@router.get(
    "/v1/subscriptions/{subscription_id}",
    response_model=SubscriptionRead,
    responses=error_responses(401, 403, 404, 429, 503),
    operation_id="subscriptions-read",
)
def read_subscription(
    subscription_id: SubscriptionId, session: SessionDep, key: CurrentKey
) -> SubscriptionRead:
    return SubscriptionRead.of(subscriptions.require(session, key, subscription_id))


@router.delete(
    "/v1/subscriptions/{subscription_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=error_responses(401, 403, 404, 429, 503),
    operation_id="subscriptions-delete",
)
def delete_subscription(
    subscription_id: SubscriptionId, session: SessionDep, clock: ClockDep, key: CurrentKey
) -> Response:
    """Stop delivering: pending deliveries are cancelled; the delivery log is kept."""
    subscriptions.delete(session, key, subscription_id, clock.now())
    session.commit()
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/v1/subscriptions/{subscription_id}/enable",
    response_model=SubscriptionRead,
    responses=error_responses(401, 403, 404, 429, 503),
    operation_id="subscriptions-enable",
)
def enable_subscription(
    subscription_id: SubscriptionId, session: SessionDep, clock: ClockDep, key: CurrentKey
) -> SubscriptionRead:
    """Enable a subscription disabled after repeated failures: its kept deliveries are sent, in order."""
    subscription = subscriptions.enable(session, key, subscription_id, clock.now())
    session.commit()
    return SubscriptionRead.of(subscription)


@router.get(
    "/v1/subscriptions/{subscription_id}/deliveries",
    response_model=list[DeliveryRead],
    responses=error_responses(401, 403, 404, 422, 429, 503),
    operation_id="subscriptions-deliveries",
)
def list_deliveries(
    subscription_id: SubscriptionId,
    session: SessionDep,
    key: CurrentKey,
    page: Annotated[int, Query(ge=1, le=10_000)] = 1,
    per_page: Annotated[int, Query(ge=1, le=200)] = 50,
) -> list[DeliveryRead]:
    """The delivery log, newest event first: each delivery with every attempt (status or error)."""
    found = subscriptions.delivery_log(session, key, subscription_id, per_page, (page - 1) * per_page)
    return [DeliveryRead.of(d, kind, attempts) for d, kind, attempts in found]
