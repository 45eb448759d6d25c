"""Solve runs as a service: queue, read and cancel. Never solves: a worker executes runs."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import CursorResult, Result, exists, select, update
from sqlalchemy.orm import Session

from models import Lab, PriorityLevel, SolveRun, SolveRunAttempt, WhatIf
from models.base import utcnow
from models.schedule import RUN_MODES
from scheduler.errors import Conflict, Invalid, NotFound
from scheduler.planning.events import announce_run_failed
from scheduler.services import audit
from scheduler.services.integrity import flush
from scheduler.services.labs import lock_lab
from scheduler.services.listing import Listing, by_id

FINISHED = ("succeeded", "failed", "cancelled")
REPAIR_TIME_LIMIT_SECONDS = 4
"""Solver seconds of a triggered repair run. A medium lab (30 examiners, 2,200 jobs) also spends
about 1.5 s loading, 1.5 s beyond the limit in construction and verification, and 1.5 s storing
and publishing: 4 s keeps a new P1 case within the 10 s target (docs/architecture.md §10)."""


def rows_changed(result: Result[Any]) -> int:
    """Rows an UPDATE matched (the compare-and-set outcome)."""
    return cast(CursorResult[Any], result).rowcount


@dataclass(frozen=True)
class Queued:
    """The run a request is answered with: a new one, or the one already waiting it joined."""

    run: SolveRun
    joined: bool


QUEUED_KEY = "labq.queued_runs"


def queued_in(session: Session) -> SolveRun | None:
    """The last run queued or joined in this unit of work (a route answers with it)."""
    found: list[SolveRun] = session.info.get(QUEUED_KEY, [])
    return found[-1] if found else None


def check_time_limit(lab: Lab, seconds: int) -> int:
    """Refuse a time limit outside 1 .. the lab's cap (``max_time_limit_seconds``)."""
    cap = lab.max_time_limit_seconds
    if not 1 <= seconds <= cap:
        raise Invalid(
            f"time_limit_seconds must be between 1 and the lab's cap of {cap} "
            f"(max_time_limit_seconds), got {seconds}",
            field="time_limit_seconds",
        )
    return seconds


def queue_run(
    session: Session,
    lab: Lab,
    *,
    actor: str,
    mode: str = "full",
    auto_publish: bool = False,
    time_limit_seconds: int | None = None,
    reason: str | None = None,
    join: bool = True,
) -> Queued:
    """Queue a solve run of ``lab``, or join the run of the same mode already waiting.

    A lab has at most one queued run per mode: a waiting run loads the latest data when a worker
    claims it, so a second one would solve the same problem again. Joining never weakens the
    waiting run: it is switched to auto-publish, or given the longer time limit, if this request
    asks for that (audited). A run that is already solving loaded its data before this request,
    so a new run is queued behind it. (A run re-queued after its worker died may wait beside a
    newer one of its mode; requests then join the older.) Preview runs are never published.
    ``join=False`` always queues a new run (a what-if solves its own changed lab), and no request
    ever joins a what-if's run.
    """
    if mode not in RUN_MODES:
        raise Invalid(f"mode must be one of {', '.join(RUN_MODES)}, got {mode!r}", field="mode")
    if mode == "preview" and auto_publish:
        raise Invalid("a preview run is never published: auto_publish must be false", field="mode")
    if time_limit_seconds is None:
        limit = min(lab.solve_time_limit_seconds, lab.max_time_limit_seconds)
    else:
        limit = check_time_limit(lab, time_limit_seconds)
    _lock_lab_queue(session, lab)
    waiting = None
    if join:
        waiting = session.scalar(
            select(SolveRun)
            .where(
                SolveRun.lab_id == lab.id,
                SolveRun.status == "queued",
                SolveRun.mode == mode,
                ~exists().where(WhatIf.solve_run_id == SolveRun.id),
            )
            .order_by(SolveRun.id)
            .limit(1)
        )
    if waiting is not None:
        _join(session, waiting, actor=actor, auto_publish=auto_publish, time_limit=limit)
        return _noted(session, Queued(waiting, joined=True))
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
    return _noted(session, Queued(run, joined=False))


def _lock_lab_queue(session: Session, lab: Lab) -> None:
    """Serialise queueing per lab, so two requests never both find no waiting run.

    PostgreSQL locks the lab row until the request commits; SQLite writers are serialised by its
    database lock already.
    """
    lock_lab(session, lab.code)


def _join(
    session: Session, waiting: SolveRun, *, actor: str, auto_publish: bool, time_limit: int
) -> None:
    if auto_publish and not waiting.auto_publish:
        _upgrade(session, waiting, actor, "auto_publish", auto_publish=True)
    if time_limit > waiting.time_limit_seconds:
        _upgrade(session, waiting, actor, "time_limit", time_limit_seconds=time_limit)


def _upgrade(session: Session, run: SolveRun, actor: str, what: str, **values: object) -> None:
    before = audit.state_of(run)
    for key, value in values.items():
        setattr(run, key, value)
    flush(session)
    audit.record(
        session,
        actor=actor,
        action=f"solve_run.{what}",
        entity_type="solve_run",
        entity_id=run.id,
        lab_id=run.lab_id,
        before=before,
        after=audit.state_of(run),
    )


def _noted(session: Session, queued: Queued) -> Queued:
    session.info.setdefault(QUEUED_KEY, []).append(queued.run)
    return queued


def request_repair(
    session: Session,
    lab: Lab,
    *,
    actor: str,
    reason: str,
    level: PriorityLevel | None = None,
    auto_publish: bool = False,
) -> SolveRun:
    """Queue (or join) a repair run after an escalation or an absence.

    It is auto-published if ``auto_publish`` is set or the level says so; see `queue_run` for how
    a repair run already waiting is joined.
    """
    auto_publish = auto_publish or bool(level is not None and level.auto_publish_repair)
    return queue_run(
        session,
        lab,
        actor=actor,
        mode="repair",
        auto_publish=auto_publish,
        time_limit_seconds=min(
            lab.solve_time_limit_seconds, lab.max_time_limit_seconds, REPAIR_TIME_LIMIT_SECONDS
        ),
        reason=reason,
    ).run


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


def runs_of(lab: Lab) -> Listing:
    """The lab's runs, oldest first (the API's list)."""
    return by_id(select(SolveRun).where(SolveRun.lab_id == lab.id))


def cancel_run(session: Session, run: SolveRun, *, actor: str) -> SolveRun:
    """Cancel a queued run at once; ask the worker running one to stop (it polls the request
    about twice a second and its solve stops at once, see `scheduler.worker`)."""
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
    if rows_changed(taken) == 1:  # it never started: it ends here
        run_ended(session, run_id=run.id, lab_id=run.lab_id, status="cancelled", actor=actor)
    return run


# ---- the life of a claimed run --------------------------------------------------------------


def begin_attempt(
    session: Session, run_id: int, attempt: int, worker_id: str, at: datetime
) -> None:
    """Record that ``worker_id`` claimed ``run_id`` for its ``attempt``-th attempt."""
    session.add(
        SolveRunAttempt(solve_run_id=run_id, attempt=attempt, worker_id=worker_id, started_at=at)
    )
    flush(session)


def end_attempt(
    session: Session,
    run_id: int,
    attempt: int,
    outcome: str,
    reason: str | None,
    at: datetime,
) -> None:
    """Record how an attempt ended; an attempt already closed keeps its first outcome."""
    session.execute(
        update(SolveRunAttempt)
        .where(
            SolveRunAttempt.solve_run_id == run_id,
            SolveRunAttempt.attempt == attempt,
            SolveRunAttempt.ended_at.is_(None),
        )
        .values(ended_at=at, outcome=outcome, reason=reason)
        .execution_options(synchronize_session=False)
    )


def attempts_of(session: Session, run_ids: list[int]) -> dict[int, list[SolveRunAttempt]]:
    """The attempts of each run, first to last."""
    found: dict[int, list[SolveRunAttempt]] = {run_id: [] for run_id in run_ids}
    if run_ids:
        for row in session.scalars(
            select(SolveRunAttempt)
            .where(SolveRunAttempt.solve_run_id.in_(run_ids))
            .order_by(SolveRunAttempt.solve_run_id, SolveRunAttempt.attempt)
        ):
            found[row.solve_run_id].append(row)
    return found


def run_ended(
    session: Session,
    *,
    run_id: int,
    lab_id: int,
    status: str,
    actor: str,
    error: str | None = None,
    version_id: int | None = None,
) -> None:
    """Announce, in the transaction that ended it, that a run succeeded, failed or was cancelled.

    Every end of a run passes through here (a worker's result or error, a cancel, the stale-run
    sweep giving up), so whatever must follow a run's end (its audit event; telling outside
    systems that a run failed) has this one place.
    """
    after: dict[str, object] = {"status": status, "error": error}
    if version_id is not None:
        after["version"] = version_id
    audit.record(
        session,
        actor=actor[:64],
        action=f"solve_run.{status}",
        entity_type="solve_run",
        entity_id=run_id,
        lab_id=lab_id,
        after=after,
    )
    if status == "failed":
        announce_run_failed(session, run_id)
