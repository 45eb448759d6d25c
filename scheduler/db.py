"""Engines and sessions. SQLite runs with foreign keys enforced, like PostgreSQL.

Reads and writes are told apart here, in one place: a session made with ``read_only=True`` (the
API's GET and HEAD requests, the worker's loads and polls) reads one snapshot (``reading``): on
SQLite a plain deferred transaction, which under WAL reads beside a writer that holds the write
lock, on PostgreSQL REPEATABLE READ. Every other session begins (on SQLite) ``BEGIN IMMEDIATE``
and so waits (``db_busy_timeout_seconds``) for that lock up front. A wait that runs out is a
*lock timeout* (``is_lock_timeout``): the API answers it with 503 and ``Retry-After``, the worker
retries its own short transactions (``retry_locked``).

SQLite's own wait is a poll that the latest arrival often wins, so a bulk import could starve
behind a stream of small writes. Writers of one database file in this process therefore queue
first (``WriterQueue``) and take the lock in arrival order; other processes still meet them at
SQLite's busy timeout. A background writer retried by ``retry_locked`` (the worker storing a
solve) waits in line for the rest of its budget instead: timing out at the busy timeout would send
its retry to the back of the line, behind the next bulk import. A hold of the lock of a second or
more is logged (INFO; WARNING once it outlasts the busy timeout, when waiters were refused).
"""

from __future__ import annotations

import logging
import os
import random
import sqlite3
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from functools import lru_cache
from typing import Any, TypeVar

from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, OperationalError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from scheduler.settings import Settings, get_settings

logger = logging.getLogger(__name__)
T = TypeVar("T")

READ_ONLY = "labq_read_only"
"""Execution option of a read-only engine: on SQLite its transactions begin deferred."""

# SQLite's busy/locked results; PostgreSQL's lock_not_available (lock_timeout), query_canceled
# (statement_timeout), serialization_failure and deadlock_detected: all "try again shortly".
_SQLITE_LOCKED = ("database is locked", "database table is locked", "database is busy")
_POSTGRES_TRANSIENT = frozenset({"55P03", "57014", "40001", "40P01"})
LONG_HOLD_SECONDS = 1.0
"""A hold of SQLite's write lock at least this long is logged (INFO)."""

_patient_until: ContextVar[float | None] = ContextVar("labq_patient_until", default=None)
"""While ``retry_locked`` runs its work: the monotonic deadline its writes may wait in line to."""


class WriterQueue:
    """This process's writers of one SQLite file, let in one at a time in arrival order."""

    def __init__(self) -> None:
        self._changed = threading.Condition()
        self._waiting: deque[object] = deque()
        self._holder: object | None = None
        self._admitted_at = 0.0

    def enter(self, writer: object, timeout: float) -> bool:
        """Wait (at most ``timeout`` seconds) until every earlier writer has left."""
        with self._changed:
            self._waiting.append(writer)
            admitted = self._changed.wait_for(
                lambda: self._holder is None and self._waiting[0] is writer, timeout
            )
            self._waiting.remove(writer)
            if admitted:
                self._holder = writer
                self._admitted_at = time.monotonic()
            else:
                self._changed.notify_all()  # the next in line may be first now
            return admitted

    def leave(self, writer: object) -> float | None:
        """Let the next writer in; how long ``writer`` held its turn (None: it held none)."""
        with self._changed:
            if self._holder is not writer:
                return None
            self._holder = None
            self._changed.notify_all()
            return time.monotonic() - self._admitted_at

    @property
    def waiting(self) -> int:
        return len(self._waiting)


_writer_queues: dict[str, WriterQueue] = {}
_writer_queues_lock = threading.Lock()


def writer_queue(url: str) -> WriterQueue:
    """The queue of the SQLite file ``url`` names (one per file and process)."""
    path = os.path.realpath(make_url(url).database or "")
    with _writer_queues_lock:
        return _writer_queues.setdefault(path, WriterQueue())


def make_engine(url: str, *, settings: Settings | None = None, **kwargs: Any) -> Engine:
    """Create an engine for ``url`` with the pool (and on SQLite the lock wait) of ``settings``.

    On SQLite: foreign keys enforced, WAL (readers never wait for the writer), and the busy
    timeout from ``db_busy_timeout_seconds``, kept shorter than a client's patience so a writer
    queued behind a long transaction is refused (503) instead of hanging.
    """
    settings = settings or get_settings()
    sqlite = url.startswith("sqlite")
    if not sqlite:
        kwargs.setdefault("pool_pre_ping", True)
    if not sqlite or not _in_memory(url):
        kwargs.setdefault("pool_size", settings.db_pool_size)
        kwargs.setdefault("max_overflow", settings.db_max_overflow)
        kwargs.setdefault("pool_timeout", settings.db_pool_timeout_seconds)
    if not sqlite:
        return create_engine(url, **kwargs)
    busy = settings.db_busy_timeout_seconds
    kwargs.setdefault("connect_args", {"timeout": busy})
    engine = create_engine(url, **kwargs)
    queue = writer_queue(url)

    def release(dbapi_connection: Any) -> None:
        held = queue.leave(dbapi_connection)
        if held is not None and held >= LONG_HOLD_SECONDS:
            level = logging.WARNING if held > busy else logging.INFO
            logger.log(
                level,
                "the SQLite write lock was held %.2f s (busy timeout %g s, %d writers waiting)",
                held,
                busy,
                queue.waiting,
            )

    @event.listens_for(engine, "connect")
    def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy emit BEGIN itself so transactions (and BEGIN IMMEDIATE) behave.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={int(busy * 1000)}")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _sqlite_begin(conn: Any) -> None:
        if conn.get_execution_options().get(READ_ONLY):
            # A read: no lock until its first SELECT, and under WAL none that a writer holds.
            conn.exec_driver_sql("BEGIN")
            return
        # IMMEDIATE: take the write lock up front (waiting on busy_timeout). A deferred
        # transaction that reads and then writes fails at once with "database is locked"
        # when another connection committed in between (the worker's heartbeat, a second
        # API request), since WAL cannot upgrade a stale read snapshot.
        writer = conn.connection.dbapi_connection
        deadline = _patient_until.get()
        wait = busy if deadline is None else max(busy, deadline - time.monotonic())
        if not queue.enter(writer, wait):
            raise OperationalError(
                "BEGIN IMMEDIATE", {}, sqlite3.OperationalError("database is locked")
            )
        try:
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        except BaseException:
            release(writer)
            raise

    @event.listens_for(engine, "commit")
    @event.listens_for(engine, "rollback")
    def _sqlite_end(conn: Any) -> None:
        if not conn.closed and not conn.invalidated:  # else the pool events below release it
            release(conn.connection.dbapi_connection)

    @event.listens_for(engine, "checkin")
    @event.listens_for(engine, "invalidate")
    def _sqlite_returned(dbapi_connection: Any, *_: Any) -> None:
        release(dbapi_connection)  # however its transaction ended

    return engine


def _in_memory(url: str) -> bool:
    database = make_url(url).database
    return not database or database == ":memory:" or "mode=memory" in url


def reading(engine: Engine) -> Engine:
    """``engine`` for read-only work (same pool); each of its transactions reads one snapshot.

    SQLite: a deferred transaction (under WAL its snapshot is taken at its first read, and no
    writer blocks it). PostgreSQL: REPEATABLE READ, so a read of several queries (a solve's
    snapshot, an import's comparison with what is stored) never straddles another commit; a
    transaction that only reads never fails for it.
    """
    options: dict[str, Any] = {READ_ONLY: True}
    if engine.dialect.name == "postgresql":
        options["isolation_level"] = "REPEATABLE READ"
    return engine.execution_options(**options)


def is_lock_timeout(exc: BaseException) -> bool:
    """Whether ``exc`` is a wait for a lock that ran out (or a conflict worth retrying)."""
    if not isinstance(exc, DBAPIError):
        return False
    orig = exc.orig
    sqlstate = getattr(orig, "sqlstate", None) or getattr(orig, "pgcode", None)
    if sqlstate in _POSTGRES_TRANSIENT:
        return True
    if isinstance(orig, sqlite3.OperationalError):
        message = str(orig).lower()
        return any(text in message for text in _SQLITE_LOCKED)
    return False


def retry_locked(
    work: Callable[[], T],
    *,
    what: str,
    budget_seconds: float,
    sleep: Callable[[float], None] = time.sleep,
) -> T:
    """Run ``work`` (a whole unit of work) again after a lock timeout, backing off, within budget.

    For background work that must not fail because a long transaction (a bulk import) holds the
    lock; requests are not retried (the client gets 503 with ``Retry-After``). On SQLite the
    work's writes wait in this process's line of writers until the deadline, keeping their place.
    """
    deadline = time.monotonic() + budget_seconds
    delay = 0.05
    while True:
        token = _patient_until.set(deadline)
        try:
            return work()
        except DBAPIError as exc:
            if not is_lock_timeout(exc) or time.monotonic() + delay > deadline:
                raise
            logger.info("%s: the database is locked; retrying in %.2f s", what, delay)
        finally:
            _patient_until.reset(token)
        sleep(delay * random.uniform(0.5, 1.0))
        delay = min(2 * delay, 2.0)


def answers(engine: Engine) -> bool:
    """Whether the database answers a trivial query (the health check)."""
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except SQLAlchemyError:
        return False
    return True


@lru_cache
def get_engine() -> Engine:
    return make_engine(get_settings().database_url)


def session_factory(
    engine: Engine | None = None, *, read_only: bool = False
) -> sessionmaker[Session]:
    bound = engine or get_engine()
    return sessionmaker(bind=reading(bound) if read_only else bound, expire_on_commit=False)


@contextmanager
def session_scope(engine: Engine | None = None, *, read_only: bool = False) -> Iterator[Session]:
    """A unit of work: commit on success, roll back on any error.

    ``read_only``: the work only reads (on SQLite it then never waits for the write lock).
    """
    session = session_factory(engine, read_only=read_only)()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()
