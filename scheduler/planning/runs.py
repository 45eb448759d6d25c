"""Solve runs as a service: queue, read and cancel. Never solves: a worker executes runs."""

from __future__ import annotations

from typing import Any, cast

from sqlalchemy import CursorResult, Result, select, update
from sqlalchemy.orm import Session

from models import Lab, PriorityLevel, SolveRun
from models.base import utcnow
from models.schedule import RUN_MODES
from scheduler.errors import Conflict, Invalid, NotFound
from scheduler.services import audit
from scheduler.services.integrity import flush

FINISHED = ("succeeded", "failed", "cancelled")
REPAIR_TIME_LIMIT_SECONDS = 4
"""Solver seconds of a triggered repair run. A medium lab (30 examiners, 2,200 jobs) also spends
about 1.5 s loading, 1.5 s beyond the limit in construction and verification, and 1.5 s storing
and publishing: 4 s keeps a new P1 case within the 10 s target (DESIGN.md §6)."""


def rows_changed(result: Result[Any]) -> int:
    """Rows an UPDATE matched (the compare-and-set outcome)."""
    return cast(CursorResult[Any], result).rowcount


def queue_run(
    session: Session,
    lab: Lab,
    *,
    actor: str,
    mode: str = "full",
    auto_publish: bool = False,
    time_limit_seconds: int | None = None,
    reason: str | None = None,
) -> SolveRun:
    """Queue a solve run of ``lab``; a worker claims it. Preview runs are never published."""
    if mode not in RUN_MODES:
        raise Invalid(f"mode must be one of {', '.join(RUN_MODES)}, got {mode!r}", field="mode")
    if mode == "preview" and auto_publish:
        raise Invalid("a preview run is never published: auto_publish must be false", field="mode")
    limit = time_limit_seconds if time_limit_seconds is not None else lab.solve_time_limit_seconds
    if not 1 <= limit <= 3600:
        raise Invalid("time_limit_seconds must be between 1 and 3600", field="time_limit_seconds")
    run = SolveRun(
        lab_id=lab.id,
        mode=mode,
        status="queued",
        auto_publish=auto_publish,
        time_limit_seconds=limit,
        requested_by=actor[:64],
        reason=reason[:200] if reason else None,
    )
    session.add(run)
    flush(session)
    audit.record(
        session,
        actor=actor,
        action="solve_run.queue",
        entity_type="solve_run",
        entity_id=run.id,
        lab_id=lab.id,
        after=audit.state_of(run),
    )
    return run


def request_repair(
    session: Session,
    lab: Lab,
    *,
    actor: str,
    reason: str,
    level: PriorityLevel | None = None,
    auto_publish: bool = False,
) -> SolveRun:
    """Queue a repair run after an escalation or an absence.

    It is auto-published if ``auto_publish`` is set or the level says so. A repair run already
    waiting in the queue is reused (it will see the latest data anyway); it is switched to
    auto-publish, audited, if this request asks for that.
    """
    waiting = session.scalar(
        select(SolveRun)
        .where(SolveRun.lab_id == lab.id, SolveRun.status == "queued", SolveRun.mode == "repair")
        .order_by(SolveRun.id)
    )
    auto_publish = auto_publish or bool(level is not None and level.auto_publish_repair)
    if waiting is not None:
        if auto_publish and not waiting.auto_publish:
            before = audit.state_of(waiting)
            waiting.auto_publish = True
            flush(session)
            audit.record(
                session,
                actor=actor,
                action="solve_run.auto_publish",
                entity_type="solve_run",
                entity_id=waiting.id,
                lab_id=lab.id,
                before=before,
                after=audit.state_of(waiting),
            )
        return waiting
    return queue_run(
        session,
        lab,
        actor=actor,
        mode="repair",
        auto_publish=auto_publish,
        time_limit_seconds=min(lab.solve_time_limit_seconds, REPAIR_TIME_LIMIT_SECONDS),
        reason=reason,
    )


def get_run(session: Session, lab: Lab, run_id: int) -> SolveRun:
    run = session.get(SolveRun, run_id)
    if run is None or run.lab_id != lab.id:
        raise NotFound(f"solve run {run_id} does not exist in lab {lab.code!r}")
    return run


def list_runs(
    session: Session, lab: Lab, *, limit: int = 50, before_id: int | None = None
) -> list[SolveRun]:
    """The lab's runs, newest first."""
    query = select(SolveRun).where(SolveRun.lab_id == lab.id)
    if before_id is not None:
        query = query.where(SolveRun.id < before_id)
    return list(session.scalars(query.order_by(SolveRun.id.desc()).limit(limit)))


def cancel_run(session: Session, run: SolveRun, *, actor: str) -> SolveRun:
    """Cancel a queued run at once; ask the worker running one to stop."""
    if run.status in FINISHED:
        raise Conflict(f"solve run {run.id} has already {run.status}")
    before = audit.state_of(run)
    # Compare-and-set: a worker may claim the run between our read and this write.
    taken = session.execute(
        update(SolveRun)
        .where(SolveRun.id == run.id, SolveRun.status == "queued")
        .values(status="cancelled", finished_at=utcnow(), cancel_requested=True)
        .execution_options(synchronize_session=False)
    )
    if rows_changed(taken) != 1:
        session.execute(
            update(SolveRun)
            .where(SolveRun.id == run.id, SolveRun.status == "running")
            .values(cancel_requested=True)
            .execution_options(synchronize_session=False)
        )
    session.refresh(run)
    audit.record(
        session,
        actor=actor,
        action="solve_run.cancel",
        entity_type="solve_run",
        entity_id=run.id,
        lab_id=run.lab_id,
        before=before,
        after=audit.state_of(run),
    )
    return run
