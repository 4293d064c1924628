"""The interactive API documentation, served from this process: ``/docs`` (Swagger UI) and ``/redoc``
(ReDoc) load their scripts, stylesheet and icon from ``/docs/static``, nothing from a CDN, so they
work offline and behind a firewall.

The files are the swagger-ui-dist and ReDoc bundles that the ``fastapi-offline`` package ships (a
dependency in pyproject.toml; only its files are used). Swagger UI 5 reads OpenAPI 3.1, which
FastAPI writes.
"""

from __future__ import annotations

import functools
from pathlib import Path

import fastapi_offline
from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse, Response
from fastapi.staticfiles import StaticFiles

ASSETS_DIR = Path(fastapi_offline.__file__).resolve().parent / "static"
ASSETS_URL = "/docs/static"
# ReDoc's sidebar shows a "powered by" logo from its CDN: served with the local icon instead.
REDOC_CDN_LOGO = "https://cdn.redoc.ly/redoc/logo-mini.svg"


@functools.cache
def _redoc_bundle() -> str:
    return (
        (ASSETS_DIR / "redoc.standalone.js")
        .read_text(encoding="utf-8")
        .replace(REDOC_CDN_LOGO, f"{ASSETS_URL}/favicon.png")
    )


def install(app: FastAPI) -> None:
    """Serve the docs pages and their files on ``app`` (built with ``docs_url=None, redoc_url=None``)."""

    @app.get(f"{ASSETS_URL}/redoc.js", include_in_schema=False)
    async def redoc_bundle() -> Response:
        return Response(_redoc_bundle(), media_type="text/javascript; charset=utf-8")

    app.mount(ASSETS_URL, StaticFiles(directory=ASSETS_DIR), name="docs-static")
    openapi_url = app.openapi_url or "/openapi.json"

    @app.get("/docs", include_in_schema=False)
    async def swagger_ui(request: Request) -> HTMLResponse:
        root = str(request.scope.get("root_path", "")).rstrip("/")
        return get_swagger_ui_html(
            openapi_url=root + openapi_url,
            title=f"{app.title} - Swagger UI",
            swagger_js_url=f"{root}{ASSETS_URL}/swagger-ui-bundle.js",
            swagger_css_url=f"{root}{ASSETS_URL}/swagger-ui.css",
            swagger_favicon_url=f"{root}{ASSETS_URL}/favicon.png",
            oauth2_redirect_url=None,
            swagger_ui_parameters=app.swagger_ui_parameters,
        )

    @app.get("/redoc", include_in_schema=False)
    async def redoc(request: Request) -> HTMLResponse:
        root = str(request.scope.get("root_path", "")).rstrip("/")
        return get_redoc_html(
            openapi_url=root + openapi_url,
            title=f"{app.title} - ReDoc",
            redoc_js_url=f"{root}{ASSETS_URL}/redoc.js",
            redoc_favicon_url=f"{root}{ASSETS_URL}/favicon.png",
            with_google_fonts=False,
        )
