"""Engines and sessions. SQLite runs with foreign keys enforced, like PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.orm import Session, sessionmaker

from scheduler.settings import get_settings


def make_engine(url: str, **kwargs: Any) -> Engine:
    """Create an engine for ``url``; on SQLite, enforce foreign keys and wait on locks."""
    if url.startswith("sqlite"):
        kwargs.setdefault("connect_args", {"timeout": 30})
        engine = create_engine(url, **kwargs)

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
            # Let SQLAlchemy emit BEGIN itself so transactions (and BEGIN IMMEDIATE) behave.
            dbapi_connection.isolation_level = None
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.close()

        @event.listens_for(engine, "begin")
        def _sqlite_begin(conn: Any) -> None:
            # IMMEDIATE: take the write lock up front (waiting on busy_timeout). A deferred
            # transaction that reads and then writes fails at once with "database is locked"
            # when another connection committed in between (the worker's heartbeat, a second
            # API request), since WAL cannot upgrade a stale read snapshot.
            conn.exec_driver_sql("BEGIN IMMEDIATE")

        return engine
    settings = get_settings()
    kwargs.setdefault("pool_pre_ping", True)
    kwargs.setdefault("pool_size", settings.db_pool_size)
    kwargs.setdefault("max_overflow", settings.db_max_overflow)
    kwargs.setdefault("pool_timeout", settings.db_pool_timeout_seconds)
    return create_engine(url, **kwargs)


@lru_cache
def get_engine() -> Engine:
    return make_engine(get_settings().database_url)


def session_factory(engine: Engine | None = None) -> sessionmaker[Session]:
    return sessionmaker(bind=engine or get_engine(), expire_on_commit=False)


@contextmanager
def session_scope(engine: Engine | None = None) -> Iterator[Session]:
    """A unit of work: commit on success, roll back on any error."""
    session = session_factory(engine)()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()
