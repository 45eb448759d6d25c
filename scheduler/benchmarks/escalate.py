"""``labq bench escalate``: one P4 -> P1 escalation on the demo lab, the way a supervisor does it.

The demo lab is seeded, a P4 case of three jobs (one phone: acquire, process, review) is imported
through the API, and the nightly full run is published; then that case is escalated to P1
through the real HTTP API (``POST .../cases/{ref}:escalate``) while a
worker thread runs, and the repair run that follows is awaited. Figures, printed, never asserted
(docs/architecture.md §10), against the targets:

- assignments of *other* cases moved (examiner, workstation or start) or removed, as a share of the
  next three lab-local days' assignments (target <= 10 %);
- of those, how many lay inside the frozen window (target 0);
- other P1/P2 cases that finish later than before, and by how much;
- seconds from the call to the published repair (target <= 10 s).
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, func, select

from models import Assignment, Case, Device, Job, PriorityLevel, ScheduleVersion, SolveRun
from models.base import utcnow
from scheduler.benchmarks.continuous import _fresh, _nightly
from scheduler.db import make_engine, session_scope
from scheduler.demo import DEMO_LAB, seed_demo
from scheduler.planning.loader import load_snapshot
from scheduler.planning.publish import current_version
from scheduler.services import keys
from scheduler.services.labs import get_lab

Echo = Callable[[str], None]
Placement = tuple[int | None, int | None, datetime, datetime]
CASE = "ESC-2026-0001"


@dataclass
class EscalationResult:
    backend: str
    case: str
    window_assignments: int  # other cases' assignments in the next three days, before
    moved: int
    removed: int
    inside_frozen: int
    later_urgent: list[tuple[str, float]] = field(default_factory=list)  # (case, hours later)
    published_after_seconds: float | None = None
    run_seconds: float | None = None
    run_status: str | None = None
    moved_anywhere: int = 0  # other cases' assignments moved or removed over the whole horizon
    unscheduled_warnings: list[str] = field(default_factory=list)  # what the new version says

    @property
    def changed_percent(self) -> float:
        return 100 * (self.moved + self.removed) / max(1, self.window_assignments)


def bench_escalate(
    database_url: str | None = None, *, nightly_time_limit: int = 30, echo: Echo = print
) -> EscalationResult:
    from api.app import create_app
    from scheduler.settings import Settings
    from scheduler.worker import start_embedded_worker

    with tempfile.TemporaryDirectory() as tmp:
        url = _fresh(database_url, "escalate", tmp)
        engine = make_engine(url)
        with session_scope(engine) as session:
            seed_demo(session)
            lab = get_lab(session, DEMO_LAB)
            token = keys.create_key(
                session, actor="bench", role="supervisor", name="bench", lab=lab
            ).token
        app = create_app(Settings(database_url=url, environment="test", embedded_worker=False))
        asyncio.run(_import_case(app, token))
        nightly = _nightly(engine, DEMO_LAB, nightly_time_limit)
        echo(f"demo lab seeded; nightly full run published in {nightly:.1f} s")
        with session_scope(engine) as session:
            lab = get_lab(session, DEMO_LAB)
            old = current_version(session, lab)
            assert old is not None
            old_id, before, finish_before = old.id, _placements(old), _finishes(session, old)
            _, idmap = load_snapshot(session, lab, utcnow())
            tl = idmap.timeline
            until = tl.at(tl.days[min(2, len(tl.days) - 1)][1])
            frozen_until = tl.at(tl.frozen_until)
            case_id = session.scalar(
                select(Case.id).where(Case.lab_id == lab.id, Case.external_ref == CASE)
            )
            case_ref = CASE
            assert case_id is not None, "the imported case is missing"
            ours = set(_case_jobs(session, case_id))
            urgent = _urgent_cases(session, lab.id)
        echo(f"escalating {case_ref} (P4, 3 jobs) to P1 through the API")
        stop = start_embedded_worker(engine, worker_id="bench-worker")
        try:
            elapsed = asyncio.run(_escalate_and_wait(app, token, engine, case_ref, old_id))
        finally:
            stop()
            app.state.engine.dispose()
        with session_scope(engine) as session:
            lab = get_lab(session, DEMO_LAB)
            new = current_version(session, lab)
            assert new is not None
            after, finish_after = _placements(new), _finishes(session, new)
            said = list((new.kpis or {}).get("warnings", []))[:5]
            run = session.scalar(select(SolveRun).order_by(SolveRun.id.desc()))
            run_seconds = (
                (run.finished_at - run.started_at).total_seconds()
                if run is not None and run.finished_at and run.started_at
                else None
            )
            run_status = None if run is None else f"{run.mode} {run.status}"
        engine.dispose()
    window = {j: p for j, p in before.items() if j not in ours and p[2] < until}
    moved = [j for j, p in window.items() if j in after and after[j][:3] != p[:3]]
    removed = [j for j in window if j not in after]
    inside = [j for j in (*moved, *removed) if window[j][2] < frozen_until]
    later = [
        (ref, round((finish_after[cid] - finish_before[cid]).total_seconds() / 3600, 1))
        for cid, ref in urgent.items()
        if cid != case_id
        and cid in finish_before
        and (cid not in finish_after or finish_after[cid] > finish_before[cid])
        and cid in finish_after
    ]
    anywhere = sum(
        1 for j, p in before.items() if j not in ours and (j not in after or after[j][:3] != p[:3])
    )
    backend = "postgresql" if url.startswith("postgresql") else "sqlite"
    return EscalationResult(
        backend,
        case_ref,
        len(window),
        len(moved),
        len(removed),
        len(inside),
        later,
        elapsed,
        run_seconds,
        run_status,
        anywhere,
        said,
    )


def _placements(version: ScheduleVersion) -> dict[int, Placement]:
    return {
        a.job_id: (a.examiner_id, a.workstation_id, a.starts_at, a.ends_at)
        for a in version.assignments
    }


def _finishes(session: Any, version: ScheduleVersion) -> dict[int, datetime]:
    rows = session.execute(
        select(Device.case_id, func.max(Assignment.ends_at))
        .join(Job, Assignment.job_id == Job.id)
        .join(Device, Job.device_id == Device.id)
        .where(Assignment.schedule_version_id == version.id)
        .group_by(Device.case_id)
    )
    return dict(rows.all())


async def _import_case(app: Any, token: str) -> None:
    import httpx

    now = utcnow().isoformat()
    review = {"attended_minutes": 180, "exposure_minutes": 150, "severity": 2}
    case = {
        "external_ref": CASE,
        "priority": "P4",
        "received_at": now,
        "devices": [
            {
                "external_ref": "D1",
                "kind": "phone",
                "arrived_at": now,
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
                        "pools": ["axiom"],
                        "after": ["acquire"],
                    },
                    {
                        "external_ref": "review",
                        "stage": "review",
                        **review,
                        "skills": ["review"],
                        "after": ["process"],
                    },
                ],
            }
        ],
    }
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://labq") as client:
        response = await client.post(
            f"/labs/{DEMO_LAB}/cases:import", json={"cases": [case]}, headers={"X-API-Key": token}
        )
    if response.status_code != 200:
        raise RuntimeError(f"import failed: {response.status_code} {response.text}")


def _case_jobs(session: Any, case_id: int) -> list[int]:
    return list(
        session.scalars(
            select(Job.id).join(Device, Job.device_id == Device.id).where(Device.case_id == case_id)
        )
    )


def _urgent_cases(session: Any, lab_id: int) -> dict[int, str]:
    return dict(
        session.execute(
            select(Case.id, Case.external_ref)
            .join(PriorityLevel, Case.priority_level_id == PriorityLevel.id)
            .where(
                Case.lab_id == lab_id, PriorityLevel.code.in_(("P1", "P2")), Case.status == "open"
            )
        ).all()
    )


async def _escalate_and_wait(
    app: Any, token: str, engine: Engine, case_ref: str, old_id: int, timeout: float = 120
) -> float | None:
    import httpx

    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://labq") as client:
        started = time.perf_counter()
        response = await client.post(
            f"/labs/{DEMO_LAB}/cases/{case_ref}:escalate",
            json={"priority": "P1", "reason": "linked to a P1 report"},
            headers={"X-API-Key": token},
        )
        if response.status_code != 200:
            raise RuntimeError(f"escalation failed: {response.status_code} {response.text}")
        while time.perf_counter() - started < timeout:
            with session_scope(engine) as session:
                version = current_version(session, get_lab(session, DEMO_LAB))
                if version is not None and version.id != old_id:
                    return time.perf_counter() - started
            await asyncio.sleep(0.1)
    return None
