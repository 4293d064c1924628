"""FHIR R4 read-out under ``/v1/fhir`` (issue #17): Patient, Observation, RiskAssessment,
ServiceRequest, Task, CarePlan and the CapabilityStatement, as ``application/fhir+json``.

The same API keys, roles, team scoping and audit as the JSON API: ehr and team keys read (a team
key: its own team's patients and tasks), every read of a patient is audited. A patient that does
not exist and one outside the key's team are the same 404. Searches answer paged ``searchset``
Bundles (``_count``, at most 200; a ``next`` link while more follow, in a stable order: the instant,
then the id). Every error is an OperationOutcome (a search parameter we do not serve, or a value we
cannot read, is 400 naming the parameter). The CapabilityStatement is built from this module's
routes (:data:`SERVED`), so it lists exactly what answers.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from datetime import datetime
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute

from api.deps import ClockDep, CurrentKey, PathwayDep, PatientId, SessionDep, patient_for
from api.errors import error_responses
from api.teams import team_for
from pathway.access.permissions import Forbidden, NotYours, Role
from pathway.clinical.errors import PathwayError
from pathway.clinical.vocabulary import ReadingKind
from pathway.exchange import fhir_resources, fhir_search, readout
from pathway.exchange.capability import SearchParameter, Served, capability_statement
from pathway.exchange.fhir_search import InvalidSearch
from pathway.ingest.fhir import LOINC
from pathway.ingest.inbound import Text
from pathway.patients import care_plan, reassessment, registration
from pathway.store.tables import Patient
from pathway.teams.teams import UnknownTeam

FHIR_JSON = "application/fhir+json"
PREFIX = "/v1/fhir"
_READERS = (Role.EHR, Role.TEAM)


class FhirJSONResponse(JSONResponse):
    media_type = FHIR_JSON


class FhirRoute(APIRoute):
    """A read-out route: any error it raises (a refused key, an unknown patient, a bad parameter)
    is answered as an OperationOutcome with the error's status and stable code."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def answer(request: Request) -> Response:
            try:
                return await handler(request)
            except PathwayError as error:
                return _outcome(error)
            except RequestValidationError as error:
                first = error.errors()[0] if error.errors() else {}
                where = [str(p) for p in first.get("loc", ()) if p not in ("query", "path")]
                return _outcome(
                    InvalidSearch(str(first.get("msg", "invalid request")), ".".join(where) or None)
                )

        return answer


def _outcome(error: PathwayError) -> Response:
    return FhirJSONResponse(
        fhir_resources.operation_outcome(error), status_code=error.status, headers=error.headers
    )


router = APIRouter(
    prefix=PREFIX, tags=["fhir"], route_class=FhirRoute, default_response_class=FhirJSONResponse
)
_ERRORS = error_responses(400, 401, 403, 404, 429, 503)


def _parameter(name: str, kind: str, documentation: str) -> SearchParameter:
    return SearchParameter(name, kind, documentation)


PATIENT = _parameter("patient", "reference", "the patient (Patient/<id>); required")
SERVED: dict[str, Served] = {
    "Patient": Served("Patient", ("read",)),
    "Observation": Served(
        "Observation",
        ("search-type",),
        (
            PATIENT,
            _parameter("code", "token", "LOINC codes (system|code), any of them"),
            _parameter("date", "date", "effective time, with ge, gt, le, lt or eq (a day: the clinic's)"),
        ),
    ),
    "RiskAssessment": Served("RiskAssessment", ("search-type",), (PATIENT,)),
    "ServiceRequest": Served("ServiceRequest", ("search-type",), (PATIENT,)),
    "Task": Served(
        "Task",
        ("search-type",),
        (
            _parameter("owner", "reference", "the team (CareTeam/<id>); a team key: its own by default"),
            _parameter("status", "token", "Task statuses, any of them (ready: open)"),
        ),
    ),
    "CarePlan": Served("CarePlan", ("search-type",), (PATIENT,)),
}


def _search_values(resource_type: str) -> Callable[[Request], dict[str, list[str]]]:
    """A dependency: the query's values by name, refusing a parameter the type does not serve."""
    allowed = {p.name for p in SERVED[resource_type].search_parameters} | set(fhir_search.PAGING_PARAMETERS)

    def values(request: Request) -> dict[str, list[str]]:
        found: dict[str, list[str]] = {}
        for name, value in request.query_params.multi_items():
            if name not in allowed:
                raise InvalidSearch(f"{resource_type} is not searched by {name!r}", name)
            found.setdefault(name, []).append(value)
        return found

    return values


def _base(request: Request) -> str:
    return str(request.base_url).rstrip("/") + PREFIX


def _bundle(
    request: Request, resources: list[dict[str, Any]], resume_after: tuple[datetime, int] | None
) -> dict[str, Any]:
    """The searchset of one page; its ``next`` link is this search resumed after the page's last."""
    kept = [(k, v) for k, v in request.query_params.multi_items() if k != "_cursor"]
    self_url = str(request.url)
    next_url = None
    if resume_after is not None:
        cursor = fhir_search.cursor_text(*resume_after)
        next_url = f"{_base(request)}/{request.url.path.rsplit('/', 1)[-1]}?" + urlencode(
            [*kept, ("_cursor", cursor)]
        )
    return fhir_resources.searchset(resources, _base(request), fhir_resources.Links(self_url, next_url))


Keyed = tuple[tuple[datetime, int], dict[str, Any]]
"""A resource of a short list with its place in the list's stable order (an instant, then an id)."""


def _short_list(request: Request, values: dict[str, list[str]], items: list[Keyed]) -> dict[str, Any]:
    """A short list (a patient's referrals, assessment, plan) paged as the keyset searches are."""
    page = fhir_search.page_of(values)
    ordered = sorted(items, key=lambda item: item[0])
    after = [item for item in ordered if page.after is None or item[0] > page.after]
    shown = after[: page.count]
    resume = shown[-1][0] if len(after) > page.count else None
    return _bundle(request, [resource for _, resource in shown], resume)


def _searched_patient(
    session: SessionDep, key: CurrentKey, values: dict[str, list[str]], action: str, now: datetime
) -> Patient:
    """The patient a search names, if this key may read it (audited); one that does not exist and
    one outside the key's team are the same 404, naming the ``patient`` parameter."""
    patient_id = _patient_id(values)
    try:
        return patient_for(session, key, patient_id, action, now, *_READERS)
    except (registration.UnknownPatient, NotYours):
        raise registration.UnknownPatient(f"no patient with id {patient_id}", "patient") from None


def _patient_id(values: dict[str, list[str]]) -> int:
    named = values.get("patient")
    if not named:
        raise InvalidSearch("search by patient (patient=Patient/<id>)", "patient")
    return fhir_search.reference_id(named[-1], "Patient", "patient")


@router.get("/metadata", operation_id="fhir-metadata", responses=_ERRORS)
def metadata(request: Request, key: CurrentKey, clock: ClockDep) -> dict[str, Any]:
    """The CapabilityStatement: the resources, interactions and search parameters served here."""
    return capability_statement(list(SERVED.values()), request.app.version, clock.now())


@router.get("/Patient/{patient_id}", operation_id="fhir-read-patient", responses=_ERRORS)
def read_patient(
    patient_id: PatientId, session: SessionDep, clock: ClockDep, key: CurrentKey
) -> dict[str, Any]:
    """One patient (identifier: the registering system and its id)."""
    patient = patient_for(session, key, patient_id, "fhir.patient.read", clock.now(), *_READERS)
    session.commit()  # the audit row
    return fhir_resources.patient(patient)


PatientQuery = Annotated[Text | None, Query(description="Patient/<id>")]


@router.get("/Observation", operation_id="fhir-search-observation", responses=_ERRORS)
def search_observations(
    request: Request,
    values: Annotated[dict[str, list[str]], Depends(_search_values("Observation"))],
    session: SessionDep,
    clock: ClockDep,
    pathway: PathwayDep,
    key: CurrentKey,
    patient: PatientQuery = None,
    code: Annotated[list[Text] | None, Query(description="LOINC system|code, comma-separated")] = None,
    date: Annotated[
        list[Text] | None, Query(description="ge2026-01-01, lt2026-03-01T08:00:00+08:00…")
    ] = None,
    count: Annotated[Text | None, Query(alias="_count")] = None,
    cursor: Annotated[Text | None, Query(alias="_cursor", description="from a next link")] = None,
) -> dict[str, Any]:
    """The patient's readings in force (a BP one Observation with systolic and diastolic
    components), by effective time then id."""
    bounds = fhir_search.date_bounds(values.get("date", []), pathway.tz)
    codes = fhir_search.tokens(values["code"], LOINC) if "code" in values else None
    page = fhir_search.page_of(values)
    subject = _searched_patient(session, key, values, "fhir.observation.read", clock.now())
    assert subject.id is not None
    found = readout.observations(session, subject.id, codes, bounds, page)
    session.commit()  # the audit row
    units = pathway.units.kinds
    resources = [fhir_resources.observation(r, units[ReadingKind(r.kind)].canonical) for r in found.rows]
    return _bundle(request, resources, found.resume_after)


@router.get("/RiskAssessment", operation_id="fhir-search-riskassessment", responses=_ERRORS)
def search_risk_assessments(
    request: Request,
    values: Annotated[dict[str, list[str]], Depends(_search_values("RiskAssessment"))],
    session: SessionDep,
    clock: ClockDep,
    pathway: PathwayDep,
    key: CurrentKey,
    patient: PatientQuery = None,
    count: Annotated[Text | None, Query(alias="_count")] = None,
    cursor: Annotated[Text | None, Query(alias="_cursor")] = None,
) -> dict[str, Any]:
    """The current assessment: tier and level as predictions, each fired rule a basis (rule id,
    pack id and version)."""
    fhir_search.page_of(values)
    found = _searched_patient(session, key, values, "fhir.risk_assessment.read", clock.now())
    record = reassessment.current_assessment(session, found, pathway, clock)
    session.commit()
    assert record.id is not None
    return _short_list(
        request, values, [((record.evaluated_at, record.id), fhir_resources.risk_assessment(record))]
    )


@router.get("/ServiceRequest", operation_id="fhir-search-servicerequest", responses=_ERRORS)
def search_service_requests(
    request: Request,
    values: Annotated[dict[str, list[str]], Depends(_search_values("ServiceRequest"))],
    session: SessionDep,
    clock: ClockDep,
    key: CurrentKey,
    patient: PatientQuery = None,
    count: Annotated[Text | None, Query(alias="_count")] = None,
    cursor: Annotated[Text | None, Query(alias="_cursor")] = None,
) -> dict[str, Any]:
    """The patient's referrals (上转) and where each stands, oldest first."""
    fhir_search.page_of(values)
    found = _searched_patient(session, key, values, "fhir.service_request.read", clock.now())
    assert found.id is not None
    referrals = readout.referrals(session, found.id)
    session.commit()
    items = [((r.created_at, r.id or 0), fhir_resources.service_request(r)) for r in referrals]
    return _short_list(request, values, items)


@router.get("/Task", operation_id="fhir-search-task", responses=_ERRORS)
def search_tasks(
    request: Request,
    values: Annotated[dict[str, list[str]], Depends(_search_values("Task"))],
    session: SessionDep,
    clock: ClockDep,
    key: CurrentKey,
    owner: Annotated[Text | None, Query(description="CareTeam/<id>")] = None,
    status: Annotated[
        list[Text] | None, Query(description="ready, completed, failed, rejected, cancelled")
    ] = None,
    count: Annotated[Text | None, Query(alias="_count")] = None,
    cursor: Annotated[Text | None, Query(alias="_cursor")] = None,
) -> dict[str, Any]:
    """A team's tasks, by due time then id; a team key sees its own team's only (another team is
    404, as for one that does not exist)."""
    if values.get("owner"):
        team_id = fhir_search.reference_id(values["owner"][-1], "CareTeam", "owner")
    elif key.role is Role.TEAM and key.team_id is not None:
        team_id = key.team_id
    elif key.role is Role.TEAM:
        raise Forbidden("this team key has no team")
    else:
        raise InvalidSearch("search a team's tasks by owner=CareTeam/<id>", "owner")
    statuses = fhir_search.tokens(values["status"]) if "status" in values else None
    page = fhir_search.page_of(values)
    try:
        team_for(session, key, team_id, "fhir.task.read", clock.now())
    except UnknownTeam:
        raise UnknownTeam(f"no team with id {team_id}", "owner") from None
    found = readout.team_tasks(session, team_id, statuses, page)
    session.commit()
    return _bundle(request, [fhir_resources.task(t) for t in found.rows], found.resume_after)


@router.get("/CarePlan", operation_id="fhir-search-careplan", responses=_ERRORS)
def search_care_plans(
    request: Request,
    values: Annotated[dict[str, list[str]], Depends(_search_values("CarePlan"))],
    session: SessionDep,
    clock: ClockDep,
    pathway: PathwayDep,
    key: CurrentKey,
    patient: PatientQuery = None,
    count: Annotated[Text | None, Query(alias="_count")] = None,
    cursor: Annotated[Text | None, Query(alias="_cursor")] = None,
) -> dict[str, Any]:
    """This year's plan (年度照护计划): every activity planned or done."""
    fhir_search.page_of(values)
    now = clock.now()
    found = _searched_patient(session, key, values, "fhir.care_plan.read", now)
    assert found.id is not None
    record = reassessment.current_assessment(session, found, pathway, clock)
    today = now.astimezone(pathway.tz).date()
    history = care_plan.history_shown(session, found, today.year, pathway.tz)
    plan = care_plan.plan_year(session, record, history, today.year, today, pathway.tz)
    session.commit()
    start = datetime(today.year, 1, 1, tzinfo=pathway.tz)
    return _short_list(request, values, [((start, found.id), fhir_resources.care_plan(plan))])
