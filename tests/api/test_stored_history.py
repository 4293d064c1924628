"""The history a reassessment reads back (one statement over five tables) is exactly what was
stored: every part, in order, on SQLite and on PostgreSQL."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, datetime, timedelta
from decimal import Decimal

from fastapi.testclient import TestClient
from sqlmodel import Session

from pathway.clinical.history import (
    CheckDone,
    ComplicationRecord,
    Encounter,
    Measurement,
    PatientHistory,
    PatientProfile,
    SymptomReport,
)
from pathway.clinical.horizon import reading_horizon, recent
from pathway.clinical.vocabulary import (
    CareCheck,
    Complication,
    Condition,
    ReadingKind,
    ReadingSource,
    Sex,
    Symptom,
)
from pathway.patients import display_store, history_store, registration
from pathway.patients.history import history_from_rows, history_of
from rules.registry import PackRegistry
from tests.api.conftest import register_patient
from tests.builders import AS_OF


def _at(days: float) -> datetime:
    return AS_OF - timedelta(days=days)


def test_the_stored_history_reads_back_whole_and_in_order(client: TestClient) -> None:
    patient_id = register_patient(
        client,
        conditions=["hypertension", "diabetes"],
        complications=[{"code": "stroke", "onset": "2024-05-01"}, {"code": "chd", "onset": "2019-03-02"}],
    )
    visit = {
        "at": _at(30).isoformat(),
        "readings": [
            {"kind": "bp", "systolic": 152, "diastolic": 94},
            {"kind": "fpg", "value": 7.4, "unit": "mmol/L"},
        ],
        "symptoms": ["palpitations"],
        "checks": ["foot"],
    }
    assert client.post(f"/v1/patients/{patient_id}/encounters", json=visit).status_code == 201
    home = [
        {"kind": "bp", "systolic": 141, "diastolic": 88, "source": "home", "measured_at": _at(2).isoformat()},
        {"kind": "bp", "systolic": 139, "diastolic": 86, "source": "home", "measured_at": _at(5).isoformat()},
        {"kind": "fpg", "value": 126, "unit": "mg/dL", "source": "home", "measured_at": _at(1).isoformat()},
    ]
    assert client.post(f"/v1/patients/{patient_id}/readings", json=home).status_code == 201
    symptom = [{"code": "severe_headache", "at": _at(0.5).isoformat()}]
    assert client.post(f"/v1/patients/{patient_id}/symptoms", json=symptom).status_code == 201
    check = [{"kind": "fundus", "at": _at(10).isoformat()}]
    assert client.post(f"/v1/patients/{patient_id}/checks", json=check).status_code == 201

    with Session(client.app.state.engine) as session:  # type: ignore[attr-defined]
        patient = registration.require_patient(session, patient_id)
        history = history_of(session, patient)
        rows = history_store.history_rows(session, patient_id)

    def bp(systolic: int, diastolic: int, at: datetime, source: ReadingSource) -> Measurement:
        return Measurement(
            ReadingKind.BP, source, at, systolic=Decimal(systolic), diastolic=Decimal(diastolic)
        )

    assert history == PatientHistory(
        profile=PatientProfile(
            sex=Sex.MALE,
            birth_date=date(1960, 1, 1),
            conditions=frozenset({Condition.HYPERTENSION, Condition.DIABETES}),
            complications=(
                ComplicationRecord(Complication.CHD, date(2019, 3, 2)),
                ComplicationRecord(Complication.STROKE, date(2024, 5, 1)),
            ),
        ),
        encounters=(
            Encounter(
                at=_at(30),
                readings=(
                    bp(152, 94, _at(30), ReadingSource.CLINIC),
                    Measurement(ReadingKind.FPG, ReadingSource.CLINIC, _at(30), value=Decimal("7.4")),
                ),
                symptoms=(Symptom.PALPITATIONS,),
            ),
        ),
        readings=(
            bp(139, 86, _at(5), ReadingSource.HOME),
            bp(141, 88, _at(2), ReadingSource.HOME),
            Measurement(ReadingKind.FPG, ReadingSource.HOME, _at(1), value=Decimal("7.0")),
        ),
        symptoms=(SymptomReport(Symptom.SEVERE_HEADACHE, _at(0.5)),),
        checks=(CheckDone(CareCheck.FOOT, _at(30)), CheckDone(CareCheck.FUNDUS, _at(10))),
    )
    assert [encounter[1] for encounter in rows.encounters] == [_at(30)]  # (id, at, medication answers…)
    assert all(at.utcoffset() is not None for *_, at in rows.symptoms)


def test_a_reassessment_reads_the_recent_stream_the_glucose_peaks_and_the_latest_older_reading_of_other_kinds(
    client: TestClient,
) -> None:
    patient_id = register_patient(client, conditions=["hypertension", "diabetes"])
    horizon = reading_horizon(PackRegistry.from_directory().get().pack.snapshot)
    since, peaks_since = AS_OF - horizon.every, AS_OF - horizon.peaks
    stream = [
        {
            "kind": "bp",
            "systolic": 128 + n % 20,
            "diastolic": 80,
            "source": "wearable",
            "device_id": "cuff-1",
            "measured_at": (AS_OF - timedelta(hours=6 * n + 1)).isoformat(),
        }
        for n in range(1600)  # 400 days, four a day
    ]

    def glucose(kind: str, value: float, at: datetime) -> dict[str, object]:
        return {"kind": kind, "value": value, "source": "home", "measured_at": at.isoformat()}

    edges = [
        glucose("fpg", 6.1, since),
        glucose("fpg", 6.4, since - timedelta(seconds=1)),
        glucose("fpg", 6.9, since - timedelta(days=2)),
        glucose("fpg", 6.9, since - timedelta(days=3)),
        glucose("fpg", 9.9, peaks_since - timedelta(seconds=1)),
        glucose("rpg", 7.5, peaks_since),
        glucose("rpg", 7.0, since - timedelta(days=5)),
        glucose("rpg", 6.8, since - timedelta(days=1)),
        {"kind": "ldl_c", "value": 3.2, "source": "lab", "measured_at": _at(300).isoformat()},
        {"kind": "ldl_c", "value": 3.6, "source": "lab", "measured_at": _at(380).isoformat()},
        {
            "kind": "bp",
            "systolic": 150,
            "diastolic": 95,
            "source": "clinic",
            "measured_at": _at(200).isoformat(),
        },
    ]
    for batch in (stream[:1000], stream[1000:], edges):
        assert client.post(f"/v1/patients/{patient_id}/readings", json=batch).status_code == 201
    visit = {"at": _at(250).isoformat(), "readings": [{"kind": "hba1c", "value": 7.1, "unit": "%"}]}
    assert client.post(f"/v1/patients/{patient_id}/encounters", json=visit).status_code == 201

    with Session(client.app.state.engine) as session:  # type: ignore[attr-defined]
        patient = registration.require_patient(session, patient_id)
        whole = history_of(session, patient)
        read = history_of(session, patient, evaluated_at=AS_OF, horizon=horizon)

    assert read == recent(whole, AS_OF, horizon)
    kept = {(r.kind.value, r.at) for r in read.readings}
    assert ("fpg", since) in kept  # in the short window
    assert ("fpg", since - timedelta(seconds=1)) not in kept  # before it, and not the peak
    assert {("fpg", since - timedelta(days=2)), ("fpg", since - timedelta(days=3))} <= kept  # the peak, tied
    assert ("fpg", peaks_since - timedelta(seconds=1)) not in kept  # higher, but before the long window
    assert ("rpg", peaks_since) in kept  # the peak, at the long window's first instant
    assert ("rpg", since - timedelta(days=5)) not in kept  # neither the peak nor the latest
    assert ("rpg", since - timedelta(days=1)) in kept  # none in the short window: the latest is read
    assert ("ldl_c", _at(300)) in kept
    assert ("ldl_c", _at(380)) not in kept
    assert ("bp", _at(200)) in kept  # a clinic reading: an implicit visit, always read
    assert len(read.readings) < len(whole.readings) // 3
    assert read.encounters == whole.encounters


def test_a_replay_reads_nothing_after_its_moment_yet_the_latest_older_reading_of_each_kind_and_the_peaks(
    client: TestClient,
) -> None:
    patient_id = register_patient(client, conditions=["hypertension", "diabetes"])
    horizon = reading_horizon(PackRegistry.from_directory().get().pack.snapshot)
    moment = _at(30)
    since, peaks_since = moment - horizon.every, moment - horizon.peaks

    def loose(kind: str, at: datetime, source: str = "home", **values: float) -> dict[str, object]:
        return {"kind": kind, "source": source, "measured_at": at.isoformat(), **values}

    stream = [
        loose("bp", AS_OF - timedelta(hours=6 * n + 1), "wearable", systolic=128 + n % 20, diastolic=80)
        for n in range(480)  # 120 days, four a day: 30 of them after the moment
    ]
    edges = [
        loose("fpg", moment, value=6.0),  # the short window's last instant
        loose("fpg", moment + timedelta(seconds=1), value=9.9),  # after: not read, and no peak
        loose("fpg", since - timedelta(days=1), value=6.1),  # before, neither the latest needed nor the peak
        loose("fpg", since - timedelta(days=2), value=6.9),  # the peak
        loose("rpg", moment + timedelta(days=2), value=8.0),  # after: covers nothing at the moment
        loose("rpg", since - timedelta(days=1), value=6.8),  # so the latest before the window is read
        loose("rpg", since - timedelta(days=5), value=7.0),
        loose("rpg", peaks_since, value=7.5),  # the peak, at the long window's first instant
        loose("ldl_c", _at(300), "lab", value=3.2),
        loose("ldl_c", _at(380), "lab", value=3.6),
        loose("ldl_c", moment + timedelta(days=10), "lab", value=3.0),  # after: the older one is read
        loose("bp", moment + timedelta(days=5), "clinic", systolic=150, diastolic=95),  # read whole
    ]
    for batch in (stream, edges):
        assert client.post(f"/v1/patients/{patient_id}/readings", json=batch).status_code == 201
    # A visit before the moment whose HbA1c was measured after it: read with the visit.
    hba1c = {
        "kind": "hba1c",
        "value": 7.1,
        "unit": "%",
        "measured_at": (moment + timedelta(days=1)).isoformat(),
    }
    visit = {"at": (moment - timedelta(days=3)).isoformat(), "readings": [hba1c]}
    assert client.post(f"/v1/patients/{patient_id}/encounters", json=visit).status_code == 201

    with Session(client.app.state.engine) as session:  # type: ignore[attr-defined]
        patient = registration.require_patient(session, patient_id)
        whole = history_of(session, patient)
        rows = display_store.replay_rows(session, patient_id, moment, horizon)
    read = history_from_rows(
        patient, rows.complications, rows.readings, rows.encounters, rows.symptoms, rows.checks
    )

    expected = recent(whole, moment, horizon)
    later = {r for r in expected.readings if r.source is not ReadingSource.CLINIC and r.at > moment}
    assert read == replace(expected, readings=tuple(r for r in expected.readings if r not in later))
    kept = {(r.kind.value, r.at) for r in read.readings}
    assert not [r for r in read.readings if r.source is not ReadingSource.CLINIC and r.at > moment]
    assert {r.at for r in read.readings if r.source is ReadingSource.WEARABLE} == {
        r.at for r in whole.readings if r.source is ReadingSource.WEARABLE and since <= r.at <= moment
    }
    assert ("fpg", moment) in kept
    assert ("fpg", since - timedelta(days=1)) not in kept
    assert ("fpg", since - timedelta(days=2)) in kept
    assert ("rpg", since - timedelta(days=1)) in kept
    assert ("rpg", since - timedelta(days=5)) not in kept
    assert ("rpg", peaks_since) in kept
    assert ("ldl_c", _at(300)) in kept
    assert ("ldl_c", _at(380)) not in kept
    assert ("bp", moment + timedelta(days=5)) in kept  # a clinic reading
    assert [(r.kind, r.at) for e in read.encounters for r in e.readings] == [
        (ReadingKind.HBA1C, moment + timedelta(days=1))
    ]
