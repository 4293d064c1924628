"""What the workbench changes: signing in and out, and a task's outcome, assignee or snooze.

Plain HTML forms (``application/x-www-form-urlencoded``) answered with a redirect back to the page
(``303``, with a notice), so everything works without JavaScript; the page's script sends the same
forms with ``Accept: application/json`` and gets ``{"ok": …}`` to update the page in place. Every
change needs the session's CSRF token (a form field, or the ``X-CSRF-Token`` header) and is the
same use-case as the task API (:mod:`pathway.tasks.actions`), done as the session's key.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any
from urllib.parse import parse_qs, quote
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, Path, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from sqlmodel import Session

from api.deps import FAILED_AUTHENTICATIONS, ClockDep, KeyCacheDep, PathwayDep, SessionDep, client_address
from api.rate_limit import RateLimiter
from api.tasks import FollowThroughDep, change_task
from api.web.common import (
    PREFIX,
    CsrfFailed,
    StateDep,
    TDep,
    WebRoute,
    WebSessionDep,
    render,
    safe_next,
    wants_json,
)
from api.web.i18n import Translator
from api.web.pages import home_of
from api.web.session import (
    COOKIE_PATH,
    LOGIN_COOKIE,
    LOGIN_TOKEN_SECONDS,
    SESSION_COOKIE,
    WebSession,
    same_token,
    sign_in,
)
from pathway.access import permissions
from pathway.access.permissions import Role
from pathway.clinical.errors import InvalidInput, PathwayError, RateLimited
from pathway.ingest.inbound import MAX_ROW_ID, plausible_instant, storable
from pathway.store.work_tables import CareTask
from pathway.tasks import actions, patient_tasks
from pathway.tasks.status import TaskOutcome
from pathway.teams import team_store

router = APIRouter(prefix=PREFIX, include_in_schema=False, route_class=WebRoute)
TaskId = Annotated[int, Path(ge=1, le=MAX_ROW_ID)]
_ROLES = (Role.EHR, Role.TEAM)


async def _form(request: Request) -> dict[str, str]:
    """The urlencoded form of the request (its first value per field); the body limit applies before."""
    body = (await request.body()).decode("utf-8", errors="replace")
    return {name: values[0] for name, values in parse_qs(body, keep_blank_values=True).items()}


FormDep = Annotated[dict[str, str], Depends(_form)]


# --- Signing in and out ---------------------------------------------------------------------------


def _login_page(
    request: Request,
    session: Session,
    now: datetime,
    state: StateDep,
    t: Translator,
    error: str | None,
    status: int = 200,
) -> Response:
    token = state.sessions.login_token(session, now)
    context = {
        "session": None,
        "team": None,
        "login_token": token,
        "error": error,
        "next": safe_next(request.query_params.get("next"), ""),
    }
    response = render(request, state, t, "login.html", context, status_code=status)
    response.set_cookie(
        LOGIN_COOKIE,
        token,
        max_age=LOGIN_TOKEN_SECONDS,
        path=COOKIE_PATH,
        httponly=True,
        samesite="strict",  # a cross-site form post carries no sign-in cookie at all
        secure=state.settings.cookie_secure,
    )
    return response


@router.get("/login", response_class=HTMLResponse)
def login_form(request: Request, session: SessionDep, clock: ClockDep, state: StateDep, t: TDep) -> Response:
    return _login_page(request, session, clock.now(), state, t, None)


def _cross_site(request: Request) -> bool:
    """The browser says the form was posted from another site (``Sec-Fetch-Site``; older browsers
    send nothing, and the sign-in token alone answers)."""
    return request.headers.get("sec-fetch-site", "same-origin") not in ("same-origin", "none")


@router.post("/login", response_class=HTMLResponse)
def login(
    request: Request,
    form: FormDep,
    session: SessionDep,
    clock: ClockDep,
    cache: KeyCacheDep,
    state: StateDep,
    t: TDep,
) -> Response:
    """Check the key like any API key; on success open a session, set its cookie and go to the
    team's list. Only a form this server issued, posted from its own pages, is taken (login CSRF)."""
    now = clock.now()
    if _cross_site(request):
        return _login_page(request, session, now, state, t, t("login.expired"), 403)
    if not state.sessions.login_token_valid(
        session, request.cookies.get(LOGIN_COOKIE), form.get("login_token"), now
    ):
        return _login_page(request, session, now, state, t, t("login.expired"), 400)
    failures: RateLimiter = request.app.state.auth_failures
    address = client_address(request)
    try:
        failures.refuse_if_spent(address, FAILED_AUTHENTICATIONS)
        key, caller = sign_in(session, form.get("api_key", ""), cache)
    except RateLimited as error:
        page = _login_page(request, session, now, state, t, t("login.too_many"), 429)
        page.headers.update(error.headers)
        return page
    except permissions.Forbidden:
        return _login_page(request, session, now, state, t, t("login.bad_role"), 403)
    except permissions.Unauthenticated:
        with contextlib.suppress(RateLimited):  # counted; the next attempt is the one refused
            failures.take(address, FAILED_AUTHENTICATIONS)
        return _login_page(request, session, now, state, t, t("login.bad_key"), 401)
    permissions.audit(session, caller, "workbench.login", None, now)
    cookie = state.sessions.issue(session, key, now)
    session.commit()
    target = safe_next(form.get("next"), home_of(caller))
    response = RedirectResponse(target, status_code=303)
    response.set_cookie(
        SESSION_COOKIE,
        cookie,
        max_age=state.sessions.max_age,
        path=COOKIE_PATH,
        httponly=True,
        samesite="lax",
        secure=state.settings.cookie_secure,
    )
    response.delete_cookie(LOGIN_COOKIE, path=COOKIE_PATH)
    return response


@router.post("/logout", response_class=HTMLResponse)
def logout(
    request: Request, form: FormDep, web: WebSessionDep, session: SessionDep, clock: ClockDep, state: StateDep
) -> Response:
    """End the session on the server (its cookie opens nothing any more, even if kept) and drop it."""
    check_csrf(request, web, form)
    now = clock.now()
    state.sessions.end(session, web, now)
    permissions.audit(session, web.caller, "workbench.logout", None, now)
    session.commit()
    response = RedirectResponse(f"{PREFIX}/login?notice=logged_out", status_code=303)
    response.delete_cookie(
        SESSION_COOKIE, path=COOKIE_PATH, httponly=True, samesite="lax", secure=state.settings.cookie_secure
    )
    return response


# --- A task's outcome, assignee, snooze ------------------------------------------------------------


def check_csrf(request: Request, web: WebSession, form: dict[str, str]) -> None:
    given = form.get("csrf") or request.headers.get("x-csrf-token")
    if not same_token(web.csrf, given):
        raise CsrfFailed("the form's token does not match this session", "csrf")


def _text(form: dict[str, str], name: str, *, required: bool, limit: int) -> str | None:
    value = (form.get(name) or "").strip()
    if not value:
        if required:
            raise InvalidInput(f"{name} is required", name)
        return None
    if len(value) > limit:
        raise InvalidInput(f"{name} is longer than {limit} characters", name)
    if not storable(value):
        raise InvalidInput(f"{name} must not contain the NUL character (U+0000)", name)
    return value


def _act(
    request: Request,
    session: Session,
    web: WebSession,
    form: dict[str, str],
    t: Translator,
    notice: str,
    change: Callable[[], CareTask],
) -> Response:
    """Run one change; answer JSON to the page's script, else redirect back with a notice or error."""
    back = safe_next(form.get("next"), f"{PREFIX}")
    try:
        check_csrf(request, web, form)
        task = change()
    except PathwayError as error:
        if error.status in (401, 403, 404) and not wants_json(request):
            raise
        if wants_json(request):
            message = t(f"error.{error.code}") if t.has(f"error.{error.code}") else t("error.generic")
            body = {"ok": False, "code": error.code, "message": message, "field": error.field}
            return JSONResponse(body, status_code=error.status)
        return RedirectResponse(_with(back, "error", error.code), status_code=303)
    if notice == "outcome" and task.status == "open":
        notice = "retry"  # urgent work whose patient was not reached: due again, the team lead told
    if wants_json(request):
        # Moving away or dying closes every task of the patient: the page drops those still shown.
        still_open = [t.id for t in patient_tasks.open_tasks_of(session, task.patient_id)]
        payload: dict[str, Any] = {
            "ok": True,
            "task_id": task.id,
            "status": task.status,
            "message": t(f"notice.{notice}"),
            "assignee": task.assignee,
            "listed": notice in ("reassign", "retry"),
            "patient_id": task.patient_id,
            "patient_open_tasks": still_open,
        }
        return JSONResponse(payload)
    return RedirectResponse(_with(back, "notice", notice), status_code=303)


def _with(url: str, name: str, value: str) -> str:
    base, _, query = url.partition("?")
    kept = [p for p in query.split("&") if p and not p.startswith(("notice=", "error="))]
    return base + "?" + "&".join([*kept, f"{name}={quote(value)}"])


@router.post("/tasks/{task_id}/outcome", response_class=HTMLResponse)
def record_outcome(
    task_id: TaskId,
    request: Request,
    form: FormDep,
    web: WebSessionDep,
    session: SessionDep,
    clock: ClockDep,
    rules: FollowThroughDep,
    t: TDep,
) -> Response:
    """Close the task with an outcome (done, unreachable, refused, moved, deceased) and a note; the
    form has no default outcome (one must be chosen)."""

    def change() -> CareTask:
        try:
            outcome = TaskOutcome(form.get("outcome", ""))
        except ValueError:
            raise InvalidInput(
                "outcome must be one of " + ", ".join(o.value for o in TaskOutcome), "outcome"
            ) from None
        note = _text(form, "note", required=False, limit=4000)

        def close(task: CareTask, actor: str, now: datetime) -> None:
            actions.record_outcome(session, task, outcome, note, actor, now, rules.unreachable)

        return change_task(session, web.caller, task_id, "task.outcome", clock, close)

    return _act(request, session, web, form, t, "outcome", change)


@router.post("/tasks/{task_id}/reassign", response_class=HTMLResponse)
def reassign(
    task_id: TaskId,
    request: Request,
    form: FormDep,
    web: WebSessionDep,
    session: SessionDep,
    clock: ClockDep,
    t: TDep,
) -> Response:
    """Give the task to a member of the team."""

    def change() -> CareTask:
        member = _text(form, "member", required=True, limit=200)
        assert member is not None

        def give(task: CareTask, actor: str, now: datetime) -> None:
            actions.reassign(session, task, member, actor, now)

        return change_task(session, web.caller, task_id, "task.reassign", clock, give)

    return _act(request, session, web, form, t, "reassign", change)


@router.post("/tasks/{task_id}/snooze", response_class=HTMLResponse)
def snooze(
    task_id: TaskId,
    request: Request,
    form: FormDep,
    web: WebSessionDep,
    session: SessionDep,
    clock: ClockDep,
    rules: FollowThroughDep,
    pathway: PathwayDep,
    t: TDep,
) -> Response:
    """Snooze the task until a moment (the team's local time) with a reason; the pack bounds it."""

    def change() -> CareTask:
        reason = _text(form, "reason", required=True, limit=500)
        assert reason is not None

        def defer(task: CareTask, actor: str, now: datetime) -> None:
            team = team_store.team_by_id(session, task.team_id) if task.team_id is not None else None
            zone = ZoneInfo(team.timezone) if team is not None else pathway.tz
            until = _local_instant(form.get("until", ""), zone)
            actions.snooze(session, task, until, reason, rules.snooze, actor, now)

        return change_task(session, web.caller, task_id, "task.snooze", clock, defer)

    return _act(request, session, web, form, t, "snooze", change)


def _local_instant(text: str, zone: ZoneInfo) -> datetime:
    """A ``datetime-local`` value (or an ISO instant with an offset) as an aware instant."""
    try:
        at = datetime.fromisoformat(text.strip())
    except ValueError:
        raise InvalidInput("until must be a date and time", "until") from None
    return plausible_instant(at if at.tzinfo is not None else at.replace(tzinfo=zone), "until")
