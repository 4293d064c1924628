"""What the mixed-load benchmark (bench/load.py) checks and prints afterwards: every acknowledged
reading stored once, tiers equal to a fresh evaluation, latencies and the table of figures."""

from __future__ import annotations

import math
import os
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from bench.figures import emit
from bench.load_client import ClientStats, Traffic
from bench.load_world import EHR_SOURCE, NOTES, TARGET_RPS, TARGET_SECONDS, World

# --- verification ----------------------------------------------------------------------------------


@dataclass
class Verification:
    acked: int = 0
    stored: int = 0
    missing: int = 0
    duplicated: int = 0  # (source_system, source_reading_id) keys stored more than once
    wrong_id: int = 0  # acknowledged with an id other than the stored row's
    visits: int = 0
    visits_missing: int = 0
    visits_duplicated: int = 0
    visits_incomplete: int = 0  # stored without its three readings
    patients: int = 0
    tier_mismatches: int = 0
    stale: int = 0  # latest assessments whose facts differ from a fresh evaluation (tier or not)
    tiers: Counter[str] = field(default_factory=Counter)
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)
    tier_notes: list[str] = field(default_factory=list)

    def lost_or_duplicated(self) -> int:
        return (
            self.missing + self.duplicated + self.wrong_id
            + self.visits_missing + self.visits_duplicated + self.visits_incomplete
        )  # fmt: skip


def verify(url: str, stats: ClientStats) -> Verification:
    from sqlalchemy import text
    from sqlmodel import Session, col, select

    from pathway.patients import patient_store
    from pathway.patients.history import history_of
    from pathway.store.db import make_engine
    from pathway.store.tables import Patient
    from rules.evaluation import Evaluator
    from rules.registry import PackRegistry

    t0 = time.perf_counter()
    v = Verification(acked=len(stats.acked), visits=len(stats.visits))
    engine = make_engine(url)
    try:
        with Session(engine) as session:
            rows = session.execute(
                text(
                    "SELECT source_system, source_reading_id, count(*), min(id) FROM reading "
                    "WHERE source_reading_id IS NOT NULL GROUP BY source_system, source_reading_id"
                )
            ).all()
            stored = {(str(r[0]), str(r[1])): (int(r[2]), int(r[3])) for r in rows}
            v.stored = sum(n for n, _ in stored.values())
            v.duplicated = sum(1 for n, _ in stored.values() if n > 1)
            for reading_key, reading_id in stats.acked.items():
                found = stored.get(reading_key)
                if found is None:
                    v.missing += 1
                    _note(v, f"acknowledged reading {reading_key} not stored")
                elif found[1] != reading_id:
                    v.wrong_id += 1
                    _note(v, f"reading {reading_key}: acknowledged as id {reading_id}, stored as {found[1]}")
            visit_rows = session.execute(
                text(
                    "SELECT e.source_encounter_id, count(DISTINCT e.id), min(e.id), count(r.id) "
                    "FROM encounter e LEFT JOIN reading r ON r.encounter_id = e.id "
                    "WHERE e.source_system = :system GROUP BY e.source_encounter_id"
                ),
                {"system": EHR_SOURCE},
            ).all()
            visits = {str(r[0]): (int(r[1]), int(r[2]), int(r[3])) for r in visit_rows}
            v.visits_duplicated = sum(1 for n, _, _ in visits.values() if n > 1)
            for source_id, encounter_id in stats.visits.items():
                found_visit = visits.get(source_id)
                if found_visit is None or found_visit[1] != encounter_id:
                    v.visits_missing += 1
                    _note(v, f"acknowledged visit {source_id} (id {encounter_id}) not stored as such")
                elif found_visit[2] != 3:
                    v.visits_incomplete += 1
                    _note(v, f"visit {source_id} stored with {found_visit[2]} readings, not 3")

            evaluator = Evaluator(PackRegistry.from_directory())
            for patient in session.exec(select(Patient).order_by(col(Patient.id))).all():
                assert patient.id is not None
                record = patient_store.latest_assessment(session, patient.id)
                if record is None:
                    continue
                v.patients += 1
                loaded = evaluator.registry.get(record.pack_id, record.pack_version)
                fresh = evaluator.assess(history_of(session, patient), record.as_of, loaded)
                v.tiers[record.tier] += 1
                facts, seen = fresh.to_json()["facts"], record.result.get("facts", {})
                if facts == seen and fresh.tier.value == record.tier:
                    continue
                v.stale += facts != seen
                v.tier_mismatches += fresh.tier.value != record.tier
                differ = sorted(k for k in facts.keys() | seen.keys() if facts.get(k) != seen.get(k))
                note = (
                    f"patient {patient.id}: assessment {record.id} (as of {record.as_of.isoformat()}), tier "
                    f"{record.tier}, fresh evaluation {fresh.tier.value}; it saw "
                    + ", ".join(f"{k}={seen.get(k)!r} (history: {facts.get(k)!r})" for k in differ[:4])
                )
                if fresh.tier.value != record.tier:
                    v.tier_notes.append(note)
                else:
                    _note(v, note)
    finally:
        engine.dispose()
    v.seconds = time.perf_counter() - t0
    return v


def _note(v: Verification, text: str) -> None:
    if len(v.notes) < 2 * NOTES:
        v.notes.append(text)


def server_log_problems(log_dir: Path) -> list[str]:
    """Lines of the server logs that speak of errors (uvicorn logs warnings and worse only)."""
    words = ("Traceback", "ERROR", "Error", "Exception", "CRITICAL", "WARNING")
    return [
        line.strip()
        for path in sorted(log_dir.glob("server-*.log"))
        for line in path.read_text(encoding="utf-8", errors="replace").splitlines()
        if any(word in line for word in words)
    ]


# --- the report ------------------------------------------------------------------------------------


def latency_ms(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)] * 1000 if ordered else math.nan


def print_endpoints(traffic: Traffic) -> None:
    by_endpoint: dict[str, list[tuple[int, float]]] = {}
    for endpoint, status, seconds, _ in traffic.stats.calls:
        by_endpoint.setdefault(endpoint, []).append((status, seconds))
    header = (
        f"{'endpoint':<26} {'requests':>9} {'req/s':>7} {'non-2xx':>8} "
        f"{'p50 ms':>8} {'p99 ms':>8} {'max ms':>8}"
    )
    print()
    print(header)
    print("-" * len(header))
    for endpoint in sorted(by_endpoint):
        calls = by_endpoint[endpoint]
        latencies = [s for status, s in calls if status]
        bad = Counter(status for status, _ in calls if not 200 <= status < 300)
        bad_text = ",".join(f"{n}×{code or 'io'}" for code, n in sorted(bad.items())) or "0"
        print(
            f"{endpoint:<26} {len(calls):>9,} {len(calls) / traffic.elapsed:>7.1f} {bad_text:>8} "
            f"{latency_ms(latencies, 0.5):>8.1f} {latency_ms(latencies, 0.99):>8.1f} "
            f"{latency_ms(latencies, 1.0):>8.1f}"
        )
    everything = [s for _, status, s, _ in traffic.stats.calls if status]
    print("-" * len(header))
    print(
        f"{'all':<26} {len(traffic.stats.calls):>9,} {len(traffic.stats.calls) / traffic.elapsed:>7.1f} "
        f"{len(traffic.stats.calls) - traffic.ok():>8} {latency_ms(everything, 0.5):>8.1f} "
        f"{latency_ms(everything, 0.99):>8.1f} {latency_ms(everything, 1.0):>8.1f}"
    )


def _mark(ok: bool) -> str:
    return "pass" if ok else "FAIL"


def print_table(database: str, traffic: Traffic, v: Verification, world: World, log_lines: list[str]) -> None:
    s = traffic.stats
    rps = traffic.requests_per_s()
    statuses = traffic.statuses()
    other = {code: n for code, n in sorted(statuses.items()) if not 200 <= code < 300 and code < 500}
    waited = sum(key.pacer.waited for key in world.all_keys())
    machine_cpu = traffic.machine_busy * (os.cpu_count() or 1) * traffic.elapsed
    database_cpu = 0.0 if math.isnan(traffic.database_cpu) else traffic.database_cpu
    other_cpu = machine_cpu - sum(traffic.server_cpu) - traffic.cpu_seconds - database_cpu
    server_ms = sum(traffic.server_cpu) / len(s.calls) * 1000 if s.calls and traffic.server_cpu else math.nan
    rows = [
        ("database", "", database),
        (
            "run length s",
            f"≥ {TARGET_SECONDS:.0f}",
            f"{traffic.elapsed:.1f}  {_mark(traffic.elapsed >= TARGET_SECONDS)}",
        ),
        ("mixed requests/s (2xx)", f"≥ {TARGET_RPS:.0f}", f"{rps:,.1f}  {_mark(rps >= TARGET_RPS)}"),
        ("  in the slowest 10 s", "", f"{traffic.slowest_window():,.1f}"),
        ("  requests answered 2xx / sent", "", f"{traffic.ok():,} / {len(s.calls):,}"),
        ("  client CPU s (of wall s)", "", f"{traffic.cpu_seconds:.1f} ({traffic.elapsed:.1f})"),
        ("  server CPU s: per process", "", " + ".join(f"{c:.1f}" for c in traffic.server_cpu) or "—"),
        ("  server CPU ms per request", "", f"{server_ms:.1f}"),
        (f"  machine CPU busy ({os.cpu_count()} CPUs)", "", f"{traffic.machine_busy:.0%}"),
        ("  PostgreSQL CPU s (this database)", "", f"{traffic.database_cpu:.1f}"),
        ("  CPU s of all other processes", "", f"{other_cpu:.1f}"),
        ("  clients waiting for key pace s", "", f"{waited:.1f}"),
        ("5xx answers", "0", f"{traffic.server_errors()}  {_mark(traffic.server_errors() == 0)}"),
        ("transport errors", "0", f"{s.transport_errors}  {_mark(s.transport_errors == 0)}"),
        ("other non-2xx (info)", "", ", ".join(f"{n}× {c}" for c, n in other.items()) or "none"),
        ("server log error lines", "", f"{len(log_lines)}"),
        ("readings sent / acked / stored", "", f"{s.readings_sent:,} / {v.acked:,} / {v.stored:,}"),
        ("  items created / duplicate / rejected", "", f"{s.created:,} / {s.duplicate:,} / {s.rejected:,}"),
        ("  first-post items reported duplicate", "", f"{s.fresh_duplicates}"),
        (
            "lost / duplicated / misattributed readings",
            "0 / 0 / 0",
            f"{v.missing} / {v.duplicated} / {v.wrong_id}  "
            f"{_mark(v.missing + v.duplicated + v.wrong_id == 0)}",
        ),
        (
            "idempotent replays / changed",
            "0 changed",
            f"{s.replays} / {s.replay_mismatches}  {_mark(s.replay_mismatches == 0)}",
        ),
        (
            "re-sent batches / not all duplicate",
            "0",
            f"{s.resends} / {s.resend_mismatches}  {_mark(s.resend_mismatches == 0)}",
        ),
        (
            "visits acked / lost / dup / incomplete",
            "0 / 0 / 0",
            f"{v.visits:,} / {v.visits_missing} / {v.visits_duplicated} / {v.visits_incomplete}  "
            f"{_mark(v.visits_missing + v.visits_duplicated + v.visits_incomplete == 0)}",
        ),
        (
            "  visit re-sends / not the same visit",
            "0",
            f"{s.visit_resends} / {s.visit_resend_mismatches}  {_mark(s.visit_resend_mismatches == 0)}",
        ),
        (
            "tier mismatches (patients checked)",
            "0",
            f"{v.tier_mismatches} ({v.patients})  {_mark(v.tier_mismatches == 0)}",
        ),
        ("  latest assessments with other facts", "0", f"{v.stale}  {_mark(v.stale == 0)}"),
        ("  stored tiers", "", ", ".join(f"{t} {n}" for t, n in sorted(v.tiers.items()))),
        ("  largest team list today (tasks)", "", f"{s.list_items}"),
    ]
    width = (max(len(r[0]) for r in rows), max(len(r[1]) for r in rows), max(len(r[2]) for r in rows))
    rule = "-" * (sum(width) + 6)
    print()
    for n, (figure, target, value) in enumerate(rows):
        if n == 1 or figure in ("5xx answers", "readings sent / acked / stored"):
            print(rule)
        print(f"{figure:<{width[0]}}   {target:<{width[1]}}   {value:>{width[2]}}")
    print(rule)
    issue_ok = (
        database == "postgresql"
        and traffic.elapsed >= TARGET_SECONDS
        and rps >= TARGET_RPS
        and traffic.server_errors() == 0
        and v.lost_or_duplicated() == 0
        and v.tier_mismatches == 0
    )
    print(
        f"issue #5 target (≥ {TARGET_RPS:.0f} mixed req/s for {TARGET_SECONDS:.0f} s on PostgreSQL, no 5xx, "
        f"nothing lost or duplicated, no tier mismatch): {_mark(issue_ok)}"
    )
    emit(f"{database} mixed requests/s ({traffic.elapsed:.0f} s)", f"{rps:,.1f}", f"≥ {TARGET_RPS:.0f}",
         rps >= TARGET_RPS)  # fmt: skip
    errors, lost = traffic.server_errors(), v.lost_or_duplicated()
    emit(f"{database} 5xx / lost or duplicated", f"{errors} / {lost}", "0 / 0", errors == 0 and lost == 0)
    emit(f"{database} tier mismatches", str(v.tier_mismatches), "0", v.tier_mismatches == 0)


def problems(traffic: Traffic, v: Verification) -> list[str]:
    """Why the run is broken or incorrect (a missed throughput target is not among them)."""
    s = traffic.stats
    found: list[str] = []
    if traffic.ok() == 0:
        found.append("no request succeeded")
    if traffic.server_errors():
        found.append(f"{traffic.server_errors()} answers 5xx")
    if s.transport_errors:
        found.append(f"{s.transport_errors} transport errors")
    if v.missing or v.duplicated or v.wrong_id:
        found.append(f"readings: {v.missing} lost, {v.duplicated} duplicated, {v.wrong_id} misattributed")
    if v.visits_missing or v.visits_duplicated or v.visits_incomplete:
        found.append(
            f"visits: {v.visits_missing} lost, {v.visits_duplicated} duplicated, "
            f"{v.visits_incomplete} incomplete"
        )
    if s.replay_mismatches or s.resend_mismatches or s.visit_resend_mismatches:
        found.append(
            f"retries answered differently: {s.replay_mismatches} replays, {s.resend_mismatches} re-sent "
            f"batches, {s.visit_resend_mismatches} re-sent visits"
        )
    if v.tier_mismatches:
        found.append(f"{v.tier_mismatches} patients whose stored tier differs from a fresh evaluation")
    if v.stale:
        found.append(f"{v.stale} patients whose latest assessment missed part of their stored history")
    return found
