"""SQL of what is recorded of a patient: readings (inserted once, superseded by new versions,
retracted), clinic visits, symptoms and examinations.

Part of the repository layer: functions take a Session and never commit: the request, job or
command owns the transaction (:mod:`pathway.ingest.recording` is its use-case).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, NamedTuple

import pydantic_core
from sqlalchemy import delete, text, update
from sqlalchemy import select as select_columns
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session, SQLModel, col, select

from pathway.store.tables import CareCheckRecord, Encounter, Reading, SymptomReport

# Hot-path statements are built once, with bound parameters, so SQLAlchemy compiles each once per
# dialect and reuses it; they return plain rows (tuples), not ORM objects.
_TABLES = SQLModel.metadata.tables
_reading = _TABLES[Reading.__tablename__].c
_READING_KEY = (_reading.id, _reading.kind, _reading.measured_at, _reading.device_key, _reading.value_key)
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
    "value_key": "text",
    "source_system": "text",
    "source_reading_id": "text",
}
_INSERT_READINGS_POSTGRESQL = text(
    f"INSERT INTO {Reading.__tablename__} ({', '.join(_READING_RECORD)}) "
    f"SELECT {', '.join(_READING_RECORD)} FROM jsonb_to_recordset(CAST(:rows AS jsonb)) "
    f"AS incoming({', '.join(f'{name} {kind}' for name, kind in _READING_RECORD.items())}) "
    "ON CONFLICT DO NOTHING RETURNING id, kind, measured_at, device_key, value_key"
)


def insert_check_once(session: Session, values: dict[str, Any]) -> None:
    """Record an examination as done, once per (patient, kind, time)."""
    dialect = session.get_bind().dialect.name
    insert_once = postgresql.insert if dialect == "postgresql" else sqlite.insert
    session.execute(insert_once(CareCheckRecord).values(**values).on_conflict_do_nothing())


NaturalKey = tuple[str, datetime, str, str]


def natural_key(values: dict[str, Any]) -> NaturalKey:
    """(kind, measured_at, device_key, value_key): aware datetimes compare and hash by instant."""
    return (values["kind"], values["measured_at"], values["device_key"], values["value_key"])


def insert_readings_once(session: Session, rows: list[dict[str, Any]]) -> dict[NaturalKey, int]:
    """Insert many readings of one patient in one statement, skipping any already stored (the same
    natural key, or the same source reading id, among current versions).

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
    return {(kind, at, device, values): int(row_id) for row_id, kind, at, device, values in found}


class StoredVersion(NamedTuple):
    """The current version of a reading under a source reading id: its id, what it says (kind,
    source, measured_at, device_key, value_key) and whether it is retracted."""

    id: int
    content: tuple[str, str, datetime, str, str]
    retracted: bool


def content_of(values: dict[str, Any]) -> tuple[str, str, datetime, str, str]:
    """What a reading says, as :class:`StoredVersion` holds it: another content is another version."""
    return (
        values["kind"],
        values["source"],
        values["measured_at"],
        values["device_key"],
        values["value_key"],
    )


_CURRENT = _reading.superseded_at.is_(None)


def stored_readings(
    session: Session, patient_id: int, keys: list[NaturalKey], source_system: str, source_ids: list[str]
) -> tuple[dict[NaturalKey, int], dict[str, StoredVersion]]:
    """The patient's current readings by natural key, and by source reading id of ``source_system``
    (for duplicates and new versions); never another patient's."""
    by_key: dict[NaturalKey, int] = {}
    if keys:
        instants = sorted({key[1] for key in keys})
        statement = select_columns(*_READING_KEY).where(
            _reading.patient_id == patient_id,
            _CURRENT,
            _reading.measured_at >= instants[0],
            _reading.measured_at <= instants[-1],
            _reading.kind.in_({key[0] for key in keys}),
        )
        wanted = set(keys)
        for row_id, kind, at, device, values in session.execute(statement):
            if (kind, at, device, values) in wanted and row_id is not None:
                by_key[(kind, at, device, values)] = int(row_id)
    by_source: dict[str, StoredVersion] = {}
    if source_ids:
        statement2 = select_columns(
            _reading.id,
            _reading.source_reading_id,
            _reading.kind,
            _reading.source,
            _reading.measured_at,
            _reading.device_key,
            _reading.value_key,
            _reading.retracted_at,
        ).where(
            _reading.patient_id == patient_id,
            _reading.source_system == source_system,
            _reading.source_reading_id.in_(source_ids),
            _CURRENT,
        )
        for row_id, source_id, kind, source, at, device, values, retracted_at in session.execute(statement2):
            if row_id is not None and source_id is not None:
                content = (kind, source, at, device, values)
                by_source[source_id] = StoredVersion(int(row_id), content, retracted_at is not None)
    return by_key, by_source


def current_reading_id(session: Session, patient_id: int, key: NaturalKey) -> int | None:
    """The patient's current reading with this natural key."""
    kind, at, device, values = key
    statement = select(Reading.id).where(
        Reading.patient_id == patient_id,
        Reading.kind == kind,
        Reading.measured_at == at,
        Reading.device_key == device,
        Reading.value_key == values,
        _CURRENT,
    )
    return session.exec(statement).first()


def supersede_reading(session: Session, reading_id: int, now: datetime) -> None:
    """Mark a reading superseded: it is kept, and no history read sees it."""
    session.execute(update(Reading).where(col(Reading.id) == reading_id).values(superseded_at=now))


def link_new_version(session: Session, reading_id: int, new_version_id: int) -> None:
    """Record which reading replaced a superseded one."""
    statement = update(Reading).where(col(Reading.id) == reading_id)
    session.execute(statement.values(superseded_by=new_version_id))


def supersede_encounter_readings(session: Session, encounter_id: int, now: datetime) -> None:
    """Every current reading of a visit is superseded (a re-sent visit brings their replacements)."""
    statement = update(Reading).where(col(Reading.encounter_id) == encounter_id, _CURRENT)
    session.execute(statement.values(superseded_at=now))


def retract_reading(session: Session, reading_id: int, now: datetime) -> None:
    session.execute(update(Reading).where(col(Reading.id) == reading_id).values(retracted_at=now))


def reading_of(session: Session, patient_id: int, reading_id: int) -> Reading | None:
    """The patient's reading with this id (any version), or None (another patient's too)."""
    reading = session.get(Reading, reading_id)
    return reading if reading is not None and reading.patient_id == patient_id else None


def current_reading_by_source_id(
    session: Session, patient_id: int, source_system: str, source_reading_id: str
) -> Reading | None:
    statement = select(Reading).where(
        Reading.patient_id == patient_id,
        Reading.source_system == source_system,
        Reading.source_reading_id == source_reading_id,
        _CURRENT,
    )
    return session.exec(statement).first()


class VisitContent(NamedTuple):
    """What a stored visit says: its time, its current readings (kind, source, measured_at,
    value_key), its symptom codes, its recorded checks and what it recorded of the medication
    (reviewed, adherence, adverse reaction, its text)."""

    at: datetime
    readings: frozenset[tuple[str, str, datetime, str]]
    symptoms: frozenset[str]
    checks: frozenset[str]
    medication: tuple[bool, str | None, bool | None, str | None] = (False, None, None, None)


def visit_content(session: Session, encounter: Encounter) -> VisitContent:
    assert encounter.id is not None
    readings = select(Reading.kind, Reading.source, Reading.measured_at, Reading.value_key).where(
        Reading.encounter_id == encounter.id, _CURRENT, col(Reading.retracted_at).is_(None)
    )
    symptoms = select(SymptomReport.code).where(SymptomReport.encounter_id == encounter.id)
    checks = select(CareCheckRecord.kind).where(CareCheckRecord.encounter_id == encounter.id)
    return VisitContent(
        encounter.at,
        frozenset((kind, source, at, values) for kind, source, at, values in session.execute(readings)),
        frozenset(session.exec(symptoms).all()),
        frozenset(session.exec(checks).all()),
        medication_of(encounter),
    )


def medication_of(encounter: Encounter) -> tuple[bool, str | None, bool | None, str | None]:
    return (
        encounter.medications_reviewed,
        encounter.adherence,
        encounter.adverse_reaction,
        encounter.adverse_reaction_text,
    )


def clear_visit_symptoms_and_checks(session: Session, encounter_id: int) -> None:
    """A re-sent visit's symptoms and checks replace those stored with it."""
    session.execute(delete(SymptomReport).where(col(SymptomReport.encounter_id) == encounter_id))
    session.execute(delete(CareCheckRecord).where(col(CareCheckRecord.encounter_id) == encounter_id))


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


def medication_answers(session: Session, patient_id: int, limit: int) -> list[Encounter]:
    """The patient's newest ``limit`` visits that recorded anything of the medication (reviewed,
    adherence or an adverse-reaction answer), newest first."""
    statement = (
        select(Encounter)
        .where(
            Encounter.patient_id == patient_id,
            col(Encounter.medications_reviewed)
            | col(Encounter.adherence).is_not(None)
            | col(Encounter.adverse_reaction).is_not(None),
        )
        .order_by(col(Encounter.at).desc(), col(Encounter.id).desc())
        .limit(limit)
    )
    return list(session.exec(statement))
