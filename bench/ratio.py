"""The product's mixed load as a share of the floor of its statements, in one run (a benchmark).

    python -m bench.ratio [--seconds 20] [--workers 2] [--repeat 3] [--statements 10.5]
                          [--patients 600] [--concurrency 16] [--seed 5] [--rate-limit 200] ...

Two servers side by side, each with ``--workers`` uvicorn workers on its own fresh PostgreSQL
database: the product (``pathway serve``, with bench.load's world: teams, keys, patients linked to
gateways) and the floor app (``bench/floor_app.py``). Then ``--repeat`` times, alternately:

1. bench.load's mixed traffic (:func:`bench.load_client.run_measured`) for ``--seconds``;
2. the floor route of the same number of statements, under ``--concurrency`` keep-alive clients
   like bench.load's, for ``--seconds`` (:func:`bench.floor.measure`, after its 2 s warm-up).

``--statements`` is a mixed request's statements on average, BEGIN and COMMIT included, as
``pg_stat_statements`` counts them (10.5: README, "The floor of the stack"). The floor route runs
``n`` statements between its own BEGIN and COMMIT, so it is asked for ``statements - 2`` (8.5):
a fraction is the two nearest routes in turn (8 and 9, half each; :func:`bench.floor.statements_scenario`).

Printed per repeat: the product's 2xx requests/s, the floor's requests/s, their ratio, and the CPU
milliseconds a request of each server; then the median ratio, as a FIGURE line against the target
of issue #18 (≥ 50 %). While one server is measured the other is idle. Afterwards every reading and
visit the product acknowledged, over all runs, is checked in its database as bench.load checks it
(stored once, tiers consistent); exit status 1 if that, or any run, broke.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

from bench.figures import emit
from bench.floor import Result, floor_server, measure, statements_scenario
from bench.ingest import fresh_database, redact, reported, running_server
from bench.load import add_world_options
from bench.load_check import problems, server_log_problems, verify
from bench.load_client import ClientStats, Traffic, merge, register, run_measured
from bench.load_world import PACE_SHARE, provision

TARGET_SHARE = 0.5
WARM_UP_SECONDS = 3.0
BEGIN_AND_COMMIT = 2


def product_ms(traffic: Traffic) -> float:
    """Server CPU milliseconds per answered request (all server processes)."""
    calls = len(traffic.stats.calls)
    return sum(traffic.server_cpu) / calls * 1000 if calls and traffic.server_cpu else float("nan")


def run(args: argparse.Namespace) -> int:
    scenario = statements_scenario(args.statements - BEGIN_AND_COMMIT)
    rows: list[tuple[Traffic, Result]] = []
    total = ClientStats()
    with (
        tempfile.TemporaryDirectory(prefix="bench-ratio-logs-") as logs,
        fresh_database("postgresql", args.postgres_url) as url,
        fresh_database("postgresql", args.postgres_url) as floor_url,
    ):
        with (
            running_server(url, args.workers, Path(logs)) as port,
            floor_server(floor_url, args.workers, Path(logs)) as (floor_port, floor_process),
        ):
            t0 = time.perf_counter()
            world = provision(url, args, args.rate_limit)
            register(port, world, min(8, args.concurrency))
            print(
                f"product on port {port} ({redact(url)}), floor on port {floor_port}; "
                f"{len(world.patients)} patients set up in {time.perf_counter() - t0:.1f} s; "
                f"floor route: {scenario.name}",
                flush=True,
            )
            warm = run_measured(port, url, world, _seconds(args, WARM_UP_SECONDS), run=1)
            merge(total, warm.stats)
            for k in range(args.repeat):
                traffic = run_measured(port, url, world, args, run=2 + k)
                merge(total, traffic.stats)
                floor = measure(floor_port, floor_process.pid, floor_url, scenario, args)
                rows.append((traffic, floor))
                other = {c: n for c, n in sorted(traffic.statuses().items()) if not 200 <= c < 300}
                if other:
                    print(f"  run {k + 1}: non-2xx answers {other}; e.g. {traffic.stats.notes[:1]}")
                print(
                    f"  run {k + 1}: product {traffic.requests_per_s():,.1f} req/s "
                    f"({product_ms(traffic):.1f} server CPU ms a request, {traffic.machine_busy:.0%} busy), "
                    f"floor {floor.per_second:,.1f} req/s ({floor.cpu_ms(floor.server_cpu):.2f} ms, "
                    f"{floor.busy:.0%} busy): {_share(traffic, floor):.1%}",
                    flush=True,
                )
            log_lines = server_log_problems(Path(logs))
        verification = verify(url, total)

    shares = [_share(traffic, floor) for traffic, floor in rows]
    product = [traffic.requests_per_s() for traffic, _ in rows]
    floors = [floor.per_second for _, floor in rows]
    median = statistics.median(shares)
    print()
    print(f"product mixed req/s: {_range(product, '.1f')}")
    print(f"floor req/s, {scenario.name}: {_range(floors, '.1f')}")
    listed = ", ".join(f"{s:.1%}" for s in shares)
    print(f"ratio: {listed}; median {median:.1%} (target ≥ {TARGET_SHARE:.0%})")
    emit(f"mixed req/s ({args.seconds:g} s, median of {len(rows)})", f"{statistics.median(product):,.1f}")
    emit(f"floor req/s, {scenario.name}", f"{statistics.median(floors):,.1f}")
    ok = median >= TARGET_SHARE
    emit("mixed req/s as a share of the floor", f"{median:.1%}", f"≥ {TARGET_SHARE:.0%}", ok)

    combined = Traffic(sum(t.elapsed for t, _ in rows), total, sum(t.cpu_seconds for t, _ in rows))
    found = problems(combined, verification)
    found += [f"floor run {k + 1}: {f.errors} non-200 answers" for k, (_, f) in enumerate(rows) if f.errors]
    for line in log_lines[:3]:
        print(f"  server log: {line[:300]}")
    for problem in found:
        print(f"BROKEN {problem}")
    if not found:
        print(
            f"checked: {verification.acked:,} acknowledged readings stored once, "
            f"{verification.patients} patients' tiers consistent"
        )
    return 1 if found else 0


def _share(traffic: Traffic, floor: Result) -> float:
    return traffic.requests_per_s() / floor.per_second if floor.per_second else float("nan")


def _range(values: list[float], spec: str) -> str:
    return f"{min(values):{spec}}–{max(values):{spec}} (median {statistics.median(values):{spec}})"


def _seconds(args: argparse.Namespace, seconds: float) -> argparse.Namespace:
    return argparse.Namespace(**{**vars(args), "seconds": min(seconds, args.seconds)})


def main(argv: list[str] | None = None) -> int:
    assert __doc__ is not None
    parser = argparse.ArgumentParser(prog="python -m bench.ratio", description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=20.0, help="duration of each run (20)")
    parser.add_argument("--workers", type=int, default=2, help="processes of each server (2)")
    parser.add_argument("--repeat", type=int, default=3, help="alternating product/floor runs (3)")
    parser.add_argument(
        "--statements", type=float, default=10.5,
        help="a mixed request's statements, BEGIN and COMMIT included (10.5, README)",
    )  # fmt: skip
    add_world_options(parser)
    args = parser.parse_args(argv)
    if args.seconds <= 0 or min(args.workers, args.repeat, args.patients, args.teams, args.concurrency) < 1:
        parser.error("--seconds, --workers, --repeat, --patients, --teams and --concurrency must be positive")
    if not BEGIN_AND_COMMIT + 1 <= args.statements <= BEGIN_AND_COMMIT + 50:
        parser.error("--statements must be 3 to 52 (BEGIN and COMMIT included)")
    os.environ["PATHWAY_RATE_LIMIT_PER_SECOND"] = f"{args.rate_limit:g}"
    print(
        f"bench.ratio: {args.repeat} × ({args.seconds:g} s product + {args.seconds:g} s floor), "
        f"{args.workers} worker(s) each, {args.concurrency} client threads, {args.patients} patients, "
        f"{args.statements:g} statements a request; rate limit {args.rate_limit:g}/s per key (clients pace "
        f"at {PACE_SHARE:.0%}); Python {sys.version.split()[0]}, {os.cpu_count()} CPUs",
        flush=True,
    )
    return reported(lambda: run(args))


if __name__ == "__main__":
    sys.exit(main())
