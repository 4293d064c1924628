"""What integrators send and get back for patients and readings (not table models).

These are validated before anything reaches the store; the API uses them as its request models.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    GetCoreSchemaHandler,
    GetPydanticSchema,
    StringConstraints,
    ValidationError,
    ValidatorFunctionWrapHandler,
)
from pydantic_core import core_schema

from pathway.clinical.errors import STORABLE_TEXT, InvalidInput, from_validation
from pathway.clinical.medication import Adherence
from pathway.clinical.vocabulary import (
    CareCheck,
    Complication,
    Condition,
    ReadingKind,
    ReadingSource,
    Sex,
    Symptom,
)

MAX_BATCH = 1000
EARLIEST_YEAR = 1900  # data validity, not clinical: anything earlier is a typo or a default value
LATEST_YEAR = 2200
MAX_ROW_ID = 2_147_483_647
"""Row ids are 32-bit integers on PostgreSQL (and SQLite's are 64-bit): a larger id, in a path, a
reference or a cookie, is not a row of ours. Every id taken from a request is bounded by it."""
_ROW_ID = re.compile(r"[1-9][0-9]{0,9}")  # ASCII digits only: str.isdigit() is true for "²"
_NUMBER = re.compile(r"\s*[+-]?[0-9]+(\.[0-9]*)?([eE][+-]?[0-9]+)?\s*")


def row_id(text: str) -> int | None:
    """The row id spelled by ``text`` (ASCII digits, 1 to :data:`MAX_ROW_ID`), or None."""
    if _ROW_ID.fullmatch(text) is None:
        return None
    value = int(text)
    return value if value <= MAX_ROW_ID else None


def _not_a_number(value: object) -> object:
    """Refuse a number (or a text of digits) where a timestamp or a date is expected: pydantic would
    read it as seconds since 1970, and a reading would be stored in 1970."""
    if isinstance(value, int | float | Decimal) or (isinstance(value, str) and _NUMBER.fullmatch(value)):
        raise ValueError("must be an ISO 8601 text (2026-03-01T07:30:00+08:00, 2026-03-01), not a number")
    return value


def _plausible_instant(at: datetime) -> datetime:
    if not EARLIEST_YEAR <= at.year <= LATEST_YEAR:
        raise ValueError(f"timestamp year must be between {EARLIEST_YEAR} and {LATEST_YEAR}")
    return at


def _plausible_date(day: date) -> date:
    if not EARLIEST_YEAR <= day.year <= LATEST_YEAR:
        raise ValueError(f"date year must be between {EARLIEST_YEAR} and {LATEST_YEAR}")
    return day


def plausible_day(text: str, field: str) -> date:
    """A ``YYYY-MM-DD`` text from a form or a query as a :data:`Day` (else InvalidInput naming ``field``)."""
    try:
        return _plausible_date(date.fromisoformat(text))
    except ValueError as error:
        raise InvalidInput(f"{field} must be a date YYYY-MM-DD ({error})", field) from None


def plausible_instant(at: datetime, field: str) -> datetime:
    """``at`` if its year is plausible (an :data:`Instant`'s range), else InvalidInput naming ``field``."""
    try:
        return _plausible_instant(at)
    except ValueError as error:
        raise InvalidInput(str(error), field) from None


def storable(text: str) -> bool:
    """Whether the database can store ``text``: PostgreSQL text cannot hold the NUL character (U+0000)."""
    return "\x00" not in text


Instant = Annotated[AwareDatetime, BeforeValidator(_not_a_number), AfterValidator(_plausible_instant)]
"""An aware timestamp in a plausible range (offset required; a number is refused, not read as epoch
seconds). Every timestamp of a request, in a body or a query, is an Instant."""
Day = Annotated[date, BeforeValidator(_not_a_number), AfterValidator(_plausible_date)]
"""A date in a plausible range (a number is refused): every date of a request, in a body or a query."""
Text = Annotated[str, StringConstraints(pattern=STORABLE_TEXT)]
"""Text the database can store: no NUL character (PostgreSQL text cannot hold U+0000). Every text
of a request is declared ``Text`` (tests/api/test_openapi.py holds every request to it); the check
runs in pydantic-core, not as a Python call per field, and the OpenAPI document shows the pattern."""

# At least three characters, starting and ending with a digit (the length bound is below).
_PHONE = re.compile(r"\+?[0-9][0-9 -]+[0-9]")


def _phone_characters(phone: str) -> str:
    if not _PHONE.fullmatch(phone):
        raise ValueError("a phone number holds digits, a leading +, spaces and hyphens only")
    return phone


Phone = Annotated[
    Text, StringConstraints(strip_whitespace=True, max_length=32), AfterValidator(_phone_characters)
]
"""A phone number, checked loosely (no country's numbering plan): digits, a leading ``+``, spaces and
hyphens, 3 to 32 characters. Stored as sent (trimmed); searched by its digits."""


class Inbound(BaseModel):
    """Base of every request model (declare its texts :data:`Text`)."""


class ComplicationIn(Inbound):
    model_config = ConfigDict(extra="forbid")
    code: Complication
    onset: Day


class PatientIn(Inbound):
    """A patient as the EHR knows it; upserted by (source_system, external_id)."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "source_system": "ehr-jimo",
                    "external_id": "370282-000123",
                    "name": "王建国",
                    "phone": "+86 138-0013-8000",
                    "sex": "male",
                    "birth_date": "1958-04-10",
                    "conditions": ["hypertension", "diabetes"],
                    "complications": [{"code": "chd", "onset": "2019-05-01"}],
                    "smoker": False,
                    "pregnant": False,
                }
            ]
        },
    )
    source_system: Text = Field(min_length=1, max_length=64)
    external_id: Text = Field(min_length=1, max_length=128)
    team_code: Text | None = Field(
        default=None, max_length=64, description="the GP team (家庭医生团队) in charge"
    )
    name: Text | None = Field(default=None, max_length=200)
    phone: Phone | None = Field(
        default=None, description="a phone number: digits, optionally a leading +, spaces and hyphens"
    )
    sex: Sex
    birth_date: Day
    conditions: list[Condition] = Field(default_factory=list)
    complications: list[ComplicationIn] = Field(default_factory=list)
    smoker: bool = False
    pregnant: bool = False
    enrolled_on: Day | None = Field(
        default=None,
        description="建档日期: the day the patient was enrolled in management (registration for the "
        "indicators); not in the future, not before birth. Default: the day of the first POST",
    )


class ReadingIn(Inbound):
    """One measurement; ``unit`` may be left out for the canonical unit (PATHWAY.md §1)."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "kind": "bp",
                    "systolic": 152,
                    "diastolic": 94,
                    "unit": "mmHg",
                    "source": "wearable",
                    "measured_at": "2026-03-01T07:30:00+08:00",
                    "device_id": "omron-hem-7361t-0042",
                    "source_reading_id": "gw-88-000912",
                }
            ]
        },
    )
    kind: ReadingKind
    value: Decimal | None = Field(default=None, allow_inf_nan=False)
    systolic: Decimal | None = Field(default=None, allow_inf_nan=False)
    diastolic: Decimal | None = Field(default=None, allow_inf_nan=False)
    pulse: Decimal | None = Field(default=None, allow_inf_nan=False)
    unit: Text | None = Field(default=None, max_length=32)
    source: ReadingSource
    measured_at: Instant
    device_id: Text | None = Field(default=None, max_length=128)
    source_reading_id: Text | None = Field(default=None, max_length=128)


@dataclass(frozen=True)
class InvalidReading:
    """An item of a readings batch that is not a valid :class:`ReadingIn`, kept to be answered per item.

    ``error`` is the item's first error (``unknown-code`` for a value outside a vocabulary); its field
    is the path inside the item (``"systolic"``, ``"kind"``, the name of a missing or unknown field),
    ``None`` when the item is not a JSON object. ``raw`` is the item as received, so that the
    request's fingerprint tells two different invalid items apart.
    """

    error: InvalidInput
    raw: object

    def at(self, prefix: str) -> InvalidInput:
        """The item's error with its field under ``prefix`` (``readings.3`` + ``kind``)."""
        return type(self.error)(self.error.detail, ".".join(filter(None, (prefix, self.error.field))))


def _reading_or_invalid(value: object, handler: ValidatorFunctionWrapHandler) -> ReadingIn | InvalidReading:
    try:
        reading: ReadingIn = handler(value)
    except ValidationError as error:
        first = error.errors(include_url=False, include_input=False)[0]
        if first["type"] == "model_type":
            return InvalidReading(InvalidInput("a reading must be a JSON object"), value)
        # An unknown field is named as sent, but its NUL spelled out: the answer may be stored (JSONB).
        path = ".".join(str(part).replace("\x00", "\\u0000") for part in first["loc"])
        return InvalidReading(from_validation(first, path or None), value)
    return reading


def _reading_item_schema(_source: Any, handler: GetCoreSchemaHandler) -> core_schema.CoreSchema:
    return core_schema.no_info_wrap_validator_function(_reading_or_invalid, handler(ReadingIn))


BatchReading = Annotated[ReadingIn | InvalidReading, GetPydanticSchema(_reading_item_schema)]
"""An item of a readings batch: a :class:`ReadingIn`, or an :class:`InvalidReading` in its place.

Its JSON schema is ReadingIn's: the API documents what to send, and an item that fails validation
is answered as a rejected item instead of refusing the whole batch.
"""


class ItemError(BaseModel):
    code: str
    message: str
    field: str | None = None


class ItemResult(BaseModel):
    """One item's outcome: ``created``; ``duplicate`` (nothing changed: ``reading_id`` is the
    patient's stored reading that says the same); ``amended`` (a new version of the reading with
    this source id: ``reading_id`` replaces ``supersedes``); ``retracted``; ``rejected``."""

    index: int
    status: Literal["created", "duplicate", "amended", "retracted", "rejected"]
    reading_id: int | None = None
    supersedes: int | None = None
    error: ItemError | None = None


class EncounterReadingIn(Inbound):
    """A reading taken at the visit: clinic source, measured at the visit unless ``measured_at`` says."""

    model_config = ConfigDict(extra="forbid")
    kind: ReadingKind
    value: Decimal | None = Field(default=None, allow_inf_nan=False)
    systolic: Decimal | None = Field(default=None, allow_inf_nan=False)
    diastolic: Decimal | None = Field(default=None, allow_inf_nan=False)
    pulse: Decimal | None = Field(default=None, allow_inf_nan=False)
    unit: Text | None = Field(default=None, max_length=32)
    measured_at: Instant | None = None


class EncounterIn(Inbound):
    """A clinic visit (随访/门诊) with its readings and the symptoms reported there."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "at": "2026-03-01T08:40:00+08:00",
                    "source_encounter_id": "visit-2026-000311",
                    "readings": [
                        {"kind": "bp", "systolic": 186, "diastolic": 104},
                        {"kind": "fpg", "value": 7.4},
                    ],
                    "symptoms": ["severe_headache"],
                }
            ]
        },
    )
    at: Instant
    source_encounter_id: Text | None = Field(default=None, max_length=128)
    readings: list[EncounterReadingIn] = Field(default_factory=list, max_length=100)
    symptoms: list[Symptom] = Field(default_factory=list, max_length=32)
    checks: list[CareCheck] = Field(
        default_factory=list,
        max_length=8,
        description="examinations done at this visit (annual check, fundus, foot exam, ECG…)",
    )
    medications_reviewed: bool = Field(
        default=False, description="用药情况 reviewed at this visit (a patient who takes none included)"
    )
    adherence: Adherence | None = Field(default=None, description="服药依从性; null: not asked")
    adverse_reaction: bool | None = Field(default=None, description="药物不良反应; null: not asked")
    adverse_reaction_text: Text | None = Field(
        default=None, max_length=500, description="what the reaction was (with adverse_reaction true)"
    )


class CheckIn(Inbound):
    """An examination recorded as done (年度健康检查, 眼底, 足部, 心电图, UACR+eGFR), with its time."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"kind": "fundus", "at": "2026-02-27T10:00:00+08:00"}]},
    )
    kind: CareCheck
    at: Instant


class SymptomIn(Inbound):
    """A symptom reported outside a visit (by a gateway, a call, the patient), with its time."""

    model_config = ConfigDict(extra="forbid")
    code: Symptom
    at: Instant
