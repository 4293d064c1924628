"""Throughput and memory of the rule engine on the default pack (a benchmark, not a test).

    python -m bench.rules [--patients 100000]        # or: make bench

Builds ``--patients`` distinct synthetic patients by deterministic arithmetic on an index (no
``random``): a mix of hypertension, diabetes, dyslipidaemia and CKD, with a few encounters of BP,
glucose and lipid readings, home BP series, CGM values, complications, and some crises. Histories
are generated lazily and dropped after use, so memory reflects the engine, not the input.

Two passes over the same patients:

1. **assess** — ``Evaluator.assess`` per patient: snapshot + durable_rules + assessment.
2. **split** — in chunks of 1,000: the snapshots are built (timed as *snapshot*), then
   ``engine.fired_rule_ids`` runs on the precomputed facts (timed as *engine*). One evaluation in
   100 is also checked against the plain-Python oracle, outside the timed sections.

Printed: evaluations/s of (a) the full assess, (b) the engine alone, (c) the snapshot alone, the
engine-to-snapshot time ratio, and (d) peak RSS (``ru_maxrss``) and RSS (``VmRSS`` of
``/proc/self/status``) at 10 %, 50 % and 100 % of each pass: flat figures mean no durable_rules
session leaks. (b) and (c) are timed a chunk at a time; in (a) they interleave with the assessment
on every call, so ``a − b − c`` is the assessment plus whatever interleaving costs (in the
allocator: durable_rules' per-session state and Python's objects share glibc's heap).

``MALLOC_TRIM_THRESHOLD_``: glibc reads it once, when the process starts, so it must be in the
environment before Python runs. ``make bench`` exports ``MALLOC_TRIM_THRESHOLD_=268435456``
(ENGINE-NOTES §1.2: without it, glibc trims and regrows the heap top on every evaluation). This
script never sets or overrides it (nor any other ``MALLOC_*_`` tunable); it prints the ones it ran
with, and says so when the trim threshold is unset. Note that setting any of the trim/top-pad/mmap
tunables also turns off glibc's dynamic mmap threshold (mallopt(3)), which changes how
durable_rules' per-session state is allocated: compare a run without it before tuning a service.
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal

from bench.figures import emit
from pathway.clinical.clock import CLINIC_TZ
from pathway.clinical.conditions import FactValue
from pathway.clinical.history import (
    CheckDone,
    ComplicationRecord,
    Encounter,
    Measurement,
    PatientHistory,
    PatientProfile,
    SymptomReport,
)
from pathway.clinical.vocabulary import (
    CareCheck,
    Complication,
    Condition,
    ReadingKind,
    ReadingSource,
    Sex,
    Symptom,
)
from rules.evaluation import Evaluator, reference_fired_rule_ids
from rules.registry import LoadedPack, PackRegistry

AS_OF = datetime(2026, 3, 1, 9, 0, tzinfo=CLINIC_TZ)
CHUNK = 1_000
WARM_UP = 2_000
ORACLE_EVERY = 100
SAMPLE_POINTS = (0.10, 0.50, 1.00)

CONDITION_MIXES: tuple[frozenset[Condition], ...] = (
    frozenset({Condition.HYPERTENSION}),
    frozenset({Condition.DIABETES}),
    frozenset({Condition.DYSLIPIDEMIA}),
    frozenset({Condition.HYPERTENSION, Condition.DIABETES}),
    frozenset({Condition.HYPERTENSION, Condition.DYSLIPIDEMIA}),
    frozenset({Condition.DIABETES, Condition.DYSLIPIDEMIA}),
    frozenset({Condition.HYPERTENSION, Condition.DIABETES, Condition.DYSLIPIDEMIA}),
    frozenset({Condition.HYPERTENSION, Condition.CKD}),
)
LATEST_VISIT_DAYS_AGO = (0.04, 3.0, 14.0, 45.0, 80.0, 120.0)  # 1 h … past the 90-day data gap


def _tenths(n: int) -> Decimal:
    return Decimal(n) / 10


def _bp(systolic: int, diastolic: int, at: datetime, source: ReadingSource) -> Measurement:
    return Measurement(
        kind=ReadingKind.BP, source=source, at=at, systolic=Decimal(systolic), diastolic=Decimal(diastolic)
    )


def _value(kind: ReadingKind, value: Decimal, at: datetime, source: ReadingSource) -> Measurement:
    return Measurement(kind=kind, source=source, at=at, value=value)


def synthetic_history(i: int) -> PatientHistory:
    """Patient ``i``: every parameter is arithmetic on ``i``; the index also shifts the birthday and
    the visit times by amounts that change nothing clinically, so no two patients are the same."""
    conditions = CONDITION_MIXES[i % len(CONDITION_MIXES)]
    htn = Condition.HYPERTENSION in conditions
    dm = Condition.DIABETES in conditions
    dl = Condition.DYSLIPIDEMIA in conditions
    age = 35 + (7 * i) % 50
    birth = AS_OF.date().replace(year=AS_OF.year - age) - timedelta(days=(i // 3600) % 365)
    complications: list[ComplicationRecord] = []
    if i % 13 == 0:
        complications.append(ComplicationRecord(Complication.CHD, AS_OF.date() - timedelta(days=400)))
    if i % 59 == 0:
        complications.append(ComplicationRecord(Complication.STROKE, AS_OF.date() - timedelta(days=30)))
    profile = PatientProfile(
        sex=Sex.MALE if i % 2 == 0 else Sex.FEMALE,
        birth_date=birth,
        conditions=conditions,
        complications=tuple(complications),
        smoker=i % 6 == 0,
        pregnant=i % 2 == 1 and age < 45 and i % 17 == 0,
    )

    latest = AS_OF - timedelta(days=LATEST_VISIT_DAYS_AGO[i % len(LATEST_VISIT_DAYS_AGO)], seconds=i % 3600)
    encounters: list[Encounter] = []
    for k in range(1 + i % 4):  # 1–4 visits, a month apart, oldest first
        at = latest - timedelta(days=30 * (i % 4 - k))
        readings: list[Measurement] = []
        if htn or k % 2 == 0:
            systolic = 112 + (13 * i + 29 * k) % 58  # 112–169
            diastolic = 66 + (7 * i + 11 * k) % 32  # 66–97
            if i % 40 == 0 and k == i % 4:  # a crisis at the latest visit
                systolic, diastolic = systolic + 18, diastolic + 14
            readings.append(_bp(systolic, diastolic, at, ReadingSource.CLINIC))
        if dm:
            fpg = 45 + (17 * i + 5 * k) % 45  # 4.5–8.9
            if k == i % 4 and i % 97 == 0:
                fpg = 35  # hypoglycaemia at the visit
            elif k == i % 4 and i % 89 == 0:
                fpg = 175  # >=16.7
            readings.append(_value(ReadingKind.FPG, _tenths(fpg), at, ReadingSource.CLINIC))
        symptoms = (Symptom.SEVERE_HEADACHE,) if i % 80 == 0 and k == i % 4 else ()
        encounters.append(Encounter(at=at, readings=tuple(readings), symptoms=symptoms))

    loose: list[Measurement] = []
    if htn and i % 3 == 0:  # a week of home BP: 6 readings on 6 days
        loose.extend(
            _bp(
                120 + (i + 9 * k) % 40,
                72 + (i + 5 * k) % 25,
                AS_OF - timedelta(days=k + 0.3),
                ReadingSource.HOME,
            )
            for k in range(6)
        )
    if i % 50 == 0:  # a single home crisis reading: unconfirmed
        loose.append(_bp(184, 104, AS_OF - timedelta(hours=2), ReadingSource.WEARABLE))
    if i % 150 == 0:  # a second one 10 minutes later: confirmed
        loose.append(_bp(188, 112, AS_OF - timedelta(hours=2, minutes=-10), ReadingSource.HOME))
    if dm and i % 3 == 0:
        loose.append(_value(ReadingKind.HBA1C, _tenths(55 + i % 50), latest, ReadingSource.LAB))
    if dm and i % 11 == 0:
        loose.append(
            _value(ReadingKind.RPG, _tenths(28 + i % 18), AS_OF - timedelta(days=2), ReadingSource.CGM)
        )
    if dm and i % 71 == 0:
        loose.append(
            _value(ReadingKind.RPG, _tenths(180 + i % 200), AS_OF - timedelta(hours=5), ReadingSource.HOME)
        )
    if dl or i % 5 == 0:
        drawn = latest - timedelta(days=1)
        ldl = 15 + (11 * i) % 33  # 1.5–4.7
        loose.extend(
            (
                _value(ReadingKind.LDL_C, _tenths(ldl), drawn, ReadingSource.LAB),
                _value(ReadingKind.TC, _tenths(ldl + 20), drawn, ReadingSource.LAB),
                _value(ReadingKind.HDL_C, _tenths(8 + i % 12), drawn, ReadingSource.LAB),
                _value(
                    ReadingKind.TG,
                    _tenths(8 + (3 * i) % 28 + (110 if i % 211 == 0 else 0)),
                    drawn,
                    ReadingSource.LAB,
                ),
            )
        )
    if Condition.CKD in conditions or (dm and i % 4 == 0):
        loose.append(_value(ReadingKind.EGFR, Decimal(30 + i % 70), latest, ReadingSource.LAB))
        loose.append(_value(ReadingKind.UACR, _tenths(50 + i % 500), latest, ReadingSource.LAB))
    checks = (CheckDone(CareCheck.ANNUAL_CHECK, AS_OF - timedelta(days=200)),) if i % 4 == 0 else ()
    symptoms_reported = (
        (SymptomReport(Symptom.ACETONE_BREATH, AS_OF - timedelta(hours=3)),) if i % 71 == 0 else ()
    )
    return PatientHistory(
        profile=profile,
        encounters=tuple(encounters),
        readings=tuple(loose),
        symptoms=symptoms_reported,
        checks=checks,
    )


def synthetic_histories(count: int, start: int = 0) -> Iterator[PatientHistory]:
    """Lazily: one history at a time, never the whole population in memory."""
    for i in range(start, start + count):
        yield synthetic_history(i)


def rss_mb() -> float:
    """Current resident set size (VmRSS), in MB."""
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kB on Linux


@dataclass
class Pass:
    name: str
    count: int
    rss_start: float = 0.0
    rss: list[float] = field(default_factory=list)
    wall: float = 0.0

    def sample(self, done: int) -> None:
        """Record VmRSS for every sample point (10 %, 50 %, 100 %) reached after ``done`` patients."""
        while len(self.rss) < len(SAMPLE_POINTS) and done >= self.count * SAMPLE_POINTS[len(self.rss)]:
            self.rss.append(rss_mb())


@dataclass
class Timings:
    assess: float = 0.0
    snapshot: float = 0.0
    engine: float = 0.0
    oracle_checked: int = 0
    oracle_disagreements: int = 0
    tiers: Counter[str] = field(default_factory=Counter)
    fired: int = 0


def run_assess_pass(evaluator: Evaluator, loaded: LoadedPack, count: int, timings: Timings) -> Pass:
    record = Pass("assess", count, rss_start=rss_mb())
    clock = time.perf_counter
    started = clock()
    for n, history in enumerate(synthetic_histories(count), start=1):
        t0 = clock()
        result = evaluator.assess(history, AS_OF, loaded)
        timings.assess += clock() - t0
        timings.tiers[result.tier.value] += 1
        record.sample(n)
    record.wall = clock() - started
    return record


def run_split_pass(evaluator: Evaluator, loaded: LoadedPack, count: int, timings: Timings) -> Pass:
    record = Pass("split", count, rss_start=rss_mb())
    engine, pack = evaluator.engine, loaded.pack
    clock = time.perf_counter
    started = clock()
    done = 0
    histories = synthetic_histories(count)
    while done < count:
        chunk = [next(histories) for _ in range(min(CHUNK, count - done))]
        t0 = clock()
        facts: list[dict[str, FactValue]] = [evaluator.snapshot(h, AS_OF, loaded).facts for h in chunk]
        t1 = clock()
        fired = [engine.fired_rule_ids(pack, f) for f in facts]
        t2 = clock()
        timings.snapshot += t1 - t0
        timings.engine += t2 - t1
        for offset in range(0, len(facts), ORACLE_EVERY):  # untimed spot check
            timings.oracle_checked += 1
            if set(fired[offset]) != set(reference_fired_rule_ids(pack, facts[offset])):
                timings.oracle_disagreements += 1
        timings.fired += sum(len(ids) for ids in fired)
        done += len(chunk)
        record.sample(done)
        del chunk, facts, fired  # one chunk alive at a time
    record.wall = clock() - started
    return record


def _rate(count: int, seconds: float) -> str:
    return f"{count / seconds:>12,.0f} {seconds / count * 1e6:>10.1f} {seconds:>9.2f}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.rules", description=__doc__.split("\n\n")[0])
    parser.add_argument("--patients", type=int, default=100_000, help="distinct synthetic patients (100,000)")
    args = parser.parse_args(argv)
    count: int = args.patients
    if count < 1:
        parser.error("--patients must be at least 1")

    trim = os.environ.get("MALLOC_TRIM_THRESHOLD_")
    malloc_env = {name: value for name, value in os.environ.items() if name.startswith("MALLOC_")}
    registry = PackRegistry.from_directory()
    loaded = registry.get()
    evaluator = Evaluator(registry)
    pack = loaded.pack
    print(
        f"bench.rules: pack {pack.id} {pack.version} ({len(pack.rules)} rules, "
        f"{len(pack.schedules)} schedules), {count:,} patients, "
        f"Python {sys.version.split()[0]}, {os.cpu_count()} CPUs"
    )
    tunables = ", ".join(f"{name}={value}" for name, value in sorted(malloc_env.items()))
    print(f"glibc tunables from the environment (read at start): {tunables or 'none'}")
    if trim is None:
        print("MALLOC_TRIM_THRESHOLD_ is unset: glibc's default trimming (`make bench` exports it)")

    for history in synthetic_histories(WARM_UP, start=count):  # warm-up on patients outside the run
        evaluator.assess(history, AS_OF, loaded)

    timings = Timings()
    passes = [
        run_assess_pass(evaluator, loaded, count, timings),
        run_split_pass(evaluator, loaded, count, timings),
    ]

    print()
    print(f"{'measure':<44} {'evals/s':>12} {'µs each':>10} {'total s':>9}")
    print(f"{'(a) full assess: snapshot+engine+assessment':<44} {_rate(count, timings.assess)}")
    print(f"{'(b) engine only: fired_rule_ids on facts':<44} {_rate(count, timings.engine)}")
    print(f"{'(c) snapshot only: build_snapshot':<44} {_rate(count, timings.snapshot)}")
    print(f"{'    engine time / snapshot time':<44} {timings.engine / timings.snapshot:>12.2f}")
    rest = timings.assess - timings.engine - timings.snapshot
    print(f"{'    a − b − c: assessment + interleaving':<44} {'':>12} {rest / count * 1e6:>10.1f}")
    print()
    print(f"{'(d) RSS MB':<22} {'start':>8} {'10%':>8} {'50%':>8} {'100%':>8} {'wall s':>8}")
    for record in passes:
        samples = " ".join(f"{mb:>8.1f}" for mb in record.rss)
        print(f"    {record.name + ' pass':<18} {record.rss_start:>8.1f} {samples} {record.wall:>8.1f}")
    print(f"    {'peak (ru_maxrss)':<18} {peak_rss_mb():>8.1f}")
    print()
    tiers = ", ".join(f"{tier} {timings.tiers[tier]:,}" for tier in ("red", "yellow", "blue"))
    print(f"tiers: {tiers}; rules fired per evaluation: {timings.fired / count:.2f}")
    print(
        f"oracle check: {timings.oracle_disagreements} disagreements in {timings.oracle_checked:,} sampled; "
        f"live durable_rules sessions after the run: {evaluator.engine.live_sessions()}"
    )
    per_second = count / timings.assess
    emit("full assessments/s (history → tier)", f"{per_second:,.0f}")
    emit("durable_rules evaluations/s (facts → fired rules)", f"{count / timings.engine:,.0f}")
    emit("snapshots/s (history → facts)", f"{count / timings.snapshot:,.0f}")
    emit("engine time / snapshot time", f"{timings.engine / timings.snapshot:.2f}")
    emit("peak RSS MB", f"{peak_rss_mb():.0f}")
    emit("oracle disagreements", str(timings.oracle_disagreements), "0", timings.oracle_disagreements == 0)
    return 1 if timings.oracle_disagreements else 0


if __name__ == "__main__":
    sys.exit(main())
