"""SQLite under overload: ``labq bench sqlite-overload``.

A SQLite file gets a lab with a published schedule (the demo lab, or a generated one, first
published by a quick dispatch run). ``labq serve`` runs on it as a child process with its
embedded worker, and then, at the same time:

- a full solve run of the lab is queued (``--time-limit``, 40 s by default, auto-published);
- N clients (40) loop without pauses over the schedule reads of a supervisor's screen and, every
  fifth request, a small write (a one-case import that changes the case's effort);
- one importer posts M (8) imports of K (10,000) new cases each, back to back.

It runs until the imports are done and the solve run has finished, then prints the responses per
status code for reads, small writes and imports, whether every 503 carried ``Retry-After``, the
connection errors by kind, the server log's tracebacks, the holds of the write lock of a second or
more that the server logged (the bulk imports', the solve's store), and the solve run's wall time
(claimed to finished) against its limit. Figures are printed, never asserted; the load average is
printed before and after, since the machine's other work shows in every figure.
"""

from __future__ import annotations

import asyncio
import json
import re
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from scheduler.benchmarks.api_reads import start_server, uptime
from scheduler.db import make_engine, session_scope
from scheduler.migrate import upgrade

Echo = Callable[[str], None]
WRITE_EVERY = 5  # every fifth request of a client is a small write
REQUEST_TIMEOUT = 300.0
LOCK_HELD = re.compile(r"the SQLite write lock was held ([0-9.]+) s")  # scheduler/db.py's log


@dataclass
class Tally:
    """Responses of one kind of request: per status, 503s without Retry-After, errors by kind."""

    statuses: Counter[int] = field(default_factory=Counter)
    busy_without_retry_after: int = 0
    errors: Counter[str] = field(default_factory=Counter)
    seconds: list[float] = field(default_factory=list)

    def count(self, response: httpx.Response, seconds: float) -> None:
        self.statuses[response.status_code] += 1
        self.seconds.append(seconds)
        if response.status_code == 503 and "retry-after" not in response.headers:
            self.busy_without_retry_after += 1

    @property
    def total(self) -> int:
        return sum(self.statuses.values()) + sum(self.errors.values())


@dataclass
class Outcome:
    reads: Tally
    writes: Tally
    imports: Tally
    run: dict[str, Any]
    run_wall_seconds: float | None
    queued_to_finished_seconds: float | None
    seconds: float
    tracebacks: int
    lock_holds: list[float]
    log: Path


def _case(ref: str, minutes: int = 120) -> dict[str, Any]:
    """A possession referral with one phone: acquire -> process -> review."""
    return {
        "external_ref": ref,
        "priority": "P4",
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


def prepare(url: str, lab: str, echo: Echo) -> tuple[str, str]:
    """Seed the lab and publish a first schedule (a dispatch run); returns (lab code, key)."""
    from scheduler.planning.runs import queue_run
    from scheduler.services import keys
    from scheduler.services.labs import get_lab
    from scheduler.worker import run_to_completion

    upgrade(url)
    engine = make_engine(url)
    try:
        with session_scope(engine) as session:
            if lab == "demo":
                from scheduler.demo import seed_demo

                code = seed_demo(session).lab
            else:
                from scheduler.benchmarks.seed_db import next_monday_8am, seed_lab
                from scheduler.generate import generate_lab

                code = f"bench-{lab}"
                epoch = next_monday_8am(datetime.now(UTC)) - timedelta(days=7)
                seed_lab(session, generate_lab(lab, 1), code=code, epoch=epoch)
        with session_scope(engine) as session:
            queued = queue_run(session, get_lab(session, code), actor="bench", auto_publish=True)
            run_id = queued.run.id
        status = run_to_completion(engine, run_id, "bench-setup", policy="fifo")
        if status != "succeeded":
            raise RuntimeError(f"the first (dispatch) run of {code} {status}")
        with session_scope(engine) as session:
            token = keys.create_key(
                session,
                actor="bench",
                role="supervisor",
                name="overload",
                lab=get_lab(session, code),
            ).token
    finally:
        engine.dispose()
    echo(f"lab {code} seeded and published by a dispatch run")
    return code, token


def _import_body(batch: int, cases: int) -> bytes:
    return json.dumps({"cases": [_case(f"BULK{batch}-{i:05d}") for i in range(cases)]}).encode()


async def _drive(
    port: int,
    lab: str,
    token: str,
    *,
    clients: int,
    imports: int,
    cases: int,
    time_limit: int,
    max_seconds: float,
    echo: Echo,
) -> tuple[Tally, Tally, Tally, dict[str, Any], float | None, float]:
    base = f"http://127.0.0.1:{port}"
    headers = {"X-API-Key": token}
    reads, writes, bulk = Tally(), Tally(), Tally()
    done = asyncio.Event()
    started = time.perf_counter()

    async def call(
        http: httpx.AsyncClient, tally: Tally, method: str, path: str, **kw: Any
    ) -> None:
        began = time.perf_counter()
        try:
            response = await http.request(method, path, **kw)
        except httpx.TransportError as exc:
            tally.errors[type(exc).__name__] += 1
            return
        tally.count(response, time.perf_counter() - began)

    async def client(n: int) -> None:
        limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
        async with httpx.AsyncClient(
            base_url=base, headers=headers, timeout=REQUEST_TIMEOUT, limits=limits
        ) as http:
            reads_of_screen = (
                f"/labs/{lab}/schedules/current",
                f"/labs/{lab}/schedules/current/assignments?limit=100",
                f"/labs/{lab}/cases?limit=20",
                f"/labs/{lab}/solve-runs?limit=5",
            )
            i = 0
            while not done.is_set():
                i += 1
                if i % WRITE_EVERY == 0:
                    body = {"cases": [_case(f"SMALL-{n}", minutes=60 + i % 120)]}
                    await call(http, writes, "POST", f"/labs/{lab}/cases:import", json=body)
                else:
                    path = reads_of_screen[i % len(reads_of_screen)]
                    await call(http, reads, "GET", path)

    async def importer() -> None:
        async with httpx.AsyncClient(base_url=base, headers=headers, timeout=600) as http:
            for batch in range(imports):
                body = await asyncio.to_thread(_import_body, batch, cases)
                began = time.perf_counter()
                await call(
                    http,
                    bulk,
                    "POST",
                    f"/labs/{lab}/cases:import",
                    content=body,
                    headers={"content-type": "application/json"},
                )
                last = bulk.statuses.most_common()
                echo(
                    f"  import {batch + 1}/{imports}: {time.perf_counter() - began:.1f} s "
                    f"(so far {dict(last)}, errors {dict(bulk.errors)})"
                )

    async with httpx.AsyncClient(base_url=base, headers=headers, timeout=REQUEST_TIMEOUT) as http:
        queued = await http.post(
            f"/labs/{lab}/solve-runs",
            json={"time_limit_seconds": time_limit, "auto_publish": True, "reason": "overload"},
        )
        if queued.status_code != 202:
            raise RuntimeError(f"queueing the solve run: {queued.status_code} {queued.text[:300]}")
        location = queued.headers["Location"]
        queued_at = time.perf_counter()
        tasks = [asyncio.create_task(client(n)) for n in range(clients)]
        loader = asyncio.create_task(importer())
        run: dict[str, Any] = {}
        finished_after: float | None = None
        while time.perf_counter() - started < max_seconds:
            await asyncio.sleep(1)
            try:
                polled = await http.get(location)
            except httpx.TransportError:
                continue
            if polled.status_code == 200:
                run = polled.json()
                if finished_after is None and run["status"] in ("succeeded", "failed", "cancelled"):
                    finished_after = time.perf_counter() - queued_at
                    echo(f"  solve run {run['id']} {run['status']} after {finished_after:.1f} s")
            if finished_after is not None and loader.done():
                break
        done.set()
        loader.cancel()
        await asyncio.gather(*tasks, loader, return_exceptions=True)
    return reads, writes, bulk, run, finished_after, time.perf_counter() - started


def run(
    *,
    lab: str,
    clients: int,
    imports: int,
    cases: int,
    time_limit: int,
    port: int | None,
    busy_timeout: float | None,
    echo: Echo,
) -> Outcome:
    """Seed, serve, overload, and count; the temporary database is removed afterwards."""
    with tempfile.TemporaryDirectory(prefix="labq-overload-") as tmp:
        url = f"sqlite:///{Path(tmp) / 'labq.db'}"
        code, token = prepare(url, lab, echo)
        environment = {
            "LABQ_EMBEDDED_WORKER": "true",
            "LABQ_LOG_LEVEL": "INFO",
            "LABQ_MAX_REQUEST_BYTES": str(max(5_000_000, cases * 1_000)),
        }
        if busy_timeout is not None:
            environment["LABQ_DB_BUSY_TIMEOUT_SECONDS"] = str(busy_timeout)
        log = Path(tempfile.gettempdir()) / f"labq-overload-{int(time.time())}.log"
        server = start_server(url, 1, port=port, environment=environment, log=log)
        echo(
            f"labq serve on port {server.port} (SQLite, embedded worker); {clients} clients, "
            f"{imports} imports of {cases:,} cases, a {time_limit} s solve; {uptime()}"
        )
        try:
            reads, writes, bulk, run_json, queued_to_finished, seconds = asyncio.run(
                _drive(
                    server.port,
                    code,
                    token,
                    clients=clients,
                    imports=imports,
                    cases=cases,
                    time_limit=time_limit,
                    max_seconds=max(600.0, 20.0 * time_limit),
                    echo=echo,
                )
            )
        finally:
            server.stop()
        text = log.read_text(errors="replace") if log.exists() else ""
    wall = None
    if run_json.get("started_at") and run_json.get("finished_at"):
        wall = (
            datetime.fromisoformat(run_json["finished_at"])
            - datetime.fromisoformat(run_json["started_at"])
        ).total_seconds()
    return Outcome(
        reads=reads,
        writes=writes,
        imports=bulk,
        run=run_json,
        run_wall_seconds=wall,
        queued_to_finished_seconds=queued_to_finished,
        seconds=seconds,
        tracebacks=text.count("Traceback (most recent call last)"),
        lock_holds=[float(held) for held in LOCK_HELD.findall(text)],
        log=log,
    )


def report(outcome: Outcome, time_limit: int, echo: Echo) -> None:
    echo(f"{'requests':<12} {'total':>7}  statuses / connection errors   p50 s   max s")
    every: Counter[int] = Counter()
    errors: Counter[str] = Counter()
    missing = 0
    for name, tally in (
        ("reads", outcome.reads),
        ("writes", outcome.writes),
        ("imports", outcome.imports),
    ):
        every.update(tally.statuses)
        errors.update(tally.errors)
        missing += tally.busy_without_retry_after
        ordered = sorted(tally.seconds)
        p50 = ordered[len(ordered) // 2] if ordered else 0.0
        top = ordered[-1] if ordered else 0.0
        shown = ", ".join(f"{s}: {n}" for s, n in sorted(tally.statuses.items()))
        shown += "".join(f", {kind}: {n}" for kind, n in sorted(tally.errors.items()))
        echo(f"{name:<12} {tally.total:>7}  {shown}   {p50:.2f}   {top:.1f}")
    echo(
        f"all: {sum(every.values())} responses, {every.get(500, 0)} x 500, {every.get(503, 0)} x "
        f"503 ({missing} without Retry-After), {sum(errors.values())} connection errors"
        + (f" ({dict(errors)})" if errors else "")
    )
    run = outcome.run
    wall = outcome.run_wall_seconds
    echo(
        f"solve run {run.get('id')}: {run.get('status')}, limit {time_limit} s, wall (claimed to "
        f"finished) {f'{wall:.1f} s = {wall / time_limit:.2f}x' if wall is not None else 'n/a'}, "
        f"queued to finished "
        + (
            f"{outcome.queued_to_finished_seconds:.1f} s"
            if outcome.queued_to_finished_seconds is not None
            else "not finished"
        )
        + (f", error: {run['error']}" if run.get("error") else "")
    )
    holds = sorted(outcome.lock_holds, reverse=True)
    echo(
        f"write lock held >= 1 s: {len(holds)} times"
        + (f", longest {', '.join(f'{h:.1f}' for h in holds[:10])} s" if holds else "")
    )
    echo(
        f"whole benchmark {outcome.seconds:.0f} s; server log {outcome.log} "
        f"({outcome.tracebacks} tracebacks)"
    )
