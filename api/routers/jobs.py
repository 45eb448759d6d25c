"""Devices (exhibits) and jobs (stages of work): upserts, reads, pins and status changes."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Response
from sqlalchemy import select
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
from models import (
    Case,
    Device,
    Examiner,
    Job,
    JobAllowedExaminer,
    JobCapability,
    JobLicencePool,
    JobPredecessor,
    JobSkill,
    JobWorkstationMinutes,
    Lab,
    LicencePool,
    Workstation,
)
from models.base import utcnow
from scheduler.planning import progress
from scheduler.planning.publish import current_version
from scheduler.services import casework
from scheduler.services.resources import get_examiner, get_workstation

router = APIRouter(prefix="/labs/{lab}", dependencies=[Depends(lab_path)])

RefPath = Annotated[str, Path(min_length=1, max_length=64, pattern=REF_PATTERN)]
NOT_MODIFIED: dict[int | str, dict[str, Any]] = {304: {"description": "Not modified."}}


def job_views(session: Session, jobs: Sequence[Job]) -> list[JobOut]:
    """Shape jobs for output with a fixed number of queries, whatever their number."""
    if not jobs:
        return []
    ids = [j.id for j in jobs]
    place = {
        job_id: (case_ref, device_ref, job_ref)
        for job_id, case_ref, device_ref, job_ref in session.execute(
            select(Job.id, Case.external_ref, Device.external_ref, Job.external_ref)
            .join(Device, Job.device_id == Device.id)
            .join(Case, Device.case_id == Case.id)
            .where(Job.id.in_(ids))
        )
    }
    sets: dict[str, dict[int, list[Any]]] = defaultdict(lambda: defaultdict(list))
    for job_id, skill in session.execute(
        select(JobSkill.job_id, JobSkill.skill).where(JobSkill.job_id.in_(ids))
    ):
        sets["skills"][job_id].append(skill)
    for job_id, cap in session.execute(
        select(JobCapability.job_id, JobCapability.capability).where(JobCapability.job_id.in_(ids))
    ):
        sets["capabilities"][job_id].append(cap)
    for job_id, name in session.execute(
        select(JobLicencePool.job_id, LicencePool.name)
        .join(LicencePool, JobLicencePool.pool_id == LicencePool.id)
        .where(JobLicencePool.job_id.in_(ids))
    ):
        sets["pools"][job_id].append(name)
    for job_id, ref in session.execute(
        select(JobAllowedExaminer.job_id, Examiner.external_ref)
        .join(Examiner, JobAllowedExaminer.examiner_id == Examiner.id)
        .where(JobAllowedExaminer.job_id.in_(ids))
    ):
        sets["allowed_examiners"][job_id].append(ref)
    for job_id, ref, minutes in session.execute(
        select(
            JobWorkstationMinutes.job_id,
            Workstation.external_ref,
            JobWorkstationMinutes.machine_minutes,
        )
        .join(Workstation, JobWorkstationMinutes.workstation_id == Workstation.id)
        .where(JobWorkstationMinutes.job_id.in_(ids))
    ):
        sets["workstation_minutes"][job_id].append((ref, minutes))
    for job_id, device_ref, job_ref in session.execute(
        select(JobPredecessor.job_id, Device.external_ref, Job.external_ref)
        .join(Job, JobPredecessor.predecessor_id == Job.id)
        .join(Device, Job.device_id == Device.id)
        .where(JobPredecessor.job_id.in_(ids))
    ):
        sets["after"][job_id].append(f"{device_ref}/{job_ref}")
    pin_examiners = {j.pin_examiner_id for j in jobs if j.pin_examiner_id}
    pin_workstations = {j.pin_workstation_id for j in jobs if j.pin_workstation_id}
    examiner_refs = dict(
        session.execute(
            select(Examiner.id, Examiner.external_ref).where(Examiner.id.in_(pin_examiners))
        ).all()
    )
    workstation_refs = dict(
        session.execute(
            select(Workstation.id, Workstation.external_ref).where(
                Workstation.id.in_(pin_workstations)
            )
        ).all()
    )
    lab = session.get(Lab, jobs[0].lab_id)
    assert lab is not None
    overdue = progress.overdue_job_ids(session, lab, current_version(session, lab), ids, utcnow())
    out = []
    for job in jobs:
        case_ref, device_ref, _ = place[job.id]
        pin = None
        if job.pin_start_at is not None:
            pin = PinOut(
                examiner=examiner_refs.get(job.pin_examiner_id or 0),
                workstation=workstation_refs.get(job.pin_workstation_id or 0),
                start=job.pin_start_at,
            )
        out.append(
            JobOut(
                id=job.id,
                external_ref=job.external_ref,
                case=case_ref,
                device=device_ref,
                stage=job.stage,
                status=job.status,
                attended_minutes=job.attended_minutes,
                machine_minutes=job.machine_minutes,
                exposure_minutes=job.exposure_minutes,
                severity=job.severity,
                skills=sorted(sets["skills"][job.id]),
                capabilities=sorted(sets["capabilities"][job.id]),
                pools=sorted(sets["pools"][job.id]),
                after=sorted(sets["after"][job.id]),
                allowed_examiners=sorted(sets["allowed_examiners"][job.id]),
                workstation_minutes=dict(sorted(sets["workstation_minutes"][job.id])),
                pin=pin,
                started_at=job.started_at,
                finished_at=job.finished_at,
                overdue=job.id in overdue,
                updated_at=job.updated_at,
            )
        )
    return out


def job_view(session: Session, job: Job) -> JobOut:
    return job_views(session, [job])[0]


def device_out(session: Session, case: Case, device: Device) -> DeviceOut:
    jobs = session.scalars(select(Job).where(Job.device_id == device.id).order_by(Job.id)).all()
    return DeviceOut(
        external_ref=device.external_ref,
        case=case.external_ref,
        kind=device.kind,
        arrived_at=device.arrived_at,
        size_gb=device.size_gb,
        locked=device.locked,
        jobs=job_views(session, jobs),
        updated_at=device.updated_at,
    )


# --- devices -------------------------------------------------------------------------------------


@router.get("/cases/{ref}/devices", tags=["devices"], responses=problems(404, 422))
def list_devices(ref: RefPath, ctx: CaseReadCtx, page: PageDep) -> Page[DeviceOut]:
    case = casework.get_case(ctx.session, ctx.lab, ref)
    rows, cursors = paginate(
        ctx.session, select(Device).where(Device.case_id == case.id), Device.id, page
    )
    return Page[DeviceOut](
        items=[device_out(ctx.session, case, d) for d in rows], **cursors._asdict()
    )


@router.get("/cases/{ref}/devices/{device}", tags=["devices"], responses=problems(404, 422))
def get_device(ref: RefPath, device: RefPath, ctx: CaseReadCtx) -> DeviceOut:
    case = casework.get_case(ctx.session, ctx.lab, ref)
    return device_out(ctx.session, case, casework.get_device(ctx.session, case, device))


@router.put(
    "/cases/{ref}/devices/{device}", tags=["devices"], responses=problems(404, 422, creates=True)
)
def put_device(
    ref: RefPath, device: RefPath, body: DeviceIn, ctx: CaseWriteCtx, response: Response
) -> DeviceOut:
    """Create or replace a device (exhibit) of a case."""
    case = casework.get_case(ctx.session, ctx.lab, ref)
    existed = ctx.session.scalar(
        select(Device.id).where(Device.case_id == case.id, Device.external_ref == device)
    )
    stored = casework.upsert_device(
        ctx.session, case, actor=ctx.actor, external_ref=device, **body.model_dump()
    )
    if existed is None:
        response.status_code = 201
    return device_out(ctx.session, case, stored)


# --- jobs ----------------------------------------------------------------------------------------


@router.get("/jobs", tags=["jobs"], responses=problems(404, 422))
def list_jobs(
    ctx: CaseReadCtx,
    page: PageDep,
    status: Annotated[JobStatus | None, Query()] = None,
    case: Annotated[QueryText | None, Query(max_length=64, description="A case reference.")] = None,
) -> Page[JobOut]:
    stmt = select(Job).where(Job.lab_id == ctx.lab.id)
    if status is not None:
        stmt = stmt.where(Job.status == status)
    if case is not None:
        stmt = (
            stmt.join(Device, Job.device_id == Device.id)
            .join(Case, Device.case_id == Case.id)
            .where(Case.external_ref == case)
        )
    rows, cursors = paginate(ctx.session, stmt, Job.id, page)
    return Page[JobOut](items=job_views(ctx.session, rows), **cursors._asdict())


def get_job(
    ctx: CaseReadCtx, at: JobAt, response: Response, if_none_match: IfNoneMatch = None
) -> JobOut:
    out = job_view(ctx.session, at.find(ctx))
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
    current = etag_of(job_view(ctx.session, existing)) if existing is not None else None
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
    out = job_view(ctx.session, stored)
    set_etag(response, out)
    return out


def _guarded(ctx: Context, job_id: int, if_match: str | None) -> Job:
    job = casework.get_job(ctx.session, ctx.lab, job_id)
    check_if_match(if_match, etag_of(job_view(ctx.session, job)))
    return job


def _answer(ctx: Context, job: Job, response: Response) -> JobOut:
    out = job_view(ctx.session, job)
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
