"""The demo's main act: solve the seeded demo lab through the normal service path and publish it.

``solve_and_publish_demo`` queues a solve run (auto-publish), executes it like any worker would
(claim, heartbeat, verify, store, publish) and gathers what the CLI prints: each examiner's next
working days, the backlog by priority with expected dates, P1/P2 on time, exposure against caps,
and a self-contained Gantt page.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Engine

from models import SolveRun
from models.base import utcnow
from scheduler.db import session_scope
from scheduler.demo import DEMO_LAB
from scheduler.planning import views
from scheduler.planning.gantt import gantt_summary, render_gantt
from scheduler.planning.runs import queue_run
from scheduler.services import resources
from scheduler.services.labs import get_lab

ACTOR = "demo"
DEFAULT_TIME_LIMIT = 20
AGENDA_DAYS = 2


@dataclass(frozen=True)
class AgendaItem:
    start: str
    end: str
    job: str
    stage: str
    priority: str
    workstation: str | None
    exposure_minutes: int


@dataclass
class DemoResult:
    lab: str
    run_id: int
    status: str
    error: str | None
    seconds: float
    version_id: int | None = None
    kpis: dict[str, Any] = field(default_factory=dict)
    agenda: dict[str, dict[date, list[AgendaItem]]] = field(default_factory=dict)
    examiner_names: dict[str, str] = field(default_factory=dict)
    backlog: dict[str, Any] = field(default_factory=dict)
    gantt_html: str | None = None
    timezone: str = "UTC"


def solve_and_publish_demo(
    engine: Engine,
    *,
    lab_code: str = DEMO_LAB,
    time_limit: int = DEFAULT_TIME_LIMIT,
    policy: str = "cpsat",
    now: datetime | None = None,
) -> DemoResult:
    """Solve ``lab_code`` (the seeded demo lab), publish the verified plan, summarise it."""
    from scheduler.worker import default_worker_id, run_to_completion

    started = time.perf_counter()
    with session_scope(engine) as session:
        lab = get_lab(session, lab_code)
        run_id = queue_run(
            session,
            lab,
            actor=ACTOR,
            mode="full",
            auto_publish=True,
            time_limit_seconds=time_limit,
            reason="labq demo",
        ).run.id
    status = run_to_completion(
        engine, run_id, f"demo:{default_worker_id()}", policy=policy, now=now
    )
    with session_scope(engine) as session:
        lab = get_lab(session, lab_code)
        run = session.get(SolveRun, run_id)
        assert run is not None
        result = DemoResult(
            lab=lab.code,
            run_id=run_id,
            status=status,
            error=run.error,
            seconds=time.perf_counter() - started,
            timezone=lab.timezone,
        )
        if status != "succeeded":
            return result
        version = views.current_or_404(session, lab)
        tz = ZoneInfo(lab.timezone)
        result.version_id = version.id
        result.kpis = version.kpis
        rows = views.placed_jobs(session, version)
        examiners = resources.active_examiners(session, lab)
        workstations = resources.active_workstations(session, lab)
        result.examiner_names = {e.external_ref: e.display_name for e in examiners}
        result.agenda = agenda(rows, tz, AGENDA_DAYS)
        result.backlog = views.backlog_report(session, lab, version, now or utcnow())
        epoch = version.epoch
        horizon_end = datetime.fromisoformat(version.kpis["horizon_end"])
        result.gantt_html = render_gantt(
            title=f"labq - {lab.name}",
            subtitle=(
                f"schedule version {version.id}, published {version.published_at:%Y-%m-%d %H:%M} "
                f"UTC; times in {lab.timezone}; references only"
            ),
            timezone=lab.timezone,
            start=epoch,
            end=horizon_end,
            rows=rows,
            examiners=[(e.external_ref, e.display_name) for e in examiners],
            workstations=[(w.external_ref, w.name) for w in workstations],
            summary=gantt_summary(version.kpis),
        )
    return result


def agenda(
    rows: list[views.PlacedJob], tz: ZoneInfo, days: int
) -> dict[str, dict[date, list[AgendaItem]]]:
    """Each examiner's attended work on their next ``days`` working days, in local time."""
    by_examiner: dict[str, dict[date, list[AgendaItem]]] = {}
    for r in rows:
        if r.examiner is None:
            continue
        start = r.starts_at.astimezone(tz)
        end = (r.starts_at + timedelta(minutes=r.attended_minutes)).astimezone(tz)
        day_map = by_examiner.setdefault(r.examiner, {})
        if start.date() not in day_map and len(day_map) >= days:
            continue
        day_map.setdefault(start.date(), []).append(
            AgendaItem(
                start=f"{start:%H:%M}",
                end=f"{end:%H:%M}",
                job=r.job,
                stage=r.stage,
                priority=r.priority,
                workstation=r.workstation,
                exposure_minutes=r.exposure_minutes,
            )
        )
    return by_examiner
