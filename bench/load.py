"""Mixed traffic against ``pathway serve --workers N``, then checked (a benchmark, not a test).

    python -m bench.load [--seconds 60] [--workers 2] [--database postgresql|sqlite] [--patients 600]
                         [--teams 3] [--gateways 6] [--concurrency 16] [--seed 5] [--rate-limit 200]

Setup (not timed): a fresh database (PostgreSQL: created with ``CREATE DATABASE`` on
``--postgres-url``'s server and dropped at the end; SQLite: a temporary file, one worker) and the
real server (:func:`bench.ingest.running_server`). In the database directly: ``--teams`` teams,
``--gateways`` gateway keys, one ``ehr`` key and one ``team`` key per team. Over HTTP, with the
ehr key: ``--patients`` patients (``POST /v1/patients`` with a ``team_code``), each linked to one
gateway (``POST /v1/patients/{id}/gateways``).

Traffic: ``--concurrency`` client threads, one keep-alive ``http.client`` connection each, for
``--seconds``; each request drawn from ``random.Random(seed, thread)``:

- 50 % a gateway posts a batch of 10–50 readings (wearable BP; home glucose for diabetics) for one
  of its patients, ``POST /v1/patients/{id}/readings?source_system=<gateway>`` with an
  ``Idempotency-Key``; 5 % of these replay an earlier batch of the thread under the same key
  (the answer must be the first answer, marked ``Idempotent-Replayed``), 2 % re-send one under a
  new key (every item must come back ``duplicate`` with the stored id);
- 20 % the EHR posts a visit with clinic BP, FPG and LDL-C (``POST /v1/patients/{id}/encounters``,
  unique ``source_encounter_id``; 5 % of these re-send an earlier visit: 200, same id);
- 20 % the EHR reads ``GET /v1/patients/{id}/assessment`` or ``GET /v1/patients/{id}`` (half each);
- 10 % a team pulls its list ``GET /v1/teams/{team_id}/tasks?date=<today>``.

Every reading is plausible (patients are controlled, uncontrolled or crisis-prone), has a unique
``source_reading_id`` and a ``measured_at`` with +08:00 in the past: the run's start minus 10 min,
minus 0–5 days, minus 2 min per 6 readings of that patient; visits go back 9 days each, so no two
readings of a patient and device share an instant.

The per-key rate limiter stays ON (``--rate-limit``, the server's default 200/s per key and
process; 0 turns it off): every key is paced on the client to 90 % of the limit, so no key is
ever refused (a 429 would be shown among the non-2xx answers); the time spent waiting is printed.

Afterwards, with the server stopped, the database is read directly: every reading acknowledged in
a 2xx answer (item ``created`` or ``duplicate``) is stored exactly once under its
(source_system, source_reading_id), with the id the answer named, and no key is stored twice;
every acknowledged visit is stored once with its three readings; every patient's latest stored
assessment has the tier of a fresh evaluation of its stored history as of the same instant, under
the pack it names (``Evaluator.assess(history_of(session, patient), record.as_of)``), and saw the
same facts (else it missed readings committed concurrently: a stale assessment, even if the tier
happens to agree). Printed: p50/p99/max per endpoint, requests/s overall and in the slowest 10 s,
CPU seconds of the client, of each server process and of everything else on the machine (from
``/proc``, Linux), the server log's error lines, and a table ending with the target of issue #5
(≥ 300 mixed requests/s for 60 s on PostgreSQL, zero 5xx, zero lost or duplicated readings, zero
tier mismatches), each marked pass or FAIL. Exit status 1 if the run broke or a correctness check
failed (5xx, transport errors, lost/duplicated/misattributed readings or visits, a changed
idempotent replay, a tier mismatch or a stale assessment); a missed throughput target is
information only (exit 0).

The client threads share the machine (and its CPUs) with the server and the database.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

from bench.ingest import (
    DEFAULT_POSTGRES_URL,
    fresh_database,
    redact,
    reported,
    running_server,
)
from bench.load_check import print_endpoints, print_table, problems, server_log_problems, verify
from bench.load_client import register, run_measured
from bench.load_history import age
from bench.load_world import NOTES, PACE_SHARE, provision


def run(args: argparse.Namespace) -> int:
    workers = args.workers if args.database == "postgresql" else 1
    with (
        tempfile.TemporaryDirectory(prefix="bench-load-logs-") as logs,
        fresh_database(args.database, args.postgres_url) as url,
    ):
        with running_server(url, workers, Path(logs)) as port:
            print(
                f"[{args.database}] server up on port {port} ({redact(url)}), {workers} worker(s)", flush=True
            )
            t0 = time.perf_counter()
            world = provision(url, args, args.rate_limit)
            register(port, world, min(8, args.concurrency))
            if args.history_days:
                readings, assessments, seconds = age(url, world, args.history_days)
                print(
                    f"[{args.database}] history of {args.history_days} days stored: {readings:,} readings, "
                    f"{assessments:,} assessments in {seconds:.1f} s",
                    flush=True,
                )
            print(
                f"[{args.database}] {len(world.patients)} patients in {len(world.teams)} teams, "
                f"{len(world.gateways)} gateway keys, set up in {time.perf_counter() - t0:.1f} s; "
                f"traffic for {args.seconds:g} s from {args.concurrency} threads",
                flush=True,
            )
            traffic = run_measured(port, url, world, args)
            print(
                f"[{args.database}] {len(traffic.stats.calls):,} requests in {traffic.elapsed:.1f} s "
                f"({traffic.requests_per_s():,.1f}/s answered 2xx)",
                flush=True,
            )
            log_lines = server_log_problems(Path(logs))
        verification = verify(url, traffic.stats)
    print(f"[{args.database}] checked the database in {verification.seconds:.1f} s")
    print_endpoints(traffic)
    print_table(args.database, traffic, verification, world, log_lines)
    for note in traffic.stats.notes:
        print(f"  e.g. {note}")
    for note in verification.tier_notes[: 2 * NOTES] + verification.notes:
        print(f"  check: {note}")
    for line in log_lines[:NOTES]:
        print(f"  server log: {line[:300]}")
    found = problems(traffic, verification)
    for problem in found:
        print(f"BROKEN {problem}")
    if not found:
        print("load test ok: no 5xx, every acknowledged reading stored once, tiers consistent")
    return 1 if found else 0


def add_world_options(parser: argparse.ArgumentParser) -> None:
    """The options of the world and its traffic, shared with bench.ratio."""
    parser.add_argument("--patients", type=int, default=600, help="patients registered (600)")
    parser.add_argument("--teams", type=int, default=3, help="GP teams (3)")
    parser.add_argument("--gateways", type=int, default=6, help="gateway keys (6)")
    parser.add_argument("--concurrency", type=int, default=16, help="client threads (16)")
    parser.add_argument("--seed", type=int, default=5, help="seed of the synthetic data (5)")
    parser.add_argument(
        "--rate-limit", type=float, default=200.0,
        help="server limit per key and process, req/s (200, its default; 0: off); clients pace at 90%%",
    )  # fmt: skip
    parser.add_argument("--postgres-url", default=DEFAULT_POSTGRES_URL, help="server for the temp database")


def main(argv: list[str] | None = None) -> int:
    assert __doc__ is not None
    parser = argparse.ArgumentParser(prog="python -m bench.load", description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=60.0, help="duration of the traffic (60)")
    parser.add_argument("--workers", type=int, default=2, help="server processes (2; SQLite runs one)")
    parser.add_argument("--database", choices=("postgresql", "sqlite"), default="postgresql")
    add_world_options(parser)
    parser.add_argument(
        "--history-days", type=int, default=0,
        help="days of stored history per patient before the traffic (0; PostgreSQL): bench/load_history.py",
    )  # fmt: skip
    args = parser.parse_args(argv)
    if args.history_days < 0 or (args.history_days and args.database != "postgresql"):
        parser.error("--history-days: 0, or a positive number of days on PostgreSQL")
    if args.seconds <= 0 or min(args.workers, args.patients, args.teams, args.gateways, args.concurrency) < 1:
        parser.error(
            "--seconds, --workers, --patients, --teams, --gateways and --concurrency must be positive"
        )
    if args.rate_limit < 0:
        parser.error("--rate-limit must be 0 (off) or positive")
    # The server reads this at start (running_server only defaults it to 0 when it is unset).
    os.environ["PATHWAY_RATE_LIMIT_PER_SECOND"] = f"{args.rate_limit:g}"
    print(
        f"bench.load: {args.database}, {args.seconds:g} s, {args.workers} worker(s), {args.concurrency} "
        f"client threads, {args.patients} patients, {args.teams} teams, {args.gateways} gateways, seed "
        f"{args.seed}, rate limit {args.rate_limit:g}/s per key (clients pace at {PACE_SHARE:.0%}); "
        f"Python {sys.version.split()[0]}, {os.cpu_count()} CPUs"
    )
    return reported(lambda: run(args))


if __name__ == "__main__":
    sys.exit(main())
