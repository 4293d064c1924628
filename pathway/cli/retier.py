"""``pathway packs retier``: re-tier every managed patient under the pack in force, now.

The scheduler does this by itself once per new edition (:mod:`scheduler.retier_job`); this command
runs the same claimed, resumable run at once, split over ``--workers`` processes (patients by id
modulo the count; each process has its own rule engine and its own claim, ``… part k/n``). The
progress is read from the runs' claims (``scheduler_run.details``, what the dashboard shows) and
drawn on stderr: a bar with the rate and ETA on a terminal, a line every few seconds otherwise.
After the parts, the edition's whole run is claimed and finished (a scan that assesses nobody
left), so the scheduler does not do it again. Interrupted or killed, it is run again to go on.
"""

from __future__ import annotations

import multiprocessing
import sys
import time
from collections.abc import Callable
from typing import Any, TextIO

from pathway.cli.progress import ProgressBar
from pathway.cli.serve import _migrate, _settings


def _part(part: int, parts: int, batch: int | None) -> None:
    """One worker process: its own engine, context and claim."""
    from pathway.clinical.clock import SystemClock
    from scheduler import runner
    from scheduler.retier_job import run_retier

    settings = _settings()
    ctx = runner.context(settings, SystemClock(settings.tz))
    try:
        run_retier(ctx, runner.pathway_of(settings, None), batch=batch, part=part, parts=parts)
    finally:
        ctx.engine.dispose()


def progress_counts(details: list[dict[str, Any]]) -> tuple[int, int]:
    """(seen, total) over the parts' progress (a part not started yet counts nothing)."""
    seen = sum(int(d.get("seen", 0)) for d in details)
    total = max(sum(int(d.get("total", 0)) for d in details), seen)
    return seen, total


def _watch(
    read: Callable[[], list[dict[str, Any]]], alive: Callable[[], bool], out: TextIO, quiet: bool
) -> None:
    bar = ProgressBar(out, "patients", quiet=quiet)
    while alive():
        time.sleep(0.5)
        seen, total = progress_counts(read())
        if seen < total:
            bar(seen, total)
    _, total = progress_counts(read())
    bar(total, total)


def _retier(workers: int, batch: int | None, *, quiet: bool = False) -> int:
    """``pathway packs retier``: exit 0 when every part finished, 1 if one failed (it is recorded on
    its claim and the run goes on from its cursor next time)."""
    from sqlmodel import Session

    from pathway.clinical.clock import SystemClock
    from pathway.patients.retier import RetierProgress
    from pathway.runs import claims
    from scheduler import runner
    from scheduler.retier_job import retier_job, run_retier

    if workers < 1 or (batch is not None and batch < 1):
        print("error: --workers and --batch must be at least 1", file=sys.stderr)
        return 2
    settings = _settings()
    _migrate(settings.database_url)
    ctx = runner.context(settings, SystemClock(settings.tz))
    pathway = runner.pathway_of(settings, None)
    jobs = [retier_job(pathway, part, workers) for part in range(workers)]

    def read() -> list[dict[str, Any]]:
        with Session(ctx.engine) as session:
            found = {run.job: run.details for run in claims.runs(session, jobs[0].split(" part ")[0])}
        return [found.get(job, {}) for job in jobs]

    spawn = multiprocessing.get_context("spawn")  # never fork a process holding a rule engine
    processes = [spawn.Process(target=_part, args=(part, workers, batch)) for part in range(workers)]
    try:
        for process in processes:
            process.start()
        _watch(read, lambda: any(p.is_alive() for p in processes), sys.stderr, quiet)
        failed = [p for p in processes if p.exitcode != 0]
        if failed:
            print(
                f"error: {len(failed)} of {workers} re-tier processes failed; run again to go on",
                file=sys.stderr,
            )
            return 1
        whole = run_retier(ctx, pathway, batch=batch)  # the edition's run: nobody is left to assess
        parts = [RetierProgress.of(d) for d in read()]
        changes: dict[str, int] = {}
        for done in parts:
            for change, count in done.tier_changes.items():
                changes[change] = changes.get(change, 0) + count
        assessed = sum(p.assessed for p in parts) + (whole.assessed if whole else 0)
        print(f"re-tiered under {pathway.pack.id} {pathway.pack.version}: {assessed} assessed,"
              f" {sum(p.already_current for p in parts)} already current, {sum(p.busy for p in parts)} busy,"
              f" {sum(p.deferred for p in parts)} deferred")  # fmt: skip
        for change, count in sorted(changes.items()):
            print(f"  {change}\t{count}")
        return 0
    finally:
        for process in processes:
            if process.is_alive():
                process.terminate()
        ctx.engine.dispose()
