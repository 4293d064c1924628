"""The GP team workbench: server-rendered pages over the same use-cases as the JSON API.

``router`` serves ``/workbench/…`` (left out of the OpenAPI document); ``STATIC_DIR`` holds the
stylesheet and the small script every page loads from ``/workbench/static`` (nothing from the network).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import APIRouter, FastAPI

from api.web import actions, dashboard_page, medication, pages, patient
from api.web.common import STATIC_DIR, web_state

__all__ = ["STATIC_DIR", "router"]


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    web_state(app)  # read PATHWAY_WEB_* at start-up: a bad value fails here, not on the first page
    yield


router = APIRouter(lifespan=_lifespan)
router.include_router(actions.router)
router.include_router(pages.router)
router.include_router(dashboard_page.router)
router.include_router(patient.router)
router.include_router(medication.router)
