"""Reassessment cost against history length (a benchmark, not a test).

    python -m bench.history [--database sqlite|postgresql|both] [--days 365] [--repeat 30]

One patient (hypertension and diabetes) with ``--days`` of a wearable cuff (4 BP readings a day), a
CGM (96 glucose readings a day), a visit every 90 days and a lipid panel every 180 days, stored
through the repository in a fresh database. Then, ``--repeat`` times each, in a transaction that is
rolled back:

- what every ingest does: :func:`pathway.service.reassess_or_defer` (reads the recent part of the
  stream, pathway.horizon, evaluates, stores the assessment and syncs tasks);
- the same evaluation on the whole history (``history_of`` without a horizon, then ``assess``).

Printed: readings stored, readings each path reads, p50 and max ms of each, whether both give the
same tier and facts. Exit status 1 if they differ.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from datetime import date, datetime, timedelta

from sqlmodel import Session

from bench.figures import emit
from bench.ingest import DEFAULT_POSTGRES_URL, fresh_database
from pathway import repository, service
from pathway.clock import CLINIC_TZ
from pathway.db import make_engine, migrate
from pathway.models import Encounter, Patient
from pathway.settings import Settings
from rules.evaluation import Evaluator
from rules.registry import PackRegistry

NOW = datetime(2026, 11, 23, 9, 0, tzinfo=CLINIC_TZ)


def _reading(patient_id: int, kind: str, source: str, at: datetime, **values: float) -> dict[str, object]:
    return {
        "patient_id": patient_id,
        "encounter_id": None,
        "kind": kind,
        "source": source,
        "measured_at": at,
        "received_at": at,
        "value": values.get("value"),
        "systolic": values.get("systolic"),
        "diastolic": values.get("diastolic"),
        "pulse": None,
        "unit_received": None,
        "values_received": [],
        "device_id": source,
        "device_key": source,
        "source_system": "bench",
        "source_reading_id": None,
    }


def seed(session: Session, days: int) -> int:
    """The patient and its history; the number of readings stored."""
    patient = Patient(
        source_system="bench",
        external_id="history-1",
        sex="female",
        birth_date=date(1958, 5, 1),
        conditions=["diabetes", "hypertension"],
        created_at=NOW - timedelta(days=days + 1),
        updated_at=NOW,
    )
    session.add(patient)
    session.flush()
    assert patient.id is not None
    count = 0
    for day in range(days):
        start = NOW - timedelta(days=day + 1)
        rows = [
            _reading(
                patient.id, "bp", "wearable", start + timedelta(hours=6 * n), systolic=132 + n, diastolic=84
            )
            for n in range(4)
        ]
        rows += [
            _reading(patient.id, "rpg", "cgm", start + timedelta(minutes=15 * n), value=6.5 + (n % 12) / 10)
            for n in range(96)
        ]
        if day % 90 == 0:
            visit = Encounter(patient_id=patient.id, at=start, source_system="bench", received_at=start)
            session.add(visit)
            session.flush()
            clinic = [
                _reading(patient.id, "bp", "clinic", start, systolic=138, diastolic=86),
                _reading(patient.id, "fpg", "clinic", start, value=7.2),
            ]
            for row in clinic:
                row["encounter_id"] = visit.id
            rows += clinic
        if day % 180 == 0:
            rows += [
                _reading(patient.id, "ldl_c", "lab", start, value=2.9),
                _reading(patient.id, "tc", "lab", start, value=5.1),
            ]
        repository.insert_readings_once(session, rows)
        count += len(rows)
    session.commit()
    return patient.id


def measure(url: str, days: int, repeat: int) -> tuple[bool, dict[str, list[float]]]:
    migrate(url)
    engine = make_engine(url)
    evaluator = Evaluator(PackRegistry.from_directory())
    from api.main import pathway_config

    config = pathway_config(evaluator, Settings(database_url=url))
    with Session(engine) as session:
        began = time.perf_counter()
        patient_id = seed(session, days)
        print(f"  seeded in {time.perf_counter() - began:.1f} s")
    timings: dict[str, list[float]] = {"reassess (recent)": [], "evaluate whole history": []}
    with Session(engine) as session:
        patient = service.require_patient(session, patient_id)
        whole = service.history_of(session, patient)
        part = service.history_of(session, patient, evaluated_at=NOW, horizon=config.reading_horizon)
        stored = len(whole.readings) + sum(len(e.readings) for e in whole.encounters)
        same = config.assess(part, NOW).to_json() == config.assess(whole, NOW).to_json()
        for _ in range(repeat):
            started = time.perf_counter()
            service.reassess_or_defer(session, patient, config, NOW)
            timings["reassess (recent)"].append(time.perf_counter() - started)
            session.rollback()
            patient = service.require_patient(session, patient_id)
            started = time.perf_counter()
            config.assess(service.history_of(session, patient), NOW)
            timings["evaluate whole history"].append(time.perf_counter() - started)
            session.rollback()
    engine.dispose()
    print(f"  readings stored {stored:,}; read by a reassessment {len(part.readings):,} loose + visits")
    for name, values in timings.items():
        print(
            f"  {name:<26} p50 {1000 * statistics.median(values):8.1f} ms   max {1000 * max(values):8.1f} ms"
        )
    print(f"  same tier, reasons and facts: {'yes' if same else 'NO'}")
    return same, timings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.history", description=__doc__.split("\n\n")[0])
    parser.add_argument("--database", choices=("sqlite", "postgresql", "both"), default="both")
    parser.add_argument("--days", type=int, default=365, help="days of wearable and CGM data (365)")
    parser.add_argument("--repeat", type=int, default=30, help="timed runs of each path (30)")
    parser.add_argument("--postgres-url", default=DEFAULT_POSTGRES_URL)
    args = parser.parse_args(argv)
    kinds = ("sqlite", "postgresql") if args.database == "both" else (args.database,)
    ok = True
    for kind in kinds:
        print(f"[{kind}] {args.days} days: 4 wearable BP and 96 CGM readings a day")
        with fresh_database(kind, args.postgres_url) as url:
            same, timings = measure(url, args.days, args.repeat)
        ok &= same
        recent_ms = 1000 * statistics.median(timings["reassess (recent)"])
        whole_ms = 1000 * statistics.median(timings["evaluate whole history"])
        emit(f"{kind} reassessment, {args.days} days of CGM + wearable, p50 ms", f"{recent_ms:.1f}")
        emit(f"{kind} evaluation of the whole history, p50 ms", f"{whole_ms:.1f}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
