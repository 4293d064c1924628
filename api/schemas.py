"""Response models of the API (request models are pathway.ingest's)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from pydantic import BaseModel, Field

from api.referrals import ReferralRead
from pathway.ingest import ItemResult
from pathway.models import AssessmentRecord, Patient


class PatientRead(BaseModel):
    id: int
    source_system: str
    external_id: str
    name: str | None
    sex: str
    birth_date: date
    conditions: list[str]
    smoker: bool
    pregnant: bool

    @classmethod
    def of(cls, patient: Patient) -> PatientRead:
        assert patient.id is not None
        return cls(
            id=patient.id,
            source_system=patient.source_system,
            external_id=patient.external_id,
            name=patient.name,
            sex=patient.sex,
            birth_date=patient.birth_date,
            conditions=list(patient.conditions),
            smoker=patient.smoker,
            pregnant=patient.pregnant,
        )


class AssessmentRead(BaseModel):
    """One stored assessment: tier, level, referral, follow-up, reasons and tasks, with provenance."""

    id: int
    patient_id: int
    evaluated_at: datetime
    pack_id: str
    pack_version: str
    pack_sha256: str
    tier: str
    level: str
    referral_urgency: str | None
    follow_up_due: date
    result: dict[str, Any] = Field(description="the full assessment as `pathway evaluate` prints it")

    @classmethod
    def of(cls, record: AssessmentRecord) -> AssessmentRead:
        assert record.id is not None
        return cls(
            id=record.id,
            patient_id=record.patient_id,
            evaluated_at=record.evaluated_at,
            pack_id=record.pack_id,
            pack_version=record.pack_version,
            pack_sha256=record.pack_sha256,
            tier=record.tier,
            level=record.level,
            referral_urgency=record.referral_urgency,
            follow_up_due=record.follow_up_due,
            result=record.result,
        )


class PatientSummary(BaseModel):
    """The patient, the current tier with its reasons and next follow-up, and any active referral."""

    patient: PatientRead
    assessment: AssessmentRead | None
    active_referral: ReferralRead | None = None


class BatchResult(BaseModel):
    """Per-item outcome of a batch: created, duplicate (already stored) or rejected (with the error)."""

    created: int
    duplicate: int
    rejected: int
    items: list[ItemResult]
    assessment: AssessmentRead


class EncounterResult(BaseModel):
    encounter_id: int
    created: bool = Field(description="false when the visit was already stored under its source id")
    assessment: AssessmentRead
