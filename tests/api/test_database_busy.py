"""A busy database degrades politely: reads go on, writes are refused with 503 and Retry-After.

The write lock is held by a raw sqlite3 connection (``BEGIN IMMEDIATE``), as a bulk import or the
worker's store holds it; the app waits ``db_busy_timeout_seconds`` (short here) and refuses. No
timing is asserted: the lock is held or released by the test itself.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest
from api_support import case_payload
from fastapi import FastAPI
from sqlalchemy import create_engine, text
from sqlalchemy.exc import DBAPIError

from api.app import create_app
from api.deps import role_table
from api.problems import PROBLEM_JSON
from scheduler import db
from scheduler.db import is_lock_timeout, make_engine, retry_locked, session_scope, writer_queue
from scheduler.migrate import upgrade
from scheduler.services import keys
from scheduler.settings import Settings
from scheduler.worker import run_once

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

LAB = "busy"
SHIFTS = [{"weekday": d, "starts": "08:00", "ends": "16:30"} for d in range(5)]


@pytest.fixture(scope="module")
def db_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("busy") / "labq.db"
    upgrade(f"sqlite:///{path}")
    return path


@pytest.fixture(scope="module")
def app(db_path: Path) -> Iterator[FastAPI]:
    settings = Settings(
        database_url=f"sqlite:///{db_path}",
        environment="test",
        embedded_worker=False,
        db_busy_timeout_seconds=0.2,
    )
    application = create_app(settings)
    yield application
    application.state.engine.dispose()


@pytest.fixture(scope="module")
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app, raise_server_exceptions=False) as test_client:
        yield test_client


def _token(app: FastAPI, role: str) -> dict[str, str]:
    with session_scope(app.state.engine) as session:
        return {"X-API-Key": keys.create_key(session, actor="test", role=role, name="t").token}


@pytest.fixture(scope="module")
def admin(app: FastAPI, client: TestClient) -> dict[str, str]:
    """An admin key, and a lab with a published schedule to read."""
    headers = _token(app, "admin")
    r = client.post("/labs", json={"code": LAB, "name": "Busy", "timezone": "UTC"}, headers=headers)
    assert r.status_code == 201, r.text
    for ref in ("E1", "E2"):
        r = client.put(
            f"/labs/{LAB}/examiners/{ref}",
            json={"skills": ["mobile", "review"], "shifts": SHIFTS},
            headers=headers,
        )
        assert r.status_code == 201, r.text
    r = client.put(f"/labs/{LAB}/workstations/U1", json={"capabilities": ["ufed"]}, headers=headers)
    assert r.status_code == 201, r.text
    r = client.put(f"/labs/{LAB}/licence-pools/axiom", json={"capacity": 2}, headers=headers)
    assert r.status_code in (200, 201), r.text
    cases = [case_payload(f"C{n}") for n in range(1, 4)]
    r = client.post(f"/labs/{LAB}/cases:import", json={"cases": cases}, headers=headers)
    assert r.status_code == 200, r.text
    r = client.post(
        f"/labs/{LAB}/solve-runs",
        json={"time_limit_seconds": 2, "auto_publish": True},
        headers=headers,
    )
    assert r.status_code == 202, r.text
    assert run_once(app.state.engine, "w-busy", policy="fifo")
    assert client.get(f"/labs/{LAB}/schedules/current", headers=headers).status_code == 200
    r = client.post(
        f"/labs/{LAB}/webhooks",
        json={"url": "http://127.0.0.1:9/hook", "event_types": ["run.failed"]},
        headers=headers,
    )
    assert r.status_code == 201, r.text
    r = client.post(
        f"/labs/{LAB}/what-ifs",
        json={"licences": [{"pool": "axiom", "capacity": 3}]},
        headers=headers,
    )
    assert r.status_code == 202, r.text
    return headers


@pytest.fixture
def write_lock(db_path: Path) -> Iterator[sqlite3.Connection]:
    """Another connection holding the database's write lock until the test ends."""
    holder = sqlite3.connect(db_path, isolation_level=None, timeout=0)
    holder.execute("BEGIN IMMEDIATE")
    yield holder
    holder.execute("ROLLBACK")
    holder.close()


def _assert_busy(response) -> None:
    assert response.status_code == 503, response.text
    assert response.headers["content-type"].startswith(PROBLEM_JSON)
    assert int(response.headers["Retry-After"]) >= 1
    body = response.json()
    assert body["status"] == 503 and body["type"].endswith("/busy")
    assert "busy" in body["detail"]


def _read_paths(app: FastAPI, job_id: int, webhook_id: int, what_if_id: int) -> list[str]:
    """Every authenticated GET route, its path parameters naming the lab's own records."""
    names = {
        "webhook_id": str(webhook_id),
        "lab": LAB,
        "version": "current",
        "device": "D1",
        "job_id": str(job_id),
        "job": "acquire",
        "run_id": "1",
        "name": "axiom",
        "what_if_id": str(what_if_id),
    }
    refs = {"cases": "C1", "examiners": "E1", "workstations": "U1"}
    paths = []
    for (method, path), roles in role_table(app).items():
        if method != "GET" or roles is None:
            continue
        filled = path
        for name, value in names.items():
            filled = filled.replace(f"{{{name}}}", value)
        for kind, ref in refs.items():
            filled = filled.replace(f"/{kind}/{{ref}}", f"/{kind}/{ref}")
        assert "{" not in filled, f"no value for a parameter of {path}"
        paths.append(filled)
    return sorted(paths)


@pytest.fixture
def fresh(app: FastAPI, admin: dict[str, str]) -> dict[str, str]:
    """A key not yet cached: verified by a read, and touched (a write) after the response."""
    return _token(app, "admin")


def test_reads_go_on_while_another_connection_holds_the_write_lock(app, client, fresh, write_lock):
    job_id = client.get(f"/labs/{LAB}/jobs", headers=fresh).json()["items"][0]["id"]
    webhook_id = client.get(f"/labs/{LAB}/webhooks", headers=fresh).json()["items"][0]["id"]
    what_if_id = client.get(f"/labs/{LAB}/what-ifs", headers=fresh).json()[0]["id"]
    paths = _read_paths(app, job_id, webhook_id, what_if_id)
    assert len(paths) > 40
    statuses = {path: client.get(path, headers=fresh).status_code for path in paths}
    assert {p: s for p, s in statuses.items() if s != 200} == {}
    assert f"/labs/{LAB}/schedules/current/assignments" in statuses


def test_a_write_behind_a_held_lock_is_refused_with_503_and_retry_after(
    app, client, admin, write_lock
):
    _assert_busy(client.patch(f"/labs/{LAB}", json={"name": "Renamed"}, headers=admin))
    _assert_busy(
        client.post(
            f"/labs/{LAB}/cases:import", json={"cases": [case_payload("C9")]}, headers=admin
        )
    )
    # Nothing was half-written.
    assert client.get(f"/labs/{LAB}/cases/C9", headers=admin).status_code == 404
    assert client.get(f"/labs/{LAB}", headers=admin).json()["name"] == "Busy"


def test_an_import_that_changes_nothing_answers_while_the_write_lock_is_held(
    app, client, fresh, write_lock
):
    """The import works its payload out in a read-only snapshot, and the key is verified by a
    read: a payload the lab already holds needs no write lock at all."""
    cases = [case_payload(f"C{n}") for n in range(1, 4)]
    again = client.post(f"/labs/{LAB}/cases:import", json={"cases": cases}, headers=fresh)
    assert again.status_code == 200, again.text
    assert again.json() == {"created": 0, "updated": 0, "unchanged": 3, "run": None}
    cases[0]["note"] = "changed"
    _assert_busy(client.post(f"/labs/{LAB}/cases:import", json={"cases": cases}, headers=fresh))
    assert client.get(f"/labs/{LAB}/cases/C1", headers=fresh).json()["note"] is None


def test_a_retried_background_write_waits_in_line_past_the_busy_timeout(db_path):
    """In this process's line of writers a write retried by ``retry_locked`` (the worker's store)
    keeps its place while a long writer holds the lock, instead of timing out and retrying."""
    url = f"sqlite:///{db_path}"
    engine = make_engine(url, settings=Settings(database_url=url, db_busy_timeout_seconds=0.05))
    line = writer_queue(url)
    holding = threading.Event()
    attempts: list[int] = []

    def long_writer() -> None:
        with engine.begin() as conn:
            conn.execute(text("UPDATE lab SET name = 'Held' WHERE code = :c"), {"c": LAB})
            holding.set()
            while line.waiting == 0:  # until the background write has joined the line
                time.sleep(0.01)
            time.sleep(0.5)  # ten busy timeouts

    def write() -> int:
        attempts.append(1)
        with engine.begin() as conn:
            return conn.execute(
                text("UPDATE lab SET name = 'Busy' WHERE code = :c"), {"c": LAB}
            ).rowcount

    holder = threading.Thread(target=long_writer)
    holder.start()
    try:
        assert holding.wait(10)
        assert retry_locked(write, what="test", budget_seconds=60) == 1
    finally:
        holder.join()
        engine.dispose()
    assert len(attempts) == 1


def test_a_long_hold_of_the_write_lock_is_logged(db_path, caplog, monkeypatch):
    url = f"sqlite:///{db_path}"
    engine = make_engine(url, settings=Settings(database_url=url, db_busy_timeout_seconds=0.05))
    monkeypatch.setattr(db, "LONG_HOLD_SECONDS", 0.0)
    try:
        with caplog.at_level(logging.INFO, logger="scheduler.db"):
            with engine.begin() as conn:
                conn.execute(text("UPDATE lab SET name = 'Busy' WHERE code = :c"), {"c": LAB})
                time.sleep(0.1)  # past the busy timeout: waiters would have been refused
    finally:
        engine.dispose()
    held = [r for r in caplog.records if "write lock was held" in r.getMessage()]
    assert len(held) == 1 and held[0].levelno == logging.WARNING


def test_the_refused_write_succeeds_when_retried_after_the_lock_is_released(
    app, client, admin, db_path
):
    holder = sqlite3.connect(db_path, isolation_level=None, timeout=0)
    holder.execute("BEGIN IMMEDIATE")
    try:
        refused = client.patch(f"/labs/{LAB}", json={"name": "Renamed"}, headers=admin)
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    _assert_busy(refused)
    retried = client.patch(f"/labs/{LAB}", json={"name": "Renamed"}, headers=admin)
    assert retried.status_code == 200, retried.text
    assert retried.json()["name"] == "Renamed"


def test_a_500_closes_its_connection(app, client, admin):
    def broken() -> None:
        raise RuntimeError("a bug")

    def broken_sql() -> None:
        with app.state.engine.connect() as conn:
            conn.execute(text("SELECT * FROM no_such_table"))

    app.add_api_route("/test-broken", broken)
    app.add_api_route("/test-broken-sql", broken_sql)
    for path in ("/test-broken", "/test-broken-sql"):
        response = client.get(path)
        assert response.status_code == 500, path
        assert response.headers["content-type"].startswith(PROBLEM_JSON)
        assert response.headers["connection"] == "close"
        assert "Retry-After" not in response.headers


def test_a_worker_write_is_retried_until_the_lock_is_released(db_path):
    engine = make_engine(
        f"sqlite:///{db_path}",
        settings=Settings(database_url=f"sqlite:///{db_path}", db_busy_timeout_seconds=0.05),
    )
    holder = sqlite3.connect(db_path, isolation_level=None, timeout=0)
    holder.execute("BEGIN IMMEDIATE")
    attempts: list[int] = []

    def write() -> int:
        attempts.append(1)
        with engine.begin() as conn:
            return conn.execute(
                text("UPDATE lab SET name = 'Retried' WHERE code = :c"), {"c": LAB}
            ).rowcount

    def release_then_wait(seconds: float) -> None:  # the import commits while we back off
        if holder.in_transaction:
            holder.execute("COMMIT")

    try:
        assert retry_locked(write, what="test", budget_seconds=60, sleep=release_then_wait) == 1
    finally:
        holder.close()
        engine.dispose()
    assert len(attempts) == 2  # refused once while held, done once released


def test_retrying_gives_up_with_the_lock_error_when_the_budget_runs_out(db_path):
    engine = make_engine(
        f"sqlite:///{db_path}",
        settings=Settings(database_url=f"sqlite:///{db_path}", db_busy_timeout_seconds=0.05),
    )
    holder = sqlite3.connect(db_path, isolation_level=None, timeout=0)
    holder.execute("BEGIN IMMEDIATE")

    def write() -> None:
        with engine.begin() as conn:
            conn.execute(text("UPDATE lab SET name = 'x'"))

    try:
        with pytest.raises(DBAPIError) as caught:
            retry_locked(write, what="test", budget_seconds=0, sleep=lambda s: None)
    finally:
        holder.execute("ROLLBACK")
        holder.close()
        engine.dispose()
    assert is_lock_timeout(caught.value)


def test_postgres_lock_and_statement_timeouts_count_as_busy(fresh_databases):
    url = fresh_databases.url("postgresql")
    engine = create_engine(url)
    try:
        with engine.begin() as conn:
            conn.execute(text("CREATE TABLE t (id int PRIMARY KEY)"))
            conn.execute(text("INSERT INTO t VALUES (1)"))
        with engine.connect() as holder, engine.connect() as waiter:
            holder.execute(text("SELECT * FROM t WHERE id = 1 FOR UPDATE"))
            waiter.execute(text("SET lock_timeout = '10ms'"))
            with pytest.raises(DBAPIError) as lock:
                waiter.execute(text("UPDATE t SET id = 2 WHERE id = 1"))
            waiter.rollback()
            waiter.execute(text("SET statement_timeout = '10ms'"))
            with pytest.raises(DBAPIError) as statement:
                waiter.execute(text("SELECT pg_sleep(5)"))
            waiter.rollback()
            holder.rollback()
            with pytest.raises(DBAPIError) as duplicate:
                waiter.execute(text("INSERT INTO t VALUES (1)"))
    finally:
        engine.dispose()
    assert is_lock_timeout(lock.value)
    assert is_lock_timeout(statement.value)
    assert not is_lock_timeout(duplicate.value)  # a real error stays one


def test_the_sqlite_pool_and_busy_timeout_come_from_the_settings(tmp_path):
    settings = Settings(
        database_url="sqlite:///x.db",
        db_pool_size=7,
        db_max_overflow=3,
        db_busy_timeout_seconds=1.5,
    )
    engine = make_engine(f"sqlite:///{tmp_path / 'pool.db'}", settings=settings)
    try:
        assert engine.pool.size() == 7  # type: ignore[attr-defined]
        assert engine.pool.timeout() == settings.db_pool_timeout_seconds  # type: ignore[attr-defined]
        with engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 1500
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
    finally:
        engine.dispose()


def test_recording_a_keys_last_use_is_skipped_while_the_database_is_locked(app, admin, db_path):
    with session_scope(app.state.engine) as session:
        key = keys.create_key(session, actor="test", role="auditor", name="touched").key
    holder = sqlite3.connect(db_path, isolation_level=None, timeout=0)
    holder.execute("BEGIN IMMEDIATE")
    try:
        assert keys.touch(app.state.engine, key.id) is False  # skipped, not raised
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert keys.touch(app.state.engine, key.id) is True
