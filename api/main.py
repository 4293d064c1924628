"""The FastAPI application, built from Settings by :func:`create_app` (no app at import time)."""

from __future__ import annotations

import asyncio

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from api import (
    care_plan,
    cds_hooks,
    docs,
    errors,
    fhir,
    fhir_bundle,
    fhir_read,
    fhir_registration,
    medication,
    pack_impact,
    patients,
    recording,
    referrals,
    rule_packs,
    subscriptions,
    tasks,
    team_indicators,
    teams,
    web,
)
from api.access_log import AccessLog
from api.limits import BodySizeLimit
from api.rate_limit import RateLimiter
from pathway.access.permissions import KeyCache
from pathway.clinical.clock import Clock, SystemClock
from pathway.clinical.horizon import reading_horizon
from pathway.patients.reassessment import PathwayConfig
from pathway.settings import Settings
from pathway.store.db import api_engine
from rules.evaluation import Evaluator
from rules.registry import PackRegistry


def pathway_config(evaluator: Evaluator, settings: Settings) -> PathwayConfig:
    """The deployment's pack (``PATHWAY_PACK_ID``) in force today, as the service needs it."""
    tz = settings.tz
    pack = evaluator.registry.in_force(settings.pack_id, on=None)
    return PathwayConfig(
        pack=pack.ref,
        units=pack.pack.units,
        plausibility=pack.pack.plausibility,
        assess=lambda history, as_of: evaluator.assess(history, as_of, pack, tz),
        tz=tz,
        facts=lambda history, as_of: evaluator.snapshot(history, as_of, pack, tz).facts,
        targets=pack.pack.targets,
        indicators=pack.pack.indicators,
        reading_horizon=reading_horizon(pack.pack.snapshot),
        referral_tasks=frozenset(
            kind.value
            for spec in pack.pack.policy.referrals.values()
            for kind in (spec.task, spec.follow_up_task)
            if kind is not None
        ),
        medication=pack.pack.medication,
    )


def create_app(settings: Settings, clock: Clock | None = None, evaluator: Evaluator | None = None) -> FastAPI:
    app = FastAPI(
        title="三高共管 care-pathway engine",
        version="0.1.0",
        description="Ingest readings, tier patients (red/yellow/blue), refer and schedule follow-up.",
        docs_url=None,  # served by api.docs from local files, not a CDN
        redoc_url=None,
        swagger_ui_parameters={"validatorUrl": None},  # no badge fetched from the online validator
    )
    evaluator = evaluator or Evaluator(PackRegistry.from_directory())
    app.state.engine = api_engine(settings)
    app.state.write_lock = asyncio.Lock() if app.state.engine.dialect.name == "sqlite" else None
    app.state.key_cache = KeyCache(settings.key_cache_seconds)
    app.state.rate_limiter = RateLimiter(settings.rate_limit_per_second, settings.rate_limit_burst)
    app.state.auth_failures = RateLimiter(settings.auth_failures_per_second, settings.auth_failures_burst)
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_body_bytes)
    if settings.access_log:
        app.add_middleware(AccessLog)  # outermost: it times and logs even a refused body
    app.state.clock = clock or SystemClock(settings.tz)
    app.state.pathway = pathway_config(evaluator, settings)
    errors.install(app)
    app.state.registry = evaluator.registry
    app.state.evaluator = evaluator
    app.include_router(patients.router)
    app.include_router(recording.router)
    app.include_router(medication.router)
    app.include_router(referrals.router)
    app.include_router(fhir.router)
    app.include_router(fhir_read.router)
    app.include_router(cds_hooks.router)
    app.include_router(fhir_bundle.router)
    app.include_router(fhir_registration.router)
    app.include_router(rule_packs.router)
    app.include_router(pack_impact.router)
    app.include_router(tasks.router)
    app.include_router(teams.router)
    app.include_router(team_indicators.router)
    app.include_router(care_plan.router)
    app.include_router(subscriptions.router)
    app.include_router(web.router)
    app.mount("/workbench/static", StaticFiles(directory=web.STATIC_DIR), name="workbench-static")
    docs.install(app)
    return app


def app_from_environment() -> FastAPI:
    """The app for ``uvicorn --factory`` worker processes: each builds it from the ``PATHWAY_*`` env."""
    return create_app(Settings())
