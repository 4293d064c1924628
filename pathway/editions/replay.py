"""Every stored patient evaluated under two editions of a rule pack at one moment, compared and
counted (:mod:`pathway.editions.impact`). Nothing is stored: the run only reads.

The patients are read in keyset pages of ids (:func:`batches`); each batch's histories in a
handful of statements (:func:`pathway.patients.history.batch_rows`), each history read as a
replay at ``as_of`` reads it (:func:`pathway.patients.reassessment.preview`). :func:`measure_impact`
runs in the caller's process and session; :func:`measure_impact_in_workers` spreads the batches over
worker processes, each of which builds its own editions (its own rule engine: a durable_rules
engine must not cross a fork, ENGINE-NOTES §1) and its own database engine after it starts.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy import Engine
from sqlmodel import Session

from pathway.clinical.assessment import Assessment, PackRef
from pathway.clinical.clock import clinic_date
from pathway.clinical.history import PatientHistory
from pathway.clinical.horizon import ReadingHorizon
from pathway.editions import impact_store
from pathway.editions.impact import NO_TEAM, ImpactReport, outcome_of
from pathway.patients.history import Window, batch_rows, history_from_rows
from pathway.store.db import make_engine

BATCH = 500  # patients a batch: one set of statements, one unit of work for a worker


@dataclass(frozen=True)
class Edition:
    """One edition of the pack as the run evaluates with it."""

    pack: PackRef
    assess: Callable[[PatientHistory, datetime], Assessment]
    horizon: ReadingHorizon
    reads_prescriptions: bool  # the pack has a medication table (PATHWAY.md §7)


@dataclass(frozen=True)
class Editions:
    """The edition in force (or the one asked for) and the candidate, at one clinic time zone."""

    baseline: Edition
    candidate: Edition
    tz: ZoneInfo


# Builds the editions in the process that calls it; for workers, a picklable callable (a module-level
# function or a functools.partial of one) of the composition root.
EditionsFactory = Callable[[], Editions]
Progress = Callable[[int, int], None]  # (patients done, patients in all)


def window_of(editions: Editions, as_of: datetime) -> Window:
    """The readings outside a visit both editions read at ``as_of``: the wider of their horizons."""
    every = max(editions.baseline.horizon.every, editions.candidate.horizon.every)
    peaks = max(editions.baseline.horizon.peaks, editions.candidate.horizon.peaks)
    return Window(since=as_of - every, peaks_since=as_of - peaks, until=as_of)


def batches(session: Session, size: int = BATCH) -> Iterator[tuple[int, int, int]]:
    """The store's patients as batches (first id, last id, how many), by keyset pages of ids."""
    after = 0
    while ids := impact_store.patient_ids_after(session, after, size):
        yield ids[0], ids[-1], len(ids)
        after = ids[-1]


def impact_of_batch(
    session: Session, editions: Editions, first: int, last: int, as_of: datetime, teams: dict[int, str]
) -> ImpactReport:
    """The patients with ids in ``[first, last]`` under both editions, counted."""
    base, candidate = editions.baseline, editions.candidate
    report = ImpactReport(baseline=base.pack, candidate=candidate.pack, as_of=as_of)
    today = clinic_date(as_of, editions.tz)
    patients = [p for p in impact_store.patients_between(session, first, last) if p.id is not None]
    report.not_yet_born = sum(1 for p in patients if today < p.birth_date)
    patients = [p for p in patients if p.birth_date <= today]
    medication = base.reads_prescriptions or candidate.reads_prescriptions
    with_prescriptions = [p.id for p in patients if p.id is not None and medication and p.has_prescriptions]
    ids = [p.id for p in patients if p.id is not None]
    rows = batch_rows(session, ids, window_of(editions, as_of), with_prescriptions)
    for patient in patients:
        assert patient.id is not None
        mine = rows[patient.id]
        parts = (mine.complications, mine.readings, mine.encounters, mine.symptoms, mine.checks)
        with_medication = history_from_rows(patient, *parts, mine.prescriptions)
        without = with_medication if not mine.prescriptions else history_from_rows(patient, *parts)
        before = base.assess(with_medication if base.reads_prescriptions else without, as_of)
        after = candidate.assess(with_medication if candidate.reads_prescriptions else without, as_of)
        team = teams.get(patient.team_id, NO_TEAM) if patient.team_id is not None else NO_TEAM
        report.count(patient.id, patient.external_id, team, outcome_of(before), outcome_of(after))
    return report


def measure_impact(
    session: Session,
    editions: Editions,
    as_of: datetime,
    *,
    batch: int = BATCH,
    progress: Progress | None = None,
) -> ImpactReport:
    """Every stored patient under both editions at ``as_of``, in this process (nothing is stored)."""
    report = ImpactReport(baseline=editions.baseline.pack, candidate=editions.candidate.pack, as_of=as_of)
    total = impact_store.patient_count(session)
    teams = impact_store.team_codes(session)
    done = 0
    for first, last, count in batches(session, batch):
        report.merge(impact_of_batch(session, editions, first, last, as_of, teams))
        done += count
        if progress is not None:
            progress(done, total)
    report.changes.sort(key=lambda change: change.patient_id)
    return report


def measure_impact_in_workers(
    database_url: str,
    factory: EditionsFactory,
    as_of: datetime,
    workers: int,
    *,
    batch: int = BATCH,
    progress: Progress | None = None,
) -> ImpactReport:
    """:func:`measure_impact` with the batches spread over ``workers`` processes (started fresh, not
    forked: each builds its editions and database engine itself); the same report."""
    engine = make_engine(database_url)
    try:
        with Session(engine) as session:
            editions = factory()
            report = ImpactReport(editions.baseline.pack, editions.candidate.pack, as_of)
            total = impact_store.patient_count(session)
            teams = impact_store.team_codes(session)
            context = multiprocessing.get_context("spawn")
            with ProcessPoolExecutor(
                workers, mp_context=context, initializer=_start_worker, initargs=(database_url, factory)
            ) as pool:
                pending: dict[Future[ImpactReport], int] = {}
                done = 0
                for first, last, count in batches(session, batch):
                    pending[pool.submit(_worker_batch, first, last, as_of, teams)] = count
                    if len(pending) >= 2 * workers:  # a bounded queue: ids are read as work is done
                        done += _collect(report, pending, progress, done, total)
                while pending:
                    done += _collect(report, pending, progress, done, total)
            session.rollback()
    finally:
        engine.dispose()
    report.changes.sort(key=lambda change: change.patient_id)
    return report


def _collect(
    report: ImpactReport,
    pending: dict[Future[ImpactReport], int],
    progress: Progress | None,
    done: int,
    total: int,
) -> int:
    finished, _ = wait(pending, return_when=FIRST_COMPLETED)
    counted = 0
    for future in finished:
        report.merge(future.result())
        counted += pending.pop(future)
        if progress is not None:
            progress(done + counted, total)
    return counted


# A worker process's own engines, built by _start_worker when the process starts.
_worker: dict[str, tuple[Engine, Editions]] = {}


def _start_worker(database_url: str, factory: EditionsFactory) -> None:
    _worker["state"] = (make_engine(database_url, pool_size=1), factory())


def _worker_batch(first: int, last: int, as_of: datetime, teams: dict[int, str]) -> ImpactReport:
    engine, editions = _worker["state"]
    with Session(engine) as session:
        try:
            return impact_of_batch(session, editions, first, last, as_of, teams)
        finally:
            session.rollback()
