"""kill -9 ``pathway packs retier`` in the middle of its run, start it again: every managed patient
is assessed under the pack in force exactly once, and the restart goes on from the cursor.

PostgreSQL, real processes. The re-tier's worker process is killed with its parent (the process
group): the restarted command sees that the claim belongs to a dead process of this host and takes
it over at once.
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
from sqlalchemy import insert, select
from sqlmodel import Session, SQLModel

from pathway.clinical.clock import CLINIC_TZ
from pathway.store.db import make_engine, migrate
from pathway.store.tables import AssessmentRecord, Patient
from pathway.store.work_tables import SchedulerRun

pytestmark = [pytest.mark.faults, pytest.mark.postgres]
PATIENTS = 3_000
BATCH = 100
_RUN = SQLModel.metadata.tables[SchedulerRun.__tablename__].c
_ASSESSMENT = SQLModel.metadata.tables[AssessmentRecord.__tablename__].c


def _seed(url: str) -> None:
    """PATIENTS hypertensive patients registered 90 days ago, never assessed (a pack just arrived)."""
    engine = make_engine(url)
    at = datetime.now(CLINIC_TZ) - timedelta(days=90)
    with Session(engine) as session:
        patients = SQLModel.metadata.tables[Patient.__tablename__]
        born = at.date().replace(year=1958)
        rows = [
            {"source_system": "ehr", "external_id": f"p{i}", "sex": "female", "birth_date": born,
             "conditions": ["hypertension"], "smoker": False, "pregnant": False,
             "created_at": at, "updated_at": at}
            for i in range(PATIENTS)
        ]  # fmt: skip
        session.execute(insert(patients), rows)
        session.commit()
    engine.dispose()


def _retier(url: str, log: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PATHWAY_DATABASE_URL": url}
    command = [sys.executable, "-m", "pathway", "packs", "retier", "--workers", "1", "--batch", str(BATCH)]
    with log.open("ab") as out:
        return subprocess.Popen(
            command, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )


def test_a_re_tier_killed_mid_run_then_restarted_assesses_each_patient_once(
    postgres_url: str, tmp_path: Path
) -> None:
    migrate(postgres_url)
    _seed(postgres_url)
    engine = make_engine(postgres_url)
    log = tmp_path / "retier.log"
    first = _retier(postgres_url, log)
    deadline = time.monotonic() + 120
    seen_at_kill = 0
    with Session(engine) as session:
        while first.poll() is None and time.monotonic() < deadline:
            found = (
                session.execute(select(_RUN.details).where(_RUN.job.startswith("retier "))).scalars().all()
            )
            session.rollback()
            if found and 3 * BATCH <= int(found[0].get("seen", 0)) < PATIENTS:
                os.killpg(first.pid, signal.SIGKILL)  # the command and its worker process
                seen_at_kill = int(found[0]["seen"])
                break
            time.sleep(0.02)
    first.wait(timeout=30)
    assert seen_at_kill, f"the run finished before it could be killed:\n{log.read_text()}"

    second = _retier(postgres_url, log)
    assert second.wait(timeout=300) == 0, log.read_text()
    with Session(engine) as session:
        assessed = Counter(session.execute(select(_ASSESSMENT.patient_id)).scalars())
        runs = session.execute(select(_RUN.job, _RUN.finished_at, _RUN.details)).all()
    engine.dispose()
    assert len(assessed) == PATIENTS  # every patient assessed...
    assert set(assessed.values()) == {1}  # ...exactly once
    assert all(finished is not None for _job, finished, _details in runs)
    (details,) = [d for _job, _finished, d in runs]  # one worker: the share is the whole run
    assert details["assessed"] == PATIENTS  # counted across the killed run and its restart
    assert details["seen"] == PATIENTS
