"""CDS Hooks 2.0 (issue #17 item 3): ``GET /cds-services`` (discovery) and the ``patient-view``
service ``POST /cds-services/sangao-pathway``, answering cards: the tier with its reasons and their
sources, the referral with its urgency, the medication step and the open tasks.

``context.patientId`` is our patient id, or an identifier ``system|value`` (the registering
system and its id: ``source_system`` and ``external_id``).

Auth: the same API keys as the JSON API. CDS Hooks lets a service say how it is called
(``usageRequirements``): the EHR is configured with a key of ours (role ehr, or a team's key) and
sends it as ``Authorization: Bearer pw_…``; the EHR's own JWT is not used. Roles, team scoping (a
patient outside a team key's team is the 404 of an unknown one) and the audit row
(``cds.patient_view``) are those of the JSON reads. Errors are in the JSON API's shape.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from api.deps import ClockDep, CurrentKey, PathwayDep, SessionDep, patient_for
from api.errors import error_responses
from pathway.access import permissions
from pathway.access.permissions import NotYours, Role
from pathway.clinical.errors import InvalidInput
from pathway.exchange import cds_cards, readout
from pathway.ingest.inbound import Text, row_id
from pathway.patients import registration

router = APIRouter(prefix="/cds-services", tags=["cds-hooks"])
SUMMARY_LENGTH = 140
"""CDS Hooks 2.0: a card's summary is under 140 characters."""


class HookContext(BaseModel):
    model_config = ConfigDict(extra="allow")
    patientId: Text = Field(min_length=1, max_length=200, description="our id, or system|value")
    userId: Text | None = Field(default=None, max_length=200)


class HookRequest(BaseModel):
    """A CDS Hooks request (fhirServer, fhirAuthorization and prefetch are accepted and not used)."""

    model_config = ConfigDict(
        extra="allow",
        json_schema_extra={
            "examples": [
                {
                    "hook": "patient-view",
                    "hookInstance": "d1577c69-dfbe-44ad-ba6d-3e05e953b2ea",
                    "context": {"userId": "Practitioner/7", "patientId": "ehr|A1"},
                }
            ]
        },
    )
    hook: Text = Field(max_length=64)
    hookInstance: Text = Field(max_length=200)
    context: HookContext


@router.get("", responses=error_responses(401, 429, 503), operation_id="cds-discovery")
def discovery(key: CurrentKey) -> dict[str, Any]:
    """The services offered: ``sangao-pathway`` on ``patient-view``, needing no prefetch."""
    return cds_cards.discovery()


@router.post(
    f"/{cds_cards.SERVICE_ID}",
    responses=error_responses(401, 403, 404, 413, 422, 429, 503),
    operation_id="cds-patient-view",
)
def patient_view(
    data: HookRequest, session: SessionDep, clock: ClockDep, pathway: PathwayDep, key: CurrentKey
) -> dict[str, Any]:
    """The cards for the patient in view (summary under 140 characters; indicator by tier and
    urgency; source: the pack id and version; detail in markdown)."""
    if data.hook != "patient-view":
        raise InvalidInput(f"this service answers patient-view, not {data.hook}", "hook")
    permissions.require_role(key, Role.EHR, Role.TEAM)
    named = data.context.patientId
    system, bar, value = named.partition("|")
    try:
        by_identifier = registration.patient_by_identifier(session, system, value) if bar else None
        patient_id = by_identifier.id if by_identifier is not None else row_id(named)
        if patient_id is None:
            raise registration.UnknownPatient("no such patient", "context.patientId")
        patient = patient_for(session, key, patient_id, "cds.patient_view", clock.now(), Role.EHR, Role.TEAM)
    except (registration.UnknownPatient, NotYours):
        raise registration.UnknownPatient("no such patient", "context.patientId") from None
    view = readout.patient_view(session, patient, pathway, clock)
    session.commit()  # the audit row, and the assessment if it was renewed
    return {"cards": cds_cards.cards(view, SUMMARY_LENGTH)}
