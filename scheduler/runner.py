"""Build and run the APScheduler 3.x scheduler (ENGINE-NOTES §2).

- :func:`start_background` — a BackgroundScheduler inside ``pathway serve`` (single machine);
  returns the function that stops it.
- :func:`run_blocking` — a BlockingScheduler for ``pathway scheduler`` (its own process).
- :func:`run_once` — catch up every missed run and deliver the webhooks due, then return
  (``pathway scheduler --once``, cron).

Jobs: per time zone in use, the daily run (06:00) and the hourly run; once, the retention run
(03:00, clinic time zone); webhook delivery every ``PATHWAY_WEBHOOK_INTERVAL_SECONDS``; the
population re-tier under the pack in force (at start, then hourly: a new edition is re-tiered
once, :mod:`scheduler.retier_job`). Every start also runs the retention run if today's is not done.

Triggers name the time zone (scheduler and trigger both), ``misfire_grace_time=None`` and
``coalesce=True`` so a run delayed by downtime still happens once, and every start catches up
every missed business date. Jobs live in memory; the database (claims, unique keys) is what makes
two schedulers safe, not APScheduler.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import date, datetime
from typing import Any

from apscheduler.events import EVENT_JOB_ERROR, EVENT_JOB_MISSED, JobExecutionEvent
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.schedulers.base import BaseScheduler
from apscheduler.schedulers.blocking import BlockingScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from pathway.clinical.clock import Clock
from pathway.events.delivery import DeliveryPolicy
from pathway.patients.reassessment import PathwayConfig
from pathway.runs.retention import Retention
from pathway.settings import Settings
from pathway.store.db import make_engine
from rules.evaluation import Evaluator
from rules.registry import PackRegistry
from scheduler import jobs
from scheduler.retier_job import RETIER_JOB_ID, run_retier

log = logging.getLogger("pathway.scheduler")

JOB_DEFAULTS = {"coalesce": True, "max_instances": 1, "misfire_grace_time": None}
WEBHOOKS_JOB = "webhooks"


def context(settings: Settings, clock: Clock, registry: PackRegistry | None = None) -> jobs.Context:
    """The jobs' context: an engine of its own and the follow-through rules of the deployment's pack
    (``PATHWAY_PACK_ID``) in force."""
    pack = (registry or PackRegistry.from_directory()).in_force(settings.pack_id, on=None)
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


def pathway_of(settings: Settings, evaluator: Evaluator | None) -> PathwayConfig:
    """The pack in force as the re-tier needs it, on the process's one rule engine (ENGINE-NOTES
    §1: one durable_rules host a process — ``pathway serve`` passes the API's)."""
    from api.main import pathway_config

    return pathway_config(evaluator or Evaluator(PackRegistry.from_directory()), settings)


def build_scheduler(
    ctx: jobs.Context, *, blocking: bool, pathway: PathwayConfig | None = None
) -> BaseScheduler:
    """A scheduler with a daily 06:00 and an hourly job per time zone in use, re-checked hourly, the
    retention run at 03:00 in the clinic's time zone and, given the pack in force, the re-tier (at
    once, then hourly: it does nothing once this edition's run has finished)."""
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
    if pathway is not None:
        scheduler.add_job(
            run_retier,
            IntervalTrigger(hours=1, timezone=ctx.default_zone),
            args=[ctx, pathway],
            id=RETIER_JOB_ID,
            replace_existing=True,
            next_run_time=datetime.now(ctx.default_zone),
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


def start_background(
    settings: Settings, clock: Clock, evaluator: Evaluator | None = None
) -> Callable[[], None]:
    """Start the in-process scheduler of ``pathway serve``; returns ``stop()`` (waits for a running job).

    The catch-up of missed runs is the scheduler's first job, so the server starts at once.
    ``evaluator``: the API's, when both run in this process (one rule engine a process).
    """
    ctx = context(settings, clock)
    scheduler = build_scheduler(ctx, blocking=False, pathway=pathway_of(settings, evaluator))
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
        scheduler = build_scheduler(ctx, blocking=True, pathway=pathway_of(settings, None))
        log.info("scheduler running (%s); jobs: %s", ctx.worker, [j.id for j in scheduler.get_jobs()])
        scheduler.start()
    except (KeyboardInterrupt, SystemExit):
        log.info("scheduler stopped")
    finally:
        ctx.engine.dispose()


def run_once(settings: Settings, clock: Clock, *, retier: bool = False) -> dict[str, list[date]]:
    """Catch up every missed run once, then return what this process ran. The re-tier only when
    asked (``pathway packs retier`` is the one-off command for it; a cron job stays short)."""
    ctx = context(settings, clock)
    try:
        ran = jobs.start_up(ctx)
        jobs.deliver_webhooks(ctx)
        if retier:
            run_retier(ctx, pathway_of(settings, None))
    finally:
        ctx.engine.dispose()
    _log_caught_up(ran)
    return ran


def _log_caught_up(ran: dict[str, Any]) -> None:
    for zone, dates in ran.items():
        log.info("caught up %s: %s", zone, ", ".join(str(d) for d in dates) or "nothing missed")
