"""The SQL of the population re-tier (:mod:`pathway.patients.retier`): the next batch of managed
patients in id order, and the pack and tier of each one's newest assessment, one query a batch.

Part of the repository layer: functions take a Session and never commit.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlmodel import Session, SQLModel

from pathway.clinical.vocabulary import PatientStatus
from pathway.store.sql import among
from pathway.store.tables import AssessmentRecord, Patient

_patient = SQLModel.metadata.tables[Patient.__tablename__].c
_assessment = SQLModel.metadata.tables[AssessmentRecord.__tablename__].c


@dataclass(frozen=True)
class NewestAssessment:
    """What the re-tier needs of a patient's newest assessment: the pack it was made under, its tier
    and referral urgency (what the events of the next one compare with)."""

    pack_id: str
    pack_version: str
    pack_sha256: str
    tier: str
    referral_urgency: str | None


def managed_patients_after(
    session: Session, after_id: int, limit: int, part: int = 0, parts: int = 1
) -> list[int]:
    """Up to ``limit`` ids of managed (active) patients after ``after_id``, ascending; with ``parts``
    > 1, only those whose id is ``part`` modulo ``parts`` (one share of the population a process)."""
    statement = select(_patient.id).where(
        _patient.id > after_id, _patient.status == PatientStatus.ACTIVE.value
    )
    if parts > 1:
        statement = statement.where(_patient.id % parts == part)
    return [int(i) for i in session.execute(statement.order_by(_patient.id).limit(limit)).scalars()]


def newest_assessments(session: Session, patient_ids: Sequence[int]) -> dict[int, NewestAssessment]:
    """The newest stored assessment of each of ``patient_ids`` that has one (by id: a patient's
    writes take turns), in one query."""
    if not patient_ids:
        return {}
    newest = (
        select(func.max(_assessment.id))
        .where(among(session, _assessment.patient_id, patient_ids))
        .group_by(_assessment.patient_id)
    )
    statement = select(
        _assessment.patient_id,
        _assessment.pack_id,
        _assessment.pack_version,
        _assessment.pack_sha256,
        _assessment.tier,
        _assessment.referral_urgency,
    ).where(_assessment.id.in_(newest))
    return {int(row[0]): NewestAssessment(*row[1:]) for row in session.execute(statement)}


def lock_patients_if_free(session: Session, patient_ids: Sequence[int]) -> list[Patient]:
    """The patients of ``patient_ids`` no other transaction is writing to, each with its write lock
    until the transaction ends (``SKIP LOCKED``: a patient being written to is left to that write,
    which assesses it under the pack in force; SQLite has one writer, so there every one is free)."""
    if not patient_ids:
        return []
    statement = (
        select(Patient)
        .where(among(session, _patient.id, patient_ids))
        .order_by(_patient.id)
        .with_for_update(key_share=True, skip_locked=True)  # the lock every patient write takes
        .execution_options(populate_existing=True)
    )
    return list(session.scalars(statement))


def managed_patient_count(session: Session) -> int:
    statement = select(func.count()).select_from(Patient).where(_patient.status == PatientStatus.ACTIVE.value)
    return int(session.execute(statement).scalar_one())
