"""Two real `pathway scheduler --once` processes racing on one PostgreSQL database: each task is
issued exactly once, each missed business date is run by exactly one of them."""

from __future__ import annotations

import os
import subprocess
import sys
from collections import Counter
from datetime import date, datetime, timedelta

import pytest
from sqlalchemy import func, insert
from sqlmodel import Session, col, select

from pathway.clinical.clock import CLINIC_TZ
from pathway.store.db import make_engine, migrate
from pathway.store.tables import Patient
from pathway.store.work_tables import CareTask, CareTaskEvent, PatientFlag, SchedulerRun
from scheduler.jobs import DAILY_AT, daily_job
from tests.scheduler.conftest import DAY, add_team, local

PATIENTS = 400
KINDS = ("follow_up_visit", "data_gap", "lipid_recheck", "annual_check")


def _latest_business_date() -> date:
    now = datetime.now(CLINIC_TZ)
    return now.date() if now.time() >= DAILY_AT else now.date() - DAY


@pytest.mark.postgres
def test_two_scheduler_processes_issue_every_task_exactly_once(postgres_url: str) -> None:
    migrate(postgres_url)
    engine = make_engine(postgres_url)
    latest = _latest_business_date()
    missed = [latest - n * DAY for n in (3, 2, 1, 0)]
    registered = local(latest - 400 * DAY)
    with Session(engine) as session:
        team = add_team(session)
        session.execute(
            insert(Patient),
            [
                {
                    "source_system": "ehr",
                    "external_id": f"p{n}",
                    "team_id": team,
                    "sex": "female",
                    "birth_date": date(1955, 5, 5),
                    "conditions": ["diabetes"],
                    "created_at": registered,
                    "updated_at": registered,
                }
                for n in range(PATIENTS)
            ],
        )
        patient_ids = [i for i in session.exec(select(Patient.id)) if i is not None]
        rows = []
        for patient_id in patient_ids:
            for kind, day in zip(KINDS, missed, strict=True):
                rows.append(_task(patient_id, team, kind, local(day, 10), tier="red"))
            rows.append(_task(patient_id, team, "complication_screening", local(latest + 2 * DAY, 10)))
        session.execute(insert(CareTask), rows)
        last_run = latest - 4 * DAY  # the machine was last up four business days ago
        session.add(
            SchedulerRun(
                job=daily_job("Asia/Shanghai"),
                business_date=last_run,
                claimed_by="before",
                started_at=local(last_run, 6),
                finished_at=local(last_run, 6, 1),
            )
        )
        session.commit()

    env = {**os.environ, "PATHWAY_DATABASE_URL": postgres_url}
    command = [sys.executable, "-m", "pathway", "scheduler", "--once"]
    processes = [
        subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    outputs = [p.communicate(timeout=120) for p in processes]
    for process, (out, err) in zip(processes, outputs, strict=True):
        assert process.returncode == 0, out + err
        assert "SCHEDULER RUN FAILED" not in err

    ran = [
        d for out, _ in outputs for line in out.splitlines() for d in line.split("\t")[1].split() if d != "-"
    ]
    assert sorted(ran) == [d.isoformat() for d in missed]  # each missed date run by exactly one
    with Session(engine) as session:
        issued = Counter(
            session.exec(select(CareTaskEvent.task_id).where(col(CareTaskEvent.action) == "issued")).all()
        )
        due = session.exec(
            select(func.count()).select_from(CareTask).where(col(CareTask.due_at) < local(latest + DAY, 0))
        ).one()
        assert len(issued) == due == PATIENTS * len(KINDS)
        assert set(issued.values()) == {1}
        escalated = Counter(
            session.exec(select(CareTaskEvent.task_id).where(col(CareTaskEvent.action) == "escalated")).all()
        )
        assert len(escalated) == PATIENTS
        assert set(escalated.values()) == {1}
        flags = session.exec(select(PatientFlag.flag)).all()
        assert Counter(flags) == {"missed_3m": PATIENTS, "lost_to_follow_up": PATIENTS}
        runs = session.exec(
            select(SchedulerRun).where(col(SchedulerRun.job) == daily_job("Asia/Shanghai"))
        ).all()
        assert sorted(r.business_date for r in runs) == [last_run, *missed]
        assert all(r.finished_at is not None and r.error is None for r in runs)
    engine.dispose()


def _task(
    patient_id: int, team_id: int, kind: str, due_at: datetime, tier: str = "yellow"
) -> dict[str, object]:
    return {
        "patient_id": patient_id,
        "team_id": team_id,
        "kind": kind,
        "subject": "",
        "status": "open",
        "due_at": due_at,
        "due_date": due_at.astimezone(CLINIC_TZ).date(),
        "time_limit_at": due_at + timedelta(hours=24),
        "priority": 3,
        "role": "gp",
        "rule_id": "test",
        "rule_ids": ["test"],
        "pack_id": "sangao-cn",
        "pack_version": "2020.4",
        "tier": tier,
        "evidence": ["encounter"],
        "created_at": due_at - 30 * DAY,
        "updated_at": due_at - 30 * DAY,
    }
