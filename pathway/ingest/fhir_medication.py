"""FHIR R4 MedicationRequest and MedicationStatement → our prescriptions (PATHWAY.md §7), or a clear
reason why not, naming the element (as :mod:`pathway.ingest.fhir` does for Observations).

The medication is ``medicationCodeableConcept``: a WHO ATC coding (``http://www.whocc.no/atc``) or a
class of ours (:data:`pathway.ingest.medication_in.MEDICATION_CLASS_SYSTEM`, codes ``statin``, ``ccb``…).
``identifier[0]`` is the source prescription id (its ``system``: the source system, for an ehr or admin
key). ``started_on``: ``authoredOn`` / ``effectivePeriod.start``; ``supply_days``:
``dispenseRequest.expectedSupplyDuration`` (days) or the length of ``effectivePeriod``. ``status``:
``active`` / ``completed`` record it; ``stopped`` records it stopped on ``effectivePeriod.end`` /
``dispenseRequest.validityPeriod.end``; ``entered-in-error`` / ``cancelled`` retract it; anything
else (draft, on-hold, intended, not-taken, unknown) is refused (``result-not-final``). Pure: no database.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from fhir.resources.R4B.medicationrequest import MedicationRequest
from fhir.resources.R4B.medicationstatement import MedicationStatement
from pydantic import ValidationError

from pathway.clinical.errors import InvalidInput, ResultNotFinal, UnknownCode
from pathway.ingest.fhir import SOURCE_SYSTEM_LENGTH, patient_reference, valid_resource
from pathway.ingest.medication_in import ATC_SYSTEM, MEDICATION_CLASS_SYSTEM, PrescriptionIn
from pathway.ingest.prescribing import Retraction

MEDICATION_RESOURCES: dict[str, type[MedicationRequest] | type[MedicationStatement]] = {
    "MedicationRequest": MedicationRequest,
    "MedicationStatement": MedicationStatement,
}
RECORDED = frozenset({"active", "completed", "stopped"})
RETRACTING = frozenset({"entered-in-error", "cancelled"})
DAY_UNITS = frozenset({"d", "day", "days"})
# Where a prescription's fields come from in each resource: a bad value is named there.
WHERE = {
    "MedicationRequest": {
        "started_on": "authoredOn",
        "supply_days": "dispenseRequest.expectedSupplyDuration.value",
        "stopped_on": "dispenseRequest.validityPeriod.end",
        "dose": "dosageInstruction.0.text",
    },
    "MedicationStatement": {
        "started_on": "effectivePeriod.start",
        "supply_days": "effectivePeriod",
        "stopped_on": "effectivePeriod.end",
        "dose": "dosage.0.text",
    },
}
COMMON_WHERE = {
    "source_prescription_id": "identifier.0.value",
    "classes": "medicationCodeableConcept.coding",
    "atc": "medicationCodeableConcept.coding",
    "drug": "medicationCodeableConcept.text",
    "traceability_codes": "identifier",
}


@dataclass(frozen=True)
class MappedMedication:
    """A prescription (or its retraction) for a patient of ours; ``system``: its identifier's."""

    patient_id: int
    item: PrescriptionIn | Retraction
    system: str | None = None


def parse_medication(data: Any, field: str) -> MedicationRequest | MedicationStatement:
    kind = data.get("resourceType") if isinstance(data, dict) else None
    model = MEDICATION_RESOURCES.get(kind) if isinstance(kind, str) else None
    if model is None:
        raise InvalidInput("a MedicationRequest or MedicationStatement", f"{field}.resourceType")
    resource: MedicationRequest | MedicationStatement = valid_resource(model, data, field)
    return resource


def map_medication(resource: MedicationRequest | MedicationStatement, field: str) -> MappedMedication:
    kind = type(resource).__name__
    patient_id = patient_reference(resource.subject.reference if resource.subject else None, field)
    identifier = resource.identifier[0] if resource.identifier else None
    system = identifier.system if identifier else None
    if system is not None and len(system) > SOURCE_SYSTEM_LENGTH:
        raise InvalidInput(
            f"an identifier system has at most {SOURCE_SYSTEM_LENGTH} characters",
            f"{field}.identifier.0.system",
        )
    source_id = identifier.value if identifier else None
    if not source_id:
        raise InvalidInput(f"a {kind} needs identifier[0].value (its prescription id)", f"{field}.identifier")
    if resource.status in RETRACTING:
        return MappedMedication(patient_id, Retraction(source_id), system)
    if resource.status not in RECORDED:
        raise ResultNotFinal(
            f"a {resource.status} {kind} is not used: send it active, completed or stopped", f"{field}.status"
        )
    concept = resource.medicationCodeableConcept
    if concept is None:
        raise InvalidInput(f"a {kind} needs medicationCodeableConcept", f"{field}.medicationCodeableConcept")
    codings = concept.coding or []
    atc = next((c.code for c in codings if c.system == ATC_SYSTEM and c.code), None)
    classes = [c.code for c in codings if c.system == MEDICATION_CLASS_SYSTEM and c.code]
    drug = concept.text or next((c.display for c in codings if c.display), None) or atc or ",".join(classes)
    values: dict[str, Any] = {
        "source_prescription_id": source_id,
        "atc": atc,
        "classes": classes,
        "drug": drug,
    }
    if isinstance(resource, MedicationRequest):
        values |= _request_dates(resource, field)
        dose = resource.dosageInstruction[0].text if resource.dosageInstruction else None
    else:
        values |= _statement_dates(resource, field)
        dose = resource.dosage[0].text if resource.dosage else None
    if resource.status != "stopped":
        values.pop("stopped_on", None)
    elif values.get("stopped_on") is None:
        raise InvalidInput(f"a stopped {kind} says when", f"{field}.{WHERE[kind]['stopped_on']}")
    values["dose"] = dose
    return MappedMedication(patient_id, _prescription(kind, field, values), system)


def _day(value: date | datetime | None) -> date | None:
    return value.date() if isinstance(value, datetime) else value


def _request_dates(resource: MedicationRequest, field: str) -> dict[str, Any]:
    started = _day(resource.authoredOn)
    if started is None:
        raise InvalidInput(
            "a MedicationRequest needs authoredOn (the day it was prescribed)", f"{field}.authoredOn"
        )
    dispense = resource.dispenseRequest
    duration = dispense.expectedSupplyDuration if dispense else None
    where = f"{field}.dispenseRequest.expectedSupplyDuration"
    if duration is None or duration.value is None:
        raise InvalidInput("a MedicationRequest needs its supply in days", where)
    if (duration.code or duration.unit or "d") not in DAY_UNITS:
        raise InvalidInput("the expected supply duration is counted in days (code d)", f"{where}.code")
    value = duration.value
    supply = int(value) if value == int(value) else -1
    validity = dispense.validityPeriod if dispense else None
    return {
        "started_on": started,
        "supply_days": supply,
        "stopped_on": _day(validity.end) if validity else None,
    }


def _statement_dates(resource: MedicationStatement, field: str) -> dict[str, Any]:
    period = resource.effectivePeriod
    started = _day(period.start) if period else None
    ended = _day(period.end) if period else None
    if started is None:
        raise InvalidInput(
            "a MedicationStatement needs effectivePeriod.start", f"{field}.effectivePeriod.start"
        )
    if ended is None:
        raise InvalidInput(
            "a MedicationStatement needs effectivePeriod.end (the supply's end)",
            f"{field}.effectivePeriod.end",
        )
    return {"started_on": started, "supply_days": (ended - started).days, "stopped_on": ended}


def _prescription(kind: str, field: str, values: dict[str, Any]) -> PrescriptionIn:
    try:
        return PrescriptionIn(**values)
    except ValidationError as error:
        first = error.errors(include_url=False, include_input=False)[0]
        name = str(first["loc"][0]) if first["loc"] else ""
        where = WHERE[kind].get(name) or COMMON_WHERE.get(name)
        kind_of_error = UnknownCode if first["type"] == "enum" else InvalidInput
        message = f"cannot be stored as a prescription: {first['msg']}"
        raise kind_of_error(message, f"{field}.{where}" if where else field) from error
