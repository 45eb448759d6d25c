"""Solve runs: queue one (202, never solved inside the request), follow it, cancel it.

A worker (``labq worker`` or the one embedded in ``labq serve``) claims queued runs; a lab never has
two running at once. ``mode``: ``full`` re-plans everything, ``repair`` keeps unchanged published
work beyond a short window, ``preview`` is solved and stored but never published.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Response
from pydantic import BaseModel, Field
from sqlalchemy import select

from api.deps import ManageCtx, ReadCtx, lab_path
from api.pagination import Page, PageDep, id_path, paginate
from api.problems import problems
from api.schemas.common import Body, Flag, IntegerOnly, Note
from models import ScheduleVersion, SolveRun
from models.base import utcnow
from scheduler.core.snapshot import snapshot_to_json
from scheduler.planning import runs
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
    created_at: datetime
    started_at: datetime | None
    heartbeat_at: datetime | None
    finished_at: datetime | None
    cancel_requested: bool
    objective: int | None
    bound: int | None
    error: str | None
    schedule_version: int | None = Field(description="The version this run produced, if any.")


def run_out(ctx_lab: str, run: SolveRun, version_id: int | None) -> SolveRunOut:
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
    )


def _versions_of(session: Any, run_ids: list[int]) -> dict[int, int]:
    if not run_ids:
        return {}
    return {
        run_id: version_id
        for version_id, run_id in session.execute(
            select(ScheduleVersion.id, ScheduleVersion.solve_run_id).where(
                ScheduleVersion.solve_run_id.in_(run_ids)
            )
        )
    }


@router.post("/solve-runs", status_code=202, responses=problems(404, 422))
def queue_solve_run(body: SolveRunIn, ctx: ManageCtx, response: Response) -> SolveRunOut:
    """Queue a solve run; a worker executes it. Poll the run (``Location``) for its progress."""
    run = runs.queue_run(
        ctx.session,
        ctx.lab,
        actor=ctx.actor,
        mode=body.mode.value,
        auto_publish=body.auto_publish,
        time_limit_seconds=body.time_limit_seconds,
        reason=body.reason,
    )
    response.headers["Location"] = f"/labs/{ctx.lab.code}/solve-runs/{run.id}"
    return run_out(ctx.lab.code, run, None)


@router.get("/solve-runs", responses=problems(404, 422))
def list_solve_runs(ctx: ReadCtx, page: PageDep) -> Page[SolveRunOut]:
    rows, cursor = paginate(
        ctx.session, select(SolveRun).where(SolveRun.lab_id == ctx.lab.id), SolveRun.id, page
    )
    versions = _versions_of(ctx.session, [r.id for r in rows])
    return Page[SolveRunOut](
        items=[run_out(ctx.lab.code, r, versions.get(r.id)) for r in rows], next_cursor=cursor
    )


@router.get("/solve-runs/{run_id:segment}", responses=problems(404, 422))
def get_solve_run(run_id: RunId, ctx: ReadCtx) -> SolveRunOut:
    """A run's status, progress, timings, objective and bound, or its error."""
    run = runs.get_run(ctx.session, ctx.lab, run_id)
    return run_out(ctx.lab.code, run, _versions_of(ctx.session, [run.id]).get(run.id))


@router.post("/solve-runs/{run_id}:cancel", responses=problems(404, 409, 422))
def cancel_solve_run(run_id: RunId, ctx: ManageCtx) -> SolveRunOut:
    """Cancel a queued run at once, or ask the worker to stop a running one."""
    run = runs.cancel_run(ctx.session, runs.get_run(ctx.session, ctx.lab, run_id), actor=ctx.actor)
    return run_out(ctx.lab.code, run, None)


@router.get("/snapshot", responses=problems(404, 422))
def export_snapshot(ctx: ReadCtx) -> dict[str, Any]:
    """The ``labq.snapshot/1`` document a full solve would start from now (for offline tools)."""
    snapshot, _ = load_snapshot(ctx.session, ctx.lab, utcnow())
    return snapshot_to_json(snapshot)
