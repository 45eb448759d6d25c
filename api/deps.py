"""Request dependencies: the unit of work, authentication, and who may call what.

- ``SessionDep``: one session per request; commits when the route returns, rolls back on any error
  (services only flush). It ends before the response is sent, so a failed commit is never reported
  as a success. GET and HEAD requests get the read-only session (``ReadSessionDep``), so those
  routes must not write. Dependencies that do no I/O on their common path are ``async`` (each sync
  one is a threadpool hop, a measurable share of a short read).
- ``ReadSessionDep``: the request's read-only session (scheduler/db.py: one snapshot; on SQLite it
  never waits for the write lock). Any request reads through it what it need not read under its
  write lock: the API key, and the bulk import its whole payload's comparison.
- ``authenticate``: the API key from ``X-API-Key`` or ``Authorization: Bearer``; a key verified in
  the last ``key_cache_seconds`` is taken from the app's ``KeyCache`` without a database read.
- ``allow(*roles)``: the declarative role check every route but health states. It also enforces
  the key's lab scope for paths under ``/labs/{lab}`` and loads that lab. ``role_table(app)`` reads
  the declarations back, so tests can enumerate every route and its allowed roles.
"""

from __future__ import annotations

import hmac
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from typing import Annotated, Any, TypeVar

import anyio
from fastapi import BackgroundTasks, Depends, FastAPI, Path, Request, Security
from fastapi.concurrency import run_in_threadpool
from fastapi.routing import APIRoute
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy import Engine
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from starlette.convertors import StringConvertor, register_url_convertor

from api.throttle import FailureThrottle
from models import Examiner, Lab
from models.security import ROLES
from scheduler.errors import DomainError, Forbidden, NotFound
from scheduler.services import keys
from scheduler.services.integrity import integrity_error
from scheduler.services.labs import get_lab, lock_lab
from scheduler.settings import Settings

T = TypeVar("T")
API_KEY_HEADER = "X-API-Key"
REF_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]*$"
READ_METHODS = frozenset({"GET", "HEAD"})


class SegmentConvertor(StringConvertor):
    """``{name:segment}``: a path parameter that stops at ':' as well as '/'.

    ``/jobs/3:pin`` then names only the action route, so a GET there is a 405 with ``Allow:
    POST``, not a GET of job "3:pin". No reference or id contains ':'.
    """

    regex = "[^/:]+"


register_url_convertor("segment", SegmentConvertor())

# Role groups used across the routers (docs/architecture.md §9).
ADMIN = ("admin",)
MANAGE = ("admin", "supervisor")
READ = ("admin", "supervisor", "auditor")
CASE_WRITE = ("admin", "supervisor", "integration")
CASE_READ = ("admin", "supervisor", "integration", "auditor")
LAB_READ = ("admin", "supervisor", "integration", "auditor")
OPERATE = ("admin", "auditor")
ESCALATE = CASE_WRITE
"""Who may raise a case's level, whichever route does it: ``:escalate``, a PUT or an import with a
more urgent priority, a link to a more urgent case, an escalating triage flag. Case-management
systems carry the priority their investigators set, so the integration role may, on every one of
these routes alike; every route that can raise a level is declared with ``EscalateCtx`` (the
bulk import with ``ImportCtx``, the same roles)."""


class Unauthorized(DomainError):
    status = 401
    title = "Unauthorized"
    type = "https://labq.dev/problems/unauthorized"
    headers = {"WWW-Authenticate": f'Bearer realm="labq", ApiKey header="{API_KEY_HEADER}"'}


# --- the unit of work ----------------------------------------------------------------------------


def get_engine(request: Request) -> Engine:
    engine: Engine = request.app.state.engine
    return engine


async def get_read_session(request: Request) -> AsyncIterator[Session]:
    # Async so that opening the session (no I/O until its first query) costs no threadpool hop;
    # the commit or rollback and the close run in one hop, shielded from cancellation so a
    # dropped client never leaves a connection checked out.
    session = request.app.state.read_sessionmaker()
    try:
        yield session
    except BaseException:
        await _end(session, _discard)
        raise
    await _end(session, _finish)


ReadSessionDep = Annotated[Session, Depends(get_read_session, scope="function")]


async def get_session(request: Request, reader: ReadSessionDep) -> AsyncIterator[Session]:
    if request.method in READ_METHODS:
        yield reader  # ended by get_read_session
        return
    session = request.app.state.sessionmaker()
    try:
        yield session
    except BaseException:
        await _end(session, _discard)
        raise
    await _end(session, _finish)


async def _end(session: Session, how: Callable[[Session], None]) -> None:
    if not session.in_transaction():
        session.close()  # it never read or wrote: there is no connection to return
        return
    with anyio.CancelScope(shield=True):
        await run_in_threadpool(how, session)


def _finish(session: Session) -> None:
    """Commit the request's work, then close."""
    try:
        commit_now(session)
    finally:
        session.close()


def commit_now(session: Session) -> None:
    """Commit the request's work (an IntegrityError at commit becomes a problem) here, in the
    route's own thread, rather than when the request ends.

    For a route that takes the lab's lock in its own body (``allow(..., lock=False)``): the
    request's end comes only after its answer is serialized and the event loop gets round to it,
    seconds on a server busy with a large body, and until then it would hold SQLite's one write
    lock. The session stays open for reads; the request's end has nothing left to commit.
    """
    try:
        try:
            session.commit()
        except IntegrityError as exc:  # a deferred constraint caught only at commit
            raise integrity_error(exc) from None
    except BaseException:
        session.rollback()
        raise


def _discard(session: Session) -> None:
    try:
        session.rollback()
    finally:
        session.close()


SessionDep = Annotated[Session, Depends(get_session, scope="function")]


# --- authentication ------------------------------------------------------------------------------

_api_key_scheme = APIKeyHeader(
    name=API_KEY_HEADER,
    auto_error=False,
    scheme_name="ApiKey",
    description="An API key (`labq keys create`), e.g. `labq_1a2b3c4d_...`.",
)
_bearer_scheme = HTTPBearer(
    auto_error=False,
    scheme_name="Bearer",
    description="The same API key as a bearer token.",
)


@dataclass(frozen=True)
class Principal:
    """Who is calling: the key's role and scope. ``prefix`` is the actor in the audit trail."""

    key_id: int
    prefix: str
    role: str
    lab_id: int | None
    lab_code: str | None
    examiner_id: int | None

    @property
    def actor(self) -> str:
        return self.prefix

    @property
    def all_labs(self) -> bool:
        return self.lab_id is None

    def may_see_lab(self, lab_id: int | None) -> bool:
        return self.lab_id is None or self.lab_id == lab_id


def _touch_later(request: Request, background: BackgroundTasks, key_id: int) -> None:
    """Update last_used_at after the response, at most once a minute per key and process."""
    touched: dict[int, float] = request.app.state.key_touched
    now = time.monotonic()
    if now - touched.get(key_id, -1e9) < keys.TOUCH_EVERY.total_seconds():
        return
    touched[key_id] = now
    background.add_task(keys.touch, request.app.state.engine, key_id)


def app_cache(request: Request, name: str, make: Callable[[Settings], T]) -> T:
    """A per-app object on ``app.state`` (made once, from the app's settings).

    Per app, not per module: each test module's app has its own database, and ids repeat.
    """
    state = request.app.state
    found: T | None = getattr(state, name, None)
    if found is None:
        with _state_lock:
            found = getattr(state, name, None)
            if found is None:
                found = make(state.settings)
                setattr(state, name, found)
    return found


_state_lock = threading.Lock()


def failure_throttle(request: Request) -> FailureThrottle:
    """The app's buckets of failed authentications per client (api/throttle.py)."""
    return app_cache(
        request,
        "failure_throttle",
        lambda s: FailureThrottle(s.auth_failure_burst, s.auth_failures_per_minute),
    )


def client_address(request: Request) -> str:
    """The caller's network address, as the server sees it (the throttle's client)."""
    return request.client.host if request.client is not None else "unknown"


def key_cache(request: Request) -> keys.KeyCache:
    """The app's cache of verified keys (``key_cache_seconds``; see scheduler/services/keys.py)."""
    return app_cache(request, "key_cache", lambda s: keys.KeyCache(s.key_cache_seconds))


def _one_key(request: Request, bearer: HTTPAuthorizationCredentials | None) -> str | None:
    """The key the request sends ("" for none), or None when it sends two that differ.

    An ``X-API-Key`` that is present counts even when empty, so a blank or wrong key beside a
    valid bearer token is refused rather than passed over (the client's set-up is broken). An
    ``Authorization`` of another scheme (a proxy's Basic) carries no key and is left alone.
    """
    header_key = request.headers.get(API_KEY_HEADER)
    bearer_key = bearer.credentials if bearer is not None else None
    if header_key is not None and bearer_key is not None and header_key != bearer_key:
        return None
    return header_key if header_key is not None else (bearer_key or "")


async def authenticate(
    request: Request,
    session: ReadSessionDep,
    background: BackgroundTasks,
    api_key: Annotated[str | None, Security(_api_key_scheme)] = None,
    bearer: Annotated[HTTPAuthorizationCredentials | None, Security(_bearer_scheme)] = None,
) -> Principal:
    throttle = failure_throttle(request)
    client = client_address(request)
    del api_key  # declared for the schema's security; read as sent by _one_key
    token = _one_key(request, bearer)
    if token is None:
        throttle.check(client)
        throttle.failed(client)
        raise Unauthorized(
            f"send one API key: {API_KEY_HEADER} and Authorization name different ones"
        )
    if not token:
        throttle.check(client)
        throttle.failed(client)
        raise Unauthorized(
            f"an API key is required: send it in {API_KEY_HEADER} or as Authorization: Bearer"
        )
    return await principal_for_token(request, session, background, token)


async def principal_for_token(
    request: Request, session: Session, background: BackgroundTasks, token: str
) -> Principal:
    """The principal of a sent API key (cached, throttled on failure), or 401.

    The one key check: the API's ``authenticate`` and the console's sign-in both use it.
    """
    throttle = failure_throttle(request)
    client = client_address(request)
    cache = key_cache(request)
    key = cache.get(token)
    if key is None:
        throttle.check(client)
        key = await run_in_threadpool(keys.verify, session, token)
        if key is None:
            throttle.failed(client)
            raise Unauthorized("the API key is unknown, malformed or revoked")
        cache.put(token, key)
    _touch_later(request, background, key.id)
    return principal_of(key)


def principal_of(key: keys.VerifiedKey) -> Principal:
    """The principal a verified key (or a console session made with it) acts as."""
    return Principal(
        key_id=key.id,
        prefix=key.prefix,
        role=key.role,
        lab_id=key.lab_id,
        lab_code=key.lab_code,
        examiner_id=key.examiner_id,
    )


PrincipalDep = Annotated[Principal, Depends(authenticate)]


# --- authorization -------------------------------------------------------------------------------


@dataclass
class Context:
    """What a route works with: the session, the caller, and the lab named in the path."""

    session: Session
    principal: Principal
    lab_or_none: Lab | None
    reader: Session  # the request's read-only session (the same as ``session`` on GET and HEAD)
    lock_wait_seconds: float  # how long a wait for the lab's lock may last (lab_lock_wait_seconds)

    @property
    def actor(self) -> str:
        return self.principal.actor

    @property
    def lab(self) -> Lab:
        if self.lab_or_none is None:  # pragma: no cover - a route outside /labs/{lab} asked
            raise NotFound("this route has no lab")
        return self.lab_or_none


class Allow:
    """A route's role declaration: ``ctx: Annotated[Context, Depends(allow("admin"))]``.

    Checks the role (403), then, when the path names a lab, the key's scope (403 for another lab,
    whether or not it exists) and the lab itself (404). A request that may change the lab's data
    (any method but GET and HEAD) holds the lab's write lock (``lock_lab``) from here to its
    commit, so everything it reads, its ETag checks included, stays current until it writes.

    ``lock=False``: the route takes the lab's lock itself, later (the bulk import works its
    payload out from the read-only session first); the lab is read through that session.
    """

    def __init__(self, *roles: str, lock: bool = True) -> None:
        unknown = set(roles) - set(ROLES)
        if unknown or not roles:
            raise ValueError(f"unknown roles: {sorted(unknown)}")
        self.roles = frozenset(roles)
        self.lock = lock

    def __repr__(self) -> str:
        return f"allow({', '.join(sorted(self.roles))})"

    async def __call__(
        self,
        request: Request,
        session: SessionDep,
        reader: ReadSessionDep,
        principal: PrincipalDep,
    ) -> Context:
        if principal.role not in self.roles:
            raise Forbidden(
                f"the {principal.role} role may not {request.method} {_route_path(request)}",
                role=principal.role,
            )
        lab_code = request.path_params.get("lab")
        lab = None
        wait = request.app.state.settings.lab_lock_wait_seconds
        if lab_code is not None:
            if principal.lab_code is not None and principal.lab_code != lab_code:
                raise Forbidden(f"this key is scoped to lab {principal.lab_code!r}")
            if request.method in READ_METHODS or not self.lock:
                lab = await run_in_threadpool(get_lab, reader, lab_code)
            else:
                lab = await run_in_threadpool(lock_lab, session, lab_code, wait_seconds=wait)
        return Context(
            session=session,
            principal=principal,
            lab_or_none=lab,
            reader=reader,
            lock_wait_seconds=wait,
        )


def allow(*roles: str, lock: bool = True) -> Allow:
    return Allow(*roles, lock=lock)


class AllowOrMetricsToken(Allow):
    """``allow(*roles)``, or the scrape token of ``metrics_token`` (/metrics only).

    The token is compared in constant time and grants nothing else; a request that sends another
    key goes through the ordinary authentication and role check. Returns None for a scrape by
    token (no principal, no lab).
    """

    async def __call__(  # type: ignore[override]
        self,
        request: Request,
        session: SessionDep,
        reader: ReadSessionDep,
        background: BackgroundTasks,
        api_key: Annotated[str | None, Security(_api_key_scheme)] = None,
        bearer: Annotated[HTTPAuthorizationCredentials | None, Security(_bearer_scheme)] = None,
    ) -> Context | None:
        configured = request.app.state.settings.metrics_token
        token = _one_key(request, bearer)
        if (
            configured is not None
            and token
            and hmac.compare_digest(token.encode(), configured.get_secret_value().encode())
        ):
            return None
        principal = await authenticate(request, reader, background, api_key, bearer)
        return await super().__call__(request, session, reader, principal)


def _route_path(request: Request) -> str:
    route = request.scope.get("route")
    return str(getattr(route, "path", request.url.path))


def require_examiner_self(ctx: Context, examiner: Examiner) -> None:
    """An examiner key sees only its own examiner's data; other roles pass."""
    if ctx.principal.role == "examiner" and ctx.principal.examiner_id != examiner.id:
        raise Forbidden("an examiner key sees only its own examiner's schedule")


def require_all_labs(ctx: Context, what: str) -> None:
    if not ctx.principal.all_labs:
        raise Forbidden(f"{what} needs a key scoped to all labs")


AdminCtx = Annotated[Context, Depends(allow(*ADMIN))]
ManageCtx = Annotated[Context, Depends(allow(*MANAGE))]
ReadCtx = Annotated[Context, Depends(allow(*READ))]
CaseWriteCtx = Annotated[Context, Depends(allow(*CASE_WRITE))]
CaseReadCtx = Annotated[Context, Depends(allow(*CASE_READ))]
LabReadCtx = Annotated[Context, Depends(allow(*LAB_READ))]
OperateCtx = Annotated[Context, Depends(allow(*OPERATE))]
ScrapeCtx = Annotated[Context | None, Depends(AllowOrMetricsToken(*OPERATE))]
"""/metrics: an admin or auditor key, or the metrics token (None then)."""
EscalateCtx = Annotated[Context, Depends(allow(*ESCALATE))]
ImportCtx = Annotated[Context, Depends(allow(*ESCALATE, lock=False))]
"""The bulk import's: ``EscalateCtx``'s roles; the import takes the lab's lock once its payload
is worked out (scheduler/services/case_import.py)."""

LabPath = Annotated[
    str,
    Path(
        min_length=1,
        max_length=64,
        pattern=REF_PATTERN,
        description="The lab's code.",
        examples=["north"],
    ),
]


async def lab_path(lab: LabPath) -> str:
    """Declares ``{lab}`` once for a router (``dependencies=[Depends(lab_path)]``)."""
    return lab


def _roles_of(dependant: Any) -> frozenset[str] | None:
    for sub in dependant.dependencies:
        if isinstance(sub.call, Allow):
            return sub.call.roles
        found = _roles_of(sub)
        if found is not None:
            return found
    return None


def api_routes(app: FastAPI, *, templates: bool = False) -> Iterator[tuple[str, set[str], Any]]:
    """``(path, methods, dependant)`` of every API route, through included routers.

    ``path`` is the documented path (``/jobs/{job_id}``), or with ``templates`` the one routing
    matches with, convertors included (``/jobs/{job_id:segment}``).
    """
    try:
        from fastapi.routing import iter_route_contexts
    except ImportError:  # FastAPI before included routers were kept lazily
        for route in app.routes:
            if isinstance(route, APIRoute):
                path = route.path if templates else route.path_format
                yield path, set(route.methods or ()), route.dependant
        return
    for context in iter_route_contexts(app.routes):
        route = context.original_route
        if isinstance(route, APIRoute):
            found = context.path if templates else context.path_format
            yield str(found), set(context.methods or ()), route.dependant


def role_table(app: FastAPI) -> dict[tuple[str, str], frozenset[str] | None]:
    """``(METHOD, path) -> allowed roles`` for every API route; None marks a public route."""
    table: dict[tuple[str, str], frozenset[str] | None] = {}
    for path, methods, dependant in api_routes(app):
        roles = _roles_of(dependant)
        for method in methods:
            table[(method, path)] = roles
    return table
