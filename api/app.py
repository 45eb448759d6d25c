"""The HTTP API: ``create_app(settings)`` builds the FastAPI application (OpenAPI at /docs).

Every error is RFC 9457 problem+json (api/problems.py); every route but /health needs an API key
(api/deps.py); request bodies are capped at ``settings.max_request_bytes`` (413); request counts and
latencies per route are exported at /metrics for Prometheus.
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import fastapi_offline
from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.openapi.utils import get_openapi
from fastapi.responses import HTMLResponse
from fastapi.routing import APIRoute
from fastapi.staticfiles import StaticFiles
from prometheus_client import CollectorRegistry, Counter, Histogram
from sqlalchemy import Engine
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api import problems
from api.console import mount_console
from api.deps import role_table
from api.metrics import StateCollector
from api.routers import (
    audit,
    capacity,
    cases,
    feeds,
    forecasts,
    jobs,
    keys,
    labs,
    reports,
    resources,
    schedules,
    solve_runs,
    system,
    webhooks,
)
from models.security import ROLES
from scheduler import continuous
from scheduler.db import make_engine, session_factory
from scheduler.delivery import start_delivery_thread
from scheduler.logs import log_context
from scheduler.settings import Settings, get_settings
from scheduler.worker import start_embedded_worker, start_stale_sweeper

API_VERSION = "1"
_DOCS_FILES = Path(fastapi_offline.__file__).parent / "static"
DESCRIPTION = """\
Schedules device examinations in forensic labs. Authenticate with an API key in `X-API-Key` (or
`Authorization: Bearer`); each operation lists the roles it admits (and `x-roles`). Errors are
RFC 9457 `application/problem+json`: a body that cannot be parsed (not JSON, not UTF-8) is 400, a
body that is not `application/json` is 415, and a request that parses but is invalid is 422;
both 400 and 422 list every bad part in `errors[]` (`location`, `field`, `message`, `type`).
Instants are RFC 3339 in UTC (`...Z`); times of day such as shift starts are the lab's local
wall-clock time (`HH:MM[:SS]`, no offset). Lists are cursor-paginated (`limit`, `cursor` ->
`next_cursor`, null on the last page); keep a page's `resume_cursor` to poll later for only what
was added since. A job is addressed by its id or by `/cases/{ref}/devices/{device}/jobs/{job}`.
Mutable resources carry an `ETag`; send it back in `If-Match` to change them safely (412 when
stale). Skills, capabilities and stages must be terms of the lab's vocabulary
(`/labs/{lab}/vocabulary`): unknown ones are 422, every one listed. Free-text notes must be short
and non-identifying. ReDoc at /redoc.
"""


class Metrics:
    """Prometheus metrics of one app, in their own registry (several apps may share a process):
    its HTTP requests, and labq's state read from ``engine`` at scrape time (api/metrics.py)."""

    def __init__(self, engine: Engine) -> None:
        self.registry = CollectorRegistry()
        self.registry.register(StateCollector(engine))
        self.requests = Counter(
            "labq_http_requests",
            "HTTP requests by route template, method and status.",
            ("method", "route", "status"),
            registry=self.registry,
        )
        self.latency = Histogram(
            "labq_http_request_duration_seconds",
            "HTTP request latency by route template and method.",
            ("method", "route"),
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
            registry=self.registry,
        )


class MetricsMiddleware:
    """Counts and times every request, labelled by route template (bounded cardinality)."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            route = getattr(scope.get("route"), "path", None) or "unmatched"
            method = scope["method"]
            self.metrics.requests.labels(method, route, str(status)).inc()
            self.metrics.latency.labels(method, route).observe(time.perf_counter() - started)


REQUEST_ID_HEADER = "X-Request-ID"
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")
_LAB_IN_PATH = re.compile(r"^/labs/([A-Za-z0-9][A-Za-z0-9._-]{0,63})(?:[/:]|$)")
access_log = logging.getLogger("api.access")


class RequestContextMiddleware:
    """Gives each request an id (the caller's ``X-Request-ID`` if it is a plain token, else a new
    one), returns it in the response, and sets it and the path's lab as log context, so every
    line logged while the request runs names them; then logs the request's access line (by
    route template, never the raw path)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        sent = dict(scope.get("headers", ())).get(REQUEST_ID_HEADER.lower().encode(), b"")
        given = sent.decode("latin-1")
        request_id = given if _REQUEST_ID.match(given) else uuid.uuid4().hex
        lab = _LAB_IN_PATH.match(scope["path"])
        started = time.perf_counter()
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = [*message.get("headers", ()), (b"x-request-id", request_id.encode())]
                message = {**message, "headers": headers}
            await send(message)

        with log_context(request_id=request_id, lab=lab.group(1) if lab else None):
            try:
                await self.app(scope, receive, send_with_id)
            finally:
                route = getattr(scope.get("route"), "path", None) or "unmatched"
                elapsed = 1000 * (time.perf_counter() - started)
                access_log.info(
                    "%s %s %s %.1f ms",
                    scope["method"],
                    route,  # the template: a path may carry a credential (a feed's token)
                    status,
                    elapsed,
                    extra={"status": status, "duration_ms": round(elapsed, 1)},
                )


class BodyLimitMiddleware:
    """Refuses request bodies over ``limit`` bytes with 413 problem+json before any route runs.

    The declared Content-Length is checked first; a body without one (chunked) is read as it
    arrives, up to the limit, and replayed to the app.
    """

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = None
        for name, value in scope.get("headers", ()):
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    declared = None
        if declared is not None and declared > self.limit:
            await problems.body_too_large(self.limit, scope["path"])(scope, receive, send)
            return
        if declared is not None:  # the server holds the client to its declared length
            await self.app(scope, receive, send)
            return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                break
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.limit:
                await problems.body_too_large(self.limit, scope["path"])(scope, receive, send)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": b"".join(chunks), "more_body": False}
            return await receive()

        await self.app(scope, replay, send)


def _openapi(app: FastAPI) -> dict[str, Any]:
    """The generated document, completed in one place so that it states what the API does.

    Every error is published as application/problem+json; every status a route can answer is
    listed (the generic ones derived from what the operation takes: a key, path parameters, a
    body, conditional headers); each operation names the roles its ``allow(...)`` declaration
    admits, in its description and as ``x-roles``.
    """
    if app.openapi_schema:
        return app.openapi_schema
    schema = get_openapi(
        title=app.title,
        version=app.version,
        description=app.description,
        routes=app.routes,
    )
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    if "ValidationProblem" not in components:
        components.update(_problem_schemas())
    roles = role_table(app)
    for path, operations in schema.get("paths", {}).items():
        for method, operation in operations.items():
            allowed = roles.get((method.upper(), path))
            _document_roles(operation, allowed, lab_scoped=path.startswith("/labs/{lab}"))
            _document_statuses(method, operation, authenticated=allowed is not None)
    for unused in ("HTTPValidationError", "ValidationError"):
        components.pop(unused, None)
    app.openapi_schema = schema
    return schema


def _document_roles(
    operation: dict[str, Any], allowed: frozenset[str] | None, *, lab_scoped: bool
) -> None:
    if allowed is None:
        operation["x-roles"] = []
        note = "**Roles:** public, no API key needed."
    else:
        ordered = [role for role in ROLES if role in allowed]
        operation["x-roles"] = ordered
        note = f"**Roles:** {', '.join(ordered)}."
        if lab_scoped:
            note += " A key scoped to one lab reaches only that lab."
    description = operation.get("description", "").rstrip()
    operation["description"] = f"{description}\n\n{note}" if description else note


def _document_statuses(method: str, operation: dict[str, Any], *, authenticated: bool) -> None:
    parameters = operation.get("parameters", [])
    headers = {p["name"].lower() for p in parameters if p.get("in") == "header"}
    statuses: set[int] = {503}
    if authenticated:
        statuses |= {401, 403, 429}
    if parameters or "requestBody" in operation:
        statuses.add(422)
    if any(p.get("in") == "path" for p in parameters):
        statuses.add(404)
    if "requestBody" in operation:
        statuses |= {400, 413, 415}
    if method != "get" and headers & {"if-match", "if-none-match"}:
        statuses.add(412)
    responses = operation.setdefault("responses", {})
    created = responses.get("201")
    if created is not None and "content" not in created and "200" in responses:
        created["content"] = responses["200"].get("content", {})  # a create-or-replace PUT
    for status in sorted(statuses):
        responses.setdefault(str(status), {"description": problems.describe(status)})
    for status, response in responses.items():
        if status[:1] not in ("4", "5"):
            continue
        ref = "ValidationProblem" if status in ("400", "422") else "Problem"
        response["content"] = {
            problems.PROBLEM_JSON: {"schema": {"$ref": f"#/components/schemas/{ref}"}}
        }
        if status in ("400", "422"):
            response["description"] = problems.describe(int(status))
    operation["responses"] = dict(sorted(responses.items()))


def _problem_schemas() -> dict[str, Any]:
    document = problems.ValidationProblem.model_json_schema(
        ref_template="#/components/schemas/{model}"
    )
    definitions: dict[str, Any] = document.pop("$defs", {})
    problem = problems.Problem.model_json_schema(ref_template="#/components/schemas/{model}")
    return {"ValidationProblem": document, "Problem": problem, **definitions}


def operation_id(route: APIRoute) -> str:
    """A stable, readable operationId: the route's function name in camelCase (``listJobs``)."""
    head, *rest = route.name.split("_")
    return head + "".join(word.capitalize() for word in rest)


DOCS_ASSETS = "/docs/assets"


def _serve_docs(app: FastAPI) -> None:
    """Swagger UI at /docs and ReDoc at /redoc, their scripts served by labq itself.

    The assets come from the ``fastapi-offline`` package, so the pages render on a lab network
    without internet access (FastAPI's defaults load them from a CDN).
    """
    app.mount(DOCS_ASSETS, StaticFiles(directory=_DOCS_FILES), name="docs-assets")

    @app.get("/docs", include_in_schema=False)
    async def swagger_ui(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        return get_swagger_ui_html(
            openapi_url=f"{root}{app.openapi_url}",
            title=f"{app.title} API",
            swagger_js_url=f"{root}{DOCS_ASSETS}/swagger-ui-bundle.js",
            swagger_css_url=f"{root}{DOCS_ASSETS}/swagger-ui.css",
            swagger_favicon_url=f"{root}{DOCS_ASSETS}/favicon.png",
            swagger_ui_parameters={"validatorUrl": None},  # no badge fetched from swagger.io
        )

    @app.get("/redoc", include_in_schema=False)
    async def redoc(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        return get_redoc_html(
            openapi_url=f"{root}{app.openapi_url}",
            title=f"{app.title} API",
            redoc_js_url=f"{root}{DOCS_ASSETS}/redoc.standalone.js",
            redoc_favicon_url=f"{root}{DOCS_ASSETS}/favicon.png",
            with_google_fonts=False,
        )


def create_app(settings: Settings | None = None, *, engine: Engine | None = None) -> FastAPI:
    """Build the API. ``engine`` overrides the one made from ``settings.database_url`` (tests)."""
    settings = settings or get_settings()
    continuous.install()  # the planning layer acts on what the services announce (repairs, pins)
    owned = engine is None
    bound = engine if engine is not None else make_engine(settings.database_url, settings=settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        stop_worker = start_embedded_worker(bound) if settings.embedded_worker else None
        # With or without a worker here, the server sees the queue: it ends abandoned runs.
        sweep = settings.stale_sweep_seconds
        stop_sweeper = start_stale_sweeper(bound, sweep) if sweep > 0 else None
        # The embedded worker's process also posts webhooks, in a thread of its own so that a
        # long solve never delays a delivery (and a slow receiver never delays a solve).
        stop_delivery = start_delivery_thread(bound) if settings.embedded_worker else None
        yield
        if stop_delivery is not None:
            stop_delivery()
        if stop_sweeper is not None:
            stop_sweeper()
        if stop_worker is not None:
            stop_worker()
        if owned:
            bound.dispose()

    app = FastAPI(
        title="labq",
        version=API_VERSION,
        description=DESCRIPTION,
        lifespan=lifespan,
        docs_url=None,  # served from packaged assets below, so /docs works offline
        redoc_url=None,
        generate_unique_id_function=operation_id,
    )
    app.state.settings = settings
    app.state.engine = bound
    app.state.sessionmaker = session_factory(bound)
    app.state.read_sessionmaker = session_factory(bound, read_only=True)
    app.state.key_touched = {}
    app.state.metrics = Metrics(bound)
    problems.install(app)
    app.add_middleware(BodyLimitMiddleware, limit=settings.max_request_bytes)
    app.add_middleware(MetricsMiddleware, metrics=app.state.metrics)
    app.add_middleware(RequestContextMiddleware)  # outermost: every other line names the request

    app.include_router(system.router)
    app.include_router(labs.router)
    app.include_router(labs.lab_router)
    app.include_router(resources.router)
    app.include_router(cases.router)
    app.include_router(jobs.router)
    app.include_router(audit.router)
    app.include_router(keys.router)
    app.include_router(solve_runs.router)
    app.include_router(schedules.router)
    app.include_router(capacity.router)
    app.include_router(forecasts.router)
    app.include_router(reports.router)
    app.include_router(feeds.router)
    app.include_router(feeds.public)
    app.include_router(webhooks.router)

    def openapi() -> dict[str, Any]:
        return _openapi(app)

    _serve_docs(app)
    mount_console(app)

    app.openapi = openapi  # type: ignore[method-assign]
    return app
