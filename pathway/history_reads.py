"""SQL of the parts of a patient's history that the care plan, the workbench's patient page and a
replay (``assessment:preview``) read, and nothing more.

Part of the repository layer: functions take a Session and never commit. The care plan of a year
(:func:`pathway.care_plan.plan_year`) reads of a history only the encounters it lists as done
(explicit ones, and the implicit ones that loose clinic readings make) and the days of its LDL-C
readings, loose or taken at a visit; the patient page's charts (:func:`pathway.workbench.patient_charts`)
only the readings inside their window. A wearable's or CGM's stream outside those spans changes
neither, so it is not read: a year of hourly BP cost every care plan 8,760 readings.

A replay of a past moment reads what a reassessment at that moment reads
(:func:`pathway.horizon.recent`), and no reading outside a visit after it: see :func:`replay_rows`.

Readings come oldest first, in the order of :func:`pathway.repository.history_rows` (time, then
kind), so the page draws them in the same order as from the whole history.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import (
    BindParameter,
    ColumnElement,
    and_,
    bindparam,
    func,
    literal_column,
    not_,
    or_,
    union_all,
)
from sqlalchemy import select as select_columns
from sqlalchemy.orm import aliased
from sqlmodel import Session, SQLModel

from pathway.horizon import ReadingHorizon
from pathway.models import CareCheckRecord, Encounter, PatientComplication, Reading, SymptomReport
from pathway.repository import READING_COLUMNS, ClinicalRows
from pathway.vocabulary import ReadingKind, ReadingSource


class Span(NamedTuple):
    """The instants from ``start`` to ``end``, both included."""

    start: datetime
    end: datetime


_TABLES = SQLModel.metadata.tables
_reading = _TABLES[Reading.__tablename__].c
_encounter = _TABLES[Encounter.__tablename__].c
_symptom = _TABLES[SymptomReport.__tablename__].c
_check = _TABLES[CareCheckRecord.__tablename__].c
_complication = _TABLES[PatientComplication.__tablename__].c
_PATIENT: BindParameter[int] = bindparam("patient_id")
# 'clinic' as a literal, not a parameter: in the generic plan of a prepared statement PostgreSQL
# cannot prove that a parameter satisfies the predicate of the partial index of clinical readings.
_CLINIC: ColumnElement[str] = literal_column(f"'{ReadingSource.CLINIC.value}'")
_PLAN_START: BindParameter[datetime] = bindparam("plan_start", type_=_reading.measured_at.type)
_PLAN_END: BindParameter[datetime] = bindparam("plan_end", type_=_reading.measured_at.type)
_EVERY_START: BindParameter[datetime] = bindparam("every_start", type_=_reading.measured_at.type)
_EVERY_END: BindParameter[datetime] = bindparam("every_end", type_=_reading.measured_at.type)
_HOSTS: BindParameter[list[int]] = bindparam("hosts", expanding=True)

# The care plan's readings, in two parts, each inside the year: the LDL-C readings, loose or at a
# visit (PostgreSQL scanned the year of (patient, time) for them: 1.3 ms for a year of hourly BP),
# and the loose clinic readings (the partial index of clinical readings). A visit's other readings
# are not read: the plan reads only the visit's time.
_IN_PLAN = _reading.measured_at.between(_PLAN_START, _PLAN_END)
_LIPID = and_(_reading.kind == ReadingKind.LDL_C.value, _IN_PLAN)
_LOOSE_CLINIC = and_(
    _reading.source == _CLINIC,
    _reading.encounter_id.is_(None),
    _reading.kind != ReadingKind.LDL_C.value,
    _IN_PLAN,
)
_ORDER: tuple[ColumnElement[Any], ...] = (literal_column("measured_at"), literal_column("kind"))


def _readings_where(*conditions: Any) -> Any:
    return select_columns(*READING_COLUMNS).where(_reading.patient_id == _PATIENT, *conditions)


_PLAN_READINGS = union_all(_readings_where(_LIPID), _readings_where(_LOOSE_CLINIC)).order_by(*_ORDER)
# ...and every reading of the charts' window that the plan's parts did not read already.
_PAGE_READINGS = union_all(
    _readings_where(_LIPID),
    _readings_where(_LOOSE_CLINIC),
    _readings_where(_reading.measured_at.between(_EVERY_START, _EVERY_END), not_(or_(_LIPID, _LOOSE_CLINIC))),
).order_by(*_ORDER)
# The plan's encounters, and those the readings read were taken at (a visit's reading keeps its
# own time, which may fall in a span its visit does not).
_ENCOUNTERS = (
    select_columns(_encounter.id, _encounter.at)
    .where(
        _encounter.patient_id == _PATIENT,
        or_(_encounter.at.between(_PLAN_START, _PLAN_END), _encounter.id.in_(_HOSTS)),
    )
    .order_by(_encounter.at)
)


def shown_rows(session: Session, patient_id: int, plan: Span, every: Span | None = None) -> ClinicalRows:
    """The rows a care plan of ``plan`` shows (its encounters, LDL-C readings and loose clinic
    readings) and, with ``every``, every reading of that span (the charts'), with the encounters
    those readings were taken at. No complications, symptoms or checks: neither reads them."""
    parameters: dict[str, Any] = {"patient_id": patient_id, "plan_start": plan.start, "plan_end": plan.end}
    statement = _PLAN_READINGS
    if every is not None:
        parameters |= {"every_start": every.start, "every_end": every.end}
        statement = _PAGE_READINGS
    found = ClinicalRows()
    found.readings = [tuple(row) for row in session.execute(statement, parameters)]
    hosts: Sequence[int] = sorted({row[0] for row in found.readings if row[0] is not None})
    encounters = session.execute(_ENCOUNTERS, {**parameters, "hosts": list(hosts)})
    found.encounters = [tuple(row) for row in encounters]
    return found


# --- A replay: what a reassessment at ``until`` reads, and nothing after it ----------------------
#
# pathway.repository.history_rows reads every reading from ``since`` on: at an ingest that is the
# short window, but a replay of a moment a year back read the year of the stream since then, which
# the snapshot never reads (it ignores every reading outside a visit after its moment). Here the
# stream stops at ``until``. Visit and clinic readings are read whole, as there: a visit's reading
# may have been measured after the visit, and the snapshot reads it with the visit.
_SINCE: BindParameter[datetime] = bindparam("since", type_=_reading.measured_at.type)
_UNTIL: BindParameter[datetime] = bindparam("until", type_=_reading.measured_at.type)
_PEAKS_SINCE: BindParameter[datetime] = bindparam("peaks_since", type_=_reading.measured_at.type)
_IN_A_VISIT_OR_CLINIC = or_(_reading.encounter_id.is_not(None), _reading.source == _CLINIC)
_REPLAY_READINGS = union_all(
    _readings_where(_reading.measured_at.between(_SINCE, _UNTIL)),
    _readings_where(_IN_A_VISIT_OR_CLINIC, _reading.measured_at < _SINCE),  # the partial index
    _readings_where(_IN_A_VISIT_OR_CLINIC, _reading.measured_at > _UNTIL),
).order_by(*_ORDER)
_REPLAY_OTHERS = (
    select_columns(_encounter.id, _encounter.at)
    .where(_encounter.patient_id == _PATIENT)
    .order_by(_encounter.at),
    select_columns(_symptom.encounter_id, _symptom.code, _symptom.at)
    .where(_symptom.patient_id == _PATIENT)
    .order_by(_symptom.at, _symptom.code),
    select_columns(_check.kind, _check.at)
    .where(_check.patient_id == _PATIENT)
    .order_by(_check.at, _check.kind),
    select_columns(_complication.code, _complication.onset)
    .where(_complication.patient_id == _PATIENT)
    .order_by(_complication.onset, _complication.code),
)
_older = aliased(_TABLES[Reading.__tablename__], name="older")


def _outside_a_visit(table: Any, kind: str, *conditions: ColumnElement[bool]) -> tuple[Any, ...]:
    return (
        table.patient_id == _PATIENT,
        table.kind == kind,
        table.encounter_id.is_(None),
        table.source != _CLINIC,
        *conditions,
    )


@functools.lru_cache(maxsize=256)
def _older_readings(kinds: tuple[str, ...], peak_kinds: tuple[str, ...]) -> Any:
    """Before ``since``: the readings of each of ``kinds`` at its latest time (one backward probe of
    the unique (patient, kind, time, device) index each), and from ``peaks_since`` those at the
    highest value of each of ``peak_kinds``. The reading's id comes first: a reading both the
    latest and a peak is read once."""
    parts = []
    for kind in kinds:
        latest = (
            select_columns(_older.c.measured_at)
            .where(*_outside_a_visit(_older.c, kind, _older.c.measured_at < _SINCE))
            .order_by(_older.c.measured_at.desc())
            .limit(1)
            .scalar_subquery()
        )
        parts.append(
            select_columns(_reading.id, *READING_COLUMNS).where(
                *_outside_a_visit(_reading, kind, _reading.measured_at == latest)
            )
        )
    for kind in peak_kinds:

        def in_peak_range(table: Any, kind: str = kind) -> tuple[Any, ...]:
            return _outside_a_visit(
                table, kind, table.measured_at >= _PEAKS_SINCE, table.measured_at < _SINCE
            )

        highest = select_columns(func.max(_older.c.value)).where(*in_peak_range(_older.c)).scalar_subquery()
        parts.append(
            select_columns(_reading.id, *READING_COLUMNS).where(
                *in_peak_range(_reading), _reading.value == highest
            )
        )
    return union_all(*parts) if parts else None


def replay_rows(session: Session, patient_id: int, as_of: datetime, horizon: ReadingHorizon) -> ClinicalRows:
    """What :func:`pathway.repository.history_rows` reads for an evaluation at ``as_of`` with
    ``horizon`` (:func:`pathway.horizon.recent`), less the readings outside a visit after ``as_of``:
    every reading of [as_of - horizon.every, as_of]; every visit or clinic reading; before the short
    window, the latest of each kind with none in it and the peaks of the long window."""
    since = as_of - horizon.every
    parameters = {
        "patient_id": patient_id,
        "since": since,
        "until": as_of,
        "peaks_since": as_of - horizon.peaks,
    }
    found = ClinicalRows()
    found.readings = [tuple(row) for row in session.execute(_REPLAY_READINGS, parameters)]
    covered = {
        kind
        for encounter_id, kind, source, at, *_ in found.readings
        if encounter_id is None and source != ReadingSource.CLINIC.value and since <= at <= as_of
    }
    wanted = tuple(kind.value for kind in ReadingKind if kind.value not in covered)
    statement = _older_readings(wanted, tuple(sorted(kind.value for kind in horizon.peak_kinds)))
    older = (
        {}
        if statement is None
        else {row_id: tuple(rest) for row_id, *rest in session.execute(statement, parameters)}
    )
    if older:
        found.readings = sorted([*found.readings, *older.values()], key=_time_and_kind)
    encounters, symptoms, checks, complications = (
        [tuple(row) for row in session.execute(statement, parameters)] for statement in _REPLAY_OTHERS
    )
    found.encounters, found.symptoms, found.checks, found.complications = (
        encounters,
        symptoms,
        checks,
        complications,
    )
    return found


def _time_and_kind(row: tuple[Any, ...]) -> tuple[datetime, str]:
    """The order of :func:`pathway.repository.history_rows`'s readings: by time, then kind."""
    _encounter_id, kind, _source, at, *_values = row
    return at, kind
