"""Benchmark: import N cases (1 device, 3 jobs each) through the HTTP API. Not a test.

    python tests/api/bench_import.py --backend sqlite --cases 10000 --batch 1000
    python tests/api/bench_import.py --backend postgresql --transport http

Each run uses a new database (a temporary SQLite file, or a uniquely named PostgreSQL database that
is dropped afterwards), migrates it, creates a lab and an integration key, then times three passes
of the same cases: the first creates everything, the second finds everything unchanged, the third
changes one job in every tenth case. Wall and CPU seconds are reported with the load average:
on a shared machine the CPU time of this process is the steadier figure. ``--transport asgi``
calls the app in-process through the ASGI test client (request parsing, validation, database
work, response); ``http`` runs uvicorn on a local port and goes through TCP.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import create_engine, func, select, text
from sqlalchemy.engine import make_url

from api.app import create_app
from models import Case, Job
from scheduler.db import session_scope
from scheduler.migrate import upgrade
from scheduler.services import keys
from scheduler.settings import Settings

PG_ADMIN = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"


@contextmanager
def database(backend: str) -> Iterator[str]:
    if backend == "sqlite":
        with tempfile.TemporaryDirectory() as tmp:
            yield f"sqlite:///{Path(tmp) / 'bench.db'}"
        return
    name = f"labq_bench_{uuid.uuid4().hex[:10]}"
    admin = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(PG_ADMIN).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def case(i: int, minutes: int = 120) -> dict[str, Any]:
    return {
        "external_ref": f"CR-{i:06d}",
        "priority": ("P1", "P2", "P3", "P4", "P5")[i % 5],
        "received_at": "2026-10-01T09:00:00+00:00",
        "devices": [
            {
                "external_ref": "D1",
                "kind": "phone",
                "arrived_at": "2026-10-01T12:00:00+00:00",
                "size_gb": 128,
                "jobs": [
                    {
                        "external_ref": "acquire",
                        "stage": "acquire",
                        "attended_minutes": 60,
                        "machine_minutes": 120,
                        "skills": ["mobile"],
                        "capabilities": ["ufed"],
                    },
                    {
                        "external_ref": "process",
                        "stage": "process",
                        "attended_minutes": 15,
                        "machine_minutes": 720,
                        "capabilities": ["processing"],
                        "after": ["acquire"],
                    },
                    {
                        "external_ref": "review",
                        "stage": "review",
                        "attended_minutes": minutes,
                        "exposure_minutes": minutes - 20,
                        "severity": 2,
                        "skills": ["review"],
                        "after": ["D1/process"],
                    },
                ],
            }
        ],
    }


@contextmanager
def served(app: Any, transport: str) -> Iterator[httpx.Client]:
    if transport == "asgi":
        # A sync client over the ASGI app, as the test client does it.
        from fastapi.testclient import TestClient

        with TestClient(app) as client:
            yield client
        return
    import uvicorn

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=600) as client:
            yield client
    finally:
        server.should_exit = True
        thread.join()


def run(backend: str, cases: int, batch: int, transport: str) -> dict[str, Any]:
    with database(backend) as url:
        upgrade(url)
        settings = Settings(
            database_url=url, embedded_worker=False, max_request_bytes=max(5_000_000, batch * 800)
        )
        app = create_app(settings)
        with session_scope(app.state.engine) as session:
            admin = {
                "X-API-Key": keys.create_key(session, actor="bench", role="admin", name="b").token
            }
        result: dict[str, Any] = {
            "load_average": os.getloadavg(),
            "backend": backend,
            "transport": transport,
            "cases": cases,
            "batch": batch,
        }
        with served(app, transport) as client:
            lab = {"code": "bench", "name": "Bench", "timezone": "Europe/London"}
            assert client.post("/labs", json=lab, headers=admin).status_code == 201
            token = client.post(
                "/api-keys",
                json={"role": "integration", "name": "cms", "lab": "bench"},
                headers=admin,
            ).json()["token"]
            headers = {"X-API-Key": token, "content-type": "application/json"}
            passes = {
                "create": [case(i) for i in range(cases)],
                "unchanged": [case(i) for i in range(cases)],
                "change_10pct": [case(i, 150 if i % 10 == 0 else 120) for i in range(cases)],
            }
            for name, items in passes.items():
                bodies = [
                    json.dumps({"cases": items[s : s + batch]}).encode()
                    for s in range(0, len(items), batch)
                ]
                totals = {"created": 0, "updated": 0, "unchanged": 0}
                started, cpu = time.perf_counter(), time.process_time()
                for body in bodies:
                    response = client.post(
                        "/labs/bench/cases:import", content=body, headers=headers
                    )
                    assert response.status_code == 200, response.text[:500]
                    counted = response.json()
                    for key in totals:
                        totals[key] += counted[key]
                elapsed = time.perf_counter() - started
                result[name] = {
                    "seconds": round(elapsed, 2),
                    "cpu_seconds": round(time.process_time() - cpu, 2),
                    **totals,
                }
                result[f"{name}_bytes"] = sum(len(b) for b in bodies)
        with session_scope(app.state.engine) as session:
            result["stored_cases"] = session.scalar(select(func.count()).select_from(Case))
            result["stored_jobs"] = session.scalar(select(func.count()).select_from(Job))
        app.state.engine.dispose()
        return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--cases", type=int, default=10_000)
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--transport", choices=("asgi", "http"), default="asgi")
    args = parser.parse_args()
    result = run(args.backend, args.cases, args.batch, args.transport)
    result["load_average_after"] = os.getloadavg()
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
