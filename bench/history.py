"""Reassessment cost against history length (a benchmark, not a test).

    python -m bench.history [--database sqlite|postgresql|both] [--days 365] [--repeat 30]

Two patients (hypertension and diabetes), each with ``--days`` of a wearable cuff (4 BP readings a
day), a visit every 90 days and a lipid panel every 180 days, and one of them a CGM too (96 glucose
readings a day), stored through the repository in a fresh database. Then, ``--repeat`` times
each, in a transaction that is rolled back:

- read + evaluate as every ingest does: the recent part of the stream (pathway.clinical.horizon);
- read + evaluate the whole history (``history_of`` without horizons), for comparison;
- the whole reassessment (:func:`pathway.patients.reassessment.reassess_or_defer`: also stores the assessment
  and syncs tasks);
- the newest of the patient's stored assessments, as every summary, assessment read and retried
  batch reads it, with one assessment stored per wearable post (4 a day, and 96 a day with a CGM).

Printed: readings stored, readings each path reads, p50 and max ms of each, whether both give the
same tier and facts. Exit status 1 if they differ.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from datetime import date, datetime, timedelta

from sqlalchemy import insert
from sqlmodel import Session

from bench.figures import emit
from bench.ingest import DEFAULT_POSTGRES_URL, fresh_database
from pathway.clinical.clock import CLINIC_TZ
from pathway.ingest import record_store
from pathway.patients import patient_store, reassessment, registration
from pathway.patients.history import history_of
from pathway.patients.reassessment import PathwayConfig
from pathway.settings import Settings
from pathway.store.db import make_engine, migrate
from pathway.store.tables import AssessmentRecord, Encounter, Patient
from rules.evaluation import Evaluator
from rules.registry import PackRegistry

NOW = datetime(2026, 11, 23, 9, 0, tzinfo=CLINIC_TZ)


def stored_reading(
    patient_id: int, kind: str, source: str, at: datetime, **values: float
) -> dict[str, object]:
    """A reading row as the repository stores it (synthetic: no unit or values as received)."""
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


def seed(session: Session, days: int, cgm: bool) -> int:
    """The patient and its history; its id."""
    patient = Patient(
        source_system="bench",
        external_id=f"history-{'cgm' if cgm else 'cuff'}",
        sex="female",
        birth_date=date(1958, 5, 1),
        conditions=["diabetes", "hypertension"],
        created_at=NOW - timedelta(days=days + 1),
        updated_at=NOW,
    )
    session.add(patient)
    session.flush()
    assert patient.id is not None
    for day in range(days):
        start = NOW - timedelta(days=day + 1)
        rows = [
            stored_reading(
                patient.id, "bp", "wearable", start + timedelta(hours=6 * n), systolic=132 + n, diastolic=84
            )
            for n in range(4)
        ]
        if cgm:
            rows += [
                stored_reading(
                    patient.id, "rpg", "cgm", start + timedelta(minutes=15 * n), value=6.5 + (n % 12) / 10
                )
                for n in range(96)
            ]
        if day % 90 == 0:
            visit = Encounter(patient_id=patient.id, at=start, source_system="bench", received_at=start)
            session.add(visit)
            session.flush()
            clinic = [
                stored_reading(patient.id, "bp", "clinic", start, systolic=138, diastolic=86),
                stored_reading(patient.id, "fpg", "clinic", start, value=7.2),
            ]
            for row in clinic:
                row["encounter_id"] = visit.id
            rows += clinic
        if day % 180 == 0:
            rows += [
                stored_reading(patient.id, "ldl_c", "lab", start, value=2.9),
                stored_reading(patient.id, "tc", "lab", start, value=5.1),
            ]
        record_store.insert_readings_once(session, rows)
    session.commit()
    return patient.id


def measure(url: str, days: int, repeat: int, cgm: bool) -> tuple[bool, dict[str, list[float]]]:
    migrate(url)
    engine = make_engine(url)
    evaluator = Evaluator(PackRegistry.from_directory())
    from api.main import pathway_config

    config = pathway_config(evaluator, Settings(database_url=url))
    with Session(engine) as session:
        began = time.perf_counter()
        patient_id = seed(session, days, cgm)
        print(f"  seeded in {time.perf_counter() - began:.1f} s")
    timings: dict[str, list[float]] = {"recent": [], "whole": [], "reassess": [], "newest": []}
    horizon = config.reading_horizon
    with Session(engine) as session:
        patient = registration.require_patient(session, patient_id)
        whole = history_of(session, patient)
        part = history_of(session, patient, evaluated_at=NOW, horizon=horizon)
        stored = len(whole.readings) + sum(len(e.readings) for e in whole.encounters)
        same = config.assess(part, NOW).to_json() == config.assess(whole, NOW).to_json()
        assessments = _assessments(session, patient, config, days * (96 if cgm else 4))
        for _ in range(repeat):
            started = time.perf_counter()
            newest = patient_store.latest_assessment(session, patient_id)
            timings["newest"].append(time.perf_counter() - started)
            assert newest is not None
            started = time.perf_counter()
            config.assess(history_of(session, patient, evaluated_at=NOW, horizon=horizon), NOW)
            timings["recent"].append(time.perf_counter() - started)
            started = time.perf_counter()
            config.assess(history_of(session, patient), NOW)
            timings["whole"].append(time.perf_counter() - started)
            started = time.perf_counter()
            reassessment.reassess_or_defer(session, patient, config, NOW)
            timings["reassess"].append(time.perf_counter() - started)
            session.rollback()
            patient = registration.require_patient(session, patient_id)
    engine.dispose()
    print(f"  readings stored {stored:,}; read by a reassessment {len(part.readings):,} loose + visits")
    labels = {
        "recent": "read + evaluate, recent",
        "whole": "read + evaluate, whole",
        "reassess": "reassess (recent, stored)",
        "newest": f"newest of {assessments:,} assessments",
    }
    for name, values in timings.items():
        p50, worst = 1000 * statistics.median(values), 1000 * max(values)
        print(f"  {labels[name]:<30} p50 {p50:8.1f} ms   max {worst:8.1f} ms")
    print(f"  same tier, reasons and facts: {'yes' if same else 'NO'}")
    return same, timings


def _assessments(session: Session, patient: Patient, config: PathwayConfig, count: int) -> int:
    """Store ``count`` assessments of the patient, one per wearable post, the newest at NOW (copies
    of one real assessment: what is measured is finding the newest among them); committed."""
    record = reassessment.reassess_or_defer(session, patient, config, NOW)
    assert record is not None
    columns = {name: getattr(record, name) for name in AssessmentRecord.model_fields if name != "id"}
    step = timedelta(days=1) / (count / max(1, (NOW - patient.created_at).days - 1))
    for start in range(0, count - 1, 1000):
        rows = [
            {**columns, "as_of": NOW - step * n, "evaluated_at": NOW - step * n}
            for n in range(start + 1, min(count, start + 1001))
        ]
        session.execute(insert(AssessmentRecord), rows)
    session.commit()
    return count


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
        for cgm, stream in ((False, "wearable BP"), (True, "wearable BP + CGM")):
            print(f"[{kind}] {args.days} days of {stream}")
            with fresh_database(kind, args.postgres_url) as url:
                same, timings = measure(url, args.days, args.repeat, cgm)
            ok &= same
            recent_ms = 1000 * statistics.median(timings["recent"])
            whole_ms = 1000 * statistics.median(timings["whole"])
            emit(f"{kind} read + evaluate, {args.days} days of {stream}, p50 ms", f"{recent_ms:.1f}")
            emit(f"{kind} same, reading the whole history, p50 ms", f"{whole_ms:.1f}")
            newest_ms = 1000 * statistics.median(timings["newest"])
            emit(f"{kind} newest assessment, {args.days} days of {stream} posts, p50 ms", f"{newest_ms:.1f}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
