"""FHIR R4 Observations (LOINC codes, UCUM units) → our readings, or a clear reason why not.

Parsing and validation use the maintained ``fhir.resources`` models (R4B, wire-compatible with R4
Observation and Bundle); this module only maps codes. Anything unmapped is rejected with the reason.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.observation import Observation
from pydantic import ValidationError

from pathway.errors import InvalidInput, ResultNotFinal, UnknownCode
from pathway.ingest import ReadingIn
from pathway.vocabulary import ReadingKind, ReadingSource

LOINC = "http://loinc.org"
BP_PANEL = "85354-9"
SYSTOLIC = "8480-6"
DIASTOLIC = "8462-4"
# LOINC code → reading kind (PATHWAY.md §1 vocabulary).
SINGLE_VALUE_CODES: dict[str, ReadingKind] = {
    "1558-6": ReadingKind.FPG,  # Fasting glucose [Mass/volume] in Serum or Plasma
    "2339-0": ReadingKind.RPG,  # Glucose [Mass/volume] in Blood
    "4548-4": ReadingKind.HBA1C,  # Hemoglobin A1c/Hemoglobin.total in Blood
    "2093-3": ReadingKind.TC,  # Cholesterol [Mass/volume] in Serum or Plasma
    "13457-7": ReadingKind.LDL_C,  # LDL cholesterol, calculated
    "18262-6": ReadingKind.LDL_C,  # LDL cholesterol, direct assay
    "2085-9": ReadingKind.HDL_C,  # HDL cholesterol
    "2571-8": ReadingKind.TG,  # Triglyceride
}
# UCUM codes → the unit names our unit table uses.
UCUM_UNITS = {
    "mm[Hg]": "mmHg",
    "kPa": "kPa",
    "mg/dL": "mg/dL",
    "mmol/L": "mmol/L",
    "%": "%",
    "mmol/mol": "mmol/mol",
}
# Where a reading's fields come from in the Observation: a value we cannot store is named there.
READING_SOURCES = {
    "source_reading_id": "identifier.0.value",
    "device_id": "device.reference",
    "measured_at": "effectiveDateTime",
}


# Observation.status: a result to record (a correction is a new version of its identifier's
# reading), one withdrawn (its reading is retracted), or one not final yet (refused, never used).
RECORDED_STATUSES = frozenset({"final", "amended", "corrected"})
RETRACTING_STATUSES = frozenset({"entered-in-error", "cancelled"})
SOURCE_SYSTEM_LENGTH = 64


@dataclass(frozen=True)
class MappedObservation:
    """A reading for a patient of ours, from one Observation; ``system``: its identifier's."""

    patient_id: int
    reading: ReadingIn
    system: str | None = None


@dataclass(frozen=True)
class RetractedObservation:
    """An Observation entered in error or cancelled: the reading its identifier names is withdrawn."""

    patient_id: int
    source_reading_id: str
    system: str | None = None


def parse_observation(data: Any, field: str = "Observation") -> Observation:
    try:
        return Observation.model_validate(data)
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise InvalidInput(f"not a valid FHIR R4 Observation: {first['msg']}", f"{field}.{where}") from error


def parse_bundle(data: Any) -> Bundle:
    try:
        return Bundle.model_validate(data)
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise InvalidInput(f"not a valid FHIR R4 Bundle: {first['msg']}", f"Bundle.{where}") from error


def map_observation(
    observation: Observation,
    source: ReadingSource | None,
    field: str,
    default_source: ReadingSource = ReadingSource.CLINIC,
) -> MappedObservation | RetractedObservation:
    """Our reading for one Observation (its source: ``source``, else ``lab`` for the laboratory
    category, else ``default_source``), the retraction of one, or an error naming what cannot be
    mapped (a result not final: ``result-not-final`` naming ``status``)."""
    patient_id = _patient_id(observation, field)
    system = _identifier_system(observation, field)
    if observation.status in RETRACTING_STATUSES:
        named = observation.identifier[0].value if observation.identifier else None
        if not named:
            raise InvalidInput(f"a {observation.status} Observation names its reading", f"{field}.identifier")
        return RetractedObservation(patient_id, named, system)
    if observation.status not in RECORDED_STATUSES:
        raise ResultNotFinal(
            f"a {observation.status} result is not used: send it final (or amended, corrected)",
            f"{field}.status",
        )
    when = observation.effectiveDateTime
    if when is None:
        raise InvalidInput(
            "an Observation needs effectiveDateTime (with a UTC offset)", f"{field}.effectiveDateTime"
        )
    codes = _loinc_codes(observation.code)
    identifier = observation.identifier[0].value if observation.identifier else None
    device = observation.device.reference if observation.device else None
    common: dict[str, Any] = {
        "measured_at": when,
        "source": source or _source(observation, default_source),
        "source_reading_id": identifier,
        "device_id": device,
    }
    if BP_PANEL in codes or {SYSTOLIC, DIASTOLIC} <= codes:
        values: dict[str, Decimal] = {}
        units: set[str] = set()
        for index, component in enumerate(observation.component or []):
            component_codes = _loinc_codes(component.code)
            name = (
                "systolic"
                if SYSTOLIC in component_codes
                else "diastolic"
                if DIASTOLIC in component_codes
                else None
            )
            if name is None or component.valueQuantity is None:
                continue
            value, unit = _quantity(component.valueQuantity, f"{field}.component.{index}.valueQuantity")
            values[name] = value
            units.add(unit)
        if set(values) != {"systolic", "diastolic"}:
            raise InvalidInput(
                "a BP panel needs systolic (8480-6) and diastolic (8462-4) components", f"{field}.component"
            )
        if len(units) != 1:
            raise InvalidInput("systolic and diastolic must use the same unit", f"{field}.component")
        reading = _reading(field, kind=ReadingKind.BP, unit=units.pop(), **values, **common)
        return MappedObservation(patient_id, reading, system)
    kind = next((SINGLE_VALUE_CODES[c] for c in codes if c in SINGLE_VALUE_CODES), None)
    if kind is None:
        raise UnknownCode(f"no reading kind for LOINC code(s) {sorted(codes) or 'none'}", f"{field}.code")
    if observation.valueQuantity is None:
        raise InvalidInput("an Observation needs valueQuantity", f"{field}.valueQuantity")
    value, unit = _quantity(observation.valueQuantity, f"{field}.valueQuantity")
    return MappedObservation(patient_id, _reading(field, kind=kind, value=value, unit=unit, **common), system)


def _reading(field: str, **values: Any) -> ReadingIn:
    """Our reading, or InvalidInput naming the Observation's element that holds the bad value."""
    try:
        return ReadingIn(**values)
    except ValidationError as error:
        first = error.errors()[0]
        where = READING_SOURCES.get(str(first["loc"][0])) if first["loc"] else None
        raise InvalidInput(
            f"cannot be stored as a reading: {first['msg']}", f"{field}.{where}" if where else field
        ) from error


def _loinc_codes(concept: Any) -> set[str]:
    return {c.code for c in (concept.coding or []) if c.system == LOINC and c.code} if concept else set()


def _quantity(quantity: Any, field: str) -> tuple[Decimal, str]:
    if quantity.value is None:
        raise InvalidInput("a quantity needs a value", f"{field}.value")
    code = quantity.code or quantity.unit
    unit = UCUM_UNITS.get(code or "")
    if unit is None:
        raise UnknownCode(
            f"unit {code!r} is not a UCUM unit we accept ({', '.join(UCUM_UNITS)})", f"{field}.code"
        )
    return Decimal(str(quantity.value)), unit


def _patient_id(observation: Observation, field: str) -> int:
    reference = observation.subject.reference if observation.subject else None
    if not reference or not reference.startswith("Patient/") or not reference[8:].isdigit():
        raise InvalidInput("subject must reference one of our patients as Patient/<id>", f"{field}.subject")
    return int(reference[8:])


def _source(observation: Observation, default: ReadingSource) -> ReadingSource:
    categories = {c.code for concept in observation.category or [] for c in concept.coding or []}
    return ReadingSource.LAB if "laboratory" in categories else default


def _identifier_system(observation: Observation, field: str) -> str | None:
    system = observation.identifier[0].system if observation.identifier else None
    if system is not None and len(system) > SOURCE_SYSTEM_LENGTH:
        raise InvalidInput(
            f"an identifier system has at most {SOURCE_SYSTEM_LENGTH} characters",
            f"{field}.identifier.0.system",
        )
    return system
