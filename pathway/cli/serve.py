"""``pathway serve`` and ``pathway scheduler``, and what every command that opens the store does
first: read the ``PATHWAY_*`` settings and bring the store up to date."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

from pathway.clinical.errors import PathwayError

if TYPE_CHECKING:
    from pathway.settings import Settings


def _settings() -> Settings:
    """The ``PATHWAY_*`` settings, or one line naming the variable that is wrong (BadSetting): also a
    ``PATHWAY_PACK_ID`` that names no pack in ``rules/packs``."""
    from pathway.clinical.errors import UnknownRulePack
    from pathway.settings import BadSetting, Settings, read_settings
    from rules.registry import PackRegistry

    settings = read_settings(Settings)
    try:
        PackRegistry.from_directory().in_force(settings.pack_id, on=None)
    except UnknownRulePack:
        raise BadSetting(f"no rule pack {settings.pack_id!r} in rules/packs", "PATHWAY_PACK_ID") from None
    return settings


def _migrate(url: str) -> None:
    """Bring the store up to date, or one line saying why it cannot be opened (DatabaseUnreachable)."""
    from alembic.util import CommandError
    from sqlalchemy.exc import SQLAlchemyError

    from pathway.store.db import migrate, unreachable

    try:
        migrate(url)
    except (SQLAlchemyError, OSError, CommandError) as error:
        raise unreachable(url, error) from None


class CannotListen(PathwayError):
    code = "cannot-listen"


def _check_listen(host: str, port: int) -> None:
    """Fail before anything starts if the server could not listen there (in use, no such address)."""
    import socket

    try:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        with socket.socket(family, socket.SOCK_STREAM) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds
            probe.bind((host, port))
    except OSError as error:
        reason = error.strerror or str(error)
        where = "--host" if isinstance(error, socket.gaierror) else "--port"
        raise CannotListen(f"cannot listen on {host}:{port}: {reason}", where) from None


def _serve(host: str, port: int, workers: int, *, scheduler: bool = True) -> int:
    """The API, and (unless told not to) the task scheduler in the same process: with several
    workers the scheduler runs once, in the parent; the database makes every run happen once anyway."""
    import uvicorn

    from api.main import create_app
    from api.slow_clients import PROTOCOL, ClientTimeouts, SlowClientProtocol
    from api.web.session import WebSettings
    from pathway.clinical.clock import SystemClock
    from pathway.settings import read_settings
    from pathway.store.db import shown_url
    from rules.evaluation import Evaluator
    from rules.registry import PackRegistry
    from scheduler.runner import start_background

    settings = _settings()
    read_settings(WebSettings)  # PATHWAY_WEB_*: a bad value is one line here, not a traceback at start
    read_settings(ClientTimeouts)  # PATHWAY_HEADER_/BODY_TIMEOUT_SECONDS, likewise
    if workers < 1 or (workers > 1 and settings.database_url.startswith("sqlite")):
        print("error: --workers: one process on SQLite (one writer); more need PostgreSQL", file=sys.stderr)
        return 2
    _check_listen(host, port)
    _migrate(settings.database_url)
    _bootstrap_admin_key(settings)
    print(
        f"pathway: API on http://{host}:{port}/docs (database {shown_url(settings.database_url)})", flush=True
    )
    # One rule engine a process (ENGINE-NOTES §1): with one worker the API and the scheduler share it.
    evaluator = Evaluator(PackRegistry.from_directory()) if workers == 1 or scheduler else None
    stop_scheduler = start_background(settings, SystemClock(settings.tz), evaluator) if scheduler else None
    if stop_scheduler is not None:
        print(
            "pathway: task scheduler running in this process (daily 06:00 and hourly runs, the re-tier of"
            " a new pack)",
            flush=True,
        )
    log_config = _log_config()
    try:
        if workers == 1:
            app = create_app(settings, evaluator=evaluator)
            uvicorn.run(
                app,
                host=host,
                port=port,
                http=SlowClientProtocol,
                log_level="warning",
                log_config=log_config,
                access_log=False,
            )
        else:  # each worker process builds its app from the same PATHWAY_* environment
            uvicorn.run(
                "api.main:app_from_environment",
                factory=True,
                host=host,
                port=port,
                workers=workers,
                http=PROTOCOL,  # imported by name in each worker process
                log_level="warning",
                log_config=log_config,
                access_log=False,
            )
    finally:
        if stop_scheduler is not None:
            stop_scheduler()
    return 0


def _log_config() -> dict[str, Any]:
    """uvicorn's logging, plus the access log (``pathway.access``, one line a request) on stdout;
    uvicorn applies it in every worker process."""
    import copy

    from uvicorn.config import LOGGING_CONFIG

    config: dict[str, Any] = copy.deepcopy(LOGGING_CONFIG)
    config["formatters"]["pathway"] = {"format": "%(asctime)s %(message)s"}
    config["handlers"]["pathway"] = {
        "class": "logging.StreamHandler",
        "formatter": "pathway",
        "stream": "ext://sys.stdout",
    }
    config["loggers"]["pathway.access"] = {"handlers": ["pathway"], "level": "INFO", "propagate": False}
    return config


def _scheduler(*, once: bool) -> int:
    """``pathway scheduler``: the task scheduler in its own process (logs to stderr)."""
    import logging

    from pathway.clinical.clock import SystemClock
    from scheduler.runner import run_blocking, run_once

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    settings = _settings()
    _migrate(settings.database_url)
    clock = SystemClock(settings.tz)
    if once:
        for zone, dates in run_once(settings, clock).items():
            print(f"{zone}\t{' '.join(d.isoformat() for d in dates) or '-'}")
        return 0
    run_blocking(settings, clock)
    return 0


def _bootstrap_admin_key(settings: Settings) -> None:
    """On a store without any API key, create one admin key and print it once (first start)."""
    from sqlmodel import Session

    from pathway.access import permissions
    from pathway.clinical.clock import SystemClock
    from pathway.store.db import make_engine

    engine = make_engine(settings.database_url)
    with Session(engine) as session:
        if not permissions.has_any_key(session):
            _key, plaintext = permissions.create_key(
                session, permissions.Role.ADMIN, "bootstrap", SystemClock(settings.tz).now()
            )
            session.commit()
            print(f"pathway: first start: admin API key (shown once): {plaintext}", flush=True)
    engine.dispose()
