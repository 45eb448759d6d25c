"""Small labs for the continuous-planning tests, built through the domain services."""

from __future__ import annotations

from datetime import datetime, timedelta

from lab_builders import (
    ACTOR,
    MONDAY,
    make_case,
    make_device,
    make_examiner,
    make_lab,
    make_workstation,
    phone_chain,
)
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from models import Assignment, Lab, ScheduleVersion, SolveRun
from scheduler.db import session_scope
from scheduler.planning.publish import current_version
from scheduler.planning.runs import queue_run
from scheduler.services.labs import get_lab
from scheduler.worker import run_to_completion


def build_lab(session: Session, code: str, *, cases: int = 4, **settings) -> Lab:
    """Two examiners, one UFED, ``cases`` P4 cases of acquire -> process -> review."""
    lab = make_lab(session, code, **settings)
    make_examiner(session, lab, "E1")
    make_examiner(session, lab, "E2")
    make_workstation(session, lab, "U1")
    for n in range(cases):
        add_case(session, lab, f"C{n + 1}", received_at=MONDAY - timedelta(days=n + 1))
    return lab


def add_case(
    session: Session, lab: Lab, ref: str, *, priority: str = "P4", received_at: datetime = MONDAY
) -> None:
    case = make_case(session, lab, ref, priority=priority, received_at=received_at)
    phone_chain(session, make_device(session, case))


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
        ).run.id
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
