"""Small labs for the continuous-planning tests, built through the domain services."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from models import Assignment, Lab, ScheduleVersion, SolveRun
from scheduler.db import session_scope
from scheduler.planning.publish import current_version
from scheduler.planning.runs import queue_run
from scheduler.services import casework, labs, resources
from scheduler.services.labs import get_lab
from scheduler.worker import run_to_completion

# A Monday in winter, 08:07 in New York: the planning time of every solve here.
MONDAY = datetime(2026, 11, 30, 13, 7, tzinfo=UTC)
ACTOR = "test"
SHIFTS = [(day, time(8), time(16, 30)) for day in range(5)]


def build_lab(session: Session, code: str, *, cases: int = 4, **settings) -> Lab:
    """Two examiners, one UFED, ``cases`` P4 cases of acquire -> process -> review."""
    settings.setdefault("planning_horizon_days", 3)
    lab = labs.create_lab(
        session, actor=ACTOR, code=code, name=code, timezone="America/New_York", **settings
    )
    for ref in ("E1", "E2"):
        resources.upsert_examiner(
            session, lab, actor=ACTOR, external_ref=ref, skills=("mobile", "review"), shifts=SHIFTS
        )
    resources.upsert_workstation(
        session, lab, actor=ACTOR, external_ref="U1", capabilities=["ufed"]
    )
    for n in range(cases):
        add_case(session, lab, f"C{n + 1}", received_at=MONDAY - timedelta(days=n + 1))
    return lab


def add_case(
    session: Session, lab: Lab, ref: str, *, priority: str = "P4", received_at: datetime = MONDAY
) -> None:
    case = casework.upsert_case(
        session, lab, actor=ACTOR, external_ref=ref, priority=priority, received_at=received_at
    )
    device = casework.upsert_device(
        session, case, actor=ACTOR, external_ref="D1", kind="phone", arrived_at=received_at
    )
    acquire = casework.upsert_job(
        session,
        device,
        actor=ACTOR,
        external_ref="acquire",
        stage="acquire",
        attended_minutes=60,
        machine_minutes=120,
        skills=["mobile"],
        capabilities=["ufed"],
    )
    process = casework.upsert_job(
        session,
        device,
        actor=ACTOR,
        external_ref="process",
        stage="process",
        machine_minutes=240,
        capabilities=["ufed"],
        after=[acquire],
    )
    casework.upsert_job(
        session,
        device,
        actor=ACTOR,
        external_ref="review",
        stage="review",
        attended_minutes=120,
        exposure_minutes=100,
        severity=1,
        skills=["review"],
        after=[process],
    )


def solve_and_publish(
    engine: Engine, code: str, *, mode: str = "full", policy: str = "cpsat", limit: int = 2
) -> str:
    with session_scope(engine) as session:
        run_id = queue_run(
            session,
            get_lab(session, code),
            actor=ACTOR,
            mode=mode,
            auto_publish=True,
            time_limit_seconds=limit,
        ).id
    return run_to_completion(engine, run_id, "test-worker", policy=policy, now=MONDAY)


def placements(session: Session, version: ScheduleVersion) -> dict[int, tuple]:
    rows = session.scalars(
        select(Assignment).where(Assignment.schedule_version_id == version.id)
    ).all()
    return {a.job_id: (a.examiner_id, a.workstation_id, a.starts_at) for a in rows}


def published(engine: Engine, code: str) -> tuple[int | None, dict[int, tuple]]:
    with session_scope(engine) as session:
        version = current_version(session, get_lab(session, code))
        if version is None:
            return None, {}
        return version.id, placements(session, version)


def queued_runs(session: Session, lab: Lab) -> list[SolveRun]:
    return list(
        session.scalars(
            select(SolveRun)
            .where(SolveRun.lab_id == lab.id, SolveRun.status == "queued")
            .order_by(SolveRun.id)
        )
    )
