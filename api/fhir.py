"""FHIR R4 ingest: one Observation, or a Bundle of them, mapped by LOINC code and UCUM unit."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, status
from pydantic import BaseModel

from api.deps import ClockDep, CurrentKey, PathwayDep, SessionDep, patient_for
from api.errors import error_responses
from pathway import fhir, recording, service
from pathway.access import Role
from pathway.errors import PathwayError
from pathway.ingest import ItemError, ItemResult
from pathway.vocabulary import ReadingSource

router = APIRouter(prefix="/v1/fhir", tags=["fhir"])

UCUM = "http://unitsofmeasure.org"
OBSERVATION_EXAMPLE = {
    "resourceType": "Observation",
    "status": "final",
    "identifier": [{"system": "urn:gateway:omron", "value": "obs-000912"}],
    "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category",
                              "code": "vital-signs"}]}],
    "code": {"coding": [{"system": "http://loinc.org", "code": "85354-9"}]},
    "subject": {"reference": "Patient/1"},
    "effectiveDateTime": "2026-03-01T07:30:00+08:00",
    "component": [
        {"code": {"coding": [{"system": "http://loinc.org", "code": "8480-6"}]},
         "valueQuantity": {"value": 152, "unit": "mmHg", "system": UCUM, "code": "mm[Hg]"}},
        {"code": {"coding": [{"system": "http://loinc.org", "code": "8462-4"}]},
         "valueQuantity": {"value": 94, "unit": "mmHg", "system": UCUM, "code": "mm[Hg]"}},
    ],
}  # fmt: skip


class FhirEntryResult(ItemResult):
    patient_id: int | None = None


class FhirResult(BaseModel):
    created: int
    duplicate: int
    rejected: int
    entries: list[FhirEntryResult]


# Parsing and mapping are dependencies, declared before the session: FastAPI solves them first, so a
# large Bundle is parsed (in the thread pool) before the request opens its session, and on SQLite
# before it queues for the one writer: other requests are not held behind the parse.


def _mapped_observation(
    observation: Annotated[dict[str, Any], Body(examples=[OBSERVATION_EXAMPLE])],
    source: ReadingSource | None = None,
) -> fhir.MappedObservation:
    return fhir.map_observation(fhir.parse_observation(observation), source, "Observation")


def _mapped_bundle(
    bundle: Annotated[dict[str, Any], Body()], source: ReadingSource | None = None
) -> fhir.MappedBundle:
    return fhir.map_bundle(bundle, source)


@router.post(
    "/Observation",
    response_model=FhirResult,
    status_code=status.HTTP_201_CREATED,
    responses=error_responses(401, 403, 404, 413, 422, 429, 503),
    operation_id="fhir-observation",
)
def post_observation(
    mapped: Annotated[fhir.MappedObservation, Depends(_mapped_observation)],
    session: SessionDep,
    clock: ClockDep,
    pathway: PathwayDep,
    key: CurrentKey,
) -> FhirResult:
    """One FHIR R4 Observation (BP panel 85354-9, glucose, HbA1c or lipids); 422 names what is unmapped."""
    return _store(session, clock, pathway, key, [(0, mapped)], rejected={})


@router.post(
    "",
    response_model=FhirResult,
    status_code=status.HTTP_201_CREATED,
    responses=error_responses(401, 413, 422, 429, 503),
    operation_id="fhir-bundle",
)
def post_bundle(
    parsed: Annotated[fhir.MappedBundle, Depends(_mapped_bundle)],
    session: SessionDep,
    clock: ClockDep,
    pathway: PathwayDep,
    key: CurrentKey,
) -> FhirResult:
    """A Bundle of Observations: each entry is created, a duplicate, or rejected with the reason."""
    rejected = {index: ItemError(**error.as_dict()) for index, error in parsed.rejected.items()}
    return _store(session, clock, pathway, key, parsed.mapped, rejected)


def _store(
    session: SessionDep,
    clock: ClockDep,
    pathway: PathwayDep,
    key: CurrentKey,
    mapped: list[tuple[int, fhir.MappedObservation]],
    rejected: dict[int, ItemError],
) -> FhirResult:
    now = clock.now()
    results: dict[int, FhirEntryResult] = {
        index: FhirEntryResult(index=index, status="rejected", error=error)
        for index, error in rejected.items()
    }
    by_patient: dict[int, list[tuple[int, fhir.MappedObservation]]] = {}
    for index, item in mapped:
        by_patient.setdefault(item.patient_id, []).append((index, item))
    single = len(mapped) == 1 and not rejected
    for patient_id, items in sorted(by_patient.items()):  # patients locked in one order: no deadlock
        try:
            patient = patient_for(
                session, key, patient_id, "fhir.observation", now, Role.EHR, Role.GATEWAY, write=True
            )
        except PathwayError as error:
            if single:
                raise
            for index, _ in items:
                results[index] = FhirEntryResult(
                    index=index, status="rejected", error=ItemError(**error.as_dict())
                )
            continue
        now = clock.now()  # after the patient's lock
        stored = recording.record_readings(
            session, patient, [m.reading for _, m in items], source_system="fhir", config=pathway, now=now
        )
        for (index, _), outcome in zip(items, stored, strict=True):
            results[index] = FhirEntryResult(
                **{**outcome.model_dump(), "index": index, "patient_id": patient_id}
            )
        stored_any = any(outcome.status == "created" for outcome in stored)
        service.reassess_after_ingest(session, patient, pathway, now, stored_any=stored_any)
    session.commit()
    entries = [results[i] for i in sorted(results)]
    return FhirResult(
        created=sum(e.status == "created" for e in entries),
        duplicate=sum(e.status == "duplicate" for e in entries),
        rejected=sum(e.status == "rejected" for e in entries),
        entries=entries,
    )
