"""SQL of a patient's history as a reassessment reads it: everything the rules read of the patient
in one statement or, with :class:`RecentReadings`, the recent part of it
(:func:`pathway.clinical.horizon.recent`) and the older readings outside a visit in at most one more.

Part of the repository layer: functions take a Session and never commit. The row shapes
(:data:`READING_COLUMNS`, :data:`ReadingRow`, :class:`ClinicalRows`) are those of
:mod:`pathway.store.rows`, shared with the partial reads of :mod:`pathway.patients.display_store`
and the bulk loads of :mod:`pathway.teams.team_store`.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import (
    BindParameter,
    ColumnElement,
    Date,
    DateTime,
    Float,
    Integer,
    String,
    and_,
    bindparam,
    case,
    func,
    literal_column,
    null,
    or_,
    union_all,
)
from sqlalchemy import cast as cast_as
from sqlalchemy import select as select_columns
from sqlalchemy.dialects import postgresql
from sqlalchemy.orm import aliased
from sqlalchemy.types import TypeEngine
from sqlmodel import Session, SQLModel

from pathway.clinical.vocabulary import ReadingKind, ReadingSource
from pathway.store.rows import (
    IN_FORCE,
    PRESCRIPTION_COLUMNS,
    READING_COLUMNS,
    ClinicalRows,
    ReadingRow,
    in_force,
)
from pathway.store.tables import (
    CareCheckRecord,
    Encounter,
    PatientComplication,
    PrescriptionRecord,
    Reading,
    SymptomReport,
)

# Hot-path statements are built once, with bound parameters, so SQLAlchemy compiles each once per
# dialect and reuses it; they return plain rows (tuples), not ORM objects.
_PATIENT: BindParameter[int] = bindparam("patient_id")
_TABLES = SQLModel.metadata.tables
_reading = _TABLES[Reading.__tablename__].c
_encounter = _TABLES[Encounter.__tablename__].c
_symptom = _TABLES[SymptomReport.__tablename__].c
_complication = _TABLES[PatientComplication.__tablename__].c
_check = _TABLES[CareCheckRecord.__tablename__].c


def _typed_null(kind: TypeEngine[Any]) -> ColumnElement[Any]:
    return cast_as(null(), kind)


_INT, _TEXT, _FLOAT = _typed_null(Integer()), _typed_null(String()), _typed_null(Float())
_INSTANT, _DAY = _typed_null(DateTime(timezone=True)), _typed_null(Date())
_ONE, _ZERO = cast_as(literal_column("1.0"), Float()), cast_as(literal_column("0.0"), Float())
# A visit's medication answers ride in its row (PATHWAY.md §7): adherence as the code, reviewed and
# the adverse reaction as 1 / 0 (NULL: not asked) in the value columns. No statement more.
_OTHERS = (
    select_columns(
        literal_column("'e'"),
        _encounter.id,
        _encounter.adherence,
        _TEXT,
        _encounter.at,
        case((_encounter.medications_reviewed, _ONE), else_=_ZERO),
        case((_encounter.adverse_reaction, _ONE), (~_encounter.adverse_reaction, _ZERO), else_=_FLOAT),
        _FLOAT,
        _FLOAT,
        _DAY,
    ).where(_encounter.patient_id == _PATIENT),
    select_columns(
        literal_column("'s'"),
        _symptom.encounter_id,
        _symptom.code,
        _TEXT,
        _symptom.at,
        _FLOAT,
        _FLOAT,
        _FLOAT,
        _FLOAT,
        _DAY,
    ).where(_symptom.patient_id == _PATIENT),
    select_columns(
        literal_column("'k'"), _INT, _check.kind, _TEXT, _check.at, _FLOAT, _FLOAT, _FLOAT, _FLOAT, _DAY
    ).where(_check.patient_id == _PATIENT),
    select_columns(
        literal_column("'c'"),
        _INT,
        _complication.code,
        _TEXT,
        _INSTANT,
        _FLOAT,
        _FLOAT,
        _FLOAT,
        _FLOAT,
        _complication.onset,
    ).where(_complication.patient_id == _PATIENT),
)
_ORDER: tuple[ColumnElement[Any], ...] = (
    literal_column("part"),
    literal_column("measured_at"),
    literal_column("day"),
    literal_column("kind"),
)


def _readings_where(*conditions: ColumnElement[bool]) -> Any:
    return select_columns(literal_column("'r'").label("part"), *READING_COLUMNS, _DAY.label("day")).where(
        _reading.patient_id == _PATIENT, IN_FORCE, *conditions
    )


# A patient's whole history in one round trip: five SELECTs of one shape (part, ref, code, source,
# at, value, systolic, diastolic, pulse, day), the readings' first so the result takes their types.
_HISTORY = union_all(_readings_where(), *_OTHERS).order_by(*_ORDER)

# What a reassessment reads (pathway.clinical.horizon.recent, the same rule in Python): every reading from
# ``since`` on and every clinic or visit reading; before ``since``, readings outside a visit only as
# the latest of each kind with none since, and from ``peaks_since`` on those at the highest value
# of a peak kind, read by a second, small statement only when the first found that such older
# readings exist (labs, a stream older than the short window).
_SINCE: BindParameter[datetime] = bindparam("since", type_=_reading.measured_at.type)
_UNTIL: BindParameter[datetime] = bindparam("until", type_=_reading.measured_at.type)
_PEAKS_SINCE: BindParameter[datetime] = bindparam("peaks_since", type_=_reading.measured_at.type)
_KINDS: BindParameter[list[str]] = bindparam("kinds", expanding=True)
_PEAK_KINDS: BindParameter[list[str]] = bindparam("peak_kinds", expanding=True)
_older = aliased(_TABLES[Reading.__tablename__], name="older")
_OUTSIDE_A_VISIT = and_(_reading.encounter_id.is_(None), _reading.source != ReadingSource.CLINIC.value)
_CLINIC = ReadingSource.CLINIC.value
_OLDER_OUTSIDE_A_VISIT = (
    _older.c.patient_id == _PATIENT,
    _older.c.encounter_id.is_(None),
    _older.c.source != _CLINIC,
    _older.c.measured_at < _SINCE,
    in_force(_older.c),
)
# Readings from ``since`` on, and visit or clinic readings before it: two parts, each an index range
# (one condition with OR let PostgreSQL use only patient_id, and read every reading the patient
# ever sent: 8,776 rows for a year of hourly wearable posts). The older part is served by the
# partial index of clinical readings (pathway.store.tables).
# 'clinic' as a literal, not a parameter: in the generic plan of a prepared statement PostgreSQL
# cannot prove that a parameter satisfies the partial index's predicate, and so would not use it.
_IN_A_VISIT_OR_CLINIC = or_(
    _reading.encounter_id.is_not(None), _reading.source == literal_column(f"'{_CLINIC}'")
)
# The patient's oldest reading outside a visit (the first entry of its (patient, time) index): only
# if it is older than ``since`` is the second statement needed.
_OLDEST_OUTSIDE_A_VISIT = select_columns(
    literal_column("'o'"),
    _INT,
    _TEXT,
    _TEXT,
    select_columns(_older.c.measured_at)
    .where(
        _older.c.patient_id == _PATIENT,
        _older.c.encounter_id.is_(None),
        _older.c.source != _CLINIC,
        in_force(_older.c),
    )
    .order_by(_older.c.measured_at)
    .limit(1)
    .scalar_subquery(),
    _FLOAT,
    _FLOAT,
    _FLOAT,
    _FLOAT,
    _DAY,
)
_CLINICAL_BEFORE = _readings_where(_IN_A_VISIT_OR_CLINIC, _reading.measured_at < _SINCE)
_RECENT_HISTORY = union_all(
    _readings_where(_reading.measured_at >= _SINCE), _CLINICAL_BEFORE, *_OTHERS, _OLDEST_OUTSIDE_A_VISIT
).order_by(*_ORDER)
# A replay of a past moment (RecentReadings.replay): the stream stops at ``until`` (a moment a year
# back read the year of it since then, which no snapshot at that moment reads). Visit and clinic
# readings are still read whole: a visit's reading may have been measured after the visit, and the
# snapshot reads it with the visit. A reassessment reads with ``until`` = now, after which only a
# clock's skew puts readings: it keeps the statement above, with no bound to check.
_REPLAYED_HISTORY = union_all(
    _readings_where(_reading.measured_at.between(_SINCE, _UNTIL)),
    _CLINICAL_BEFORE,
    _readings_where(_IN_A_VISIT_OR_CLINIC, _reading.measured_at > _UNTIL),
    *_OTHERS,
    _OLDEST_OUTSIDE_A_VISIT,
).order_by(*_ORDER)
# The latest time of each wanted kind before ``since``. PostgreSQL: one backward probe of the
# (patient, kind, time) unique index per kind (a GROUP BY read every older reading: a stream that
# stopped a week ago cost a scan of its whole past). SQLite: grouped (an embedded store is small).
_KINDS_ARRAY: BindParameter[Any] = bindparam("kinds_array", type_=postgresql.ARRAY(String()))
_wanted = func.unnest(_KINDS_ARRAY).table_valued("kind").render_derived(name="wanted")
_latest_before_by_dialect = {
    "postgresql": select_columns(
        _wanted.c.kind,
        select_columns(func.max(_older.c.measured_at))
        .where(*_OLDER_OUTSIDE_A_VISIT, _older.c.kind == _wanted.c.kind)
        .scalar_subquery()
        .label("at"),
    ).subquery("latest_before"),
    "sqlite": select_columns(_older.c.kind, func.max(_older.c.measured_at).label("at"))
    .where(*_OLDER_OUTSIDE_A_VISIT, _older.c.kind.in_(_KINDS))
    .group_by(_older.c.kind)
    .subquery("latest_before"),
}
# The highest value of each peak kind in [peaks_since, since), by a window over one range scan: a
# join to a grouped subquery let the planner, with the statistics of a freshly loaded table, redo
# the grouping for every reading of the range (seconds for a CGM's quarter).
_peak_range = (
    select_columns(
        _reading.id,
        *READING_COLUMNS,
        func.max(_reading.value).over(partition_by=_reading.kind).label("peak"),
    )
    .where(
        _reading.patient_id == _PATIENT,
        _OUTSIDE_A_VISIT,
        IN_FORCE,
        _reading.measured_at >= _PEAKS_SINCE,
        _reading.measured_at < _SINCE,
        _reading.kind.in_(_PEAK_KINDS),
    )
    .subquery("peak_range")
)


def _older_readings(latest_before: Any) -> Any:
    """The reading's id comes first: a reading both the latest and a peak is read once."""
    return union_all(
        select_columns(_reading.id, *READING_COLUMNS)
        .join(
            latest_before,
            and_(_reading.kind == latest_before.c.kind, _reading.measured_at == latest_before.c.at),
        )
        .where(_reading.patient_id == _PATIENT, _OUTSIDE_A_VISIT, IN_FORCE),
        select_columns(_peak_range.c.id, *(_peak_range.c[column.name] for column in READING_COLUMNS)).where(
            _peak_range.c.value == _peak_range.c.peak
        ),
    )


_OLDER_READINGS = {dialect: _older_readings(latest) for dialect, latest in _latest_before_by_dialect.items()}


class RecentReadings(NamedTuple):
    """What a reassessment at ``until`` reads of the readings outside a visit
    (:func:`pathway.clinical.horizon.recent`): all from ``since``; before, the latest of each kind with none
    since, and from ``peaks_since`` the highest of each of ``peak_kinds``. A ``replay`` of a past
    ``until`` (:func:`pathway.patients.display_store.replay_rows`) reads none of them after ``until``."""

    since: datetime
    peaks_since: datetime
    until: datetime
    peak_kinds: Sequence[str]
    replay: bool = False


def history_rows(session: Session, patient_id: int, recent: RecentReadings | None = None) -> ClinicalRows:
    """Everything stored about the patient that the rules read, in one statement; with ``recent``,
    readings outside a visit before ``recent.since`` only as far as an evaluation at
    ``recent.until`` reads them (:func:`pathway.clinical.horizon.recent`), in at most one statement more."""
    found = ClinicalRows()
    if recent is None:
        rows = session.execute(_HISTORY, {"patient_id": patient_id})
    elif recent.replay:
        parameters = {"patient_id": patient_id, "since": recent.since, "until": recent.until}
        rows = session.execute(_REPLAYED_HISTORY, parameters)
    else:
        rows = session.execute(_RECENT_HISTORY, {"patient_id": patient_id, "since": recent.since})
    oldest: datetime | None = None
    for part, ref, code, source, at, value, systolic, diastolic, pulse, day in rows.all():
        if part == "o":
            oldest = at
        elif part == "r":
            found.readings.append((ref, code, source, at, value, systolic, diastolic, pulse))
        elif part == "e":
            found.encounters.append((ref, at, value == 1, code, None if systolic is None else systolic == 1))
        elif part == "s":
            found.symptoms.append((ref, code, at))
        elif part == "k":
            found.checks.append((code, at))
        else:
            found.complications.append((code, day))
    if recent is not None and oldest is not None and oldest < recent.since:
        _add_older(session, patient_id, found, recent)
    return found


_prescription = _TABLES[PrescriptionRecord.__tablename__].c
_PRESCRIPTION_COLUMNS = PRESCRIPTION_COLUMNS
_AS_OF: BindParameter[datetime] = bindparam("as_of", type_=_prescription.recorded_at.type)
_PRESCRIPTIONS = (
    select_columns(*_PRESCRIPTION_COLUMNS)
    .where(
        _prescription.patient_id == _PATIENT,
        _prescription.superseded_at.is_(None),
        _prescription.retracted_at.is_(None),
    )
    .order_by(_prescription.started_on, _prescription.id)
)
# A replay of ``as_of`` sees each prescription as it was then: the version recorded by then and not
# yet superseded (a retracted one never: it was entered in error).
_PRESCRIPTIONS_AS_OF = (
    select_columns(*_PRESCRIPTION_COLUMNS)
    .where(
        _prescription.patient_id == _PATIENT,
        _prescription.recorded_at <= _AS_OF,
        or_(_prescription.superseded_at.is_(None), _prescription.superseded_at > _AS_OF),
        _prescription.retracted_at.is_(None),
    )
    .order_by(_prescription.started_on, _prescription.id)
)


def prescription_rows(session: Session, patient_id: int, as_of: datetime | None = None) -> list[Any]:
    """The patient's prescriptions in force (:data:`pathway.store.rows.PrescriptionRow`), or with
    ``as_of`` those in force at that moment, oldest start first: one indexed statement."""
    if as_of is None:
        return [tuple(row) for row in session.execute(_PRESCRIPTIONS, {"patient_id": patient_id})]
    parameters = {"patient_id": patient_id, "as_of": as_of}
    return [tuple(row) for row in session.execute(_PRESCRIPTIONS_AS_OF, parameters)]


def _add_older(session: Session, patient_id: int, found: ClinicalRows, recent: RecentReadings) -> None:
    """Add the readings outside a visit before ``recent.since`` that an evaluation at
    ``recent.until`` reads (a reassessment's, or a replay's): the latest of each kind with none in
    [since, until] (for the others an older one changes nothing), and the peaks."""
    since, until = recent.since, recent.until
    clinic = ReadingSource.CLINIC.value
    covered = {
        kind
        for encounter_id, kind, source, at, *_ in found.readings
        if encounter_id is None and source != clinic and since <= at <= until
    }
    parameters = {
        "patient_id": patient_id,
        "since": since,
        "peaks_since": recent.peaks_since,
        "peak_kinds": list(recent.peak_kinds),
    }
    wanted = [kind.value for kind in ReadingKind if kind.value not in covered]
    dialect = session.get_bind().dialect.name
    parameters["kinds_array" if dialect == "postgresql" else "kinds"] = wanted
    statement = _OLDER_READINGS[dialect]
    older = {row_id: tuple(rest) for row_id, *rest in session.execute(statement, parameters)}
    if older:
        found.readings = sorted([*found.readings, *older.values()], key=_time_and_kind)


def _time_and_kind(row: ReadingRow) -> tuple[datetime, str]:
    """The order of the history statements' readings: by time, then kind."""
    _encounter_id, kind, _source, at, *_values = row
    return at, kind
