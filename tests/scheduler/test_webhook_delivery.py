"""Webhook delivery against a real HTTP receiver on both databases: it fails (500), times out, then
comes back; every event arrives, in order per patient, signed; every attempt is logged and the
backoff grows; a subscription that always fails is disabled with the reason, its events kept."""

from __future__ import annotations

import socket
from datetime import datetime, timedelta

from sqlalchemy import Engine, insert
from sqlmodel import Session, SQLModel, col, select

from pathway.access import permissions
from pathway.access.permissions import Role
from pathway.clinical.clock import CLINIC_TZ
from pathway.clinical.policy import FollowThrough
from pathway.events.delivery import DeliveryPolicy
from pathway.store.work_tables import OutboxEvent, WebhookAttempt, WebhookDelivery, WebhookSubscription
from scheduler import jobs
from tests.scheduler.conftest import add_patient, add_team
from tests.scheduler.webhook_receiver import FAIL, HANG, Receiver, receiving

START = datetime(2026, 3, 10, 9, 0, tzinfo=CLINIC_TZ)
SECRET = "a-secret-of-sufficient-length-0123"
POLICY = DeliveryPolicy(timeout_seconds=0.5, backoff_base_seconds=1, backoff_cap_seconds=8, max_failures=50)


class Clock:
    def __init__(self) -> None:
        self.at = START

    def now(self) -> datetime:
        return self.at


def _seed(
    engine: Engine, url: str, patients: int = 3, events_each: int = 3
) -> tuple[int, dict[int, list[int]]]:
    """A subscription of every team's events at ``url``, and events for patients interleaved in
    time; the subscription's id and each patient's event ids in the order they happened."""
    with Session(engine) as session:
        team = add_team(session)
        ids = [add_patient(session, team, START - timedelta(days=90), f"p{i}") for i in range(patients)]
        subscription = WebhookSubscription(
            url=url, kinds=["tier_changed"], team_id=None, secret=SECRET, secret_prefix=SECRET[:4],
            created_by=_admin_key(session), created_at=START, consecutive_failures=0,
        )  # fmt: skip
        session.add(subscription)
        session.flush()
        table = SQLModel.metadata.tables[OutboxEvent.__tablename__]
        by_patient: dict[int, list[int]] = {p: [] for p in ids}
        for n in range(events_each):
            for patient in ids:
                payload = {"tier": "red" if n % 2 else "yellow", "pack_version": "2020.4"}
                row = {"kind": "tier_changed", "occurred_at": START, "patient_id": patient, "team_id": team,
                       "payload": payload}  # fmt: skip
                by_patient[patient].append(
                    int(session.execute(insert(table).returning(table.c.id), row).scalar_one())
                )
        session.commit()
        assert subscription.id is not None
        return subscription.id, by_patient


def _admin_key(session: Session) -> int:
    key, _plaintext = permissions.create_key(session, Role.ADMIN, "tests", START)
    assert key.id is not None
    return key.id


def _context(
    engine: Engine, clock: Clock, rules: FollowThrough, policy: DeliveryPolicy = POLICY
) -> jobs.Context:
    return jobs.Context(engine=engine, clock=clock, rules=rules, default_zone=CLINIC_TZ, webhooks=policy)


def test_a_receiver_that_fails_times_out_and_comes_back_gets_every_event_in_order(
    engine: Engine, rules: FollowThrough
) -> None:
    clock = Clock()
    receiver = Receiver(SECRET, lambda: clock.now().timestamp(), script=[FAIL, FAIL, FAIL, HANG, HANG])
    with receiving(receiver):
        subscription, by_patient = _seed(engine, receiver.url)
        ctx = _context(engine, clock, rules)
        for _tick in range(30):
            jobs.deliver_webhooks(ctx)
            if len(receiver.accepted) == 9:
                break
            clock.at += timedelta(seconds=1)

    everything = sorted(e for events in by_patient.values() for e in events)
    assert sorted(receiver.accepted_ids()) == everything  # none lost, none twice
    for patient, events in by_patient.items():  # in order per patient
        assert [int(e["id"]) for e in receiver.accepted if e["patient_id"] == patient] == events
    assert receiver.bad_signatures == 0
    first = receiver.accepted[0]
    assert set(first) == {"id", "kind", "occurred_at", "patient_id", "team_id", "tier", "pack_version"}

    with Session(engine) as session:
        deliveries = session.exec(select(WebhookDelivery)).all()
        attempts = session.exec(select(WebhookAttempt).order_by(col(WebhookAttempt.id))).all()
        state = session.get(WebhookSubscription, subscription)
    assert {d.status for d in deliveries} == {"delivered"}
    assert len(attempts) == receiver.requests == 9 + 5  # every attempt logged
    errors = [a.error for a in attempts if not a.succeeded]
    assert errors.count("HTTP 500") == 3
    assert errors.count("timed out after 0.5 s") == 2
    by_delivery: dict[int, list[WebhookAttempt]] = {}
    for attempt in attempts:
        by_delivery.setdefault(attempt.delivery_id, []).append(attempt)
    retried = [log for log in by_delivery.values() if len(log) >= 3]
    assert retried, "some delivery failed twice"
    for log in retried:  # the backoff doubles: 1 s after the first failure, 2 s after the second
        gaps = [(b.at - a.at).total_seconds() for a, b in zip(log, log[1:], strict=False)]
        assert gaps[0] >= 1
        assert gaps[1] >= 2
        assert gaps[1] > gaps[0]
    assert state is not None
    assert (state.consecutive_failures, state.disabled_at) == (0, None)


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port  # nothing listens on it once closed


def test_a_subscription_that_always_fails_is_disabled_with_the_reason_and_loses_nothing(
    engine: Engine, rules: FollowThrough
) -> None:
    clock = Clock()
    subscription, by_patient = _seed(engine, f"http://127.0.0.1:{_closed_port()}/hook", patients=2)
    ctx = _context(
        engine, clock, rules, DeliveryPolicy(timeout_seconds=0.5, backoff_base_seconds=1, max_failures=4)
    )
    for _tick in range(20):
        jobs.deliver_webhooks(ctx)
        clock.at += timedelta(seconds=30)

    with Session(engine) as session:
        state = session.get(WebhookSubscription, subscription)
        deliveries = session.exec(select(WebhookDelivery)).all()
        attempts = session.exec(select(WebhookAttempt)).all()
    assert state is not None
    assert state.disabled_at is not None
    assert state.disabled_reason is not None
    assert state.disabled_reason.startswith(
        "4 consecutive failed deliveries; the last: ConnectionRefusedError"
    )
    assert len(attempts) == 4  # nothing is tried once it is disabled
    assert len(deliveries) == sum(len(e) for e in by_patient.values())
    assert {d.status for d in deliveries} == {"pending"}  # kept, to be sent when enabled again
