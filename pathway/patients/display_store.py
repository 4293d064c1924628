"""SQL of the parts of a patient's history that the care plan, the workbench's patient page and a
replay (``assessment:preview``) read, and nothing more.

Part of the repository layer: functions take a Session and never commit. The care plan of a year
(:func:`pathway.patients.care_plan.plan_year`) reads of a history only the encounters it lists as done
(explicit ones, and the implicit ones that loose clinic readings make) and the days of its LDL-C
readings, loose or taken at a visit; the patient page's charts
(:func:`api.web.chart_values.patient_charts`)
only the readings inside their window. A wearable's or CGM's stream outside those spans changes
neither, so it is not read: a year of hourly BP cost every care plan 8,760 readings.

A replay of a past moment reads what a reassessment at that moment reads
(:func:`pathway.clinical.horizon.recent`), and no reading outside a visit after it: see :func:`replay_rows`,
which the recent history of
:mod:`pathway.patients.history_store` serves with the stream stopped at that moment.

Readings come oldest first, in the order of :func:`pathway.patients.history_store.history_rows` (time, then
kind), so the page draws them in the same order as from the whole history.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import (
    BindParameter,
    ColumnElement,
    and_,
    bindparam,
    literal_column,
    not_,
    or_,
    union_all,
)
from sqlalchemy import select as select_columns
from sqlmodel import Session, SQLModel

from pathway.clinical.horizon import ReadingHorizon
from pathway.clinical.vocabulary import ReadingKind, ReadingSource
from pathway.patients.history_store import RecentReadings, history_rows
from pathway.store.rows import IN_FORCE, READING_COLUMNS, ClinicalRows
from pathway.store.tables import Encounter, Reading


class Span(NamedTuple):
    """The instants from ``start`` to ``end``, both included."""

    start: datetime
    end: datetime


_TABLES = SQLModel.metadata.tables
_reading = _TABLES[Reading.__tablename__].c
_encounter = _TABLES[Encounter.__tablename__].c
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
    return select_columns(*READING_COLUMNS).where(_reading.patient_id == _PATIENT, IN_FORCE, *conditions)


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


def replay_rows(session: Session, patient_id: int, as_of: datetime, horizon: ReadingHorizon) -> ClinicalRows:
    """What a reassessment at ``as_of`` with ``horizon`` reads (:func:`pathway.clinical.horizon.recent`),
    less the readings outside a visit after ``as_of``:
    :func:`pathway.patients.history_store.history_rows` with
    the stream stopped at ``as_of`` (a replay of a moment a year back read the year of the stream
    since then, which no snapshot at that moment reads)."""
    recent = RecentReadings(
        since=as_of - horizon.every,
        peaks_since=as_of - horizon.peaks,
        until=as_of,
        peak_kinds=sorted(kind.value for kind in horizon.peak_kinds),
        replay=True,
    )
    return history_rows(session, patient_id, recent)
