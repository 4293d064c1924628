"""Province scale: a pack change over a large store — the population re-tier, the impact analysis,
the daily issuing run and a big team's list (a benchmark, not a test; issue #18 item 4).

    python -m bench.province [--patients 1000000] [--team-size 5000] [--sample 400] [--workers 2]
                             [--requests 200] [--postgres-url URL] [--skip-impact]
                             [--store NAME [--build-only]]

PostgreSQL only (the production store). The store is built as ``bench.schedule`` builds its county:
``pathway demo --patients SAMPLE`` through the service layer (18 months of visits, labs, wearable
streams, prescriptions, assessments, referrals and tasks), then the sample's rows cloned inside the
database (``INSERT … SELECT``, ids shifted) until it holds ``--patients`` patients in teams of
``--team-size``; then ``ANALYZE``. (Not ``COPY`` from the client: the rows never leave the server,
one statement a table and copy of the sample, and every clone is a history the service layer
wrote.) A sample of 400 holds 18 readings, 5 visits, 10 prescriptions and 1.1 assessments a
patient: 1,000,000 patients are ~18 M readings, ~5 M visits, ~1.1 M assessments.

With ``--store NAME`` the store is the database NAME, kept afterwards: built there if it holds no
patients yet, else measured as it is (a 1,000,000-patient store takes a while to build; the steps
below leave it reusable — the re-tier marks every assessment older first). ``--build-only`` stops
after building it.

Then, timed, each with wall time, patients/s and the peak RSS of the processes that did it:

1. **daily issuing run** — ``scheduler.jobs.run_daily`` for today (claimed, one transaction).
2. **team list** — ``GET /v1/teams/{id}/tasks`` of the first team (``--team-size`` patients) from a
   real server, p50 / p99 / max.
3. **population re-tier** — every assessment marked as made under an older edition of the pack
   (``pack_sha256``), then ``pathway packs retier --workers N``: every managed patient
   reassessed and its tasks synced, in claimed batches.
4. **impact analysis** — ``pathway packs impact --pack <the pack in force's file> --workers N``
   (every patient under both editions, nothing stored), unless ``--skip-impact``.

Targets of issue #18 on 2 cores: re-tier and impact < 10 min each for 1,000,000 patients, issuing
< 5 min, list p99 < 200 ms; a missed target is information (exit 0), a broken step exits 1.
"""

from __future__ import annotations

import argparse
import contextlib
import math
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from datetime import time as clock_time
from typing import Any

from bench.figures import emit
from bench.ingest import fresh_database, redact
from bench.schedule import (
    DEFAULT_POSTGRES_URL,
    Run,
    build_store,
    count_rows,
    daily_list,
    issuing_run,
    percentile_ms,
)

TARGET_RETIER_SECONDS = 600.0
TARGET_IMPACT_SECONDS = 600.0
TARGET_ISSUE_SECONDS = 300.0
TARGET_LIST_P99_MS = 200.0


@dataclass
class Timed:
    seconds: float = math.nan
    peak_rss_mb: float = math.nan
    output: str = ""


@dataclass
class Province:
    run: Run
    retier: Timed = field(default_factory=Timed)
    impact: Timed | None = None
    evaluation_ms: float = math.nan  # the floor: one evaluation of one patient, one core


def evaluation_floor(url: str, patients: int) -> float:
    """The floor under the re-tier and the impact analysis: milliseconds of one core to evaluate
    one patient's history (read beforehand, in batches; nothing stored) — the rule pack's work alone,
    on the first ``patients`` patients of the store (the sample's kinds of history)."""
    from sqlmodel import Session, col, select

    from api.main import pathway_config
    from pathway.clinical.clock import SystemClock
    from pathway.patients.history import histories_of
    from pathway.settings import Settings
    from pathway.store.db import make_engine
    from pathway.store.tables import Patient
    from rules.evaluation import Evaluator
    from rules.registry import PackRegistry

    settings = Settings(database_url=url)
    config = pathway_config(Evaluator(PackRegistry.from_directory()), settings)
    now = SystemClock(settings.tz).now()
    engine = make_engine(url)
    try:
        with Session(engine) as session:
            chosen = list(session.exec(select(Patient).order_by(col(Patient.id)).limit(patients)))
            histories: list[Any] = []
            for first in range(0, len(chosen), 500):
                batch = chosen[first : first + 500]
                read = histories_of(session, batch, evaluated_at=now, horizon=config.reading_horizon)
                histories.extend(read.values())
    finally:
        engine.dispose()
    for history in histories[:50]:  # warm
        config.assess(history, now)
    started = time.process_time()
    for history in histories:
        config.assess(history, now)
    return float((time.process_time() - started) / max(len(histories), 1) * 1000)


def _pathway(url: str, *args: str) -> Timed:
    """``pathway ARGS`` as a subprocess on ``url``: its wall time, peak RSS (the largest of its own
    process tree: ``wait4`` on it, not ``RUSAGE_CHILDREN``, which keeps the largest child this
    benchmark ever had, the store's build included) and output, shown as it comes (its progress
    lines: rate and ETA); a non-zero exit is a broken benchmark."""
    env = {**os.environ, "PATHWAY_DATABASE_URL": url}
    started = time.perf_counter()
    command = [sys.executable, "-m", "pathway", *args]
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert process.stdout is not None
    lines = []
    for line in process.stdout:
        print(f"    | {line}", end="", flush=True)
        lines.append(line)
    _, raw, usage = os.wait4(process.pid, 0)
    process.returncode = status = os.waitstatus_to_exitcode(raw)
    seconds = time.perf_counter() - started
    if status != 0:
        raise RuntimeError(f"pathway {' '.join(args)} exited {status}: {''.join(lines)[-2000:]}")
    peak = usage.ru_maxrss / 1024
    return Timed(seconds, peak, "".join(line for line in lines if not line.startswith("[")))


def _older_edition(url: str) -> None:
    from sqlalchemy import text

    from pathway.store.db import make_engine

    engine = make_engine(url)
    with engine.begin() as connection:
        connection.execute(text("UPDATE assessment SET pack_sha256 = 'bench-older-edition'"))
        connection.execute(text("DELETE FROM scheduler_run WHERE job LIKE 'retier %'"))
    engine.dispose()


def _has_impact() -> bool:
    done = subprocess.run(
        [sys.executable, "-m", "pathway", "packs", "impact", "--help"], capture_output=True, text=True
    )
    return done.returncode == 0


@contextlib.contextmanager
def _store(args: argparse.Namespace) -> Iterator[str]:
    """A fresh database (removed afterwards), or with ``--store`` the named one (created if missing,
    kept)."""
    if args.store is None:
        with fresh_database("postgresql", args.postgres_url) as url:
            yield url
        return
    from sqlalchemy import create_engine, text

    from pathway.store.db import database_url

    admin = create_engine(database_url(args.postgres_url), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            known = connection.execute(
                text("SELECT 1 FROM pg_database WHERE datname = :name"), {"name": args.store}
            ).first()
            if known is None:
                connection.execute(text(f'CREATE DATABASE "{args.store}"'))
    finally:
        admin.dispose()
    yield args.postgres_url.rsplit("/", 1)[0] + f"/{args.store}"


def _patients(engine: Any) -> int:
    from sqlalchemy import inspect, text

    if not inspect(engine).has_table("patient"):
        return 0
    with engine.connect() as connection:
        return int(connection.execute(text("SELECT count(*) FROM patient")).scalar_one())


def build_and_measure(args: argparse.Namespace) -> Province:
    from pathway.clinical.clock import SystemClock
    from pathway.settings import Settings
    from pathway.store.db import make_engine, migrate
    from rules.registry import PackRegistry

    run = Run("postgresql")
    province = Province(run)
    zone = Settings().tz
    today = SystemClock(zone).now().date()
    as_of = datetime.combine(today - timedelta(days=1), clock_time(9), tzinfo=zone)
    with _store(args) as url:
        engine = make_engine(url)
        try:
            if _patients(engine) == 0:
                print(f"building the store {redact(url)}", flush=True)
                migrate(url)
                build_store(run, url, engine, args, as_of, "")
                print(f"   built in {run.sample_seconds + run.clone_seconds:.0f} s", flush=True)
            else:
                print(f"the store {redact(url)} as it is", flush=True)
                migrate(url)
            run.rows = count_rows(engine)
        finally:
            engine.dispose()
        run.patients = run.rows["patient"]
        print("store: " + ", ".join(f"{k} {v:,}" for k, v in run.rows.items()), flush=True)
        if args.build_only:
            return province
        province.evaluation_ms = evaluation_floor(url, 2000)
        floor_seconds = province.evaluation_ms / 1000 * run.patients / 2
        print(
            f"0. the floor: {province.evaluation_ms:.2f} ms of a core to evaluate a patient (2,000 patients,"
            f" histories read beforehand): {run.patients:,} patients on 2 cores >= {floor_seconds:.0f} s"
            f" a re-tier, {2 * floor_seconds:.0f} s an impact analysis (two editions), before any I/O",
            flush=True,
        )
        print("1. the daily issuing run", flush=True)
        issuing_run(run, url, today)
        print(f"   {run.issue_seconds:.1f} s: {run.issue_report}", flush=True)
        print(f"2. the list of a team of {args.team_size:,}", flush=True)
        daily_list(run, url, today, args.requests)
        print(
            f"3. pathway packs retier --workers {args.workers} (after marking every assessment older)",
            flush=True,
        )
        _older_edition(url)
        province.retier = _pathway(url, "packs", "retier", "--workers", str(args.workers))
        print(f"   {province.retier.seconds:.1f} s: {province.retier.output.strip()}", flush=True)
        if not args.skip_impact and _has_impact():
            pack = PackRegistry.from_directory().get()
            print(f"4. pathway packs impact --pack {pack.path} --workers {args.workers}", flush=True)
            province.impact = _pathway(
                url, "packs", "impact", "--pack", str(pack.path), "--workers", str(args.workers)
            )
            print(f"   {province.impact.seconds:.1f} s", flush=True)
    return province


def report(province: Province, args: argparse.Namespace) -> None:
    run, n = province.run, max(province.run.patients, 1)
    p99 = percentile_ms(run.latencies, 0.99)
    rows: list[tuple[str, str, str, bool]] = [
        ("daily issuing run", f"{run.issue_seconds:.1f} s ({n / run.issue_seconds:,.0f} patients/s)",
         f"< {TARGET_ISSUE_SECONDS:.0f} s", run.issue_seconds < TARGET_ISSUE_SECONDS),
        (f"team list p99, team of {args.team_size:,}", f"{p99:.0f} ms", f"< {TARGET_LIST_P99_MS:.0f} ms",
         p99 < TARGET_LIST_P99_MS),
        ("population re-tier",
         f"{province.retier.seconds:.1f} s ({n / province.retier.seconds:,.0f} patients/s,"
         f" peak {province.retier.peak_rss_mb:.0f} MB)", f"< {TARGET_RETIER_SECONDS:.0f} s",
         province.retier.seconds < TARGET_RETIER_SECONDS),
    ]  # fmt: skip
    if province.impact is not None:
        impact = province.impact
        rows.append(("impact analysis", f"{impact.seconds:.1f} s ({n / impact.seconds:,.0f} patients/s,"
                     f" peak {impact.peak_rss_mb:.0f} MB)", f"< {TARGET_IMPACT_SECONDS:.0f} s",
                     impact.seconds < TARGET_IMPACT_SECONDS))  # fmt: skip
    floor = province.evaluation_ms / 1000 * n / 2
    rows.append(("evaluation alone, 2 cores (the floor)",
                 f"{province.evaluation_ms:.2f} ms a patient: re-tier >= {floor:.0f} s,"
                 f" impact >= {2 * floor:.0f} s", "", True))  # fmt: skip
    print(f"\nprovince: {n:,} patients, {args.workers} worker process(es); store " +
          ", ".join(f"{k} {v:,}" for k, v in run.rows.items()))  # fmt: skip
    for name, value, target, ok in rows:
        print(f"  {name:<36} {value:<52} {target:<10} {'pass' if ok else 'FAIL'}")
        emit(f"province {name}", value, target, ok)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.province", description=__doc__.split("\n\n")[0])
    parser.add_argument("--patients", type=int, default=1_000_000)
    parser.add_argument("--team-size", type=int, default=5000)
    parser.add_argument("--sample", type=int, default=400)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--postgres-url", default=DEFAULT_POSTGRES_URL)
    parser.add_argument("--skip-impact", action="store_true")
    parser.add_argument("--store", help="a database kept for the next run (built if it holds no patients)")
    parser.add_argument("--build-only", action="store_true", help="with --store: build it and stop")
    args = parser.parse_args(argv)
    try:
        province = build_and_measure(args)
    except Exception as error:  # a broken benchmark says so and exits 1
        print(f"BROKEN: {type(error).__name__}: {error}", flush=True)
        return 1
    if args.build_only:
        return 0
    report(province, args)
    return 1 if province.run.failures else 0


if __name__ == "__main__":
    sys.exit(main())
