"""The retention run on both databases: kept Idempotency-Key answers past their window go, fresh ones
stay; audit rows stay unless a retention is configured; deletes go in committed batches; one run a
business date however many schedulers."""

from __future__ import annotations

import logging
from datetime import date, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, event
from sqlmodel import Session, col, select

from pathway.access import permissions
from pathway.access.permissions import Role
from pathway.clinical.clock import CLINIC_TZ
from pathway.clinical.policy import FollowThrough
from pathway.ingest import idempotency
from pathway.runs import retention
from pathway.runs.retention import Retention
from pathway.settings import DEFAULT_IDEMPOTENCY_RETENTION_DAYS, Settings
from pathway.store.work_tables import ApiKey, AuditEvent, IdempotentRequest, SchedulerRun
from scheduler import jobs, runner
from tests.scheduler.conftest import DAY, local

D = date(2026, 3, 10)
NOW = local(D, 3, 0)  # the retention run's hour
WINDOW = DEFAULT_IDEMPOTENCY_RETENTION_DAYS * DAY
SECOND = timedelta(seconds=1)
DEFAULTS = Retention()


class MovableClock:
    def __init__(self, at: datetime) -> None:
        self.at = at

    def now(self) -> datetime:
        return self.at


def _context(
    engine: Engine,
    rules: FollowThrough,
    clock: MovableClock,
    kept: Retention = DEFAULTS,
    worker: str = "w1",
) -> jobs.Context:
    return jobs.Context(
        engine=engine, clock=clock, rules=rules, default_zone=CLINIC_TZ, worker=worker, retention=kept
    )


def _gateway(session: Session) -> int:
    """The one gateway key whose answers these tests keep (created on first use)."""
    found = session.exec(select(ApiKey.id).where(ApiKey.name == "retention gateway")).first()
    if found is not None:
        return found
    key, _plaintext = permissions.create_key(session, Role.GATEWAY, "retention gateway", NOW)
    assert key.id is not None
    return key.id


def _keep_answer(session: Session, key: str, at: datetime) -> None:
    gateway = _gateway(session)
    scope = "readings:1:gateway"
    idempotency.remember_answer(session, gateway, scope, key, f"sha-{key}", 201, {"created": 1}, at)


def _kept_keys(engine: Engine) -> list[str]:
    with Session(engine) as session:
        return list(session.exec(select(IdempotentRequest.key).order_by(col(IdempotentRequest.id))))


def _audit(session: Session, at: datetime, action: str) -> None:
    key, _plaintext = permissions.create_key(session, Role.ADMIN, f"audit {action}", at)
    assert key.id is not None
    session.add(AuditEvent(at=at, api_key_id=key.id, action=action))
    session.flush()


def _audited(engine: Engine) -> list[str]:
    with Session(engine) as session:
        return list(session.exec(select(AuditEvent.action).order_by(col(AuditEvent.id))))


def _runs(engine: Engine) -> list[SchedulerRun]:
    with Session(engine) as session:
        return list(session.exec(select(SchedulerRun).where(col(SchedulerRun.job) == jobs.RETENTION_JOB)))


def test_answers_past_the_window_are_purged_fresh_ones_kept_and_still_replayed(
    engine: Engine, rules: FollowThrough
) -> None:
    with Session(engine) as session:
        _keep_answer(session, "older", NOW - WINDOW - DAY)
        _keep_answer(session, "just-past", NOW - WINDOW - SECOND)
        _keep_answer(session, "just-inside", NOW - WINDOW + SECOND)
        _keep_answer(session, "yesterday", NOW - DAY)
        session.commit()
    clock = MovableClock(NOW)

    details = jobs.run_retention(_context(engine, rules, clock))

    assert details == {
        "idempotent_request": 2,
        "idempotent_request_before": (NOW - WINDOW).isoformat(),
        "audit_event": 0,
        "audit_event_before": None,
    }
    assert _kept_keys(engine) == ["just-inside", "yesterday"]
    with Session(engine) as session:  # a retry inside the window still gets the first answer
        gateway = _gateway(session)
        scope = "readings:1:gateway"
        replayed = idempotency.replayed_answer(session, gateway, scope, "just-inside", "sha-just-inside")
        assert replayed is not None
        assert (replayed.status_code, replayed.response) == (201, {"created": 1})
        assert idempotency.replayed_answer(session, gateway, scope, "older", "sha-older") is None
    (run,) = _runs(engine)
    assert (run.business_date, run.finished_at is not None, run.error) == (D, True, None)
    assert run.details == details  # the run records what it deleted


def test_one_retention_run_a_business_date_however_many_schedulers(
    engine: Engine, rules: FollowThrough
) -> None:
    clock = MovableClock(local(D, 2, 59))  # before 03:00: yesterday's run is the one due
    first, second = _context(engine, rules, clock, worker="w1"), _context(engine, rules, clock, worker="w2")
    assert jobs.run_retention(first) is not None
    assert jobs.run_retention(second) is None
    clock.at = NOW
    with Session(engine) as session:
        _keep_answer(session, "old", NOW - WINDOW - DAY)
        session.commit()
    assert jobs.run_retention(second) is not None  # today's
    assert jobs.run_retention(first) is None
    assert _kept_keys(engine) == []
    assert [(r.business_date, r.claimed_by) for r in _runs(engine)] == [(D - DAY, "w1"), (D, "w2")]


def test_audit_rows_are_kept_forever_by_default(engine: Engine, rules: FollowThrough) -> None:
    with Session(engine) as session:
        _audit(session, NOW - 3650 * DAY, "ten-years-ago")
        _audit(session, NOW - DAY, "yesterday")
        session.commit()

    details = jobs.run_retention(_context(engine, rules, MovableClock(NOW)))

    assert details is not None
    assert (details["audit_event"], details["audit_event_before"]) == (0, None)
    assert _audited(engine) == ["ten-years-ago", "yesterday"]


def test_audit_rows_past_the_configured_retention_are_purged(
    engine: Engine, rules: FollowThrough, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATHWAY_AUDIT_RETENTION_DAYS", "365")
    kept = runner.context(Settings(), MovableClock(NOW)).retention
    assert kept == Retention(idempotency_days=DEFAULT_IDEMPOTENCY_RETENTION_DAYS, audit_days=365)
    with Session(engine) as session:
        _audit(session, NOW - 366 * DAY, "past")
        _audit(session, NOW - 365 * DAY - SECOND, "just-past")
        _audit(session, NOW - 364 * DAY, "inside")
        session.commit()

    details = jobs.run_retention(_context(engine, rules, MovableClock(NOW), kept))

    assert details is not None
    assert (details["audit_event"], details["audit_event_before"]) == (2, (NOW - 365 * DAY).isoformat())
    assert _audited(engine) == ["inside"]


def test_the_run_deletes_in_batches_each_committed(engine: Engine, rules: FollowThrough) -> None:
    with Session(engine) as session:
        for n in range(5):
            _keep_answer(session, f"old-{n}", NOW - WINDOW - (5 - n) * DAY)
        _keep_answer(session, "fresh", NOW - DAY)
        session.commit()
    steps: list[str] = []

    @event.listens_for(engine, "before_cursor_execute")
    def statement(_conn: Any, _cursor: Any, sql: str, *_args: Any) -> None:
        if sql.startswith("DELETE"):
            steps.append("delete")

    @event.listens_for(engine, "commit")
    def commit(_conn: Any) -> None:
        steps.append("commit")

    details = jobs.run_retention(_context(engine, rules, MovableClock(NOW), Retention(batch=2)))

    assert details is not None
    assert details["idempotent_request"] == 5
    assert _kept_keys(engine) == ["fresh"]
    deletes = [n for n, step in enumerate(steps) if step == "delete"]
    assert len(deletes) == 3  # 2 + 2 + 1 (of a batch holding the fresh row): then it stops
    assert all(steps[n + 1] == "commit" for n in deletes)  # each batch its own transaction


def test_a_batch_stops_at_the_first_newer_row(engine: Engine, rules: FollowThrough) -> None:
    """Rows are taken in id order up to the first one inside the window: an old row written after
    a newer one waits for a later run (it never keeps a newer row from being kept)."""
    with Session(engine) as session:
        _keep_answer(session, "old", NOW - WINDOW - DAY)
        _keep_answer(session, "fresh", NOW - DAY)
        _keep_answer(session, "late-old", NOW - WINDOW - DAY)
        session.commit()

    assert retention.purge(engine, "idempotent_request", NOW - WINDOW, batch=1) == 1
    assert _kept_keys(engine) == ["fresh", "late-old"]


def test_zero_keeps_answers_forever(engine: Engine, rules: FollowThrough) -> None:
    with Session(engine) as session:
        _keep_answer(session, "ancient", NOW - 3650 * DAY)
        session.commit()
    details = jobs.run_retention(_context(engine, rules, MovableClock(NOW), Retention(idempotency_days=0)))
    assert details is not None
    assert (details["idempotent_request"], details["idempotent_request_before"]) == (0, None)
    assert _kept_keys(engine) == ["ancient"]


def test_a_failed_retention_run_is_recorded_and_does_not_stop_the_start(
    engine: Engine,
    rules: FollowThrough,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    def broken(*_args: Any) -> dict[str, Any]:
        raise RuntimeError("lock timeout")

    monkeypatch.setattr(jobs, "purge_expired", broken)
    with caplog.at_level(logging.ERROR, "pathway.scheduler"):
        ran = jobs.start_up(_context(engine, rules, MovableClock(local(D, 7))))
    assert ran == {"Asia/Shanghai": [D]}  # the daily run went ahead
    assert "SCHEDULER RUN FAILED: retention 2026-03-10" in caplog.text
    (run,) = _runs(engine)
    assert (run.finished_at, run.error) == (None, "RuntimeError('lock timeout')")


def test_the_scheduler_runs_retention_at_03_00_clinic_time(engine: Engine, rules: FollowThrough) -> None:
    scheduler = runner.build_scheduler(_context(engine, rules, MovableClock(NOW)), blocking=True)
    job = scheduler.get_job(jobs.RETENTION_JOB)
    assert str(job.trigger.timezone) == "Asia/Shanghai"
    hour, minute = job.trigger.fields[5].expressions[0].first, job.trigger.fields[6].expressions[0].first
    assert (hour, minute) == (3, 0)
