"""kill -9 the scheduler in the middle of webhook delivery, start it again: no event is lost, and
each patient's events first arrive in order (the one in flight may arrive twice: at least once).

PostgreSQL, real processes (`pathway scheduler`, then `pathway scheduler --once`) and a real HTTP
receiver. The restarted scheduler releases the dead process's claims at once (same host)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import insert
from sqlmodel import Session, SQLModel, select

from pathway.access import permissions
from pathway.access.permissions import Role
from pathway.store.db import make_engine, migrate
from pathway.store.tables import Patient, Team
from pathway.store.work_tables import OutboxEvent, WebhookDelivery, WebhookSubscription
from tests.scheduler.webhook_receiver import Receiver, receiving

pytestmark = [pytest.mark.faults, pytest.mark.postgres]
PATIENTS, EACH = 40, 5
SECRET = "fault-test-secret-0123456789"


def _seed(url: str, hook: str) -> dict[int, list[int]]:
    engine = make_engine(url)
    now = datetime.now(UTC)
    with Session(engine) as session:
        team = Team(code="t1", name="t1", institution_level="home")
        session.add(team)
        session.flush()
        key, _plaintext = permissions.create_key(session, Role.ADMIN, "faults", now)
        assert key.id is not None
        session.add(
            WebhookSubscription(
                url=hook, kinds=["tier_changed"], secret=SECRET, secret_prefix=SECRET[:4],
                created_by=key.id, created_at=now, consecutive_failures=0,
            )
        )  # fmt: skip
        patients = SQLModel.metadata.tables[Patient.__tablename__]
        rows = [
            {"source_system": "ehr", "external_id": f"p{i}", "team_id": team.id, "sex": "male",
             "birth_date": now.date().replace(year=1960), "conditions": ["hypertension"], "smoker": False,
             "pregnant": False, "created_at": now - timedelta(days=90), "updated_at": now}
            for i in range(PATIENTS)
        ]  # fmt: skip
        ids = [int(i) for (i,) in session.execute(insert(patients).returning(patients.c.id), rows)]
        events = SQLModel.metadata.tables[OutboxEvent.__tablename__]
        by_patient: dict[int, list[int]] = {p: [] for p in ids}
        for n in range(EACH):
            for patient in ids:
                row = {"kind": "tier_changed", "occurred_at": now, "patient_id": patient, "team_id": team.id,
                       "payload": {"tier": "yellow", "n": n}}  # fmt: skip
                by_patient[patient].append(
                    int(session.execute(insert(events).returning(events.c.id), row).scalar_one())
                )
        session.commit()
    engine.dispose()
    return by_patient


def _scheduler(url: str, log: Path, *args: str) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PATHWAY_DATABASE_URL": url, "PATHWAY_WEBHOOK_INTERVAL_SECONDS": "0.2",
           "PATHWAY_WEBHOOK_BATCH_SIZE": "10", "PATHWAY_WEBHOOK_TIMEOUT_SECONDS": "2"}  # fmt: skip
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "pathway", "scheduler", *args],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )


def test_a_scheduler_killed_mid_delivery_then_restarted_loses_no_event(
    postgres_url: str, tmp_path: Path
) -> None:
    migrate(postgres_url)
    receiver = Receiver(SECRET, time.time, delay_seconds=0.02)
    log = tmp_path / "scheduler.log"
    with receiving(receiver):
        by_patient = _seed(postgres_url, receiver.url)
        seeded = {e for events in by_patient.values() for e in events}
        first = _scheduler(postgres_url, log)
        deadline = time.monotonic() + 90
        killed_in_flight = False
        while first.poll() is None and time.monotonic() < deadline:
            with receiver.lock:
                busy, accepted = receiver.in_flight, len(receiver.accepted)
            if busy and accepted >= PATIENTS:  # well into delivery, a POST in flight
                first.send_signal(signal.SIGKILL)
                killed_in_flight = True
                break
            time.sleep(0.001)
        first.wait(timeout=30)
        assert killed_in_flight, f"delivery did not start or finished first:\n{log.read_text()}"
        assert len(receiver.accepted_ids()) < PATIENTS * EACH

        for _run in range(10):  # each run delivers what is due, then exits
            second = _scheduler(postgres_url, log, "--once")
            assert second.wait(timeout=120) == 0, log.read_text()
            if seeded <= set(receiver.accepted_ids()):
                break

    # The scheduler's start also re-tiers these never-assessed patients under the pack in force
    # (scheduler.retier_job), which emits events of its own after the seeded ones: left out here.
    received = [e for e in receiver.accepted_ids() if e in seeded]
    everything = sorted(seeded)
    assert sorted(set(received)) == everything  # nothing lost
    assert len(received) - len(set(received)) <= 10  # at most the killed batch again
    for patient, events in by_patient.items():
        firsts = list(
            dict.fromkeys(
                int(e["id"])
                for e in receiver.accepted
                if e["patient_id"] == patient and int(e["id"]) in seeded
            )
        )
        assert firsts == events  # in order per patient
    assert receiver.bad_signatures == 0
    engine = make_engine(postgres_url)
    with Session(engine) as session:
        assert {d.status for d in session.exec(select(WebhookDelivery))} == {"delivered"}
    engine.dispose()
    assert "releasing the claims" in log.read_text()
