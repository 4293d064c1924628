"""SQL of prescriptions (PATHWAY.md §7) as they arrive: the current version under a source id,
new versions, stops, retractions, and a patient's list.

Part of the repository layer: functions take a Session and never commit (:mod:`pathway.ingest.prescribing`
is its use-case). The history read of them is :mod:`pathway.patients.history_store`'s.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlmodel import Session, col, select

from pathway.store.tables import Patient, PrescriptionRecord

_CURRENT = col(PrescriptionRecord.superseded_at).is_(None)


def current_by_source_ids(
    session: Session, patient_id: int, source_system: str, source_ids: Sequence[str]
) -> dict[str, PrescriptionRecord]:
    """The patient's current version of each prescription with these source ids of ``source_system``
    (retracted ones included: a retry of one is a duplicate)."""
    if not source_ids:
        return {}
    statement = select(PrescriptionRecord).where(
        PrescriptionRecord.patient_id == patient_id,
        PrescriptionRecord.source_system == source_system,
        col(PrescriptionRecord.source_prescription_id).in_(sorted(set(source_ids))),
        _CURRENT,
    )
    return {row.source_prescription_id: row for row in session.exec(statement)}


def insert_prescription(session: Session, values: dict[str, Any]) -> PrescriptionRecord:
    row = PrescriptionRecord(**values)
    session.add(row)
    session.flush()
    return row


def supersede(session: Session, row: PrescriptionRecord, now: datetime) -> None:
    """Mark a version superseded (kept; a replay of a moment before ``now`` still sees it). Flushed,
    so that it has left the identity index before its new version is inserted."""
    row.superseded_at = now
    session.add(row)
    session.flush()


def link_new_version(session: Session, row: PrescriptionRecord, new_version: PrescriptionRecord) -> None:
    row.superseded_by = new_version.id
    session.add(row)


def retract(session: Session, row: PrescriptionRecord, now: datetime) -> None:
    row.retracted_at = now
    session.add(row)


def prescription_of(session: Session, patient_id: int, prescription_id: int) -> PrescriptionRecord | None:
    """The patient's prescription version with this id, or None (another patient's too)."""
    row = session.get(PrescriptionRecord, prescription_id)
    return row if row is not None and row.patient_id == patient_id else None


def patient_prescriptions(session: Session, patient_id: int) -> list[PrescriptionRecord]:
    """The patient's current, unretracted prescriptions, newest start first."""
    statement = (
        select(PrescriptionRecord)
        .where(
            PrescriptionRecord.patient_id == patient_id,
            _CURRENT,
            col(PrescriptionRecord.retracted_at).is_(None),
        )
        .order_by(col(PrescriptionRecord.started_on).desc(), col(PrescriptionRecord.id).desc())
    )
    return list(session.exec(statement))


def mark_has_prescriptions(session: Session, patient: Patient) -> None:
    if not patient.has_prescriptions:
        patient.has_prescriptions = True
        session.add(patient)
