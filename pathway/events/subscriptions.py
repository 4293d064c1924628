"""Webhook subscriptions: created by a team key for its own team's events, or by an admin for one
team's or every team's; listed, deleted, enabled again after being disabled; their delivery log.

The secret signs every delivery, so it is stored; after creation only its first characters are
ever shown. A subscription outside the caller's team is answered like one that does not exist.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from urllib.parse import urlsplit

from sqlmodel import Session

from pathway.access.permissions import Caller, Forbidden, Role, require_role, team_by_code
from pathway.clinical.errors import InvalidInput, PathwayError
from pathway.events import subscription_store
from pathway.events.outbox import EventKind
from pathway.store.work_tables import WebhookAttempt, WebhookDelivery, WebhookSubscription

SHOWN_SECRET = 4  # characters of the secret shown after creation (its prefix)
MIN_SECRET = 16


class UnknownSubscription(PathwayError):
    code = "unknown-subscription"
    status = 404


def _valid_url(url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidInput("a webhook URL is http:// or https:// with a host", "url")
    try:
        parts.port  # noqa: B018 — raises ValueError on a bad port
    except ValueError:
        raise InvalidInput("the URL's port is not a number from 0 to 65535", "url") from None
    return url


def create(
    session: Session,
    caller: Caller,
    url: str,
    kinds: Sequence[EventKind],
    secret: str,
    now: datetime,
    team_code: str | None = None,
) -> WebhookSubscription:
    """A new subscription. A team key's is for its own team's events (naming another team is 403);
    an admin's is for one team's (``team_code``) or, without one, every team's."""
    require_role(caller, Role.TEAM)
    if len(secret) < MIN_SECRET:
        raise InvalidInput(f"a secret has at least {MIN_SECRET} characters", "secret")
    team_id = team_by_code(session, team_code).id if team_code is not None else None
    if caller.role is Role.TEAM:
        if team_id is not None and team_id != caller.team_id:
            raise Forbidden("a team key subscribes to its own team's events only", "team")
        team_id = caller.team_id
    subscription = WebhookSubscription(
        url=_valid_url(url),
        kinds=sorted({kind.value for kind in kinds}),
        team_id=team_id,
        secret=secret,
        secret_prefix=secret[:SHOWN_SECRET],
        created_by=caller.id,
        created_at=now,
        consecutive_failures=0,
    )
    subscription_store.add(session, subscription)
    return subscription


def visible(session: Session, caller: Caller) -> Sequence[WebhookSubscription]:
    """The subscriptions the caller may see: all (admin) or its team's."""
    _only_admin_or_team(caller)
    return subscription_store.subscriptions(session, caller.team_id, every_team=caller.role is Role.ADMIN)


def require(session: Session, caller: Caller, subscription_id: int) -> WebhookSubscription:
    """The subscription, if the caller may see it (else 404, as for one that does not exist)."""
    _only_admin_or_team(caller)
    found = subscription_store.subscription_by_id(session, subscription_id)
    if found is None or (caller.role is not Role.ADMIN and found.team_id != caller.team_id):
        raise UnknownSubscription(f"no subscription with id {subscription_id}", "subscription_id")
    return found


def delete(session: Session, caller: Caller, subscription_id: int, now: datetime) -> None:
    """Delete it: nothing more is routed to it and its pending deliveries are cancelled (the log stays)."""
    subscription = require(session, caller, subscription_id)
    subscription.deleted_at = now
    session.add(subscription)
    subscription_store.cancel_pending(session, subscription_id)


def enable(session: Session, caller: Caller, subscription_id: int, now: datetime) -> WebhookSubscription:
    """Enable a disabled subscription again: its pending deliveries (kept, in order) are due now."""
    subscription = require(session, caller, subscription_id)
    subscription.disabled_at = None
    subscription.disabled_reason = None
    subscription.consecutive_failures = 0
    session.add(subscription)
    subscription_store.retry_pending_now(session, subscription_id, now)
    return subscription


def delivery_log(
    session: Session, caller: Caller, subscription_id: int, limit: int, offset: int
) -> list[tuple[WebhookDelivery, str, list[WebhookAttempt]]]:
    require(session, caller, subscription_id)
    return subscription_store.deliveries(session, subscription_id, limit, offset)


def _only_admin_or_team(caller: Caller) -> None:
    require_role(caller, Role.TEAM)  # an admin passes too
