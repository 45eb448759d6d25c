"""Fixtures for tests that need committed data seen by several connections (workers, HTTP)."""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import pytest
from sqlalchemy import Engine

from scheduler.db import make_engine
from scheduler.migrate import upgrade
from scheduler.settings import get_settings

_codes = itertools.count(1)


@pytest.fixture(scope="module")
def shared_engine(backend: str, fresh_databases) -> Iterator[Engine]:
    """A migrated database of its own for the module; tests commit into it."""
    url = fresh_databases.url(backend)
    upgrade(url)
    engine = make_engine(url)
    yield engine
    engine.dispose()


@pytest.fixture
def lab_code() -> str:
    """A lab code no other test of the module uses."""
    return f"lab{next(_codes)}"


@pytest.fixture
def fast_heartbeat(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("LABQ_WORKER_HEARTBEAT_SECONDS", "1")
    monkeypatch.setenv("LABQ_WORKER_STALE_AFTER_SECONDS", "30")
    monkeypatch.setenv("LABQ_MAX_RUN_ATTEMPTS", "2")
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()
