"""Row shapes and predicates that several concepts' SQL shares: the columns of a reading that a
history is built from (:data:`READING_COLUMNS`, :data:`ReadingRow`), one patient's rows
(:class:`ClinicalRows`) and what a reading in force is (:func:`in_force`, :data:`IN_FORCE`).

Used by the history reads of :mod:`pathway.patients.history_store` and
:mod:`pathway.patients.display_store`, the bulk loads of :mod:`pathway.teams.team_store` and the
contact flags of :mod:`pathway.tasks.flag_store`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, and_
from sqlmodel import SQLModel

from pathway.store.tables import PrescriptionRecord, Reading

_reading = SQLModel.metadata.tables[Reading.__tablename__].c
# The columns of a reading that a history is built from, in ReadingRow's order. The numbers and
# unit as received stay in the table: the rules read canonical values only, and decoding them for
# every stored reading on every reassessment cost more than the evaluation itself.
READING_COLUMNS = (
    _reading.encounter_id,
    _reading.kind,
    _reading.source,
    _reading.measured_at,
    _reading.value,
    _reading.systolic,
    _reading.diastolic,
    _reading.pulse,
)


def in_force(reading: Any) -> ColumnElement[bool]:
    """A reading neither superseded by a new version nor retracted: the only ones any history read
    (a reassessment, a replay, the care plan, the charts, the team views and indicators, the last
    contact) sees. ``reading`` is the columns of the table or of an alias of it."""
    return and_(reading.superseded_at.is_(None), reading.retracted_at.is_(None))


IN_FORCE = in_force(_reading)


ReadingRow = tuple[
    int | None,
    str,
    str,
    datetime,
    float | None,
    float | None,
    float | None,
    float | None,
]


PrescriptionRow = tuple[Any, ...]
"""A prescription as a history reads it: classes, drug, started_on, supply_days, dose, stopped_on,
recorded_at, source id, traceability codes (:func:`pathway.patients.history_store.prescription_rows`)."""

_prescription = SQLModel.metadata.tables[PrescriptionRecord.__tablename__].c
# The columns of a PrescriptionRow, in its order (one patient's read, and the batch reads of the
# indicators and the impact analysis, which put the patient id before them).
PRESCRIPTION_COLUMNS = (
    _prescription.classes,
    _prescription.drug,
    _prescription.started_on,
    _prescription.supply_days,
    _prescription.dose,
    _prescription.stopped_on,
    _prescription.recorded_at,
    _prescription.source_prescription_id,
    _prescription.traceability_codes,
)


@dataclass
class ClinicalRows:
    """One patient's rows, as :func:`pathway.patients.history.history_from_rows` takes them: complications
    (code, onset), readings (:data:`ReadingRow`, oldest first), encounters (id, at, and from a
    history read medications_reviewed, adherence, adverse_reaction), symptoms (encounter_id, code,
    at), recorded checks (kind, at) and prescriptions (:data:`PrescriptionRow`)."""

    complications: list[Any] = field(default_factory=list)
    readings: list[Any] = field(default_factory=list)
    encounters: list[Any] = field(default_factory=list)
    symptoms: list[Any] = field(default_factory=list)
    checks: list[Any] = field(default_factory=list)
    prescriptions: list[Any] = field(default_factory=list)
