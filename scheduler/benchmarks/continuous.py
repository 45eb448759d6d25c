"""Continuous-planning benchmarks on a real database: ``labq bench repair|churn|scale``.

Figures are printed, never asserted (docs/architecture.md §10); the targets:

- repair: a medium lab with a published schedule; a new P1 case is POSTed through the real ASGI
  app (``cases:import``, httpx ``ASGITransport``) while a worker thread runs; the figure is the
  time until a published schedule holds the case's first job (target <= 10 s).
- churn: a nightly full run is published; 5 % new jobs and one absence (tomorrow) arrive; the
  nightly run is repeated at the same planning time (change penalty, frozen horizon); the figure
  is the share of the published assignments of the next three lab-local days whose examiner,
  workstation or start changed or which were dropped, beside the same share for a from-scratch
  solve of the same snapshot without ``previous`` (target <= 10 %).
- scale: 20 labs / ~200 examiners / 20,000 jobs in one database, then ``labq reoptimize
  --all-labs --publish`` as a child process (the real command path); wall time, per-lab solve
  times and the peak resident memory of the whole process tree (sampled from /proc every 0.2 s)
  (targets <= 15 min, <= 4 GB).
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, select

from models import Assignment, Case, Device, Examiner, Job, Lab, ScheduleVersion, SolveRun
from scheduler.benchmarks.seed_db import Seeded, next_monday_8am, seed_lab
from scheduler.db import make_engine, session_scope
from scheduler.generate import generate_lab
from scheduler.migrate import upgrade
from scheduler.planning.engine import solve_snapshot
from scheduler.planning.loader import load_snapshot
from scheduler.planning.publish import current_version
from scheduler.planning.runs import queue_run
from scheduler.services import casework, resources
from scheduler.services.labs import get_lab
from scheduler.worker import run_to_completion

Echo = Callable[[str], None]
SCALE_LABS: tuple[tuple[str, int], ...] = (("medium", 1900),) * 2 + (("small", 900),) * 18


def sqlite_url(directory: str, name: str) -> str:
    return f"sqlite:///{Path(directory) / name}.db"


def _fresh(url: str | None, name: str, tmp: str) -> str:
    """``url`` (assumed empty) or a new SQLite file; migrated either way."""
    target = url or sqlite_url(tmp, name)
    upgrade(target)
    return target


def _seed(engine: Engine, size: str, seed: int, code: str, **kw: Any) -> tuple[Seeded, float]:
    started = time.perf_counter()
    epoch = next_monday_8am(datetime.now(UTC)) - timedelta(days=7)
    with session_scope(engine) as session:
        seeded = seed_lab(session, generate_lab(size, seed), code=code, epoch=epoch, **kw)
    return seeded, time.perf_counter() - started


def _nightly(engine: Engine, code: str, time_limit: int, now: datetime | None = None) -> float:
    """One full, auto-published run of ``code``; returns its wall time."""
    with session_scope(engine) as session:
        run_id = queue_run(
            session,
            get_lab(session, code),
            actor="bench",
            mode="full",
            auto_publish=True,
            time_limit_seconds=time_limit,
        ).run.id
    started = time.perf_counter()
    status = run_to_completion(engine, run_id, "bench", now=now)
    if status != "succeeded":
        with session_scope(engine) as session:
            run = session.get(SolveRun, run_id)
            raise RuntimeError(f"nightly run of {code} {status}: {run.error if run else ''}")
    return time.perf_counter() - started


# ---- repair ---------------------------------------------------------------------------------


@dataclass
class RepairResult:
    backend: str
    jobs: int
    nightly_seconds: float
    published_after_seconds: float | None
    run_seconds: float | None
    run_mode: str | None


def _new_case(ref: str, now: datetime) -> dict[str, Any]:
    return {
        "external_ref": ref,
        "priority": "P1",
        "received_at": now.isoformat(),
        "devices": [
            {
                "external_ref": "d1",
                "kind": "phone",
                "arrived_at": now.isoformat(),
                "jobs": [
                    {
                        "external_ref": "acquire",
                        "stage": "acquire",
                        "attended_minutes": 30,
                        "machine_minutes": 90,
                        "skills": ["mobile"],
                        "capabilities": ["ufed"],
                    },
                    {
                        "external_ref": "review",
                        "stage": "review",
                        "attended_minutes": 90,
                        "exposure_minutes": 60,
                        "severity": 2,
                        "skills": ["review"],
                        "after": ["acquire"],
                    },
                ],
            }
        ],
    }


def bench_repair(
    database_url: str | None = None,
    *,
    size: str = "medium",
    seed: int = 1,
    nightly_time_limit: int = 30,
    echo: Echo = print,
) -> RepairResult:
    from api.app import create_app
    from scheduler.services import keys
    from scheduler.settings import Settings
    from scheduler.worker import start_embedded_worker

    with tempfile.TemporaryDirectory() as tmp:
        url = _fresh(database_url, "repair", tmp)
        engine = make_engine(url)
        seeded, seconds = _seed(engine, size, seed, "repair")
        echo(f"seeded {seeded.jobs} jobs, {seeded.examiners} examiners in {seconds:.1f} s")
        nightly = _nightly(engine, "repair", nightly_time_limit)
        echo(f"nightly full run published in {nightly:.1f} s (limit {nightly_time_limit} s)")
        with session_scope(engine) as session:
            token = keys.create_key(
                session,
                actor="bench",
                role="supervisor",
                name="bench",
                lab=get_lab(session, "repair"),
            ).token
        app = create_app(Settings(database_url=url, environment="test", embedded_worker=False))
        stop = start_embedded_worker(engine, worker_id="bench-worker")
        try:
            elapsed = asyncio.run(_post_and_wait(app, token, engine))
        finally:
            stop()
            app.state.engine.dispose()
        with session_scope(engine) as session:
            run = session.scalar(
                select(SolveRun).where(SolveRun.mode == "repair").order_by(SolveRun.id.desc())
            )
            run_seconds = (
                (run.finished_at - run.started_at).total_seconds()
                if run is not None and run.finished_at and run.started_at
                else None
            )
            mode = run.mode if run is not None else None
        engine.dispose()
    backend = "postgresql" if url.startswith("postgresql") else "sqlite"
    return RepairResult(backend, seeded.jobs, nightly, elapsed, run_seconds, mode)


async def _post_and_wait(
    app: Any, token: str, engine: Engine, timeout: float = 120
) -> float | None:
    import httpx

    now = datetime.now(UTC)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://labq") as client:
        started = time.perf_counter()
        response = await client.post(
            "/labs/repair/cases:import",
            json={"cases": [_new_case("urgent-1", now)]},
            headers={"X-API-Key": token},
        )
        if response.status_code != 200:
            raise RuntimeError(f"import failed: {response.status_code} {response.text}")
        while time.perf_counter() - started < timeout:
            if _first_job_published(engine):
                return time.perf_counter() - started
            await asyncio.sleep(0.1)
    return None


def _first_job_published(engine: Engine) -> bool:
    with session_scope(engine) as session:
        lab = get_lab(session, "repair")
        version = current_version(session, lab)
        if version is None:
            return False
        job_id = session.scalar(
            select(Job.id)
            .join(Device, Job.device_id == Device.id)
            .join(Case, Device.case_id == Case.id)
            .where(Case.lab_id == lab.id, Case.external_ref == "urgent-1")
            .where(Job.external_ref == "acquire")
        )
        return (
            session.scalar(
                select(Assignment.id).where(
                    Assignment.schedule_version_id == version.id, Assignment.job_id == job_id
                )
            )
            is not None
        )


# ---- churn ----------------------------------------------------------------------------------


@dataclass
class ChurnResult:
    compared: int
    changed_rerun: int
    changed_scratch: int
    moved_day_rerun: int  # examiner, workstation or lab-local day changed (the stability term)
    moved_day_scratch: int
    new_jobs: int
    nightly_seconds: float
    #: per lab-local day of the window: (date, assignments compared, re-run day-level changes)
    by_day: list[tuple[str, int, int]] = field(default_factory=list)

    @property
    def rerun_percent(self) -> float:
        return 100 * self.changed_rerun / max(1, self.compared)

    @property
    def scratch_percent(self) -> float:
        return 100 * self.changed_scratch / max(1, self.compared)


def _placements(version: ScheduleVersion) -> dict[int, tuple[int | None, int | None, datetime]]:
    return {a.job_id: (a.examiner_id, a.workstation_id, a.starts_at) for a in version.assignments}


def bench_churn(
    database_url: str | None = None,
    *,
    size: str = "medium",
    seed: int = 1,
    time_limit: int = 30,
    weight_change: int | None = None,
    echo: Echo = print,
) -> ChurnResult:
    settings = {} if weight_change is None else {"weight_change": weight_change}
    with tempfile.TemporaryDirectory() as tmp:
        url = _fresh(database_url, "churn", tmp)
        engine = make_engine(url)
        seeded, _ = _seed(engine, size, seed, "churn", **settings)
        now = datetime.now(UTC)
        nightly = _nightly(engine, "churn", time_limit, now=now)
        echo(f"seeded {seeded.jobs} jobs; nightly run published in {nightly:.1f} s")
        with session_scope(engine) as session:
            lab = get_lab(session, "churn")
            old = current_version(session, lab)
            assert old is not None
            before = _placements(old)
            _, idmap = load_snapshot(session, lab, now)
            window_end = idmap.timeline.days[min(2, len(idmap.timeline.days) - 1)][1]
            until = idmap.timeline.at(window_end)
            compared = {j: p for j, p in before.items() if p[2] < until}
            new_jobs = _add_work(session, lab, share=0.05, now=now)
            _absence(session, lab, now)
        _nightly(engine, "churn", time_limit, now=now)
        with session_scope(engine) as session:
            lab = get_lab(session, "churn")
            new = current_version(session, lab)
            assert new is not None
            rerun = _placements(new)
            snapshot, idmap = load_snapshot(session, lab, now)
        scratch_plan = solve_snapshot(
            replace(snapshot, previous=(), frozen_until=0), time_limit=time_limit
        )
        tl = idmap.timeline
        scratch = {
            idmap.jobs[a.job]: (
                idmap.examiners.get(a.examiner) if a.examiner else None,
                idmap.workstations.get(a.workstation) if a.workstation else None,
                tl.at(a.start),
            )
            for a in scratch_plan.assignments
        }
        engine.dispose()

    def changed(after: dict[int, tuple[int | None, int | None, datetime]]) -> int:
        return sum(1 for job, p in compared.items() if after.get(job) != p)

    def moved_day(after: dict[int, tuple[int | None, int | None, datetime]]) -> int:
        def key(p: tuple[int | None, int | None, datetime] | None) -> tuple[Any, ...] | None:
            return None if p is None else (p[0], p[1], p[2].astimezone(tl.tz).date())

        return sum(1 for job, p in compared.items() if key(after.get(job)) != key(p))

    by_day: dict[str, list[int]] = {}
    for job, p in compared.items():
        counts = by_day.setdefault(p[2].astimezone(tl.tz).date().isoformat(), [0, 0])
        counts[0] += 1
        after = rerun.get(job)
        if after is None or (after[0], after[1], after[2].astimezone(tl.tz).date()) != (
            p[0],
            p[1],
            p[2].astimezone(tl.tz).date(),
        ):
            counts[1] += 1
    return ChurnResult(
        len(compared),
        changed(rerun),
        changed(scratch),
        moved_day(rerun),
        moved_day(scratch),
        new_jobs,
        nightly,
        [(d, c[0], c[1]) for d, c in sorted(by_day.items())],
    )


def _add_work(session: Any, lab: Lab, *, share: float, now: datetime) -> int:
    """Copies of the lab's most recent cases (new references, received now) until ``share``."""
    from scheduler.services.case_import import import_cases

    jobs = session.scalars(select(Job).where(Job.lab_id == lab.id).order_by(Job.id)).all()
    target = max(1, int(share * len(jobs)))
    items: list[dict[str, Any]] = []
    added = 0
    by_device: dict[int, list[Job]] = {}
    for job in jobs:
        by_device.setdefault(job.device_id, []).append(job)
    for n, device_jobs in enumerate(by_device.values()):
        if added >= target:
            break
        device = device_jobs[0].device
        case = casework.get_case(session, lab, device.case.external_ref)
        level = case.priority_level_id
        code = next(lv.code for lv in lab.priority_levels if lv.id == level)
        refs = {j.id: j.external_ref for j in device_jobs}
        items.append(
            {
                "external_ref": f"new-{n}",
                "priority": "P3" if code in ("P1", "P2") else code,
                "received_at": now,
                "devices": [
                    {
                        "external_ref": "d1",
                        "kind": device.kind,
                        "arrived_at": now,
                        "jobs": [
                            {
                                "external_ref": j.external_ref,
                                "stage": j.stage,
                                "attended_minutes": j.attended_minutes,
                                "machine_minutes": j.machine_minutes,
                                "exposure_minutes": j.exposure_minutes,
                                "severity": j.severity,
                                "skills": [s.skill for s in j.skills],
                                "capabilities": [c.capability for c in j.capabilities],
                                "after": [
                                    refs[p.predecessor_id]
                                    for p in j.predecessors
                                    if p.predecessor_id in refs
                                ],
                            }
                            for j in device_jobs
                        ],
                    }
                ],
            }
        )
        added += len(device_jobs)
    import_cases(session, lab, items, actor="bench")
    return added


def _absence(session: Any, lab: Lab, now: datetime) -> None:
    """The first examiner is away all of tomorrow (lab-local)."""
    examiner = session.scalar(
        select(Examiner).where(Examiner.lab_id == lab.id).order_by(Examiner.external_ref)
    )
    tomorrow = (now + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
    resources.add_absence(
        session,
        examiner,
        actor="bench",
        kind="sick",
        starts_at=tomorrow,
        ends_at=tomorrow + timedelta(days=1),
    )


# ---- scale ----------------------------------------------------------------------------------


@dataclass
class ScaleResult:
    labs: int
    examiners: int
    jobs: int
    seed_seconds: float
    wall_seconds: float
    exit_code: int
    peak_rss_mb: float
    per_lab: dict[str, float] = field(default_factory=dict)
    failed: list[str] = field(default_factory=list)


def _tree_rss_kb(root: int) -> int:
    """Resident memory of ``root`` and all its descendants, from /proc."""
    children: dict[int, list[int]] = {}
    rss: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/status") as handle:
                ppid, kb = 0, 0
                for line in handle:
                    if line.startswith("PPid:"):
                        ppid = int(line.split()[1])
                    elif line.startswith("VmRSS:"):
                        kb = int(line.split()[1])
        except OSError:
            continue
        pid = int(entry)
        rss[pid] = kb
        children.setdefault(ppid, []).append(pid)
    total, stack = 0, [root]
    while stack:
        pid = stack.pop()
        total += rss.get(pid, 0)
        stack.extend(children.get(pid, ()))
    return total


def bench_scale(
    database_url: str | None = None,
    *,
    time_limit: int = 30,
    via_workers: int = 0,
    echo: Echo = print,
) -> ScaleResult:
    """``via_workers`` > 0: start that many ``labq worker`` processes (CP-SAT threads: cores
    divided among them, as the in-process run divides them among its labs) and run ``labq
    reoptimize --via-workers``; their memory counts in the peak."""
    with tempfile.TemporaryDirectory() as tmp:
        url = _fresh(database_url, "scale", tmp)
        engine = make_engine(url)
        started = time.perf_counter()
        examiners = jobs = 0
        for n, (size, min_jobs) in enumerate(SCALE_LABS, start=1):
            seeded, _ = _seed(engine, size, n, f"lab{n:02d}", min_jobs=min_jobs)
            examiners += seeded.examiners
            jobs += seeded.jobs
        seed_seconds = time.perf_counter() - started
        echo(
            f"seeded {len(SCALE_LABS)} labs, {examiners} examiners, {jobs} jobs "
            f"in {seed_seconds:.1f} s"
        )
        env = {**os.environ, "LABQ_DATABASE_URL": url}
        command = [
            sys.executable,
            "-c",
            "from api.cli import main; main()",
            "reoptimize",
            "--all-labs",
            "--publish",
            "--time-limit",
            str(time_limit),
        ]
        fleet: list[subprocess.Popen[bytes]] = []
        if via_workers:
            command.append("--via-workers")
            threads = max(1, (os.cpu_count() or 1) // via_workers)
            worker = [*command[:3], "worker", "--no-webhooks", "--solver-threads", str(threads)]
            fleet = [
                subprocess.Popen(
                    worker, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
                )
                for _ in range(via_workers)
            ]
        started = time.perf_counter()
        child = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        peak = 0
        output: list[bytes] = []
        reader = threading.Thread(target=lambda: output.extend(child.stdout or ()), daemon=True)
        reader.start()
        try:
            while child.poll() is None:
                trees = [child.pid, *(w.pid for w in fleet)]
                peak = max(peak, sum(_tree_rss_kb(pid) for pid in trees))
                time.sleep(0.2)
        finally:
            wall = time.perf_counter() - started
            for w in fleet:
                w.terminate()  # a worker between runs stops at once
            for w in fleet:
                w.wait(timeout=120)
        reader.join(timeout=5)
        echo(b"".join(output).decode(errors="replace")[-4000:])
        per_lab: dict[str, float] = {}
        failed: list[str] = []
        with session_scope(engine) as session:
            for code, run in session.execute(
                select(Lab.code, SolveRun).join(SolveRun, SolveRun.lab_id == Lab.id)
            ).all():
                if run.status != "succeeded":
                    failed.append(code)
                if run.started_at and run.finished_at:
                    per_lab[code] = (run.finished_at - run.started_at).total_seconds()
        engine.dispose()
    return ScaleResult(
        labs=len(SCALE_LABS),
        examiners=examiners,
        jobs=jobs,
        seed_seconds=seed_seconds,
        wall_seconds=wall,
        exit_code=child.returncode,
        peak_rss_mb=peak / 1024,
        per_lab=per_lab,
        failed=failed,
    )
