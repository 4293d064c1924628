"""The daily issuing run over a county of 100,000 patients, and a team's daily list (a benchmark, not a test).

    python -m bench.schedule [--database sqlite|postgresql|both] [--patients 100000] [--team-size 2000]
                             [--sample 400] [--requests 200] [--postgres-url URL]

For each database, a fresh store (SQLite: a file in a temporary directory; PostgreSQL: a database
created on ``--postgres-url``'s server with ``CREATE DATABASE`` and dropped at the end), migrated
with Alembic, is filled in two steps:

1. **sample** — ``pathway demo --patients SAMPLE`` (the real command, in this process) stores
   ``--sample`` patients of the synthetic county (``pathway/demo.py``) through the service layer, as
   of yesterday 09:00 (clinic time): 18 months of visits, labs and wearable streams, assessed,
   referred, their tasks synced, yesterday's daily run done.
2. **clone** — the sample's rows (patients, complications, visits, readings, symptoms, assessments,
   referrals, tasks) are copied inside the database (``INSERT … SELECT``, one statement per table and
   copy of the sample), ids and foreign keys shifted and source ids suffixed, until the store holds
   ``--patients`` patients: the tables exactly as the product fills
   them, at the scale of a county, in teams of ``--team-size`` (``bench-000`` …). Cloned tasks are
   not issued yet (``issued_at``, ``overdue_at``, ``escalated_at`` empty): the clones join the
   store the way an imported district would, so the run has a full backlog to issue. PostgreSQL
   is ``ANALYZE``d afterwards (what autovacuum would do within a minute); SQLite is left as the
   product leaves it.

Then, timed:

3. **issuing run** — the product's daily job, ``scheduler.jobs.run_daily`` (claim the run, then
   ``pathway.tasks.issuing.issue_due`` over every team of the time zone — issue what is due, mark overdue,
   escalate, raise ``missed_3m`` / ``lost_to_follow_up`` — finish the run, commit) for today at
   06:00. Checked, not timed against a target: the same job again for the same date must find the
   run claimed, and ``issue_due`` itself run again for that date must change nothing. Then
   tomorrow's run (the steady state: only what newly falls due).
4. **daily list** — ``python -m pathway serve`` as a subprocess on the store, a team key of
   ``bench-000`` (``--team-size`` patients), and ``--requests`` sequential
   ``GET /v1/teams/{id}/tasks?date=TODAY&page=P`` (the default 50 items a page; P cycles over the
   first 5 pages, as a team pages through its list) on one keep-alive connection after 20 warm-up
   requests: p50 / p99 / max latency (request sent to body read). The list's ``total`` must equal
   the team's open tasks due by today, counted in the database. Also 10 requests for the whole
   list as CSV (``Accept: text/csv``), reported only.

Printed: a table per database with the targets of issue #4 — issuing 100,000 patients < 60 s,
daily-list p99 < 200 ms — each marked pass or FAIL. Missing a target is information, not a
failure: the exit status is 1 only if the benchmark itself broke (a step raised, the server did not
start, a non-200 answer, a rerun that changed something, a list whose total disagrees with the
store), else 0. The client runs on the same machine as the server and competes with it for CPU.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import io
import json
import math
import os
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from datetime import time as clock_time
from pathlib import Path
from typing import Any

from bench.figures import emit
from bench.ingest import HOST, fresh_database, redact, running_server

DEFAULT_POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/test"
TARGET_ISSUE_SECONDS = 60.0
TARGET_LIST_P99_MS = 200.0
TARGET_PATIENTS = 100_000
WARM_UP = 20
PAGES = 5
CSV_REQUESTS = 10
# Parents before children (foreign keys); how each table's foreign keys are remapped.
CLONED = (
    "patient",
    "patient_complication",
    "encounter",
    "assessment",
    "reading",
    "symptom_report",
    "referral",
    "care_task",
)
REMAPPED = {"encounter_id": "encounter", "assessment_id": "assessment"}
SUFFIXED = ("external_id", "source_encounter_id", "source_reading_id")
NOT_ISSUED = ("issued_at", "overdue_at", "escalated_at")


class BenchmarkBroken(Exception):
    """The benchmark could not measure (not a missed target)."""


@dataclass
class Run:
    database: str
    patients: int = 0
    teams: int = 0
    rows: dict[str, int] = field(default_factory=dict)
    sample_seconds: float = math.nan
    clone_seconds: float = math.nan
    issue_seconds: float = math.nan
    issue_report: dict[str, int] = field(default_factory=dict)
    rerun_claimed: bool | None = None
    rerun_seconds: float = math.nan
    rerun_report: dict[str, int] = field(default_factory=dict)
    next_seconds: float = math.nan
    next_report: dict[str, int] = field(default_factory=dict)
    list_total: int = -1
    list_expected: int = -1
    latencies: list[float] = field(default_factory=list)
    csv_latencies: list[float] = field(default_factory=list)
    csv_rows: int = 0
    failures: list[str] = field(default_factory=list)


def percentile_ms(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return math.nan
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)] * 1000


# --- 1. the sample, through the real command ------------------------------------------------------


def load_sample(url: str, patients: int, as_of: datetime) -> float:
    """``pathway demo`` on ``url`` (its output kept short); the seconds it took."""
    from pathway.cli import main

    output = io.StringIO()
    previous = os.environ.get("PATHWAY_DATABASE_URL")
    os.environ["PATHWAY_DATABASE_URL"] = url
    started = time.perf_counter()
    try:
        with contextlib.redirect_stdout(output):
            status = main(["demo", "--patients", str(patients), "--as-of", as_of.isoformat()])
    finally:
        if previous is None:
            del os.environ["PATHWAY_DATABASE_URL"]
        else:
            os.environ["PATHWAY_DATABASE_URL"] = previous
    elapsed = time.perf_counter() - started
    lines = output.getvalue().splitlines()
    for line in lines[:4]:
        print(f"    | {line}", flush=True)
    if status != 0:
        raise BenchmarkBroken(f"pathway demo exited with {status}: {' / '.join(lines[:3])}")
    return elapsed


# --- 2. the clones -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Sample:
    """How many patients the sample has (ids 1 … patients) and the largest id of each cloned table."""

    patients: int
    max_id: dict[str, int]


def read_sample(engine: Any) -> Sample:
    from sqlalchemy import func, select

    from pathway.store.tables import Patient

    tables = Patient.metadata.tables
    with engine.connect() as connection:
        max_id = {
            name: int(connection.execute(select(func.max(tables[name].c.id))).scalar() or 0)
            for name in CLONED
        }
        patients = int(connection.execute(select(func.count()).select_from(tables["patient"])).scalar_one())
    if patients != max_id["patient"]:
        raise BenchmarkBroken(f"the sample's patient ids are not 1 … {patients}: cannot clone by id shifts")
    return Sample(patients, max_id)


def create_teams(engine: Any, count: int) -> list[int]:
    from sqlmodel import Session

    from pathway.access import permissions

    with Session(engine) as session:
        teams = [
            permissions.create_team(
                session, f"bench-{n:03d}", f"即墨区 基准测试 家庭医生团队 {n + 1}", "home"
            )
            for n in range(count)
        ]
        session.commit()
        ids = [int(t.id or 0) for t in teams]
    if ids != list(range(ids[0], ids[0] + count)):
        raise BenchmarkBroken("the benchmark's team ids are not consecutive")
    return ids


def clone_statement(name: str, first_team: int, team_size: int) -> Any:
    """``INSERT INTO name SELECT …`` of one copy of the sample's rows of ``name``, every id shifted.

    Copy ``c`` of sample patient ``p`` (ids 1 … S) is patient ``p + (c+1)·S``, clone number
    ``c·S + p − 1``, in team ``first_team + clone // team_size``; every other row's id moves by
    ``(c+1)·max_id`` of its table, and so do its references. Bind parameters: ``shift_<table>``,
    ``sample_<table>`` (its largest sample id), ``copy_start`` (c·S), ``limit`` (how many patients
    of the sample this copy takes), ``suffix``.
    """
    from sqlalchemy import bindparam, insert, literal, null, select

    from pathway.store.tables import Patient

    table = Patient.metadata.tables[name]
    patient = table.c.id if name == "patient" else table.c.patient_id
    exprs: list[Any] = []
    for column in table.columns:
        if column.name == "id":
            exprs.append(column + bindparam(f"shift_{name}"))
        elif column.name == "patient_id":
            exprs.append(column + bindparam("shift_patient"))
        elif column.name in REMAPPED:
            exprs.append(column + bindparam(f"shift_{REMAPPED[column.name]}"))
        elif column.name == "team_id":
            clone_number: Any = bindparam("copy_start") + patient - 1
            exprs.append(literal(first_team) + clone_number // literal(team_size))
        elif column.name in SUFFIXED:
            exprs.append(column + bindparam("suffix"))
        elif name == "care_task" and column.name in NOT_ISSUED:
            exprs.append(null())
        else:
            exprs.append(column)
        exprs[-1] = exprs[-1].label(column.name)
    # only the sample's own rows (the copies before this one are in the table too)
    rows = select(*exprs).where(table.c.id <= bindparam(f"sample_{name}"), patient <= bindparam("limit"))
    return insert(table).from_select([c.name for c in table.columns], rows)


def clone(engine: Any, sample: Sample, clones: int, team_ids: list[int], team_size: int) -> None:
    """Insert ``clones`` patients copied from the sample, a copy of it per statement and table."""
    from sqlalchemy import text

    statements = {name: clone_statement(name, team_ids[0], team_size) for name in CLONED}
    copies = math.ceil(clones / sample.patients)
    with engine.begin() as connection:
        for copy in range(copies):
            params: dict[str, Any] = {f"shift_{n}": (copy + 1) * sample.max_id[n] for n in CLONED}
            params.update({f"sample_{n}": sample.max_id[n] for n in CLONED})
            params.update(
                copy_start=copy * sample.patients,
                limit=min(sample.patients, clones - copy * sample.patients),
                suffix=f"-x{copy}",
            )
            for name in CLONED:
                connection.execute(statements[name], params)
            if copy % 50 == 49:
                print(f"    | {min((copy + 1) * sample.patients, clones):,} of {clones:,} cloned", flush=True)
        if engine.dialect.name == "postgresql":  # explicit ids do not move the sequences
            for name in (*CLONED, "team"):
                connection.execute(
                    text(
                        f"SELECT setval(pg_get_serial_sequence('{name}', 'id'), (SELECT max(id) FROM {name}))"
                    )
                )
    if engine.dialect.name == "postgresql":
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.execute(text("ANALYZE"))


def build_store(run: Run, url: str, engine: Any, args: argparse.Namespace, as_of: datetime, say: str) -> None:
    """The benchmark's county on a migrated, empty store: ``pathway demo --patients args.sample``
    (1.), then its rows cloned until the store holds ``args.patients`` patients in teams of
    ``args.team_size`` (2.); the seconds of each kept in ``run``. ``say``: the prefix of its lines."""
    print(f"{say}1. sample: pathway demo --patients {args.sample} --as-of {as_of.isoformat()}", flush=True)
    run.sample_seconds = load_sample(url, args.sample, as_of)
    sample = read_sample(engine)
    clones = args.patients - sample.patients
    team_ids = create_teams(engine, math.ceil(clones / args.team_size))
    print(f"{say}2. clone: {clones:,} patients into {len(team_ids)} teams", flush=True)
    started = time.perf_counter()
    clone(engine, sample, clones, team_ids, args.team_size)
    run.clone_seconds = time.perf_counter() - started


def count_rows(engine: Any) -> dict[str, int]:
    from sqlalchemy import func, select

    from pathway.store.tables import Patient

    tables = Patient.metadata.tables
    with engine.connect() as connection:
        return {
            name: int(connection.execute(select(func.count()).select_from(tables[name])).scalar_one())
            for name in ("team", *CLONED)
        }


# --- 3. the issuing run ------------------------------------------------------------------------


def issuing_run(run: Run, url: str, today: date) -> None:
    from sqlmodel import Session

    from pathway.clinical.clock import FixedClock
    from pathway.settings import Settings
    from pathway.tasks import issuing as product
    from rules.registry import PackRegistry
    from scheduler import jobs, runner

    settings = Settings(database_url=url)
    zone = settings.tz
    morning = datetime.combine(today, jobs.DAILY_AT, tzinfo=zone)
    ctx = runner.context(settings, FixedClock(morning), PackRegistry.from_directory())
    try:
        started = time.perf_counter()
        report = jobs.run_daily(ctx, zone.key, today)
        run.issue_seconds = time.perf_counter() - started
        if report is None:
            raise BenchmarkBroken(f"the daily run of {today} was already claimed before the benchmark")
        run.issue_report = report.as_dict()
        run.rerun_claimed = jobs.run_daily(ctx, zone.key, today) is None
        with Session(ctx.engine) as session:
            started = time.perf_counter()
            again = product.issue_due(
                session, morning, ctx.rules, zone=zone.key, business_date=today, default_zone=zone
            )
            session.commit()
            run.rerun_seconds = time.perf_counter() - started
        run.rerun_report = again.as_dict()
        tomorrow = today + timedelta(days=1)
        later = replace(ctx, clock=FixedClock(morning + timedelta(days=1)))
        started = time.perf_counter()
        following = jobs.run_daily(later, zone.key, tomorrow)
        run.next_seconds = time.perf_counter() - started
        run.next_report = following.as_dict() if following else {}
    finally:
        ctx.engine.dispose()
    if not run.rerun_claimed:
        run.failures.append("the same day's job ran twice (its claim did not hold)")
    if any(run.rerun_report.values()):
        run.failures.append(f"issue_due again for the same date changed something: {run.rerun_report}")


# --- 4. the daily list -------------------------------------------------------------------------


def team_key(url: str, code: str) -> tuple[int, str]:
    from sqlmodel import Session

    from pathway.access import permissions
    from pathway.clinical.clock import SystemClock
    from pathway.store.db import make_engine

    engine = make_engine(url)
    try:
        with Session(engine) as session:
            team = permissions.team_by_code(session, code)
            _key, plaintext = permissions.create_key(
                session, permissions.Role.TEAM, "bench.schedule", SystemClock().now(), team_code=code
            )
            session.commit()
            return int(team.id or 0), plaintext
    finally:
        engine.dispose()


def due_by(url: str, team_id: int, day: date) -> int:
    """The team's open tasks due on or before ``day`` (nothing is snoozed in the benchmark)."""
    from sqlalchemy import func, select

    from pathway.store.db import make_engine
    from pathway.tasks.task_store import task_table

    task = task_table.c
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            statement = (
                select(func.count())
                .select_from(task_table)
                .where(task.team_id == team_id, task.status == "open", task.due_date <= day)
            )
            return int(connection.execute(statement).scalar_one())
    finally:
        engine.dispose()


def get(
    connection: http.client.HTTPConnection, path: str, headers: dict[str, str]
) -> tuple[int, bytes, float]:
    started = time.perf_counter()
    connection.request("GET", path, headers=headers)
    response = connection.getresponse()
    body = response.read()
    return response.status, body, time.perf_counter() - started


def daily_list(run: Run, url: str, today: date, requests: int) -> None:
    team_id, key = team_key(url, "bench-000")
    run.list_expected = due_by(url, team_id, today)
    headers = {"Authorization": f"Bearer {key}"}
    with tempfile.TemporaryDirectory(prefix="bench-schedule-logs-") as logs:
        os.environ.setdefault("PATHWAY_RATE_LIMIT_PER_SECOND", "0")  # one key, back to back
        with running_server(url, 1, Path(logs)) as port:
            connection = http.client.HTTPConnection(HOST, port, timeout=120)
            try:
                for n in range(WARM_UP + requests):
                    path = f"/v1/teams/{team_id}/tasks?date={today.isoformat()}&page={1 + n % PAGES}"
                    status, body, elapsed = get(connection, path, headers)
                    if status != 200:
                        raise BenchmarkBroken(f"GET {path} answered {status}: {body[:300]!r}")
                    if n >= WARM_UP:
                        run.latencies.append(elapsed)
                    run.list_total = int(json.loads(body)["total"])
                csv_headers = {**headers, "Accept": "text/csv"}
                for _ in range(CSV_REQUESTS):
                    path = f"/v1/teams/{team_id}/tasks?date={today.isoformat()}"
                    status, body, elapsed = get(connection, path, csv_headers)
                    if status != 200:
                        raise BenchmarkBroken(f"GET {path} (CSV) answered {status}: {body[:300]!r}")
                    run.csv_latencies.append(elapsed)
                    run.csv_rows = max(0, body.decode("utf-8-sig").count("\n") - 1)
            finally:
                connection.close()
    if run.list_total != run.list_expected:
        run.failures.append(
            f"the list's total is {run.list_total:,}; "
            f"the store holds {run.list_expected:,} open tasks due by {today}"
        )


# --- one database ------------------------------------------------------------------------------


def run_database(kind: str, args: argparse.Namespace) -> Run:
    from pathway.clinical.clock import SystemClock
    from pathway.settings import Settings
    from pathway.store.db import make_engine, migrate

    run = Run(kind)
    zone = Settings().tz
    today = SystemClock(zone).now().date()
    as_of = datetime.combine(today - timedelta(days=1), clock_time(9), tzinfo=zone)
    try:
        with fresh_database(kind, args.postgres_url) as url:
            print(f"[{kind}] fresh store {redact(url)}", flush=True)
            migrate(url)
            engine = make_engine(url)
            try:
                build_store(run, url, engine, args, as_of, f"[{kind}] ")
                run.rows = count_rows(engine)
            finally:
                engine.dispose()
            run.patients, run.teams = run.rows["patient"], run.rows["team"]
            print(f"[{kind}] store: " + ", ".join(f"{k} {v:,}" for k, v in run.rows.items()), flush=True)
            print(f"[{kind}] 3. the daily issuing run of {today} (06:00)", flush=True)
            issuing_run(run, url, today)
            print(f"[{kind}]    {run.issue_seconds:.1f} s: {run.issue_report}", flush=True)
            print(f"[{kind}] 4. the daily list of bench-000, {args.requests} requests", flush=True)
            daily_list(run, url, today, args.requests)
    except BenchmarkBroken as error:
        run.failures.append(str(error))
    except Exception as error:  # a broken benchmark is reported in the table, never hidden
        run.failures.append(f"{type(error).__name__}: {error}")
    for failure in run.failures:
        print(f"[{kind}] BROKEN: {failure}", flush=True)
    return run


# --- the report --------------------------------------------------------------------------------


def _mark(ok: bool) -> str:
    return "pass" if ok else "FAIL"


def _seconds(value: float) -> str:
    return "—" if math.isnan(value) else f"{value:,.1f}"


def _report(values: dict[str, int]) -> str:
    keys = ("issued", "overdue", "escalated", "missed_3m", "lost_to_follow_up")
    return " / ".join(f"{values.get(k, 0):,}" for k in keys) if values else "—"


def _issue(run: Run) -> str:
    if math.isnan(run.issue_seconds):
        return "—"
    return f"{run.issue_seconds:,.1f}  {_mark(run.issue_seconds < TARGET_ISSUE_SECONDS)}"


def _p99(run: Run) -> str:
    p99 = percentile_ms(run.latencies, 0.99)
    return "—" if math.isnan(p99) else f"{p99:,.1f}  {_mark(p99 < TARGET_LIST_P99_MS)}"


def _rerun(run: Run) -> str:
    if run.rerun_claimed is None:
        return "—"
    claimed = "claimed" if run.rerun_claimed else "RAN TWICE"
    changed = "nothing" if not any(run.rerun_report.values()) else "CHANGED"
    return f"{claimed}; {_seconds(run.rerun_seconds)} s, {changed}"


Cell = Callable[[Run], str]


def print_table(runs: list[Run], patients: int) -> None:
    figures: list[tuple[str, str, Cell]] = [
        ("patients / teams", "", lambda r: f"{r.patients:,} / {r.teams:,}"),
        ("visits / readings", "", lambda r: f"{r.rows.get('encounter', 0):,} / {r.rows.get('reading', 0):,}"),
        (
            "assessments / tasks",
            "",
            lambda r: f"{r.rows.get('assessment', 0):,} / {r.rows.get('care_task', 0):,}",
        ),
        ("load: sample via pathway demo (s)", "", lambda r: _seconds(r.sample_seconds)),
        ("load: clones, bulk (s)", "", lambda r: _seconds(r.clone_seconds)),
        (f"issuing run, {patients:,} patients (s)", f"< {TARGET_ISSUE_SECONDS:.0f}", _issue),
        ("  issued / overdue / escalated / 3m / LTFU", "", lambda r: _report(r.issue_report)),
        ("  same date again: job; issue_due", "claimed; nothing", _rerun),
        ("next day's run (s)", "", lambda r: _seconds(r.next_seconds)),
        ("  issued / overdue / escalated / 3m / LTFU", "", lambda r: _report(r.next_report)),
        ("daily list: total / in store", "equal", lambda r: f"{r.list_total:,} / {r.list_expected:,}"),
        ("daily list: requests (50 a page)", "", lambda r: f"{len(r.latencies):,}"),
        ("daily list p50 ms", "", lambda r: f"{percentile_ms(r.latencies, 0.5):,.1f}"),
        ("daily list p99 ms", f"< {TARGET_LIST_P99_MS:.0f}", _p99),
        ("daily list max ms", "", lambda r: f"{percentile_ms(r.latencies, 1.0):,.1f}"),
        (
            "whole list as CSV: rows, p50 ms",
            "",
            lambda r: f"{r.csv_rows:,}, {percentile_ms(r.csv_latencies, 0.5):,.0f}",
        ),
        ("status", "", lambda r: "BROKEN" if r.failures else "ok"),
    ]
    rows = [("database", "target (#4)", [r.database for r in runs])]
    rows += [(figure, target, [render(r) for r in runs]) for figure, target, render in figures]
    width_figure = max(len(row[0]) for row in rows)
    width_target = max(len(row[1]) for row in rows)
    width_cell = max(len(cell) for row in rows for cell in row[2])
    rule = "-" * (width_figure + width_target + (width_cell + 3) * len(runs) + 3)
    print()
    for n, (figure, target, cells) in enumerate(rows):
        if n in (0, 1):
            print(rule)
        line = f"{figure:<{width_figure}}   {target:<{width_target}}"
        print(line + "".join(f"   {cell:>{width_cell}}" for cell in cells))
    print(rule)


def emit_figures(runs: list[Run], patients: int) -> None:
    """The headline figures for ``python -m bench``."""
    for run in runs:
        seconds, p99 = run.issue_seconds, percentile_ms(run.latencies, 0.99)
        emit(
            f"{run.database} daily issuing run, {patients:,} patients (s)",
            _seconds(seconds),
            f"< {TARGET_ISSUE_SECONDS:.0f}",
            seconds < TARGET_ISSUE_SECONDS,
        )
        emit(f"{run.database} daily list p50 ms", f"{percentile_ms(run.latencies, 0.5):,.1f}")
        emit(
            f"{run.database} daily list p99 ms",
            f"{p99:,.1f}",
            f"< {TARGET_LIST_P99_MS:.0f}",
            p99 < TARGET_LIST_P99_MS,
        )
        emit(
            f"{run.database} reruns / list total", "BROKEN" if run.failures else "ok", "ok", not run.failures
        )


def main(argv: list[str] | None = None) -> int:
    assert __doc__ is not None
    parser = argparse.ArgumentParser(prog="python -m bench.schedule", description=__doc__.split("\n\n")[0])
    parser.add_argument("--database", choices=("sqlite", "postgresql", "both"), default="both")
    parser.add_argument(
        "--patients", type=int, default=TARGET_PATIENTS, help="patients in the store (100000)"
    )
    parser.add_argument("--team-size", type=int, default=2000, help="patients per cloned team (2000)")
    parser.add_argument("--sample", type=int, default=400, help="patients loaded through pathway demo (400)")
    parser.add_argument("--requests", type=int, default=200, help="daily-list requests timed (200)")
    parser.add_argument("--postgres-url", default=DEFAULT_POSTGRES_URL, help="server for the temp database")
    args = parser.parse_args(argv)
    if not 1 <= args.sample < args.patients or args.team_size < 1 or args.requests < 1:
        parser.error("need 1 <= --sample < --patients, and a positive --team-size and --requests")
    databases = ["sqlite", "postgresql"] if args.database == "both" else [args.database]
    print(
        f"bench.schedule: {', '.join(databases)}; {args.patients:,} patients ({args.sample} through "
        f"pathway demo, the rest cloned) in teams of {args.team_size:,}; {args.requests} list requests; "
        f"Python {sys.version.split()[0]}, {os.cpu_count()} CPUs"
    )
    runs = [run_database(kind, args) for kind in databases]
    print_table(runs, args.patients)
    emit_figures(runs, args.patients)
    problems = [f"{run.database}: {failure}" for run in runs for failure in run.failures]
    for problem in problems:
        print(f"BROKEN {problem}")
    if not problems:
        print("benchmark ok: every step ran, reruns changed nothing, the list matches the store")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
