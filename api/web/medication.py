"""The patient page's 用药 block and the team's medication forms (PATHWAY.md §7).

The block: the prescriptions in use by medication group, each with its supply end, the days left
and its supply state as the rules read it (:mod:`pathway.ingest.medication_record`), and the visits'
adherence and adverse-reaction answers over time.

The forms record a visit's medication answers (:func:`pathway.ingest.recording.record_encounter`),
add or change a prescription and stop one (:mod:`pathway.ingest.prescribing`), validated as the
JSON API validates them; then the patient is reassessed in the same transaction and the change
audited under the API's action names. Who may: the patient's own team (family doctors prescribe
in 三高之家), an EHR key or an admin; another team's patient is answered as one that does not exist.
A form that fails validation is shown again with what was typed and the field's error (nothing
stored); a missing or wrong CSRF token is refused before anything is read.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Path, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlmodel import Session

from api.deps import ClockDep, PathwayDep, PatientId, SessionDep, patient_for
from api.web import medication_forms
from api.web.actions import FormDep, check_csrf
from api.web.common import PREFIX, StateDep, TDep, WebRoute, WebSessionDep, WebState, render
from api.web.i18n import Translator
from api.web.session import WebSession
from pathway.access import permissions
from pathway.access.permissions import Role
from pathway.clinical.clock import Clock
from pathway.clinical.errors import PathwayError
from pathway.clinical.medication import MedicationClass, MedicationGroup
from pathway.ingest import medication_record, prescribing, recording
from pathway.patients import reassessment
from pathway.patients.reassessment import PathwayConfig
from pathway.store.tables import Patient, Team
from pathway.teams import teams

router = APIRouter(prefix=PREFIX, include_in_schema=False, route_class=WebRoute)
PrescriptionId = Annotated[int, Path(ge=1, le=2_147_483_647)]
_ROLES = (Role.EHR, Role.TEAM)
WORKBENCH_ID_PREFIX = "workbench-"
"""The source ids of visits and prescriptions entered on the workbench start so."""


@dataclass(frozen=True)
class FormError:
    """Why a form was not stored: its code, the field it names (None: the form as a whole), detail."""

    code: str
    field: str | None
    detail: str


@dataclass(frozen=True)
class MedicationBlock:
    groups: dict[MedicationGroup, list[medication_record.MedicationLine]]
    answers: list[medication_record.MedicationAnswer]
    classes: dict[MedicationGroup, list[MedicationClass]]  # the class choices, by group
    lapse_days: int | None
    today: str
    visit_at: str  # the visit form's default time (datetime-local)
    new_visit_id: str  # a fresh form's source ids: sending it twice stores it once
    new_prescription_id: str


def medication_block(
    session: Session, patient: Patient, config: PathwayConfig, now: datetime, zone: ZoneInfo
) -> MedicationBlock | None:
    """What the patient page shows of the medication; None under a pack without a medication table."""
    table = config.medication
    if table is None:
        return None
    local = now.astimezone(zone)
    return MedicationBlock(
        groups=medication_record.medication_in_use(session, patient, config=config, now=now),
        answers=medication_record.medication_answers(session, patient),
        classes={group: list(classes) for group, classes in table.groups.items()},
        lapse_days=table.windows.lapse_days if table.windows is not None else None,
        today=local.date().isoformat(),
        visit_at=local.strftime("%Y-%m-%dT%H:%M"),
        new_visit_id=WORKBENCH_ID_PREFIX + uuid.uuid4().hex,
        new_prescription_id=WORKBENCH_ID_PREFIX + uuid.uuid4().hex,
    )


Write = Callable[[Patient, datetime], str]
"""A form's change at ``now``: the notice to show (``unchanged`` forms store nothing)."""


def _submit(
    request: Request,
    form: dict[str, str],
    web: WebSession,
    session: Session,
    clock: Clock,
    pathway: PathwayConfig,
    state: WebState,
    t: Translator,
    patient_id: int,
    *,
    action: str,
    which: str,
    write: Write,
) -> Response:
    """CSRF, the patient (the team's own, locked), the change, the reassessment, one commit; a bad
    form is shown again with its error and nothing stored."""
    check_csrf(request, web, form)
    patient = patient_for(session, web.caller, patient_id, action, clock.now(), *_ROLES, write=True)
    now = clock.now()  # after the patient's lock: the reassessment sees every committed change
    try:
        prescribing.medication_table(pathway)
        notice = write(patient, now)
    except PathwayError as error:
        if error.status not in (409, 422):  # a refusal, an unknown record, a busy database: its page
            raise
        session.rollback()  # nothing of the form, nor its audit, is kept
        problem = FormError(error.code, error.field, error.detail)
        return _form_page(request, session, web, pathway, state, t, patient_id, clock, which, form, problem)
    changed = notice != "prescription_unchanged"
    reassessment.reassess_after_ingest(session, patient, pathway, now, stored_any=changed)
    session.commit()
    return RedirectResponse(f"{PREFIX}/patients/{patient_id}?notice={notice}#medication", status_code=303)


def _form_page(
    request: Request,
    session: Session,
    web: WebSession,
    pathway: PathwayConfig,
    state: WebState,
    t: Translator,
    patient_id: int,
    clock: Clock,
    which: str,
    form: dict[str, str],
    problem: FormError,
) -> Response:
    now = clock.now()
    patient = patient_for(session, web.caller, patient_id, "patient.read", now, *_ROLES)
    zone, team = _zone_of(session, patient, pathway)
    block = medication_block(session, patient, pathway, now, zone)
    session.commit()  # the audit of the read
    context = {
        "session": web,
        "team": team,
        "tz": zone,
        "patient": patient,
        "medication": block,
        "which": which,
        "values": {k: v for k, v in form.items() if k != "csrf"},
        "problem": problem,
    }
    status = 409 if problem.code == "prescription-superseded" else 422
    return render(request, state, t, "medication_form.html", context, status_code=status)


def _zone_of(session: Session, patient: Patient, pathway: PathwayConfig) -> tuple[ZoneInfo, Team | None]:
    """The patient's team and its time zone (the clinic's for a patient without a team)."""
    team = teams.require_team(session, patient.team_id) if patient.team_id is not None else None
    return (ZoneInfo(team.timezone) if team is not None else pathway.tz), team


@router.post("/patients/{patient_id}/medication/visit", response_class=HTMLResponse)
def record_visit(
    patient_id: PatientId,
    request: Request,
    form: FormDep,
    web: WebSessionDep,
    session: SessionDep,
    clock: ClockDep,
    pathway: PathwayDep,
    state: StateDep,
    t: TDep,
) -> Response:
    """A visit's medication answers: reviewed, adherence, adverse reaction (+ what it was)."""

    def write(patient: Patient, now: datetime) -> str:
        zone, _ = _zone_of(session, patient, pathway)
        visit = medication_forms.visit_in(form, zone)
        system = permissions.posting_system(web.caller, None)
        _, outcome = recording.record_encounter(
            session, patient, visit, source_system=system, config=pathway, now=now
        )
        if outcome == "amended":
            permissions.audit(session, web.caller, "encounter.amend", patient_id, now)
        return "medication_visit"

    return _submit(
        request,
        form,
        web,
        session,
        clock,
        pathway,
        state,
        t,
        patient_id,
        action="encounter.post",
        which="visit",
        write=write,
    )


@router.post("/patients/{patient_id}/prescriptions", response_class=HTMLResponse)
def add_prescription(
    patient_id: PatientId,
    request: Request,
    form: FormDep,
    web: WebSessionDep,
    session: SessionDep,
    clock: ClockDep,
    pathway: PathwayDep,
    state: StateDep,
    t: TDep,
) -> Response:
    """A new prescription (class or ATC code, drug, dose, supply days, started on)."""

    def write(patient: Patient, now: datetime) -> str:
        sent = medication_forms.blank(form, "source_prescription_id")
        source_id = sent or WORKBENCH_ID_PREFIX + uuid.uuid4().hex
        item = medication_forms.prescription_in(form, source_id)
        system = permissions.posting_system(web.caller, None)
        result = prescribing.record_prescriptions(
            session, patient, [item], source_system=system, config=pathway, now=now
        )[0]
        if not medication_forms.stored(result):
            return "prescription_unchanged"
        if result.status == "updated":
            permissions.audit(session, web.caller, "prescription.update", patient_id, now)
        return "prescription_added"

    return _submit(
        request,
        form,
        web,
        session,
        clock,
        pathway,
        state,
        t,
        patient_id,
        action="prescriptions.post",
        which="add",
        write=write,
    )


@router.post("/patients/{patient_id}/prescriptions/{prescription_id}", response_class=HTMLResponse)
def change_prescription(
    patient_id: PatientId,
    prescription_id: PrescriptionId,
    request: Request,
    form: FormDep,
    web: WebSessionDep,
    session: SessionDep,
    clock: ClockDep,
    pathway: PathwayDep,
    state: StateDep,
    t: TDep,
) -> Response:
    """What a prescription now says: a new version of it under its own source."""

    def write(patient: Patient, now: datetime) -> str:
        item = medication_forms.prescription_in(form, "change")
        result = prescribing.change_prescription(
            session, patient, prescription_id, item, config=pathway, now=now
        )
        if not medication_forms.stored(result):
            return "prescription_unchanged"
        permissions.audit(session, web.caller, "prescription.update", patient_id, now)
        return "prescription_changed"

    return _submit(
        request,
        form,
        web,
        session,
        clock,
        pathway,
        state,
        t,
        patient_id,
        action="prescriptions.post",
        which=f"change-{prescription_id}",
        write=write,
    )


@router.post("/patients/{patient_id}/prescriptions/{prescription_id}/stop", response_class=HTMLResponse)
def stop_prescription(
    patient_id: PatientId,
    prescription_id: PrescriptionId,
    request: Request,
    form: FormDep,
    web: WebSessionDep,
    session: SessionDep,
    clock: ClockDep,
    pathway: PathwayDep,
    state: StateDep,
    t: TDep,
) -> Response:
    """The day a prescription was stopped (停药)."""

    def write(patient: Patient, now: datetime) -> str:
        stop = medication_forms.stop_in(form)
        _, stopped = prescribing.stop_prescription(
            session, patient, prescription_id, stop.stopped_on, config=pathway, now=now
        )
        if not stopped:
            return "prescription_unchanged"
        permissions.audit(session, web.caller, "prescription.stop", patient_id, now)
        return "prescription_stopped"

    return _submit(
        request,
        form,
        web,
        session,
        clock,
        pathway,
        state,
        t,
        patient_id,
        action="prescriptions.stop",
        which=f"stop-{prescription_id}",
        write=write,
    )
