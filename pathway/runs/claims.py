"""Claims on the scheduler's runs: one ``scheduler_run`` row per (job, business date).

Part of the repository layer: functions take a Session and never commit. A run is claimed by
``INSERT … ON CONFLICT DO NOTHING RETURNING`` (only the claimer proceeds); an unfinished claim whose
lease ran out, or whose claimant is known to be dead, is taken over by a compare-and-set UPDATE.
The scheduler jobs (:mod:`scheduler.jobs`) claim, finish and fail runs through these functions.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlmodel import Session, SQLModel

from pathway.store.sql import dialect_insert
from pathway.store.work_tables import SchedulerRun

_run_table = SQLModel.metadata.tables[SchedulerRun.__tablename__]
_run = _run_table.c


def claim_run(
    session: Session,
    job: str,
    business_date: date,
    claimed_by: str,
    now: datetime,
    team_id: int | None = None,
) -> int | None:
    """Insert the claim of (job, business_date); its id, or None when someone else holds it."""
    statement = (
        dialect_insert(session)(_run_table)
        .values(
            job=job,
            business_date=business_date,
            team_id=team_id,
            claimed_by=claimed_by,
            started_at=now,
            details={},
        )
        .on_conflict_do_nothing()
        .returning(_run.id)
    )
    row = session.execute(statement).first()
    return int(row[0]) if row is not None else None


def reclaim_stale_run(
    session: Session, job: str, business_date: date, claimed_by: str, now: datetime, started_before: datetime
) -> int | None:
    """Take over an unfinished claim whose lease ran out (compare-and-set); its id, or None."""
    return _take_over(session, job, business_date, claimed_by, now, _run.started_at < started_before)


def unfinished_claimant(session: Session, job: str, business_date: date) -> str | None:
    """Who holds the unfinished claim of (job, business_date), if anyone."""
    statement = select(_run.claimed_by).where(
        _run.job == job, _run.business_date == business_date, _run.finished_at.is_(None)
    )
    row = session.execute(statement).first()
    return str(row[0]) if row is not None else None


def take_over_run(
    session: Session, job: str, business_date: date, dead_claimant: str, claimed_by: str, now: datetime
) -> int | None:
    """Take over the unfinished claim of a process known to be dead (compare-and-set on its name)."""
    return _take_over(session, job, business_date, claimed_by, now, _run.claimed_by == dead_claimant)


def _take_over(
    session: Session, job: str, business_date: date, claimed_by: str, now: datetime, condition: Any
) -> int | None:
    statement = (
        update(_run_table)
        .where(_run.job == job, _run.business_date == business_date, _run.finished_at.is_(None), condition)
        .values(claimed_by=claimed_by, started_at=now, error=None)
        .returning(_run.id)
    )
    row = session.execute(statement).first()
    return int(row[0]) if row is not None else None


def finish_run(session: Session, run_id: int, now: datetime, details: dict[str, Any]) -> None:
    session.execute(update(_run_table).where(_run.id == run_id).values(finished_at=now, details=details))


def fail_run(session: Session, run_id: int, error: str) -> None:
    session.execute(update(_run_table).where(_run.id == run_id).values(error=error[:4000]))


def last_finished_date(session: Session, job: str) -> date | None:
    statement = select(func.max(_run.business_date)).where(_run.job == job, _run.finished_at.is_not(None))
    found: date | None = session.execute(statement).scalar()
    return found


def unfinished_dates(session: Session, job: str) -> list[date]:
    """Business dates of ``job`` claimed but never finished (failed, crashed or still running)."""
    statement = select(_run.business_date).where(_run.job == job, _run.finished_at.is_(None))
    return sorted(d for (d,) in session.execute(statement))


def runs(session: Session, job_prefix: str = "") -> Sequence[SchedulerRun]:
    statement = select(SchedulerRun).where(_run.job.startswith(job_prefix))
    return session.scalars(statement.order_by(_run.business_date, _run.job)).all()


def record_progress(session: Session, run_id: int, now: datetime, details: dict[str, Any]) -> None:
    """Keep a long run's progress on its claim, and renew its lease (``started_at``: a run is taken
    over only when it has made no progress for the lease)."""
    session.execute(update(_run_table).where(_run.id == run_id).values(started_at=now, details=details))


def run_details(session: Session, run_id: int) -> dict[str, Any]:
    found = session.execute(select(_run.details).where(_run.id == run_id)).scalar()
    return dict(found or {})
