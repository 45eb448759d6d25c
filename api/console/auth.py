"""Console sign-in, sessions and CSRF (docs/architecture.md §7.8).

A page depends on ``page(*roles)``: the session cookie resolves to the principal of the key that
signed in, and the API's own ``allow(*roles)`` then checks role, lab scope and lab (and takes the
lab's write lock for a write), so the console honours exactly what the API does. A write must
carry the session's CSRF token (form field ``csrf`` or header ``X-CSRF-Token``), checked before
anything else; without it the answer is 403.
"""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass
from datetime import timedelta
from typing import Annotated, Any
from urllib.parse import parse_qs

from fastapi import BackgroundTasks, Depends, Request
from fastapi.concurrency import run_in_threadpool

from api.deps import (
    READ_METHODS,
    Allow,
    Context,
    Principal,
    ReadSessionDep,
    SessionDep,
    principal_of,
)
from models.base import utcnow
from scheduler.errors import DomainError, Forbidden, Invalid
from scheduler.services import console_sessions

COOKIE = "labq_console"
PRE_COOKIE = "labq_console_signin"  # the sign-in form's own CSRF token (double submit)
CSRF_FIELD = "csrf"
CSRF_HEADER = "X-CSRF-Token"
PATH = "/ui"


class SignInNeeded(Exception):
    """No live session: the page answers with a redirect to the sign-in form."""


class CsrfRefused(Forbidden):
    type = "https://labq.dev/problems/csrf"


class UnsupportedForm(DomainError):
    status = 415
    title = "Unsupported Media Type"
    type = "https://labq.dev/problems/unsupported-media-type"


@dataclass(frozen=True)
class Viewer:
    """The signed-in browser: who it acts as, and its session's CSRF token."""

    principal: Principal
    session_id: int
    csrf: str

    @property
    def role(self) -> str:
        return self.principal.role


def idle(request: Request) -> timedelta:
    return timedelta(minutes=request.app.state.settings.console_idle_minutes)


def set_cookie(request: Request, response: Any, name: str, value: str, max_age: int) -> None:
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        path=PATH,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )


async def viewer(request: Request, reader: ReadSessionDep, background: BackgroundTasks) -> Viewer:
    secret = request.cookies.get(COOKIE, "")
    found = await run_in_threadpool(console_sessions.resolve, reader, secret, idle=idle(request))
    if found is None:
        raise SignInNeeded()
    session_id, last_seen, key = found
    if utcnow() - last_seen >= console_sessions.TOUCH_EVERY:
        background.add_task(console_sessions.touch, request.app.state.engine, session_id)
    return Viewer(principal_of(key), session_id, console_sessions.csrf_token(secret))


ViewerDep = Annotated[Viewer, Depends(viewer)]


async def form_fields(request: Request) -> dict[str, str]:
    """A posted form (``application/x-www-form-urlencoded``): each field's first value."""
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    body = await request.body()
    if not body:
        return {}
    if kind != "application/x-www-form-urlencoded":
        raise UnsupportedForm("send the form as application/x-www-form-urlencoded")
    try:
        parsed = parse_qs(body.decode(), keep_blank_values=True, max_num_fields=200)
    except (UnicodeDecodeError, ValueError):
        raise Invalid("the form could not be read") from None
    return {name: values[0] for name, values in parsed.items()}


async def check_csrf(request: Request, secret: str) -> None:
    sent = request.headers.get(CSRF_HEADER) or (await form_fields(request)).get(CSRF_FIELD)
    if not console_sessions.csrf_matches(secret, sent):
        raise CsrfRefused("this form has no valid CSRF token; reload the page and try again")


async def check_sign_in_csrf(request: Request) -> None:
    sent = (await form_fields(request)).get(CSRF_FIELD, "")
    expected = request.cookies.get(PRE_COOKIE, "")
    if not expected or not hmac.compare_digest(expected, sent):
        raise CsrfRefused("the sign-in form has expired; reload it and try again")


def new_sign_in_token() -> str:
    return secrets.token_urlsafe(24)


@dataclass
class Page:
    """What a console route works with: the API's ``Context`` and the viewer."""

    ctx: Context
    viewer: Viewer

    @property
    def actor(self) -> str:
        return self.ctx.actor


def page(*roles: str) -> Any:
    """A page's declaration, as ``allow(*roles)`` is a route's: ``Annotated[Page, page(...)]``."""
    allowed = Allow(*roles)

    async def resolve(
        request: Request, session: SessionDep, reader: ReadSessionDep, who: ViewerDep
    ) -> Page:
        if request.method not in READ_METHODS:
            await check_csrf(request, request.cookies.get(COOKIE, ""))
        ctx = await allowed(request, session, reader, who.principal)
        return Page(ctx, who)

    resolve.roles = allowed.roles  # type: ignore[attr-defined]
    return Depends(resolve)
