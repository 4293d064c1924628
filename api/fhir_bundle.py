"""FHIR R4 Bundles: ``batch`` (each entry on its own) or ``transaction`` (all or nothing).

The entries are parsed as a dependency, before the request opens its session (a large Bundle is
parsed in the thread pool, and on SQLite before it queues for the one writer); mapping needs the
key's role and the ids of the Patients the Bundle registers, so it follows in the route.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, status
from fhir.resources.R4B.condition import Condition
from fhir.resources.R4B.encounter import Encounter

from api.deps import ClockDep, CurrentKey, PathwayDep, SessionDep
from api.errors import error_responses
from api.fhir import (
    FhirEntryResult,
    FhirResult,
    Mapped,
    entry_field,
    mapped_observation,
    store_entries,
    summary,
)
from api.fhir_outcome import BundleRejected
from api.fhir_registration import reassess, record_diagnoses, record_visits, register_patients
from pathway.access import permissions
from pathway.access.permissions import Role
from pathway.clinical.errors import InvalidInput, PathwayError
from pathway.clinical.vocabulary import ReadingSource
from pathway.ingest import fhir, fhir_medication, fhir_patient
from pathway.ingest.fhir_patient import MappedDiagnosis, MappedVisit
from pathway.ingest.inbound import EncounterReadingIn, ItemError, PatientIn

router = APIRouter(prefix="/v1/fhir", tags=["fhir"])


@dataclass
class ParsedEntries:
    """A Bundle's entries parsed: the Observations and medications (:class:`fhir.ParsedBundle`), and
    the Patients (mapped: they need nothing else), Conditions and Encounters (their subjects may
    reference a Patient of the Bundle by its fullUrl, so they are mapped once it is registered)."""

    bundle: fhir.ParsedBundle
    patients: list[tuple[int, PatientIn]] = field(default_factory=list)
    conditions: list[tuple[int, Condition]] = field(default_factory=list)
    encounters: list[tuple[int, Encounter]] = field(default_factory=list)


def _parsed_bundle(bundle: Annotated[dict[str, Any], Body()]) -> ParsedEntries:
    parsed = ParsedEntries(fhir.parse_bundle(bundle))
    for index, resource in parsed.bundle.registrations:
        where = entry_field(index)
        try:
            kind = resource["resourceType"]
            if kind == "Patient":
                parsed.patients.append(
                    (index, fhir_patient.map_patient(fhir_patient.parse_patient(resource, where), where))
                )
            elif kind == "Condition":
                parsed.conditions.append((index, fhir_patient.parse_condition(resource, where)))
            else:
                parsed.encounters.append((index, fhir_patient.parse_encounter(resource, where)))
        except PathwayError as error:
            parsed.bundle.rejected[index] = error
    return parsed


@router.post(
    "",
    response_model=FhirResult,
    status_code=status.HTTP_201_CREATED,
    responses=error_responses(401, 413, 422, 429, 503),
    operation_id="fhir-bundle",
)
def post_bundle(
    parsed: Annotated[ParsedEntries, Depends(_parsed_bundle)],
    session: SessionDep,
    clock: ClockDep,
    pathway: PathwayDep,
    key: CurrentKey,
    source: ReadingSource | None = None,
) -> FhirResult:
    """A Bundle of Observations, MedicationRequests / Statements, Patients, Conditions and Encounters.

    ``batch`` (or any type but ``transaction``): each entry is created, a duplicate, amended,
    retracted, or rejected with the reason (``error``, and ``outcome``: an OperationOutcome whose
    ``expression`` is the FHIRPath, e.g. ``Bundle.entry[3].resource.gender``), as the resource's own
    route says; the others are stored. ``transaction``: all or nothing: if any entry is rejected,
    nothing is stored and the answer is 422, an OperationOutcome with an issue per problem.

    Entries may reference a Patient of the same Bundle by its ``fullUrl`` (``urn:uuid:…``) as their
    ``subject``; an Observation whose ``encounter`` references an Encounter of the Bundle (by
    ``fullUrl``) is a reading of that visit (its entry answers with the visit's outcome). Patients
    are registered first, then Conditions, visits, and the rest; each patient changed is reassessed.
    Patient, Condition, Encounter and medication entries need an ehr or admin key (a gateway's are
    rejected ``forbidden``).
    """
    permissions.require_role(key, Role.EHR, Role.GATEWAY)
    bundle = parsed.bundle
    now = clock.now()
    results: dict[int, FhirEntryResult] = {
        index: FhirEntryResult(index=index, status="rejected", error=ItemError(**error.as_dict()))
        for index, error in bundle.rejected.items()
    }
    registered, changed = register_patients(session, key, pathway, now, parsed.patients)
    results.update(registered)
    patients_by_url = {
        bundle.full_urls[index]: result.patient_id
        for index, result in registered.items()
        if index in bundle.full_urls and result.patient_id is not None
    }

    def resolved(reference: str | None) -> str | None:
        found = patients_by_url.get(reference or "")
        return f"Patient/{found}" if found is not None else reference

    diagnoses: list[tuple[int, MappedDiagnosis]] = []
    for index, condition in parsed.conditions:
        if condition.subject is not None:
            condition.subject.reference = resolved(condition.subject.reference)
        try:
            diagnoses.append((index, fhir_patient.map_condition(condition, entry_field(index))))
        except PathwayError as error:
            results[index] = _rejected(index, error)
    recorded, more = record_diagnoses(session, key, now, diagnoses, entry_field)
    results.update(recorded)
    changed.update(more)

    visits: dict[str, tuple[int, MappedVisit, list[int]]] = {}
    unlinked: list[tuple[int, MappedVisit, list[int]]] = []
    for index, encounter in parsed.encounters:
        if encounter.subject is not None:
            encounter.subject.reference = resolved(encounter.subject.reference)
        try:
            visit: tuple[int, MappedVisit, list[int]] = (
                index,
                fhir_patient.map_encounter(encounter, entry_field(index)),
                [],
            )
        except PathwayError as error:
            results[index] = _rejected(index, error)
            continue
        url = bundle.full_urls.get(index)
        if url:
            visits[url] = visit
        else:
            unlinked.append(visit)
    observations: list[tuple[int, Mapped | fhir_medication.MappedMedication]] = []
    for index, observation in bundle.observations:
        if observation.subject is not None:
            observation.subject.reference = resolved(observation.subject.reference)
        where = entry_field(index)
        try:
            mapped = mapped_observation(observation, key, source, where)
            of_visit = (observation.encounter.reference if observation.encounter else None) or ""
            if of_visit in visits:
                visits[of_visit] = _with_reading(visits[of_visit], index, mapped, where)
            else:
                observations.append((index, mapped))
        except PathwayError as error:
            results[index] = _rejected(index, error)
    for index, resource in bundle.medications:
        where = entry_field(index)
        try:
            permissions.require_role(key, Role.EHR)  # a gateway relays measurements, not prescriptions
            subject = resource.get("subject")
            if isinstance(subject, dict) and isinstance(subject.get("reference"), str):
                resource = {**resource, "subject": {**subject, "reference": resolved(subject["reference"])}}
            medication = fhir_medication.parse_medication(resource, where)
            observations.append((index, fhir_medication.map_medication(medication, where)))
        except PathwayError as error:
            results[index] = _rejected(index, error)
    stored, more = record_visits(session, key, pathway, now, [*visits.values(), *unlinked], entry_field)
    results.update(stored)
    changed.update(more)
    alone = not results and not visits and not unlinked and len(observations) == 1  # answered as its route
    rest = store_entries(
        session, clock, pathway, key, observations, {}, entry_field, commit=False, alone=alone
    )
    results.update({entry.index: entry for entry in rest.entries})
    assessed = {entry.patient_id for entry in rest.entries}
    reassess(session, pathway, clock.now(), (p for i, p in changed.items() if i not in assessed))
    answer = summary(results.values())
    if bundle.kind == "transaction" and answer.rejected:
        raise BundleRejected([_problem(entry) for entry in answer.entries if entry.error is not None])
    session.commit()
    return answer


def _rejected(index: int, error: PathwayError) -> FhirEntryResult:
    return FhirEntryResult(index=index, status="rejected", error=ItemError(**error.as_dict()))


def _problem(entry: FhirEntryResult) -> PathwayError:
    assert entry.error is not None
    problem = PathwayError(entry.error.message, entry.error.field)
    problem.code = entry.error.code
    problem.status = (
        403
        if entry.error.code in ("forbidden", "source-not-allowed")
        else 404
        if entry.error.code == "unknown-patient"
        else 422
    )
    return problem


def _with_reading(
    visit: tuple[int, MappedVisit, list[int]], index: int, mapped: Mapped, where: str
) -> tuple[int, MappedVisit, list[int]]:
    """The visit with this Observation's reading (of its patient; a retraction is not a reading)."""
    encounter_index, item, indexes = visit
    if not isinstance(mapped, fhir.MappedObservation):
        raise InvalidInput("an Observation of a visit in the Bundle records a reading", f"{where}.status")
    if mapped.patient_id != item.patient_id:
        raise InvalidInput("the Observation's subject is not its encounter's", f"{where}.subject.reference")
    reading = mapped.reading
    taken = EncounterReadingIn(
        kind=reading.kind,
        value=reading.value,
        systolic=reading.systolic,
        diastolic=reading.diastolic,
        pulse=reading.pulse,
        unit=reading.unit,
        measured_at=reading.measured_at,
    )
    visit_in = item.visit.model_copy(update={"readings": [*item.visit.readings, taken]})
    return encounter_index, MappedVisit(item.patient_id, visit_in, item.system), [*indexes, index]
