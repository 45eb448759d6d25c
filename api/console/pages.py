"""The console's pages (docs/architecture.md §7.8).

Reads go through the planning layer's read models (scheduler/planning/views.py, board.py,
console.py); writes through the same services as the API routes, under the same role
declarations (``page(*roles)`` is ``allow(*roles)`` for a signed-in browser), so they are checked
and audited alike.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated
from urllib.parse import urlsplit

from fastapi import APIRouter, BackgroundTasks, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import RedirectResponse, Response
from sqlalchemy import select

from api.console import auth
from api.console.auth import COOKIE, PRE_COOKIE, Page, ViewerDep, page
from api.console.render import render
from api.deps import READ, ReadSessionDep, SessionDep, principal_for_token
from models import Examiner, Lab
from models.base import utcnow
from scheduler.errors import DomainError
from scheduler.planning import board as boards
from scheduler.planning.publish import current_version
from scheduler.services import console_sessions

router = APIRouter()
ReadPage = Annotated[Page, page(*READ)]


def _safe_next(value: str | None) -> str:
    """Only a path inside the console: never another site (an open redirect)."""
    if not value:
        return "/ui/"
    parts = urlsplit(value)
    if parts.scheme or parts.netloc or not value.startswith("/ui/") or "\\" in value:
        return "/ui/"
    return value


def _home(role: str, lab_code: str | None) -> str:
    if lab_code is None:
        return "/ui/labs"
    if role == "examiner":
        return f"/ui/labs/{lab_code}/me"
    return f"/ui/labs/{lab_code}/board"


# ---- sign-in ------------------------------------------------------------------------------


@router.get("/sign-in")
async def sign_in_form(request: Request, next: str | None = None) -> Response:
    token = auth.new_sign_in_token()
    response = render(request, "sign_in.html", csrf=token, next=_safe_next(next), error=None)
    auth.set_cookie(request, response, PRE_COOKIE, token, max_age=3600)
    return response


@router.post("/sign-in")
async def sign_in(
    request: Request, session: SessionDep, reader: ReadSessionDep, background: BackgroundTasks
) -> Response:
    await auth.check_sign_in_csrf(request)
    fields = await auth.form_fields(request)
    token = fields.get("key", "").strip()
    wanted = _safe_next(fields.get("next"))
    if not token:
        return _sign_in_again(request, "Enter an API key.")
    try:
        principal = await principal_for_token(request, reader, background, token)
    except DomainError as exc:
        if exc.status == 401:
            return _sign_in_again(request, "That key is unknown, malformed or revoked.")
        raise
    secret = await run_in_threadpool(
        lambda: console_sessions.start(
            session,
            key_id=principal.key_id,
            actor=principal.actor,
            lab_id=principal.lab_id,
            idle=auth.idle(request),
        )
    )
    target = wanted if wanted != "/ui/" else _home(principal.role, principal.lab_code)
    response = RedirectResponse(target, status_code=303)
    max_age = int(auth.idle(request).total_seconds()) + 24 * 3600
    auth.set_cookie(request, response, COOKIE, secret, max_age=max_age)
    response.delete_cookie(PRE_COOKIE, path=auth.PATH)
    return response


def _sign_in_again(request: Request, error: str) -> Response:
    token = auth.new_sign_in_token()
    response = render(
        request, "sign_in.html", status_code=401, csrf=token, next="/ui/", error=error
    )
    auth.set_cookie(request, response, PRE_COOKIE, token, max_age=3600)
    return response


@router.post("/sign-out")
async def sign_out(request: Request, session: SessionDep, who: ViewerDep) -> Response:
    secret = request.cookies.get(COOKIE, "")
    await auth.check_csrf(request, secret)
    await run_in_threadpool(
        console_sessions.end,
        session,
        secret,
        actor=who.principal.actor,
        lab_id=who.principal.lab_id,
    )
    response = RedirectResponse("/ui/sign-in", status_code=303)
    response.delete_cookie(COOKIE, path=auth.PATH)
    return response


# ---- home ---------------------------------------------------------------------------------


@router.get("/")
async def home(who: ViewerDep) -> Response:
    p = who.principal
    return RedirectResponse(_home(p.role, p.lab_code), status_code=303)


@router.get("/labs")
def labs(request: Request, reader: ReadSessionDep, who: ViewerDep) -> Response:
    query = select(Lab).order_by(Lab.code)
    if who.principal.lab_id is not None:
        query = query.where(Lab.id == who.principal.lab_id)
    found = list(reader.scalars(query))
    return render(request, "labs.html", viewer=who, labs=found, title="Labs")


# ---- board --------------------------------------------------------------------------------


def _today(lab: Lab):  # type: ignore[no-untyped-def]
    from zoneinfo import ZoneInfo

    return utcnow().astimezone(ZoneInfo(lab.timezone)).date()


@router.get("/labs/{lab}/board")
def board_page(
    request: Request,
    p: ReadPage,
    days: Annotated[int, Query(ge=1, le=boards.MAX_DAYS)] = 5,
    start: Annotated[int, Query(ge=-28, le=56, description="Days from today")] = 0,
) -> Response:
    lab = p.ctx.lab
    version = current_version(p.ctx.session, lab)
    board = None
    if version is not None:
        board = boards.board(p.ctx.session, lab, version, _today(lab) + timedelta(days=start), days)
    return render(
        request,
        "board.html",
        viewer=p.viewer,
        lab=lab,
        current="board",
        title="Board",
        board=board,
        days=days,
        start=start,
    )


def examiner_of(p: Page) -> Examiner | None:
    examiner_id = p.viewer.principal.examiner_id
    return p.ctx.session.get(Examiner, examiner_id) if examiner_id is not None else None
