"""Play a scenario through the real service on the controlled clock (docs/architecture.md §10.1).

The service is the production app (`api.app.create_app`) in process, called over HTTP through
the ASGI transport, and a worker thread (`scheduler.worker.work`) that claims and solves the runs
the service queues, as ``labq worker`` does; both read the process clock, a
`models.clock.ManualClock` that only this driver moves. After every call that may queue a run the
driver waits, with the clock standing still, until no run of the lab is queued or running, so a
run always plans against the same instant and the same data (with one CP-SAT worker the
simulation is reproducible).

The lab's people act on the published schedule: each examiner presses ``:start`` on their next
assignment once its start has come (some later than planned, `events.job_draws`), if they are free,
present, its predecessors are done and its workstation has room; the job then takes its estimate
times its seeded factor, and ``:done`` follows (with an exposure log for review work). Work that
is never started where it was planned is left to the service's rules for missed starts.
"""

from __future__ import annotations

import asyncio
import logging
import statistics
import tempfile
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import Engine, func, select

from models import (
    Case,
    Device,
    Examiner,
    ExaminerSkill,
    Job,
    JobLicencePool,
    JobPredecessor,
    LicencePool,
    ScheduleVersion,
    SolveRun,
    Workstation,
)
from models.clock import ManualClock, use
from scheduler import continuous
from scheduler.benchmarks.seed_db import seed_lab
from scheduler.db import make_engine, session_scope
from scheduler.migrate import upgrade
from scheduler.services.labs import get_lab
from scheduler.simulate import events as ev
from scheduler.simulate.metrics import Recorder

logger = logging.getLogger(__name__)

Progress = Callable[[float, str], None]
TICK = timedelta(minutes=15)
NIGHTLY = timedelta(hours=2, minutes=30)
SHIFT_START = timedelta(hours=8)
SHIFT_END = timedelta(hours=16, minutes=30)
CUTOFF = timedelta(hours=16)
EXPECTED = {"GET": (200,), "POST": (200, 201, 202), "PUT": (200, 201)}


@dataclass(frozen=True)
class SimConfig:
    size: str = "small"
    days: int = 5
    seed: int = 1
    policy: str = "cpsat"
    workers: int = 1  # CP-SAT search workers of each solve (1: reproducible)
    time_limit: int = 20  # seconds of the nightly run (a repair run takes min(this, 4))
    database_url: str | None = None


@dataclass
class SimJob:
    id: int
    path: str  # case/device/job
    case: str
    attended: int
    machine: int
    exposure: int
    severity: int
    after: tuple[int, ...]
    pools: tuple[str, ...] = ()  # licence pools it holds a licence of while it runs
    status: str = "pending"  # pending, running, done (the lab's truth, as the driver acts it)
    examiner: str | None = None
    workstation: str | None = None
    started: datetime | None = None
    examiner_free: datetime | None = None
    machine_free: datetime | None = None
    ends: datetime | None = None


@dataclass
class Placement:
    examiner: str | None
    workstation: str | None
    start: datetime
    end: datetime


@dataclass
class Published:
    """The current published version as the API serves it."""

    id: int
    mode: str | None
    solve_seconds: float | None
    assignments: dict[int, Placement]
    unscheduled: dict[int, tuple[str, str, datetime | None]]  # reason, detail, forecast start


@dataclass
class Service:
    """The app, its HTTP client and the worker thread, with every unexpected answer counted."""

    client: Any
    code: str
    headers: dict[str, str]
    engine: Engine
    clock: ManualClock
    lab_id: int
    errors: list[dict[str, Any]] = field(default_factory=list)
    calls: int = 0
    run_walls: list[tuple[str, float]] = field(default_factory=list)
    failed_runs: list[str] = field(default_factory=list)
    held_back: list[str] = field(default_factory=list)
    _seen_run: int = 0

    def call(
        self,
        method: str,
        path: str,
        body: Any = None,
        params: dict[str, Any] | None = None,
        *,
        absent: bool = False,
    ) -> Any:
        """The answer's JSON, or None; any 5xx or unexpected 4xx is recorded as an error
        (``absent``: a 404 is an expected answer, e.g. no published schedule yet)."""
        self.calls += 1
        url = f"/labs/{self.code}{path}"
        response = self.client.request(method, url, json=body, params=params, headers=self.headers)
        if absent and response.status_code == 404:
            return None
        if response.status_code not in EXPECTED.get(method, (200,)):
            self.errors.append(
                {
                    "at": self.clock.now().isoformat(),
                    "method": method,
                    "path": path,
                    "status": response.status_code,
                    "detail": response.text[:300],
                }
            )
            return None
        return response.json() if response.content else None

    def pages(self, path: str, params: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        cursor: str | None = None
        while True:
            query = {"limit": 500, **(params or {})}
            if cursor:
                query["cursor"] = cursor
            page = self.call("GET", path, params=query)
            if page is None:
                return items
            items += page["items"]
            cursor = page.get("next_cursor")
            if not cursor:
                return items

    def settle(self, what: str) -> None:
        """Wait, the clock standing still, until the lab has no run queued or running."""
        started = time.perf_counter()
        while True:
            with session_scope(self.engine, read_only=True) as session:
                busy = session.scalar(
                    select(func.count(SolveRun.id)).where(
                        SolveRun.lab_id == self.lab_id, SolveRun.status.in_(("queued", "running"))
                    )
                )
            if not busy:
                break
            time.sleep(0.02)
        wall = time.perf_counter() - started
        with session_scope(self.engine, read_only=True) as session:
            finished = (
                session.execute(
                    select(SolveRun)
                    .where(SolveRun.lab_id == self.lab_id, SolveRun.id > self._seen_run)
                    .order_by(SolveRun.id)
                )
                .scalars()
                .all()
            )
            for run in finished:
                self._seen_run = max(self._seen_run, run.id)
                self.run_walls.append((run.mode, wall / len(finished)))
                at = self.clock.now().strftime("%a %d %b %H:%M")
                if run.status != "succeeded":
                    self.failed_runs.append(
                        f"{at} {what}: {run.mode} run {run.status}: {run.error}"
                    )
                    continue
                version = session.scalar(
                    select(ScheduleVersion).where(ScheduleVersion.solve_run_id == run.id)
                )
                if run.auto_publish and version is not None and version.published_at is None:
                    warnings = (version.kpis or {}).get("warnings") or ["(no warning)"]
                    self.held_back.append(f"{at} {what}: {run.mode} run: {warnings[0]}")


class AsgiClient:
    """A blocking face of ``httpx.AsyncClient`` over the app's ASGI transport: requests go
    through the whole app (middleware, routing, validation, handlers, problem+json) on an event
    loop of their own thread, as a served app handles them."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.client: httpx.AsyncClient | None = None

    def __enter__(self) -> AsgiClient:
        self.thread.start()
        transport = httpx.ASGITransport(app=self.app)
        self.client = httpx.AsyncClient(transport=transport, base_url="http://labq", timeout=600)
        return self

    def __exit__(self, *exc: object) -> None:
        assert self.client is not None
        asyncio.run_coroutine_threadsafe(self.client.aclose(), self.loop).result()
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)
        self.loop.close()

    def request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        assert self.client is not None
        call = self.client.request(method, url, **kwargs)
        return asyncio.run_coroutine_threadsafe(call, self.loop).result()


def _when(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


class Simulation:
    def __init__(self, config: SimConfig, service: Service, scenario: ev.Scenario) -> None:
        self.config = config
        self.api = service
        self.scenario = scenario
        self.jobs: dict[int, SimJob] = {}
        self.by_path: dict[str, int] = {}
        self.capacity: dict[str, int] = {}
        self.licences: dict[str, int] = {}  # licence pool -> its size
        self.examiner_free: dict[str, datetime] = {}
        self.absent: dict[str, list[tuple[datetime, datetime]]] = defaultdict(list)
        self.logged: dict[tuple[str, str], int] = defaultdict(int)  # (examiner, day) -> minutes
        self.published: Published | None = None
        self.recorder = Recorder(config, scenario)

    # -- the lab's data, as stored -------------------------------------------------------------

    def load_jobs(self, cases: list[str] | None = None) -> None:
        """Read jobs (all, or of ``cases``) with their predecessors into the driver's book."""
        with session_scope(self.api.engine, read_only=True) as session:
            lab = get_lab(session, self.api.code)
            query = (
                select(Job, Device.external_ref, Case.external_ref)
                .join(Device, Job.device_id == Device.id)
                .join(Case, Device.case_id == Case.id)
                .where(Job.lab_id == lab.id)
                .order_by(Job.id)
            )
            if cases is not None:
                query = query.where(Case.external_ref.in_(cases))
            rows = session.execute(query).all()
            ids = [job.id for job, _, _ in rows]
            preds: dict[int, list[int]] = defaultdict(list)
            for job_id, pred in session.execute(
                select(JobPredecessor.job_id, JobPredecessor.predecessor_id).where(
                    JobPredecessor.job_id.in_(ids)
                )
            ):
                preds[job_id].append(pred)
            pools: dict[int, list[str]] = defaultdict(list)
            for job_id, pool in session.execute(
                select(JobLicencePool.job_id, LicencePool.name)
                .join(LicencePool, JobLicencePool.pool_id == LicencePool.id)
                .where(JobLicencePool.job_id.in_(ids))
            ):
                pools[job_id].append(pool)
            for job, device, case in rows:
                known = self.jobs.get(job.id)
                path = f"{case}/{device}/{job.external_ref}"
                after = tuple(sorted(preds[job.id]))
                if known is not None:
                    known.after = after
                    continue
                self.jobs[job.id] = SimJob(
                    job.id, path, case, job.attended_minutes, job.machine_minutes,
                    job.exposure_minutes, job.severity, after, tuple(sorted(pools[job.id])),
                )  # fmt: skip
                self.by_path[path] = job.id
                self.recorder.job_added(case, job.id)

    def load_resources(self) -> None:
        with session_scope(self.api.engine, read_only=True) as session:
            lab = get_lab(session, self.api.code)
            self.capacity = dict(
                session.execute(
                    select(Workstation.external_ref, Workstation.capacity).where(
                        Workstation.lab_id == lab.id
                    )
                ).all()
            )
            self.licences = dict(
                session.execute(
                    select(LicencePool.name, LicencePool.capacity).where(
                        LicencePool.lab_id == lab.id
                    )
                ).all()
            )
            examiners = session.scalars(select(Examiner).where(Examiner.lab_id == lab.id)).all()
            skills = defaultdict(set)
            for examiner_id, skill in session.execute(
                select(ExaminerSkill.examiner_id, ExaminerSkill.skill)
            ):
                skills[examiner_id].add(skill)
            self.recorder.caps = {
                e.external_ref: (
                    e.daily_cap_minutes,
                    e.severe_daily_cap_minutes,
                    e.weekly_cap_minutes,
                    "review" in skills[e.id],
                )
                for e in examiners
            }
            self.recorder.targets = {lv.code: lv.target_start_hours for lv in lab.priority_levels}

    # -- the published schedule ------------------------------------------------------------------

    def refresh(self, nightly: bool = False) -> None:
        """Read the current published version if it changed, and record what it says."""
        summary = self.api.call("GET", "/schedules/current", absent=True)
        if summary is None or (self.published and summary["id"] == self.published.id):
            return
        base = f"/schedules/{summary['id']}"
        assignments = {
            a["job_id"]: Placement(
                a["examiner"],
                a["workstation"],
                datetime.fromisoformat(a["starts_at"]),
                datetime.fromisoformat(a["ends_at"]),
            )
            for a in self.api.pages(f"{base}/assignments")
        }
        unscheduled = {
            u["job_id"]: (u["reason"], u["detail"], _when(u["forecast_start"]))
            for u in self.api.pages(f"{base}/unscheduled")
        }
        before = self.published
        self.published = Published(
            summary["id"],
            summary.get("mode"),
            (summary.get("kpis") or {}).get("solve_seconds"),
            assignments,
            unscheduled,
        )
        now = self.api.clock.now()
        self.recorder.publication(now, self.published, before, self.jobs, self.logged, nightly)

    # -- the day ---------------------------------------------------------------------------------

    def nightly(self) -> None:
        self.api.call(
            "POST",
            "/solve-runs",
            {"mode": "full", "auto_publish": True, "reason": "nightly re-optimization"},
        )
        self.api.settle("nightly run")
        self.refresh(nightly=True)
        self.recorder.check_open(self.api.clock.now(), self.published, self.jobs)

    def happen(self, event: ev.Event) -> None:
        """One exogenous event, through the API."""
        kind = event.kind
        if kind == "arrival":
            assert event.template is not None
            item = ev.import_case(event.case, event.level, event.at, event.template, event.devices)
            self.api.call("POST", "/cases:import", {"cases": [item]})
            self.recorder.arrival(event)
            self.api.settle(f"arrival of {event.case}")
            self.load_jobs([event.case])
        elif kind == "device":
            self._device(event)
        elif kind == "absence":
            assert event.until is not None
            start = event.at.replace(hour=0, minute=0)
            self.absent[event.examiner].append((start, event.until))
            self.api.call(
                "POST",
                f"/examiners/{event.examiner}/absences",
                {
                    "kind": "sick",
                    "starts_at": start.isoformat(),
                    "ends_at": event.until.isoformat(),
                },
            )
            self.api.settle(f"absence of {event.examiner}")
        else:
            if kind == "flag":
                self.api.call("POST", f"/cases/{event.case}/flags", {"kind": event.flag})
            elif kind == "link":
                self.api.call("POST", f"/cases/{event.case}/links", {"case": event.other})
            else:
                self.api.call(
                    "POST",
                    f"/cases/{event.case}:escalate",
                    {"priority": event.level, "reason": "new information"},
                )
            self.recorder.escalation(event)
            self.api.settle(f"{kind} on {event.case}")
        self.refresh()

    def _device(self, event: ev.Event) -> None:
        assert event.template is not None
        device = next(d for d in event.template.devices if d.ref == event.device)
        case = event.case
        self.api.call(
            "PUT",
            f"/cases/{case}/devices/{device.ref}",
            {"kind": device.kind, "arrived_at": event.at.isoformat(), "locked": device.locked},
        )
        present = {p.split("/")[1] for p in self.by_path if p.startswith(f"{case}/")}
        present.add(device.ref)
        for job in device.jobs:
            body = ev.job_payload(job, present)
            body.pop("external_ref")
            self.api.call("PUT", f"/cases/{case}/devices/{device.ref}/jobs/{job.ref}", body)
        report = self.by_path.get(f"{case}/case/report")
        if report is not None and self.jobs[report].status == "pending":
            template = next(d for d in event.template.devices if d.ref == "case").jobs[0]
            body = ev.job_payload(template, present)
            body.pop("external_ref")
            self.api.call("PUT", f"/cases/{case}/devices/case/jobs/report", body)
        self.api.settle(f"device {case}/{device.ref}")
        self.load_jobs([case])

    def finish_due(self, now: datetime) -> None:
        for job in sorted(
            (j for j in self.jobs.values() if j.status == "running"),
            key=lambda j: (j.ends, j.id),
        ):
            assert job.ends is not None
            if job.ends > now:
                continue
            self.api.call("POST", f"/jobs/{job.id}:done")
            job.status = "done"
            self.recorder.done(job, now)
            if job.exposure and job.examiner and job.started:
                day = job.started.date().isoformat()
                self.logged[(job.examiner, day)] += job.exposure
                self.api.call(
                    "POST",
                    f"/examiners/{job.examiner}/exposure-logs",
                    {"day": day, "minutes": job.exposure, "severity": job.severity},
                )

    def start_due(self, now: datetime) -> None:
        if self.published is None:
            return
        midnight = now.replace(hour=0, minute=0)
        if not ev.working(now) or not (midnight + SHIFT_START <= now < midnight + SHIFT_END):
            return
        running: dict[str, int] = defaultdict(int)
        seats: dict[str, int] = defaultdict(int)  # licences in use, held until the job is done
        for job in self.jobs.values():
            if job.status == "running" and job.workstation and job.machine_free:
                if job.machine_free > now:
                    running[job.workstation] += 1
            if job.status == "running":
                for pool in job.pools:
                    seats[pool] += 1
        order = sorted(self.published.assignments.items(), key=lambda kv: (kv[1].start, kv[0]))
        for job_id, place in order:
            found = self.jobs.get(job_id)
            if found is None or found.status != "pending" or place.start.date() != now.date():
                continue
            job = found
            draws = ev.job_draws(self.config.seed, job.path)
            if now < place.start + timedelta(minutes=draws.late_minutes):
                continue
            if any(self.jobs[p].status != "done" for p in job.after if p in self.jobs):
                continue
            examiner = place.examiner
            if examiner is not None and not self._can_work(examiner, job, now):
                continue
            station = place.workstation
            if station is not None and running[station] >= self.capacity.get(station, 1):
                continue
            if any(seats[pool] >= self.licences.get(pool, 1) for pool in job.pools):
                continue  # no licence free: it waits, as a busy workstation makes it wait
            if self.api.call("POST", f"/jobs/{job.id}:start") is None:
                continue
            attended = timedelta(minutes=round(job.attended * draws.factor))
            machine = timedelta(minutes=round(job.machine * draws.factor))
            job.status, job.started = "running", now
            job.examiner, job.workstation = examiner, station
            job.examiner_free = now + attended
            job.machine_free = now + machine
            job.ends = now + max(attended, machine)
            if examiner is not None:
                self.examiner_free[examiner] = job.examiner_free
            if station is not None and machine:
                running[station] += 1
            for pool in job.pools:
                seats[pool] += 1
            self.recorder.started(job, now)

    def _can_work(self, examiner: str, job: SimJob, now: datetime) -> bool:
        if self.examiner_free.get(examiner, now) > now:
            return False
        if any(a <= now < b for a, b in self.absent[examiner]):
            return False
        midnight = now.replace(hour=0, minute=0)
        if job.exposure:
            if now + timedelta(minutes=job.attended) > midnight + SHIFT_END:
                return False
            daily = self.recorder.caps.get(examiner, (None, None, None, False))[0]
            today = self.logged[(examiner, now.date().isoformat())]
            if daily is not None and today + job.exposure > daily:
                return False
        return True

    # -- the whole run ---------------------------------------------------------------------------

    def run(self, progress: Progress | None = None) -> None:
        clock = self.api.clock
        start = ev.START
        midnight = start.replace(hour=0, minute=0)
        pending = list(self.scenario.events)
        end = midnight + timedelta(days=self.config.days)
        t = midnight
        index = 0
        total = (end - midnight) / TICK
        ticks = 0
        while t < end:
            clock.set(t)
            if ev.working(t) and t - t.replace(hour=0, minute=0) == NIGHTLY:
                self.nightly()
            while index < len(pending) and pending[index].at <= t:
                self.happen(pending[index])
                index += 1
            self.finish_due(t)
            self.start_due(t)
            ticks += 1
            if progress is not None and ticks % 24 == 0:
                progress(ticks / total, t.strftime("%a %d %b %H:%M"))
            t += TICK
        clock.set(end)
        self.recorder.finish(end, self.jobs, self.api.pages("/cases"))
        if progress is not None:
            progress(1.0, "done")


def simulate(config: SimConfig, progress: Progress | None = None) -> dict[str, Any]:
    """Run one simulation; returns its figures (see `metrics.Recorder.result`)."""
    from api.app import create_app
    from scheduler.services import keys
    from scheduler.settings import Settings
    from scheduler.worker import work

    continuous.install()  # as every entry point does: the services' triggers queue repairs
    wall = time.perf_counter()
    scenario = ev.scenario(config.size, config.seed, config.days)
    code = f"sim-{config.policy}"
    with tempfile.TemporaryDirectory() as tmp, use(ManualClock(ev.START - NIGHTLY)) as clock:
        assert isinstance(clock, ManualClock)
        url = config.database_url or f"sqlite:///{Path(tmp) / code}.db"
        upgrade(url)
        engine = make_engine(url)
        midnight = ev.START.replace(hour=0, minute=0)
        clock.set(midnight)
        with session_scope(engine) as session:
            seed_lab(
                session,
                scenario.backlog,
                code=code,
                epoch=ev.START,
                solve_time_limit_seconds=config.time_limit,
            )
            lab_id = get_lab(session, code).id
            token = keys.create_key(
                session, actor="simulate", role="supervisor", name="simulate",
                lab=get_lab(session, code),
            ).token  # fmt: skip
        app = create_app(
            Settings(
                database_url=url,
                environment="test",
                embedded_worker=False,
                stale_sweep_seconds=0,
                auth_failure_burst=0,
            )
        )
        stop = threading.Event()
        worker = threading.Thread(
            target=work,
            args=(engine, f"simulate-{config.policy}", stop),
            kwargs={"policy": config.policy, "poll_seconds": 0.02, "workers": config.workers},
            daemon=True,
        )
        worker.start()
        try:
            with AsgiClient(app) as client:
                service = Service(client, code, {"X-API-Key": token}, engine, clock, lab_id)
                sim = Simulation(config, service, scenario)
                sim.load_resources()
                sim.load_jobs()
                sim.run(progress)
        finally:
            stop.set()
            worker.join(timeout=120)
            engine.dispose()
    result = sim.recorder.result()
    walls: dict[str, list[float]] = defaultdict(list)
    for mode, seconds in service.run_walls:
        walls[mode].append(seconds)
    result["api"] = {"calls": service.calls, "errors": len(service.errors),
                     "first_errors": service.errors[:10]}  # fmt: skip
    result["runs"] = {
        "by_mode": {m: len(v) for m, v in sorted(walls.items())},
        "failed": len(service.failed_runs),
        "first_failed": service.failed_runs[:10],
        "held_back": len(service.held_back),
        "first_held_back": service.held_back[:10],
    }
    result["timings"] = {
        "wall_seconds": round(time.perf_counter() - wall, 1),
        "run_seconds": {
            m: {
                "median": round(statistics.median(v), 2),
                "max": round(max(v), 2),
            }
            for m, v in sorted(walls.items())
        },
        "solve_seconds": sim.recorder.solve_seconds(),
    }
    return result
