"""What every workbench page shares: its state (settings, templates, caches), the signed-in session,
the language, rendering, and the route class that turns errors into pages.

Errors never reach the JSON error handler from here: a page answers a refusal with a 403 page that
names nothing about the patient or team, an unknown record with a 404 page, a missing or expired
session with a redirect to the sign-in form. Requests made by the page's script (``Accept:
application/json``) get ``{"ok": false, "code", "message"}`` instead.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote

import jinja2
from fastapi import Depends, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse
from fastapi.routing import APIRoute
from markupsafe import Markup

from api.access_log import note_key
from api.deps import ClockDep, SessionDep
from api.rate_limit import RateLimiter
from api.web import formats
from api.web.dashboard import DashboardCache
from api.web.i18n import LANG_COOKIE, Translator, pick_lang
from api.web.session import SESSION_COOKIE, SessionKeeper, WebSession, WebSettings
from pathway.clinical.errors import PathwayError

API_DIR = Path(__file__).resolve().parent.parent
TEMPLATES_DIR = API_DIR / "templates"
STATIC_DIR = API_DIR / "static"
PREFIX = "/workbench"
_STATE_LOCK = threading.Lock()


class LoginRequired(Exception):
    """No valid session: the page sends the browser to the sign-in form."""


class CsrfFailed(PathwayError):
    code = "csrf"
    status = 403


@dataclass
class WebState:
    settings: WebSettings
    sessions: SessionKeeper
    templates: jinja2.Environment
    dashboards: DashboardCache


def build_state(settings: WebSettings | None = None) -> WebState:
    settings = settings or WebSettings()
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES_DIR),
        autoescape=jinja2.select_autoescape(["html", "svg"]),
        trim_blocks=True,
        lstrip_blocks=True,
        undefined=jinja2.StrictUndefined,
    )
    env.filters.update(formats.FILTERS)
    return WebState(settings, SessionKeeper(settings), env, DashboardCache(settings))


def web_state(app: Any) -> WebState:
    """The app's workbench state, built once (at start-up by the router's lifespan, else on first use)."""
    state: WebState | None = getattr(app.state, "web", None)
    if state is None:
        with _STATE_LOCK:
            state = getattr(app.state, "web", None)
            if state is None:
                state = build_state()
                app.state.web = state
    return state


async def _state(request: Request) -> WebState:
    return web_state(request.app)


async def _translator(request: Request) -> Translator:
    return Translator(pick_lang(request.query_params.get("lang"), request.cookies.get(LANG_COOKIE)))


StateDep = Annotated[WebState, Depends(_state)]
TDep = Annotated[Translator, Depends(_translator)]


def _web_session(request: Request, session: SessionDep, clock: ClockDep, state: StateDep) -> WebSession:
    """The signed-in session of this browser (LoginRequired without one); its key's rate applies."""
    found = state.sessions.verify(session, request.cookies.get(SESSION_COOKIE), clock.now())
    if found is None:
        raise LoginRequired
    note_key(request, found.caller.prefix)
    limiter: RateLimiter = request.app.state.rate_limiter
    limiter.take(found.caller.id)
    return found


WebSessionDep = Annotated[WebSession, Depends(_web_session)]


def wants_json(request: Request) -> bool:
    return "application/json" in request.headers.get("accept", "")


def render(
    request: Request,
    state: WebState,
    t: Translator,
    template: str,
    context: dict[str, Any],
    status_code: int = 200,
    started: float | None = None,
) -> HTMLResponse:
    """A page in the request's language; ``?lang=`` is remembered in a cookie."""
    page = state.templates.get_template(template)
    html = page.render(
        t=t,
        lang=t.lang,
        request_path=request.url.path,
        lang_url=_lang_url(request, "en" if t.lang == "zh" else "zh"),
        notice=_notice(t, request.query_params.get("notice")),
        error_notice=_error_notice(t, request.query_params.get("error")),
        **context,
    )
    response = HTMLResponse(html, status_code=status_code, headers=_NO_STORE)
    if request.query_params.get("lang") in ("zh", "en"):
        response.set_cookie(LANG_COOKIE, t.lang, max_age=365 * 86400, path=PREFIX, samesite="lax")
    if started is not None:
        response.headers["Server-Timing"] = f"app;dur={(time.perf_counter() - started) * 1000:.1f}"
    return response


# Pages carry patient data: no caching by the browser or any proxy; no framing.
_NO_STORE = {
    "Cache-Control": "no-store",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; style-src 'self'; "
    "script-src 'self'; "
    "frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
}


def _lang_url(request: Request, lang: str) -> str:
    params = [(k, v) for k, v in request.query_params.multi_items() if k not in ("lang", "notice", "error")]
    params.append(("lang", lang))
    return request.url.path + "?" + "&".join(f"{quote(k)}={quote(v)}" for k, v in params)


def _notice(t: Translator, code: str | None) -> str | None:
    return t(f"notice.{code}") if code and t.has(f"notice.{code}") else None


def _error_notice(t: Translator, code: str | None) -> str | None:
    if not code:
        return None
    return t(f"error.{code}") if t.has(f"error.{code}") else t("error.generic")


def error_page(request: Request, status: int, code: str, message: str | None = None) -> Response:
    state = web_state(request.app)
    t = Translator(pick_lang(request.query_params.get("lang"), request.cookies.get(LANG_COOKIE)))
    if wants_json(request):
        text = t(f"error.{code}") if t.has(f"error.{code}") else (message or t("error.generic"))
        return JSONResponse({"ok": False, "code": code, "message": text}, status_code=status)
    shown = status if t.has(f"error.title.{status}") else 404
    context = {
        "status": status,
        "title": t(f"error.title.{shown}"),
        "text": t(f"error.{code}") if t.has(f"error.{code}") else t(f"error.text.{shown}"),
        "session": None,
        "team": None,
    }
    return render(request, state, t, "error.html", context, status_code=status)


def safe_next(target: str | None, default: str) -> str:
    """A redirect target inside the workbench only (no open redirect)."""
    if not target or not target.startswith(PREFIX + "/") or target.startswith("//") or "\\" in target:
        return default
    if any(ch in target for ch in "\r\n"):
        return default
    return target


class WebRoute(APIRoute):
    """Runs a page; a missing session, a refusal or an unknown record becomes a page, not JSON."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def route(request: Request) -> Response:
            try:
                return await handler(request)
            except LoginRequired:
                if request.method != "GET" or wants_json(request):
                    return error_page(request, 401, "login")
                target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
                return RedirectResponse(f"{PREFIX}/login?next={quote(target, safe='')}", status_code=303)
            except PathwayError as error:
                return error_page(request, error.status, error.code, error.detail)
            except RequestValidationError as error:
                where = {str(e.get("loc", ("",))[0]) for e in error.errors()}
                return error_page(request, 404 if "path" in where else 422, "invalid-input")

        return route


def markup(svg: str) -> Markup:
    """Server-built SVG (every text in it escaped when it was built)."""
    return Markup(svg)
