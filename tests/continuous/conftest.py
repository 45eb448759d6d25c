"""Fixtures for the continuous-planning tests: a committed database per module and backend."""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import pytest
from sqlalchemy import Engine

from scheduler.db import make_engine
from scheduler.migrate import upgrade

_codes = itertools.count(1)


@pytest.fixture(scope="module")
def db_url(backend: str, fresh_databases) -> str:
    url: str = fresh_databases.url(backend)
    upgrade(url)
    return url


@pytest.fixture(scope="module")
def shared_engine(db_url: str) -> Iterator[Engine]:
    """A migrated database of the module's own; tests commit into it (workers see their data)."""
    engine = make_engine(db_url)
    yield engine
    engine.dispose()


@pytest.fixture
def lab_code() -> str:
    return f"cont{next(_codes)}"
