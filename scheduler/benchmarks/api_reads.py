"""Schedule reads over real HTTP: ``labq bench api`` (target: p99 <= 50 ms at 50 clients).

Where the benchmarks live and what they measure: docs/architecture.md §10.

A PostgreSQL database (a new ``labq_apibench_*`` one, dropped afterwards, or ``--database-url``)
gets a lab with a published schedule: the demo lab solved and published as ``labq demo`` does, or
a generated lab (``seed_db``) after a nightly run, both executed by the ordinary worker path. A
supervisor key and examiner keys (read roles) are made with the keys service, then the real
server runs as a child process (``labq serve --workers 2``, embedded worker off) and N clients
loop for a fixed time over the reads a supervisor's and an examiner's screen make:

- ``current``: ``GET /labs/{lab}/schedules/current`` (the summary, with its ETag);
- ``assignments``: ``GET .../schedules/current/assignments`` for a two-day window (a page);
- ``assignments-all``: the same list without a window, its largest page (500 assignments);
- ``examiner``: ``GET .../schedules/current/examiners/{ref}`` with that examiner's own key.

Figures are printed, never asserted. The load generator's own cost is measured first against
``/health`` with the same number of clients, and its CPU share is reported, so a client that
saturates a core is visible. The default client is a minimal HTTP/1.1 keep-alive client on
asyncio streams (a few tens of microseconds per request); ``--client httpx`` uses httpx.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from contextlib import nullcontext
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

from models import Assignment, Examiner, ScheduleVersion
from scheduler.db import make_engine, session_scope
from scheduler.migrate import upgrade

Echo = Callable[[str], None]
DEFAULT_ADMIN_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
PG_SETTINGS = (
    "max_connections",
    "shared_buffers",
    "work_mem",
    "effective_cache_size",
    "synchronous_commit",
    "jit",
    "max_worker_processes",
)
WINDOW = timedelta(days=2)
CONNECT_EVERY = 0.02  # seconds between client connections (closed loop)


# ---- the database ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Prepared:
    url: str
    created: str | None  # the database this benchmark created (dropped at the end)
    lab: str
    version_id: int
    assignments: int
    supervisor_token: str
    examiner_tokens: dict[str, str]  # examiner ref -> its own examiner key
    window: tuple[datetime, datetime]
    seed_seconds: float


def create_database(admin_url: str) -> tuple[str, str]:
    """A new, empty, uniquely named database on ``admin_url``'s server: (url, name)."""
    name = f"labq_apibench_{uuid.uuid4().hex[:10]}"
    engine = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    engine.dispose()
    return make_url(admin_url).set(database=name).render_as_string(hide_password=False), name


def drop_database(admin_url: str, name: str) -> None:
    engine = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    engine.dispose()


def _publish_generated(engine: Engine, size: str, time_limit: int) -> str:
    """Seed a generated lab (``seed_db``) and publish one nightly run of it; returns its code."""
    from scheduler.benchmarks.continuous import _nightly
    from scheduler.benchmarks.seed_db import next_monday_8am, seed_lab
    from scheduler.generate import generate_lab

    code = f"bench-{size}"
    epoch = next_monday_8am(datetime.now(UTC)) - timedelta(days=7)
    with session_scope(engine) as session:
        seed_lab(session, generate_lab(size, 1), code=code, epoch=epoch)
    _nightly(engine, code, time_limit)
    return code


def _publish_demo(engine: Engine, time_limit: int) -> str:
    """Seed the demo lab and solve and publish it, as ``labq demo`` does; returns its code."""
    from scheduler.demo import seed_demo
    from scheduler.planning.demo import solve_and_publish_demo

    with session_scope(engine) as session:
        summary = seed_demo(session)
    result = solve_and_publish_demo(engine, lab_code=summary.lab, time_limit=time_limit)
    if result.status != "succeeded":
        raise RuntimeError(f"the demo solve {result.status}: {result.error or 'no detail'}")
    return summary.lab


def prepare(
    database_url: str | None,
    *,
    admin_url: str,
    lab: str,
    time_limit: int,
    examiners: int,
    echo: Echo,
) -> Prepared:
    """A database holding a lab with a published schedule, and read keys for it.

    With ``database_url``, a lab already published there is reused (nothing is seeded).
    """
    from scheduler.services import keys
    from scheduler.services.labs import find_lab, get_lab

    started = time.perf_counter()
    created = None
    if database_url is None:
        database_url, created = create_database(admin_url)
        echo(f"created database {created}")
    upgrade(database_url)
    engine = make_engine(database_url)
    try:
        code = "north" if lab == "demo" else f"bench-{lab}"
        with session_scope(engine) as session:
            existing = find_lab(session, code)
            published = existing is not None and session.scalar(
                select(ScheduleVersion.id).where(
                    ScheduleVersion.lab_id == existing.id, ScheduleVersion.is_current.is_(True)
                )
            )
        if not published:
            echo(f"seeding and solving the {lab} lab ({time_limit} s solve)...")
            if lab == "demo":
                code = _publish_demo(engine, time_limit)
            else:
                code = _publish_generated(engine, lab, time_limit)
        with session_scope(engine) as session:
            lab_row = get_lab(session, code)
            version = session.scalar(
                select(ScheduleVersion).where(
                    ScheduleVersion.lab_id == lab_row.id, ScheduleVersion.is_current.is_(True)
                )
            )
            assert version is not None
            starts = list(
                session.scalars(
                    select(Assignment.starts_at)
                    .where(Assignment.schedule_version_id == version.id)
                    .order_by(Assignment.starts_at)
                )
            )
            busy = list(
                session.scalars(
                    select(Examiner)
                    .join(Assignment, Assignment.examiner_id == Examiner.id)
                    .where(Assignment.schedule_version_id == version.id)
                    .group_by(Examiner.id)
                    .order_by(Examiner.external_ref)
                    .limit(examiners)
                )
            )
            supervisor = keys.create_key(
                session, actor="bench", role="supervisor", name="bench api", lab=lab_row
            ).token
            examiner_tokens = {
                e.external_ref: keys.create_key(
                    session, actor="bench", role="examiner", name="bench api", examiner=e
                ).token
                for e in busy
            }
            first = starts[0] if starts else version.epoch
            prepared = Prepared(
                url=database_url,
                created=created,
                lab=code,
                version_id=version.id,
                assignments=len(starts),
                supervisor_token=supervisor,
                examiner_tokens=examiner_tokens,
                window=(first, first + WINDOW),
                seed_seconds=time.perf_counter() - started,
            )
        with engine.connect() as conn:  # fresh planner statistics, as a live database has
            conn.execute(text("ANALYZE"))
            conn.commit()
    finally:
        engine.dispose()
    return prepared


def postgres_facts(url: str) -> dict[str, str]:
    """The server version and the settings that matter for many short reads."""
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            facts = {"version": str(conn.execute(text("SHOW server_version")).scalar())}
            for name in PG_SETTINGS:
                facts[name] = str(conn.execute(text(f"SHOW {name}")).scalar())
    finally:
        engine.dispose()
    return facts


# ---- the server -----------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Server:
    """``labq serve`` as a child process in its own process group."""

    process: subprocess.Popen[bytes]
    port: int

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=5)

    def cpu_seconds(self) -> float:
        """User + system CPU of the server's whole process tree so far."""
        return sum(_cpu_of(pid) for pid in _tree(self.process.pid))


def _tree(pid: int) -> list[int]:
    pids, todo = [], [pid]
    while todo:
        current = todo.pop()
        pids.append(current)
        try:
            for task in os.listdir(f"/proc/{current}/task"):
                with open(f"/proc/{current}/task/{task}/children") as f:
                    todo.extend(int(child) for child in f.read().split())
        except OSError:
            continue
    return pids


def _cpu_of(pid: int) -> float:
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class PostgresCpu:
    """CPU of the local PostgreSQL backends serving ``database``, sampled while a phase runs.

    Backends come and go (a pool's overflow connections are closed on return), so each is
    sampled every ``every`` seconds and its last reading counts even after it has exited.
    """

    def __init__(self, database: str) -> None:
        self.marker = f" {database} ".encode()
        self.first: dict[int, float] = {}
        self.last: dict[int, float] = {}

    def sample(self, *, start: bool = False) -> None:
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                with open(f"/proc/{entry}/cmdline", "rb") as f:
                    command = f.read()
            except OSError:
                continue
            if command.startswith(b"postgres: ") and self.marker in command:
                pid = int(entry)
                cpu = _cpu_of(pid)
                if start:
                    self.first[pid] = cpu
                self.last[pid] = cpu

    def seconds(self) -> float:
        return sum(cpu - self.first.get(pid, 0.0) for pid, cpu in self.last.items())


def machine_busy_seconds() -> float:
    """CPU seconds all cores spent on anything but idle and I/O wait so far (/proc/stat)."""
    try:
        with open("/proc/stat") as f:
            fields = [int(v) for v in f.readline().split()[1:]]
    except OSError:
        return 0.0
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def postgres_sessions(url: str) -> int:
    """Connections ever opened to the database (``pg_stat_database.sessions``, PostgreSQL 14+)."""
    engine = create_engine(url, poolclass=NullPool)
    try:
        with engine.connect() as conn:
            value = conn.execute(
                text("SELECT sessions FROM pg_stat_database WHERE datname = current_database()")
            ).scalar()
    finally:
        engine.dispose()
    return int(value or 0)


def start_server(
    url: str,
    workers: int,
    checkout: str | None = None,
    *,
    port: int | None = None,
    environment: dict[str, str] | None = None,
    log: Path | None = None,
) -> Server:
    """Start ``labq serve --workers N`` on ``port`` (default: a free one); wait for /health.

    ``checkout``: serve the code of another checkout (an earlier commit, to compare with).
    ``environment``: settings on top of ours (the embedded worker is off unless it says so);
    ``log``: where the server's output goes (default: discarded).
    """
    port = port or free_port()
    environment = {
        **os.environ,
        "LABQ_DATABASE_URL": url,
        "LABQ_EMBEDDED_WORKER": "false",
        **(environment or {}),
    }
    if checkout is not None:
        environment["PYTHONPATH"] = checkout
    command = [
        sys.executable,
        "-c",
        "from api.cli import main; main()",
        "serve",
        "--no-migrate",
        "--port",
        str(port),
        "--workers",
        str(workers),
    ]
    with open(log, "ab") if log is not None else nullcontext(subprocess.DEVNULL) as output:
        process = subprocess.Popen(
            command,
            env=environment,
            stdout=output,
            stderr=subprocess.STDOUT if log is not None else subprocess.DEVNULL,
            start_new_session=True,
            cwd=checkout,
        )
    server = Server(process, port)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"labq serve exited with {process.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as conn:
                conn.sendall(b"GET /health HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n")
                if conn.recv(64).startswith(b"HTTP/1.1 200"):
                    return server
        except OSError:
            pass
        time.sleep(0.2)
    server.stop()
    raise RuntimeError("labq serve did not answer /health within 60 s")


# ---- the clients ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Call:
    route: str
    path: str
    headers: dict[str, str]


@dataclass
class RouteStats:
    requests: int = 0
    errors: int = 0
    latencies: list[float] = field(default_factory=list)
    bytes: int = 0


class RawClient:
    """A minimal HTTP/1.1 keep-alive client: one connection, one request at a time.

    It reads what labq answers (a status line, headers, a Content-Length or chunked body) and
    nothing more, so its cost per request stays small next to the server's.
    """

    def __init__(self, port: int) -> None:
        self.port = port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def get(self, path: str, headers: dict[str, str]) -> tuple[int, int]:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)
        assert self.reader is not None
        head = f"GET {path} HTTP/1.1\r\nHost: bench\r\n" + "".join(
            f"{k}: {v}\r\n" for k, v in headers.items()
        )
        self.writer.write(head.encode() + b"\r\n")
        try:
            status_line = await self.reader.readline()
            status = int(status_line.split(b" ", 2)[1])
            length, chunked = -1, False
            while True:
                line = await self.reader.readline()
                if line in (b"\r\n", b""):
                    break
                name, _, value = line.partition(b":")
                name = name.strip().lower()
                if name == b"content-length":
                    length = int(value)
                elif name == b"transfer-encoding" and b"chunked" in value.lower():
                    chunked = True
            size = 0
            if chunked:
                while True:
                    chunk = int((await self.reader.readline()).split(b";")[0], 16)
                    await self.reader.readexactly(chunk + 2)
                    size += chunk
                    if chunk == 0:
                        break
            elif length > 0:
                size = len(await self.reader.readexactly(length))
            return status, size
        except (ValueError, IndexError, asyncio.IncompleteReadError, OSError):
            await self.close()
            raise

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None


class HttpxClient:
    def __init__(self, port: int) -> None:
        import httpx

        self.client = httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=60)

    async def get(self, path: str, headers: dict[str, str]) -> tuple[int, int]:
        response = await self.client.get(path, headers=headers)
        return response.status_code, len(response.content)

    async def close(self) -> None:
        await self.client.aclose()


@dataclass
class Phase:
    clients: int
    seconds: float
    routes: dict[str, RouteStats]
    client_cpu_seconds: float
    server_cpu_seconds: float
    database_cpu_seconds: float
    connections_opened: int
    machine_cpu_seconds: float

    @property
    def requests(self) -> int:
        return sum(s.requests for s in self.routes.values())


async def _drive(
    port: int,
    plans: Sequence[Sequence[Call]],
    seconds: float,
    warmup: float,
    client: str,
    server: Server,
    url: str,
    think: float = 0.0,
) -> Phase:
    """Each client loops over its own list of calls until the time is up.

    ``think`` = 0 is a closed loop (the next request as soon as the last answer arrives, as wrk
    does); otherwise a client pauses ``think`` seconds after each pass over its calls (a screen
    refreshed every so often), so the offered load stays below saturation.
    """
    stats: dict[str, RouteStats] = {}
    for plan in plans:
        for call in plan:
            stats.setdefault(call.route, RouteStats())
    recording = False
    stop_at = float("inf")

    async def one(plan: Sequence[Call], offset: int) -> None:
        http: RawClient | HttpxClient = RawClient(port) if client == "raw" else HttpxClient(port)
        i = offset
        if think:  # spread the clients' passes over the think time instead of in step
            await asyncio.sleep(think * offset / len(plans))
        else:
            # Connect one client at a time: opened in one burst, every keep-alive connection
            # lands on whichever server process accepts first and the other workers sit idle.
            await asyncio.sleep(CONNECT_EVERY * offset)
        recorded = 0
        try:
            # Past the time, a client finishes one recorded pass over its calls, so every
            # route is measured however slowly a loaded machine answers.
            while time.perf_counter() < stop_at or recorded < len(plan):
                call = plan[i % len(plan)]
                i += 1
                if think and i % len(plan) == offset % len(plan):
                    await asyncio.sleep(think)
                started = time.perf_counter()
                try:
                    status, size = await http.get(call.path, call.headers)
                    failed = status >= 400
                except Exception:
                    status, size, failed = 0, 0, True
                elapsed = time.perf_counter() - started
                if recording:
                    recorded += 1
                    s = stats[call.route]
                    s.requests += 1
                    s.errors += failed
                    s.latencies.append(elapsed)
                    s.bytes += size
        finally:
            await http.close()

    tasks: list[Awaitable[None]] = [one(plan, n) for n, plan in enumerate(plans)]
    runner: asyncio.Future[list[None]] = asyncio.gather(*tasks)
    await asyncio.sleep(warmup)
    backends = PostgresCpu(make_url(url).database or "")
    sessions0 = postgres_sessions(url)
    backends.sample(start=True)
    recording = True
    machine0 = machine_busy_seconds()
    cpu0, server0, wall0 = time.process_time(), server.cpu_seconds(), time.perf_counter()
    stop_at = wall0 + seconds
    while not runner.done():
        await asyncio.wait([runner], timeout=0.5)
        await asyncio.to_thread(backends.sample)  # a /proc scan, off the clients' loop
    await runner
    wall = time.perf_counter() - wall0
    client_cpu = time.process_time() - cpu0
    machine = machine_busy_seconds() - machine0
    return Phase(
        clients=len(plans),
        seconds=wall,
        routes=stats,
        client_cpu_seconds=client_cpu,
        server_cpu_seconds=server.cpu_seconds() - server0,
        database_cpu_seconds=backends.seconds(),
        connections_opened=postgres_sessions(url) - sessions0,
        machine_cpu_seconds=machine,
    )


def drive(
    port: int,
    plans: Sequence[Sequence[Call]],
    seconds: float,
    warmup: float,
    client: str,
    server: Server,
    url: str,
    think: float = 0.0,
) -> Phase:
    return asyncio.run(_drive(port, plans, seconds, warmup, client, server, url, think))


def schedule_plans(prepared: Prepared, clients: int) -> list[list[Call]]:
    """Per client, the reads of a supervisor's screen and of one examiner's own screen."""
    lab = prepared.lab
    sup = {"X-API-Key": prepared.supervisor_token}
    start, end = prepared.window
    window = f"ends_after={_q(start)}&starts_before={_q(end)}"
    base = f"/labs/{lab}/schedules/current"
    refs = sorted(prepared.examiner_tokens)
    plans = []
    for n in range(clients):
        calls = [
            Call("current", base, sup),
            Call("assignments", f"{base}/assignments?{window}", sup),
            Call("assignments-all", f"{base}/assignments?limit=500", sup),
        ]
        if refs:
            ref = refs[n % len(refs)]
            calls.append(
                Call(
                    "examiner",
                    f"{base}/examiners/{ref}",
                    {"X-API-Key": prepared.examiner_tokens[ref]},
                )
            )
        plans.append(calls)
    return plans


def _q(instant: datetime) -> str:
    return instant.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def percentile(ordered: Sequence[float], q: float) -> float:
    """Nearest-rank percentile of an ascending list (0 when empty)."""
    if not ordered:
        return 0.0
    rank = max(1, min(len(ordered), int(-(-q * len(ordered) // 1))))
    return ordered[rank - 1]


def summary(stats: RouteStats, seconds: float) -> dict[str, Any]:
    ordered = sorted(stats.latencies)
    return {
        "requests": stats.requests,
        "errors": stats.errors,
        "rps": stats.requests / seconds if seconds else 0.0,
        "p50": percentile(ordered, 0.50),
        "p95": percentile(ordered, 0.95),
        "p99": percentile(ordered, 0.99),
        "max": ordered[-1] if ordered else 0.0,
        "bytes": stats.bytes / stats.requests if stats.requests else 0,
    }


def load_average() -> str:
    try:
        with open("/proc/loadavg") as f:
            return " ".join(f.read().split()[:3])
    except OSError:
        return "n/a"


def uptime() -> str:
    try:
        done = subprocess.run(["uptime"], capture_output=True, text=True, check=False)
        return done.stdout.strip()
    except OSError:
        return f"load average {load_average()}"
