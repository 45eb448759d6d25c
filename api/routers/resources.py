"""The lab's capacity: examiners (shifts, absences, exposure logs), workstations (maintenance
windows) and licence pools. Supervisors and admins write; auditors read."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Path, Response

from api.deps import REF_PATTERN, ManageCtx, ReadCtx, lab_path
from api.etag import (
    IfMatch,
    IfNoneMatch,
    check_if_match,
    check_if_none_match,
    etag_of,
    not_modified,
    set_etag,
)
from api.pagination import Page, PageDep, id_path, paginate
from api.problems import problems
from api.run_links import answer_with_run
from api.schemas.resources import (
    AbsenceAdded,
    AbsenceIn,
    AbsenceOut,
    ExaminerIn,
    ExaminerOut,
    ExaminerPatch,
    ExposureLogIn,
    ExposureLogOut,
    LicencePoolIn,
    LicencePoolOut,
    MaintenanceIn,
    MaintenanceOut,
    ShiftIn,
    ShiftOut,
    WorkstationIn,
    WorkstationOut,
    WorkstationPatch,
)
from models import (
    Examiner,
    Workstation,
)
from scheduler.services import resources

router = APIRouter(prefix="/labs/{lab}", dependencies=[Depends(lab_path)])

RefPath = Annotated[str, Path(min_length=1, max_length=64, pattern=REF_PATTERN)]
IdPath = Annotated[int, id_path("entry")]
NOT_MODIFIED: dict[int | str, dict[str, Any]] = {304: {"description": "Not modified."}}


def examiner_out(examiner: Examiner) -> ExaminerOut:
    return ExaminerOut(
        external_ref=examiner.external_ref,
        display_name=examiner.display_name,
        active=examiner.active,
        skills=examiner.skill_names,
        shifts=[ShiftOut.model_validate(s) for s in examiner.shifts],
        daily_cap_minutes=examiner.daily_cap_minutes,
        severe_daily_cap_minutes=examiner.severe_daily_cap_minutes,
        weekly_cap_minutes=examiner.weekly_cap_minutes,
        exposure_cutoff=examiner.exposure_cutoff,
        max_severity=examiner.max_severity,
        updated_at=examiner.updated_at,
    )


def workstation_out(workstation: Workstation) -> WorkstationOut:
    return WorkstationOut(
        external_ref=workstation.external_ref,
        name=workstation.name,
        capacity=workstation.capacity,
        active=workstation.active,
        capabilities=workstation.capability_names,
        updated_at=workstation.updated_at,
    )


def _shifts(shifts: list[ShiftIn] | None) -> list[tuple[int, Any, Any]] | None:
    return None if shifts is None else [(s.weekday, s.starts, s.ends) for s in shifts]


# --- examiners -----------------------------------------------------------------------------------


@router.get("/examiners", tags=["examiners"], responses=problems(404, 422))
def list_examiners(ctx: ReadCtx, page: PageDep) -> Page[ExaminerOut]:
    rows, cursors = paginate(ctx.session, resources.examiners_of(ctx.lab), page)
    return Page[ExaminerOut](items=[examiner_out(e) for e in rows], **cursors._asdict())


@router.get(
    "/examiners/{ref}", tags=["examiners"], responses={**problems(404, 422), **NOT_MODIFIED}
)
def get_examiner(
    ref: RefPath, ctx: ReadCtx, response: Response, if_none_match: IfNoneMatch = None
) -> ExaminerOut:
    out = examiner_out(resources.get_examiner(ctx.session, ctx.lab, ref))
    tag = etag_of(out)
    if not_modified(if_none_match, tag):
        return Response(status_code=304, headers={"ETag": tag})  # type: ignore[return-value]
    response.headers["ETag"] = tag
    return out


@router.put(
    "/examiners/{ref}", tags=["examiners"], responses=problems(404, 409, 412, 422, creates=True)
)
def put_examiner(
    ref: RefPath,
    body: ExaminerIn,
    ctx: ManageCtx,
    response: Response,
    if_match: IfMatch = None,
    if_none_match: IfNoneMatch = None,
) -> ExaminerOut:
    """Create or replace an examiner: skills, weekly shifts and exposure policy."""
    existing = resources.find_examiner(ctx.session, ctx.lab, ref)
    current = etag_of(examiner_out(existing)) if existing is not None else None
    check_if_match(if_match, current)
    check_if_none_match(if_none_match, current)
    fields = body.model_dump(exclude={"skills", "shifts"})
    fields["display_name"] = body.display_name or ref
    examiner = resources.upsert_examiner(
        ctx.session,
        ctx.lab,
        actor=ctx.actor,
        external_ref=ref,
        skills=body.skills,
        shifts=_shifts(body.shifts),
        **fields,
    )
    if existing is None:
        response.status_code = 201
    out = examiner_out(examiner)
    set_etag(response, out)
    return out


@router.patch("/examiners/{ref}", tags=["examiners"], responses=problems(404, 412, 422))
def patch_examiner(
    ref: RefPath, body: ExaminerPatch, ctx: ManageCtx, response: Response, if_match: IfMatch = None
) -> ExaminerOut:
    """Change some of an examiner's fields (``active: false`` takes them out of planning)."""
    existing = resources.get_examiner(ctx.session, ctx.lab, ref)
    check_if_match(if_match, etag_of(examiner_out(existing)))
    changes = body.model_dump(exclude_unset=True, exclude={"skills", "shifts"})
    examiner = resources.upsert_examiner(
        ctx.session,
        ctx.lab,
        actor=ctx.actor,
        external_ref=ref,
        skills=body.skills,
        shifts=_shifts(body.shifts),
        **changes,
    )
    out = examiner_out(examiner)
    set_etag(response, out)
    return out


@router.get("/examiners/{ref}/shifts", tags=["examiners"], responses=problems(404, 422))
def get_shifts(ref: RefPath, ctx: ReadCtx) -> list[ShiftOut]:
    examiner = resources.get_examiner(ctx.session, ctx.lab, ref)
    return [ShiftOut.model_validate(s) for s in examiner.shifts]


@router.put("/examiners/{ref}/shifts", tags=["examiners"], responses=problems(404, 412, 422))
def put_shifts(
    ref: RefPath,
    body: Annotated[list[ShiftIn], Body(max_length=50)],
    ctx: ManageCtx,
    if_match: IfMatch = None,
) -> list[ShiftOut]:
    """Replace the weekly shift pattern (If-Match takes the examiner's ETag)."""
    examiner = resources.get_examiner(ctx.session, ctx.lab, ref)
    check_if_match(if_match, etag_of(examiner_out(examiner)))
    examiner = resources.upsert_examiner(
        ctx.session, ctx.lab, actor=ctx.actor, external_ref=ref, shifts=_shifts(body)
    )
    return [ShiftOut.model_validate(s) for s in examiner.shifts]


@router.get("/examiners/{ref}/absences", tags=["examiners"], responses=problems(404, 422))
def list_absences(ref: RefPath, ctx: ReadCtx, page: PageDep) -> Page[AbsenceOut]:
    examiner = resources.get_examiner(ctx.session, ctx.lab, ref)
    rows, cursors = paginate(ctx.session, resources.absences_of(examiner), page)
    return Page[AbsenceOut](items=[AbsenceOut.model_validate(a) for a in rows], **cursors._asdict())


@router.post(
    "/examiners/{ref}/absences", status_code=201, tags=["examiners"], responses=problems(404, 422)
)
def add_absence(ref: RefPath, body: AbsenceIn, ctx: ManageCtx) -> AbsenceAdded:
    """Leave, training, a counselling appointment...: the examiner is not available."""
    examiner = resources.get_examiner(ctx.session, ctx.lab, ref)
    absence = resources.add_absence(ctx.session, examiner, actor=ctx.actor, **body.model_dump())
    run = answer_with_run(ctx.session, ctx.lab.code, None)
    return AbsenceAdded(**AbsenceOut.model_validate(absence).model_dump(), run=run)


@router.delete(
    "/examiners/{ref}/absences/{absence_id}",
    status_code=204,
    tags=["examiners"],
    responses=problems(404, 422),
)
def delete_absence(ref: RefPath, absence_id: IdPath, ctx: ManageCtx) -> Response:
    examiner = resources.get_examiner(ctx.session, ctx.lab, ref)
    resources.remove_absence(ctx.session, examiner, actor=ctx.actor, absence_id=absence_id)
    return Response(status_code=204)


@router.get("/examiners/{ref}/exposure-logs", tags=["examiners"], responses=problems(404, 422))
def list_exposure_logs(ref: RefPath, ctx: ReadCtx, page: PageDep) -> Page[ExposureLogOut]:
    examiner = resources.get_examiner(ctx.session, ctx.lab, ref)
    rows, cursors = paginate(ctx.session, resources.exposure_logs_of(examiner), page)
    return Page[ExposureLogOut](
        items=[ExposureLogOut.model_validate(e) for e in rows], **cursors._asdict()
    )


@router.post(
    "/examiners/{ref}/exposure-logs",
    status_code=201,
    tags=["examiners"],
    responses=problems(404, 422),
)
def log_exposure(ref: RefPath, body: ExposureLogIn, ctx: ManageCtx) -> ExposureLogOut:
    """Exposure actually had on a lab-local day; it lowers that day's and week's remaining caps."""
    examiner = resources.get_examiner(ctx.session, ctx.lab, ref)
    entry = resources.log_exposure(ctx.session, examiner, actor=ctx.actor, **body.model_dump())
    return ExposureLogOut.model_validate(entry)


# --- workstations --------------------------------------------------------------------------------


@router.get("/workstations", tags=["workstations"], responses=problems(404, 422))
def list_workstations(ctx: ReadCtx, page: PageDep) -> Page[WorkstationOut]:
    rows, cursors = paginate(ctx.session, resources.workstations_of(ctx.lab), page)
    return Page[WorkstationOut](items=[workstation_out(w) for w in rows], **cursors._asdict())


@router.get(
    "/workstations/{ref}",
    tags=["workstations"],
    responses={**problems(404, 422), **NOT_MODIFIED},
)
def get_workstation(
    ref: RefPath, ctx: ReadCtx, response: Response, if_none_match: IfNoneMatch = None
) -> WorkstationOut:
    out = workstation_out(resources.get_workstation(ctx.session, ctx.lab, ref))
    tag = etag_of(out)
    if not_modified(if_none_match, tag):
        return Response(status_code=304, headers={"ETag": tag})  # type: ignore[return-value]
    response.headers["ETag"] = tag
    return out


@router.put(
    "/workstations/{ref}",
    tags=["workstations"],
    responses=problems(404, 409, 412, 422, creates=True),
)
def put_workstation(
    ref: RefPath,
    body: WorkstationIn,
    ctx: ManageCtx,
    response: Response,
    if_match: IfMatch = None,
    if_none_match: IfNoneMatch = None,
) -> WorkstationOut:
    """Create or replace a workstation (capabilities, capacity)."""
    existing = resources.find_workstation(ctx.session, ctx.lab, ref)
    current = etag_of(workstation_out(existing)) if existing is not None else None
    check_if_match(if_match, current)
    check_if_none_match(if_none_match, current)
    workstation = resources.upsert_workstation(
        ctx.session,
        ctx.lab,
        actor=ctx.actor,
        external_ref=ref,
        capabilities=body.capabilities,
        name=body.name or ref,
        capacity=body.capacity,
        active=body.active,
    )
    if existing is None:
        response.status_code = 201
    out = workstation_out(workstation)
    set_etag(response, out)
    return out


@router.patch("/workstations/{ref}", tags=["workstations"], responses=problems(404, 412, 422))
def patch_workstation(
    ref: RefPath,
    body: WorkstationPatch,
    ctx: ManageCtx,
    response: Response,
    if_match: IfMatch = None,
) -> WorkstationOut:
    existing = resources.get_workstation(ctx.session, ctx.lab, ref)
    check_if_match(if_match, etag_of(workstation_out(existing)))
    workstation = resources.upsert_workstation(
        ctx.session,
        ctx.lab,
        actor=ctx.actor,
        external_ref=ref,
        capabilities=body.capabilities,
        **body.model_dump(exclude_unset=True, exclude={"capabilities"}),
    )
    out = workstation_out(workstation)
    set_etag(response, out)
    return out


@router.get(
    "/workstations/{ref}/maintenance-windows",
    tags=["workstations"],
    responses=problems(404, 422),
)
def list_maintenance(ref: RefPath, ctx: ReadCtx, page: PageDep) -> Page[MaintenanceOut]:
    workstation = resources.get_workstation(ctx.session, ctx.lab, ref)
    rows, cursors = paginate(ctx.session, resources.maintenance_of(workstation), page)
    return Page[MaintenanceOut](
        items=[MaintenanceOut.model_validate(w) for w in rows], **cursors._asdict()
    )


@router.post(
    "/workstations/{ref}/maintenance-windows",
    status_code=201,
    tags=["workstations"],
    responses=problems(404, 422),
)
def add_maintenance(ref: RefPath, body: MaintenanceIn, ctx: ManageCtx) -> MaintenanceOut:
    workstation = resources.get_workstation(ctx.session, ctx.lab, ref)
    window = resources.add_maintenance(
        ctx.session, workstation, actor=ctx.actor, **body.model_dump()
    )
    return MaintenanceOut.model_validate(window)


@router.delete(
    "/workstations/{ref}/maintenance-windows/{window_id}",
    status_code=204,
    tags=["workstations"],
    responses=problems(404, 422),
)
def delete_maintenance(ref: RefPath, window_id: IdPath, ctx: ManageCtx) -> Response:
    workstation = resources.get_workstation(ctx.session, ctx.lab, ref)
    resources.remove_maintenance(ctx.session, workstation, actor=ctx.actor, window_id=window_id)
    return Response(status_code=204)


# --- licence pools -------------------------------------------------------------------------------


@router.get("/licence-pools", tags=["licence pools"], responses=problems(404, 422))
def list_pools(ctx: ReadCtx, page: PageDep) -> Page[LicencePoolOut]:
    rows, cursors = paginate(ctx.session, resources.pools_of(ctx.lab), page)
    return Page[LicencePoolOut](
        items=[LicencePoolOut.model_validate(p) for p in rows], **cursors._asdict()
    )


@router.get("/licence-pools/{name}", tags=["licence pools"], responses=problems(404, 422))
def get_pool(name: RefPath, ctx: ReadCtx) -> LicencePoolOut:
    return LicencePoolOut.model_validate(resources.get_pool(ctx.session, ctx.lab, name))


@router.put("/licence-pools/{name}", tags=["licence pools"], responses=problems(404, 422))
def put_pool(name: RefPath, body: LicencePoolIn, ctx: ManageCtx) -> LicencePoolOut:
    """Create a pool of floating licences or change its capacity."""
    pool = resources.upsert_pool(
        ctx.session, ctx.lab, actor=ctx.actor, name=name, capacity=body.capacity
    )
    return LicencePoolOut.model_validate(pool)
