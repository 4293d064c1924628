"""A patient's stored history as the snapshot builder sees it, built from the rows of
:mod:`pathway.patients.history_store` (a reassessment's read) or of any other read of them (a
replay, the care plan, a team's bulk load).
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Sequence
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlmodel import Session

from pathway.clinical.history import (
    CheckDone,
    ComplicationRecord,
    Encounter,
    Measurement,
    PatientHistory,
    PatientProfile,
    SymptomReport,
)
from pathway.clinical.horizon import ReadingHorizon
from pathway.clinical.medication import Adherence, MedicationClass, Prescription
from pathway.clinical.vocabulary import (
    CareCheck,
    Complication,
    Condition,
    ReadingKind,
    ReadingSource,
    Sex,
    Symptom,
)
from pathway.patients import batch_history_store, history_store
from pathway.patients.batch_history_store import Window as Window  # the batch read's window
from pathway.store.rows import ClinicalRows, PrescriptionRow, ReadingRow
from pathway.store.tables import Patient


def _decimal(value: float | None) -> Decimal | None:
    return _exact(value) if value is not None else None


@functools.lru_cache(maxsize=4096)
def _exact(value: float) -> Decimal:
    """The stored float as the decimal it was written from (readings repeat: 132/84 comes back often)."""
    return Decimal(repr(value))


# Enum lookups by value, without EnumType.__call__ (a reassessment makes two per stored reading).
_READING_KINDS = {kind.value: kind for kind in ReadingKind}
_READING_SOURCES = {source.value: source for source in ReadingSource}
_ADHERENCE = {adherence.value: adherence for adherence in Adherence}


def history_of(
    session: Session,
    patient: Patient,
    *,
    evaluated_at: datetime | None = None,
    horizon: ReadingHorizon | None = None,
    prescriptions: bool = True,
) -> PatientHistory:
    """The patient's stored history as the snapshot builder sees it (one cached SELECT of rows).
    With ``evaluated_at`` and ``horizon``, only what an evaluation at that moment reads of it:
    :func:`pathway.clinical.horizon.recent` (a wearable's stream is not read back to its first day).
    With ``prescriptions`` (a pack that knows medication), the patient's prescriptions in force, in
    one statement more for a patient who has some (``Patient.has_prescriptions``), none otherwise."""
    assert patient.id is not None
    recent = None
    if evaluated_at is not None and horizon is not None:
        recent = history_store.RecentReadings(
            since=evaluated_at - horizon.every,
            peaks_since=evaluated_at - horizon.peaks,
            until=evaluated_at,
            peak_kinds=sorted(kind.value for kind in horizon.peak_kinds),
        )
    rows = history_store.history_rows(session, patient.id, recent)
    medication: list[PrescriptionRow] = []
    if prescriptions and patient.has_prescriptions:
        medication = history_store.prescription_rows(session, patient.id)
    return history_from_rows(
        patient, rows.complications, rows.readings, rows.encounters, rows.symptoms, rows.checks, medication
    )


def batch_rows(
    session: Session, patient_ids: Sequence[int], window: Window, with_prescriptions: Sequence[int] = ()
) -> dict[int, ClinicalRows]:
    """The rows of a batch of patients' histories as a read at ``window.until`` reads each (a replay
    of a past moment, or with ``until`` None a reassessment now), in seven statements for the batch:
    :func:`pathway.patients.batch_history_store.history_rows`."""
    return batch_history_store.history_rows(session, patient_ids, window, with_prescriptions)


def histories_of(
    session: Session,
    patients: Sequence[Patient],
    *,
    evaluated_at: datetime,
    horizon: ReadingHorizon,
    prescriptions: bool = True,
) -> dict[int, PatientHistory]:
    """:func:`history_of` of each of a batch of patients (by id) as a reassessment at ``evaluated_at``
    reads it, in seven statements for the batch instead of one or two a patient."""
    window = Window(since=evaluated_at - horizon.every, peaks_since=evaluated_at - horizon.peaks, until=None)
    ids = [p.id for p in patients if p.id is not None]
    medication = [p.id for p in patients if p.id is not None and prescriptions and p.has_prescriptions]
    rows = batch_rows(session, ids, window, medication)
    histories = {}
    for patient in patients:
        assert patient.id is not None
        mine = rows[patient.id]
        histories[patient.id] = history_from_rows(
            patient, mine.complications, mine.readings, mine.encounters, mine.symptoms, mine.checks,
            mine.prescriptions,
        )  # fmt: skip
    return histories


def history_from_rows(
    patient: Patient,
    complications: Iterable[tuple[str, date]],
    readings: Iterable[ReadingRow],
    encounters: Iterable[tuple[Any, ...]],
    symptoms: Sequence[tuple[int | None, str, datetime]],
    checks: Iterable[tuple[str, datetime]] = (),
    prescriptions: Iterable[PrescriptionRow] = (),
) -> PatientHistory:
    """A patient's history from the rows of :mod:`pathway.patients.history_store` (one patient's, or a bulk
    load's share for that patient). Readings carry their canonical values, which is all the rules
    read; the numbers and unit as received stay in the store."""
    profile = PatientProfile(
        sex=Sex(patient.sex),
        birth_date=patient.birth_date,
        conditions=frozenset(Condition(c) for c in patient.conditions),
        complications=tuple(ComplicationRecord(Complication(code), onset) for code, onset in complications),
        smoker=patient.smoker,
        pregnant=patient.pregnant,
    )
    by_encounter: dict[int, list[Measurement]] = {}
    loose: list[Measurement] = []
    for row in readings:
        encounter_id, kind, source, at, value, systolic, diastolic, pulse = row
        measurement = Measurement(
            kind=_READING_KINDS[kind],
            source=_READING_SOURCES[source],
            at=at,
            value=_decimal(value),
            systolic=_decimal(systolic),
            diastolic=_decimal(diastolic),
            pulse=_decimal(pulse),
        )
        if encounter_id is None:
            loose.append(measurement)
        else:
            by_encounter.setdefault(encounter_id, []).append(measurement)
    return PatientHistory(
        profile=profile,
        encounters=tuple(
            # One total order for every read, whatever order its query returned: instant, then id
            # (two visits at one instant: the later-recorded is the most recent, stored or replayed).
            _encounter(row, tuple(by_encounter.get(row[0], ())), symptoms)
            for row in sorted(encounters, key=_instant_then_id)
        ),
        readings=tuple(loose),
        symptoms=tuple(SymptomReport(Symptom(code), at) for of, code, at in symptoms if of is None),
        checks=tuple(CheckDone(CareCheck(kind), at) for kind, at in checks),
        prescriptions=tuple(_prescription(row) for row in prescriptions),
    )


def _encounter(
    row: tuple[Any, ...],
    readings: tuple[Measurement, ...],
    symptoms: Sequence[tuple[int | None, str, datetime]],
) -> Encounter:
    """A visit from its row: (id, at), or from a history read (id, at, medications_reviewed,
    adherence, adverse_reaction)."""
    encounter_id, at, *medication = row
    reviewed, adherence, adverse = medication if medication else (False, None, None)
    return Encounter(
        at=at,
        readings=readings,
        symptoms=tuple(Symptom(code) for of, code, _ in symptoms if of == encounter_id),
        medications_reviewed=bool(reviewed),
        adherence=_ADHERENCE[adherence] if adherence is not None else None,
        adverse_reaction=adverse,
    )


def _prescription(row: PrescriptionRow) -> Prescription:
    classes, drug, started_on, supply_days, dose, stopped_on, recorded_at, source_id, codes = row
    return Prescription(
        classes=tuple(MedicationClass(code) for code in classes),
        drug=drug,
        started_on=started_on,
        supply_days=supply_days,
        dose=dose,
        stopped_on=stopped_on,
        recorded_at=recorded_at,
        source_id=source_id,
        traceability_codes=tuple(codes or ()),
    )


def _instant_then_id(encounter: tuple[Any, ...]) -> tuple[datetime, int]:
    return encounter[1], encounter[0]
