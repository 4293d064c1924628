"""FHIR OperationOutcome: how the FHIR routes report a refusal to a FHIR client.

A FHIR route answers an error in our JSON shape (``{"code", "message", "field"}``, :mod:`api.errors`)
unless the client sends ``Accept: application/fhir+json``: then it is an OperationOutcome, one issue
(severity ``error``; code ``invalid``, ``not-found``, ``forbidden``…; ``diagnostics`` our code and
message; ``expression`` the FHIRPath of the offending element). A rejected transaction Bundle is
always an OperationOutcome listing every problem: our shape names only one.
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel

from pathway.clinical.errors import PathwayError
from pathway.ingest.inbound import ItemError

FHIR_JSON = "application/fhir+json"
FHIR_PREFIX = "/v1/fhir"
# HTTP status → FHIR IssueType (http://hl7.org/fhir/issue-type).
ISSUE_TYPES = {
    401: "login",
    403: "forbidden",
    404: "not-found",
    409: "conflict",
    413: "too-costly",
    429: "throttled",
    503: "transient",
}
_INDEX = re.compile(r"\.(\d+)(?=\.|$)")


class Issue(BaseModel):
    severity: Literal["error"] = "error"
    code: str
    diagnostics: str
    expression: list[str] | None = None


class OperationOutcome(BaseModel):
    resourceType: Literal["OperationOutcome"] = "OperationOutcome"
    issue: list[Issue]


def fhirpath(field: str) -> str:
    """Our dotted field (``Bundle.entry.3.resource.gender``) as FHIRPath (``Bundle.entry[3]…``)."""
    return _INDEX.sub(r"[\1]", field)


def issue_of(error: PathwayError) -> Issue:
    return Issue(
        code=ISSUE_TYPES.get(error.status, "invalid" if error.status < 500 else "exception"),
        diagnostics=f"{error.code}: {error.detail}",
        expression=[fhirpath(error.field)] if error.field else None,
    )


def outcome_of(*errors: PathwayError) -> OperationOutcome:
    return OperationOutcome(issue=[issue_of(error) for error in errors])


def wants_outcome(path: str, accept: str | None) -> bool:
    """Whether an error of this request is answered as an OperationOutcome."""
    return path.startswith(FHIR_PREFIX) and FHIR_JSON in (accept or "")


class BundleRejected(PathwayError):
    """A transaction Bundle with a rejected entry: nothing of it is stored (every problem listed)."""

    code = "bundle-rejected"
    status = 422

    def __init__(self, problems: list[PathwayError]) -> None:
        super().__init__(
            f"{len(problems)} entr{'y' if len(problems) == 1 else 'ies'} rejected: nothing stored"
        )
        self.problems = problems


# Our error codes whose FHIR IssueType is not ``invalid`` (an entry's error carries no HTTP status).
ENTRY_ISSUE_TYPES = {
    "forbidden": "forbidden",
    "unknown-patient": "not-found",
    "source-not-allowed": "forbidden",
}


def entry_outcome(error: ItemError) -> OperationOutcome:
    """A rejected entry's error as an OperationOutcome of one issue."""
    issue = Issue(
        code=ENTRY_ISSUE_TYPES.get(error.code, "invalid"),
        diagnostics=f"{error.code}: {error.message}",
        expression=[fhirpath(error.field)] if error.field else None,
    )
    return OperationOutcome(issue=[issue])
