"""The nightly run on a worker fleet: ``labq reoptimize --all-labs --via-workers`` queues one run
per lab and waits while four ``labq worker`` processes on two "hosts" (working directories and
process groups of their own, real subprocesses) solve them from one PostgreSQL database."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from lab_builders import make_lab, small_lab
from sqlalchemy import Engine, select, update

from models import Lab, SolveRun
from scheduler.db import make_engine, session_scope
from scheduler.migrate import upgrade

REPO = Path(__file__).resolve().parents[2]
LABQ = [sys.executable, "-c", "from api.cli import main; main()"]
DEADLINE_SECONDS = 600  # generous: the machine may be loaded; never a measured figure
HOSTS = {"host-a": ("a1", "a2"), "host-b": ("b1", "b2")}


def _env(url: str) -> dict[str, str]:
    path = os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))
    return {**os.environ, "LABQ_DATABASE_URL": url, "PYTHONPATH": path}


@pytest.fixture(scope="module")
def fleet_url(fresh_databases) -> str:
    url = fresh_databases.url("postgresql")
    upgrade(url)
    return url


@pytest.fixture(scope="module")
def fleet(fleet_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[str]]:
    """Four workers, two per host; each host is its own directory and process group."""
    processes: list[subprocess.Popen[bytes]] = []
    for host, names in HOSTS.items():
        home = tmp_path_factory.mktemp(host)
        leader: int | None = None
        for name in names:
            log = (home / f"{name}.log").open("wb")
            child = subprocess.Popen(
                [*LABQ, "worker", "--id", f"{host}:{name}", "--no-webhooks", "--poll", "0.2"],
                cwd=home,
                env=_env(fleet_url),
                stdout=log,
                stderr=subprocess.STDOUT,
                process_group=leader or 0,  # the host's first worker leads its group
            )
            leader = leader or child.pid
            processes.append(child)
    yield [f"{host}:{name}" for host, names in HOSTS.items() for name in names]
    for child in processes:
        child.send_signal(signal.SIGTERM)
    for child in processes:
        try:
            child.wait(timeout=60)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()


def _reoptimize(url: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*LABQ, "reoptimize", "--all-labs", "--via-workers", "--publish", *args],
        env=_env(url),
        capture_output=True,
        text=True,
        timeout=DEADLINE_SECONDS,
    )


def _runs(engine: Engine) -> dict[str, list[SolveRun]]:
    found: dict[str, list[SolveRun]] = {}
    with session_scope(engine) as session:
        for code, run in session.execute(
            select(Lab.code, SolveRun)
            .join(SolveRun, SolveRun.lab_id == Lab.id)
            .order_by(SolveRun.id)
        ):
            session.expunge(run)
            found.setdefault(code, []).append(run)
    return found


def test_the_fleet_solves_every_lab_and_an_empty_one_is_skipped(fleet_url, fleet):
    engine = make_engine(fleet_url)
    labs = [f"fleet{n}" for n in range(1, 6)]
    with session_scope(engine) as session:
        for code in labs:
            small_lab(session, code, cases=3)
        make_lab(session, "idle")  # nothing to plan, nothing published
    result = _reoptimize(fleet_url, "--time-limit", "2", "--format", "json")
    assert result.returncode == 0, result.stdout + result.stderr
    summary = {row["lab"]: row for row in json.loads(result.stdout)}
    assert set(summary) == {*labs, "idle"}
    assert summary["idle"]["status"] == "skipped" and summary["idle"]["published"] == "unchanged"
    runs = _runs(engine)
    assert "idle" not in runs  # skipped: no run was queued
    for code in labs:
        (run,) = runs[code]
        assert run.status == "succeeded", (code, run.error)
        assert run.worker_id in fleet  # solved by the fleet, not by the waiting command
        assert summary[code]["status"] == "succeeded"
        assert summary[code]["published"].startswith("version ")
    engine.dispose()


def test_a_lab_failing_on_the_fleet_is_named_and_the_others_still_publish(fleet_url, fleet):
    engine = make_engine(fleet_url)
    with session_scope(engine) as session:
        small_lab(session, "broken", cases=2)
        small_lab(session, "sound", cases=2)
        session.execute(update(Lab).where(Lab.code == "broken").values(timezone="Nowhere/Atlantis"))
    result = _reoptimize(fleet_url, "--time-limit", "2")
    assert result.returncode == 1, result.stdout + result.stderr
    assert "failed for lab(s): broken" in " ".join(result.stderr.split())
    rows = {line.split()[0]: line for line in result.stdout.splitlines() if line.strip()}
    assert " failed " in rows["broken"] and "kept previous" in rows["broken"]
    assert " succeeded " in rows["sound"] and "version " in rows["sound"]
    runs = _runs(engine)
    assert runs["broken"][-1].status == "failed" and runs["broken"][-1].worker_id in fleet
    assert runs["sound"][-1].status == "succeeded" and runs["sound"][-1].worker_id in fleet
    engine.dispose()


def test_via_workers_refuses_the_options_that_only_solving_here_uses(fleet_url):
    result = subprocess.run(
        [*LABQ, "reoptimize", "--all-labs", "--via-workers", "--policy", "fifo"],
        env=_env(fleet_url),
        capture_output=True,
        text=True,
        timeout=DEADLINE_SECONDS,
    )
    assert result.returncode == 2
    assert "--policy and --jobs" in " ".join(result.stderr.split())
