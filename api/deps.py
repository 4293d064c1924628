"""Dependencies as Annotated aliases: the session (one transaction per request), the clock, the pathway."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from datetime import datetime
from typing import Annotated

from fastapi import Depends, Path, Request
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from sqlmodel import Session
from starlette.concurrency import run_in_threadpool

from api.access_log import note_key
from api.rate_limit import RateLimiter
from pathway.access import permissions
from pathway.access.permissions import Caller, KeyCache, Role
from pathway.clinical.clock import Clock
from pathway.ingest.inbound import MAX_ROW_ID
from pathway.patients import registration
from pathway.patients.reassessment import PathwayConfig
from pathway.store.tables import Patient

# The light dependencies are ``async def``: they run on the event loop, not in the thread pool, so a
# request costs one thread hop (the route) instead of one per dependency.


async def _session(request: Request) -> AsyncIterator[Session]:
    """One session per request. Writing routes commit before they answer (so a 2xx means stored);
    anything not committed is rolled back when the session closes. Closing is done here, on the
    event loop: after a commit it sends nothing to the database (one thread hop saved a request).

    SQLite has one writer at a time: on the embedded store, the requests of this process take
    turns here (every request writes its audit row) instead of timing out on the database lock
    (which would be a 503). They wait on the event loop, holding no worker thread.
    """
    write_lock: asyncio.Lock | None = request.app.state.write_lock
    async with AsyncExitStack() as stack:
        if write_lock is not None:
            await stack.enter_async_context(write_lock)
        # Nothing is reloaded after the commit: the request ends there (and answers from what it holds).
        with Session(request.app.state.engine, expire_on_commit=False) as session:
            yield session


async def _clock(request: Request) -> Clock:
    clock: Clock = request.app.state.clock
    return clock


async def _pathway(request: Request) -> PathwayConfig:
    config: PathwayConfig = request.app.state.pathway
    return config


async def _key_cache(request: Request) -> KeyCache:
    cache: KeyCache = request.app.state.key_cache
    return cache


SessionDep = Annotated[Session, Depends(_session)]

_bearer = HTTPBearer(auto_error=False, description="Authorization: Bearer pw_<prefix>_<secret>")
_header_key = APIKeyHeader(name="X-API-Key", auto_error=False, description="or the key in X-API-Key")


KeyCacheDep = Annotated[KeyCache, Depends(_key_cache)]


async def _current_key(
    request: Request,
    session: SessionDep,
    cache: KeyCacheDep,
    bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    header_key: Annotated[str | None, Depends(_header_key)],
) -> Caller:
    """The caller behind the request's API key (401 without a valid one; 429 over its rate).

    A key seen in the last few seconds is checked against the process's cache on the event loop;
    otherwise the database is asked, in the thread pool.
    """
    presented = header_key or (bearer.credentials if bearer else None)
    failures: RateLimiter = request.app.state.auth_failures
    address = client_address(request)
    failures.refuse_if_spent(address, FAILED_AUTHENTICATIONS)
    caller: Caller | None = None
    try:
        if presented is not None:
            prefix = presented.removeprefix(permissions.KEY_PREFIX).partition("_")[0]
            if cache.key(prefix) is not None:
                caller = permissions.authenticate(session, presented, cache)
        if caller is None:
            caller = await run_in_threadpool(permissions.authenticate, session, presented, cache)
    except permissions.Unauthenticated:
        if presented is not None:  # no key at all is a client's mistake, not a guess
            failures.take(address, FAILED_AUTHENTICATIONS)
        raise
    note_key(request, caller.prefix)
    limiter: RateLimiter = request.app.state.rate_limiter
    limiter.take(caller.id)  # 429 with Retry-After once this key's burst is spent
    return caller


FAILED_AUTHENTICATIONS = "failed authentications from this address"


def client_address(request: Request) -> str:
    """The peer's address (behind a proxy: the proxy's, unless uvicorn is told to trust it)."""
    return request.client.host if request.client is not None else "unknown"


CurrentKey = Annotated[Caller, Depends(_current_key)]
ClockDep = Annotated[Clock, Depends(_clock)]
PathwayDep = Annotated[PathwayConfig, Depends(_pathway)]

# Row ids are 32-bit integers on PostgreSQL: anything outside is simply not a patient we know.
PatientId = Annotated[int, Path(ge=1, le=MAX_ROW_ID, description="the patient's id in this system")]


def patient_for(
    session: Session,
    key: Caller,
    patient_id: int,
    action: str,
    now: datetime,
    *roles: Role,
    cache: KeyCache = permissions.NO_CACHE,
    write: bool = False,
) -> Patient:
    """The patient, if this key may act on it in one of ``roles``; the access is audited.

    ``write``: the request will change the patient's history or assessment, so the patient is
    locked until it commits. Read the clock for the reassessment after this returns.
    """
    permissions.require_role(key, *roles)
    patient = registration.require_patient(session, patient_id, for_update=write)
    permissions.require_patient(session, key, patient, *roles, cache=cache)
    permissions.audit(session, key, action, patient_id, now)
    return patient
