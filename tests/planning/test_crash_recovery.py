"""A worker process killed mid-solve (SIGKILL: no handler, no last write) loses its run to another
worker, which solves and publishes it, with the default heartbeat settings.

Only states are asserted: the run is re-claimed by the second worker after its first attempt was
ended as stale, never before the stale window; the overall deadline is generous so that a busy
machine is slow, not failing.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import timedelta

import pytest
from lab_builders import small_lab
from sqlalchemy import Engine, select

from models import ScheduleVersion, SolveRun, SolveRunAttempt
from scheduler.db import session_scope
from scheduler.planning.runs import queue_run
from scheduler.services.labs import get_lab
from scheduler.settings import Settings

DEADLINE_SECONDS = 240.0
DEFAULTS = Settings.model_fields


def _default(name: str) -> float:
    value = DEFAULTS[name].default
    assert isinstance(value, int | float)
    return float(value)


@pytest.fixture
def spawn(shared_engine: Engine) -> Iterator[Callable[[str], subprocess.Popen[bytes]]]:
    """Start ``labq worker --id NAME`` processes on the test's database with default settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("LABQ_")}
    env["LABQ_DATABASE_URL"] = shared_engine.url.render_as_string(hide_password=False)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [os.getcwd(), env.get("PYTHONPATH")]))
    children: list[subprocess.Popen[bytes]] = []

    def start(name: str) -> subprocess.Popen[bytes]:
        command = [sys.executable, "-c", "from api.cli import main; main()", "worker"]
        child = subprocess.Popen(
            [*command, "--id", name, "--no-webhooks", "--poll", "0.2"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        children.append(child)
        return child

    yield start
    for child in children:
        if child.poll() is None:
            child.kill()
        child.wait(timeout=30)


def _run(engine: Engine, run_id: int) -> SolveRun:
    with session_scope(engine, read_only=True) as session:
        run = session.get(SolveRun, run_id)
        assert run is not None
        session.expunge(run)
        return run


def _wait_for(engine: Engine, run_id: int, what: str, done: Callable[[SolveRun], bool]) -> SolveRun:
    deadline = time.monotonic() + DEADLINE_SECONDS
    while time.monotonic() < deadline:
        run = _run(engine, run_id)
        if done(run):
            return run
        time.sleep(0.1)
    raise AssertionError(f"solve run {run_id}: not {what} within {DEADLINE_SECONDS:.0f} s: {run}")


def test_a_killed_workers_run_is_reclaimed_and_published_by_another(shared_engine, lab_code, spawn):
    with session_scope(shared_engine) as session:
        # Long enough that the first worker is still solving when it is killed: 120 jobs on two
        # examiners and one UFED are never proven optimal before the time limit, however fast
        # the machine (8 cases were, on a quiet one, before the first heartbeat).
        lab = small_lab(session, lab_code, cases=40)
        run_id = queue_run(
            session, lab, actor="sup", auto_publish=True, time_limit_seconds=10
        ).run.id

    first = spawn("w-killed")
    held = _wait_for(
        shared_engine,
        run_id,
        "solving under w-killed with a heartbeat since its claim",
        lambda r: (
            r.status != "queued"
            and (r.heartbeat_at is not None and r.started_at is not None)
            and (r.heartbeat_at > r.started_at or r.status != "running")
        ),
    )
    assert (held.status, held.worker_id, held.attempts) == ("running", "w-killed", 1)
    spawn("w-survivor")  # idle: sweeps at every poll, so it finds the run once it is stale
    os.kill(first.pid, signal.SIGKILL)
    first.wait(timeout=30)
    last_beat = _run(shared_engine, run_id).heartbeat_at
    assert last_beat is not None

    done = _wait_for(
        shared_engine, run_id, "finished", lambda r: r.status != "running" and r.status != "queued"
    )
    assert (done.status, done.worker_id, done.attempts) == ("succeeded", "w-survivor", 2)
    with session_scope(shared_engine, read_only=True) as session:
        attempts = session.scalars(
            select(SolveRunAttempt)
            .where(SolveRunAttempt.solve_run_id == run_id)
            .order_by(SolveRunAttempt.attempt)
        ).all()
        assert [(a.worker_id, a.outcome) for a in attempts] == [
            ("w-killed", "stale"),
            ("w-survivor", "succeeded"),
        ]
        assert "w-killed stopped responding" in (attempts[0].reason or "")
        # Never re-queued while the dead worker's last beat was still fresh.
        stale_after = timedelta(seconds=_default("worker_stale_after_seconds"))
        assert attempts[1].started_at >= last_beat + stale_after
        version = session.scalars(
            select(ScheduleVersion).where(
                ScheduleVersion.lab_id == get_lab(session, lab_code).id,
                ScheduleVersion.solve_run_id == run_id,
            )
        ).one()
        assert version.is_current and version.published_at is not None
