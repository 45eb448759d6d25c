"""The run queue over HTTP: one waiting run per lab and mode, the lab's time-limit cap, each
attempt in the run's representation, every call that queues a run answering with it, one rule for
who may escalate, and a server that ends abandoned runs without any worker."""

from __future__ import annotations

import threading
import time
import warnings
from datetime import timedelta

import pytest
from api_support import case_payload
from sqlalchemy import update

from api.app import create_app
from api.deps import ESCALATE, role_table
from models import SolveRun
from models.base import utcnow
from scheduler.db import session_scope
from scheduler.settings import Settings
from scheduler.worker import claim_next, requeue_stale, run_once

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

LAB = "queue"
SHIFTS = [{"weekday": d, "starts": "08:00", "ends": "16:30"} for d in range(5)]


@pytest.fixture(scope="module")
def sup(client, keymaker, admin) -> dict[str, str]:
    r = client.post(
        "/labs", json={"code": LAB, "name": "Queue", "timezone": "Europe/London"}, headers=admin
    )
    assert r.status_code == 201, r.text
    headers = keymaker.headers("supervisor", LAB)
    r = client.put(
        f"/labs/{LAB}/examiners/E1",
        json={"skills": ["mobile", "review"], "shifts": SHIFTS},
        headers=headers,
    )
    assert r.status_code == 201, r.text
    r = client.put(f"/labs/{LAB}/workstations/U1", json={"capabilities": ["ufed"]}, headers=headers)
    assert r.status_code == 201
    cases = [case_payload("Q1", "P4"), case_payload("Q2", "P5"), case_payload("Q3", "P5")]
    r = client.post(f"/labs/{LAB}/cases:import", json={"cases": cases}, headers=headers)
    assert r.status_code == 200, r.text
    assert r.json()["run"] is None  # nothing published yet: no repair to queue
    return headers


def _drain(client, app, sup) -> None:
    """Cancel whatever waits, so each test starts with an empty queue."""
    for run in client.get(f"/labs/{LAB}/solve-runs", headers=sup).json()["items"]:
        if run["status"] == "queued":
            client.post(f"/labs/{LAB}/solve-runs/{run['id']}:cancel", headers=sup)


def test_a_second_request_while_one_waits_joins_it(client, app, sup):
    _drain(client, app, sup)
    first = client.post(
        f"/labs/{LAB}/solve-runs", json={"mode": "preview", "time_limit_seconds": 5}, headers=sup
    )
    again = client.post(
        f"/labs/{LAB}/solve-runs", json={"mode": "preview", "time_limit_seconds": 9}, headers=sup
    )
    assert first.status_code == again.status_code == 202
    assert first.json()["joined"] is False and again.json()["joined"] is True
    assert again.json()["id"] == first.json()["id"]
    assert again.headers["Location"] == first.headers["Location"]
    assert again.json()["time_limit_seconds"] == 9  # joining never shortens the waiting run
    full = client.post(f"/labs/{LAB}/solve-runs", json={"mode": "full"}, headers=sup)
    assert full.status_code == 202 and full.json()["id"] != first.json()["id"]
    queued = [
        r
        for r in client.get(f"/labs/{LAB}/solve-runs", headers=sup).json()["items"]
        if r["status"] == "queued"
    ]
    assert sorted(r["mode"] for r in queued) == ["full", "preview"]


def test_a_time_limit_above_the_labs_cap_is_refused_naming_it(client, admin, sup):
    r = client.patch(f"/labs/{LAB}", json={"max_time_limit_seconds": 120}, headers=admin)
    assert r.status_code == 200 and r.json()["max_time_limit_seconds"] == 120
    r = client.post(f"/labs/{LAB}/solve-runs", json={"time_limit_seconds": 121}, headers=sup)
    assert r.status_code == 422, r.text
    assert "cap of 120" in r.json()["detail"] and "max_time_limit_seconds" in r.json()["detail"]
    problem = r.json()  # the field named either way the problem shape allows
    named = [problem.get("field")] + [e.get("field") for e in problem.get("errors", [])]
    assert any(f and f.endswith("time_limit_seconds") for f in named)
    r = client.patch(f"/labs/{LAB}", json={"solve_time_limit_seconds": 121}, headers=admin)
    assert r.status_code == 422 and "max_time_limit_seconds" in r.json()["detail"]
    r = client.patch(f"/labs/{LAB}", json={"max_time_limit_seconds": 3600}, headers=admin)
    assert r.status_code == 200


def test_a_runs_attempts_are_in_its_representation_for_every_role_that_reads_it(
    client, app, keymaker, sup
):
    _drain(client, app, sup)
    r = client.post(f"/labs/{LAB}/solve-runs", json={"mode": "preview"}, headers=sup)
    run_id = r.json()["id"]
    assert r.json()["history"] == []
    engine = app.state.engine
    assert claim_next(engine, "w-dead", run_id=run_id) is not None
    later = utcnow() + timedelta(hours=1)
    assert run_id in requeue_stale(engine, now=later)
    auditor = keymaker.headers("auditor", LAB)
    for headers in (sup, auditor):
        run = client.get(f"/labs/{LAB}/solve-runs/{run_id}", headers=headers).json()
        assert run["status"] == "queued" and run["attempts"] == 1
        (attempt,) = run["history"]
        assert attempt["attempt"] == 1 and attempt["worker_id"] == "w-dead"
        assert attempt["outcome"] == "stale" and "stopped responding" in attempt["reason"]
        assert attempt["ended_at"] is not None
    listed = client.get(f"/labs/{LAB}/solve-runs", headers=auditor).json()["items"]
    assert next(r for r in listed if r["id"] == run_id)["history"][0]["outcome"] == "stale"
    integration = keymaker.headers("integration", LAB)
    assert client.get(f"/labs/{LAB}/solve-runs/{run_id}", headers=integration).status_code == 403
    client.post(f"/labs/{LAB}/solve-runs/{run_id}:cancel", headers=sup)


def _publish(client, app, sup) -> None:
    _drain(client, app, sup)
    r = client.post(
        f"/labs/{LAB}/solve-runs",
        json={"auto_publish": True, "time_limit_seconds": 1},
        headers=sup,
    )
    assert r.status_code == 202
    while run_once(app.state.engine, "w-publish", policy="fifo"):
        pass
    assert client.get(f"/labs/{LAB}/schedules/current", headers=sup).status_code == 200


def test_every_call_that_queues_a_run_answers_with_it(client, app, keymaker, sup):
    _publish(client, app, sup)
    integration = keymaker.headers("integration", LAB)
    # Integration escalates through :escalate as through an import: one rule for both.
    r = client.post(f"/labs/{LAB}/cases/Q1:escalate", json={"priority": "P3"}, headers=integration)
    assert r.status_code == 200, r.text
    run = r.json()["run"]
    assert run["status"] == "queued" and r.headers["Location"] == run["href"]
    assert r.headers["ETag"] == client.get(f"/labs/{LAB}/cases/Q1", headers=sup).headers["ETag"]
    repair = client.get(run["href"], headers=sup).json()
    assert repair["mode"] == "repair"

    # An import that raises a level joins the same waiting repair run.
    r = client.post(
        f"/labs/{LAB}/cases:import", json={"cases": [case_payload("Q2", "P3")]}, headers=integration
    )
    assert r.status_code == 200 and r.json()["run"]["id"] == run["id"]
    assert r.headers["Location"] == run["href"]

    # A PUT with a more urgent priority, too.
    body = {"priority": "P2", "received_at": "2026-11-02T09:00:00+00:00"}
    r = client.put(f"/labs/{LAB}/cases/Q3", json=body, headers=integration)
    assert r.status_code == 200 and r.json()["run"]["id"] == run["id"]

    # A change that queues nothing says so.
    r = client.patch(f"/labs/{LAB}/cases/Q3", json={"note": "seen"}, headers=integration)
    assert r.status_code == 200 and "Location" not in r.headers


def test_every_route_that_can_raise_a_level_has_the_one_escalation_rule(app):
    table = role_table(app)
    raising = [
        ("POST", "/labs/{lab}/cases/{ref}:escalate"),
        ("POST", "/labs/{lab}/cases:import"),
        ("PUT", "/labs/{lab}/cases/{ref}"),
        ("POST", "/labs/{lab}/cases/{ref}/links"),
        ("POST", "/labs/{lab}/cases/{ref}/flags"),
    ]
    for route in raising:
        assert table[route] == frozenset(ESCALATE), route
    assert "integration" in ESCALATE and "auditor" not in ESCALATE


def test_a_server_without_a_worker_ends_abandoned_runs(api_url, client, app, sup):
    """Through the app's lifespan: the embedded worker is off, the stale-run sweep is not."""
    _drain(client, app, sup)
    r = client.post(f"/labs/{LAB}/solve-runs", json={"mode": "preview"}, headers=sup)
    run_id = r.json()["id"]
    engine = app.state.engine
    assert claim_next(engine, "w-crashed", run_id=run_id) is not None
    with session_scope(engine) as session:
        session.execute(
            update(SolveRun)
            .where(SolveRun.id == run_id)
            .values(heartbeat_at=utcnow() - timedelta(hours=1))
        )
    settings = Settings(
        database_url=api_url, environment="test", embedded_worker=False, stale_sweep_seconds=0.05
    )
    server = create_app(settings)
    requeued = threading.Event()
    with TestClient(server):
        deadline = time.monotonic() + 600  # a bound for a broken sweeper, not a speed limit
        while time.monotonic() < deadline:
            with session_scope(engine) as session:
                if session.get(SolveRun, run_id).status == "queued":
                    requeued.set()
                    break
            requeued.wait(0.05)
    server.state.engine.dispose()
    assert requeued.is_set()
    run = client.get(f"/labs/{LAB}/solve-runs/{run_id}", headers=sup).json()
    assert run["history"][0]["worker_id"] == "w-crashed"
    assert run["history"][0]["outcome"] == "stale"
