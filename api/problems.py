"""RFC 9457 problem details: every error the API returns has one shape and one media type.

Domain errors (``scheduler.errors.DomainError``) are rendered by one handler; every 422, whether
from a service or from request validation, lists the offending parts in ``errors[]``. A body that
cannot be parsed is 400 with the same ``errors[]``, one that is not JSON is 415; routing errors
(404 unknown route, 405) and the body size limit (413) use the same shape. A database that is too
busy (no pooled connection free, or a lock wait that ran out) is 503 with ``Retry-After``: the
client retries, nothing was written. A 500 closes its connection, since the server drops the
connection after an unhandled error. Routes declare the problems particular to them with
``responses=problems(...)``; the app's OpenAPI hook adds those every operation shares.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import compile_path

from scheduler.db import is_lock_timeout
from scheduler.errors import DomainError

log = logging.getLogger(__name__)

PROBLEM_JSON = "application/problem+json"
PROBLEM_BASE = "https://labq.dev/problems/"
RETRY_AFTER_SECONDS = 1
MAX_LISTED_ERRORS = 50
BODY_PARSE_ERROR = "There was an error parsing the body"  # FastAPI's 400 for a non-UTF-8 body


class Problem(BaseModel):
    """An RFC 9457 problem. Extension members (``field``, ``rule``, ...) may follow."""

    model_config = ConfigDict(extra="allow")

    type: str = Field(default="about:blank", description="A URI naming the kind of problem.")
    title: str = Field(description="Short summary of the kind of problem.")
    status: int = Field(description="The HTTP status code.")
    detail: str | None = Field(default=None, description="What went wrong with this request.")
    instance: str | None = Field(default=None, description="The request path.")


class FieldError(BaseModel):
    """One invalid part of a request."""

    location: str = Field(description="body, query, path or header.")
    field: str = Field(description="Where in that part, e.g. cases[3].devices[0].kind.")
    message: str
    type: str


class ValidationProblem(Problem):
    errors: list[FieldError] = Field(description="Every invalid field (at most 50 listed).")


_DESCRIPTIONS: dict[int, str] = {
    400: "The body cannot be parsed: not JSON, or not UTF-8.",
    401: "No API key, or an unknown or revoked one.",
    403: "The key's role or lab scope does not allow this.",
    404: "The resource (or a resource the request names) does not exist.",
    405: "Method not allowed on this path.",
    409: "Conflicts with the current state (duplicate, impossible transition).",
    412: "If-Match does not match the resource's current ETag.",
    413: "The request body is larger than the configured limit.",
    415: "The body is not application/json.",
    422: "The payload is invalid; every bad field is listed in errors[].",
    429: "Too many requests (e.g. repeated failed authentication); see Retry-After.",
    503: "The service or its database is unavailable or busy; see Retry-After.",
}


def problems(
    *statuses: int, auth: bool = True, creates: bool = False
) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses=`` entries for the problems a route can return.

    ``auth`` adds 401 and 403 (every route but health). ``creates`` marks a create-or-replace
    ``PUT`` that answers 201 when the key was new (the app publishes it with the 200's schema).
    The app's OpenAPI hook adds the generic problems of every operation and publishes them all as
    application/problem+json.
    """
    if auth:
        statuses = (401, 403, *statuses)
    responses: dict[int | str, dict[str, Any]] = {
        status: {
            "model": ValidationProblem if status in (400, 422) else Problem,
            "description": describe(status),
        }
        for status in statuses
    }
    if creates:
        responses[201] = {"description": CREATED}
    return responses


CREATED = "Created: nothing had this key before."


def describe(status: int) -> str:
    return _DESCRIPTIONS.get(status, HTTPStatus(status).phrase)


def problem_response(
    status: int,
    *,
    title: str | None = None,
    detail: str | None = None,
    type_: str = "about:blank",
    instance: str | None = None,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> JSONResponse:
    body: dict[str, Any] = {
        "type": type_,
        "title": title or HTTPStatus(status).phrase,
        "status": status,
    }
    if detail is not None:
        body["detail"] = detail
    if instance is not None:
        body["instance"] = instance
    for key, value in extra.items():
        if key not in body:
            body[key] = jsonable_encoder(value)
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


def field_path(loc: Sequence[str | int]) -> str:
    """``("cases", 3, "devices", 0, "kind")`` -> ``cases[3].devices[0].kind``."""
    path = ""
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        else:
            path += f".{part}" if path else str(part)
    return path


def _field_errors(errors: Sequence[Any]) -> list[dict[str, str]]:
    listed = []
    for error in errors:
        loc = tuple(error.get("loc", ()))
        location = str(loc[0]) if loc else "body"
        rest = loc[1:]
        message = str(error.get("msg", "invalid")).removeprefix("Value error, ")
        kind = str(error.get("type", "invalid"))
        if kind == "json_invalid":
            reason = (error.get("ctx") or {}).get("error", "")
            at = rest[0] if rest else "?"
            message = f"the body is not valid JSON ({reason} at character {at})"
            rest = ()
        # Pydantic names the branch of an Annotated/union type in the location; drop the noise.
        rest = tuple(p for p in rest if not (isinstance(p, str) and p.startswith("function-")))
        listed.append(
            {"location": location, "field": field_path(rest), "message": message, "type": kind}
        )
    return listed


async def _domain_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, DomainError)
    headers = getattr(exc, "headers", None)
    extra = dict(exc.extra)
    if exc.status == 422:
        extra["errors"] = _domain_field_errors(request, exc)
    return problem_response(
        exc.status,
        title=exc.title,
        detail=exc.detail,
        type_=exc.type,
        instance=request.url.path,
        headers=headers,
        **extra,
    )


def _domain_field_errors(request: Request, exc: DomainError) -> list[dict[str, str]]:
    """The ``errors[]`` of a 422 raised by a service, in the shape request validation uses.

    A service names the offending ``field`` (kept at the top level too, as before) or lists
    several ``errors``; the location is the request part that holds that name: a path or query
    parameter of this request, else the body.
    """
    listed = exc.extra.get("errors")
    if not isinstance(listed, list) or not listed:
        field = exc.extra.get("field")
        listed = [{"field": field if isinstance(field, str) else "", "message": exc.detail}]
    errors = []
    for error in listed[:MAX_LISTED_ERRORS]:
        item = dict(error) if isinstance(error, dict) else {"message": str(error)}
        field = str(item.get("field") or "")
        name = field.split(".", 1)[0].split("[", 1)[0]
        location = item.get("location") or (
            "path"
            if name and name in request.path_params
            else "query"
            if name and name in request.query_params
            else "body"
        )
        errors.append(
            {
                "location": str(location),
                "field": field,
                "message": str(item.get("message") or exc.detail),
                "type": str(item.get("type") or "invalid"),
            }
        )
    return errors


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = _field_errors(exc.errors())
    if any(e["location"] == "body" for e in errors) and not _is_json(request):
        return unsupported_media_type(request)
    if any(e["type"] == "json_invalid" for e in errors):
        return malformed_body(request, [e for e in errors if e["type"] == "json_invalid"])
    shown = errors[:MAX_LISTED_ERRORS]
    first = shown[0] if shown else None
    if first is None:
        detail = "the request is invalid"
    else:
        where = f"{first['location']} {first['field']}".strip()
        detail = f"{where}: {first['message']}"
        if len(errors) > 1:
            detail += f" (and {len(errors) - 1} more invalid field(s))"
    return problem_response(
        422,
        title="Invalid request",
        detail=detail,
        type_=PROBLEM_BASE + "invalid-request",
        instance=request.url.path,
        errors=shown,
    )


def _is_json(request: Request) -> bool:
    """No Content-Type (read as JSON) or application/json or application/*+json."""
    content_type = request.headers.get("content-type")
    if not content_type:
        return True
    media = content_type.split(";", 1)[0].strip().lower()
    return media == "application/json" or (
        media.startswith("application/") and media.endswith("+json")
    )


def unsupported_media_type(request: Request) -> JSONResponse:
    given = request.headers.get("content-type", "").split(";", 1)[0].strip()
    return problem_response(
        415,
        title="Unsupported media type",
        detail=f"the body must be application/json, not {given}",
        type_=PROBLEM_BASE + "unsupported-media-type",
        instance=request.url.path,
        headers={"Accept": "application/json"},
    )


def malformed_body(request: Request, errors: list[dict[str, str]] | None = None) -> JSONResponse:
    """400: the body cannot be parsed at all (not JSON, or not UTF-8).

    422 is kept for a body that parses but breaks the schema (RFC 9110 §15.5.21): a client's
    serializer bug and a wrong value are different faults.
    """
    errors = errors or [
        {
            "location": "body",
            "field": "",
            "message": "the body is not valid JSON (it is not UTF-8 text)",
            "type": "json_invalid",
        }
    ]
    return problem_response(
        400,
        title="Malformed request body",
        detail=errors[0]["message"],
        type_=PROBLEM_BASE + "malformed-body",
        instance=request.url.path,
        errors=errors,
    )


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    status = exc.status_code
    if status == 400 and exc.detail == BODY_PARSE_ERROR:
        return malformed_body(request)
    phrase = HTTPStatus(status).phrase
    detail = exc.detail if exc.detail and exc.detail != phrase else None
    if status == 404 and detail is None:
        detail = f"no route {request.url.path}"
    headers = dict(exc.headers) if exc.headers else {}
    if status == 405:
        allowed = _allowed_methods(request)
        if allowed:
            headers["Allow"] = allowed
        detail = detail or f"{request.method} is not allowed on {request.url.path}"
        if allowed:
            detail += f" (allowed: {allowed})"
    return problem_response(
        status,
        title=phrase,
        detail=detail,
        instance=request.url.path,
        headers=headers or None,
    )


def _allowed_methods(request: Request) -> str:
    """Every method some route accepts on this path (Starlette names only the first route's)."""
    from api.deps import api_routes

    path = request.url.path
    methods: set[str] = set()
    for template, route_methods, _ in api_routes(request.app, templates=True):
        if compile_path(template)[0].fullmatch(path):
            methods |= route_methods
    return ", ".join(sorted(methods))


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    # Bugs stay loud: this renders the 500 for the client, then Starlette re-raises to the server,
    # which then drops the connection; "Connection: close" tells the client not to reuse it.
    log.exception("unhandled error on %s %s", request.method, request.url.path)
    return problem_response(
        500,
        detail="internal error; it has been logged",
        instance=request.url.path,
        headers={"Connection": "close"},
    )


def _busy(request: Request, detail: str) -> JSONResponse:
    """The database cannot take this request now: the client may retry; not a server fault."""
    return problem_response(
        503,
        title="Service busy",
        detail=detail,
        type_=PROBLEM_BASE + "busy",
        instance=request.url.path,
        headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
    )


async def _database_busy(request: Request, exc: Exception) -> JSONResponse:
    return _busy(request, "every database connection is in use; retry shortly")


async def _database_error(request: Request, exc: Exception) -> JSONResponse:
    """A lock wait that ran out (SQLite busy, PostgreSQL lock or statement timeout, a
    serialization failure) is 503; any other database error is a bug (500)."""
    if is_lock_timeout(exc):
        log.info("lock timeout on %s %s: %s", request.method, request.url.path, exc)
        return _busy(request, "the database is busy with another change; retry shortly")
    return await _unexpected(request, exc)


def install(app: FastAPI) -> None:
    """Register the handlers that render every error as problem+json."""
    app.add_exception_handler(PoolTimeout, _database_busy)
    app.add_exception_handler(DBAPIError, _database_error)
    app.add_exception_handler(DomainError, _domain_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected)


def body_too_large(limit: int, path: str) -> JSONResponse:
    return problem_response(
        413,
        title="Content too large",
        detail=f"the request body exceeds the limit of {limit} bytes",
        type_=PROBLEM_BASE + "too-large",
        instance=path,
        limit=limit,
    )
