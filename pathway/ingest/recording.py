"""Recording what arrives: readings, clinic visits, examinations and symptoms, each stored once.

Like the use-cases of :mod:`pathway.patients.reassessment`, these never commit: the caller stores the
readings and the reassessment that follows (:func:`pathway.patients.reassessment.reassess_after_ingest`)
atomically.
Each incoming reading is validated and put in canonical units
(:func:`pathway.clinical.history.measure_incoming`)
under the tables of the pack in force (:class:`pathway.patients.reassessment.PathwayConfig`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, Literal

from sqlmodel import Session

from pathway.access import permissions
from pathway.access.permissions import Caller, Role
from pathway.clinical.errors import (
    FutureTimestamp,
    InvalidInput,
    PathwayError,
    ReadingSuperseded,
    UnknownReading,
)
from pathway.clinical.history import Measurement, measure_incoming
from pathway.clinical.vocabulary import CareCheck, ReadingSource
from pathway.ingest import record_store
from pathway.ingest.inbound import (
    CheckIn,
    EncounterIn,
    EncounterReadingIn,
    InvalidReading,
    ItemError,
    ItemResult,
    ReadingIn,
    SymptomIn,
)
from pathway.patients.reassessment import PathwayConfig
from pathway.store import db
from pathway.store.tables import Encounter as EncounterRow
from pathway.store.tables import Patient, Reading

VisitOutcome = Literal["created", "duplicate", "amended"]


def record_readings(
    session: Session,
    patient: Patient,
    items: Sequence[ReadingIn | InvalidReading],
    *,
    source_system: str,
    config: PathwayConfig,
    now: datetime,
    caller: Caller | None = None,
    prefix: str = "readings",
) -> list[ItemResult]:
    """Validate and store each reading once; one bad item never fails the others.

    The valid readings go in with one multi-row ``INSERT … ON CONFLICT DO NOTHING``. One the
    database skipped is a duplicate of the patient's stored reading with the same natural key (kind,
    instant, device, value), or with the same source reading id of ``source_system`` and the same
    content; with the same source id and another content it is a new version (``amended``): the
    stored one is superseded (kept, seen by no history read) and this one stored in its place. An
    :class:`InvalidReading` (an item that failed request validation) is rejected as
    ``invalid-input`` (``unknown-code`` for a value outside a vocabulary) naming
    ``<prefix>.<index>.<field>``; with ``caller``, a source its role may not post is rejected as
    ``source-not-allowed``. Nothing of a rejected item is stored.
    """
    assert patient.id is not None
    results: dict[int, ItemResult] = {}
    rows: dict[int, dict[str, Any]] = {}
    for index, item in enumerate(items):
        where = f"{prefix}.{index}"
        try:
            if isinstance(item, InvalidReading):
                raise item.at(where)
            if caller is not None:
                permissions.require_source(caller, item.source, f"{where}.source")
            measurement = _measure(item, item.source, item.measured_at, config, now, where)
        except PathwayError as error:
            results[index] = ItemResult(index=index, status="rejected", error=ItemError(**error.as_dict()))
            continue
        rows[index] = _reading_row(patient.id, measurement, item, source_system, now)
    created = record_store.insert_readings_once(session, list(rows.values()))
    claimed: set[record_store.NaturalKey] = set()
    leftovers: dict[int, dict[str, Any]] = {}
    for index, row in rows.items():
        key = record_store.natural_key(row)
        if key in created and key not in claimed:
            claimed.add(key)
            results[index] = ItemResult(index=index, status="created", reading_id=created[key])
        else:
            leftovers[index] = row
    if leftovers:
        by_key, by_source = record_store.stored_readings(
            session,
            patient.id,
            [record_store.natural_key(r) for r in leftovers.values()],
            source_system,
            [r["source_reading_id"] for r in leftovers.values() if r["source_reading_id"] is not None],
        )
        for index, row in leftovers.items():
            source_id = row["source_reading_id"]
            prior = by_source.get(source_id) if source_id is not None else None
            if prior is not None and prior.content != record_store.content_of(row):
                new_id = _new_version(session, patient.id, prior.id, row, now)
                by_source[source_id] = record_store.StoredVersion(new_id, record_store.content_of(row), False)
                results[index] = ItemResult(
                    index=index, status="amended", reading_id=new_id, supersedes=prior.id
                )
                continue
            stored = prior.id if prior is not None else by_key.get(record_store.natural_key(row))
            results[index] = ItemResult(index=index, status="duplicate", reading_id=stored)
    return [results[index] for index in range(len(items))]


def _new_version(session: Session, patient_id: int, prior_id: int, row: dict[str, Any], now: datetime) -> int:
    """Supersede ``prior_id`` by the reading ``row``; the id of the current version (``row``'s, or
    the patient's current reading that already says what ``row`` says)."""
    record_store.supersede_reading(session, prior_id, now)
    key = record_store.natural_key(row)
    new_id = record_store.insert_readings_once(session, [row]).get(key)
    if new_id is None:
        new_id = record_store.current_reading_id(session, patient_id, key)
    assert new_id is not None
    record_store.link_new_version(session, prior_id, new_id)
    return new_id


def retract_readings(
    session: Session,
    patient: Patient,
    source_ids: Sequence[tuple[int, str]],
    *,
    source_system: str,
    now: datetime,
    field: Callable[[int], str],
) -> list[ItemResult]:
    """Retract the patient's current readings with these (index, source reading id) of
    ``source_system`` (FHIR ``entered-in-error`` / ``cancelled``): kept, seen by no history read.

    One already retracted is a ``duplicate``; an id of no reading of the patient's is rejected as
    ``unknown-reading`` naming ``field(index)``.
    """
    assert patient.id is not None
    results: list[ItemResult] = []
    for index, source_id in source_ids:
        stored = record_store.current_reading_by_source_id(session, patient.id, source_system, source_id)
        if stored is None or stored.id is None:
            error = UnknownReading(f"no reading of this patient's with source id {source_id!r}", field(index))
            results.append(ItemResult(index=index, status="rejected", error=ItemError(**error.as_dict())))
        elif stored.retracted_at is not None:
            results.append(ItemResult(index=index, status="duplicate", reading_id=stored.id))
        else:
            record_store.retract_reading(session, stored.id, now)
            results.append(ItemResult(index=index, status="retracted", reading_id=stored.id))
    return results


def retract_reading(
    session: Session, patient: Patient, reading_id: int, *, caller: Caller, now: datetime
) -> tuple[Reading, bool]:
    """Retract one of the patient's readings by its id (``DELETE …/readings/{id}``); the reading,
    and whether this retracted it (False: it was already). A gateway retracts only readings of its
    own source system (403); a superseded version is 409 (retract the current one); a reading of
    another patient's, or none, is 404."""
    assert patient.id is not None
    reading = record_store.reading_of(session, patient.id, reading_id)
    if reading is None or reading.id is None:
        raise UnknownReading("no reading of this patient's with this id", "reading_id")
    if caller.role is Role.GATEWAY and reading.source_system != caller.source_system:
        raise permissions.Forbidden("a gateway retracts only the readings it posted", "reading_id")
    if reading.superseded_at is not None:
        raise ReadingSuperseded(
            f"this reading was superseded by reading {reading.superseded_by}: retract that one", "reading_id"
        )
    if reading.retracted_at is not None:
        return reading, False
    record_store.retract_reading(session, reading.id, now)
    reading.retracted_at = now
    return reading, True


def record_encounter(
    session: Session,
    patient: Patient,
    data: EncounterIn,
    *,
    source_system: str,
    config: PathwayConfig,
    now: datetime,
) -> tuple[int, VisitOutcome]:
    """Store a clinic visit with its readings and symptoms, atomically and once.

    A visit is one item: a bad reading rejects the whole visit (naming the field). A visit already
    stored under the same (source_system, source_encounter_id) is not stored again when it says the
    same (``duplicate``); when it says something else (its time, a reading, a symptom, a check) it
    replaces the stored one (``amended``): the stored readings are superseded (kept, seen by no
    history read) by the new ones, and the symptoms and checks recorded with it are the new ones.
    """
    assert patient.id is not None
    existing: EncounterRow | None = None
    if data.source_encounter_id is not None:
        existing = record_store.encounter_by_source_id(session, source_system, data.source_encounter_id)
        if existing is not None and existing.patient_id != patient.id:
            raise InvalidInput("this source_encounter_id belongs to another patient", "source_encounter_id")
    if data.at - now > timedelta(minutes=config.plausibility.max_future_minutes):
        raise FutureTimestamp(f"visit at {data.at.isoformat()} is in the future", "at")
    if data.adverse_reaction_text is not None and data.adverse_reaction is not True:
        raise InvalidInput(
            "an adverse reaction's text goes with adverse_reaction true", "adverse_reaction_text"
        )
    medication = (
        data.medications_reviewed,
        data.adherence.value if data.adherence is not None else None,
        data.adverse_reaction,
        data.adverse_reaction_text,
    )
    measurements = [
        _measure(item, ReadingSource.CLINIC, item.measured_at or data.at, config, now, f"readings.{index}")
        for index, item in enumerate(data.readings)
    ]
    rows = [_reading_row(patient.id, measurement, None, source_system, now) for measurement in measurements]
    if existing is not None and existing.id is not None:
        stored = record_store.visit_content(session, existing)
        sent = record_store.VisitContent(
            data.at,
            frozenset((r["kind"], r["source"], r["measured_at"], r["value_key"]) for r in rows),
            frozenset(code.value for code in data.symptoms),
            frozenset(check.value for check in data.checks),
            medication,
        )
        if sent == stored:
            return existing.id, "duplicate"
        record_store.supersede_encounter_readings(session, existing.id, now)
        record_store.clear_visit_symptoms_and_checks(session, existing.id)
        existing.at = data.at
        existing.received_at = now
        encounter = existing
    else:
        encounter = EncounterRow(
            patient_id=patient.id,
            at=data.at,
            source_system=source_system,
            source_encounter_id=data.source_encounter_id,
            received_at=now,
        )
    reviewed, adherence, adverse, adverse_text = medication
    encounter.medications_reviewed, encounter.adherence = reviewed, adherence
    encounter.adverse_reaction, encounter.adverse_reaction_text = adverse, adverse_text
    db.add(session, encounter)
    assert encounter.id is not None
    for row in rows:
        row["encounter_id"] = encounter.id
    record_store.insert_readings_once(session, rows)
    for code in dict.fromkeys(data.symptoms):
        record_store.insert_symptom_once(
            session,
            {"patient_id": patient.id, "encounter_id": encounter.id, "code": code.value, "at": data.at},
        )
    for check in dict.fromkeys(data.checks):
        record_store.insert_check_once(
            session, _check_row(patient.id, check, data.at, source_system, now, encounter.id)
        )
    return encounter.id, "amended" if existing is not None else "created"


def record_checks(
    session: Session,
    patient: Patient,
    items: Sequence[CheckIn],
    *,
    source_system: str,
    config: PathwayConfig,
    now: datetime,
) -> None:
    """Record examinations as done, once each (patient, kind, time); future ones are rejected."""
    assert patient.id is not None
    _none_in_the_future([item.at for item in items], "check recorded", "checks", config, now)
    for item in items:
        record_store.insert_check_once(
            session, _check_row(patient.id, item.kind, item.at, source_system, now, None)
        )


def _check_row(
    patient_id: int,
    kind: CareCheck,
    at: datetime,
    source_system: str,
    now: datetime,
    encounter_id: int | None,
) -> dict[str, Any]:
    return {
        "patient_id": patient_id,
        "encounter_id": encounter_id,
        "kind": kind.value,
        "at": at,
        "source_system": source_system,
        "received_at": now,
    }


def record_symptoms(
    session: Session, patient: Patient, items: Sequence[SymptomIn], *, config: PathwayConfig, now: datetime
) -> None:
    """Store reported symptoms once each (patient, code, time); future reports are rejected."""
    assert patient.id is not None
    _none_in_the_future([item.at for item in items], "symptom reported", "symptoms", config, now)
    for item in items:
        record_store.insert_symptom_once(
            session, {"patient_id": patient.id, "encounter_id": None, "code": item.code.value, "at": item.at}
        )


def _none_in_the_future(
    moments: Sequence[datetime], what: str, field: str, config: PathwayConfig, now: datetime
) -> None:
    """Refuse the whole request if any moment is past the pack's tolerance for clocks running ahead
    (the error names ``<field>.<index>.at``)."""
    limit = timedelta(minutes=config.plausibility.max_future_minutes)
    for index, at in enumerate(moments):
        if at - now > limit:
            raise FutureTimestamp(f"{what} for {at.isoformat()}, in the future", f"{field}.{index}.at")


def _measure(
    item: ReadingIn | EncounterReadingIn,
    source: ReadingSource,
    at: datetime,
    config: PathwayConfig,
    now: datetime,
    prefix: str,
) -> Measurement:
    """A validated canonical measurement of one incoming reading (errors name ``prefix.<field>``)."""
    return measure_incoming(
        item,
        source=source,
        at=at,
        units=config.units,
        plausibility=config.plausibility,
        received_at=now,
        field_prefix=prefix,
    )


def _reading_row(
    patient_id: int, m: Measurement, item: ReadingIn | None, source_system: str, now: datetime
) -> dict[str, Any]:
    return {
        "patient_id": patient_id,
        "kind": m.kind.value,
        "source": m.source.value,
        "measured_at": m.at,
        "received_at": now,
        "value": _float(m.value),
        "systolic": _float(m.systolic),
        "diastolic": _float(m.diastolic),
        "pulse": _float(m.pulse),
        "unit_received": m.unit_received,
        "values_received": [str(v) for v in m.received],
        "device_id": item.device_id if item else None,
        "device_key": (item.device_id or "") if item else "",
        "value_key": value_key(m.value, m.systolic, m.diastolic, m.pulse),
        "source_system": source_system,
        "source_reading_id": item.source_reading_id if item else None,
    }


def value_key(*values: Decimal | float | None) -> str:
    """A reading's canonical value(s), in its natural key: ``repr`` of each as stored (a float),
    ``""`` for none, joined by ``/``. The migration that added it (0014) fills it the same way."""
    return "/".join("" if value is None else repr(float(value)) for value in values)


def _float(value: Decimal | None) -> float | None:
    return float(value) if value is not None else None
