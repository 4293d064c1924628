"""The care plan, the workbench's patient page and a preview read a bounded part of a long
self-measured stream, and answer exactly as from the whole history: on SQLite and on PostgreSQL.

The patient has 17 months of wearable BP (every 3 hours for the last 100 days, every 12 before), a
CGM and a home glucometer for the last weeks, visits, loose clinic readings and labs older than a
year and recent, and readings on both sides of the year's first instant.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, replace
from datetime import datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session

from api.care_plan import CarePlanRead
from pathway.access.permissions import Role
from pathway.clinical.clock import CLINIC_TZ
from pathway.clinical.history import PatientHistory
from pathway.clinical.horizon import recent
from pathway.clinical.vocabulary import ReadingKind, ReadingSource
from pathway.patients import care_plan, display_store, patient_store, registration
from pathway.patients.display_store import Span
from pathway.patients.history import history_from_rows, history_of
from pathway.patients.reassessment import PathwayConfig
from pathway.store.tables import Patient
from tests.api.conftest import new_key, register_patient
from tests.builders import AS_OF
from tests.web.conftest import sign_in

NEW_YEAR = datetime(2026, 1, 1, tzinfo=CLINIC_TZ)


def _ago(days: float = 0, hours: float = 0) -> datetime:
    return AS_OF - timedelta(days=days, hours=hours)


def _reading(kind: str, at: datetime, source: str, **values: Any) -> dict[str, Any]:
    return {"kind": kind, "source": source, "measured_at": at.isoformat(), **values}


def _stream() -> list[dict[str, Any]]:
    wearable = [
        _reading("bp", _ago(hours=3 * n + 1), "wearable", systolic=126 + n % 23, diastolic=78 + n % 9)
        for n in range(800)  # the last 100 days
    ] + [
        _reading("bp", _ago(days=100, hours=12 * n + 7), "wearable", systolic=131 + n % 17, diastolic=84)
        for n in range(800)  # the 400 days before
    ]
    cgm = [
        _reading("rpg", _ago(hours=6 * n + 2), "cgm", value=round(6.0 + n % 31 / 10, 1)) for n in range(280)
    ]
    meter = [
        _reading("fpg", _ago(days=n, hours=2), "home", value=round(5.6 + n % 13 / 10, 1)) for n in range(60)
    ]
    return wearable + cgm + meter


def _labs_and_clinic() -> list[dict[str, Any]]:
    return [
        _reading("ldl_c", _ago(500), "lab", value=3.9),
        _reading("ldl_c", _ago(300), "lab", value=3.4),
        _reading("tc", _ago(80), "lab", value=5.6),
        _reading("hdl_c", _ago(80), "lab", value=1.1),
        _reading("ldl_c", _ago(80), "lab", value=3.1),
        _reading("ldl_c", NEW_YEAR - timedelta(microseconds=1), "lab", value=3.0),
        _reading("ldl_c", NEW_YEAR, "lab", value=2.9),
        _reading("ldl_c", _ago(20), "home", value=2.8),
        _reading("ldl_c", _ago(3), "lab", value=2.6),
        _reading("hba1c", _ago(100), "lab", value=7.4),
        _reading("hba1c", _ago(10), "lab", value=7.0),
        _reading("bp", _ago(30), "clinic", systolic=148, diastolic=92),  # an implicit visit
        _reading("bp", _ago(6, hours=-3), "clinic", systolic=144, diastolic=90),  # the day of a visit
        _reading("bp", NEW_YEAR - timedelta(milliseconds=500), "clinic", systolic=150, diastolic=95),
    ]


def _visits() -> list[dict[str, Any]]:
    def visit(at: datetime, *readings: dict[str, Any]) -> dict[str, Any]:
        return {"at": at.isoformat(), "readings": list(readings)}

    return [
        visit(_ago(420), {"kind": "bp", "systolic": 152, "diastolic": 96}, {"kind": "fpg", "value": 7.9}),
        visit(_ago(200), {"kind": "bp", "systolic": 146, "diastolic": 90}),
        # A lipid panel drawn at a visit of the old year and measured in the new one.
        visit(
            NEW_YEAR - timedelta(days=3),
            {"kind": "bp", "systolic": 140, "diastolic": 88},
            {"kind": "ldl_c", "value": 3.0, "measured_at": (NEW_YEAR + timedelta(days=1)).isoformat()},
        ),
        visit(_ago(50), {"kind": "bp", "systolic": 142, "diastolic": 86}),
        visit(_ago(6), {"kind": "bp", "systolic": 138, "diastolic": 84}, {"kind": "fpg", "value": 7.2}),
        visit(_ago(2), {"kind": "bp", "systolic": 136, "diastolic": 82}),
    ]


@pytest.fixture
def patient_id(client: TestClient) -> int:
    patient_id = register_patient(client, conditions=["hypertension", "diabetes"])
    stream = _stream()
    for start in range(0, len(stream), 1000):
        response = client.post(f"/v1/patients/{patient_id}/readings", json=stream[start : start + 1000])
        assert response.status_code == 201, response.text
    response = client.post(f"/v1/patients/{patient_id}/readings", json=_labs_and_clinic())
    assert response.status_code == 201, response.text
    for body in _visits():
        assert client.post(f"/v1/patients/{patient_id}/encounters", json=body).status_code == 201
    checks = [
        {"kind": "fundus", "at": _ago(40).isoformat()},
        {"kind": "annual_check", "at": _ago(300).isoformat()},
    ]
    assert client.post(f"/v1/patients/{patient_id}/checks", json=checks).status_code == 201
    return patient_id


def _whole(client: TestClient, patient_id: int) -> tuple[Patient, PatientHistory]:
    with Session(client.app.state.engine) as session:  # type: ignore[attr-defined]
        patient = registration.require_patient(session, patient_id)
        return patient, history_of(session, patient)


def _count(history: PatientHistory) -> int:
    return len(history.readings) + sum(len(e.readings) for e in history.encounters)


@pytest.mark.parametrize("year", [2024, 2025, 2026, 2027])
def test_the_care_plan_of_the_bounded_read_is_the_plan_of_the_whole_history(
    client: TestClient, patient_id: int, year: int
) -> None:
    response = client.get(f"/v1/patients/{patient_id}/care-plan", params={"year": year})
    assert response.status_code == 200, response.text

    config: PathwayConfig = client.app.state.pathway  # type: ignore[attr-defined]
    patient, whole = _whole(client, patient_id)
    with Session(client.app.state.engine) as session:  # type: ignore[attr-defined]
        record = patient_store.latest_assessment(session, patient_id)
        assert record is not None
        today = AS_OF.astimezone(config.tz).date()
        plan = care_plan.plan_year(session, record, whole, year, today, config.tz)
    expected = json.loads(CarePlanRead.model_validate(asdict(plan)).model_dump_json())
    assert response.json() == expected
    if year in (2025, 2026):
        assert any(i["detail"] == "lipid panel" for i in expected["items"])
        assert any(i["detail"] == "encounter" for i in expected["items"])


def test_the_care_plan_reads_no_self_measured_stream(client: TestClient, patient_id: int) -> None:
    config: PathwayConfig = client.app.state.pathway  # type: ignore[attr-defined]
    patient, whole = _whole(client, patient_id)
    with Session(client.app.state.engine) as session:  # type: ignore[attr-defined]
        shown = care_plan.history_shown(session, patient, 2026, config.tz)

    loose = {(r.kind, r.source, r.at) for r in shown.readings}
    assert loose == {
        (ReadingKind.LDL_C, ReadingSource.LAB, NEW_YEAR),
        (ReadingKind.LDL_C, ReadingSource.LAB, _ago(3)),
        (ReadingKind.LDL_C, ReadingSource.HOME, _ago(20)),
        (ReadingKind.LDL_C, ReadingSource.LAB, NEW_YEAR - timedelta(microseconds=1)),  # the margin
        (ReadingKind.BP, ReadingSource.CLINIC, NEW_YEAR - timedelta(milliseconds=500)),  # the margin
        (ReadingKind.BP, ReadingSource.CLINIC, _ago(30)),
        (ReadingKind.BP, ReadingSource.CLINIC, _ago(6, hours=-3)),
    }
    # The year's visits, and the old year's one whose panel was measured in the new year.
    assert [e.at for e in shown.encounters] == [NEW_YEAR - timedelta(days=3), _ago(50), _ago(6), _ago(2)]
    assert [(r.kind, r.at) for e in shown.encounters for r in e.readings] == [
        (ReadingKind.LDL_C, NEW_YEAR + timedelta(days=1))
    ]
    assert _count(whole) > 1_900
    assert _count(shown) == 8


@pytest.mark.parametrize(("months", "year"), [(12, None), (1, None), (3, 2025), (36, 2024), (2, 2027)])
def test_the_patient_page_of_the_bounded_read_is_the_page_of_the_whole_history(
    client: TestClient, patient_id: int, monkeypatch: pytest.MonkeyPatch, months: int, year: int | None
) -> None:
    browser = TestClient(client.app)
    sign_in(browser, new_key(client.app, Role.EHR))  # type: ignore[arg-type]
    url = f"/workbench/patients/{patient_id}?months={months}" + (f"&year={year}" if year else "")
    assert browser.get(url).status_code == 200  # the patient is reassessed on the first read
    bounded = browser.get(url)
    assert bounded.status_code == 200

    def whole_history(
        session: Session, patient: Patient, year: int, tz: Any, every: Span | None = None
    ) -> PatientHistory:
        return history_of(session, patient)

    monkeypatch.setattr(care_plan, "history_shown", whole_history)
    whole = browser.get(url)
    assert whole.status_code == 200
    assert _without_form_ids(bounded.text) == _without_form_ids(whole.text)
    assert 'data-chart="bp"' in bounded.text


def _without_form_ids(page: str) -> str:
    """The page without the fresh source id each prescription form carries (a double submit is
    stored once), which differs from one render to the next by design."""
    return re.sub(r"workbench-[0-9a-f]{32}", "workbench-<id>", page)


def test_the_patient_page_reads_the_stream_of_its_window_only(client: TestClient, patient_id: int) -> None:
    config: PathwayConfig = client.app.state.pathway  # type: ignore[attr-defined]
    patient, whole = _whole(client, patient_id)
    window = Span(AS_OF - timedelta(days=30), AS_OF)
    with Session(client.app.state.engine) as session:  # type: ignore[attr-defined]
        shown = care_plan.history_shown(session, patient, 2026, config.tz, every=window)

    self_measured = [r for r in shown.readings if r.source in (ReadingSource.WEARABLE, ReadingSource.CGM)]
    assert self_measured
    assert all(window.start <= r.at <= window.end for r in self_measured)
    assert sum(1 for r in whole.readings if r.source is ReadingSource.WEARABLE) == 1_600
    assert len(self_measured) == sum(
        1
        for r in whole.readings
        if r.source in (ReadingSource.WEARABLE, ReadingSource.CGM) and window.start <= r.at <= window.end
    )
    assert _count(shown) < _count(whole) // 4


_MOMENTS = [AS_OF, _ago(hours=1), _ago(20), NEW_YEAR, _ago(75), _ago(400), _ago(600)]


@pytest.mark.parametrize("as_of", _MOMENTS, ids=[m.strftime("%Y-%m-%dT%H%M") for m in _MOMENTS])
def test_a_preview_of_the_bounded_read_is_the_assessment_of_the_whole_history(
    client: TestClient, patient_id: int, as_of: datetime
) -> None:
    response = client.post(
        f"/v1/patients/{patient_id}/assessment:preview", params={"as_of": as_of.isoformat()}
    )
    assert response.status_code == 200, response.text

    config: PathwayConfig = client.app.state.pathway  # type: ignore[attr-defined]
    patient, whole = _whole(client, patient_id)
    assert response.json() == json.loads(json.dumps(config.assess(whole, as_of).to_json()))


@pytest.mark.parametrize("as_of", _MOMENTS, ids=[m.strftime("%Y-%m-%dT%H%M") for m in _MOMENTS])
def test_a_preview_reads_what_a_reassessment_at_its_moment_reads_and_nothing_after_it(
    client: TestClient, patient_id: int, as_of: datetime
) -> None:
    config: PathwayConfig = client.app.state.pathway  # type: ignore[attr-defined]
    horizon = config.reading_horizon
    patient, whole = _whole(client, patient_id)
    with Session(client.app.state.engine) as session:  # type: ignore[attr-defined]
        rows = display_store.replay_rows(session, patient_id, as_of, horizon)
    read = history_from_rows(
        patient, rows.complications, rows.readings, rows.encounters, rows.symptoms, rows.checks
    )

    expected = recent(whole, as_of, horizon)
    after = [r for r in expected.readings if r.source is not ReadingSource.CLINIC and r.at > as_of]
    assert read == replace(expected, readings=tuple(r for r in expected.readings if r not in after))
    assert _count(read) < _count(whole) // 4
    if as_of == _ago(20):
        assert len(after) > 250  # the stream after the moment, which a reassessment then never read
        # HbA1c: none in the short window, one after the moment; the older one is read.
        assert (ReadingKind.HBA1C, _ago(100)) in {(r.kind, r.at) for r in read.readings}
    assert config.assess(read, as_of).to_json() == config.assess(whole, as_of).to_json()
