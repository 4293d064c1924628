"""FHIR R4 Patient, Condition and Encounter: an EHR registers its patients, their diagnoses and visits.

Each is parsed and mapped (:mod:`pathway.ingest.fhir_patient`) as a dependency, before the request
opens its session, then stored through the use-cases the JSON routes use (registration, recording)
and the patient reassessed. The same functions store these entries of a Bundle (:mod:`api.fhir_bundle`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Response, status
from sqlmodel import Session

from api.deps import ClockDep, CurrentKey, PathwayDep, SessionDep, patient_for
from api.errors import error_responses
from api.fhir import FhirEntryResult, FhirResult, summary
from pathway.access import permissions
from pathway.access.permissions import Caller, Role
from pathway.clinical.errors import PathwayError
from pathway.ingest import fhir_patient, recording
from pathway.ingest.fhir_patient import MappedDiagnosis, MappedVisit
from pathway.ingest.inbound import ItemError, PatientIn
from pathway.patients import reassessment, registration
from pathway.patients.reassessment import PathwayConfig
from pathway.store.tables import Patient

router = APIRouter(prefix="/v1/fhir", tags=["fhir"])
STORED = ("created", "amended", "retracted")
PATIENT_EXAMPLE = {
    "resourceType": "Patient",
    "identifier": [{"system": "ehr-jimo", "value": "370282-000123"}],
    "name": [{"family": "王", "given": ["建国"]}],
    "gender": "male",
    "birthDate": "1958-04-10",
    "telecom": [{"system": "phone", "value": "+86 138-0013-8000"}],
    "generalPractitioner": [{"reference": "Organization/jimo-01"}],
}
CONDITION_EXAMPLE = {
    "resourceType": "Condition",
    "subject": {"reference": "Patient/1"},
    "code": {"coding": [{"system": "http://hl7.org/fhir/sid/icd-10", "code": "I25.1"}]},
    "clinicalStatus": {"coding": [{"code": "active"}]},
    "onsetDateTime": "2019-05-01",
}
ENCOUNTER_EXAMPLE = {
    "resourceType": "Encounter",
    "status": "finished",
    "class": {"code": "AMB"},
    "identifier": [{"system": "his-jimo", "value": "visit-2026-000311"}],
    "subject": {"reference": "Patient/1"},
    "period": {"start": "2026-03-01T08:40:00+08:00"},
}


def _patient(resource: Annotated[dict[str, Any], Body(examples=[PATIENT_EXAMPLE])]) -> PatientIn:
    return fhir_patient.map_patient(fhir_patient.parse_patient(resource))


def _condition(resource: Annotated[dict[str, Any], Body(examples=[CONDITION_EXAMPLE])]) -> MappedDiagnosis:
    return fhir_patient.map_condition(fhir_patient.parse_condition(resource))


def _encounter(resource: Annotated[dict[str, Any], Body(examples=[ENCOUNTER_EXAMPLE])]) -> MappedVisit:
    return fhir_patient.map_encounter(fhir_patient.parse_encounter(resource))


@router.post(
    "/Patient",
    response_model=FhirResult,
    status_code=status.HTTP_201_CREATED,
    responses=error_responses(401, 403, 413, 422, 429, 503),
    operation_id="fhir-patient",
)
def post_patient(
    data: Annotated[PatientIn, Depends(_patient)],
    session: SessionDep,
    clock: ClockDep,
    pathway: PathwayDep,
    key: CurrentKey,
    response: Response,
) -> FhirResult:
    """One FHIR R4 Patient, registered by its first identifier (system → our ``source_system``, value
    → ``external_id``): 201 ``created``, else 200 ``amended`` or ``duplicate`` (nothing changed);
    the entry's ``patient_id`` is our id (``Patient/<id>`` in the other resources).

    ``gender`` male or female (else 422 naming ``Patient.gender``), ``birthDate``, the first
    ``name`` (its text, else family + given: 王 + 建国 → 王建国), the first phone of ``telecom``, and
    the managing team as ``generalPractitioner`` ``Organization/<team code>``. Conditions,
    complications, smoking and pregnancy are not in a Patient: an update keeps them (Conditions
    arrive as ``POST /v1/fhir/Condition``). ehr and admin keys only.
    """
    permissions.require_role(key, Role.EHR)
    results, changed = register_patients(session, key, pathway, clock.now(), [(0, data)], raising=True)
    reassess(session, pathway, clock.now(), changed.values())
    session.commit()
    _status(response, results)
    return summary(results.values())


@router.post(
    "/Condition",
    response_model=FhirResult,
    status_code=status.HTTP_201_CREATED,
    responses=error_responses(401, 403, 404, 413, 422, 429, 503),
    operation_id="fhir-condition",
)
def post_condition(
    data: Annotated[MappedDiagnosis, Depends(_condition)],
    session: SessionDep,
    clock: ClockDep,
    pathway: PathwayDep,
    key: CurrentKey,
    response: Response,
) -> FhirResult:
    """One FHIR R4 Condition of ``subject`` ``Patient/<id>``, by its ICD-10 code (system
    ``http://hl7.org/fhir/sid/icd-10``, or GB/T 14396 as ``…/icd-10-cn`` or its OID): I10–I15
    hypertension, E10–E14 diabetes, E78 dyslipidemia, N18.3/N18.4 ckd, and the 六病 complications
    (I20–I25 chd, I60–I64/I69 stroke, E1x.2–E1x.5 nephropathy, retinopathy, neuropathy, pvd; I70.2,
    I73.9 pvd) with their ``onsetDateTime`` (to the day). Another code is 422 naming
    ``Condition.code``. ``clinicalStatus`` inactive / resolved / remission or ``verificationStatus``
    entered-in-error / refuted removes it (``retracted``). 201 ``created``; 200 ``amended`` (an
    onset changed), ``retracted`` or ``duplicate``. Then the patient is reassessed. ehr and admin keys.
    """
    permissions.require_role(key, Role.EHR)
    results, changed = record_diagnoses(
        session, key, clock.now(), [(0, data)], _named("Condition"), raising=True
    )
    reassess(session, pathway, clock.now(), changed.values())
    session.commit()
    _status(response, results)
    return summary(results.values())


@router.post(
    "/Encounter",
    response_model=FhirResult,
    status_code=status.HTTP_201_CREATED,
    responses=error_responses(401, 403, 404, 413, 422, 429, 503),
    operation_id="fhir-encounter",
)
def post_encounter(
    data: Annotated[MappedVisit, Depends(_encounter)],
    session: SessionDep,
    clock: ClockDep,
    pathway: PathwayDep,
    key: CurrentKey,
    response: Response,
) -> FhirResult:
    """One FHIR R4 Encounter of ``subject`` ``Patient/<id>`` as a clinic visit at ``period.start``,
    once per (its identifier's system, ``identifier[0].value``: the visit's source_encounter_id), as
    ``POST /v1/patients/{id}/encounters``: the entry's ``encounter_id`` is the visit. Alone it has
    no readings; in a Bundle, the Observations whose ``encounter`` references it are its readings.
    ehr and admin keys only.
    """
    permissions.require_role(key, Role.EHR)
    results, changed = record_visits(
        session, key, pathway, clock.now(), [(0, data, [])], _named("Encounter"), raising=True
    )
    reassess(session, pathway, clock.now(), changed.values())
    session.commit()
    _status(response, results)
    return summary(results.values())


def _named(kind: str) -> Callable[[int], str]:
    return lambda _: kind


def _status(response: Response, results: dict[int, FhirEntryResult]) -> None:
    if all(r.status != "created" for r in results.values()):
        response.status_code = status.HTTP_200_OK


def _rejected(index: int, error: PathwayError) -> FhirEntryResult:
    return FhirEntryResult(index=index, status="rejected", error=ItemError(**error.as_dict()))


Changed = dict[int, Patient]


def register_patients(
    session: Session,
    key: Caller,
    pathway: PathwayConfig,
    now: datetime,
    items: list[tuple[int, PatientIn]],
    *,
    raising: bool = False,
) -> tuple[dict[int, FhirEntryResult], Changed]:
    """Each Patient registered (a refusal: its entry rejected, or raised with ``raising``)."""
    results: dict[int, FhirEntryResult] = {}
    changed: Changed = {}
    for index, data in items:
        try:
            permissions.require_role(key, Role.EHR)
            patient, outcome = registration.register_demographics(session, data, now, pathway.tz)
        except PathwayError as error:
            if raising:
                raise
            results[index] = _rejected(index, error)
            continue
        assert patient.id is not None
        permissions.audit(session, key, "fhir.patient", patient.id, now)
        results[index] = FhirEntryResult(index=index, status=outcome, patient_id=patient.id)
        if outcome in STORED:
            changed[patient.id] = patient
    return results, changed


def record_diagnoses(
    session: Session,
    key: Caller,
    now: datetime,
    items: list[tuple[int, MappedDiagnosis]],
    field_of: Callable[[int], str],
    *,
    raising: bool = False,
) -> tuple[dict[int, FhirEntryResult], Changed]:
    """Each Condition recorded on its patient (patients locked in id order)."""
    results: dict[int, FhirEntryResult] = {}
    changed: Changed = {}
    for index, item in sorted(items, key=lambda pair: pair[1].patient_id):
        try:
            permissions.require_role(key, Role.EHR)
            patient = patient_for(session, key, item.patient_id, "fhir.condition", now, Role.EHR, write=True)
            outcome = registration.record_diagnosis(
                session, patient, item.diagnosis, item.onset, present=item.present, now=now
            )
        except PathwayError as error:
            if raising:
                raise
            results[index] = _rejected(index, _at(error, field_of(index)))
            continue
        results[index] = FhirEntryResult(index=index, status=outcome, patient_id=item.patient_id)
        if outcome in STORED:
            changed[item.patient_id] = patient
    return results, changed


def record_visits(
    session: Session,
    key: Caller,
    pathway: PathwayConfig,
    now: datetime,
    items: list[tuple[int, MappedVisit, list[int]]],
    field_of: Callable[[int], str],
    *,
    raising: bool = False,
) -> tuple[dict[int, FhirEntryResult], Changed]:
    """Each Encounter stored as a visit (with the readings mapped into it); the entries of its
    Observations (``readings_of``: their indexes) answered with the visit's outcome."""
    results: dict[int, FhirEntryResult] = {}
    changed: Changed = {}
    for index, item, observation_indexes in sorted(items, key=lambda triple: triple[1].patient_id):
        try:
            permissions.require_role(key, Role.EHR)
            patient = patient_for(session, key, item.patient_id, "fhir.encounter", now, Role.EHR, write=True)
            own_system = item.system is not None and key.role in (Role.ADMIN, Role.EHR)
            encounter_id, outcome = recording.record_encounter(
                session,
                patient,
                item.visit,
                source_system=item.system if own_system and item.system else key.source_system,
                config=pathway,
                now=now,
            )
        except PathwayError as error:
            if raising:
                raise
            for each in (index, *observation_indexes):
                results[each] = _rejected(each, _at(error, field_of(index)))
            continue
        for each in (index, *observation_indexes):
            results[each] = FhirEntryResult(
                index=each, status=outcome, patient_id=item.patient_id, encounter_id=encounter_id
            )
        if outcome in STORED:
            changed[item.patient_id] = patient
    return results, changed


def _at(error: PathwayError, where: str) -> PathwayError:
    """A store's refusal (naming our field, or none) placed under the entry it concerns."""
    if error.field is None or not error.field[:1].isupper():
        error.field = f"{where}.{error.field}" if error.field else where
    return error


def reassess(session: Session, pathway: PathwayConfig, now: datetime, patients: Iterable[Patient]) -> None:
    """Each changed patient reassessed once (in id order)."""
    for patient in sorted(patients, key=lambda p: p.id or 0):
        reassessment.reassess_or_defer(session, patient, pathway, now)
