"""The console application: mounted at /ui on the API, ``/`` redirects there.

A sub-application rather than routes on the API, so the API's route table (its role matrix and
OpenAPI document) stays the API's, and errors here are pages, not problem+json. It shares the
API's ``app.state`` (settings, engine, sessions, key cache, throttle). docs/architecture.md §7.8.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import PlainTextResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from pydantic import ValidationError
from sqlalchemy.exc import DBAPIError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.console.auth import SignInNeeded
from api.console.render import palette_css, render
from api.deps import MANAGE, READ
from scheduler.errors import DomainError

log = logging.getLogger(__name__)
STATIC = Path(__file__).parent / "static"
SECURITY_HEADERS = [
    (
        b"content-security-policy",
        b"default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
        b"img-src 'self' data:; connect-src 'self'; form-action 'self'; "
        b"frame-ancestors 'none'; base-uri 'none'",
    ),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
]


@dataclass(frozen=True)
class NavItem:
    """An entry of the console's navigation: a lab page and the roles that see it."""

    key: str
    label: str
    path: str  # under /ui/labs/{lab}
    roles: tuple[str, ...]


NAV: list[NavItem] = [
    NavItem("board", "Board", "/board", READ),
    NavItem("backlog", "Backlog", "/backlog", READ),
    NavItem("exposure", "Exposure", "/exposure", READ),
    NavItem("runs", "Runs", "/runs", READ),
    NavItem("capacity", "Capacity", "/capacity", READ),
    NavItem("what-if", "What-if", "/what-if", MANAGE),
    NavItem("me", "My work", "/me", ("examiner",)),
]
"""The console's pages in navigation order; a page added later appends its entry."""


def nav_for(viewer: Any, lab: Any) -> list[tuple[NavItem, str]]:
    if viewer is None or lab is None:
        return []
    code = getattr(lab, "code", lab)
    return [(item, f"/ui/labs/{code}{item.path}") for item in NAV if viewer.role in item.roles]


class SecurityHeaders:
    """Every console answer: a strict content security policy, no framing, no referrer, and
    never cached (pages carry CSRF tokens and case references)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        static = scope["path"].startswith("/static/") or scope["path"].endswith("palette.css")

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [*message.get("headers", ()), *SECURITY_HEADERS]
                if not static:
                    headers.append((b"cache-control", b"no-store"))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, with_headers)


def _error_page(request: Request, status: int, title: str, detail: str) -> Response:
    return render(
        request, "error.html", status_code=status, title=title, detail=detail, status=status
    )


def build_console(api: FastAPI) -> FastAPI:
    from api.console import capacity_pages, pages

    console = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)
    console.state = api.state  # one set of settings, engine, caches and throttles
    console.add_middleware(SecurityHeaders)
    console.mount("/static", StaticFiles(directory=STATIC), name="console-static")

    @console.get("/palette.css")
    async def palette() -> Response:
        return PlainTextResponse(palette_css(), media_type="text/css")

    @console.exception_handler(SignInNeeded)
    async def sign_in_needed(request: Request, exc: SignInNeeded) -> Response:
        if request.method not in ("GET", "HEAD"):
            return _error_page(request, 401, "Signed out", "Your session has ended; sign in again.")
        wanted = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        from urllib.parse import quote

        return RedirectResponse(f"/ui/sign-in?next={quote(wanted)}", status_code=303)

    @console.exception_handler(DomainError)
    async def domain_error(request: Request, exc: DomainError) -> Response:
        response = _error_page(request, exc.status, exc.title, exc.detail)
        if exc.status == 429:
            response.headers.update(getattr(exc, "headers", None) or {})
        return response

    @console.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> Response:
        parts = []
        for error in exc.errors():
            where = ".".join(str(p) for p in error.get("loc", ())[1:]) or "request"
            parts.append(f"{where}: {error.get('msg', 'invalid')}")
        return _error_page(request, 422, "Invalid request", "; ".join(parts))

    @console.exception_handler(ValidationError)
    async def invalid_form(request: Request, exc: ValidationError) -> Response:
        parts = []
        for error in exc.errors():
            where = ".".join(str(p) for p in error.get("loc", ())) or "form"
            parts.append(f"{where}: {error.get('msg', 'invalid')}")
        return _error_page(request, 422, "Invalid form", "; ".join(parts))

    @console.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        detail = exc.detail if isinstance(exc.detail, str) else "request refused"
        if exc.status_code == 404:
            detail = f"no console page {request.url.path}"
        return _error_page(request, exc.status_code, "Not available", detail)

    @console.exception_handler(DBAPIError)
    async def database(request: Request, exc: DBAPIError) -> Response:
        log.warning("database error on console page %s: %s", request.url.path, exc)
        return _error_page(request, 503, "Database busy", "The database is busy; try again.")

    @console.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> Response:
        log.exception("unhandled error on console page %s", request.url.path)
        return _error_page(request, 500, "Internal error", "Internal error; it has been logged.")

    console.include_router(pages.router)
    console.include_router(capacity_pages.router)
    return console


def mount_console(api: FastAPI) -> None:
    """Serve the console at /ui/ on ``api``, and redirect / there."""

    async def to_console(request: Request) -> Response:
        return RedirectResponse("/ui/", status_code=307)

    async def console_root(request: Request) -> Response:
        return RedirectResponse("/ui/", status_code=307)

    # Plain routes, not API operations: the API's route table stays the API's own.
    api.add_route("/", to_console, methods=["GET", "HEAD"], include_in_schema=False)
    api.add_route("/ui", console_root, methods=["GET", "HEAD"], include_in_schema=False)
    api.mount("/ui", build_console(api), name="console")
