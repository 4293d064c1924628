"""Every SQL statement of the product, including the dialect switch for ON CONFLICT.

Functions take a Session and never commit: the request, job or command owns the transaction.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, NamedTuple

import pydantic_core
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
    delete,
    func,
    insert,
    literal_column,
    null,
    or_,
    text,
    union_all,
)
from sqlalchemy import cast as cast_as
from sqlalchemy import select as select_columns
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import aliased
from sqlalchemy.types import TypeEngine
from sqlmodel import Session, SQLModel, col, select

from pathway.models import (
    AssessmentRecord,
    CareCheckRecord,
    Encounter,
    IdempotentRequest,
    Patient,
    PatientComplication,
    Reading,
    Referral,
    SymptomReport,
)
from pathway.vocabulary import ReadingKind, ReadingSource


def patient_by_external_id(session: Session, source_system: str, external_id: str) -> Patient | None:
    statement = select(Patient).where(
        Patient.source_system == source_system, Patient.external_id == external_id
    )
    return session.exec(statement).first()


def has_patients(session: Session) -> bool:
    return session.exec(select(Patient.id).limit(1)).first() is not None


def patient_by_id(session: Session, patient_id: int, *, for_update: bool = False) -> Patient | None:
    """The patient; ``for_update`` also locks its row until the transaction ends (PostgreSQL: writes
    to one patient's history take turns, so each reassessment sees every reading committed before
    it; SQLite has a single writer already and ignores it)."""
    return session.get(Patient, patient_id, with_for_update=for_update)


# Hot-path statements are built once, with bound parameters, so SQLAlchemy compiles each once per
# dialect and reuses it; they return plain rows (tuples), not ORM objects.
_PATIENT: BindParameter[int] = bindparam("patient_id")
_TABLES = SQLModel.metadata.tables
_reading = _TABLES[Reading.__tablename__].c
_encounter = _TABLES[Encounter.__tablename__].c
_symptom = _TABLES[SymptomReport.__tablename__].c
_complication = _TABLES[PatientComplication.__tablename__].c
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
_check = _TABLES[CareCheckRecord.__tablename__].c
_READING_KEY = (_reading.id, _reading.kind, _reading.measured_at, _reading.device_key)
_INSERT_READINGS_SQLITE = (
    sqlite.insert(_TABLES[Reading.__tablename__]).on_conflict_do_nothing().returning(*_READING_KEY)
)
# PostgreSQL: the rows go as one JSON array, unpacked server-side by jsonb_to_recordset. The
# statement text is the same for 1 or 1,000 rows, so psycopg converts it once and PostgreSQL
# prepares it once; the multi-row VALUES form was re-parsed (in Python and by the server) for every
# batch size (profiled: 18 % of a worker's CPU under the mixed load of bench/load.py), and arrays,
# one per column, cost as much again in psycopg's Python array dumper.
_READING_RECORD = {
    "patient_id": "integer",
    "encounter_id": "integer",
    "kind": "text",
    "source": "text",
    "measured_at": "timestamptz",
    "received_at": "timestamptz",
    "value": "float8",
    "systolic": "float8",
    "diastolic": "float8",
    "pulse": "float8",
    "unit_received": "text",
    "values_received": "jsonb",
    "device_id": "text",
    "device_key": "text",
    "source_system": "text",
    "source_reading_id": "text",
}
_INSERT_READINGS_POSTGRESQL = text(
    f"INSERT INTO {Reading.__tablename__} ({', '.join(_READING_RECORD)}) "
    f"SELECT {', '.join(_READING_RECORD)} FROM jsonb_to_recordset(CAST(:rows AS jsonb)) "
    f"AS incoming({', '.join(f'{name} {kind}' for name, kind in _READING_RECORD.items())}) "
    "ON CONFLICT DO NOTHING RETURNING id, kind, measured_at, device_key"
)
_assessment = _TABLES[AssessmentRecord.__tablename__]
_INSERT_ASSESSMENT = insert(_assessment).returning(_assessment.c.id)


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


@dataclass
class ClinicalRows:
    """One patient's rows, as :func:`pathway.service.history_from_rows` takes them: complications
    (code, onset), readings (:data:`ReadingRow`, oldest first), encounters (id, at), symptoms
    (encounter_id, code, at) and recorded checks (kind, at)."""

    complications: list[Any] = field(default_factory=list)
    readings: list[Any] = field(default_factory=list)
    encounters: list[Any] = field(default_factory=list)
    symptoms: list[Any] = field(default_factory=list)
    checks: list[Any] = field(default_factory=list)


def _typed_null(kind: TypeEngine[Any]) -> ColumnElement[Any]:
    return cast_as(null(), kind)


_INT, _TEXT, _FLOAT = _typed_null(Integer()), _typed_null(String()), _typed_null(Float())
_INSTANT, _DAY = _typed_null(DateTime(timezone=True)), _typed_null(Date())
_OTHERS = (
    select_columns(
        literal_column("'e'"),
        _encounter.id,
        _TEXT,
        _TEXT,
        _encounter.at,
        _FLOAT,
        _FLOAT,
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
        _reading.patient_id == _PATIENT, *conditions
    )


# A patient's whole history in one round trip: five SELECTs of one shape (part, ref, code, source,
# at, value, systolic, diastolic, pulse, day), the readings' first so the result takes their types.
_HISTORY = union_all(_readings_where(), *_OTHERS).order_by(*_ORDER)

# What a reassessment reads (pathway.horizon.recent, the same rule in Python): every reading from
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
)
# Readings from ``since`` on, and visit or clinic readings before it: two parts, each an index range
# (one condition with OR let PostgreSQL use only patient_id, and read every reading the patient
# ever sent: 8,776 rows for a year of hourly wearable posts). The older part is served by the
# partial index of clinical readings (pathway.models).
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
    .where(_older.c.patient_id == _PATIENT, _older.c.encounter_id.is_(None), _older.c.source != _CLINIC)
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
        .where(_reading.patient_id == _PATIENT, _OUTSIDE_A_VISIT),
        select_columns(_peak_range.c.id, *(_peak_range.c[column.name] for column in READING_COLUMNS)).where(
            _peak_range.c.value == _peak_range.c.peak
        ),
    )


_OLDER_READINGS = {dialect: _older_readings(latest) for dialect, latest in _latest_before_by_dialect.items()}


class RecentReadings(NamedTuple):
    """What a reassessment at ``until`` reads of the readings outside a visit
    (:func:`pathway.horizon.recent`): all from ``since``; before, the latest of each kind with none
    since, and from ``peaks_since`` the highest of each of ``peak_kinds``. A ``replay`` of a past
    ``until`` (:func:`pathway.history_reads.replay_rows`) reads none of them after ``until``."""

    since: datetime
    peaks_since: datetime
    until: datetime
    peak_kinds: Sequence[str]
    replay: bool = False


def history_rows(session: Session, patient_id: int, recent: RecentReadings | None = None) -> ClinicalRows:
    """Everything stored about the patient that the rules read, in one statement; with ``recent``,
    readings outside a visit before ``recent.since`` only as far as an evaluation at
    ``recent.until`` reads them (:func:`pathway.horizon.recent`), in at most one statement more."""
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
            found.encounters.append((ref, at))
        elif part == "s":
            found.symptoms.append((ref, code, at))
        elif part == "k":
            found.checks.append((code, at))
        else:
            found.complications.append((code, day))
    if recent is not None and oldest is not None and oldest < recent.since:
        _add_older(session, patient_id, found, recent)
    return found


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


def insert_check_once(session: Session, values: dict[str, Any]) -> None:
    """Record an examination as done, once per (patient, kind, time)."""
    dialect = session.get_bind().dialect.name
    insert_once = postgresql.insert if dialect == "postgresql" else sqlite.insert
    session.execute(insert_once(CareCheckRecord).values(**values).on_conflict_do_nothing())


def insert_assessment(session: Session, values: dict[str, Any]) -> int:
    """Store one assessment (a Core INSERT, no ORM object); its id."""
    return int(session.execute(_INSERT_ASSESSMENT, values).scalar_one())


def replace_complications(session: Session, patient_id: int, items: list[PatientComplication]) -> None:
    session.execute(delete(PatientComplication).where(col(PatientComplication.patient_id) == patient_id))
    session.add_all(items)


def add(session: Session, row: Any) -> None:
    session.add(row)
    session.flush()


NaturalKey = tuple[str, datetime, str]


def natural_key(values: dict[str, Any]) -> NaturalKey:
    """(kind, measured_at, device_key): aware datetimes compare and hash by instant."""
    return (values["kind"], values["measured_at"], values["device_key"])


def insert_readings_once(session: Session, rows: list[dict[str, Any]]) -> dict[NaturalKey, int]:
    """Insert many readings of one patient in one statement, skipping any already stored.

    Returns the ids of the rows inserted, by natural key (a key twice in ``rows`` is inserted once).
    """
    if not rows:
        return {}
    if session.get_bind().dialect.name == "postgresql":
        # pydantic-core writes the datetimes as ISO 8601 itself: no Python call per row or value
        document = pydantic_core.to_json(rows).decode()
        found = session.execute(_INSERT_READINGS_POSTGRESQL, {"rows": document}).all()
    elif len(rows) == 1:
        found = session.execute(_INSERT_READINGS_SQLITE, rows[0]).all()
    else:  # one cached statement; SQLAlchemy sends it as multi-row VALUES batches ("insertmanyvalues")
        found = session.execute(_INSERT_READINGS_SQLITE, rows).all()
    return {(kind, at, device): int(row_id) for row_id, kind, at, device in found}


def stored_reading_ids(
    session: Session, patient_id: int, keys: list[NaturalKey], source_system: str, source_ids: list[str]
) -> tuple[dict[NaturalKey, int], dict[str, int]]:
    """Ids of stored readings by natural key, and by source reading id (for duplicates)."""
    by_key: dict[NaturalKey, int] = {}
    if keys:
        instants = sorted({at for _, at, _ in keys})
        statement = select(Reading.id, Reading.kind, Reading.measured_at, Reading.device_key).where(
            Reading.patient_id == patient_id,
            col(Reading.measured_at) >= instants[0],
            col(Reading.measured_at) <= instants[-1],
            col(Reading.kind).in_({kind for kind, _, _ in keys}),
        )
        wanted = set(keys)
        for row_id, kind, at, device in session.execute(statement):
            if (kind, at, device) in wanted and row_id is not None:
                by_key[(kind, at, device)] = int(row_id)
    by_source: dict[str, int] = {}
    if source_ids:
        statement2 = select(Reading.id, Reading.source_reading_id).where(
            Reading.source_system == source_system, col(Reading.source_reading_id).in_(source_ids)
        )
        for row_id, source_id in session.execute(statement2):
            if row_id is not None and source_id is not None:
                by_source[source_id] = int(row_id)
    return by_key, by_source


def existing_reading_id(session: Session, values: dict[str, Any]) -> int | None:
    """The id of the stored reading a duplicate insert collided with."""
    statement = select(Reading.id).where(
        Reading.patient_id == values["patient_id"],
        Reading.kind == values["kind"],
        Reading.measured_at == values["measured_at"],
        Reading.device_key == values["device_key"],
    )
    found = session.exec(statement).first()
    if found is None and values.get("source_reading_id") is not None:
        statement = select(Reading.id).where(
            Reading.source_system == values["source_system"],
            Reading.source_reading_id == values["source_reading_id"],
        )
        found = session.exec(statement).first()
    return found


def latest_assessment(session: Session, patient_id: int) -> AssessmentRecord | None:
    statement = (
        select(AssessmentRecord)
        .where(AssessmentRecord.patient_id == patient_id)
        .order_by(col(AssessmentRecord.id).desc())  # the last stored: patient writes take turns
        .limit(1)  # Result.first() adds no LIMIT: without it every stored assessment was loaded
    )
    return session.exec(statement).first()


def assessments_of(session: Session, patient_id: int, limit: int = 100) -> Sequence[AssessmentRecord]:
    statement = (
        select(AssessmentRecord)
        .where(AssessmentRecord.patient_id == patient_id)
        # Newest first in the order they were made (a patient's writes take turns): the (patient_id,
        # id) index serves it; by evaluated_at, every one of the patient's assessments was sorted.
        .order_by(col(AssessmentRecord.id).desc())
        .limit(limit)
    )
    return session.exec(statement).all()


def encounter_by_source_id(
    session: Session, source_system: str, source_encounter_id: str
) -> Encounter | None:
    statement = select(Encounter).where(
        Encounter.source_system == source_system, Encounter.source_encounter_id == source_encounter_id
    )
    return session.exec(statement).first()


def insert_symptom_once(session: Session, values: dict[str, Any]) -> None:
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    session.execute(insert(SymptomReport).values(**values).on_conflict_do_nothing())


class StoredAnswer(NamedTuple):
    """The answer kept for an ``Idempotency-Key``, with the fingerprint of the request it answered."""

    request_sha256: str
    status_code: int
    response: dict[str, Any]


_idempotent = _TABLES[IdempotentRequest.__tablename__]
_IDEMPOTENT_ANSWER = select_columns(
    _idempotent.c.request_sha256, _idempotent.c.status_code, _idempotent.c.response
).where(_idempotent.c.scope == bindparam("scope"), _idempotent.c.key == bindparam("key"))
_INSERT_IDEMPOTENT_ANSWER = insert(_idempotent)


def idempotent_answer(session: Session, scope: str, key: str) -> StoredAnswer | None:
    row = session.execute(_IDEMPOTENT_ANSWER, {"scope": scope, "key": key}).first()
    return StoredAnswer(*row) if row is not None else None


def insert_idempotent_answer(session: Session, values: dict[str, Any]) -> None:
    """Keep an answer; a concurrent request that kept one for the same key first makes this fail
    (the unique (scope, key) constraint), so two different answers are never both acknowledged."""
    session.execute(_INSERT_IDEMPOTENT_ANSWER, values)


def active_referral(session: Session, patient_id: int, statuses: Sequence[str]) -> Referral | None:
    statement = (
        select(Referral)
        .where(Referral.patient_id == patient_id, col(Referral.status).in_(statuses))
        .order_by(col(Referral.created_at).desc())
        .limit(1)
    )
    return session.exec(statement).first()


def referral_by_id(session: Session, referral_id: int) -> Referral | None:
    return session.get(Referral, referral_id)


def referrals_of(session: Session, patient_id: int) -> Sequence[Referral]:
    statement = (
        select(Referral).where(Referral.patient_id == patient_id).order_by(col(Referral.created_at).desc())
    )
    return session.exec(statement).all()


def _time_and_kind(row: ReadingRow) -> tuple[datetime, str]:
    """The order of the history statements' readings: by time, then kind."""
    _encounter_id, kind, _source, at, *_values = row
    return at, kind
