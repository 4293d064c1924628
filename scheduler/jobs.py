"""The scheduler's jobs: claim a run in the database, then do it (``pathway.tasks``), once.

Whatever runs them (one process or several, in-process or not), the database decides: a run is
claimed by inserting (job, business_date) into ``scheduler_run`` (``INSERT … ON CONFLICT DO NOTHING
RETURNING``) and only the claimer proceeds; a claim left unfinished past its lease (the process
died) may be claimed again. Issuing itself is idempotent (``issued_at IS NULL`` guards), so even an
overlap issues each task once. Failures are logged loudly and recorded on the run; they are not
retried until the next trigger or start, which picks up every unfinished business date.

The retention run (:func:`run_retention`, 03:00 clinic time and at every start) is claimed the same
way, once a business date: it deletes kept Idempotency-Key answers past their retention and, only
when configured, audit rows past theirs (:mod:`pathway.runs.retention`).

Webhook delivery (:func:`deliver_webhooks`, every few seconds) is not claimed as a run: each
delivery is claimed on its own (:mod:`pathway.events.delivery`), so schedulers share the work.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Engine
from sqlmodel import Session

from pathway.clinical.clock import Clock
from pathway.clinical.policy import FollowThrough
from pathway.events import delivery
from pathway.events.delivery import DeliveryPolicy
from pathway.runs import claims
from pathway.runs.retention import Retention, purge_expired
from pathway.tasks import issuing, issuing_store

log = logging.getLogger("pathway.scheduler")

DAILY_AT = time(6, 0)  # the daily issuing run, in each team's time zone
RETENTION_AT = time(3, 0)  # the retention run, in the clinic's time zone (a quiet hour)
RETENTION_JOB = "retention"
HOUR = timedelta(hours=1)
DAY = timedelta(days=1)


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def died_on_this_host(worker: str) -> bool:
    """Whether ``worker`` (a :func:`worker_name`) was a process of this host that no longer exists.

    A scheduler killed mid-run (kill -9, a crash) is then taken over at once by the next one started
    on the same host instead of after the lease; on other hosts only the lease can tell.
    """
    host, _, pid = worker.rpartition(":")
    if host != socket.gethostname() or not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # alive, someone else's
        return False
    return False


@dataclass(frozen=True)
class Context:
    """What every job needs: the database, the clock, the pack's follow-through rules."""

    engine: Engine
    clock: Clock
    rules: FollowThrough
    default_zone: ZoneInfo
    lease: timedelta = timedelta(minutes=30)
    worker: str = field(default_factory=worker_name)
    retention: Retention = Retention()
    webhooks: DeliveryPolicy = DeliveryPolicy()


def daily_job(zone: str) -> str:
    return f"daily {zone}"


def hourly_job(zone: str, hour: int) -> str:
    return f"hourly {hour:02d} {zone}"


def zones(ctx: Context) -> list[str]:
    """Every time zone a daily run is needed in: the teams' and the clinic's (patients without a team)."""
    with Session(ctx.engine) as session:
        found = set(issuing_store.timezones_in_use(session))
    return sorted(found | {ctx.default_zone.key})


def claim(ctx: Context, job: str, business_date: date, now: datetime) -> int | None:
    """Claim (job, business_date) in its own committed transaction; the run id, or None if taken."""
    with Session(ctx.engine) as session:
        run_id = claims.claim_run(session, job, business_date, ctx.worker, now)
        holder = claims.unfinished_claimant(session, job, business_date) if run_id is None else None
        if holder is not None and holder != ctx.worker and died_on_this_host(holder):
            run_id = claims.take_over_run(session, job, business_date, holder, ctx.worker, now)
            if run_id is not None:
                log.warning("%s %s: took over the claim of %s, which is dead", job, business_date, holder)
        if run_id is None:
            run_id = claims.reclaim_stale_run(session, job, business_date, ctx.worker, now, now - ctx.lease)
            if run_id is not None:
                log.warning("%s %s: took over a claim whose lease ran out", job, business_date)
        session.commit()
    return run_id


def _claimed(ctx: Context, job: str, business_date: date, now: datetime) -> int | None:
    """The run id if this process claims (job, business_date); None (logged) if another one has."""
    run_id = claim(ctx, job, business_date, now)
    if run_id is None:
        log.info("%s %s: claimed by another scheduler", job, business_date)
    return run_id


def _failed(ctx: Context, run_id: int, job: str, business_date: date, error: BaseException) -> None:
    log.exception("SCHEDULER RUN FAILED: %s %s (run %s): %r", job, business_date, run_id, error)
    with Session(ctx.engine) as session:
        claims.fail_run(session, run_id, repr(error))
        session.commit()


def run_daily(ctx: Context, zone: str, business_date: date) -> issuing.IssueReport | None:
    """The daily run of one business date in one time zone, if this process claims it."""
    job = daily_job(zone)
    now = ctx.clock.now()
    run_id = _claimed(ctx, job, business_date, now)
    if run_id is None:
        return None
    try:
        with Session(ctx.engine) as session:
            report = issuing.issue_due(
                session,
                now,
                ctx.rules,
                zone=zone,
                business_date=business_date,
                default_zone=ctx.default_zone,
            )
            claims.finish_run(session, run_id, ctx.clock.now(), report.as_dict())
            session.commit()
    except Exception as error:
        _failed(ctx, run_id, job, business_date, error)
        raise
    log.info("%s %s: %s", job, business_date, report.as_dict())
    return report


def dates_to_run(ctx: Context, zone: str) -> list[date]:
    """Business dates whose daily run is due and not finished, oldest first.

    Every date after the last finished run up to the latest due one (today once 06:00 has passed,
    else yesterday), and any earlier date left unfinished; on a fresh store, just the latest.
    """
    job = daily_job(zone)
    local = ctx.clock.now().astimezone(ZoneInfo(zone))
    latest = local.date() if local.time() >= DAILY_AT else local.date() - DAY
    with Session(ctx.engine) as session:
        last = claims.last_finished_date(session, job)
        unfinished = claims.unfinished_dates(session, job)
    first = last + DAY if last is not None else latest
    due = {first + DAY * n for n in range((latest - first).days + 1)}
    return sorted(due | {d for d in unfinished if d <= latest})


def catch_up(ctx: Context, zone: str) -> list[date]:
    """Run the due daily runs of ``zone`` in date order; the dates this process ran.

    Stops at a date another scheduler holds: that one goes on with the later dates, so the runs
    of a zone happen one after the other, never side by side.
    """
    ran = []
    for business_date in dates_to_run(ctx, zone):
        if run_daily(ctx, zone, business_date) is None:
            break
        ran.append(business_date)
    return ran


def run_hourly(ctx: Context, zone: str) -> int | None:
    """Issue the hourly kinds due before the end of the coming hour; None if claimed elsewhere."""
    now = ctx.clock.now()
    local = now.astimezone(ZoneInfo(zone))
    slot = local.replace(minute=0, second=0, microsecond=0)
    job = hourly_job(zone, slot.hour)
    run_id = claim(ctx, job, slot.date(), now)
    if run_id is None:
        return None
    try:
        with Session(ctx.engine) as session:
            issued = issuing.issue_hourly(
                session, now, ctx.rules, until=slot + HOUR, zone=zone, default_zone=ctx.default_zone
            )
            claims.finish_run(session, run_id, ctx.clock.now(), {"issued": issued})
            session.commit()
    except Exception as error:
        _failed(ctx, run_id, job, slot.date(), error)
        raise
    log.info("%s %s: issued %d", job, slot.date(), issued)
    return issued


def every_hour(ctx: Context, zone: str) -> None:
    """The hourly job: any daily run still due (missed, or left by a scheduler that died), then
    the hourly issuing."""
    catch_up(ctx, zone)
    run_hourly(ctx, zone)


def retention_date(ctx: Context) -> date:
    """The business date of the latest retention run due: today once 03:00 has passed, else yesterday."""
    local = ctx.clock.now().astimezone(ctx.default_zone)
    return local.date() if local.time() >= RETENTION_AT else local.date() - DAY


def run_retention(ctx: Context) -> dict[str, Any] | None:
    """Delete what is past its retention, if this process claims today's run; what it deleted.

    One run a business date whatever the time zones: each run deletes everything then expired, so
    a missed date needs no run of its own. Its details record how many rows went and the cut-offs.
    """
    business_date = retention_date(ctx)
    now = ctx.clock.now()
    run_id = _claimed(ctx, RETENTION_JOB, business_date, now)
    if run_id is None:
        return None
    try:
        details = purge_expired(ctx.engine, ctx.retention, now)
        with Session(ctx.engine) as session:
            claims.finish_run(session, run_id, ctx.clock.now(), details)
            session.commit()
    except Exception as error:
        _failed(ctx, run_id, RETENTION_JOB, business_date, error)
        raise
    log.info("%s %s: %s", RETENTION_JOB, business_date, details)
    return details


def start_up(ctx: Context) -> dict[str, list[date]]:
    """On start: catch up every missed daily run and the current hour, in every time zone; then the
    retention run, if today's is not done (a failure there is logged and recorded, and does not
    stop the scheduler: the next day's run deletes what this one did not)."""
    ran = {}
    for zone in zones(ctx):
        ran[zone] = catch_up(ctx, zone)
        run_hourly(ctx, zone)
    with contextlib.suppress(Exception):
        run_retention(ctx)
    return ran


def deliver_webhooks(ctx: Context, rounds: int = 20) -> int:
    """Route new events to the subscriptions, then send what is due, round by round, until nothing
    is due (or ``rounds`` rounds); how many attempts were made.

    Each round claims a batch in its own committed transaction, POSTs each delivery holding no
    connection, and records each attempt in a transaction of its own: a scheduler killed at any
    point loses nothing (a claimed delivery is sent again once the claim is released). Claims of
    a dead process of this host are released at once, others' when their lease runs out.
    """
    policy, attempts = ctx.webhooks, 0
    for _round in range(rounds):
        now = ctx.clock.now()
        with Session(ctx.engine) as session:
            dead = [w for w in delivery.claimants(session, now) if w != ctx.worker and died_on_this_host(w)]
            if dead:
                log.warning("webhooks: releasing the claims of %s, which died", ", ".join(dead))
                delivery.release(session, dead)
            routed = delivery.route(session, now, policy)
            session.commit()
            due = delivery.claim(session, now, ctx.worker, policy)
            session.commit()
        if not due:
            if routed == 0:
                break
            continue
        for item in due:
            outcome = delivery.send(item, ctx.clock.now(), policy)
            with Session(ctx.engine) as session:
                delivery.record(session, item, outcome, ctx.clock.now(), ctx.worker, policy)
                session.commit()
            attempts += 1
    return attempts
