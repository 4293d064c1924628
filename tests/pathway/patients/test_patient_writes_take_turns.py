"""Two writers on one patient (PostgreSQL, several server processes): the second waits for the first,
then reassesses with every reading the first committed — the stored tier is never left behind."""

from __future__ import annotations

import threading
from datetime import timedelta
from decimal import Decimal

import pytest
from sqlmodel import Session

from api.main import pathway_config
from pathway.clinical.vocabulary import Condition, ReadingKind, ReadingSource, Sex
from pathway.ingest import recording
from pathway.ingest.inbound import PatientIn, ReadingIn
from pathway.patients import patient_store, reassessment, registration
from pathway.settings import Settings
from pathway.store.db import make_engine, migrate
from rules.evaluation import Evaluator
from tests.builders import AS_OF


def _crisis_reading(minutes_ago: int) -> ReadingIn:
    return ReadingIn(
        kind=ReadingKind.BP,
        systolic=Decimal(192),
        diastolic=Decimal(114),
        source=ReadingSource.WEARABLE,
        measured_at=AS_OF - timedelta(minutes=minutes_ago),
        device_id="band-1",
    )


@pytest.mark.postgres
def test_the_second_writer_waits_and_sees_the_first_writers_reading(
    postgres_url: str, evaluator: Evaluator
) -> None:
    migrate(postgres_url)
    engine = make_engine(postgres_url)
    config = pathway_config(evaluator, Settings(database_url=postgres_url))
    with Session(engine) as session:
        born = AS_OF.date().replace(year=1960)
        data = PatientIn(
            source_system="ehr",
            external_id="p1",
            sex=Sex.MALE,
            birth_date=born,
            conditions=[Condition.HYPERTENSION],
        )
        patient, _ = registration.upsert_patient(session, data, AS_OF)
        session.commit()
        assert patient.id is not None
        patient_id = patient.id

    first = Session(engine)
    locked = registration.require_patient(first, patient_id, for_update=True)
    recording.record_readings(
        first, locked, [_crisis_reading(30)], source_system="band", config=config, now=AS_OF
    )
    seen: list[str] = []
    finished = threading.Event()

    def second_writer() -> None:
        with Session(engine) as session:
            mine = registration.require_patient(session, patient_id, for_update=True)  # waits for `first`
            recording.record_readings(
                session, mine, [_crisis_reading(10)], source_system="band", config=config, now=AS_OF
            )
            record = reassessment.reassess(session, mine, config, AS_OF)
            session.commit()
            seen.append(record.tier)
        finished.set()

    writer = threading.Thread(target=second_writer)
    writer.start()
    assert not finished.wait(0.5)  # the second writer is held at the patient's lock
    reassessment.reassess(first, locked, config, AS_OF)
    first.commit()
    first.close()
    assert finished.wait(10)
    writer.join()
    # Two wearable crises ≥ 5 min apart confirm the crisis only if the second writer saw the first's.
    assert seen == ["red"]
    with Session(engine) as session:
        latest = patient_store.latest_assessment(session, patient_id)
        assert latest is not None
        assert latest.tier == "red"
    engine.dispose()
