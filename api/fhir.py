"""FHIR R4 ingest: one Observation, or a Bundle of them, mapped by LOINC code and UCUM unit."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, status
from pydantic import BaseModel

from api.deps import ClockDep, CurrentKey, PathwayDep, SessionDep, patient_for
from api.errors import error_responses
from api.fhir_outcome import OperationOutcome, entry_outcome
from pathway.access import permissions
from pathway.access.permissions import Role
from pathway.clinical.errors import InvalidInput, PathwayError
from pathway.clinical.vocabulary import ReadingSource
from pathway.ingest import fhir, fhir_medication, medication_in, prescribing, recording
from pathway.ingest.inbound import ItemError, ItemResult
from pathway.ingest.medication_in import PrescriptionIn
from pathway.patients import reassessment
from pathway.store.tables import Patient

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
    """One entry's outcome; ``patient_id`` our patient (a Patient entry: the one registered),
    ``encounter_id`` the visit an Encounter (and its Observations) became; a rejected entry's
    ``outcome`` is its ``error`` as a FHIR OperationOutcome (``expression``: the element's FHIRPath)."""

    patient_id: int | None = None
    encounter_id: int | None = None
    outcome: OperationOutcome | None = None


class FhirResult(BaseModel):
    created: int
    duplicate: int
    rejected: int
    amended: int = 0
    retracted: int = 0
    entries: list[FhirEntryResult]


Mapped = fhir.MappedObservation | fhir.RetractedObservation

# Parsing is a dependency, declared before the session: FastAPI solves it first, so a large Bundle
# is parsed (in the thread pool) before the request opens its session, and on SQLite before it
# queues for the one writer: other requests are not held behind the parse. Mapping needs the key's
# role (its default source) and is cheap: it follows in the route.


def _parsed_observation(
    observation: Annotated[dict[str, Any], Body(examples=[OBSERVATION_EXAMPLE])],
) -> Any:
    return fhir.parse_observation(observation)


@router.post(
    "/Observation",
    response_model=FhirResult,
    status_code=status.HTTP_201_CREATED,
    responses=error_responses(401, 403, 404, 413, 422, 429, 503),
    operation_id="fhir-observation",
)
def post_observation(
    observation: Annotated[Any, Depends(_parsed_observation)],
    session: SessionDep,
    clock: ClockDep,
    pathway: PathwayDep,
    key: CurrentKey,
    source: ReadingSource | None = None,
) -> FhirResult:
    """One FHIR R4 Observation (BP panel 85354-9, glucose, HbA1c or lipids); 422 names what is unmapped.

    ``status`` decides what it does: ``final`` records it; ``amended`` / ``corrected`` (or a final
    one with other values under a stored identifier) is a new version of the reading its
    identifier names (``amended``; the old one kept, seen by no history read); ``entered-in-error``
    / ``cancelled`` retracts that reading (``retracted``); a result not final yet (``preliminary``,
    ``registered``, ``unknown``) is refused, 422 ``result-not-final`` naming ``Observation.status``.
    The source is ``source``, else ``lab`` for the laboratory category, else the key's role's
    default (a gateway: ``wearable``; others: ``clinic``); a source the key's role may not post is
    403 ``source-not-allowed``. An ehr or admin key's observation is identified by (patient, its
    identifier's system, value); a gateway's by the key's registered system.
    """
    permissions.require_role(key, Role.EHR, Role.GATEWAY)
    mapped = mapped_observation(observation, key, source, "Observation")
    return store_entries(session, clock, pathway, key, [(0, mapped)], {}, lambda _: "Observation")


def _medication_route(kind: str) -> Callable[..., FhirResult]:
    def post_medication(
        resource: Annotated[dict[str, Any], Body()],
        session: SessionDep,
        clock: ClockDep,
        pathway: PathwayDep,
        key: CurrentKey,
    ) -> FhirResult:
        permissions.require_role(key, Role.EHR)
        if resource.get("resourceType") != kind:
            raise InvalidInput(f"a {kind}", f"{kind}.resourceType")
        mapped = fhir_medication.map_medication(fhir_medication.parse_medication(resource, kind), kind)
        if isinstance(mapped.item, PrescriptionIn):
            prescribing.check_prescription(mapped.item, config=pathway, now=clock.now(), where=kind)
        return store_entries(session, clock, pathway, key, [(0, mapped)], {}, lambda _: kind)

    post_medication.__doc__ = (
        f"One FHIR R4 {kind} (PATHWAY.md §7): medicationCodeableConcept with an ATC coding "
        f"({medication_in.ATC_SYSTEM}) or a class of ours ({medication_in.MEDICATION_CLASS_SYSTEM}); "
        "identifier[0] its prescription id. active / completed record it (a new version if it "
        "changed: ``amended``), stopped records its stop, entered-in-error / cancelled retract it "
        "(``retracted``); other statuses are 422 ``result-not-final``. As POST "
        "/v1/patients/{id}/prescriptions for the rest (ehr and admin keys only)."
    )
    return post_medication


for _kind in ("MedicationRequest", "MedicationStatement"):
    router.post(
        f"/{_kind}",
        response_model=FhirResult,
        status_code=status.HTTP_201_CREATED,
        responses=error_responses(401, 403, 404, 413, 422, 429, 503),
        operation_id=f"fhir-{_kind.lower().removeprefix('medication')}-medication",
        name=f"post_{_kind.lower()}",
    )(_medication_route(_kind))


def entry_field(index: int) -> str:
    return f"Bundle.entry.{index}.resource"


def mapped_observation(observation: Any, key: CurrentKey, source: ReadingSource | None, field: str) -> Mapped:
    """The observation mapped with the key's role's default source; a source the role may not post
    is refused (``source-not-allowed``, naming ``source`` or the category it came from)."""
    mapped = fhir.map_observation(observation, source, field, permissions.DEFAULT_FHIR_SOURCE[key.role])
    if isinstance(mapped, fhir.MappedObservation):
        permissions.require_source(key, mapped.reading.source, "source" if source else f"{field}.category")
    return mapped


def store_entries(
    session: SessionDep,
    clock: ClockDep,
    pathway: PathwayDep,
    key: CurrentKey,
    mapped: list[tuple[int, Mapped | fhir_medication.MappedMedication]],
    rejected: dict[int, ItemError],
    field_of: Callable[[int], str],
    *,
    commit: bool = True,
    alone: bool | None = None,
) -> FhirResult:
    """The entries stored per patient, each patient reassessed; committed unless ``commit`` is
    false (a transaction Bundle commits only if no entry was rejected)."""
    now = clock.now()
    results: dict[int, FhirEntryResult] = {
        index: FhirEntryResult(index=index, status="rejected", error=error)
        for index, error in rejected.items()
    }
    by_patient: dict[int, list[tuple[int, Mapped | fhir_medication.MappedMedication]]] = {}
    for index, item in mapped:
        by_patient.setdefault(item.patient_id, []).append((index, item))
    single = (len(mapped) == 1 and not rejected) if alone is None else alone  # a refusal is the answer
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
        outcomes: list[ItemResult] = []
        medications = [(i, m) for i, m in items if isinstance(m, fhir_medication.MappedMedication)]
        try:
            outcomes += _prescriptions(session, patient, pathway, key, medications, now, field_of)
        except PathwayError as error:  # the pack knows no medication
            if single:
                raise
            outcomes += [
                ItemResult(index=i, status="rejected", error=ItemError(**error.as_dict()))
                for i, _ in medications
            ]
        observations = [(i, m) for i, m in items if not isinstance(m, fhir_medication.MappedMedication)]
        for system, group in _by_system(key, observations):
            readings = [(i, m) for i, m in group if isinstance(m, fhir.MappedObservation)]
            stored = recording.record_readings(
                session,
                patient,
                [m.reading for _, m in readings],
                source_system=system,
                config=pathway,
                now=now,
            )
            outcomes += [
                o.model_copy(update={"index": i}) for (i, _), o in zip(readings, stored, strict=True)
            ]
            withdrawn = [
                (i, m.source_reading_id) for i, m in group if isinstance(m, fhir.RetractedObservation)
            ]
            outcomes += recording.retract_readings(
                session,
                patient,
                withdrawn,
                source_system=system,
                now=now,
                field=lambda i: f"{field_of(i)}.identifier",
            )
        for outcome in outcomes:
            results[outcome.index] = FhirEntryResult(**outcome.model_dump(), patient_id=patient_id)
        permissions.audit_new_versions(session, key, (o.status for o in outcomes), patient_id, now)
        changed = any(o.status in ("created", "amended", "retracted") for o in outcomes)
        reassessment.reassess_after_ingest(session, patient, pathway, now, stored_any=changed)
    if commit:
        session.commit()
    return summary(results.values())


def summary(results: Iterable[FhirEntryResult]) -> FhirResult:
    """The answer: the entries in order (a rejected one with its OperationOutcome), and the counts."""
    entries = [
        e.model_copy(update={"outcome": entry_outcome(e.error)}) if e.error is not None else e
        for e in sorted(results, key=lambda e: e.index)
    ]
    return FhirResult(
        created=sum(e.status == "created" for e in entries),
        duplicate=sum(e.status == "duplicate" for e in entries),
        rejected=sum(e.status == "rejected" for e in entries),
        amended=sum(e.status == "amended" for e in entries),
        retracted=sum(e.status == "retracted" for e in entries),
        entries=entries,
    )


def _prescriptions(
    session: SessionDep,
    patient: Patient,
    pathway: PathwayDep,
    key: CurrentKey,
    items: list[tuple[int, fhir_medication.MappedMedication]],
    now: datetime,
    field_of: Callable[[int], str],
) -> list[ItemResult]:
    """The MedicationRequests / Statements of one patient recorded; their outcomes as entries' (a
    prescription's ``updated`` is an entry's ``amended``)."""
    outcomes: list[ItemResult] = []
    for system, group in _by_system(key, items):
        recorded = prescribing.record_prescriptions(
            session,
            patient,
            [m.item for _, m in group],
            source_system=system,
            config=pathway,
            now=now,
            field=lambda n, group=group: field_of(group[n][0]),  # type: ignore[misc]
        )
        for (index, _), result in zip(group, recorded, strict=True):
            status_name = "amended" if result.status == "updated" else result.status
            outcomes.append(
                ItemResult(
                    index=index, status=status_name, reading_id=result.prescription_id, error=result.error
                )
            )
    return outcomes


def _by_system(key: CurrentKey, items: list[tuple[int, Any]]) -> list[tuple[str, list[tuple[int, Any]]]]:
    """The entries by the source system they are identified under: an ehr or admin key's by their
    identifier's system (the lab or hospital that issued it), else the key's; a gateway's always
    by the key's registered system."""
    groups: dict[str, list[tuple[int, Any]]] = {}
    for index, item in items:
        system = item.system if item.system and key.role in (Role.ADMIN, Role.EHR) else key.source_system
        groups.setdefault(system, []).append((index, item))
    return list(groups.items())
