"""Dependencies as Annotated aliases: the session (one transaction per request), the clock, the pathway."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import datetime
from typing import Annotated

from fastapi import Depends, Path, Request
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from sqlmodel import Session

from pathway import access, service
from pathway.access import Role
from pathway.clock import Clock
from pathway.models import ApiKey, Patient
from pathway.service import PathwayConfig


def _session(request: Request) -> Iterator[Session]:
    """One session per request. Writing routes commit before they answer (so a 2xx means stored);
    anything not committed is rolled back when the session closes.

    SQLite has one writer at a time: on the embedded store, writing requests of this process take
    turns here instead of timing out on the database lock (which would be a 503).
    """
    write_lock: threading.Lock | None = request.app.state.write_lock
    if write_lock is None:
        with Session(request.app.state.engine) as session:
            yield session
        return
    with write_lock, Session(request.app.state.engine) as session:  # every request writes its audit
        yield session


def _clock(request: Request) -> Clock:
    clock: Clock = request.app.state.clock
    return clock


def _pathway(request: Request) -> PathwayConfig:
    config: PathwayConfig = request.app.state.pathway
    return config


SessionDep = Annotated[Session, Depends(_session)]

_bearer = HTTPBearer(auto_error=False, description="Authorization: Bearer pw_<prefix>_<secret>")
_header_key = APIKeyHeader(name="X-API-Key", auto_error=False, description="or the key in X-API-Key")


def _current_key(
    session: SessionDep,
    bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    header_key: Annotated[str | None, Depends(_header_key)],
) -> ApiKey:
    """The API key of the request (401 without a valid one)."""
    return access.authenticate(session, header_key or (bearer.credentials if bearer else None))


CurrentKey = Annotated[ApiKey, Depends(_current_key)]
ClockDep = Annotated[Clock, Depends(_clock)]
PathwayDep = Annotated[PathwayConfig, Depends(_pathway)]

# Row ids are 32-bit integers on PostgreSQL: anything outside is simply not a patient we know.
PatientId = Annotated[int, Path(ge=1, le=2_147_483_647, description="the patient's id in this system")]


def patient_for(
    session: Session, key: ApiKey, patient_id: int, action: str, now: datetime, *roles: Role
) -> Patient:
    """The patient, if this key may act on it in one of ``roles``; the access is audited."""
    access.require_role(key, *roles)
    patient = service.require_patient(session, patient_id)
    access.require_patient(session, key, patient, *roles)
    access.audit(session, key, action, patient_id, now)
    return patient
