"""Devices (exhibits) and jobs (stages of work): upserts, reads, pins and status changes."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Response
from sqlalchemy.orm import Session

from api.deps import REF_PATTERN, CaseReadCtx, CaseWriteCtx, Context, ManageCtx, lab_path
from api.etag import (
    IfMatch,
    IfNoneMatch,
    check_if_match,
    check_if_none_match,
    etag_of,
    not_modified,
    set_etag,
)
from api.job_address import JobAt, job_route
from api.pagination import Page, PageDep, paginate
from api.problems import problems
from api.schemas.cases import DeviceIn, DeviceOut, JobIn, JobOut, JobStatus, PinIn, PinOut
from api.schemas.common import QueryText
from models import Case, Device, Job, Lab
from models.base import utcnow
from scheduler.planning import progress
from scheduler.planning.publish import current_version
from scheduler.services import casework, job_store
from scheduler.services.resources import get_examiner, get_workstation

router = APIRouter(prefix="/labs/{lab}", dependencies=[Depends(lab_path)])

RefPath = Annotated[str, Path(min_length=1, max_length=64, pattern=REF_PATTERN)]
NOT_MODIFIED: dict[int | str, dict[str, Any]] = {304: {"description": "Not modified."}}


def job_views(session: Session, lab: Lab, jobs: Sequence[Job]) -> list[JobOut]:
    """Shape jobs for output with a fixed number of queries, whatever their number."""
    if not jobs:
        return []
    shown = job_store.shown(session, jobs)
    ids = [j.id for j in jobs]
    overdue = progress.overdue_job_ids(session, lab, current_version(session, lab), ids, utcnow())
    out = []
    for job in jobs:
        view = shown[job.id]
        pin = None
        if job.pin_start_at is not None:
            pin = PinOut(
                examiner=view.pin_examiner, workstation=view.pin_workstation, start=job.pin_start_at
            )
        out.append(
            JobOut(
                id=job.id,
                external_ref=job.external_ref,
                case=view.case,
                device=view.device,
                stage=job.stage,
                status=job.status,
                attended_minutes=job.attended_minutes,
                machine_minutes=job.machine_minutes,
                exposure_minutes=job.exposure_minutes,
                severity=job.severity,
                skills=view.skills,
                capabilities=view.capabilities,
                pools=view.pools,
                after=view.after,
                allowed_examiners=view.allowed_examiners,
                workstation_minutes=view.workstation_minutes,
                pin=pin,
                started_at=job.started_at,
                finished_at=job.finished_at,
                overdue=job.id in overdue,
                updated_at=job.updated_at,
            )
        )
    return out


def job_view(session: Session, lab: Lab, job: Job) -> JobOut:
    return job_views(session, lab, [job])[0]


def device_out(session: Session, lab: Lab, case: Case, device: Device) -> DeviceOut:
    return DeviceOut(
        external_ref=device.external_ref,
        case=case.external_ref,
        kind=device.kind,
        arrived_at=device.arrived_at,
        size_gb=device.size_gb,
        locked=device.locked,
        jobs=job_views(session, lab, casework.jobs_on(session, device)),
        updated_at=device.updated_at,
    )


# --- devices -------------------------------------------------------------------------------------


@router.get("/cases/{ref}/devices", tags=["devices"], responses=problems(404, 422))
def list_devices(ref: RefPath, ctx: CaseReadCtx, page: PageDep) -> Page[DeviceOut]:
    case = casework.get_case(ctx.session, ctx.lab, ref)
    rows, cursors = paginate(ctx.session, casework.devices_of(case), page)
    return Page[DeviceOut](
        items=[device_out(ctx.session, ctx.lab, case, d) for d in rows], **cursors._asdict()
    )


@router.get("/cases/{ref}/devices/{device}", tags=["devices"], responses=problems(404, 422))
def get_device(ref: RefPath, device: RefPath, ctx: CaseReadCtx) -> DeviceOut:
    case = casework.get_case(ctx.session, ctx.lab, ref)
    return device_out(ctx.session, ctx.lab, case, casework.get_device(ctx.session, case, device))


@router.put(
    "/cases/{ref}/devices/{device}", tags=["devices"], responses=problems(404, 422, creates=True)
)
def put_device(
    ref: RefPath, device: RefPath, body: DeviceIn, ctx: CaseWriteCtx, response: Response
) -> DeviceOut:
    """Create or replace a device (exhibit) of a case."""
    case = casework.get_case(ctx.session, ctx.lab, ref)
    existed = casework.find_device(ctx.session, case, device)
    stored = casework.upsert_device(
        ctx.session, case, actor=ctx.actor, external_ref=device, **body.model_dump()
    )
    if existed is None:
        response.status_code = 201
    return device_out(ctx.session, ctx.lab, case, stored)


# --- jobs ----------------------------------------------------------------------------------------


@router.get("/jobs", tags=["jobs"], responses=problems(404, 422))
def list_jobs(
    ctx: CaseReadCtx,
    page: PageDep,
    status: Annotated[JobStatus | None, Query()] = None,
    case: Annotated[QueryText | None, Query(max_length=64, description="A case reference.")] = None,
) -> Page[JobOut]:
    listing = casework.jobs_of(ctx.lab, status=status, case_ref=case)
    rows, cursors = paginate(ctx.session, listing, page)
    return Page[JobOut](items=job_views(ctx.session, ctx.lab, rows), **cursors._asdict())


def get_job(
    ctx: CaseReadCtx, at: JobAt, response: Response, if_none_match: IfNoneMatch = None
) -> JobOut:
    out = job_view(ctx.session, ctx.lab, at.find(ctx))
    tag = etag_of(out)
    if not_modified(if_none_match, tag):
        return Response(status_code=304, headers={"ETag": tag})  # type: ignore[return-value]
    response.headers["ETag"] = tag
    return out


job_route(
    router,
    "GET",
    "",
    get_job,
    name="get_job",
    segment=True,
    tags=["jobs"],
    responses={**problems(404, 422), **NOT_MODIFIED},
)


@router.put(
    "/cases/{ref}/devices/{device}/jobs/{job:segment}",  # stops at ":", beside the actions
    tags=["jobs"],
    responses=problems(404, 409, 412, 422, creates=True),
)
def put_job(
    ref: RefPath,
    device: RefPath,
    job: RefPath,
    body: JobIn,
    ctx: CaseWriteCtx,
    response: Response,
    if_match: IfMatch = None,
    if_none_match: IfNoneMatch = None,
) -> JobOut:
    """Create or replace a job (effort, requirements, predecessors within the case)."""
    case = casework.get_case(ctx.session, ctx.lab, ref)
    stored_device = casework.get_device(ctx.session, case, device)
    existing = casework.find_job(ctx.session, case, device, job)
    current = etag_of(job_view(ctx.session, ctx.lab, existing)) if existing is not None else None
    check_if_match(if_match, current)
    check_if_none_match(if_none_match, current)
    after = casework.resolve_predecessors(ctx.session, case, device, body.after)
    stored = casework.upsert_job(
        ctx.session,
        stored_device,
        actor=ctx.actor,
        external_ref=job,
        after=after,
        **body.model_dump(exclude={"after"}),
    )
    if existing is None:
        response.status_code = 201
    out = job_view(ctx.session, ctx.lab, stored)
    set_etag(response, out)
    return out


def _guarded(ctx: Context, job_id: int, if_match: str | None) -> Job:
    job = casework.get_job(ctx.session, ctx.lab, job_id)
    check_if_match(if_match, etag_of(job_view(ctx.session, ctx.lab, job)))
    return job


def _answer(ctx: Context, job: Job, response: Response) -> JobOut:
    out = job_view(ctx.session, ctx.lab, job)
    set_etag(response, out)
    return out


def pin_job(
    ctx: ManageCtx, at: JobAt, body: PinIn, response: Response, if_match: IfMatch = None
) -> JobOut:
    """Fix the job's start, examiner and workstation: every solve keeps them exactly."""
    job = _guarded(ctx, at.id_in(ctx), if_match)
    examiner = get_examiner(ctx.session, ctx.lab, body.examiner) if body.examiner else None
    workstation = (
        get_workstation(ctx.session, ctx.lab, body.workstation) if body.workstation else None
    )
    casework.pin_job(
        ctx.session,
        job,
        actor=ctx.actor,
        start=body.start,
        examiner=examiner,
        workstation=workstation,
    )
    return _answer(ctx, job, response)


def unpin_job(ctx: ManageCtx, at: JobAt, response: Response, if_match: IfMatch = None) -> JobOut:
    """Release the pin: the solver may move the job again."""
    job = _guarded(ctx, at.id_in(ctx), if_match)
    casework.unpin_job(ctx.session, job, actor=ctx.actor)
    return _answer(ctx, job, response)


job_route(
    router,
    "POST",
    ":pin",
    pin_job,
    name="pin_job",
    tags=["jobs"],
    responses=problems(404, 409, 412, 422),
)
job_route(
    router,
    "POST",
    ":unpin",
    unpin_job,
    name="unpin_job",
    tags=["jobs"],
    responses=problems(404, 412, 422),
)


def _status_route(action: str, status: str, summary: str) -> None:
    def change_status(
        ctx: CaseWriteCtx, at: JobAt, response: Response, if_match: IfMatch = None
    ) -> JobOut:
        job = _guarded(ctx, at.id_in(ctx), if_match)
        casework.set_job_status(ctx.session, job, actor=ctx.actor, status=status)
        return _answer(ctx, job, response)

    change_status.__doc__ = summary
    job_route(
        router,
        "POST",
        f":{action}",
        change_status,
        name=f"{action}_job",
        tags=["jobs"],
        responses=problems(404, 409, 412, 422),
    )


_status_route("start", "in_progress", "The job has started (it is kept where it is).")
_status_route("done", "done", "The job is finished; its successors may start.")
_status_route("hold", "on_hold", "Put the job on hold: it is not planned until resumed.")
_status_route("resume", "pending", "Take a held job back into planning.")
_status_route("cancel", "cancelled", "The job will not be done.")
