"""Webhooks through an outage: ``labq bench webhooks`` (every event delivered after the receiver
returns, in order, none twice beyond the retry policy).

A new PostgreSQL database (dropped afterwards) gets a generated small lab; ``labq serve`` (embedded
worker off) and N ``labq worker`` processes (each with its delivery thread, so N loops compete for
the outbox) run as child processes. A subscription to every event type points at a loopback
receiver that is down for ``down`` seconds while events are produced: every ``every`` seconds a
backlog case is escalated to P1 and a solve run is published through the API (each publication a
``schedule.published`` and an event per case whose forecast moved or that newly breaches; the
escalation's own repair runs may publish too), and one run made to fail (a predecessor cycle
written behind the services' back, removed afterwards). Then the receiver comes back and the
benchmark waits until the outbox is empty. Printed: events produced, delivered, duplicates, out
of order, failed, attempts, and each delivery's delay after the receiver returned (p50, max).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import delete, func, select

from models import Job, JobPredecessor, WebhookDelivery, WebhookEvent
from scheduler.benchmarks.api_reads import Server, create_database, drop_database, uptime
from scheduler.benchmarks.receiver import Receiver
from scheduler.db import make_engine, session_scope
from scheduler.migrate import upgrade

Echo = Callable[[str], None]
LAB = "hooks"
EVENT_TYPES = ["schedule.published", "case.forecast_changed", "case.sla_breached", "run.failed"]


@dataclass
class Figures:
    produced: int = 0
    delivered: int = 0
    duplicates: int = 0
    out_of_order: int = 0
    failed: int = 0
    pending: int = 0
    attempts: int = 0
    requests: int = 0
    runs_published: int = 0
    runs_failed: int = 0
    by_type: dict[str, int] = field(default_factory=dict)
    delays: list[float] = field(default_factory=list)
    drain_seconds: float = 0.0


def _spawn(url: str, args: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-c", "from api.cli import main; main()", *args],
        env={**os.environ, "LABQ_DATABASE_URL": url, **env},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )


def _wait_health(port: int, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"labq serve exited with {process.returncode}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError("labq serve did not answer /health within 60 s")


def _seed(url: str) -> str:
    """The generated small lab, and a supervisor key for it; returns the key."""
    from scheduler.benchmarks.seed_db import next_monday_8am, seed_lab
    from scheduler.generate import generate_lab
    from scheduler.services import keys
    from scheduler.services.labs import get_lab

    engine = make_engine(url)
    try:
        epoch = next_monday_8am(datetime.now(UTC)) - timedelta(days=7)
        with session_scope(engine) as session:
            seed_lab(session, generate_lab("small", 1), code=LAB, epoch=epoch)
        with session_scope(engine) as session:
            lab = get_lab(session, LAB)
            return keys.create_key(
                session, actor="bench", role="supervisor", name="bench", lab=lab
            ).token
    finally:
        engine.dispose()


class Producer:
    """Queues published runs through the API and makes one run fail."""

    def __init__(self, api: httpx.Client, url: str, time_limit: int) -> None:
        self.api = api
        self.url = url
        self.time_limit = time_limit
        self.backlog: list[str] | None = None

    def escalate_one(self) -> str | None:
        """Raise one backlog case to P1 (its forecast, and others', move at the next publish)."""
        if self.backlog is None:
            cases = self.api.get(f"/labs/{LAB}/cases", params={"limit": 500}).json()["items"]
            self.backlog = [c["external_ref"] for c in cases if c["priority"] in ("P4", "P5")]
        while self.backlog:
            ref = self.backlog.pop()
            answer = self.api.post(
                f"/labs/{LAB}/cases/{ref}:escalate", json={"priority": "P1", "reason": "bench"}
            )
            if answer.status_code == 200:
                return ref
        return None

    def run(self) -> str:
        queued = self.api.post(
            f"/labs/{LAB}/solve-runs",
            json={"auto_publish": True, "time_limit_seconds": self.time_limit},
        )
        queued.raise_for_status()
        location = queued.headers["Location"]
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            status = str(self.api.get(location).json()["status"])
            if status in ("succeeded", "failed", "cancelled"):
                return status
            time.sleep(0.5)
        return "timeout"

    def failing_run(self) -> str:
        """A run over a predecessor cycle fails to load; the cycle is removed afterwards."""
        engine = make_engine(self.url)
        try:
            with session_scope(engine) as session:
                first, second = session.execute(
                    select(JobPredecessor.job_id, JobPredecessor.predecessor_id)
                    .join(Job, Job.id == JobPredecessor.job_id)
                    .limit(1)
                ).one()
                session.add(JobPredecessor(job_id=second, predecessor_id=first))
            status = self.run()
            with session_scope(engine) as session:
                session.execute(
                    delete(JobPredecessor).where(
                        JobPredecessor.job_id == second, JobPredecessor.predecessor_id == first
                    )
                )
            return status
        finally:
            engine.dispose()


def measure(
    url: str,
    *,
    port: int,
    receiver_port: int,
    workers: int,
    down: float,
    every: float,
    time_limit: int,
    drain_timeout: float,
    env: dict[str, str],
    echo: Echo,
) -> Figures:
    upgrade(url)
    token = _seed(url)
    receiver = Receiver()
    receiver.port = receiver_port
    server = Server(_spawn(url, ["serve", "--no-migrate", "--port", str(port)], env), port)
    procs = [
        _spawn(url, ["worker", "--id", f"bench-{n}", "--poll", "0.5"], env) for n in range(workers)
    ]
    figures = Figures()
    try:
        _wait_health(port, server.process)
        api = httpx.Client(
            base_url=f"http://127.0.0.1:{port}", headers={"X-API-Key": token}, timeout=30
        )
        created = api.post(
            f"/labs/{LAB}/webhooks", json={"url": receiver.url, "event_types": EVENT_TYPES}
        )
        created.raise_for_status()
        receiver.secret = created.json()["secret"]
        producer = Producer(api, url, time_limit)
        echo(f"receiver {receiver.url} down for {down:g} s; producing events ({uptime()})")
        started = time.monotonic()
        failed_once = False
        while time.monotonic() - started < down:
            tick = time.monotonic()
            if not failed_once and time.monotonic() - started > down / 2:
                status = producer.failing_run()
                failed_once = True
                figures.runs_failed += status == "failed"
            else:
                producer.escalate_one()
                status = producer.run()
                figures.runs_published += status == "succeeded"
            echo(f"  {time.monotonic() - started:5.0f} s  run {status}")
            time.sleep(max(0.0, every - (time.monotonic() - tick)))
        while time.monotonic() - started < down:
            time.sleep(0.2)
        receiver.start()
        returned = time.time()
        echo(f"receiver up after {time.monotonic() - started:.0f} s; draining ({uptime()})")
        engine = make_engine(url)
        try:
            deadline = time.monotonic() + drain_timeout
            while time.monotonic() < deadline:
                with session_scope(engine) as session:
                    pending = session.scalar(
                        select(func.count())
                        .select_from(WebhookDelivery)
                        .where(WebhookDelivery.status == "pending")
                    )
                if not pending:
                    break
                time.sleep(0.5)
            figures.drain_seconds = time.time() - returned
            _count(engine, receiver, returned, figures)
        finally:
            engine.dispose()
    finally:
        for proc in procs:
            Server(proc, 0).stop()
        server.stop()
        receiver.stop()
    return figures


def _count(engine: Any, receiver: Receiver, returned: float, figures: Figures) -> None:
    with session_scope(engine) as session:
        rows = session.execute(
            select(
                WebhookEvent.uid,
                WebhookEvent.id,
                WebhookEvent.type,
                WebhookEvent.occurred_at,
                WebhookDelivery.status,
                WebhookDelivery.attempts,
            ).join(WebhookDelivery, WebhookDelivery.event_id == WebhookEvent.id)
        ).all()
    order = {uid: event_id for uid, event_id, *_ in rows}
    occurred = {uid: at.timestamp() for uid, _, _, at, _, _ in rows}
    figures.produced = len(rows)
    figures.failed = sum(1 for r in rows if r.status == "failed")
    figures.pending = sum(1 for r in rows if r.status == "pending")
    figures.attempts = sum(r.attempts for r in rows)
    for r in rows:
        figures.by_type[r.type] = figures.by_type.get(r.type, 0) + 1
    accepted = receiver.accepted()
    figures.requests = len(receiver.received)
    seen: set[str] = set()
    latest = -1
    for item in accepted:
        if item.event_id in seen:
            figures.duplicates += 1
            continue
        seen.add(item.event_id)
        position = order.get(item.event_id, -1)
        if position < latest:
            figures.out_of_order += 1
        latest = max(latest, position)
        figures.delays.append(item.at - max(returned, occurred.get(item.event_id, returned)))
    figures.delivered = len(seen & set(order))
    invalid = sum(1 for item in accepted if not item.valid)
    if invalid:
        raise RuntimeError(f"{invalid} deliveries carried an invalid signature")


def run_benchmark(
    *,
    admin_url: str,
    port: int,
    receiver_port: int,
    workers: int,
    down: float,
    every: float,
    time_limit: int,
    drain_timeout: float,
    env: dict[str, str],
    keep: bool,
    echo: Echo,
) -> Figures:
    url, name = create_database(admin_url)
    echo(f"created database {name}")
    try:
        return measure(
            url,
            port=port,
            receiver_port=receiver_port,
            workers=workers,
            down=down,
            every=every,
            time_limit=time_limit,
            drain_timeout=drain_timeout,
            env=env,
            echo=echo,
        )
    finally:
        if keep:
            echo(f"kept database {name}")
        else:
            drop_database(admin_url, name)
            echo(f"dropped database {name}")
