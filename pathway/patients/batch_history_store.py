"""SQL of a batch of patients' stored histories, in a handful of statements per batch instead of
one (or two) per patient: as a reassessment at a moment reads each (the population re-tier,
:mod:`pathway.patients.retier`), or as a replay of a past moment reads each (the impact analysis,
:mod:`pathway.editions.replay`; :func:`pathway.patients.display_store.replay_rows`, one patient).

Part of the repository layer: functions take a Session, only read and never commit.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, func, or_
from sqlalchemy import select as select_columns
from sqlmodel import Session, SQLModel

from pathway.clinical.vocabulary import GLUCOSE_KINDS, ReadingSource
from pathway.store.rows import IN_FORCE, PRESCRIPTION_COLUMNS, READING_COLUMNS, ClinicalRows
from pathway.store.sql import among
from pathway.store.tables import (
    CareCheckRecord,
    Encounter,
    Patient,
    PatientComplication,
    PrescriptionRecord,
    Reading,
    SymptomReport,
)

_TABLES = SQLModel.metadata.tables
_reading_table = _TABLES[Reading.__tablename__]
_reading = _reading_table.c
_encounter = _TABLES[Encounter.__tablename__].c
_symptom = _TABLES[SymptomReport.__tablename__].c
_complication = _TABLES[PatientComplication.__tablename__].c
_check = _TABLES[CareCheckRecord.__tablename__].c
_prescription = _TABLES[PrescriptionRecord.__tablename__].c
_patient = _TABLES[Patient.__tablename__].c
_CLINIC = ReadingSource.CLINIC.value
_OUTSIDE_A_VISIT = and_(_reading.encounter_id.is_(None), _reading.source != _CLINIC)
_PEAK_KINDS = sorted(kind.value for kind in GLUCOSE_KINDS)
_PRESCRIPTION_COLUMNS = (
    _prescription.patient_id,
    *PRESCRIPTION_COLUMNS,
)  # the patient, then a PrescriptionRow


@dataclass(frozen=True)
class Window:
    """What of the readings outside a visit a read at ``until`` reads: every one from ``since``, and
    before it the latest of each kind and, from ``peaks_since``, the glucose peaks
    (:func:`pathway.clinical.horizon.recent`). A replay of a past moment reads nothing after
    ``until``, and the prescriptions as they were then; a reassessment (``until`` None) reads the
    stream to its end (after now only a clock's skew puts readings) and the prescriptions in force."""

    since: datetime
    peaks_since: datetime
    until: datetime | None


def history_rows(
    session: Session, patient_ids: Sequence[int], window: Window, with_prescriptions: Sequence[int] = ()
) -> dict[int, ClinicalRows]:
    """Per patient of the batch, the rows :func:`pathway.patients.history.history_from_rows` takes:
    every visit and clinic reading; of the others, those in ``[since, until]``, and before ``since``
    the latest of each kind with none since and the glucose peaks from ``peaks_since``; every
    encounter (with its medication answers), symptom, check and complication; and for the patients of
    ``with_prescriptions`` the prescription versions in force at ``until`` (now, if None). Seven
    statements."""
    ids = list(patient_ids)
    rows = {patient_id: ClinicalRows() for patient_id in ids}
    if not ids:
        return rows
    mine = among(session, _reading.patient_id, ids)
    recent = select_columns(_reading.patient_id, _reading.id, *READING_COLUMNS).where(
        mine,
        IN_FORCE,
        or_(
            _reading.encounter_id.is_not(None),
            _reading.source == _CLINIC,
            _reading.measured_at >= window.since
            if window.until is None
            else _reading.measured_at.between(window.since, window.until),
        ),
    )
    readings: dict[int, dict[int, tuple[Any, ...]]] = {patient_id: {} for patient_id in ids}
    covered: set[tuple[int, str]] = set()
    for patient_id, reading_id, *rest in session.execute(recent):
        readings[patient_id][reading_id] = tuple(rest)
        encounter_id, kind, source, at = rest[:4]
        if encounter_id is None and source != _CLINIC and at >= window.since:
            covered.add((patient_id, kind))
    for patient_id, reading_id, *rest in session.execute(_older_statement(session, ids, window)):
        _encounter_id, kind, _source, at, *_values = rest
        if (patient_id, kind) not in covered or kind in _PEAK_KINDS and at >= window.peaks_since:
            readings[patient_id][reading_id] = tuple(rest)
    for patient_id, found in readings.items():
        rows[patient_id].readings = sorted(found.values(), key=_time_and_kind)
    _add_the_rest(session, ids, rows)
    if with_prescriptions:
        in_force = (
            [_prescription.superseded_at.is_(None)]
            if window.until is None
            else [
                _prescription.recorded_at <= window.until,
                or_(_prescription.superseded_at.is_(None), _prescription.superseded_at > window.until),
            ]
        )
        prescriptions = (
            select_columns(*_PRESCRIPTION_COLUMNS)
            .where(
                among(session, _prescription.patient_id, with_prescriptions),
                *in_force,
                _prescription.retracted_at.is_(None),
            )
            .order_by(_prescription.started_on, _prescription.id)
        )
        for patient_id, *rest in session.execute(prescriptions):
            rows[patient_id].prescriptions.append(tuple(rest))
    return rows


def _older_statement(session: Session, ids: list[int], window: Window) -> Any:
    """Readings outside a visit before ``since``: the latest of each (patient, kind), and of each
    glucose kind from ``peaks_since`` on those at the highest value."""
    older = and_(
        among(session, _reading.patient_id, ids),
        _OUTSIDE_A_VISIT,
        IN_FORCE,
        _reading.measured_at < window.since,
    )
    latest = (
        select_columns(_reading.patient_id, _reading.kind, func.max(_reading.measured_at).label("at"))
        .where(older)
        .group_by(_reading.patient_id, _reading.kind)
        .subquery("latest")
    )
    in_peaks = and_(older, _reading.kind.in_(_PEAK_KINDS), _reading.measured_at >= window.peaks_since)
    peak = (
        select_columns(_reading.patient_id, _reading.kind, func.max(_reading.value).label("value"))
        .where(in_peaks)
        .group_by(_reading.patient_id, _reading.kind)
        .subquery("peak")
    )
    columns = (_reading.patient_id, _reading.id, *READING_COLUMNS)
    at_latest = (
        select_columns(*columns)
        .join(
            latest,
            and_(
                _reading.patient_id == latest.c.patient_id,
                _reading.kind == latest.c.kind,
                _reading.measured_at == latest.c.at,
            ),
        )
        .where(older)
    )
    at_peak = (
        select_columns(*columns)
        .join(
            peak,
            and_(
                _reading.patient_id == peak.c.patient_id,
                _reading.kind == peak.c.kind,
                _reading.value == peak.c.value,
            ),
        )
        .where(in_peaks)
    )
    return at_latest.union_all(at_peak)


def _add_the_rest(session: Session, ids: list[int], rows: dict[int, ClinicalRows]) -> None:
    """Encounters (id, at, medications_reviewed, adherence, adverse_reaction), symptoms (encounter_id,
    code, at), checks (kind, at) and complications (code, onset) of the batch."""
    encounters = select_columns(
        _encounter.patient_id,
        _encounter.id,
        _encounter.at,
        _encounter.medications_reviewed,
        _encounter.adherence,
        _encounter.adverse_reaction,
    ).where(among(session, _encounter.patient_id, ids))
    for patient_id, *rest in session.execute(encounters):
        rows[patient_id].encounters.append(tuple(rest))
    symptoms = select_columns(_symptom.patient_id, _symptom.encounter_id, _symptom.code, _symptom.at).where(
        among(session, _symptom.patient_id, ids)
    )
    for patient_id, *rest in session.execute(symptoms.order_by(_symptom.at, _symptom.id)):
        rows[patient_id].symptoms.append(tuple(rest))
    checks = select_columns(_check.patient_id, _check.kind, _check.at).where(
        among(session, _check.patient_id, ids)
    )
    for patient_id, *rest in session.execute(checks.order_by(_check.at, _check.id)):
        rows[patient_id].checks.append(tuple(rest))
    complications = select_columns(_complication.patient_id, _complication.code, _complication.onset).where(
        among(session, _complication.patient_id, ids)
    )
    for patient_id, *rest in session.execute(complications.order_by(_complication.onset, _complication.id)):
        rows[patient_id].complications.append(tuple(rest))


def _time_and_kind(row: tuple[Any, ...]) -> tuple[datetime, str]:
    """The order of a history's readings: by time, then kind."""
    _encounter_id, kind, _source, at, *_values = row
    return at, kind
