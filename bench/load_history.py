"""Months of stored history before the mixed load (``bench.load --history-days N``, PostgreSQL).

A county's database is not empty: the load's per-request costs must not grow with what each patient
has accumulated. Before the traffic, every patient gets ``N`` days of self-measured blood pressure
(every tenth an hourly wearable cuff, the others a home cuff twice a day), ending where the
traffic's own readings begin (6 days before the anchor), and one stored assessment per post, as
ingest makes them: real assessments at both ends, copies of the first in between. Stored straight
through the repository (the HTTP path is what the traffic then measures).
"""

from __future__ import annotations

import random
import time
from datetime import timedelta

from sqlalchemy import text
from sqlmodel import Session

from bench.history import stored_reading
from bench.load_world import World, blood_pressure

HOURLY_SHARE = 10  # every tenth patient wears a cuff that posts every hour
HOME_EVERY = timedelta(hours=12)
HOURLY_EVERY = timedelta(hours=1)
TRAFFIC_DAYS = 6  # the traffic's readings lie within 6 days of the anchor
CHUNK = 2000

# One assessment per post before the last: copies of the patient's first real assessment.
_COPIES = text(
    "INSERT INTO assessment (patient_id, as_of, evaluated_at, pack_id, pack_version, pack_sha256, tier, "
    "level, referral_urgency, follow_up_due, result) "
    "SELECT patient_id, CAST(:start AS timestamptz) + g * CAST(:step AS interval), "
    "CAST(:start AS timestamptz) + g * CAST(:step AS interval), pack_id, pack_version, pack_sha256, tier, "
    "level, referral_urgency, follow_up_due, result "
    "FROM assessment, generate_series(0, :posts - 1) AS g WHERE id = :id"
)


def age(url: str, world: World, days: int) -> tuple[int, int, float]:
    """Store the history; (readings, assessments, seconds)."""
    from api.main import pathway_config
    from pathway.clinical.clock import SystemClock
    from pathway.ingest import record_store
    from pathway.patients import reassessment, registration
    from pathway.settings import Settings
    from pathway.store.db import make_engine
    from rules.evaluation import Evaluator
    from rules.registry import PackRegistry

    began = time.perf_counter()
    settings = Settings(database_url=url)
    config = pathway_config(Evaluator(PackRegistry.from_directory()), settings)
    end = world.anchor - timedelta(days=TRAFFIC_DAYS)
    start = end - timedelta(days=days)
    readings = assessments = 0
    engine = make_engine(url)
    try:
        with Session(engine) as session:
            for p in world.patients:
                rng = random.Random(f"{world.seed}-history-{p.index}")
                step = HOURLY_EVERY if p.index % HOURLY_SHARE == 0 else HOME_EVERY
                source = "wearable" if step == HOURLY_EVERY else "home"
                posts = int((end - start) / step)
                rows = []
                for n in range(posts):
                    systolic, diastolic = blood_pressure(rng, p.profile)
                    row = stored_reading(
                        p.id, "bp", source, start + n * step, systolic=systolic, diastolic=diastolic
                    )
                    rows.append(
                        {**row, "device_id": f"history-cuff-{p.index}", "device_key": f"history-{p.index}"}
                    )
                for first in range(0, len(rows), CHUNK):
                    record_store.insert_readings_once(session, rows[first : first + CHUNK])
                patient = registration.require_patient(session, p.id, for_update=True)
                first_record = reassessment.reassess_or_defer(session, patient, config, start + step)
                assert first_record is not None
                assert first_record.id is not None
                copies = {"id": first_record.id, "posts": posts - 1, "step": step, "start": start + 2 * step}
                session.execute(_COPIES, copies)
                reassessment.reassess_or_defer(session, patient, config, SystemClock(settings.tz).now())
                session.commit()
                readings += posts
                assessments += posts + 1
        with engine.connect() as connection:  # the planner sees the aged tables as they are
            connection.execute(text("ANALYZE"))
            connection.commit()
    finally:
        engine.dispose()
    return readings, assessments, time.perf_counter() - began
