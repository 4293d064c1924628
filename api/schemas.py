"""Response models of the API (request models are pathway.ingest's)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from api.referrals import ReferralRead
from pathway.clinical.vocabulary import PatientStatus
from pathway.ingest.inbound import ItemResult
from pathway.store.tables import AssessmentRecord, Patient
from pathway.store.work_tables import PatientFlag
from pathway.tasks.status import FlagKind


class PatientRead(BaseModel):
    id: int
    source_system: str
    external_id: str
    name: str | None
    phone: str | None
    sex: str
    birth_date: date
    conditions: list[str]
    smoker: bool
    pregnant: bool
    enrolled_on: date | None = Field(
        description="建档日期 (registration for the indicators); null: registered when first stored"
    )
    status: PatientStatus = Field(
        description="active, or management ended (deceased / moved): no new tasks or referrals, "
        "out of the indicators from status_changed_at on; the history stays readable"
    )
    status_changed_at: datetime | None

    @classmethod
    def of(cls, patient: Patient) -> PatientRead:
        return cls.model_validate(patient, from_attributes=True)


class PatientListItem(BaseModel):
    """A patient found by ``GET /v1/patients``, with the tier of the newest assessment."""

    id: int
    source_system: str
    external_id: str
    team_id: int | None
    name: str | None
    phone: str | None
    sex: str
    birth_date: date
    tier: str | None = Field(description="the tier of the newest assessment; null if never assessed")


class PatientListRead(BaseModel):
    """A page of the patients found (``total`` counts every match)."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "total": 1,
                    "page": 1,
                    "per_page": 50,
                    "items": [
                        {
                            "id": 42,
                            "source_system": "ehr-jimo",
                            "external_id": "370282-000123",
                            "team_id": 1,
                            "name": "王建国",
                            "phone": "+86 138-0013-8000",
                            "sex": "male",
                            "birth_date": "1958-04-10",
                            "tier": "yellow",
                        }
                    ],
                }
            ]
        }
    )
    total: int
    page: int
    per_page: int
    items: list[PatientListItem]


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

    @field_validator("evaluated_at")
    @classmethod
    def _in_utc(cls, value: datetime) -> datetime:
        """As stored: the same assessment reads the same whether just made or loaded again."""
        return value.astimezone(UTC)

    @classmethod
    def of(cls, record: AssessmentRecord) -> AssessmentRead:
        return cls.model_validate(record, from_attributes=True)


class ContactFlagRead(BaseModel):
    """An active contact flag raised by the daily run: ``missed_3m`` (no contact of any kind for 90
    days, 3个月未随访) or ``lost_to_follow_up`` (365 days, 失访). A visit or a reading after its
    ``last_contact_at`` hides it at once; the next daily run clears it."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "flag": "missed_3m",
                    "business_date": "2026-03-01",
                    "raised_at": "2026-02-28T22:00:00Z",
                    "last_contact_at": "2025-11-20T01:30:00Z",
                }
            ]
        }
    )
    flag: FlagKind
    business_date: date = Field(description="the team's day of the daily run that raised it")
    raised_at: datetime
    last_contact_at: datetime | None = Field(
        description="the last visit or reading when raised; null if none since registration"
    )

    @classmethod
    def of(cls, flag: PatientFlag) -> ContactFlagRead:
        return cls.model_validate(flag, from_attributes=True)


class PatientSummary(BaseModel):
    """The patient, the current tier with its reasons and next follow-up, any active referral and
    any active contact flag."""

    patient: PatientRead
    assessment: AssessmentRead | None
    active_referral: ReferralRead | None = None
    contact_flags: list[ContactFlagRead] = Field(
        default_factory=list, description="active flags for no contact (empty when none)"
    )
    assessment_pending: bool = Field(
        default=False, description="newer data is stored than this assessment saw (the engine failed)"
    )


class BatchResult(BaseModel):
    """Per-item outcome of a batch: created, duplicate (already stored), amended (a new version of the
    reading with that source id) or rejected (with the error)."""

    created: int
    duplicate: int
    rejected: int
    amended: int = 0
    items: list[ItemResult]
    assessment: AssessmentRead | None = Field(
        description="the new assessment; null if the rule engine failed (see assessment_pending)"
    )
    assessment_pending: bool = Field(
        default=False,
        description="the data is stored but could not be evaluated yet; the next evaluation completes it",
    )


class EncounterResult(BaseModel):
    encounter_id: int
    created: bool = Field(description="false when the visit was already stored under its source id")
    amended: bool = Field(
        default=False,
        description="the visit was stored under its source id with other content, and this replaced it",
    )
    assessment: AssessmentRead | None
    assessment_pending: bool = False


class RetractionResult(BaseModel):
    """A reading retracted: kept, seen by no history read; the patient re-tiered without it."""

    reading_id: int
    retracted_at: datetime
    assessment: AssessmentRead | None
    assessment_pending: bool = False


class PendingAssessment(BaseModel):
    """Stored, not yet evaluated: the rule engine failed; the next evaluation completes it."""

    patient_id: int
    assessment_pending: bool = True
