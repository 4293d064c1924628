"""Ingest throughput of the HTTP API against a real server and database (a benchmark, not a test).

    python -m bench.ingest [--database sqlite|postgresql|both] [--seconds 20] [--concurrency 8]
                           [--workers 1] [--patients 300] [--batch 100]

For each database: a fresh store (SQLite: a file in a temporary directory; PostgreSQL: a database
created on ``--postgres-url``'s server with ``CREATE DATABASE`` and dropped at the end), then the
real server as a subprocess — ``python -m pathway serve --port P`` with ``PATHWAY_DATABASE_URL`` set
(it applies the migrations) — ready once ``GET /v1/rule-packs`` answers 200; ``--workers N`` is
passed on to ``pathway serve --workers N`` (N > 1 needs PostgreSQL; with ``both``, SQLite runs with one).

``--patients`` patients are registered with ``POST /v1/patients`` (deterministic data, no
``random``). Then two modes, each for ``--seconds`` from ``--concurrency`` client threads, one
keep-alive ``http.client`` connection each, every thread posting back to back to
``POST /v1/patients/{id}/readings?source_system=bench`` (patients taken round-robin):

1. **single** — a list of ONE wearable BP reading per request;
2. **batch** — ``--batch`` (100) wearable BP readings per request.

Every reading has a unique ``source_reading_id`` and a unique ``measured_at``, with an explicit
+08:00 offset and always in the past: the run's start time minus 1 h, minus 0–5 whole days, minus
1 ms per 6 readings (sent on 6 distinct days in the 7-day home-BP window, never two at one instant).

Printed per database and mode: requests/s, readings/s (created readings), p50/p99/max latency in ms
(request sent to response body read), and the non-2xx, 5xx and transport-error counts. After each
mode, exactly-once is checked: the readings created as reported by the responses (per-item status
and the ``created`` total, distinct reading ids) must equal the readings sent in acknowledged (2xx)
requests, with no duplicate and no rejected item, and the ``reading`` table must hold exactly those
rows (counted in the database): a batch answered with an error must have left nothing behind. Any
non-2xx answer or transport error is itself a failure (so every reading sent must be stored once).
The table ends with the targets of issue #3 — ≥ 500 single posts/s with p99 < 100 ms,
≥ 10,000 readings/s in batches — each marked pass or FAIL. Missing a target is information, not a
failure: the exit status is 1 only if the benchmark itself broke (the server did not start, any
non-2xx answer or transport error, a lost or duplicated reading), else 0.

The client threads run on the same machine as the server and compete with it for CPU.
``MALLOC_TRIM_THRESHOLD_``/``MALLOC_MMAP_THRESHOLD_`` (``make`` exports both, see README): the
environment is passed through to the server unchanged, so set them before running this; the ones
in effect are printed.
"""

from __future__ import annotations

import argparse
import http.client
import json
import math
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from bench.figures import emit

ROOT = Path(__file__).resolve().parent.parent
HOST = "127.0.0.1"
DEFAULT_POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/test"
SOURCE_SYSTEM = "bench"
OFFSET_TZ = timezone(timedelta(hours=8))  # every measured_at carries an explicit +08:00
REQUEST_TIMEOUT = 120.0
STARTUP_TIMEOUT = 90.0
MAX_TRANSPORT_ERRORS = 50  # per thread: past this the server is gone, stop hammering it
ERROR_SAMPLES = 3

TARGET_SINGLE_RPS = 500.0
TARGET_SINGLE_P99_MS = 100.0
TARGET_BATCH_READINGS_PS = 10_000.0


class BenchmarkBroken(Exception):
    """The benchmark could not measure (not a missed target)."""


def reported(measure: Callable[[], int]) -> int:
    """``measure()``'s exit status; a broken benchmark says so (``BROKEN …``) and exits 1 — never a
    hidden traceback, never a figure."""
    try:
        return measure()
    except BenchmarkBroken as error:
        print(f"BROKEN {error}")
    except Exception as error:  # a broken benchmark is reported, never hidden
        traceback.print_exc()
        print(f"BROKEN {type(error).__name__}: {error}")
    return 1


# --- synthetic data -------------------------------------------------------------------------------


def patient_body(i: int) -> dict[str, Any]:
    return {
        "source_system": SOURCE_SYSTEM,
        "external_id": f"p{i}",
        "sex": "male" if i % 2 else "female",
        "birth_date": f"{1940 + i % 40}-0{1 + i % 9}-15",
        "conditions": ["hypertension", "diabetes"][: 1 + i % 2],
    }


class ReadingSequence:
    """Hands out reading numbers, shared by the modes of one database run (thread-safe).

    Reading ``n`` is measured at ``anchor − 1 h − (n mod 6) days − (n div 6) ms``: inside the last
    7 days, never in the future, and no two readings share an instant (the ms part stays below a day).
    """

    MAX = 6 * 86_400_000

    def __init__(self) -> None:
        self.anchor = datetime.now(OFFSET_TZ).replace(microsecond=0)
        self._next = 0
        self._lock = threading.Lock()

    def take(self, count: int) -> range:
        with self._lock:
            start = self._next
            self._next += count
        if start + count > self.MAX:
            raise BenchmarkBroken("reading sequence exhausted: timestamps would leave the 7-day window")
        return range(start, start + count)

    def measured_at(self, n: int) -> str:
        offset = timedelta(hours=1, days=n % 6, milliseconds=n // 6)
        return (self.anchor - offset).isoformat(timespec="milliseconds")


def reading_body(seq: ReadingSequence, n: int, mode: str, patient_index: int) -> dict[str, Any]:
    return {
        "kind": "bp",
        "systolic": 112 + (7 * n) % 56,  # 112–167: never a crisis
        "diastolic": 68 + (5 * n) % 30,  # 68–97
        "pulse": 60 + n % 30,
        "unit": "mmHg",
        "source": "wearable",
        "measured_at": seq.measured_at(n),
        "device_id": f"bench-{mode}-cuff-{patient_index % 10}",
        "source_reading_id": f"{mode}-{n}",
    }


# --- results --------------------------------------------------------------------------------------


@dataclass
class ThreadStats:
    requests: int = 0
    ok: int = 0
    statuses: Counter[int] = field(default_factory=Counter)
    transport_errors: int = 0
    readings_sent: int = 0
    readings_ok: int = 0
    created: int = 0
    duplicate: int = 0
    rejected: int = 0
    item_mismatches: int = 0  # a 2xx whose items are not all "created" or whose totals disagree
    reading_ids: list[int] = field(default_factory=list)
    latencies: list[float] = field(default_factory=list)
    samples: list[str] = field(default_factory=list)

    def note(self, text: str) -> None:
        if len(self.samples) < ERROR_SAMPLES:
            self.samples.append(text[:300])


@dataclass
class ModeResult:
    mode: str
    per_request: int
    elapsed: float
    stats: ThreadStats
    distinct_ids: int
    stored: int = -1
    stored_distinct: int = -1

    @property
    def non_2xx(self) -> int:
        return sum(n for code, n in self.stats.statuses.items() if not 200 <= code < 300)

    @property
    def server_errors(self) -> int:
        return sum(n for code, n in self.stats.statuses.items() if code >= 500)

    @property
    def requests_per_s(self) -> float:
        return self.stats.ok / self.elapsed if self.elapsed else 0.0

    @property
    def readings_per_s(self) -> float:
        return self.stats.created / self.elapsed if self.elapsed else 0.0

    def latency_ms(self, q: float) -> float:
        values = sorted(self.stats.latencies)
        if not values:
            return math.nan
        return values[max(0, math.ceil(q * len(values)) - 1)] * 1000

    def problems(self) -> list[str]:
        """Why this mode's figures cannot be trusted (empty: exactly-once held, no errors)."""
        s = self.stats
        found: list[str] = []
        if s.ok == 0:
            found.append("no request succeeded")
        if self.non_2xx:
            bad = sorted((code, n) for code, n in s.statuses.items() if not 200 <= code < 300)
            codes = ", ".join(f"{n}× {code}" for code, n in bad)
            found.append(f"non-2xx answers: {codes}")
        if s.transport_errors:
            found.append(f"{s.transport_errors} transport errors")
        if s.created != s.readings_ok:
            found.append(f"{s.readings_ok:,} readings acknowledged (2xx) but {s.created:,} reported created")
        if s.duplicate or s.rejected:
            found.append(f"{s.duplicate:,} reported duplicate, {s.rejected:,} rejected")
        if s.item_mismatches:
            found.append(f"{s.item_mismatches:,} answers whose items disagree with their totals")
        if self.distinct_ids != s.created:
            found.append(f"{s.created:,} created but {self.distinct_ids:,} distinct reading ids")
        if self.stored != s.readings_ok or self.stored_distinct != self.stored:
            found.append(
                f"{s.readings_ok:,} readings acknowledged, {self.stored:,} rows stored "
                f"({self.stored_distinct:,} distinct source ids)"
            )
        return found


@dataclass
class DatabaseRun:
    database: str
    patients: int = 0
    register_seconds: float = 0.0
    modes: dict[str, ModeResult] = field(default_factory=dict)
    failure: str | None = None

    def problems(self) -> list[str]:
        found = [self.failure] if self.failure else []
        for result in self.modes.values():
            found.extend(f"{result.mode}: {problem}" for problem in result.problems())
        return found


# --- the store and the server ---------------------------------------------------------------------


@contextmanager
def fresh_database(kind: str, postgres_url: str) -> Iterator[str]:
    """The URL of a new, empty database of ``kind``; removed afterwards."""
    if kind == "sqlite":
        with tempfile.TemporaryDirectory(prefix="bench-ingest-") as directory:
            yield f"sqlite:///{Path(directory) / 'pathway.db'}"
        return
    from sqlalchemy import create_engine, text

    from pathway.store.db import database_url

    name = f"bench_ingest_{uuid.uuid4().hex[:12]}"
    admin = create_engine(database_url(postgres_url), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
        try:
            yield postgres_url.rsplit("/", 1)[0] + f"/{name}"
        finally:
            with admin.connect() as connection:
                connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        admin.dispose()


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((HOST, 0))
        port: int = probe.getsockname()[1]
        return port


def server_command(port: int, workers: int) -> list[str]:
    return [
        sys.executable, "-m", "pathway", "serve",
        "--host", HOST, "--port", str(port), "--workers", str(workers),
    ]  # fmt: skip


@contextmanager
def running_server(url: str, workers: int, log_dir: Path) -> Iterator[int]:
    """Start the server on ``url``'s database, wait until it answers, yield its port; always stop it."""
    from pathway.store.db import migrate

    migrate(url)  # `pathway serve` does this itself too; the admin key below needs the tables first
    AUTH["Authorization"] = f"Bearer {admin_key(url)}"
    port = free_port()
    env = dict(os.environ)  # MALLOC_* tunables and everything else pass through unchanged
    env["PATHWAY_DATABASE_URL"] = url
    # One admin key drives every client thread, far above one gateway's per-key rate limit: the
    # limiter is off here (this measures the store and the re-tiering, not the limiter).
    env.setdefault("PATHWAY_RATE_LIMIT_PER_SECOND", "0")
    log_path = log_dir / f"server-{port}.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            server_command(port, workers),
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: uvicorn workers are stopped with it
        )
    ready = False
    try:
        wait_until_ready(process, port, log_path)
        ready = True
        yield port
    finally:
        stop(process)
        if ready and process.returncode not in (0, -signal.SIGTERM):
            print(f"  server exited with {process.returncode}; log tail:\n{tail(log_path)}")


AUTH: dict[str, str] = {}


def admin_key(url: str) -> str:
    """An admin API key in the benchmark's database (every route needs a key)."""
    from sqlmodel import Session

    from pathway.access import permissions
    from pathway.clinical.clock import SystemClock
    from pathway.store.db import make_engine

    engine = make_engine(url)
    try:
        with Session(engine) as session:
            now = SystemClock().now()
            _key, plaintext = permissions.create_key(session, permissions.Role.ADMIN, "bench.ingest", now)
            session.commit()
    finally:
        engine.dispose()
    return plaintext


def wait_until_ready(process: subprocess.Popen[bytes], port: int, log_path: Path) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise BenchmarkBroken(f"server exited with {process.returncode} at start:\n{tail(log_path)}")
        connection = http.client.HTTPConnection(HOST, port, timeout=5)
        try:
            connection.request("GET", "/v1/rule-packs", headers=AUTH)
            response = connection.getresponse()
            response.read()
            if response.status == 200:
                return
        except (OSError, http.client.HTTPException):
            pass
        finally:
            connection.close()
        time.sleep(0.2)
    raise BenchmarkBroken(f"server did not answer GET /v1/rule-packs within {STARTUP_TIMEOUT:.0f} s")


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)  # the group of the server we started, nothing else
        process.wait(timeout=10)


def tail(path: Path, lines: int = 20) -> str:
    text = path.read_text(encoding="utf-8", errors="replace").splitlines()
    return "\n".join(f"    | {line}" for line in text[-lines:])


def stored_readings(url: str, mode: str) -> tuple[int, int]:
    """Rows of ``mode`` in the ``reading`` table, and their distinct source reading ids."""
    from sqlalchemy import text

    from pathway.store.db import make_engine

    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            row = connection.execute(
                text(
                    "SELECT count(*), count(DISTINCT source_reading_id) FROM reading "
                    "WHERE source_system = :system AND source_reading_id LIKE :prefix"
                ),
                {"system": SOURCE_SYSTEM, "prefix": f"{mode}-%"},
            ).one()
            return int(row[0]), int(row[1])
    finally:
        engine.dispose()


# --- the client -----------------------------------------------------------------------------------


def post_json(connection: http.client.HTTPConnection, path: str, body: bytes) -> tuple[int, bytes]:
    connection.request("POST", path, body=body, headers={"Content-Type": "application/json", **AUTH})
    response = connection.getresponse()
    return response.status, response.read()


def register_patients(port: int, count: int) -> list[int]:
    connection = http.client.HTTPConnection(HOST, port, timeout=REQUEST_TIMEOUT)
    ids: list[int] = []
    try:
        for i in range(count):
            status, data = post_json(connection, "/v1/patients", json.dumps(patient_body(i)).encode())
            if status != 201:
                raise BenchmarkBroken(f"POST /v1/patients answered {status}: {data[:300]!r}")
            ids.append(int(json.loads(data)["id"]))
    finally:
        connection.close()
    return ids


@dataclass
class Plan:
    mode: str
    per_request: int
    patient_ids: list[int]
    seq: ReadingSequence
    deadline: float = 0.0
    _request: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def next_request(self) -> tuple[str, bytes, int]:
        """The path, body and reading count of the next request (patients round-robin)."""
        with self._lock:
            r = self._request
            self._request += 1
        index = r % len(self.patient_ids)
        readings = [reading_body(self.seq, n, self.mode, index) for n in self.seq.take(self.per_request)]
        path = f"/v1/patients/{self.patient_ids[index]}/readings?source_system={SOURCE_SYSTEM}"
        return path, json.dumps(readings).encode(), len(readings)


def client_thread(port: int, plan: Plan, start: threading.Barrier, stats: ThreadStats) -> None:
    clock = time.perf_counter
    connection = http.client.HTTPConnection(HOST, port, timeout=REQUEST_TIMEOUT)
    start.wait()
    try:
        while clock() < plan.deadline and stats.transport_errors < MAX_TRANSPORT_ERRORS:
            path, body, count = plan.next_request()
            stats.requests += 1
            stats.readings_sent += count
            t0 = clock()
            try:
                status, data = post_json(connection, path, body)
            except (OSError, http.client.HTTPException) as error:
                stats.transport_errors += 1
                stats.note(f"transport: {type(error).__name__}: {error}")
                connection.close()
                connection = http.client.HTTPConnection(HOST, port, timeout=REQUEST_TIMEOUT)
                time.sleep(0.05)
                continue
            stats.latencies.append(clock() - t0)
            stats.statuses[status] += 1
            if not 200 <= status < 300:
                stats.note(f"{status}: {data.decode(errors='replace')}")
                continue
            stats.ok += 1
            stats.readings_ok += count
            check_answer(json.loads(data), count, stats)
    finally:
        connection.close()


def check_answer(answer: dict[str, Any], count: int, stats: ThreadStats) -> None:
    items: list[dict[str, Any]] = answer["items"]
    created = [item for item in items if item["status"] == "created"]
    stats.created += int(answer["created"])
    stats.duplicate += int(answer["duplicate"])
    stats.rejected += int(answer["rejected"])
    stats.reading_ids.extend(int(item["reading_id"]) for item in created)
    if len(items) != count or len(created) != int(answer["created"]):
        stats.item_mismatches += 1
    if answer["duplicate"] or answer["rejected"]:
        stats.note(f"items not created: {[i for i in items if i['status'] != 'created'][:2]}")


def run_mode(port: int, url: str, plan: Plan, concurrency: int, seconds: float) -> ModeResult:
    start = threading.Barrier(concurrency + 1)
    per_thread = [ThreadStats() for _ in range(concurrency)]
    threads = [
        threading.Thread(target=client_thread, args=(port, plan, start, stats), name=f"client-{k}")
        for k, stats in enumerate(per_thread)
    ]
    for thread in threads:
        thread.start()
    began = time.perf_counter()
    plan.deadline = began + seconds
    start.wait()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - began

    total = ThreadStats()
    for stats in per_thread:
        total.requests += stats.requests
        total.ok += stats.ok
        total.statuses.update(stats.statuses)
        total.transport_errors += stats.transport_errors
        total.readings_sent += stats.readings_sent
        total.readings_ok += stats.readings_ok
        total.created += stats.created
        total.duplicate += stats.duplicate
        total.rejected += stats.rejected
        total.item_mismatches += stats.item_mismatches
        total.reading_ids.extend(stats.reading_ids)
        total.latencies.extend(stats.latencies)
        for sample in stats.samples:
            total.note(sample)
    result = ModeResult(plan.mode, plan.per_request, elapsed, total, distinct_ids=len(set(total.reading_ids)))
    result.stored, result.stored_distinct = stored_readings(url, plan.mode)
    return result


def run_database(kind: str, args: argparse.Namespace) -> DatabaseRun:
    run = DatabaseRun(kind)
    seq = ReadingSequence()
    try:
        with (
            tempfile.TemporaryDirectory(prefix="bench-ingest-logs-") as logs,
            fresh_database(kind, args.postgres_url) as url,
            running_server(url, args.workers if kind == "postgresql" else 1, Path(logs)) as port,
        ):
            print(f"[{kind}] server up on port {port} ({redact(url)})", flush=True)
            t0 = time.perf_counter()
            ids = register_patients(port, args.patients)
            run.patients, run.register_seconds = len(ids), time.perf_counter() - t0
            print(f"[{kind}] {len(ids)} patients registered in {run.register_seconds:.1f} s", flush=True)
            for mode, per_request in (("single", 1), ("batch", args.batch)):
                plan = Plan(mode, per_request, ids, seq)
                result = run_mode(port, url, plan, args.concurrency, args.seconds)
                run.modes[mode] = result
                verdict = "; ".join(result.problems()) or "exactly-once ok"
                print(
                    f"[{kind}] {mode}: {result.stats.ok:,} requests in {result.elapsed:.1f} s, "
                    f"{result.requests_per_s:,.0f} req/s, {result.readings_per_s:,.0f} readings/s "
                    f"— {verdict}",
                    flush=True,
                )
                for sample in result.stats.samples:
                    print(f"[{kind}] {mode}: e.g. {sample}", flush=True)
    except BenchmarkBroken as error:
        run.failure = str(error)
    except Exception as error:  # a broken benchmark is reported in the table, never hidden
        run.failure = f"{type(error).__name__}: {error}"
    if run.failure:
        print(f"[{kind}] BROKEN: {run.failure}", flush=True)
    return run


def redact(url: str) -> str:
    if "@" not in url or "://" not in url:
        return url
    scheme, rest = url.split("://", 1)
    credentials, host = rest.rsplit("@", 1)
    return f"{scheme}://{credentials.split(':', 1)[0]}@{host}"


# --- the report -----------------------------------------------------------------------------------


def _mark(ok: bool) -> str:
    return "pass" if ok else "FAIL"


Cell = Callable[[ModeResult], str]


def _single_rps(r: ModeResult) -> str:
    return f"{r.requests_per_s:,.0f}  {_mark(r.requests_per_s >= TARGET_SINGLE_RPS)}"


def _single_p99(r: ModeResult) -> str:
    p99 = r.latency_ms(0.99)
    return f"{p99:,.1f}  {_mark(p99 < TARGET_SINGLE_P99_MS)}"


def _batch_readings_ps(r: ModeResult) -> str:
    return f"{r.readings_per_s:,.0f}  {_mark(r.readings_per_s >= TARGET_BATCH_READINGS_PS)}"


def _errors(r: ModeResult) -> str:
    broken = r.non_2xx or r.stats.transport_errors
    return f"{r.non_2xx} / {r.server_errors} / {r.stats.transport_errors}  {'BROKEN' if broken else 'ok'}"


def _exactly_once(r: ModeResult) -> str:
    s = r.stats
    ok = s.readings_ok == s.created == r.stored == r.distinct_ids == r.stored_distinct
    return f"{s.readings_ok:,} / {s.created:,} / {r.stored:,}  {'ok' if ok else 'BROKEN'}"


def _not_created(r: ModeResult) -> str:
    s = r.stats
    return f"{s.duplicate} / {s.rejected}  {'BROKEN' if s.duplicate or s.rejected else 'ok'}"


def report_rows(mode: str, runs: list[DatabaseRun], batch: int) -> list[tuple[str, str, list[str]]]:
    """(figure, target, one cell per database) for ``mode``; a target is marked pass or FAIL."""
    single = mode == "single"
    figures: list[tuple[str, str, Cell]] = [
        ("  requests ok / sent", "", lambda r: f"{r.stats.ok:,} / {r.stats.requests:,}"),
        (
            "  requests/s",
            f"≥ {TARGET_SINGLE_RPS:,.0f}" if single else "",
            _single_rps if single else lambda r: f"{r.requests_per_s:,.1f}",
        ),
        (
            "  readings/s",
            "" if single else f"≥ {TARGET_BATCH_READINGS_PS:,.0f}",
            (lambda r: f"{r.readings_per_s:,.0f}") if single else _batch_readings_ps,
        ),
        ("  p50 latency ms", "", lambda r: f"{r.latency_ms(0.50):,.1f}"),
        (
            "  p99 latency ms",
            f"< {TARGET_SINGLE_P99_MS:.0f}" if single else "",
            _single_p99 if single else lambda r: f"{r.latency_ms(0.99):,.1f}",
        ),
        ("  max latency ms", "", lambda r: f"{r.latency_ms(1.0):,.1f}"),
        ("  errors: non-2xx / 5xx / transport", "0", _errors),
        ("  readings sent", "", lambda r: f"{r.stats.readings_sent:,}"),
        ("  readings acked (2xx) / created / stored", "all equal", _exactly_once),
        ("  duplicate / rejected items", "0 / 0", _not_created),
    ]
    label = "single (1 reading a request)" if single else f"batch ({batch} readings a request)"
    rows: list[tuple[str, str, list[str]]] = [(label, "", ["" for _ in runs])]
    for figure, target, render in figures:
        cells = [render(run.modes[mode]) if mode in run.modes else "—" for run in runs]
        rows.append((figure, target, cells))
    return rows


def print_table(runs: list[DatabaseRun], batch: int) -> None:
    rows: list[tuple[str, str, list[str]]] = [("database", "target (#3)", [run.database for run in runs])]
    rows.append(("  patients registered", "", [f"{run.patients:,}" for run in runs]))
    rows.append(("  status", "", ["BROKEN" if run.problems() else "ok" for run in runs]))
    for mode in ("single", "batch"):
        rows.extend(report_rows(mode, runs, batch))
    width_figure = max(len(row[0]) for row in rows)
    width_target = max(len(row[1]) for row in rows)
    width_cell = max(len(cell) for row in rows for cell in row[2])
    rule = "-" * (width_figure + width_target + (width_cell + 3) * len(runs) + 3)
    print()
    for n, (figure, target, cells) in enumerate(rows):
        if n == 1 or (n > 1 and not figure.startswith(" ")):
            print(rule)
        line = f"{figure:<{width_figure}}   {target:<{width_target}}"
        print(line + "".join(f"   {cell:>{width_cell}}" for cell in cells))
    print(rule)


def emit_figures(runs: list[DatabaseRun], workers: int) -> None:
    """The headline figures for ``python -m bench``."""
    for run in runs:
        processes = f"{workers if run.database == 'postgresql' else 1} process(es)"
        single, batch = run.modes.get("single"), run.modes.get("batch")
        if single is not None:
            rps, p99 = single.requests_per_s, single.latency_ms(0.99)
            emit(f"{run.database} single posts/s, {processes}", f"{rps:,.0f}", f"≥ {TARGET_SINGLE_RPS:,.0f}",
                 rps >= TARGET_SINGLE_RPS)  # fmt: skip
            emit(f"{run.database} single post p99 ms", f"{p99:,.1f}", f"< {TARGET_SINGLE_P99_MS:.0f}",
                 p99 < TARGET_SINGLE_P99_MS)  # fmt: skip
        if batch is not None:
            per_s, target = batch.readings_per_s, TARGET_BATCH_READINGS_PS
            emit(
                f"{run.database} readings/s in batches", f"{per_s:,.0f}", f"≥ {target:,.0f}", per_s >= target
            )
        emit(f"{run.database} lost / duplicated / errors", "0" if not run.problems() else "BROKEN", "0",
             not run.problems())  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    assert __doc__ is not None
    parser = argparse.ArgumentParser(prog="python -m bench.ingest", description=__doc__.split("\n\n")[0])
    parser.add_argument("--database", choices=("sqlite", "postgresql", "both"), default="both")
    parser.add_argument("--seconds", type=float, default=20.0, help="duration of each mode (20)")
    parser.add_argument("--concurrency", type=int, default=8, help="client threads (8)")
    parser.add_argument("--workers", type=int, default=1, help="server processes (1: `pathway serve`)")
    parser.add_argument("--patients", type=int, default=300, help="patients registered (300)")
    parser.add_argument("--batch", type=int, default=100, help="readings per batch request (100)")
    parser.add_argument("--postgres-url", default=DEFAULT_POSTGRES_URL, help="server for the temp database")
    args = parser.parse_args(argv)
    if args.seconds <= 0 or args.concurrency < 1 or args.workers < 1 or args.patients < 1:
        parser.error("--seconds, --concurrency, --workers and --patients must be positive")
    if not 1 <= args.batch <= 1000:
        parser.error("--batch must be between 1 and 1,000 (the API's limit)")

    databases = ["sqlite", "postgresql"] if args.database == "both" else [args.database]
    malloc_env = ", ".join(f"{k}={v}" for k, v in sorted(os.environ.items()) if k.startswith("MALLOC_"))
    print(
        f"bench.ingest: {', '.join(databases)}; {args.seconds:g} s per mode, {args.concurrency} client "
        f"threads, {args.workers} server worker(s), {args.patients} patients, batches of {args.batch}; "
        f"Python {sys.version.split()[0]}, {os.cpu_count()} CPUs"
    )
    print(f"glibc tunables passed to the server: {malloc_env or 'none (make exports them; see README)'}")
    runs = [run_database(kind, args) for kind in databases]
    print_table(runs, args.batch)
    emit_figures(runs, args.workers)
    problems = [f"{run.database}: {problem}" for run in runs for problem in run.problems()]
    for problem in problems:
        print(f"BROKEN {problem}")
    if not problems:
        print("benchmark ok: no errors, every reading stored exactly once (targets are information only)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
