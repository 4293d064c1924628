"""What integrators send and get back for prescriptions (PATHWAY.md §7; not table models).

An item of a prescriptions batch that fails validation is kept as an :class:`InvalidReading` (the
shared per-item error holder) and answered ``rejected`` naming its field; what needs the pack (an
ATC code's classes) or the clock (no date in the future) is checked by
:mod:`pathway.ingest.prescribing`.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    GetCoreSchemaHandler,
    GetPydanticSchema,
    StringConstraints,
    ValidationError,
    ValidatorFunctionWrapHandler,
)
from pydantic_core import core_schema

from pathway.clinical.errors import InvalidInput, from_validation
from pathway.clinical.medication import MedicationClass
from pathway.ingest.inbound import Day, Inbound, InvalidReading, ItemError, Text

MAX_PRESCRIPTIONS = 200
"""Items of one prescriptions batch (a patient's whole medication list fits many times over)."""
MEDICATION_CLASS_SYSTEM = "https://sangao.example/medication-class"
"""The FHIR coding system of our medication classes (PATHWAY.md §7: ``statin``, ``ccb``…)."""
ATC_SYSTEM = "http://www.whocc.no/atc"

TraceabilityCode = Annotated[Text, StringConstraints(min_length=1, max_length=64)]


class PrescriptionIn(Inbound):
    """One prescription: ``classes`` and/or an ``atc`` code (at least one; an ATC code adds the
    classes the pack maps it to), the drug as written, ``started_on`` + ``supply_days`` (1–365),
    optionally ``stopped_on`` (≥ ``started_on``). No date in the future."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "source_prescription_id": "rx-2026-000451",
                    "atc": "C08CA01",
                    "drug": "苯磺酸氨氯地平片",
                    "dose": "5 mg qd",
                    "started_on": "2026-02-20",
                    "supply_days": 56,
                    "traceability_codes": ["81234560012345678901"],
                }
            ]
        },
    )
    source_prescription_id: Text = Field(min_length=1, max_length=128)
    classes: list[MedicationClass] = Field(default_factory=list, max_length=8)
    atc: Text | None = Field(default=None, min_length=1, max_length=16, description="a WHO ATC code")
    drug: Text = Field(min_length=1, max_length=200)
    dose: Text | None = Field(default=None, max_length=200)
    started_on: Day
    supply_days: int = Field(ge=1, le=365)
    stopped_on: Day | None = None
    traceability_codes: list[TraceabilityCode] = Field(default_factory=list, max_length=100)


class StopIn(Inbound):
    """The day a prescription was stopped (停药): a new version of it."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"stopped_on": "2026-03-01"}]})
    stopped_on: Day


def _prescription_or_invalid(
    value: object, handler: ValidatorFunctionWrapHandler
) -> PrescriptionIn | InvalidReading:
    try:
        prescription: PrescriptionIn = handler(value)
    except ValidationError as error:
        first = error.errors(include_url=False, include_input=False)[0]
        if first["type"] == "model_type":
            return InvalidReading(InvalidInput("a prescription must be a JSON object"), value)
        path = ".".join(str(part).replace("\x00", "\\u0000") for part in first["loc"])
        return InvalidReading(from_validation(first, path or None), value)
    return prescription


def _item_schema(_source: Any, handler: GetCoreSchemaHandler) -> core_schema.CoreSchema:
    return core_schema.no_info_wrap_validator_function(_prescription_or_invalid, handler(PrescriptionIn))


BatchPrescription = Annotated[PrescriptionIn | InvalidReading, GetPydanticSchema(_item_schema)]
"""An item of a prescriptions batch: a :class:`PrescriptionIn`, or the reason it is not one (its
JSON schema is PrescriptionIn's)."""


class PrescriptionItemResult(BaseModel):
    """One item's outcome: ``created``; ``duplicate`` (the current version says the same);
    ``updated`` (a new version of the prescription with this source id: changed or stopped;
    ``prescription_id`` replaces ``supersedes``); ``retracted``; ``rejected`` (nothing stored)."""

    index: int
    status: Literal["created", "duplicate", "updated", "retracted", "rejected"]
    prescription_id: int | None = None
    supersedes: int | None = None
    error: ItemError | None = None
