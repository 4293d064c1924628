"""Webhook delivery, run by the scheduler: route new events to subscriptions, claim what is due,
POST each signed, record the attempt; retry with exponential backoff; disable a subscription after
repeated failures, with the reason.

At least once, in order per patient: per (subscription, patient) only the oldest pending delivery
is sent; a delivery stays pending until the receiver answers 2xx. A claim is committed before the
POST and the outcome after it, so a scheduler killed between the two leaves the delivery claimed
until its lease runs out, when it is sent again (the receiver may see an event twice, identified
by ``X-Pathway-Event-Id``; it never misses one). Two schedulers claim different deliveries.

Signature: ``X-Pathway-Signature: sha256=<hex HMAC-SHA256(secret, "<timestamp>.<body>")>`` with
``X-Pathway-Timestamp`` (Unix seconds of the attempt): :func:`signature` computes it,
:func:`verify` checks it (and the timestamp's age) on the receiving side.

The job owns the transactions: :func:`route`, :func:`claim` and :func:`record` take a session and
never commit; :func:`send` does the HTTP, holding no database connection.
"""

from __future__ import annotations

import hashlib
import hmac
import http.client
import json
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from sqlmodel import Session

from pathway.events import event_store

SIGNATURE_PREFIX = "sha256="
USER_AGENT = "pathway-webhooks/1"


@dataclass(frozen=True)
class DeliveryPolicy:
    """Operational settings (``PATHWAY_WEBHOOK_*``), not clinical ones."""

    batch_size: int = 50
    timeout_seconds: float = 5.0
    backoff_base_seconds: float = 5.0
    backoff_cap_seconds: float = 3600.0
    max_failures: int = 16  # consecutive failed attempts before the subscription is disabled
    route_batch: int = 1000
    interval_seconds: float = 5.0  # how often the scheduler delivers

    def backoff(self, attempts: int) -> timedelta:
        """The wait after the ``attempts``-th failed attempt: base·2^(attempts−1), capped."""
        return timedelta(
            seconds=min(self.backoff_base_seconds * 2 ** max(attempts - 1, 0), self.backoff_cap_seconds)
        )

    def lease(self) -> timedelta:
        """How long a claim holds: long enough to send a whole batch at the timeout, and then some."""
        return timedelta(seconds=self.timeout_seconds * self.batch_size + 30)


@dataclass(frozen=True)
class Due:
    """A claimed delivery, with what sending it needs."""

    delivery_id: int
    attempts: int
    subscription_id: int
    url: str
    secret: str
    event: dict[str, Any]

    def body(self) -> bytes:
        return json.dumps(self.event, ensure_ascii=False, separators=(",", ":"), sort_keys=True).encode()


@dataclass(frozen=True)
class Outcome:
    status_code: int | None
    error: str | None
    duration_ms: int

    @property
    def succeeded(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


def signature(secret: str, timestamp: str, body: bytes) -> str:
    """``sha256=<hex>``: HMAC-SHA256 under ``secret`` of ``"<timestamp>.<body>"``."""
    digest = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return SIGNATURE_PREFIX + digest


def verify(secret: str, timestamp: str, body: bytes, signed: str, now: float, tolerance: float = 300) -> bool:
    """Whether a delivery's signature is right and its timestamp within ``tolerance`` seconds of ``now``."""
    if not timestamp.isdigit() or abs(now - int(timestamp)) > tolerance:
        return False
    return hmac.compare_digest(signature(secret, timestamp, body), signed)


def claimants(session: Session, now: datetime) -> list[str]:
    """The workers holding claims on deliveries now."""
    return event_store.claimants(session, now)


def release(session: Session, workers: list[str]) -> None:
    """Release the claims of workers known to be dead (their deliveries are due again)."""
    event_store.release_claims(session, workers)


def route(session: Session, now: datetime, policy: DeliveryPolicy) -> int:
    """Queue new events for the subscriptions that want them; how many events were routed."""
    return event_store.route_events(session, now, policy.route_batch)


def claim(session: Session, now: datetime, worker: str, policy: DeliveryPolicy) -> list[Due]:
    """Claim the due deliveries (oldest events first) for this worker, until its lease runs out."""
    ids = event_store.claim_due(session, now, worker, now + policy.lease(), policy.batch_size)
    return [
        Due(
            delivery_id=row["delivery_id"],
            attempts=row["attempts"],
            subscription_id=row["subscription_id"],
            url=row["url"],
            secret=row["secret"],
            event={
                "id": row["event_id"],
                "kind": row["kind"],
                "occurred_at": row["occurred_at"].isoformat(),
                "patient_id": row["patient_id"],
                "team_id": row["team_id"],
                **row["payload"],
            },
        )
        for row in event_store.claimed(session, ids)
    ]


def send(due: Due, now: datetime, policy: DeliveryPolicy) -> Outcome:
    """POST the event, signed; the receiver's status or why there was none (timeout, refused…)."""
    body = due.body()
    timestamp = str(int(now.timestamp()))
    headers = {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        "X-Pathway-Event-Id": str(due.event["id"]),
        "X-Pathway-Event-Kind": str(due.event["kind"]),
        "X-Pathway-Delivery-Attempt": str(due.attempts + 1),
        "X-Pathway-Timestamp": timestamp,
        "X-Pathway-Signature": signature(due.secret, timestamp, body),
    }
    target = urlsplit(due.url)
    kind = http.client.HTTPSConnection if target.scheme == "https" else http.client.HTTPConnection
    path = (target.path or "/") + (f"?{target.query}" if target.query else "")
    started = time.monotonic()
    connection = kind(target.hostname or "", target.port, timeout=policy.timeout_seconds)
    try:
        connection.request("POST", path, body=body, headers=headers)
        response = connection.getresponse()
        response.read(65_536)
        status: int | None = response.status
        error = None if 200 <= response.status < 300 else f"HTTP {response.status}"
    except TimeoutError:
        status, error = None, f"timed out after {policy.timeout_seconds:g} s"
    except (OSError, http.client.HTTPException) as failure:
        status, error = None, f"{type(failure).__name__}: {failure}"[:500]
    finally:
        connection.close()
    return Outcome(status, error, int((time.monotonic() - started) * 1000))


def record(
    session: Session, due: Due, outcome: Outcome, now: datetime, worker: str, policy: DeliveryPolicy
) -> None:
    """Log the attempt and settle the delivery: delivered, or pending again after the backoff; the
    subscription's consecutive failures counted, and past the limit it is disabled with the reason."""
    attempt = {
        "at": now,
        "status_code": outcome.status_code,
        "error": outcome.error,
        "duration_ms": outcome.duration_ms,
        "succeeded": outcome.succeeded,
    }
    values: dict[str, Any] = {"last_status_code": outcome.status_code, "last_error": outcome.error}
    if outcome.succeeded:
        values |= {"status": event_store.DELIVERED, "delivered_at": now}
    else:
        values["next_attempt_at"] = now + policy.backoff(due.attempts + 1)
    if not event_store.record_attempt(session, due.delivery_id, worker, attempt, values):
        return  # the claim ran out and another worker took it: its attempt counts, not this one
    if outcome.succeeded:
        event_store.count_success(session, due.subscription_id)
        return
    failures = event_store.count_failure(session, due.subscription_id)
    if failures >= policy.max_failures:
        reason = f"{failures} consecutive failed deliveries; the last: {outcome.error}"
        event_store.disable(session, due.subscription_id, now, reason[:500])
