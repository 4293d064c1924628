"""Build and run the APScheduler 3.x scheduler (ENGINE-NOTES §2).

- :func:`start_background` — a BackgroundScheduler inside ``pathway serve`` (single machine);
  returns the function that stops it.
- :func:`run_blocking` — a BlockingScheduler for ``pathway scheduler`` (its own process).
- :func:`run_once` — catch up every missed run and deliver the webhooks due, then return
  (``pathway scheduler --once``, cron).

Jobs: per time zone in use, the daily run (06:00) and the hourly run; once, the retention run
(03:00, clinic time zone); webhook delivery every ``PATHWAY_WEBHOOK_INTERVAL_SECONDS``. Every start
also runs the retention run if today's is not done.

Triggers name the time zone (scheduler and trigger both), ``misfire_grace_time=None`` and
``coalesce=True`` so a run delayed by downtime still happens once, and every start catches up
every missed business date. Jobs live in memory; the database (claims, unique keys) is what makes
two schedulers safe, not APScheduler.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import date
from typing import Any

from apscheduler.events import EVENT_JOB_ERROR, EVENT_JOB_MISSED, JobExecutionEvent
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.schedulers.base import BaseScheduler
from apscheduler.schedulers.blocking import BlockingScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from pathway.clinical.clock import Clock
from pathway.events.delivery import DeliveryPolicy
from pathway.runs.retention import Retention
from pathway.settings import Settings
from pathway.store.db import make_engine
from rules.registry import DEFAULT_PACK_ID, PackRegistry
from scheduler import jobs

log = logging.getLogger("pathway.scheduler")

JOB_DEFAULTS = {"coalesce": True, "max_instances": 1, "misfire_grace_time": None}
WEBHOOKS_JOB = "webhooks"


def context(settings: Settings, clock: Clock, registry: PackRegistry | None = None) -> jobs.Context:
    """The jobs' context: an engine of its own and the follow-through rules of the pack in force."""
    pack = (registry or PackRegistry.from_directory()).in_force(DEFAULT_PACK_ID, on=None)
    return jobs.Context(
        engine=make_engine(settings.database_url, settings.database_pool_size),
        clock=clock,
        rules=pack.pack.policy.follow_through,
        default_zone=settings.tz,
        retention=Retention(settings.idempotency_retention_days, settings.audit_retention_days),
        webhooks=DeliveryPolicy(
            batch_size=settings.webhook_batch_size,
            timeout_seconds=settings.webhook_timeout_seconds,
            backoff_base_seconds=settings.webhook_backoff_base_seconds,
            backoff_cap_seconds=settings.webhook_backoff_cap_seconds,
            max_failures=settings.webhook_max_failures,
            interval_seconds=settings.webhook_interval_seconds,
        ),
    )


def build_scheduler(ctx: jobs.Context, *, blocking: bool) -> BaseScheduler:
    """A scheduler with a daily 06:00 and an hourly job per time zone in use, re-checked hourly, and
    the retention run at 03:00 in the clinic's time zone."""
    kind = BlockingScheduler if blocking else BackgroundScheduler
    scheduler: BaseScheduler = kind(timezone=ctx.default_zone, job_defaults=JOB_DEFAULTS)
    scheduler.add_listener(_report_failure, EVENT_JOB_ERROR | EVENT_JOB_MISSED)
    add_zone_jobs(scheduler, ctx)
    scheduler.add_job(
        jobs.run_retention,
        CronTrigger(hour=jobs.RETENTION_AT.hour, minute=jobs.RETENTION_AT.minute, timezone=ctx.default_zone),
        args=[ctx],
        id=jobs.RETENTION_JOB,
        replace_existing=True,
    )
    scheduler.add_job(
        jobs.deliver_webhooks,
        IntervalTrigger(seconds=ctx.webhooks.interval_seconds, timezone=ctx.default_zone),
        args=[ctx],
        id=WEBHOOKS_JOB,
        replace_existing=True,
    )
    scheduler.add_job(
        add_zone_jobs,
        IntervalTrigger(hours=1, timezone=ctx.default_zone),
        args=[scheduler, ctx],
        id="zones",
        replace_existing=True,
    )
    return scheduler


def add_zone_jobs(scheduler: BaseScheduler, ctx: jobs.Context) -> None:
    """Daily and hourly jobs for every time zone in use (a new team's zone is picked up here)."""
    for zone in jobs.zones(ctx):
        if scheduler.get_job(jobs.daily_job(zone)) is not None:
            continue
        scheduler.add_job(
            jobs.catch_up,
            CronTrigger(hour=jobs.DAILY_AT.hour, minute=jobs.DAILY_AT.minute, timezone=zone),
            args=[ctx, zone],
            id=jobs.daily_job(zone),
            replace_existing=True,
        )
        scheduler.add_job(
            jobs.every_hour,
            CronTrigger(minute=0, timezone=zone),
            args=[ctx, zone],
            id=f"hourly {zone}",
            replace_existing=True,
        )


def _report_failure(event: JobExecutionEvent) -> None:
    if event.exception is not None:
        log.error(
            "SCHEDULER JOB FAILED: %s at %s: %r", event.job_id, event.scheduled_run_time, event.exception
        )
    else:
        log.error("SCHEDULER JOB MISSED: %s at %s", event.job_id, event.scheduled_run_time)


def start_background(settings: Settings, clock: Clock) -> Callable[[], None]:
    """Start the in-process scheduler of ``pathway serve``; returns ``stop()`` (waits for a running job).

    The catch-up of missed runs is the scheduler's first job, so the server starts at once.
    """
    ctx = context(settings, clock)
    scheduler = build_scheduler(ctx, blocking=False)
    scheduler.add_job(jobs.start_up, args=[ctx], id="catch-up")
    scheduler.start()
    log.info("scheduler started in-process (%s)", ctx.worker)

    def stop() -> None:
        scheduler.shutdown(wait=True)
        ctx.engine.dispose()

    return stop


def run_blocking(settings: Settings, clock: Clock) -> None:
    """``pathway scheduler``: catch up, then run the jobs until interrupted."""
    ctx = context(settings, clock)
    try:
        _log_caught_up(jobs.start_up(ctx))
        scheduler = build_scheduler(ctx, blocking=True)
        log.info("scheduler running (%s); jobs: %s", ctx.worker, [j.id for j in scheduler.get_jobs()])
        scheduler.start()
    except (KeyboardInterrupt, SystemExit):
        log.info("scheduler stopped")
    finally:
        ctx.engine.dispose()


def run_once(settings: Settings, clock: Clock) -> dict[str, list[date]]:
    """Catch up every missed run once, then return what this process ran."""
    ctx = context(settings, clock)
    try:
        ran = jobs.start_up(ctx)
        jobs.deliver_webhooks(ctx)
    finally:
        ctx.engine.dispose()
    _log_caught_up(ran)
    return ran


def _log_caught_up(ran: dict[str, Any]) -> None:
    for zone, dates in ran.items():
        log.info("caught up %s: %s", zone, ", ".join(str(d) for d in dates) or "nothing missed")
