"""kill -9 the scheduler in the middle of its daily run, start it again: each task issued once.

PostgreSQL, real processes (`pathway scheduler --once`). The restarted scheduler sees that the claim
belongs to a dead process of this host and takes it over at once, instead of waiting for the lease.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, insert, select
from sqlmodel import Session, SQLModel

from pathway.clinical.clock import CLINIC_TZ
from pathway.store.db import make_engine, migrate
from pathway.store.tables import Patient, Team
from pathway.store.work_tables import CareTask, CareTaskEvent, SchedulerRun

pytestmark = [pytest.mark.faults, pytest.mark.postgres]
PATIENTS = 20_000
_TASK = {"kind": "follow_up_visit", "subject": "", "status": "open", "priority": 3, "role": "gp",
         "rule_id": "test", "rule_ids": ["test"], "pack_id": "sangao-cn", "pack_version": "2020.4",
         "tier": "yellow", "evidence": ["encounter"]}  # fmt: skip
_RUN = SQLModel.metadata.tables[SchedulerRun.__tablename__].c
_EVENT = SQLModel.metadata.tables[CareTaskEvent.__tablename__].c
_TASKS = SQLModel.metadata.tables[CareTask.__tablename__]


def _seed(url: str) -> int:
    """One team, PATIENTS patients, each with a follow-up visit due yesterday (none issued yet)."""
    engine = make_engine(url)
    due = datetime.now(CLINIC_TZ).replace(hour=9, minute=0, second=0, microsecond=0) - timedelta(days=1)
    with Session(engine) as session:
        team = Team(code="t1", name="t1", institution_level="home")
        session.add(team)
        session.flush()
        patients = SQLModel.metadata.tables[Patient.__tablename__]
        rows = [
            {"source_system": "ehr", "external_id": f"p{i}", "team_id": team.id, "sex": "male",
             "birth_date": due.date().replace(year=1960), "conditions": ["hypertension"], "smoker": False,
             "pregnant": False, "created_at": due - timedelta(days=90), "updated_at": due}
            for i in range(PATIENTS)
        ]  # fmt: skip
        ids = [row_id for (row_id,) in session.execute(insert(patients).returning(patients.c.id), rows)]
        tasks = SQLModel.metadata.tables[CareTask.__tablename__]
        session.execute(
            insert(tasks),
            [{**_TASK, "patient_id": pid, "team_id": team.id, "due_at": due, "due_date": due.date(),
              "time_limit_at": due + timedelta(days=7), "created_at": due, "updated_at": due} for pid in ids],
        )  # fmt: skip
        session.commit()
    engine.dispose()
    return len(ids)


def _scheduler(url: str, log: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PATHWAY_DATABASE_URL": url}
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "pathway", "scheduler", "--once"],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )


def test_a_scheduler_killed_mid_run_then_restarted_issues_each_task_once(
    postgres_url: str, tmp_path: Path
) -> None:
    migrate(postgres_url)
    due = _seed(postgres_url)
    engine = make_engine(postgres_url)
    log = tmp_path / "scheduler.log"
    first = _scheduler(postgres_url, log)
    deadline = time.monotonic() + 60
    killed_mid_run = False
    with Session(engine) as session:
        while first.poll() is None and time.monotonic() < deadline:
            claimed = session.execute(select(_RUN.finished_at)).all()
            session.rollback()
            if claimed and claimed[0][0] is None:  # claimed, not finished: in the middle of its run
                first.send_signal(signal.SIGKILL)
                killed_mid_run = True
                break
            time.sleep(0.01)
    first.wait(timeout=30)
    assert killed_mid_run, f"the run finished before it could be killed:\n{log.read_text()}"

    second = _scheduler(postgres_url, log)
    assert second.wait(timeout=120) == 0, log.read_text()
    with Session(engine) as session:
        issued = Counter(session.execute(select(_EVENT.task_id).where(_EVENT.action == "issued")).scalars())
        unissued = session.execute(
            select(func.count()).select_from(_TASKS).where(_TASKS.c.issued_at.is_(None))
        ).scalar_one()
        runs = session.execute(select(_RUN.finished_at)).all()
    engine.dispose()
    assert len(issued) == due  # every due task issued...
    assert set(issued.values()) == {1}  # ...exactly once
    assert unissued == 0
    assert all(finished is not None for (finished,) in runs)
    assert "took over the claim" in log.read_text()
