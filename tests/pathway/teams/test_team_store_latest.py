"""The team views' bulk reads on both stores: each listed patient's newest assessment (by id, made by
a moment if given) and the clinic and lab readings the indicators count."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlmodel import Session

from pathway.clinical.vocabulary import ReadingKind, ReadingSource, is_self_measured
from pathway.store.db import make_engine, migrate
from pathway.store.tables import AssessmentRecord, Encounter, Patient, Reading
from pathway.teams import indicator_store, team_store
from tests.builders import AS_OF
from tests.conftest import DIALECTS, database

FACTS = ("office_sbp", "ldl_c")


@pytest.fixture(params=DIALECTS)
def session(request: pytest.FixtureRequest) -> Iterator[Session]:
    url = database(request, request.param)
    migrate(url)
    engine = make_engine(url)
    with Session(engine) as session:
        yield session
    engine.dispose()


def _patient(session: Session, external_id: str) -> int:
    patient = Patient(
        source_system="ehr",
        external_id=external_id,
        sex="male",
        birth_date=AS_OF.date().replace(year=1960),
        conditions=["hypertension"],
        created_at=AS_OF - timedelta(days=365),
        updated_at=AS_OF - timedelta(days=365),
    )
    session.add(patient)
    session.flush()
    assert patient.id is not None
    return patient.id


def _assess(session: Session, patient_id: int, tier: str, evaluated_at: datetime, sbp: int) -> int:
    reasons = [{"rule_id": f"test.{tier}", "message": f"血压 {sbp}", "message_en": f"BP {sbp}"}]
    record = AssessmentRecord(
        patient_id=patient_id,
        as_of=evaluated_at,
        evaluated_at=evaluated_at,
        pack_id="sangao-cn",
        pack_version="test",
        pack_sha256="0" * 64,
        tier=tier,
        level="l1",
        follow_up_due=evaluated_at.date(),
        result={"tier": tier, "reasons": reasons, "facts": {"office_sbp": sbp, "smoker": False}},
    )
    session.add(record)
    session.flush()
    assert record.id is not None
    return record.id


def _summaries(session: Session, patient_ids: list[int]) -> dict[int, tuple[str, list[Any], dict[str, Any]]]:
    found = team_store.latest_summaries(session, patient_ids, FACTS)
    return {patient_id: (s.tier, s.reasons, s.facts) for patient_id, s in found.items()}


def test_each_patient_is_listed_with_the_newest_of_its_assessments(session: Session) -> None:
    many, one, none = _patient(session, "many"), _patient(session, "one"), _patient(session, "none")
    # Interleaved ids, as wearable posts and visits arrive: the newest is the one with the highest id.
    _assess(session, many, "red", AS_OF - timedelta(hours=5), 186)
    _assess(session, one, "yellow", AS_OF - timedelta(hours=4), 150)
    _assess(session, many, "blue", AS_OF - timedelta(hours=3), 128)
    _assess(session, many, "yellow", AS_OF - timedelta(hours=2), 146)
    listed = [many, one, none, 999_999]

    assert team_store.latest_tiers(session, listed) == {many: "yellow", one: "yellow"}
    summaries = _summaries(session, listed)
    assert summaries == {
        many: ("yellow", [{"rule_id": "test.yellow", "message": "血压 146", "message_en": "BP 146"}],
               {"office_sbp": 146}),
        one: ("yellow", [{"rule_id": "test.yellow", "message": "血压 150", "message_en": "BP 150"}],
              {"office_sbp": 150}),
    }  # fmt: skip
    assert team_store.latest_tiers(session, []) == {}
    assert _summaries(session, []) == {}


def test_made_by_lists_the_newest_assessment_made_by_then(session: Session) -> None:
    patient, other = _patient(session, "p1"), _patient(session, "p2")
    first, second, third = (AS_OF - timedelta(days=d) for d in (30, 20, 10))
    _assess(session, patient, "red", first, 186)
    _assess(session, other, "blue", second, 120)
    _assess(session, patient, "yellow", second, 150)
    _assess(session, patient, "blue", third, 128)
    both = [patient, other]

    assert team_store.latest_tiers(session, both, made_by=AS_OF) == {patient: "blue", other: "blue"}
    assert team_store.latest_tiers(session, both, made_by=third - timedelta(seconds=1)) == {
        patient: "yellow",
        other: "blue",
    }
    assert team_store.latest_tiers(session, both, made_by=second) == {patient: "yellow", other: "blue"}
    assert team_store.latest_tiers(session, both, made_by=second - timedelta(seconds=1)) == {patient: "red"}
    assert team_store.latest_tiers(session, both, made_by=first - timedelta(seconds=1)) == {}


def test_the_indicators_read_clinic_and_lab_readings_only(session: Session) -> None:
    patient = _patient(session, "p1")
    visit = Encounter(
        patient_id=patient, at=AS_OF - timedelta(days=3), source_system="ehr", received_at=AS_OF
    )
    session.add(visit)
    session.flush()
    for minutes, source in enumerate(ReadingSource):
        at = AS_OF - timedelta(days=2, minutes=minutes)
        session.add(_reading(patient, None, source, at, f"loose-{source.value}"))
        # at a visit too, a self-measured reading is left out (the patient's own meter, say)
        at_visit = visit.at + timedelta(minutes=minutes)
        session.add(_reading(patient, visit.id, source, at_visit, f"visit-{source.value}"))
    session.add(_reading(patient, None, ReadingSource.CLINIC, AS_OF + timedelta(days=1), "later"))
    session.flush()

    readings = indicator_store.clinical_rows(session, [patient], AS_OF)[patient].readings
    clinical = sorted(s.value for s in ReadingSource if not is_self_measured(s.value))
    assert clinical == ["clinic", "lab"]
    kept = sorted((encounter_id is not None, source) for encounter_id, _kind, source, *_ in readings)
    assert kept == [(at_visit, s) for at_visit in (False, True) for s in clinical]
    times = [row[3] for row in readings]
    assert times == sorted(times)


def _reading(patient_id: int, encounter_id: int | None, source: str, at: datetime, key: str) -> Reading:
    return Reading(
        patient_id=patient_id,
        encounter_id=encounter_id,
        kind=ReadingKind.BP.value,
        source=source,
        measured_at=at,
        received_at=at,
        systolic=128.0,
        diastolic=78.0,
        source_system="test",
        source_reading_id=key,
    )
