"""``pathway packs retier``: the one-off re-tier over worker processes, and its progress line."""

from __future__ import annotations

import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

from sqlalchemy import select, update
from sqlmodel import Session, SQLModel

from pathway.cli.retier import progress_counts
from pathway.store.db import make_engine
from pathway.store.tables import AssessmentRecord, Patient
from pathway.store.work_tables import SchedulerRun

_ASSESSMENT = SQLModel.metadata.tables[AssessmentRecord.__tablename__]
_PATIENT = SQLModel.metadata.tables[Patient.__tablename__]
_RUN = SQLModel.metadata.tables[SchedulerRun.__tablename__].c


def _pathway(url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PATHWAY_DATABASE_URL": url}
    return subprocess.run(
        [sys.executable, "-m", "pathway", *args], env=env, capture_output=True, text=True, timeout=300
    )


def test_the_re_tier_command_splits_the_population_over_processes_and_runs_once(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'pathway.db'}"
    demo = _pathway(url, "demo", "--patients", "60", "--seed", "3")
    assert demo.returncode == 0, demo.stderr
    engine = make_engine(url)
    with Session(engine) as session:  # as if every assessment had been made under an older edition
        session.execute(update(_ASSESSMENT).values(pack_sha256="an-older-edition"))
        session.commit()
        before = Counter(session.execute(select(_ASSESSMENT.c.patient_id)).scalars())
        managed = set(session.execute(select(_PATIENT.c.id).where(_PATIENT.c.status == "active")).scalars())

    first = _pathway(url, "packs", "retier", "--workers", "2", "--batch", "7")
    again = _pathway(url, "packs", "retier", "--workers", "2")

    assert first.returncode == 0, first.stderr
    assert f"{len(managed)} assessed, 0 already current" in first.stdout
    assert "patients/s" in first.stderr  # the progress (not a terminal: plain lines)
    assert again.returncode == 0, again.stderr
    assert "0 assessed" in again.stdout  # each part and the whole run have finished: nothing to do
    with Session(engine) as session:
        after = Counter(session.execute(select(_ASSESSMENT.c.patient_id)).scalars())
        jobs = {str(row[0]): row[1] for row in session.execute(select(_RUN.job, _RUN.finished_at))}
    engine.dispose()
    assert after - before == Counter(dict.fromkeys(managed, 1))  # one new assessment each managed patient
    retier_jobs = sorted(j for j in jobs if j.startswith("retier "))
    assert [j.rsplit(" ", 2)[-2:] for j in retier_jobs if " part " in j] == [["part", "1/2"], ["part", "2/2"]]
    assert all(jobs[j] is not None for j in retier_jobs)
    assert len(retier_jobs) == 3  # the two shares, and the edition's whole run after them


def test_the_progress_counts_sum_the_parts_and_never_fall_below_what_was_seen() -> None:
    parts = [{"seen": 300, "total": 500, "assessed": 290}, {"seen": 200, "total": 500}, {}]

    assert progress_counts(parts) == (500, 1000)
    assert progress_counts([{"seen": 7, "total": 5}]) == (7, 7)  # the share's estimate was low
    assert progress_counts([]) == (0, 0)
