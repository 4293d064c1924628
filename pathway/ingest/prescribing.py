"""Recording prescriptions (PATHWAY.md §7): each stored once per (patient, source system, source
prescription id), a change or a stop a new version, an entered-in-error one retracted.

Like :mod:`pathway.ingest.recording`, these never commit: the caller stores the prescriptions and
the reassessment that follows (:func:`pathway.patients.reassessment.reassess_after_ingest`) atomically.
A pack without a medication table (``PathwayConfig.medication`` None) refuses prescriptions.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlmodel import Session

from pathway.clinical.clock import clinic_date
from pathway.clinical.errors import FutureTimestamp, InvalidInput, PathwayError, UnknownCode
from pathway.clinical.medication import MedicationClass, MedicationTable
from pathway.ingest import prescription_store
from pathway.ingest.inbound import InvalidReading, ItemError
from pathway.ingest.medication_in import PrescriptionIn, PrescriptionItemResult
from pathway.patients.reassessment import PathwayConfig
from pathway.store.tables import Patient, PrescriptionRecord

_CLASS_ORDER = list(MedicationClass)


class MedicationNotInPack(PathwayError):
    """The pack in force knows no medication (no §7 table): prescriptions cannot be read."""

    code = "medication-not-in-pack"
    status = 422


class UnknownPrescription(PathwayError):
    code = "unknown-prescription"
    status = 404


class PrescriptionSuperseded(PathwayError):
    code = "prescription-superseded"
    status = 409


@dataclass(frozen=True)
class Retraction:
    """A prescription withdrawn (FHIR entered-in-error) by its source id."""

    source_prescription_id: str


def medication_table(config: PathwayConfig, field: str | None = None) -> MedicationTable:
    if config.medication is None:
        raise MedicationNotInPack(
            f"the pack in force ({config.pack.id} {config.pack.version}) has no medication table", field
        )
    return config.medication


def record_prescriptions(
    session: Session,
    patient: Patient,
    items: Sequence[PrescriptionIn | InvalidReading | Retraction],
    *,
    source_system: str,
    config: PathwayConfig,
    now: datetime,
    field: Callable[[int], str] = lambda index: f"prescriptions.{index}",
) -> list[PrescriptionItemResult]:
    """Validate and store each prescription once; one bad item never fails the others.

    An item whose source id has no current version is ``created``; one whose current version says
    the same is a ``duplicate`` (a retracted one stays retracted); one that says something else
    (another drug, dose, supply, a stop) is ``updated``: a new version supersedes the stored one
    (kept; a replay of an earlier moment sees it). A :class:`Retraction` retracts the current
    version (``retracted``; an unknown id is rejected as ``unknown-prescription``). A bad item is
    ``rejected`` naming ``field(index).<field>`` and nothing of it is stored.
    """
    assert patient.id is not None
    table = medication_table(config)
    today = clinic_date(now, config.tz)
    source_ids = [item.source_prescription_id for item in items if not isinstance(item, InvalidReading)]
    current = prescription_store.current_by_source_ids(session, patient.id, source_system, source_ids)
    results: list[PrescriptionItemResult] = []
    for index, item in enumerate(items):
        where = field(index)
        try:
            if isinstance(item, InvalidReading):
                raise item.at(where)
            if isinstance(item, Retraction):
                results.append(_retract(session, current.get(item.source_prescription_id), index, where, now))
                continue
            values = _values(item, table, today, where)
        except PathwayError as error:
            results.append(
                PrescriptionItemResult(index=index, status="rejected", error=ItemError(**error.as_dict()))
            )
            continue
        prior = current.get(item.source_prescription_id)
        if prior is not None and _content(prior) == values:
            results.append(PrescriptionItemResult(index=index, status="duplicate", prescription_id=prior.id))
            continue
        row = _store(session, patient, prior, values, source_system, item.source_prescription_id, now)
        current[item.source_prescription_id] = row
        status = "updated" if prior is not None else "created"
        supersedes = prior.id if prior is not None else None
        results.append(
            PrescriptionItemResult(index=index, status=status, prescription_id=row.id, supersedes=supersedes)
        )
    return results


def check_prescription(item: PrescriptionIn, *, config: PathwayConfig, now: datetime, where: str) -> None:
    """Raise what :func:`record_prescriptions` would reject ``item`` for (its error naming
    ``where.<field>``): a single FHIR resource is refused whole, as a single Observation is."""
    _values(item, medication_table(config), clinic_date(now, config.tz), where)


def stop_prescription(
    session: Session,
    patient: Patient,
    prescription_id: int,
    stopped_on: date,
    *,
    config: PathwayConfig,
    now: datetime,
) -> tuple[PrescriptionRecord, bool]:
    """Record that one of the patient's prescriptions (by its id) was stopped: a new version with
    ``stopped_on``; the current version, and whether this changed it. A superseded version is 409
    (stop the current one), a prescription of another patient's or none 404."""
    assert patient.id is not None
    medication_table(config)  # the classes stored stay as they were, but the pack must know medication
    row = _current_version(session, patient, prescription_id, "stop")
    if row.stopped_on == stopped_on:
        return row, False
    values = {**_content(row), "stopped_on": stopped_on}
    _check_dates(values["started_on"], stopped_on, clinic_date(now, config.tz), "")
    new = _store(session, patient, row, values, row.source_system, row.source_prescription_id, now)
    return new, True


def change_prescription(
    session: Session,
    patient: Patient,
    prescription_id: int,
    change: PrescriptionIn,
    *,
    config: PathwayConfig,
    now: datetime,
) -> PrescriptionItemResult:
    """Record what one of the patient's prescriptions (by its id) now says (another drug, dose,
    supply, classes): a new version under its own source system and id, validated exactly as
    :func:`record_prescriptions` validates a batch item (``change``'s source id is not used). A
    superseded version is 409, another patient's or none 404, as for :func:`stop_prescription`."""
    assert patient.id is not None
    medication_table(config)
    row = _current_version(session, patient, prescription_id, "change")
    item = change.model_copy(update={"source_prescription_id": row.source_prescription_id})
    return record_prescriptions(
        session, patient, [item], source_system=row.source_system, config=config, now=now
    )[0]


def _current_version(
    session: Session, patient: Patient, prescription_id: int, verb: str
) -> PrescriptionRecord:
    """The prescription version with this id, if it is the patient's current one (404 / 409)."""
    assert patient.id is not None
    row = prescription_store.prescription_of(session, patient.id, prescription_id)
    if row is None or row.id is None or row.retracted_at is not None:
        raise UnknownPrescription("no prescription of this patient's with this id", "prescription_id")
    if row.superseded_at is not None:
        raise PrescriptionSuperseded(
            f"this prescription was superseded by {row.superseded_by}: {verb} that one", "prescription_id"
        )
    return row


def current_prescriptions(
    session: Session, patient: Patient, *, config: PathwayConfig, now: datetime, everything: bool = False
) -> list[PrescriptionRecord]:
    """The patient's prescriptions in force (current versions, not retracted): by default those not
    stopped by today whose supply has not lapsed past the pack's ``lapse_days`` (a lapsed supply
    counts as not taken, PATHWAY.md §7); with
    ``everything``, the stopped and lapsed ones too."""
    assert patient.id is not None
    rows = prescription_store.patient_prescriptions(session, patient.id) if patient.has_prescriptions else []
    if everything:
        return rows
    today = clinic_date(now, config.tz)
    windows = medication_table(config).windows
    lapse = None if windows is None else timedelta(days=windows.lapse_days)
    return [
        row
        for row in rows
        if (row.stopped_on is None or row.stopped_on > today)
        and (lapse is None or row.started_on + timedelta(days=row.supply_days) + lapse >= today)
    ]


def _values(item: PrescriptionIn, table: MedicationTable, today: date, where: str) -> dict[str, Any]:
    """What the prescription says, as stored (classes: sent and the ATC code's, in vocabulary order)."""
    classes = set(item.classes)
    atc = item.atc.strip().upper() if item.atc is not None else None
    if atc is not None:
        named = table.classes_of_atc(atc)
        if named is None:
            raise UnknownCode(f"ATC code {atc!r} names no medication class of the pack", f"{where}.atc")
        classes |= set(named)
    if not classes:
        raise InvalidInput("a prescription names its classes or an ATC code", f"{where}.classes")
    _check_dates(item.started_on, item.stopped_on, today, where)
    return {
        "classes": [c.value for c in sorted(classes, key=_CLASS_ORDER.index)],
        "atc_code": atc,
        "drug": item.drug,
        "dose": item.dose,
        "started_on": item.started_on,
        "supply_days": item.supply_days,
        "stopped_on": item.stopped_on,
        "traceability_codes": list(dict.fromkeys(item.traceability_codes)),
    }


def _check_dates(started_on: date, stopped_on: date | None, today: date, where: str) -> None:
    prefix = f"{where}." if where else ""
    if started_on > today:
        raise FutureTimestamp(f"started_on {started_on} is after today ({today})", f"{prefix}started_on")
    if stopped_on is not None and stopped_on > today:
        raise FutureTimestamp(f"stopped_on {stopped_on} is after today ({today})", f"{prefix}stopped_on")
    if stopped_on is not None and stopped_on < started_on:
        raise InvalidInput(
            f"stopped_on {stopped_on} is before started_on {started_on}", f"{prefix}stopped_on"
        )


def _content(row: PrescriptionRecord) -> dict[str, Any]:
    return {
        "classes": list(row.classes),
        "atc_code": row.atc_code,
        "drug": row.drug,
        "dose": row.dose,
        "started_on": row.started_on,
        "supply_days": row.supply_days,
        "stopped_on": row.stopped_on,
        "traceability_codes": list(row.traceability_codes),
    }


def _store(
    session: Session,
    patient: Patient,
    prior: PrescriptionRecord | None,
    values: dict[str, Any],
    source_system: str,
    source_id: str,
    now: datetime,
) -> PrescriptionRecord:
    """A new version (superseding ``prior``, if any) of the prescription with this source id."""
    assert patient.id is not None
    if prior is not None:  # the old version leaves the identity index before the new one enters it
        prescription_store.supersede(session, prior, now)
    row = prescription_store.insert_prescription(
        session,
        {
            **values,
            "patient_id": patient.id,
            "source_system": source_system,
            "source_prescription_id": source_id,
            "recorded_at": now,
        },
    )
    assert row.id is not None
    if prior is not None:
        prescription_store.link_new_version(session, prior, row)
    prescription_store.mark_has_prescriptions(session, patient)
    return row


def _retract(
    session: Session, row: PrescriptionRecord | None, index: int, where: str, now: datetime
) -> PrescriptionItemResult:
    if row is None or row.id is None:
        error = UnknownPrescription(
            "no prescription of this patient's with this source id", f"{where}.identifier"
        )
        return PrescriptionItemResult(index=index, status="rejected", error=ItemError(**error.as_dict()))
    if row.retracted_at is not None:
        return PrescriptionItemResult(index=index, status="duplicate", prescription_id=row.id)
    prescription_store.retract(session, row, now)
    return PrescriptionItemResult(index=index, status="retracted", prescription_id=row.id)
