"""FHIR R4 Patient, Condition and Encounter → our patient, diagnoses and visits (pure: no database).

Parsing uses the ``fhir.resources`` R4B models (wire-compatible with R4 for these resources), as
:mod:`pathway.ingest.fhir` does for Observations; this module only maps. The managing team
(家庭医生团队) is ``Patient.generalPractitioner`` referencing ``Organization/<team code>``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from fhir.resources.R4B.condition import Condition as FhirCondition
from fhir.resources.R4B.encounter import Encounter as FhirEncounter
from fhir.resources.R4B.patient import Patient as FhirPatient
from pydantic import ValidationError

from pathway.clinical.clock import CLINIC_TZ
from pathway.clinical.errors import InvalidInput, UnknownCode
from pathway.clinical.vocabulary import Complication, Condition, Sex
from pathway.ingest.fhir import SOURCE_SYSTEM_LENGTH, patient_reference, valid_resource
from pathway.ingest.icd10 import ICD10_SYSTEMS, condition_of
from pathway.ingest.inbound import EncounterIn, PatientIn

TEAM_REFERENCE = "Organization/"
# Condition.clinicalStatus / verificationStatus codes that say the patient does not have it (now).
ENDED_CLINICAL_STATUSES = frozenset({"inactive", "resolved", "remission"})
WITHDRAWN_VERIFICATIONS = frozenset({"entered-in-error", "refuted"})
# Where PatientIn's fields come from in the Patient: a value we cannot store is named there.
PATIENT_SOURCES = {
    "source_system": "identifier.0.system",
    "external_id": "identifier.0.value",
    "team_code": "generalPractitioner.0.reference",
    "name": "name.0",
    "phone": "telecom",
    "sex": "gender",
    "birth_date": "birthDate",
}


@dataclass(frozen=True)
class MappedDiagnosis:
    """A Condition of one of our patients: a condition, or a complication with its onset, present or not."""

    patient_id: int
    diagnosis: Condition | Complication
    onset: date | None
    present: bool


@dataclass(frozen=True)
class MappedVisit:
    """An Encounter of one of our patients as a visit; ``system``: its identifier's."""

    patient_id: int
    visit: EncounterIn
    system: str | None


def parse_patient(data: Any, field: str = "Patient") -> FhirPatient:
    return valid_resource(FhirPatient, data, field)


def parse_condition(data: Any, field: str = "Condition") -> FhirCondition:
    return valid_resource(FhirCondition, data, field)


def parse_encounter(data: Any, field: str = "Encounter") -> FhirEncounter:
    return valid_resource(FhirEncounter, data, field)


def map_patient(patient: FhirPatient, field: str = "Patient") -> PatientIn:
    """Our registration of the Patient: its first identifier is (source_system, external_id)."""
    if not patient.identifier:
        raise InvalidInput(
            "a Patient needs an identifier (its system and value in the EHR)", f"{field}.identifier"
        )
    identifier = patient.identifier[0]
    if not identifier.system or not identifier.value:
        raise InvalidInput("the Patient's identifier needs a system and a value", f"{field}.identifier.0")
    if patient.gender not in (Sex.MALE, Sex.FEMALE):
        raise UnknownCode(
            "gender must be male or female (the pathway's targets depend on it)", f"{field}.gender"
        )
    if patient.birthDate is None:
        raise InvalidInput("a Patient needs birthDate", f"{field}.birthDate")
    values: dict[str, Any] = {
        "source_system": identifier.system,
        "external_id": identifier.value,
        "sex": patient.gender,
        "birth_date": patient.birthDate,
        "name": _name(patient),
        "phone": next((t.value for t in patient.telecom or [] if t.system == "phone" and t.value), None),
        "team_code": _team_code(patient, field),
    }
    try:
        return PatientIn(**values)
    except ValidationError as error:
        first = error.errors()[0]
        where = PATIENT_SOURCES.get(str(first["loc"][0])) if first["loc"] else None
        raise InvalidInput(
            f"cannot be registered: {first['msg']}", f"{field}.{where}" if where else field
        ) from error


def _name(patient: FhirPatient) -> str | None:
    """The first name: its text, else family and given names (a Chinese name: 王 + 建国 → 王建国)."""
    for name in patient.name or []:
        if name.text:
            return str(name.text)
        given = [g for g in name.given or [] if g]
        parts = [name.family, *given] if name.family else given
        if not parts:
            continue
        if any(_is_cjk(c) for part in parts for c in part):
            return "".join(parts)
        return " ".join([*given, name.family] if name.family else given)
    return None


def _is_cjk(character: str) -> bool:
    return "\u3400" <= character <= "\u9fff" or "\uf900" <= character <= "\ufaff"


def _team_code(patient: FhirPatient, field: str) -> str | None:
    for index, practitioner in enumerate(patient.generalPractitioner or []):
        reference = practitioner.reference or ""
        if reference.startswith(TEAM_REFERENCE):
            code = reference.removeprefix(TEAM_REFERENCE)
            if not code:
                raise InvalidInput(
                    "a team is referenced as Organization/<team code>",
                    f"{field}.generalPractitioner.{index}.reference",
                )
            return code
    return None


def map_condition(condition: FhirCondition, field: str = "Condition") -> MappedDiagnosis:
    """The diagnosis the Condition's ICD-10 (or GB/T 14396) code names, present unless its
    clinicalStatus ended it or its verificationStatus withdrew it; a complication needs its onset."""
    patient_id = patient_reference(condition.subject.reference if condition.subject else None, field)
    codes = [
        c.code
        for c in (condition.code.coding or [] if condition.code else [])
        if c.system in ICD10_SYSTEMS and c.code
    ]
    diagnosis = next((found for found in map(condition_of, codes) if found is not None), None)
    if diagnosis is None:
        raise UnknownCode(
            f"no condition or complication of the pathway for ICD-10 code(s) {sorted(codes) or 'none'} "
            f"(systems: {', '.join(sorted(ICD10_SYSTEMS))})",
            f"{field}.code",
        )
    present = not (
        _codes(condition.clinicalStatus) & ENDED_CLINICAL_STATUSES
        or _codes(condition.verificationStatus) & WITHDRAWN_VERIFICATIONS
    )
    onset: date | None = None
    if isinstance(diagnosis, Complication) and present:
        onset = _onset_day(condition.onsetDateTime, f"{field}.onsetDateTime")
    return MappedDiagnosis(patient_id, diagnosis, onset, present)


def _codes(concept: Any) -> set[str]:
    return {c.code for c in (concept.coding or [])} if concept else set()


def _onset_day(onset: Any, field: str) -> date:
    """The day a complication began (a time with an offset: its day in the clinic's time zone)."""
    if isinstance(onset, datetime):
        if onset.tzinfo is None:
            raise InvalidInput("onsetDateTime with a time needs a UTC offset", field)
        return onset.astimezone(CLINIC_TZ).date()
    if isinstance(onset, date):
        return onset
    raise InvalidInput("a complication needs onsetDateTime, to the day (YYYY-MM-DD)", field)


def map_encounter(encounter: FhirEncounter, field: str = "Encounter") -> MappedVisit:
    """A visit at ``period.start``, identified by ``identifier[0]`` (its source_encounter_id)."""
    patient_id = patient_reference(encounter.subject.reference if encounter.subject else None, field)
    start = encounter.period.start if encounter.period else None
    if not isinstance(start, datetime) or start.tzinfo is None:
        raise InvalidInput(
            "an Encounter needs period.start: a time with a UTC offset", f"{field}.period.start"
        )
    identifier = encounter.identifier[0] if encounter.identifier else None
    system = identifier.system if identifier else None
    if system is not None and len(system) > SOURCE_SYSTEM_LENGTH:
        raise InvalidInput(
            f"an identifier system has at most {SOURCE_SYSTEM_LENGTH} characters",
            f"{field}.identifier.0.system",
        )
    try:
        visit = EncounterIn(at=start, source_encounter_id=identifier.value if identifier else None)
    except ValidationError as error:
        raise InvalidInput(
            f"cannot be stored as a visit: {error.errors()[0]['msg']}", f"{field}.identifier.0.value"
        ) from error
    return MappedVisit(patient_id, visit, system)
