"""The population re-tier as a claimed, resumable scheduler run (:mod:`pathway.patients.retier`).

One run per pack edition (id, version and file): the job ``retier <id> <version> <sha256[:12]>``
(``… part k/n`` for one share of a run split over processes by ``pathway packs retier --workers``),
claimed in ``scheduler_run`` like every run. It starts by itself when a scheduler starts (a new
pack in force is a new edition) and is checked hourly; ``pathway packs retier`` runs it at once.
Each batch commits with the run's progress (cursor and counts in ``details``, which the dashboard
shows) and renews the claim's lease, so a run killed mid-batch is taken over — at once on the same
host, after the lease elsewhere — and goes on from its cursor; once finished, it is not run again.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import date

from sqlmodel import Session

from pathway.patients import retier
from pathway.patients.reassessment import PathwayConfig
from pathway.patients.retier import RetierProgress
from pathway.runs import claims
from scheduler import jobs

log = logging.getLogger("pathway.scheduler")

RETIER_JOB_ID = "retier"  # the APScheduler job (the runs it claims are named by retier_job)
RETIER_BATCH = 500  # patients a transaction: a batch lost to a crash is redone, never more
SQLITE_BATCH = 50  # SQLite has one writer: a shorter batch keeps the API's writes waiting less


def retier_job(config: PathwayConfig, part: int = 0, parts: int = 1) -> str:
    return retier.run_name(config, part, parts)


def _business_date(ctx: jobs.Context, job: str) -> date | None:
    """The date the run was first claimed under if it is unfinished, today if it never ran; None
    once it has finished."""
    with Session(ctx.engine) as session:
        unfinished = claims.unfinished_dates(session, job)
        if unfinished:
            return unfinished[0]
        if claims.last_finished_date(session, job) is not None:
            return None
    return ctx.clock.now().astimezone(ctx.default_zone).date()


def run_retier(
    ctx: jobs.Context,
    config: PathwayConfig,
    *,
    batch: int | None = None,
    part: int = 0,
    parts: int = 1,
    on_batch: Callable[[RetierProgress], None] | None = None,
) -> RetierProgress | None:
    """Re-tier every managed patient (of share ``part`` of ``parts``) under ``config``'s pack, if
    this process claims the run; its progress at the end, or None (finished before, or another
    process holds it)."""
    job = retier_job(config, part, parts)
    if batch is None:
        batch = SQLITE_BATCH if ctx.engine.dialect.name == "sqlite" else RETIER_BATCH
    business_date = _business_date(ctx, job)
    if business_date is None:
        return None
    run_id = jobs.claim(ctx, job, business_date, ctx.clock.now())
    if run_id is None:
        log.info("%s: claimed by another process", job)
        return None
    try:
        with Session(ctx.engine) as session:
            details = claims.run_details(session, run_id)
            if details.get("pack") == retier.pack_key(config):
                progress = RetierProgress.of(details)  # taken over: go on from its cursor
            else:
                progress = retier.start(session, config, parts)
        more = True
        while more:
            with Session(ctx.engine) as session:
                now = ctx.clock.now()
                # A write first: on SQLite it takes the one write lock before the batch reads who is
                # left, so a racing run sees this batch's assessments, not the state before them.
                claims.record_progress(session, run_id, now, progress.as_dict())
                more = retier.retier_batch(
                    session, config, now, progress, limit=batch, part=part, parts=parts
                )
                if more:
                    claims.record_progress(session, run_id, now, progress.as_dict())
                else:
                    claims.finish_run(session, run_id, now, progress.as_dict())
                session.commit()
            if on_batch is not None:
                on_batch(progress)
    except Exception as error:
        log.exception("SCHEDULER RUN FAILED: %s (run %s): %r", job, run_id, error)
        with Session(ctx.engine) as session:
            claims.fail_run(session, run_id, repr(error))
            session.commit()
        raise
    log.info("%s: %s", job, progress.as_dict())
    return progress
