"""The population re-tier (issue #18 item 2): a new pack edition reaches every managed patient in
one claimed, resumable run — once each, whatever crashes or races — and the tasks follow."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, update
from sqlmodel import Session, col, select

from api.main import pathway_config
from pathway.clinical.clock import CLINIC_TZ
from pathway.patients import retier
from pathway.patients.reassessment import PathwayConfig
from pathway.patients.retier import RetierProgress
from pathway.runs import claims
from pathway.settings import Settings
from pathway.store.tables import AssessmentRecord, Patient
from pathway.store.work_tables import CareTask
from pathway.tasks import sync
from rules.evaluation import Evaluator
from rules.registry import LoadedPack, PackRegistry, load_pack
from scheduler import jobs
from scheduler.retier_job import retier_job, run_retier
from tests.api.conftest import SettableClock, register_patient
from tests.builders import AS_OF
from tests.rules.test_modified_pack import under_65_office_target_130_80, write_modified

LOWERED = "2020.4-target-130"  # the under-65 office target lowered to 130/80
RENAMED = "2020.4-renamed"  # the same rules under a new version: an edition that changes nobody
LEASE_PAST = timedelta(hours=1)  # later than a claim's lease (30 min) with no progress made


def _edition(directory: Path, version: str, edit: Callable[[dict[str, Any]], None]) -> PathwayConfig:
    loaded = load_pack(write_modified(directory, version, edit))
    return pathway_config(Evaluator(PackRegistry([loaded])), Settings(database_url="sqlite://"))


@pytest.fixture(scope="module")
def lowered(tmp_path_factory: pytest.TempPathFactory) -> PathwayConfig:
    return _edition(tmp_path_factory.mktemp("lowered"), LOWERED, under_65_office_target_130_80)


@pytest.fixture(scope="module")
def renamed(tmp_path_factory: pytest.TempPathFactory) -> PathwayConfig:
    return _edition(tmp_path_factory.mktemp("renamed"), RENAMED, lambda data: None)


def _visit(client: TestClient, patient_id: int, systolic: int, diastolic: int) -> None:
    reading = {"kind": "bp", "systolic": systolic, "diastolic": diastolic, "unit": "mmHg"}
    body = {"at": (AS_OF - timedelta(days=10)).isoformat(), "readings": [reading]}
    answer = client.post(f"/v1/patients/{patient_id}/encounters", json=body)
    assert answer.status_code == 201, answer.text


def _county(client: TestClient) -> tuple[list[int], list[int], int]:
    """Five patients under 65 at 135/85 (blue today, yellow under the lowered target), three at
    120/70 (blue under both) and one at 135/85 who has died; their ids."""
    changing = [register_patient(client, f"c{i}", birth_date="1970-05-01") for i in range(5)]
    steady = [register_patient(client, f"s{i}", birth_date="1970-05-01") for i in range(3)]
    deceased = register_patient(client, "d", birth_date="1970-05-01")
    for patient_id in [*changing, deceased]:
        _visit(client, patient_id, 135, 85)
    for patient_id in steady:
        _visit(client, patient_id, 120, 70)
    with Session(_engine(client)) as session:
        session.execute(update(Patient).where(col(Patient.id) == deceased).values(status="deceased"))
        session.commit()
    return changing, steady, deceased


def _engine(client: TestClient) -> Engine:
    engine: Engine = client.app.state.engine  # type: ignore[attr-defined]
    return engine


def _context(
    client: TestClient, default_pack: LoadedPack, worker: str = "w1", later: timedelta = timedelta(0)
) -> jobs.Context:
    return jobs.Context(
        engine=_engine(client),
        clock=SettableClock(AS_OF + timedelta(hours=1) + later),
        rules=default_pack.pack.policy.follow_through,
        default_zone=CLINIC_TZ,
        worker=worker,
    )


def _assessed_under(client: TestClient, version: str) -> Counter[int]:
    with Session(_engine(client)) as session:
        statement = select(AssessmentRecord.patient_id).where(col(AssessmentRecord.pack_version) == version)
        return Counter(session.exec(statement).all())


def test_a_new_edition_re_tiers_every_managed_patient_once_and_their_tasks_follow(
    client: TestClient, default_pack: LoadedPack, lowered: PathwayConfig
) -> None:
    changing, steady, deceased = _county(client)

    progress = run_retier(_context(client, default_pack), lowered, batch=2)

    assert progress is not None
    assert progress.finished
    assert (progress.seen, progress.assessed, progress.already_current) == (8, 8, 0)
    assert progress.tier_changes == {"blue→yellow": 5}
    assert _assessed_under(client, LOWERED) == Counter(dict.fromkeys([*changing, *steady], 1))
    with Session(_engine(client)) as session:
        open_tasks = session.exec(select(CareTask).where(col(CareTask.status) == "open")).all()
        run = claims.runs(session, "retier ")[0]
    yellow = {t.patient_id for t in open_tasks if t.tier == "yellow" and t.pack_version == LOWERED}
    assert yellow == set(changing)  # the tasks follow the new tier, the deceased patient has none
    assert run.job == retier_job(lowered)
    assert run.finished_at is not None
    assert RetierProgress.of(run.details) == progress
    with Session(_engine(client)) as session:
        shown = retier.edition_status(session, lowered)  # the dashboard's card
    assert shown is not None
    assert (shown.seen, shown.total, shown.assessed, shown.finished) == (8, 8, 8, True)
    assert shown.tier_changes == {"blue→yellow": 5}


def test_a_finished_edition_is_not_re_tiered_again(
    client: TestClient, default_pack: LoadedPack, lowered: PathwayConfig
) -> None:
    _county(client)
    assert run_retier(_context(client, default_pack), lowered) is not None

    assert run_retier(_context(client, default_pack, worker="w2"), lowered) is None
    assert set(_assessed_under(client, LOWERED).values()) == {1}


def test_an_edition_that_changes_nobody_assesses_everyone_and_moves_no_tier(
    client: TestClient, default_pack: LoadedPack, renamed: PathwayConfig
) -> None:
    changing, steady, _ = _county(client)

    progress = run_retier(_context(client, default_pack), renamed, batch=3)

    assert progress is not None
    assert progress.tier_changes == {}
    assert progress.assessed == len(changing) + len(steady)


def test_a_run_that_dies_after_a_batch_goes_on_from_its_cursor(
    client: TestClient, default_pack: LoadedPack, lowered: PathwayConfig
) -> None:
    _county(client)

    def die(progress: RetierProgress) -> None:
        raise SystemExit("killed")  # after the first batch committed, as a kill -9 would leave it

    with pytest.raises(SystemExit):
        run_retier(_context(client, default_pack), lowered, batch=3, on_batch=die)
    assert sum(_assessed_under(client, LOWERED).values()) == 3
    with Session(_engine(client)) as session:
        left = claims.runs(session, "retier ")[0]
    assert left.finished_at is None
    assert left.details["cursor"] > 0

    # Another scheduler takes the run over once its lease has run out, and goes on from the cursor.
    progress = run_retier(_context(client, default_pack, "w2", later=LEASE_PAST), lowered, batch=3)

    assert progress is not None
    assert progress.finished
    assert (progress.seen, progress.assessed) == (8, 8)  # counted across both processes
    assert set(_assessed_under(client, LOWERED).values()) == {1}


def test_a_batch_that_fails_half_way_is_redone_whole_and_no_patient_twice(
    client: TestClient, default_pack: LoadedPack, lowered: PathwayConfig, monkeypatch: pytest.MonkeyPatch
) -> None:
    _county(client)
    real = sync.sync_from_assessments
    calls = 0

    def fail_in_the_second_batch(*args: Any) -> Any:  # its assessments stored, its tasks not yet
        nonlocal calls
        calls += 1
        if calls == 2:
            raise RuntimeError("the database went away")
        return real(*args)

    monkeypatch.setattr(sync, "sync_from_assessments", fail_in_the_second_batch)
    with pytest.raises(RuntimeError):
        run_retier(_context(client, default_pack), lowered, batch=3)
    assert sum(_assessed_under(client, LOWERED).values()) == 3  # the second batch rolled back
    with Session(_engine(client)) as session:
        assert "the database went away" in (claims.runs(session, "retier ")[0].error or "")

    progress = run_retier(_context(client, default_pack, "w2", later=LEASE_PAST), lowered, batch=3)

    assert progress is not None
    assert progress.finished
    assert set(_assessed_under(client, LOWERED).values()) == {1}
    assert len(_assessed_under(client, LOWERED)) == 8


def test_schedulers_and_processes_racing_assess_each_patient_once(
    client: TestClient, default_pack: LoadedPack, lowered: PathwayConfig
) -> None:
    changing, steady, _ = _county(client)
    results: list[RetierProgress | None] = []
    errors: list[BaseException] = []

    def run(worker: str, part: int, parts: int) -> None:
        try:
            results.append(
                run_retier(_context(client, default_pack, worker), lowered, batch=2, part=part, parts=parts)
            )
        except BaseException as error:
            errors.append(error)

    # Two schedulers on the whole run, and the two parts of `pathway packs retier --workers 2`.
    plan = [("a", 0, 1), ("b", 0, 1), ("c", 0, 2), ("d", 1, 2)]
    threads = [threading.Thread(target=run, args=args) for args in plan]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    assert sum(1 for r in results if r is None) >= 1  # the whole run was claimed by one of the two
    assert _assessed_under(client, LOWERED) == Counter(dict.fromkeys([*changing, *steady], 1))
