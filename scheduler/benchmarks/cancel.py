"""How long a cancel takes to bite: ``labq serve`` (embedded worker) solving a medium lab.

Each round queues a long run (``time_limit_seconds`` 600), waits until its solve has been going
for ``settle`` seconds (past construction, inside CP-SAT's search), asks for the cancel, and
measures until the run reads ``cancelled``. Prints every figure, the median and the worst.

    python -m scheduler.benchmarks.cancel --port 8140 [--database-url URL] [--rounds 5]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from typing import Any

from models.base import utcnow
from scheduler.benchmarks.seed_db import next_monday_8am, seed_lab
from scheduler.db import make_engine, session_scope
from scheduler.generate import generate_lab
from scheduler.migrate import upgrade
from scheduler.services import keys

LAB = "cancel-bench"


def _call(port: int, method: str, path: str, key: str, body: Any = None) -> dict[str, Any]:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}{path}",
        data=data,
        method=method,
        headers={"X-API-Key": key, "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        answer: dict[str, Any] = json.loads(response.read())
        return answer


def _prepare(url: str, size: str) -> str:
    upgrade(url)
    engine = make_engine(url)
    try:
        with session_scope(engine) as session:
            epoch = next_monday_8am(utcnow())
            seed_lab(session, generate_lab(size, 1), code=LAB, epoch=epoch)
            return keys.create_key(
                session, actor="bench", role="supervisor", name="cancel-bench"
            ).token
    finally:
        engine.dispose()


def _serve(url: str, port: int) -> subprocess.Popen[bytes]:
    environment = {**os.environ, "LABQ_DATABASE_URL": url, "LABQ_EMBEDDED_WORKER": "true"}
    command = [sys.executable, "-c", "from api.cli import main; main()", "serve", "--no-migrate"]
    process = subprocess.Popen(
        [*command, "--port", str(port)],
        env=environment,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1).close()
            return process
        except OSError:
            time.sleep(0.2)
    os.killpg(process.pid, signal.SIGTERM)
    raise RuntimeError("labq serve did not answer /health within 60 s")


def _wait(port: int, key: str, run_id: int, done: Any, timeout: float = 600) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        run = _call(port, "GET", f"/labs/{LAB}/solve-runs/{run_id}", key)
        if done(run):
            return run
        time.sleep(0.02)
    raise RuntimeError(f"run {run_id} did not get there within {timeout} s")


def measure(port: int, key: str, rounds: int, settle: float) -> list[float]:
    figures = []
    for _ in range(rounds):
        run = _call(
            port,
            "POST",
            f"/labs/{LAB}/solve-runs",
            key,
            {"mode": "preview", "time_limit_seconds": 600},
        )
        _wait(port, key, run["id"], lambda r: r["status"] == "running")
        time.sleep(settle)
        asked = time.monotonic()
        _call(port, "POST", f"/labs/{LAB}/solve-runs/{run['id']}:cancel", key)
        final = _wait(port, key, run["id"], lambda r: r["status"] != "running")
        took = time.monotonic() - asked
        print(f"run {run['id']}: {final['status']} {took:.2f} s after the cancel", flush=True)
        figures.append(took)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8140)
    parser.add_argument("--database-url", default=None)
    parser.add_argument("--size", default="medium")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--settle", type=float, default=4.0)
    options = parser.parse_args()
    folder = tempfile.mkdtemp(prefix="labq-cancel-")
    url = options.database_url or f"sqlite:///{folder}/cancel.db"
    key = _prepare(url, options.size)
    server = _serve(url, options.port)
    try:
        figures = measure(options.port, key, options.rounds, options.settle)
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)
    print(
        f"cancel to cancelled over {len(figures)} runs: median {statistics.median(figures):.2f} s, "
        f"worst {max(figures):.2f} s"
    )


if __name__ == "__main__":
    main()
