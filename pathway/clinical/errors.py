"""One error base with stable, machine-readable codes.

PathwayError(code, detail, field)          status 400 unless a subclass says otherwise
├── InvalidInput            invalid-input           422  malformed case / request data
├── ImplausibleValue        implausible-value       422  outside the pack's plausibility range
├── UnknownUnit             unknown-unit            422  a unit the pack cannot convert
├── UnknownCode             unknown-code            422  unknown condition, symptom, kind, source
├── FutureTimestamp         future-timestamp        422  measured after as_of + tolerance
├── ResultNotFinal          result-not-final        422  a preliminary (registered, unknown) result
├── UnknownReading          unknown-reading         404  no such reading of the patient's
├── ReadingSuperseded       reading-superseded      409  an old version: act on the current one
├── PayloadTooLarge         payload-too-large       413  a body or batch over the limit
├── RateLimited             rate-limited            429  too many requests from one key (Retry-After)
├── DatabaseBusy            database-busy           503  no free connection, a lock or statement
│                                                        timeout (Retry-After)
├── InvalidRulePack         invalid-rule-pack       500  a pack failed validation (names the rule)
├── CandidatePackInvalid    candidate-pack-invalid  422  a submitted pack (an impact run's candidate)
│                                                        failed validation, or reuses a version
├── UnknownRulePack         unknown-rule-pack       404  no pack with that id / version
└── RuleEvaluationError     rule-evaluation-failed  500  the engine failed (names rule and pack)

Start-up errors (the CLI prints one line and exits 2 before anything starts):
BadSetting (pathway.settings)           bad-setting            a PATHWAY_* value (names the variable)
DatabaseUnreachable (pathway.store.db)  database-unreachable   the store cannot be opened or migrated
CannotListen (pathway.cli.serve)        cannot-listen          the address or port cannot be listened on
"""

from __future__ import annotations

from collections.abc import Mapping


class PathwayError(Exception):
    """Base class of every error the product raises on purpose."""

    code = "pathway-error"
    status = 400

    def __init__(self, detail: str, field: str | None = None, headers: dict[str, str] | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.field = field
        self.headers = headers or {}

    def __str__(self) -> str:
        where = f" ({self.field})" if self.field else ""
        return f"{self.code}{where}: {self.detail}"

    def as_dict(self) -> dict[str, str]:
        body = {"code": self.code, "message": self.detail}
        if self.field:
            body["field"] = self.field
        return body


class InvalidInput(PathwayError):
    code = "invalid-input"
    status = 422


class ImplausibleValue(InvalidInput):
    code = "implausible-value"


class UnknownUnit(InvalidInput):
    code = "unknown-unit"


class UnknownCode(InvalidInput):
    code = "unknown-code"


class FutureTimestamp(InvalidInput):
    code = "future-timestamp"


class ResultNotFinal(InvalidInput):
    code = "result-not-final"


class UnknownReading(PathwayError):
    code = "unknown-reading"
    status = 404


class ReadingSuperseded(PathwayError):
    code = "reading-superseded"
    status = 409


class PayloadTooLarge(PathwayError):
    code = "payload-too-large"
    status = 413


class RateLimited(PathwayError):
    code = "rate-limited"
    status = 429


class DatabaseBusy(PathwayError):
    """The database could not serve the request in time: every pooled connection was in use, or a
    statement waited too long for a lock (a patient another request is writing) or ran too long.
    Nothing was stored; the request may be sent again."""

    code = "database-busy"
    status = 503

    def __init__(self, detail: str = "the database is busy; retry shortly", retry_after: int = 1) -> None:
        super().__init__(detail, None, {"Retry-After": str(retry_after)})


class InvalidRulePack(PathwayError):
    code = "invalid-rule-pack"
    status = 500


class CandidatePackInvalid(PathwayError):
    """A pack submitted to be compared (``pathway packs impact``, ``POST /v1/packs/impact``) is not
    a valid pack, or reuses the version of another edition with other content."""

    code = "candidate-pack-invalid"
    status = 422


class UnknownRulePack(PathwayError):
    code = "unknown-rule-pack"
    status = 404


class RuleEvaluationError(PathwayError):
    code = "rule-evaluation-failed"
    status = 500


STORABLE_TEXT = r"^[^\x00]*$"
"""The pattern of every text a request may hold: no NUL character (U+0000), which PostgreSQL text
cannot store (:data:`pathway.ingest.Text`)."""

UNKNOWN_CODE_ERRORS = frozenset({"enum", "literal_error"})
"""Pydantic's error types for a value outside an Enum or a Literal: an unknown code."""


def from_validation(error: Mapping[str, object], field: str | None) -> InvalidInput:
    """Our error for one of pydantic's validation errors (``ValidationError.errors()``) at ``field``.

    A value outside an Enum or a Literal is :class:`UnknownCode`, naming the accepted values (never
    the value sent: it may hold what cannot be stored or shown); any other error is :class:`InvalidInput`
    with pydantic's message.
    """
    ctx = error.get("ctx")
    expected = ctx.get("expected") if isinstance(ctx, Mapping) else None
    if error.get("type") in UNKNOWN_CODE_ERRORS and expected is not None:
        return UnknownCode(f"unknown code; expected {expected}", field)
    if (
        error.get("type") == "string_pattern_mismatch"
        and isinstance(ctx, Mapping)
        and ctx.get("pattern") == STORABLE_TEXT
    ):
        return InvalidInput("text must not contain the NUL character (U+0000)", field)
    return InvalidInput(str(error.get("msg", "invalid request")), field)
