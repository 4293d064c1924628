"""The history a reassessment reads back (one statement over five tables) is exactly what was
stored: every part, in order, on SQLite and on PostgreSQL."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from decimal import Decimal

from fastapi.testclient import TestClient
from sqlmodel import Session

from pathway import repository, service
from pathway.history import (
    CheckDone,
    ComplicationRecord,
    Encounter,
    Measurement,
    PatientHistory,
    PatientProfile,
    SymptomReport,
)
from pathway.vocabulary import CareCheck, Complication, Condition, ReadingKind, ReadingSource, Sex, Symptom
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
        patient = service.require_patient(session, patient_id)
        history = service.history_of(session, patient)
        rows = repository.history_rows(session, patient_id)

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
    assert [at for _, at in rows.encounters] == [_at(30)]
    assert all(at.utcoffset() is not None for *_, at in rows.symptoms)
