"""One JSON shape for every error: ``{"code", "message", "field"?}``; never a stack trace.

PathwayError subclasses carry their status (and headers, e.g. Retry-After); request-validation
errors become ``invalid-input`` (422) naming the first bad field, or ``unknown-code`` (422, naming
the accepted values) for a value outside an Enum or Literal, except a batch over its item limit,
which is ``payload-too-large`` (413); an unreachable database is ``database-unavailable`` (503) with
``Retry-After``; a busy one (no pooled connection free within the pool timeout, a lock or statement
timeout) is ``database-busy`` (503) with ``Retry-After``; a write that loses a race on a unique key
is ``conflict`` (409), safe to retry; a value the database cannot store that validation let through
is ``invalid-input`` (422), logged by kind.
"""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy.exc import DataError, IntegrityError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.exceptions import HTTPException

from api.fhir_outcome import FHIR_JSON, BundleRejected, outcome_of, wants_outcome
from pathway.clinical.errors import DatabaseBusy, InvalidInput, PathwayError, from_validation

# Starlette's own refusals (an unknown route, a method the route does not take…) in our shape.
HTTP_CODES = {
    404: "not-found",
    405: "method-not-allowed",
    413: "payload-too-large",
    415: "unsupported-media-type",
}


log = logging.getLogger("pathway.api")


class ErrorBody(BaseModel):
    code: str
    message: str
    field: str | None = None


def error_responses(*statuses: int) -> dict[int | str, dict[str, object]]:
    """``responses=`` for a route: the error model under each status it can return."""
    return {status: {"model": ErrorBody} for status in statuses}


def install(app: FastAPI) -> None:
    @app.exception_handler(PathwayError)
    async def pathway_error(request: Request, error: PathwayError) -> JSONResponse:
        if isinstance(error, BundleRejected) or wants_outcome(
            request.url.path, request.headers.get("accept")
        ):
            problems = error.problems if isinstance(error, BundleRejected) else [error]
            outcome = outcome_of(*problems).model_dump(exclude_none=True)
            return JSONResponse(
                status_code=error.status, content=outcome, headers=error.headers, media_type=FHIR_JSON
            )
        return JSONResponse(status_code=error.status, content=error.as_dict(), headers=error.headers)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(_request: Request, error: RequestValidationError) -> JSONResponse:
        first = error.errors()[0] if error.errors() else {"loc": (), "msg": "invalid request"}
        if first.get("type") == "too_long" and tuple(first.get("loc", ())) == ("body",):
            ctx = first.get("ctx")
            limit = ctx.get("max_length") if isinstance(ctx, dict) else None
            body_413 = {"code": "payload-too-large", "message": f"a batch holds at most {limit} items"}
            return JSONResponse(status_code=413, content={**body_413, "field": "body"})
        if first.get("type") == "json_invalid":  # its loc is a character offset: name the body instead
            invalid = InvalidInput("the body is not valid JSON", "body")
            return JSONResponse(status_code=invalid.status, content=invalid.as_dict())
        loc = [str(part) for part in first.get("loc", ()) if part not in ("body", "query", "path")]
        invalid = from_validation(first, ".".join(loc) or None)
        return JSONResponse(status_code=invalid.status, content=invalid.as_dict())

    @app.exception_handler(HTTPException)
    async def http_error(_request: Request, error: HTTPException) -> JSONResponse:
        code = HTTP_CODES.get(error.status_code, "http-error")
        message = error.detail if isinstance(error.detail, str) else code
        return JSONResponse(
            status_code=error.status_code, content={"code": code, "message": message}, headers=error.headers
        )

    @app.exception_handler(IntegrityError)
    async def conflict(_request: Request, error: IntegrityError) -> JSONResponse:
        log.info("write conflict on %s", _constraint(error))
        body = {"code": "conflict", "message": "a concurrent request wrote the same data; retry the request"}
        return JSONResponse(status_code=409, content=body)

    @app.exception_handler(DataError)
    async def unstorable(_request: Request, error: DataError) -> JSONResponse:
        # A gap in validation (every request model refuses what the database cannot store): a warning.
        log.warning("value the database cannot store: %s", _kind(error))
        body = {"code": "invalid-input", "message": "a value in the request cannot be stored"}
        return JSONResponse(status_code=422, content=body)

    @app.exception_handler(PoolTimeout)
    async def no_connection(_request: Request, _error: PoolTimeout) -> JSONResponse:
        log.warning("database busy: no pooled connection free within the pool timeout")
        busy = DatabaseBusy()
        return JSONResponse(status_code=busy.status, content=busy.as_dict(), headers=busy.headers)

    @app.exception_handler(OperationalError)
    async def database_unavailable(_request: Request, error: OperationalError) -> JSONResponse:
        sqlstate = getattr(error.orig, "sqlstate", None)
        if sqlstate in _BUSY:
            log.warning("database busy: %s", _BUSY[sqlstate])
            busy = DatabaseBusy()
            return JSONResponse(status_code=busy.status, content=busy.as_dict(), headers=busy.headers)
        log.warning("database unavailable: %s", type(error.orig).__name__)
        body = {"code": "database-unavailable", "message": "the database is unavailable; retry shortly"}
        return JSONResponse(status_code=503, content=body, headers={"Retry-After": "5"})


# PostgreSQL's SQLSTATEs of a statement cancelled by the API session's lock_timeout or statement_timeout.
_BUSY = {"55P03": "lock timeout", "57014": "statement timeout"}


def _kind(error: DataError) -> str:
    """The driver's error class and SQLSTATE, never its message (it may quote the value)."""
    sqlstate = getattr(error.orig, "sqlstate", None)
    return f"{type(error.orig).__name__} ({sqlstate})" if sqlstate else type(error.orig).__name__


def _constraint(error: IntegrityError) -> str:
    """The violated constraint's name, never the row's values (they may identify a patient)."""
    diag = getattr(error.orig, "diag", None)
    name = getattr(diag, "constraint_name", None)
    return str(name) if name else type(error.orig).__name__
