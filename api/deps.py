"""Dependencies as Annotated aliases: the session (one transaction per request), the clock, the pathway."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Path, Request
from sqlmodel import Session

from pathway.clock import Clock
from pathway.service import PathwayConfig


def _session(request: Request) -> Iterator[Session]:
    """One session per request. Writing routes commit before they answer (so a 2xx means stored);
    anything not committed is rolled back when the session closes.

    SQLite has one writer at a time: on the embedded store, writing requests of this process take
    turns here instead of timing out on the database lock (which would be a 503).
    """
    write_lock: threading.Lock | None = request.app.state.write_lock
    if write_lock is None or request.method == "GET":
        with Session(request.app.state.engine) as session:
            yield session
        return
    with write_lock, Session(request.app.state.engine) as session:
        yield session


def _clock(request: Request) -> Clock:
    clock: Clock = request.app.state.clock
    return clock


def _pathway(request: Request) -> PathwayConfig:
    config: PathwayConfig = request.app.state.pathway
    return config


SessionDep = Annotated[Session, Depends(_session)]
ClockDep = Annotated[Clock, Depends(_clock)]
PathwayDep = Annotated[PathwayConfig, Depends(_pathway)]

# Row ids are 32-bit integers on PostgreSQL: anything outside is simply not a patient we know.
PatientId = Annotated[int, Path(ge=1, le=2_147_483_647, description="the patient's id in this system")]
