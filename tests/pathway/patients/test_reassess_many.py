"""A batch reassessment (the population re-tier's) stores exactly what reassessing each patient in
turn stores — assessments, outbox events, referrals, tasks and task events — on both stores, in a
handful of statements for the batch instead of several a patient."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, event, func, select
from sqlmodel import Session, SQLModel, col

from api.main import pathway_config
from pathway.cli import main
from pathway.patients import reassessment, retier_store
from pathway.patients.reassessment import PathwayConfig
from pathway.settings import Settings
from pathway.store.db import make_engine
from pathway.store.tables import AssessmentRecord, Patient
from rules.evaluation import Evaluator
from rules.registry import PackRegistry, load_pack
from tests.builders import AS_OF
from tests.conftest import database
from tests.rules.test_modified_pack import under_65_office_target_130_80, write_modified

PATIENTS = 40
NOW = AS_OF + timedelta(days=2)
_TABLES = SQLModel.metadata.tables


@pytest.fixture(scope="module")
def lowered(tmp_path_factory: pytest.TempPathFactory) -> PathwayConfig:
    """An edition with the under-65 office target lowered to 130/80: tiers, events and tasks move."""
    path = write_modified(tmp_path_factory.mktemp("lowered"), "2020.4-many", under_65_office_target_130_80)
    return pathway_config(Evaluator(PackRegistry([load_pack(path)])), Settings(database_url="sqlite://"))


@pytest.fixture(params=["sqlite", "postgresql"])
def county(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[Engine]:
    url = database(request, request.param)
    monkeypatch.setenv("PATHWAY_DATABASE_URL", url)
    assert main(["demo", "--patients", str(PATIENTS), "--seed", "11", "--as-of", AS_OF.isoformat()]) == 0
    engine = make_engine(url)
    yield engine
    engine.dispose()


def _rows(
    session: Session, table: str, *, after: int = 0, drop: tuple[str, ...] = ()
) -> list[tuple[Any, ...]]:
    """The table's rows with ids above ``after`` as comparable tuples: without ids (sequences do not
    roll back) and the columns in ``drop``, sorted."""
    columns = [c for c in _TABLES[table].c if c.name != "id" and c.name not in drop]
    found = session.execute(select(*columns).where(_TABLES[table].c.id > after)).all()
    return sorted((tuple(repr(v) for v in row) for row in found), key=repr)


def _task_events(session: Session, after: int) -> list[tuple[Any, ...]]:
    """Task events by the (patient, kind, subject) of their task, without the assessment's id."""
    task, ev = _TABLES["care_task"].c, _TABLES["care_task_event"].c
    statement = (
        select(
            task.patient_id,
            task.kind,
            task.subject,
            ev.action,
            ev.from_status,
            ev.to_status,
            ev.note,
            ev.details,
        )
        .join(_TABLES["care_task"], task.id == ev.task_id)
        .where(ev.id > after)
    )
    found = []
    for *head, details in session.execute(statement):
        found.append((*head, repr({k: v for k, v in (details or {}).items() if k != "assessment_id"})))
    return sorted(found, key=repr)


def _largest_ids(session: Session) -> dict[str, int]:
    return {
        name: int(session.execute(select(func.max(_TABLES[name].c.id))).scalar() or 0)
        for name in ("assessment", "outbox_event", "referral", "care_task_event")
    }


def _stored(session: Session, before: dict[str, int]) -> dict[str, Any]:
    return {
        "assessments": _rows(session, "assessment", after=before["assessment"]),
        "events": _rows(session, "outbox_event", after=before["outbox_event"]),
        "referrals": _rows(session, "referral", after=before["referral"], drop=("assessment_id",)),
        "tasks": _rows(session, "care_task", drop=("assessment_id",)),
        "task_events": _task_events(session, before["care_task_event"]),
        "patients": _rows(session, "patient"),
    }


def _counting(engine: Engine) -> list[str]:
    statements: list[str] = []
    event.listen(engine, "before_cursor_execute", lambda *args: statements.append(args[2]))
    return statements


def test_a_batch_stores_what_reassessing_each_in_turn_stores(county: Engine, lowered: PathwayConfig) -> None:
    statements = _counting(county)
    with Session(county) as session:
        patients = list(session.scalars(select(Patient).order_by(col(Patient.id))))
        before = _largest_ids(session)
        start = len(statements)
        for patient in patients:
            reassessment.reassess_or_defer(session, patient, lowered, NOW)
        session.flush()
        one_by_one_statements = len(statements) - start
        one_by_one = _stored(session, before)
        session.rollback()

    with Session(county) as session:
        patients = list(session.scalars(select(Patient).order_by(col(Patient.id))))
        ids = [p.id for p in patients if p.id is not None]
        newest = retier_store.newest_assessments(session, ids)
        previous = {i: (n.tier, n.referral_urgency) for i, n in newest.items()}
        start = len(statements)
        stored = reassessment.reassess_many(session, patients, lowered, NOW, previous)
        session.flush()
        batch_statements = len(statements) - start
        batch = _stored(session, before)
        session.rollback()

    assert len(stored) == PATIENTS
    assert all(record is not None for record in stored.values())
    assert len(one_by_one["assessments"]) == PATIENTS
    assert one_by_one["events"], "the lowered target moves some tiers: there are events to compare"
    assert one_by_one["task_events"], "and tasks"
    for part, rows in one_by_one.items():
        assert batch[part] == rows, part
    assert one_by_one_statements > 4 * PATIENTS  # several a patient
    assert batch_statements < PATIENTS / 2, batch_statements  # a handful for the batch


def test_a_patient_the_engine_fails_on_awaits_a_reassessment_and_the_rest_are_stored(
    county: Engine, lowered: PathwayConfig
) -> None:
    with Session(county) as session:
        patients = list(session.scalars(select(Patient).order_by(col(Patient.id))))
        failing = patients[3].id
        assert failing is not None

        histories_seen: list[Any] = []

        def fail_on_the_fourth(history: Any, now: Any) -> Any:
            histories_seen.append(history)
            if len(histories_seen) == 4:
                raise RuntimeError("the engine failed")
            return lowered.assess(history, now)

        config = replace(lowered, assess=fail_on_the_fourth)
        before = int(session.execute(select(func.count()).select_from(AssessmentRecord)).scalar_one())
        stored = reassessment.reassess_many(session, patients, config, NOW, {})
        session.flush()
        after = int(session.execute(select(func.count()).select_from(AssessmentRecord)).scalar_one())
        awaiting = session.get(Patient, failing)
        assert awaiting is not None

    assert stored[failing] is None
    assert after - before == PATIENTS - 1
    assert awaiting.reassessment_due_since == NOW
