"""`pathway demo`: a small synthetic county loads through the service layer, shows every tier, issues
the day's tasks, prints keys and URLs that work, and loading it again stores nothing new."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path

import pytest
import yaml
from fastapi.testclient import TestClient
from pydantic import ValidationError
from sqlalchemy import func, select
from sqlmodel import Session, SQLModel

from api.main import create_app
from pathway.cli import main
from pathway.clinical.clock import CLINIC_TZ, FixedClock
from pathway.demo.county import county
from pathway.demo.patient_plan import demo_phone, external_id
from pathway.demo.spec import COUNTY_FILE, load_county
from pathway.patients import patient_store
from pathway.settings import Settings
from pathway.store.db import make_engine
from pathway.store.tables import Patient
from pathway.store.work_tables import CareTask, SchedulerRun
from tests.builders import AS_OF

PATIENTS = 60
ARGS = ["demo", "--patients", str(PATIENTS), "--seed", "7", "--as-of", AS_OF.isoformat()]
CLINICAL_TABLES = (
    "patient",
    "patient_complication",
    "encounter",
    "reading",
    "symptom_report",
    "assessment",
    "referral",
    "care_task",
    "care_task_event",
    "patient_flag",
    "scheduler_run",
)


def _counts(url: str) -> dict[str, int]:
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            tables = SQLModel.metadata.tables
            return {
                name: int(connection.execute(select(func.count()).select_from(tables[name])).scalar_one())
                for name in CLINICAL_TABLES
            }
    finally:
        engine.dispose()


def test_a_small_county_loads_shows_every_tier_and_reloads_as_a_no_op(
    sqlite_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("PATHWAY_DATABASE_URL", sqlite_url)
    assert main(ARGS) == 0
    first = capsys.readouterr().out
    assert f"{PATIENTS} patients ({PATIENTS} new)" in first
    assert "0 rejected" in first

    engine = make_engine(sqlite_url)
    with Session(engine) as session:
        patients = session.scalars(select(Patient)).all()
        assert len(patients) == PATIENTS
        assert len({p.team_id for p in patients}) >= 3
        tiers = set()
        for patient in patients:
            assert patient.id is not None
            record = patient_store.latest_assessment(session, patient.id)
            assert record is not None
            tiers.add(record.tier)
        assert tiers == {"red", "yellow", "blue"}
        tasks = session.scalars(select(CareTask)).all()
        assert any(t.issued_at is not None for t in tasks)  # the daily run issued the day's list
        assert any(t.overdue_at is not None for t in tasks)  # the tasks of patients who missed a visit
        run = session.scalars(select(SchedulerRun)).one()
        assert run.finished_at is not None
        assert run.business_date == AS_OF.date()
    engine.dispose()
    before = _counts(sqlite_url)

    assert main(ARGS) == 0
    second = capsys.readouterr().out
    assert f"{PATIENTS} patients (0 new)" in second
    assert "0 new visits, 0 new readings" in second
    assert "already done" in second  # the day's run was claimed by the first load
    assert _counts(sqlite_url) == before


def test_the_printed_key_opens_the_printed_daily_list(
    sqlite_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("PATHWAY_DATABASE_URL", sqlite_url)
    assert main([*ARGS[:2], "20", *ARGS[3:]]) == 0
    out = capsys.readouterr().out
    key = re.search(r"team jimo-tongji +(pw_\S+)", out)
    url = re.search(r"daily list  http://127\.0\.0\.1:8000(/v1/teams/\d+/tasks\?date=\S+)", out)
    red = re.search(r"a red patient  http://127\.0\.0\.1:8000(/v1/patients/\d+)", out)
    assert key
    assert url
    assert red
    app = create_app(Settings(database_url=sqlite_url), clock=FixedClock(AS_OF))
    with TestClient(app, headers={"Authorization": f"Bearer {key.group(1)}"}) as client:
        answer = client.get(url.group(1))
        assert answer.status_code == 200, answer.text
        assert answer.json()["total"] > 0
    ehr = re.search(r"ehr \(all patients\) +(pw_\S+)", out)
    assert ehr
    with TestClient(app, headers={"Authorization": f"Bearer {ehr.group(1)}"}) as client:
        answer = client.get(red.group(1))
        assert answer.status_code == 200, answer.text
        assert answer.json()["assessment"]["tier"] == "red"
    app.state.engine.dispose()


def test_a_patient_is_the_same_whatever_the_size_of_the_county() -> None:
    spec = load_county()
    small = list(county(spec, 3, 7, AS_OF, CLINIC_TZ))
    large = list(county(spec, 5, 7, AS_OF, CLINIC_TZ))
    assert small == large[:3]
    assert [p.patient.external_id for p in large] == [external_id(7, i) for i in range(5)]
    other_seed = next(county(spec, 1, 8, AS_OF, CLINIC_TZ))
    assert other_seed.patient.external_id != small[0].patient.external_id


def test_demo_patients_have_phones_to_search_by() -> None:
    plans = list(county(load_county(), 20, 7, AS_OF, CLINIC_TZ))
    phones = [p.patient.phone for p in plans]
    assert all(phone is not None and re.fullmatch(r"139-\d{4}-\d{4}", phone) for phone in phones)
    assert len(set(phones)) == len(phones)
    assert demo_phone(plans[0].patient.external_id) == phones[0]  # the same patient, the same phone


def test_the_first_patients_have_every_special_history_and_nothing_is_in_the_future() -> None:
    spec = load_county()
    patients = list(county(spec, len(spec.scenarios), 1, AS_OF, CLINIC_TZ))
    assert [p.scenario for p in patients] == [s.kind for s in spec.scenarios]
    for p in patients:
        times = [e.at for e in p.encounters] + [r.measured_at for _, batch in p.readings for r in batch]
        assert max(times) <= AS_OF
        assert min(times) >= AS_OF - timedelta(days=spec.visits.history_days + 1)
        assert p.assessed_at[-1] == AS_OF


def test_the_county_file_rejects_unknown_keys(tmp_path: Path) -> None:
    data = yaml.safe_load(COUNTY_FILE.read_text(encoding="utf-8"))
    data["visits"]["interval_weeks"] = [11, 15]
    broken = tmp_path / "county.yaml"
    broken.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    with pytest.raises(ValidationError, match="interval_weeks"):
        load_county(broken)


def test_if_empty_loads_the_county_only_into_a_store_without_patients(
    sqlite_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("PATHWAY_DATABASE_URL", sqlite_url)
    assert main([*ARGS[:2], "12", *ARGS[3:], "--if-empty"]) == 0
    loaded = _counts(sqlite_url)["patient"]
    assert loaded == 12
    capsys.readouterr()
    assert main([*ARGS[:2], "30", *ARGS[3:], "--if-empty"]) == 0  # `make run` the second time
    assert "nothing loaded" in capsys.readouterr().out
    assert _counts(sqlite_url)["patient"] == loaded
