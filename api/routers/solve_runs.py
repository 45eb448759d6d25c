"""Solve runs: queue one (202, never solved inside the request), follow it, cancel it.

A worker (``labq worker`` or the one embedded in ``labq serve``) claims queued runs; a lab never has
two running at once, and at most one queued per mode: a request while one waits joins it. A run's
``time_limit_seconds`` may not exceed the lab's ``max_time_limit_seconds`` (422 naming the cap).
``mode``: ``full`` re-plans everything, ``repair`` keeps unchanged published work beyond a short
window, ``preview`` is solved and stored but never published.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Response
from pydantic import BaseModel, Field

from api.deps import ManageCtx, ReadCtx, lab_path
from api.pagination import Page, PageDep, id_path, paginate
from api.problems import problems
from api.run_links import run_path
from api.schemas.common import Body, Flag, Instant, IntegerOnly, Note, utc_instants
from models import SolveRun, SolveRunAttempt
from models.base import utcnow
from scheduler.core.snapshot import snapshot_to_json
from scheduler.planning import runs, version_reads
from scheduler.planning.loader import load_snapshot

router = APIRouter(prefix="/labs/{lab}", dependencies=[Depends(lab_path)], tags=["solve runs"])

RunId = Annotated[int, id_path("solve run")]


class Mode(StrEnum):
    full = "full"
    repair = "repair"
    preview = "preview"


class SolveRunIn(Body):
    mode: Mode = Field(default=Mode.full, description="full, repair or preview.")
    auto_publish: Flag = Field(
        default=False, description="Publish the result on success (never for a preview)."
    )
    time_limit_seconds: Annotated[
        int | None,
        Field(ge=1, le=3600, description="Seconds for the solve (default: the lab's setting)."),
        IntegerOnly,
    ] = None
    reason: Note | None = None


class AttemptOut(BaseModel):
    """One claim of the run by a worker and how it ended (``outcome`` null while it runs)."""

    attempt: int
    worker_id: str
    started_at: Instant
    ended_at: Instant | None
    outcome: str | None = Field(description="succeeded, failed, cancelled or stale.")
    reason: str | None = Field(description="Why the attempt ended, when it did not succeed.")


class SolveRunOut(BaseModel):
    id: int
    lab: str
    mode: str
    status: str = Field(description="queued, running, succeeded, failed or cancelled.")
    auto_publish: bool
    time_limit_seconds: int
    progress: float = Field(description="Fraction of the time limit used (0..1).")
    attempts: int
    requested_by: str
    reason: str | None
    worker_id: str | None
    created_at: Instant
    started_at: Instant | None
    heartbeat_at: Instant | None
    finished_at: Instant | None
    cancel_requested: bool
    objective: int | None
    bound: int | None
    error: str | None
    schedule_version: int | None = Field(description="The version this run produced, if any.")
    history: list[AttemptOut] = Field(
        description="Each attempt, first to last: a re-claimed run keeps why earlier ones ended."
    )


class QueuedRunOut(SolveRunOut):
    joined: bool = Field(
        description="True when the request joined the run of this mode already waiting."
    )


def run_out(
    ctx_lab: str,
    run: SolveRun,
    version_id: int | None,
    history: list[SolveRunAttempt] | None = None,
) -> SolveRunOut:
    return SolveRunOut(
        id=run.id,
        lab=ctx_lab,
        mode=run.mode,
        status=run.status,
        auto_publish=run.auto_publish,
        time_limit_seconds=run.time_limit_seconds,
        progress=run.progress,
        attempts=run.attempts,
        requested_by=run.requested_by,
        reason=run.reason,
        worker_id=run.worker_id,
        created_at=run.created_at,
        started_at=run.started_at,
        heartbeat_at=run.heartbeat_at,
        finished_at=run.finished_at,
        cancel_requested=run.cancel_requested,
        objective=run.objective,
        bound=run.bound,
        error=run.error,
        schedule_version=version_id,
        history=[AttemptOut.model_validate(a, from_attributes=True) for a in history or ()],
    )


@router.post("/solve-runs", status_code=202, responses=problems(404, 422))
def queue_solve_run(body: SolveRunIn, ctx: ManageCtx, response: Response) -> QueuedRunOut:
    """Queue a solve run; a worker executes it. Poll the run (``Location``) for its progress.

    If a run of this mode is already waiting, the request joins it (``joined: true``, the same
    run): it is switched to auto-publish or given the longer time limit if this request asks for
    that. A time limit above the lab's ``max_time_limit_seconds`` is refused (422).
    """
    queued = runs.queue_run(
        ctx.session,
        ctx.lab,
        actor=ctx.actor,
        mode=body.mode.value,
        auto_publish=body.auto_publish,
        time_limit_seconds=body.time_limit_seconds,
        reason=body.reason,
    )
    run = queued.run
    response.headers["Location"] = run_path(ctx.lab.code, run.id)
    history = runs.attempts_of(ctx.session, [run.id])[run.id]
    out = run_out(ctx.lab.code, run, None, history)
    return QueuedRunOut(**out.model_dump(), joined=queued.joined)


@router.get("/solve-runs", responses=problems(404, 422))
def list_solve_runs(ctx: ReadCtx, page: PageDep) -> Page[SolveRunOut]:
    rows, cursors = paginate(ctx.session, runs.runs_of(ctx.lab), page)
    ids = [r.id for r in rows]
    versions = version_reads.versions_made_by(ctx.session, ids)
    history = runs.attempts_of(ctx.session, ids)
    return Page[SolveRunOut](
        items=[run_out(ctx.lab.code, r, versions.get(r.id), history[r.id]) for r in rows],
        **cursors._asdict(),
    )


@router.get("/solve-runs/{run_id:segment}", responses=problems(404, 422))
def get_solve_run(run_id: RunId, ctx: ReadCtx) -> SolveRunOut:
    """A run's status, progress, timings, objective and bound, or its error."""
    run = runs.get_run(ctx.session, ctx.lab, run_id)
    version = version_reads.versions_made_by(ctx.session, [run.id]).get(run.id)
    return run_out(ctx.lab.code, run, version, runs.attempts_of(ctx.session, [run.id])[run.id])


@router.post("/solve-runs/{run_id}:cancel", responses=problems(404, 409, 422))
def cancel_solve_run(run_id: RunId, ctx: ManageCtx) -> SolveRunOut:
    """Cancel a queued run at once, or ask the worker to stop a running one (it stops within
    about a second: poll the run until its status is ``cancelled``)."""
    run = runs.cancel_run(ctx.session, runs.get_run(ctx.session, ctx.lab, run_id), actor=ctx.actor)
    return run_out(ctx.lab.code, run, None, runs.attempts_of(ctx.session, [run.id])[run.id])


@router.get("/snapshot", responses=problems(404, 422))
def export_snapshot(ctx: ReadCtx) -> dict[str, Any]:
    """The ``labq.snapshot/1`` document a full solve would start from now (for offline tools)."""
    snapshot, _ = load_snapshot(ctx.session, ctx.lab, utcnow())
    document: dict[str, Any] = utc_instants(snapshot_to_json(snapshot))
    return document
