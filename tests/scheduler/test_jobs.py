"""Claimed runs, catch-up after downtime, hourly issuing and the APScheduler set-up."""

from __future__ import annotations

import logging
import time as wall
from collections import Counter
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine
from sqlmodel import Session, col, select

from pathway.clinical.clock import CLINIC_TZ, FixedClock
from pathway.clinical.policy import FollowThrough
from pathway.runs import claims
from pathway.settings import Settings
from pathway.store.db import make_engine, migrate
from pathway.store.work_tables import CareTaskEvent, SchedulerRun
from pathway.tasks import issuing
from scheduler import jobs, runner
from tests.scheduler.conftest import DAY, add_patient, add_reading, add_task, add_team, local

D = date(2026, 3, 10)
ZONE = "Asia/Shanghai"


class MovableClock:
    def __init__(self, at: datetime) -> None:
        self.at = at

    def now(self) -> datetime:
        return self.at


def _context(engine: Engine, rules: FollowThrough, clock: MovableClock, worker: str = "w1") -> jobs.Context:
    return jobs.Context(engine=engine, clock=clock, rules=rules, default_zone=CLINIC_TZ, worker=worker)


def _issued(engine: Engine) -> Counter[int]:
    with Session(engine) as session:
        rows = session.exec(select(CareTaskEvent.task_id).where(col(CareTaskEvent.action) == "issued")).all()
    return Counter(rows)


def _finished_dates(engine: Engine) -> list[date]:
    with Session(engine) as session:
        runs = claims.runs(session, "daily ")
    return [r.business_date for r in runs if r.finished_at is not None]


def test_catch_up_after_3_days_down_runs_every_missed_date_and_issues_each_task_once(
    engine: Engine, rules: FollowThrough
) -> None:
    clock = MovableClock(local(D - 4 * DAY, 6, 0))
    with Session(engine) as session:
        team = add_team(session)
        patient = add_patient(session, team, local(D - 30 * DAY))
        add_reading(session, patient, local(D - 5 * DAY))
        due = [
            add_task(session, patient, team, local(D - n * DAY, 10), kind=k)
            for n, k in ((3, "follow_up_visit"), (2, "data_gap"), (1, "lipid_recheck"), (0, "annual_check"))
        ]
        later = add_task(session, patient, team, local(D + DAY, 10), kind="referral_follow_up")
        session.commit()
    ctx = _context(engine, rules, clock)
    assert jobs.catch_up(ctx, ZONE) == [D - 4 * DAY]  # the last day the machine was up

    clock.at = local(D, 7, 30)  # back after 3 days off, after 06:00
    assert jobs.dates_to_run(ctx, ZONE) == [D - 3 * DAY, D - 2 * DAY, D - DAY, D]
    assert jobs.catch_up(ctx, ZONE) == [D - 3 * DAY, D - 2 * DAY, D - DAY, D]
    assert jobs.catch_up(_context(engine, rules, clock, "w2"), ZONE) == []  # a second scheduler: nothing
    issued = _issued(engine)
    assert set(issued) == set(due)
    assert set(issued.values()) == {1}
    assert later not in issued
    assert _finished_dates(engine) == [D - 4 * DAY, D - 3 * DAY, D - 2 * DAY, D - DAY, D]
    with Session(engine) as session:  # each task was issued by the run of the date it fell due
        events = session.exec(select(CareTaskEvent).where(col(CareTaskEvent.action) == "issued")).all()
        assert sorted(e.details["business_date"] for e in events) == [
            str(D - 3 * DAY),
            str(D - 2 * DAY),
            str(D - DAY),
            str(D),
        ]

    clock.at = local(D + DAY, 5, 59)  # before 06:00 the next day is not due yet
    assert jobs.dates_to_run(ctx, ZONE) == []


def test_a_claim_is_taken_once_and_a_crashed_one_after_its_lease(
    engine: Engine, rules: FollowThrough
) -> None:
    clock = MovableClock(local(D, 6, 0))
    first, second = _context(engine, rules, clock, "w1"), _context(engine, rules, clock, "w2")
    assert jobs.claim(first, "daily Asia/Shanghai", D, clock.now()) is not None
    assert jobs.claim(second, "daily Asia/Shanghai", D, clock.now()) is None
    assert jobs.run_daily(second, ZONE, D) is None  # claimed by w1, which "crashed": never finished
    clock.at += first.lease - timedelta(seconds=1)
    assert jobs.claim(second, "daily Asia/Shanghai", D, clock.now()) is None  # the lease still holds
    clock.at += timedelta(seconds=2)
    assert jobs.dates_to_run(second, ZONE) == [D]  # unfinished: still to run
    assert jobs.run_daily(second, ZONE, D) is not None
    with Session(engine) as session:
        run = session.exec(select(SchedulerRun)).one()
        assert (run.claimed_by, run.finished_at is not None) == ("w2", True)


def test_a_failing_run_is_logged_loudly_recorded_and_left_to_the_next_start(
    engine: Engine, rules: FollowThrough, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    clock = MovableClock(local(D, 6, 0))
    ctx = _context(engine, rules, clock)

    def broken(*_args: Any, **_kwargs: Any) -> issuing.IssueReport:
        raise RuntimeError("disk full")

    monkeypatch.setattr(issuing, "issue_due", broken)
    with caplog.at_level(logging.ERROR, "pathway.scheduler"), pytest.raises(RuntimeError):
        jobs.run_daily(ctx, ZONE, D)
    assert "SCHEDULER RUN FAILED: daily Asia/Shanghai 2026-03-10" in caplog.text
    with Session(engine) as session:
        run = session.exec(select(SchedulerRun)).one()
        assert (run.finished_at, run.error) == (None, "RuntimeError('disk full')")
    monkeypatch.undo()
    clock.at += ctx.lease + DAY
    assert D in jobs.dates_to_run(ctx, ZONE)


def test_the_hourly_run_issues_rechecks_due_before_the_next_hour(
    engine: Engine, rules: FollowThrough
) -> None:
    clock = MovableClock(local(D, 10, 5))
    with Session(engine) as session:
        team = add_team(session)
        patient = add_patient(session, team, local(D - 30 * DAY))
        soon = add_task(session, patient, team, local(D, 10, 50), kind="bp_recheck")
        add_task(session, patient, team, local(D, 11, 10), kind="urgent_referral")
        add_task(session, patient, team, local(D, 10, 30), kind="follow_up_visit")  # not an hourly kind
        session.commit()
    ctx = _context(engine, rules, clock)
    assert jobs.run_hourly(ctx, ZONE) == 1
    assert jobs.run_hourly(_context(engine, rules, clock, "w2"), ZONE) is None  # this hour is claimed
    assert set(_issued(engine)) == {soon}


def test_the_scheduler_names_the_time_zone_and_never_drops_a_late_run(
    engine: Engine, rules: FollowThrough
) -> None:
    with Session(engine) as session:
        add_team(session, "urumqi", "Asia/Urumqi")
        session.commit()
    ctx = _context(engine, rules, MovableClock(local(D, 7)))
    scheduler = runner.build_scheduler(ctx, blocking=True)
    daily = scheduler.get_job("daily Asia/Urumqi")
    assert str(daily.trigger.timezone) == "Asia/Urumqi"
    assert (daily.trigger.fields[5].expressions[0].first, daily.trigger.fields[6].expressions[0].first) == (
        6,
        0,
    )
    assert str(scheduler.get_job("daily Asia/Shanghai").trigger.timezone) == "Asia/Shanghai"
    assert str(scheduler.timezone) == "Asia/Shanghai"
    assert runner.JOB_DEFAULTS == {"coalesce": True, "max_instances": 1, "misfire_grace_time": None}


def test_start_background_catches_up_in_process_and_stops(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'pathway.db'}"
    migrate(url)
    stop = runner.start_background(Settings(database_url=url), FixedClock(local(D, 7)))
    try:
        engine = make_engine(url)
        deadline = wall.monotonic() + 10
        while D not in _finished_dates(engine):
            assert wall.monotonic() < deadline, "the in-process catch-up did not run"
            wall.sleep(0.05)
        engine.dispose()
    finally:
        stop()
