"""The deployment: the Dockerfile and compose.yaml say what they must, and compose's start-up
sequence works — its own commands, as real subprocesses, against one fresh PostgreSQL database:
migrate, then the API (health answers), then two workers, one of which solves a run queued over
HTTP. (No image is built here: the tests need no Docker daemon or registry.)"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from lab_builders import small_lab

from scheduler.db import make_engine, session_scope

REPO = Path(__file__).resolve().parents[2]
DEADLINE_SECONDS = 300  # generous: the machine may be loaded; never a measured figure
FINISHED = ("succeeded", "failed", "cancelled")


def _compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((REPO / "compose.yaml").read_text(encoding="utf-8"))
    return loaded


def test_compose_has_postgres_a_migration_the_api_and_two_workers_with_health_checks():
    services = _compose()["services"]
    assert set(services) == {"db", "migrate", "api", "worker"}
    assert services["db"]["image"] == "postgres:15"
    assert "labq-db" in _compose()["volumes"]
    assert any(v.startswith("labq-db:") for v in services["db"]["volumes"])
    assert services["migrate"]["command"] == ["alembic", "upgrade", "head"]
    assert services["migrate"]["restart"] == "no"
    migrated = {"condition": "service_completed_successfully"}
    for name in ("api", "worker"):
        assert services[name]["depends_on"]["migrate"] == migrated, name
        assert services[name]["depends_on"]["db"] == {"condition": "service_healthy"}, name
        assert services[name]["environment"]["LABQ_EMBEDDED_WORKER"] == "false", name
        assert "postgresql+psycopg://" in services[name]["environment"]["LABQ_DATABASE_URL"]
    assert services["worker"]["deploy"]["replicas"] == 2
    assert services["api"]["command"][:2] == ["labq", "serve"]
    assert "--no-migrate" in services["api"]["command"]  # the migration service did it
    assert services["worker"]["command"][:2] == ["labq", "worker"]
    for name in ("db", "api", "worker"):
        assert services[name]["healthcheck"]["test"], name
    assert "/health" in " ".join(services["api"]["healthcheck"]["test"])


def test_dockerfile_runs_labq_serve_as_a_user_with_a_health_check():
    lines = [
        line.strip()
        for line in (REPO / "Dockerfile").read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]
    assert lines[0] == "FROM python:3.11-slim"
    users = [line.split()[1] for line in lines if line.startswith("USER ")]
    assert users and users[-1] not in ("root", "0")
    assert any(line.startswith("RUN pip install .") for line in lines)
    text = "\n".join(lines)
    assert "HEALTHCHECK" in text and "/health" in text.split("HEALTHCHECK", 1)[1]
    assert lines[-1].startswith('CMD ["labq", "serve"')
    ignored = (REPO / ".dockerignore").read_text(encoding="utf-8").split()
    assert ".git" in ignored and "*.db" in ignored


# ---- the start-up sequence, as compose runs it ----------------------------------------------


def _argv(command: list[str]) -> list[str]:
    """A compose command as this interpreter runs it (the image has both on its PATH)."""
    programs = {
        "alembic": [sys.executable, "-m", "alembic"],
        "labq": [sys.executable, "-c", "from api.cli import main; main()"],
    }
    return [*programs[command[0]], *command[1:]]


def _env(service: dict[str, Any], url: str) -> dict[str, str]:
    path = os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))
    return {**os.environ, **service["environment"], "LABQ_DATABASE_URL": url, "PYTHONPATH": path}


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def started(tmp_path: Path) -> Iterator[list[subprocess.Popen[bytes]]]:
    processes: list[subprocess.Popen[bytes]] = []
    yield processes
    for child in processes:
        if child.poll() is None:
            os.killpg(child.pid, signal.SIGTERM)  # each was started in a group of its own
    for child in processes:
        try:
            child.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(child.pid, signal.SIGKILL)
            child.wait()


def _start(
    started: list[subprocess.Popen[bytes]], argv: list[str], env: dict[str, str], log: Path
) -> subprocess.Popen[bytes]:
    child = subprocess.Popen(
        argv,
        cwd=REPO,
        env=env,
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    started.append(child)
    return child


def _wait_for(what: str, check: Any, deadline: float, logs: Path) -> Any:
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.3)
    tails = {p.name: p.read_text(errors="replace")[-2000:] for p in logs.glob("*.log")}
    pytest.fail(f"{what} within {DEADLINE_SECONDS} s; logs: {tails}")


def test_migrate_then_serve_then_two_workers_solve_a_run_queued_over_http(
    fresh_databases, tmp_path, started
):
    services = _compose()["services"]
    url = fresh_databases.url("postgresql")
    deadline = time.monotonic() + DEADLINE_SECONDS

    migrate = subprocess.run(
        _argv(services["migrate"]["command"]),
        cwd=REPO,  # the image's WORKDIR holds alembic.ini and migrations/, as the checkout does
        env=_env(services["migrate"], url),
        capture_output=True,
        text=True,
        timeout=DEADLINE_SECONDS,
    )
    assert migrate.returncode == 0, migrate.stdout + migrate.stderr

    port = _free_port()
    api = [
        {"0.0.0.0": "127.0.0.1", "8000": str(port)}.get(arg, arg)
        for arg in services["api"]["command"]
    ]
    _start(started, _argv(api), _env(services["api"], url), tmp_path / "api.log")
    base = f"http://127.0.0.1:{port}"

    def healthy() -> dict[str, Any] | None:
        try:
            answer = httpx.get(f"{base}/health", timeout=5)
        except httpx.TransportError:
            return None
        return answer.json() if answer.status_code == 200 else None

    assert _wait_for("the API did not answer /health", healthy, deadline, tmp_path) == {
        "status": "ok",
        "database": "ok",
    }

    workers = [
        _start(
            started,
            _argv(services["worker"]["command"]),
            _env(services["worker"], url),
            tmp_path / f"worker{n}.log",
        )
        for n in range(services["worker"]["deploy"]["replicas"])
    ]

    engine = make_engine(url)
    with session_scope(engine) as session:
        small_lab(session, "deployed", cases=2)
    engine.dispose()
    key = subprocess.run(
        _argv(["labq", "keys", "create", "--role", "admin"]),
        cwd=REPO,
        env=_env(services["api"], url),
        capture_output=True,
        text=True,
        timeout=DEADLINE_SECONDS,
    )
    assert key.returncode == 0, key.stderr
    headers = {"X-API-Key": key.stdout.strip()}
    queued = httpx.post(
        f"{base}/labs/deployed/solve-runs",
        json={"mode": "full", "auto_publish": True, "time_limit_seconds": 2},
        headers=headers,
        timeout=30,
    )
    assert queued.status_code == 202, queued.text
    run_id = queued.json()["id"]

    def finished() -> dict[str, Any] | None:
        run = httpx.get(
            f"{base}/labs/deployed/solve-runs/{run_id}", headers=headers, timeout=30
        ).json()
        return run if run["status"] in FINISHED else None

    run = _wait_for("no worker finished the run", finished, deadline, tmp_path)
    assert run["status"] == "succeeded", run
    assert run["schedule_version"] is not None
    # Solved by one of the two workers (their ids name their pid), not by the API.
    assert run["worker_id"].split(":")[1] in {str(worker.pid) for worker in workers}, run
    assert all(worker.poll() is None for worker in workers)
