"""Database fixtures: every database test runs on SQLite and, where one answers, on PostgreSQL.

Each backend's test database is built by migrating (never ``create_all``), once per test session;
each test runs inside a transaction that is rolled back. The PostgreSQL database gets a unique name
and is dropped afterwards, so no run depends on what an earlier run left.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from scheduler import continuous
from scheduler.db import make_engine
from scheduler.migrate import upgrade
from scheduler.planning import snapshot_cache

continuous.install()  # services announce; the planning layer acts (as in the app and the CLI)

DEFAULT_POSTGRES_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"


def postgres_admin_url() -> str | None:
    """The server to create test databases on: LABQ_TEST_POSTGRES_URL, else a local default."""
    url = os.environ.get("LABQ_TEST_POSTGRES_URL")
    candidates = [url] if url else [DEFAULT_POSTGRES_URL]
    for candidate in candidates:
        engine = create_engine(candidate, connect_args={"connect_timeout": 3})
        try:
            with engine.connect():
                return candidate
        except Exception:
            if url:  # an explicitly configured server must answer
                raise
        finally:
            engine.dispose()
    return None


class FreshDatabases:
    """Creates uniquely named, migrated databases and removes them at the end."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self._pg_admin: str | None | bool = False
        self._created: list[str] = []

    def pg_admin(self) -> str | None:
        if self._pg_admin is False:
            self._pg_admin = postgres_admin_url()
        return self._pg_admin  # type: ignore[return-value]

    def url(self, backend: str) -> str:
        """A new empty database on ``backend`` ("sqlite" or "postgresql")."""
        name = f"labq_test_{uuid.uuid4().hex[:12]}"
        if backend == "sqlite":
            return f"sqlite:///{self.tmp / name}.db"
        admin = self.pg_admin()
        if admin is None:
            pytest.skip("no PostgreSQL server answers (set LABQ_TEST_POSTGRES_URL to run these)")
        engine = create_engine(admin, isolation_level="AUTOCOMMIT")
        with engine.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        engine.dispose()
        self._created.append(name)
        return make_url(admin).set(database=name).render_as_string(hide_password=False)

    def drop_all(self) -> None:
        admin = self.pg_admin() if self._created else None
        if admin is None:
            return
        engine = create_engine(admin, isolation_level="AUTOCOMMIT")
        with engine.connect() as conn:
            for name in self._created:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        engine.dispose()


@pytest.fixture(scope="session")
def fresh_databases(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FreshDatabases]:
    databases = FreshDatabases(tmp_path_factory.mktemp("db"))
    yield databases
    databases.drop_all()


@pytest.fixture(scope="session", params=["sqlite", "postgresql"])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(scope="session")
def migrated_url(backend: str, fresh_databases: FreshDatabases) -> str:
    """One migrated database per backend for the whole test session."""
    url = fresh_databases.url(backend)
    upgrade(url)
    return url


@pytest.fixture(scope="session")
def engine(migrated_url: str) -> Iterator[Engine]:
    engine = make_engine(migrated_url)
    yield engine
    engine.dispose()


@pytest.fixture
def session(engine: Engine) -> Iterator[Session]:
    """A session whose work is rolled back after the test (services only flush)."""
    with engine.connect() as connection:
        transaction = connection.begin()
        db = Session(bind=connection, join_transaction_mode="create_savepoint")
        try:
            yield db
        finally:
            db.close()
            transaction.rollback()


@pytest.fixture(autouse=True)
def _no_snapshot_kept_between_tests() -> Iterator[None]:
    """A test's rolled-back data can reuse the ids of the one before (SQLite), so the snapshot
    kept for advisory reads (`scheduler/planning/snapshot_cache.py`) never crosses tests."""
    snapshot_cache.forget()
    yield
    snapshot_cache.forget()
