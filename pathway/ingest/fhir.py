"""FHIR R4 Observations (LOINC codes, UCUM units) → our readings, or a clear reason why not.

Parsing and validation use the maintained ``fhir.resources`` models (R4B, wire-compatible with R4
Observation and Bundle); this module only maps codes. Anything unmapped is rejected with the reason.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, TypeVar

from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.observation import Observation
from pydantic import BaseModel, ValidationError

from pathway.clinical.errors import InvalidInput, PathwayError, ResultNotFinal, UnknownCode
from pathway.clinical.vocabulary import ReadingKind, ReadingSource
from pathway.ingest.inbound import MAX_ROW_ID, ReadingIn, row_id

LOINC = "http://loinc.org"
BP_PANEL = "85354-9"
SYSTOLIC = "8480-6"
DIASTOLIC = "8462-4"
# LOINC code → reading kind (PATHWAY.md §1 vocabulary): data, one line a code with its LOINC name.
# The code says what was measured; the unit (below) says how to convert it, so a lab sending a
# [Mass/volume] code in mmol/L is still read right. Chinese labs mostly send the [Moles/volume] codes.
SINGLE_VALUE_CODES: dict[str, ReadingKind] = {
    "1558-6": ReadingKind.FPG,  # Fasting glucose [Mass/volume] in Serum or Plasma
    "14771-0": ReadingKind.FPG,  # Fasting glucose [Moles/volume] in Serum or Plasma
    "1521-4": ReadingKind.PPG2H,  # Glucose [Mass/volume] in Serum or Plasma --2 hours post meal
    "6689-4": ReadingKind.PPG2H,  # Glucose [Mass/volume] in Blood --2 hours post meal
    "2339-0": ReadingKind.RPG,  # Glucose [Mass/volume] in Blood
    "2345-7": ReadingKind.RPG,  # Glucose [Mass/volume] in Serum or Plasma
    "14749-6": ReadingKind.RPG,  # Glucose [Moles/volume] in Serum or Plasma
    "15074-8": ReadingKind.RPG,  # Glucose [Moles/volume] in Blood
    "4548-4": ReadingKind.HBA1C,  # Hemoglobin A1c/Hemoglobin.total in Blood (%, NGSP)
    "17856-6": ReadingKind.HBA1C,  # Hemoglobin A1c/Hemoglobin.total in Blood by HPLC (%)
    "59261-8": ReadingKind.HBA1C,  # Hemoglobin A1c/Hemoglobin.total in Blood by IFCC protocol (mmol/mol)
    "2093-3": ReadingKind.TC,  # Cholesterol [Mass/volume] in Serum or Plasma
    "14647-2": ReadingKind.TC,  # Cholesterol [Moles/volume] in Serum or Plasma
    "13457-7": ReadingKind.LDL_C,  # Cholesterol in LDL [Mass/volume] in Serum or Plasma by calculation
    "18262-6": ReadingKind.LDL_C,  # Cholesterol in LDL [Mass/volume] in Serum or Plasma by Direct assay
    "2089-1": ReadingKind.LDL_C,  # Cholesterol in LDL [Mass/volume] in Serum or Plasma
    "22748-8": ReadingKind.LDL_C,  # Cholesterol in LDL [Moles/volume] in Serum or Plasma
    "39469-2": ReadingKind.LDL_C,  # Cholesterol in LDL [Moles/volume] in Serum or Plasma by calculation
    "2085-9": ReadingKind.HDL_C,  # Cholesterol in HDL [Mass/volume] in Serum or Plasma
    "14646-4": ReadingKind.HDL_C,  # Cholesterol in HDL [Moles/volume] in Serum or Plasma
    "2571-8": ReadingKind.TG,  # Triglyceride [Mass/volume] in Serum or Plasma
    "14927-8": ReadingKind.TG,  # Triglyceride [Moles/volume] in Serum or Plasma
    "33914-3": ReadingKind.EGFR,  # GFR/1.73 sq M.predicted in Serum or Plasma, creatinine-based (MDRD)
    "48642-3": ReadingKind.EGFR,  # GFR/1.73 sq M.predicted among non-blacks (MDRD)
    "48643-1": ReadingKind.EGFR,  # GFR/1.73 sq M.predicted among blacks (MDRD)
    "62238-1": ReadingKind.EGFR,  # GFR/1.73 sq M.predicted by Creatinine-based formula (CKD-EPI)
    "88293-6": ReadingKind.EGFR,  # GFR/1.73 sq M.predicted among blacks (CKD-EPI)
    "88294-4": ReadingKind.EGFR,  # GFR/1.73 sq M.predicted among non-blacks (CKD-EPI)
    "98979-8": ReadingKind.EGFR,  # GFR/1.73 sq M.predicted by Creatinine-based formula (CKD-EPI 2021)
    "9318-7": ReadingKind.UACR,  # Albumin/Creatinine [Mass Ratio] in Urine
    "14959-1": ReadingKind.UACR,  # Microalbumin/Creatinine [Mass Ratio] in Urine
    "14958-3": ReadingKind.UACR,  # Microalbumin/Creatinine [Molar ratio] in Urine (mg/mmol)
    "32294-1": ReadingKind.UACR,  # Albumin/Creatinine [Ratio] in Urine
}
# UCUM codes (and the plain spellings devices send) → the unit names our unit table uses.
UCUM_UNITS = {
    "mm[Hg]": "mmHg",
    "mmHg": "mmHg",
    "kPa": "kPa",
    "mg/dL": "mg/dL",
    "mmol/L": "mmol/L",
    "%": "%",
    "mmol/mol": "mmol/mol",
    "mL/min/{1.73_m2}": "mL/min/1.73m2",
    "mL/min/1.73m2": "mL/min/1.73m2",
    "mg/g": "mg/g",
    "mg/g{creat}": "mg/g",
    "mg/mmol": "mg/mmol",
    "mg/mmol{creat}": "mg/mmol",
}
MAX_NESTING = 64
"""JSON levels (objects and arrays) inside one resource: an Observation needs about ten; deeper is not
one of ours, and the FHIR models would recurse past Python's limit on it (data validity, not clinical)."""
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
R = TypeVar("R", bound=BaseModel)
MEDICATION_RESOURCE_TYPES = frozenset({"MedicationRequest", "MedicationStatement"})
REGISTRATION_RESOURCE_TYPES = frozenset({"Patient", "Condition", "Encounter"})


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


@dataclass(frozen=True)
class ParsedBundle:
    """A Bundle's entries: the Observations parsed, and why each other one was rejected (by index)."""

    observations: list[tuple[int, Observation]]
    rejected: dict[int, PathwayError]
    # MedicationRequest / MedicationStatement entries as sent (pathway.ingest.fhir_medication parses them)
    medications: list[tuple[int, Any]] = field(default_factory=list)
    # Patient / Condition / Encounter entries as sent (pathway.ingest.fhir_patient parses them)
    registrations: list[tuple[int, Any]] = field(default_factory=list)
    kind: str | None = None  # Bundle.type: "transaction" stores all or nothing
    full_urls: dict[int, str] = field(default_factory=dict)  # entry.fullUrl, what other entries reference


def parse_observation(data: Any, field: str = "Observation") -> Observation:
    return valid_resource(Observation, data, field)


def valid_resource(model: type[R], data: Any, field: str) -> R:
    """``data`` as a FHIR R4 resource of ``model``, or InvalidInput naming the first bad element."""
    _within_nesting(data, field)
    try:
        return model.model_validate(data)
    except ValidationError as error:
        raise InvalidInput(
            f"not a valid FHIR R4 {model.__name__}: {_first(error)}", _where(field, error)
        ) from error


def parse_bundle(data: Any) -> ParsedBundle:
    """Each entry of a Bundle of Observations parsed, or rejected alone with the reason.

    Only the Bundle's own elements (type, entry, …) can fail the whole Bundle; each entry's resource
    is parsed on its own, so one bad Observation (invalid, nested too deep) is rejected and the
    others go on; mapping (:func:`map_observation`, which needs the key's role) follows per entry.
    Pure: no database, so it runs before the request takes the store's write lock.
    """
    if not isinstance(data, dict):
        raise InvalidInput("a Bundle must be a JSON object", "Bundle")
    entries = data.get("entry")
    resources: list[Any] = []
    shell = data
    if isinstance(entries, list):
        resources = [entry.get("resource") if isinstance(entry, dict) else None for entry in entries]
        without = [
            {k: v for k, v in entry.items() if k != "resource"} if isinstance(entry, dict) else entry
            for entry in entries
        ]
        shell = {**data, "entry": without}
    _within_nesting(shell, "Bundle")
    try:
        Bundle.model_validate(shell)
    except ValidationError as error:
        raise InvalidInput(f"not a valid FHIR R4 Bundle: {_first(error)}", _where("Bundle", error)) from error
    parsed = ParsedBundle([], {}, kind=data.get("type") if isinstance(data.get("type"), str) else None)
    for index, entry in enumerate(entries if isinstance(entries, list) else []):
        if isinstance(entry, dict) and isinstance(entry.get("fullUrl"), str):
            parsed.full_urls[index] = entry["fullUrl"]
    for index, resource in enumerate(resources):
        where = f"Bundle.entry.{index}.resource"
        kind = resource.get("resourceType") if isinstance(resource, dict) else None
        try:
            if kind in MEDICATION_RESOURCE_TYPES:
                parsed.medications.append((index, resource))
            elif kind in REGISTRATION_RESOURCE_TYPES:
                parsed.registrations.append((index, resource))
            elif kind != "Observation":
                raise UnknownCode(
                    "only Observation, MedicationRequest, MedicationStatement, Patient, Condition and "
                    "Encounter entries are accepted",
                    where,
                )
            else:
                parsed.observations.append((index, parse_observation(resource, where)))
        except PathwayError as error:
            parsed.rejected[index] = error
    return parsed


def _first(error: ValidationError) -> str:
    return str(error.errors(include_url=False, include_input=False)[0]["msg"])


def _where(field: str, error: ValidationError) -> str:
    loc = error.errors(include_url=False, include_input=False)[0]["loc"]
    return ".".join([field, *(_spelled(part) for part in loc)])


def _spelled(part: object) -> str:
    """A path element as sent, its NUL spelled out (an answer may be stored, and JSONB cannot hold it)."""
    return str(part).replace("\x00", "\\u0000")


def _within_nesting(data: Any, field: str) -> None:
    """Refuse JSON nested deeper than :data:`MAX_NESTING`, naming where (walked without recursion)."""
    stack: list[tuple[Any, int, str]] = [(data, 0, field)]
    while stack:
        value, depth, path = stack.pop()
        if not isinstance(value, dict | list):
            continue
        if depth >= MAX_NESTING:
            raise InvalidInput(f"nested deeper than {MAX_NESTING} levels", path)
        items = value.items() if isinstance(value, dict) else enumerate(value)
        stack.extend((child, depth + 1, f"{path}.{_spelled(key)}") for key, child in items)


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
    if quantity.comparator is not None:
        # "<3.0" is not 3.0: storing the bare value would tier the patient on a number never measured.
        raise InvalidInput(
            f"a value with a comparator ({quantity.comparator}) is not a measurement we can store",
            f"{field}.comparator",
        )
    code = quantity.code or quantity.unit
    unit = UCUM_UNITS.get(code or "")
    if unit is None:
        raise UnknownCode(
            f"unit {code!r} is not a UCUM unit we accept ({', '.join(UCUM_UNITS)})", f"{field}.code"
        )
    return Decimal(str(quantity.value)), unit


def _patient_id(observation: Observation, field: str) -> int:
    return patient_reference(observation.subject.reference if observation.subject else None, field)


def patient_reference(reference: str | None, field: str) -> int:
    """Our patient's id in a ``subject.reference`` (``Patient/<id>``), else InvalidInput naming it."""
    patient_id = (
        row_id(reference.removeprefix("Patient/")) if reference and reference.startswith("Patient/") else None
    )
    if patient_id is None:
        raise InvalidInput(
            f"subject must reference one of our patients as Patient/<id> (id 1 to {MAX_ROW_ID})",
            f"{field}.subject.reference",
        )
    return patient_id


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
