"""The HTTP API: ``create_app(settings)`` builds the FastAPI application (OpenAPI at /docs).

Every error is RFC 9457 problem+json (api/problems.py); every route but /health needs an API key
(api/deps.py); request bodies are capped at ``settings.max_request_bytes`` (413); request counts and
latencies per route are exported at /metrics for Prometheus.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from prometheus_client import CollectorRegistry, Counter, Histogram
from sqlalchemy import Engine
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api import problems
from api.routers import (
    audit,
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
from scheduler.db import make_engine, session_factory
from scheduler.delivery import start_delivery_thread
from scheduler.settings import Settings, get_settings
from scheduler.worker import start_embedded_worker, start_stale_sweeper

API_VERSION = "1"
DESCRIPTION = """\
Schedules device examinations in forensic labs. Authenticate with an API key in `X-API-Key` (or
`Authorization: Bearer`). Errors are RFC 9457 `application/problem+json`. Lists are cursor-paginated
(`limit`, `cursor` -> `next_cursor`, null on the last page); keep a page's `resume_cursor` to poll
later for only what was added since. A job is addressed by its id or by
`/cases/{ref}/devices/{device}/jobs/{job}`. Mutable resources carry an `ETag`; send it back in
`If-Match` to change them safely (412 when stale). Free-text notes must be short and
non-identifying.
"""


class Metrics:
    """Prometheus metrics of one app, in their own registry (several apps may share a process)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
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
    """The generated document, with every error response published as application/problem+json."""
    if app.openapi_schema:
        return app.openapi_schema
    schema = get_openapi(
        title=app.title,
        version=app.version,
        description=app.description,
        routes=app.routes,
    )
    validation_ref = "#/components/schemas/ValidationProblem"
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    if "ValidationProblem" not in components:
        components.update(_problem_schemas())
    for operations in schema.get("paths", {}).values():
        for operation in operations.values():
            for status, response in operation.get("responses", {}).items():
                content = response.get("content")
                if status[:1] in ("4", "5") and content and "application/json" in content:
                    content[problems.PROBLEM_JSON] = content.pop("application/json")
                if status == "422" and content:
                    # FastAPI's default 422 (HTTPValidationError) is not what the handler returns.
                    content[problems.PROBLEM_JSON] = {"schema": {"$ref": validation_ref}}
                    response["description"] = problems.describe(422)
    for unused in ("HTTPValidationError", "ValidationError"):
        components.pop(unused, None)
    app.openapi_schema = schema
    return schema


def _problem_schemas() -> dict[str, Any]:
    document = problems.ValidationProblem.model_json_schema(
        ref_template="#/components/schemas/{model}"
    )
    definitions: dict[str, Any] = document.pop("$defs", {})
    return {"ValidationProblem": document, **definitions}


def create_app(settings: Settings | None = None, *, engine: Engine | None = None) -> FastAPI:
    """Build the API. ``engine`` overrides the one made from ``settings.database_url`` (tests)."""
    settings = settings or get_settings()
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
        docs_url="/docs",
    )
    app.state.settings = settings
    app.state.engine = bound
    app.state.sessionmaker = session_factory(bound)
    app.state.read_sessionmaker = session_factory(bound, read_only=True)
    app.state.key_touched = {}
    app.state.metrics = Metrics()
    problems.install(app)
    app.add_middleware(BodyLimitMiddleware, limit=settings.max_request_bytes)
    app.add_middleware(MetricsMiddleware, metrics=app.state.metrics)

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
    app.include_router(forecasts.router)
    app.include_router(reports.router)
    app.include_router(feeds.router)
    app.include_router(feeds.public)
    app.include_router(webhooks.router)

    def openapi() -> dict[str, Any]:
        return _openapi(app)

    app.openapi = openapi  # type: ignore[method-assign]
    return app
