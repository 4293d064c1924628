"""Recording what arrives: readings, clinic visits, examinations and symptoms, each stored once.

Like the use-cases of :mod:`pathway.service`, these never commit: the caller stores the readings
and the reassessment that follows (:func:`pathway.service.reassess_after_ingest`) atomically.
Each incoming reading is validated and put in canonical units (:func:`pathway.history.measure_incoming`)
under the tables of the pack in force (:class:`pathway.service.PathwayConfig`).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlmodel import Session

from pathway import repository
from pathway.errors import FutureTimestamp, InvalidInput, PathwayError
from pathway.history import Measurement, measure_incoming
from pathway.ingest import (
    CheckIn,
    EncounterIn,
    EncounterReadingIn,
    InvalidReading,
    ItemError,
    ItemResult,
    ReadingIn,
    SymptomIn,
)
from pathway.models import Encounter as EncounterRow
from pathway.models import Patient
from pathway.service import PathwayConfig
from pathway.vocabulary import CareCheck, ReadingSource


def record_readings(
    session: Session,
    patient: Patient,
    items: Sequence[ReadingIn | InvalidReading],
    *,
    source_system: str,
    config: PathwayConfig,
    now: datetime,
) -> list[ItemResult]:
    """Validate and store each reading once; one bad item never fails the others.

    The valid readings go in with one multi-row ``INSERT … ON CONFLICT DO NOTHING``; those the
    database skipped (already stored, or twice in this batch) are reported as duplicates with the
    id of the stored row. An :class:`InvalidReading` (an item that failed request validation) is
    rejected as ``invalid-input`` (``unknown-code`` for a value outside a vocabulary) naming
    ``readings.<index>.<field>``; nothing of it is stored.
    """
    assert patient.id is not None
    results: dict[int, ItemResult] = {}
    rows: dict[int, dict[str, Any]] = {}
    for index, item in enumerate(items):
        prefix = f"readings.{index}"
        try:
            if isinstance(item, InvalidReading):
                raise item.at(prefix)
            measurement = _measure(item, item.source, item.measured_at, config, now, prefix)
        except PathwayError as error:
            results[index] = ItemResult(index=index, status="rejected", error=ItemError(**error.as_dict()))
            continue
        rows[index] = _reading_row(patient.id, measurement, item, source_system, now)
    created = repository.insert_readings_once(session, list(rows.values()))
    claimed: set[repository.NaturalKey] = set()
    leftovers: dict[int, dict[str, Any]] = {}
    for index, row in rows.items():
        key = repository.natural_key(row)
        if key in created and key not in claimed:
            claimed.add(key)
            results[index] = ItemResult(index=index, status="created", reading_id=created[key])
        else:
            leftovers[index] = row
    if leftovers:
        by_key, by_source = repository.stored_reading_ids(
            session,
            patient.id,
            [repository.natural_key(r) for r in leftovers.values()],
            source_system,
            [r["source_reading_id"] for r in leftovers.values() if r["source_reading_id"] is not None],
        )
        for index, row in leftovers.items():
            stored = by_key.get(repository.natural_key(row))
            if stored is None and row["source_reading_id"] is not None:
                stored = by_source.get(row["source_reading_id"])
            results[index] = ItemResult(index=index, status="duplicate", reading_id=stored)
    return [results[index] for index in range(len(items))]


def record_encounter(
    session: Session,
    patient: Patient,
    data: EncounterIn,
    *,
    source_system: str,
    config: PathwayConfig,
    now: datetime,
) -> tuple[int, bool]:
    """Store a clinic visit with its readings and symptoms, atomically and once.

    A visit is one item: a bad reading rejects the whole visit (naming the field). A visit already
    stored under the same (source_system, source_encounter_id) is not stored again.
    """
    assert patient.id is not None
    if data.source_encounter_id is not None:
        existing = repository.encounter_by_source_id(session, source_system, data.source_encounter_id)
        if existing is not None and existing.id is not None:
            if existing.patient_id != patient.id:
                raise InvalidInput(
                    "this source_encounter_id belongs to another patient", "source_encounter_id"
                )
            return existing.id, False
    if data.at - now > timedelta(minutes=config.plausibility.max_future_minutes):
        raise FutureTimestamp(f"visit at {data.at.isoformat()} is in the future", "at")
    measurements = [
        _measure(item, ReadingSource.CLINIC, item.measured_at or data.at, config, now, f"readings.{index}")
        for index, item in enumerate(data.readings)
    ]
    encounter = EncounterRow(
        patient_id=patient.id,
        at=data.at,
        source_system=source_system,
        source_encounter_id=data.source_encounter_id,
        received_at=now,
    )
    repository.add(session, encounter)
    assert encounter.id is not None
    rows = [_reading_row(patient.id, measurement, None, source_system, now) for measurement in measurements]
    for row in rows:
        row["encounter_id"] = encounter.id
    repository.insert_readings_once(session, rows)
    for code in dict.fromkeys(data.symptoms):
        repository.insert_symptom_once(
            session,
            {"patient_id": patient.id, "encounter_id": encounter.id, "code": code.value, "at": data.at},
        )
    for check in dict.fromkeys(data.checks):
        repository.insert_check_once(
            session, _check_row(patient.id, check, data.at, source_system, now, encounter.id)
        )
    return encounter.id, True


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
        repository.insert_check_once(
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
        repository.insert_symptom_once(
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
        "source_system": source_system,
        "source_reading_id": item.source_reading_id if item else None,
    }


def _float(value: Decimal | None) -> float | None:
    return float(value) if value is not None else None
