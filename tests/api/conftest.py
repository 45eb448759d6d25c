"""API fixtures: one app per test module, bound to a fresh migrated database on each backend.

Requests go through the real ASGI app (``TestClient``) to a real database; keys are made with the
keys service, as ``labq keys create`` makes them.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi import FastAPI

from api.app import create_app
from scheduler.db import session_scope
from scheduler.migrate import upgrade
from scheduler.services import keys
from scheduler.services.labs import get_lab
from scheduler.services.resources import get_examiner
from scheduler.settings import Settings

with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # Starlette's notice about httpx vs httpx2
    from fastapi.testclient import TestClient


@pytest.fixture(scope="module")
def api_url(backend: str, fresh_databases: Any) -> str:
    url: str = fresh_databases.url(backend)
    upgrade(url)
    return url


@pytest.fixture(scope="module")
def app(api_url: str) -> Iterator[FastAPI]:
    settings = Settings(database_url=api_url, environment="test", embedded_worker=False)
    application = create_app(settings)
    yield application
    application.state.engine.dispose()


@pytest.fixture(scope="module")
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app) as test_client:
        yield test_client


class KeyMaker:
    """Issues real API keys straight into the app's database."""

    def __init__(self, app: FastAPI) -> None:
        self.engine = app.state.engine

    def token(
        self, role: str, lab: str | None = None, examiner: str | None = None, name: str = "test"
    ) -> str:
        with session_scope(self.engine) as session:
            lab_row = get_lab(session, lab) if lab else None
            examiner_row = (
                get_examiner(session, lab_row, examiner) if examiner and lab_row else None
            )
            return keys.create_key(
                session, actor="test", role=role, name=name, lab=lab_row, examiner=examiner_row
            ).token

    def headers(
        self, role: str, lab: str | None = None, examiner: str | None = None
    ) -> dict[str, str]:
        return {"X-API-Key": self.token(role, lab, examiner)}


@pytest.fixture(scope="module")
def keymaker(app: FastAPI) -> KeyMaker:
    return KeyMaker(app)


@pytest.fixture(scope="module")
def admin(keymaker: KeyMaker) -> dict[str, str]:
    """An admin key scoped to all labs."""
    return keymaker.headers("admin")
