"""The floor of the stack on this machine (a benchmark, not a test).

    python -m bench.floor [--seconds 10] [--statements 8] [--workers 2]

What FastAPI + SQLModel + PostgreSQL serve on these cores when a route does nothing but run
statements and commit (``bench/floor_app.py``: no auth, no audit, no clinical work), under the
same kind of client as ``bench.load`` (keep-alive ``http.client`` threads on the same machine):

- ``nothing``: a GET answered from memory (the framework and the client alone);
- ``1 statement``: one INSERT … RETURNING, then the commit;
- ``N statements``: ``N - 1`` primary-key lookups and the INSERT, then the commit — through the
  session (as every route of the product runs them), and on the session's psycopg cursor (the
  difference is SQLAlchemy's own cost). ``--statements`` defaults to 8, the statements of a
  gateway batch (README, Benchmarks).

Read the product's figures against these: a route of ``N`` statements cannot serve more requests
per second than the floor of ``N`` statements, whatever its own code costs. Each figure is the
mean over ``--seconds``; runs vary by about ±10 % on these machines.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from bench.figures import emit
from bench.ingest import DEFAULT_POSTGRES_URL, HOST, ROOT, free_port, fresh_database, redact, stop, tail
from bench.load_client import cpu_ticks, database_backends, machine_ticks

STARTUP_TIMEOUT = 60.0


@dataclass(frozen=True)
class Scenario:
    name: str
    method: str
    path: str
    cycle: tuple[str, ...] = ()  # if set, each client sends these paths in turn (``path`` is unused)

    def paths(self) -> tuple[str, ...]:
        return self.cycle or (self.path,)


@dataclass
class Result:
    scenario: Scenario
    requests: int = 0
    errors: int = 0
    seconds: float = 0.0
    latencies: list[float] = field(default_factory=list)
    server_cpu: float = 0.0
    database_cpu: float = 0.0
    client_cpu: float = 0.0
    busy: float = 0.0

    @property
    def per_second(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    def percentile(self, q: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000 if ordered else float("nan")

    def cpu_ms(self, seconds: float) -> float:
        return seconds / self.requests * 1000 if self.requests else float("nan")


def scenarios(statements: int) -> list[Scenario]:
    n = statements
    return [
        Scenario("nothing (no database)", "GET", "/floor/nothing"),
        Scenario("1 statement + commit", "POST", "/floor/sqlalchemy?n=1"),
        Scenario(f"{statements} statements + commit", "POST", f"/floor/sqlalchemy?n={statements}"),
        Scenario(f"{statements} statements + commit, psycopg cursor", "POST", f"/floor/driver?n={n}"),
    ]


CYCLE = 20  # requests in the cycle of a fractional statement count: steps of 0.05 statements


def statements_scenario(statements: float) -> Scenario:
    """The SQLAlchemy route with ``statements`` statements + commit on average.

    A whole number is one route; a fraction mixes the two nearest, ``n`` and ``n + 1``, in a cycle
    of 20 requests (8.5: ten of 8 and ten of 9), so the mean is ``statements`` to 0.05. The cost of
    a request is close to linear in its statements, so this is a linear interpolation between the
    two routes, measured in one run under one load rather than computed from two.
    """
    low = int(statements)
    high = round((statements - low) * CYCLE)
    if high in (0, CYCLE):
        n = low + high // CYCLE
        return Scenario(f"{n} statements + commit", "POST", f"/floor/sqlalchemy?n={n}")
    # spread the longer requests evenly through the cycle (as Bresenham would)
    cycle = tuple(
        f"/floor/sqlalchemy?n={low + ((i + 1) * high // CYCLE - i * high // CYCLE)}" for i in range(CYCLE)
    )
    mean = low + high / CYCLE
    return Scenario(f"{mean:g} statements + commit ({low} and {low + 1})", "POST", cycle[0], cycle)


def process_tree(root: int) -> list[int]:
    """``root`` and its descendants, from /proc (the uvicorn supervisor and its workers)."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parents[int(entry.name)] = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
    found = [root]
    for pid in found:  # grows while iterating: breadth-first
        found.extend(child for child, parent in parents.items() if parent == pid and child not in found)
    return found


@contextmanager
def floor_server(url: str, workers: int, log_dir: Path) -> Iterator[tuple[int, subprocess.Popen[bytes]]]:
    from bench.floor_app import prepare
    from pathway.store.db import make_engine

    engine = make_engine(url)
    try:
        prepare(engine)
    finally:
        engine.dispose()
    port = free_port()
    env = dict(os.environ, FLOOR_DATABASE_URL=url)
    command = [
        sys.executable, "-m", "uvicorn", "--factory", "bench.floor_app:app_from_environment",
        "--host", HOST, "--port", str(port), "--workers", str(workers), "--log-level", "warning",
    ]  # fmt: skip
    log_path = log_dir / "floor-server.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while True:
            if process.poll() is not None:
                raise SystemExit(f"the floor server exited with {process.returncode}:\n{tail(log_path)}")
            try:
                connection = http.client.HTTPConnection(HOST, port, timeout=5)
                connection.request("GET", "/floor/nothing")
                if connection.getresponse().status == 200:
                    connection.close()
                    break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise SystemExit(f"the floor server did not answer within {STARTUP_TIMEOUT:.0f} s")
            time.sleep(0.2)
        yield port, process
    finally:
        stop(process)


def drive(port: int, scenario: Scenario, concurrency: int, seconds: float, result: Result) -> None:
    """``concurrency`` keep-alive clients, each sending as fast as it is answered, for ``seconds``."""
    lock = threading.Lock()
    start = threading.Barrier(concurrency + 1)
    deadline = [0.0]

    def client(k: int) -> None:
        connection = http.client.HTTPConnection(HOST, port, timeout=60)
        body = json.dumps({"looked_up_id": 1 + k * 37 % 1000, "note": f"client {k}"}).encode()
        headers = {"Content-Type": "application/json"}
        latencies: list[float] = []
        errors = 0
        paths, turn = scenario.paths(), k
        start.wait()
        while time.perf_counter() < deadline[0]:
            sent = time.perf_counter()
            payload = body if scenario.method == "POST" else None
            connection.request(scenario.method, paths[turn % len(paths)], payload, headers)
            turn += 1
            response = connection.getresponse()
            response.read()
            if response.status == 200:
                latencies.append(time.perf_counter() - sent)
            else:
                errors += 1
        connection.close()
        with lock:
            result.latencies.extend(latencies)
            result.errors += errors

    threads = [threading.Thread(target=client, args=(k,)) for k in range(concurrency)]
    for thread in threads:
        thread.start()
    deadline[0] = time.perf_counter() + seconds
    started = time.perf_counter()
    start.wait()
    for thread in threads:
        thread.join()
    result.seconds = time.perf_counter() - started
    result.requests = len(result.latencies)


def measure(port: int, server: int, url: str, scenario: Scenario, args: argparse.Namespace) -> Result:
    result = Result(scenario)
    drive(port, scenario, args.concurrency, min(2.0, args.seconds), Result(scenario))  # warm-up
    servers, backends = process_tree(server), database_backends(url)
    before, machine_before, client_before = cpu_ticks(servers + backends), machine_ticks(), os.times()
    drive(port, scenario, args.concurrency, args.seconds, result)
    after, machine_after, client_after = cpu_ticks(servers + backends), machine_ticks(), os.times()
    tick = os.sysconf("SC_CLK_TCK")

    def spent(pids: list[int]) -> float:
        return sum(after.get(pid, 0) - before.get(pid, 0) for pid in pids if pid in before) / tick

    result.server_cpu, result.database_cpu = spent(servers), spent(backends)
    result.client_cpu = client_after.user + client_after.system - client_before.user - client_before.system
    busy, total = machine_after[0] - machine_before[0], machine_after[1] - machine_before[1]
    result.busy = busy / total if total else float("nan")
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.floor", description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="duration of each scenario (10)")
    parser.add_argument("--statements", type=int, default=8, help="statements of the longer routes (8)")
    parser.add_argument("--workers", type=int, default=2, help="server processes (2)")
    parser.add_argument("--concurrency", type=int, default=16, help="client threads (16, as bench.load)")
    parser.add_argument("--postgres-url", default=DEFAULT_POSTGRES_URL, help="server for the temp database")
    args = parser.parse_args(argv)
    if not 1 <= args.statements <= 50:
        parser.error("--statements must be 1 to 50")

    print(
        f"bench.floor: {args.workers} worker(s), {args.concurrency} client threads, {args.seconds:g} s a "
        f"scenario, PostgreSQL at {redact(args.postgres_url)}; Python {sys.version.split()[0]}, "
        f"{os.cpu_count()} CPUs"
    )
    results: list[Result] = []
    with (
        fresh_database("postgresql", args.postgres_url) as url,
        tempfile.TemporaryDirectory() as logs,
        floor_server(url, args.workers, Path(logs)) as (port, process),
    ):
        for scenario in scenarios(args.statements):
            results.append(measure(port, process.pid, url, scenario, args))

    print()
    cpu_header = "CPU ms a request: server / db / client"
    header = f"{'route':<48} {'req/s':>8} {'p50 ms':>7} {'p99 ms':>7} {cpu_header:>40} {'busy':>5}"
    print(header)
    print("-" * len(header))
    for r in results:
        cpu = f"{r.cpu_ms(r.server_cpu):.2f} / {r.cpu_ms(r.database_cpu):.2f} / {r.cpu_ms(r.client_cpu):.2f}"
        latency = f"{r.percentile(0.5):>7.1f} {r.percentile(0.99):>7.1f}"
        print(f"{r.scenario.name:<48} {r.per_second:>8,.0f} {latency} {cpu:>40} {r.busy:>5.0%}")
    failed = [r for r in results if r.errors or not r.requests]
    for r in failed:
        print(f"  {r.scenario.name}: {r.errors} non-200 answers, {r.requests} answered")
    for r in results:
        emit(f"floor req/s: {r.scenario.name}", f"{r.per_second:,.0f}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
