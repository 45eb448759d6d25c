"""Capacity and what-if on the demo lab: ``labq bench whatif``.

Where the benchmarks live and what they measure: docs/architecture.md §10.

A fresh embedded database gets the demo lab, solved and published as ``labq demo`` does. Through
the real app over in-process HTTP with a supervisor key: ``GET /labs/{lab}/capacity`` is read
repeatedly (server latency p50 and max), then each scenario is created as a what-if, its preview
run executed by a worker in this process (claim, load, change, solve, verify, compare), and the
time from the request to the comparison printed beside the comparison itself. Figures are
printed, never asserted.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

from scheduler.db import make_engine, session_scope

SCENARIOS: dict[str, dict[str, Any]] = {
    "licences": {"licences": [{"pool": "axiom", "capacity": 4}]},
    "licences+server": {
        "licences": [{"pool": "axiom", "capacity": 4}],
        "add_workstations": [{"count": 1, "capabilities": ["processing"]}],
    },
    "weekend": {"weekend": {"examiners": ["E04", "E10"], "start": "08:00", "minutes": 60}},
    "reviewer": {"add_examiners": [{"count": 1, "skills": ["review", "report"], "like": "E02"}]},
}


@dataclass
class WhatIfResult:
    capacity_p50_ms: float
    capacity_max_ms: float
    sentence: str
    runs: list[tuple[str, float, dict[str, Any] | None, str | None]] = field(default_factory=list)


def run_whatif(time_limit: int, scenarios: list[str], reads: int = 20) -> WhatIfResult:
    from api.app import create_app
    from scheduler.benchmarks.api_reads import _publish_demo
    from scheduler.migrate import upgrade
    from scheduler.services import keys
    from scheduler.services.labs import get_lab
    from scheduler.settings import Settings
    from scheduler.worker import run_to_completion

    with tempfile.TemporaryDirectory(prefix="labq-whatif-") as directory:
        url = f"sqlite:///{Path(directory) / 'bench.db'}"
        upgrade(url)
        engine = make_engine(url)
        code = _publish_demo(engine, time_limit)
        with session_scope(engine) as session:
            lab = get_lab(session, code)
            token = keys.create_key(
                session, actor="bench", role="supervisor", name="bench", lab=lab
            ).token
        headers = {"X-API-Key": token}
        app = create_app(Settings(database_url=url, embedded_worker=False), engine=engine)
        with TestClient(app) as client:
            seconds = []
            sentence = ""
            for _ in range(reads):
                started = time.perf_counter()
                got = client.get(f"/labs/{code}/capacity", headers=headers)
                seconds.append(time.perf_counter() - started)
                sentence = got.json().get("sentence", got.text)
            result = WhatIfResult(
                capacity_p50_ms=statistics.median(seconds) * 1000,
                capacity_max_ms=max(seconds) * 1000,
                sentence=sentence,
            )
            for name in scenarios:
                started = time.perf_counter()
                created = client.post(
                    f"/labs/{code}/what-ifs",
                    json={**SCENARIOS[name], "time_limit_seconds": time_limit},
                    headers=headers,
                )
                if created.status_code != 202:
                    result.runs.append((name, 0.0, None, created.text))
                    continue
                body = created.json()
                run_to_completion(engine, body["solve_run"], "bench-whatif")
                done = client.get(f"/labs/{code}/what-ifs/{body['id']}", headers=headers).json()
                result.runs.append(
                    (name, time.perf_counter() - started, done.get("comparison"), done.get("error"))
                )
        engine.dispose()
    return result
