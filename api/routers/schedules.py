"""Schedules: versions, publishing, diffs, views per examiner / workstation / case, and exports.

``{version}`` is a version id or ``current`` (the lab's published schedule). Every view names jobs
by reference only (``case/device/job``, stage, priority). An examiner key sees its own examiner's
schedule and iCalendar feed and nothing else.

The hot reads (a version's summary, assignments, an examiner's view) are answered with JSON
rendered here, not re-validated by FastAPI (``response_model`` still documents them). Each read
resolves the version per request (``current`` is one indexed lookup, so a publish by any process
is seen at once); what a version stores and never changes (summary, KPIs) is rendered once per
process and kept in a ``views.ReadCache`` keyed by version id, ``is_current`` and
``published_at``. Assignments join live references (a case's priority after escalation, an
examiner's name) and are always read from the database.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, Path, Query, Request, Response
from fastapi.responses import HTMLResponse
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter
from sqlalchemy.orm import Session
from typing_extensions import TypedDict

from api.deps import (
    REF_PATTERN,
    Context,
    ManageCtx,
    ReadCtx,
    allow,
    app_cache,
    lab_path,
    require_examiner_self,
)
from api.etag import IfNoneMatch, etag_of_json, not_modified
from api.pagination import MAX_ID, Page, PageDep, StartPageDep, id_path, paginate
from api.problems import problems
from api.schemas.common import FilterInstant, Instant, JsonWithInstants
from models import (
    Examiner,
    Lab,
    ScheduleVersion,
    SolveRun,
    UnscheduledJob,
)
from scheduler.core.plan import REASONS
from scheduler.errors import NotFound
from scheduler.planning import version_reads, views
from scheduler.planning.gantt import board_page
from scheduler.planning.publish import current_version, publish
from scheduler.planning.publish import diff as diff_versions
from scheduler.services.casework import get_case
from scheduler.services.resources import get_examiner, get_workstation

router = APIRouter(prefix="/labs/{lab}", dependencies=[Depends(lab_path)], tags=["schedules"])

SelfCtx = Annotated[Context, Depends(allow("admin", "supervisor", "auditor", "examiner"))]
VersionRef = Annotated[
    str,
    Path(
        pattern=r"^(current|[1-9][0-9]{0,9})$",
        description="A schedule version id, or `current` for the published schedule.",
        examples=["current"],
    ),
]
VersionId = Annotated[int, id_path("schedule version")]
RefPath = Annotated[str, Path(min_length=1, max_length=64, pattern=REF_PATTERN)]
NOT_MODIFIED: dict[int | str, dict[str, Any]] = {304: {"description": "Not modified."}}
JSON = "application/json"
UnscheduledReason = StrEnum(  # type: ignore[misc]
    "UnscheduledReason", [(reason, reason) for reason in REASONS]
)


class VersionOut(BaseModel):
    id: int
    lab: str
    solve_run: int | None
    mode: str | None = Field(description="The run's mode: full, repair or preview.")
    status: str = Field(description="optimal, feasible, infeasible or unknown.")
    created_at: Instant
    published_at: Instant | None
    is_current: bool
    epoch: Instant = Field(description="Start of the planning horizon.")
    objective: int | None
    bound: int | None
    terms: dict[str, int]
    kpis: JsonWithInstants
    assignments: int
    unscheduled: int


class AssignmentOut(BaseModel):
    job_id: int
    job: str = Field(description="case/device/job references.")
    case: str
    device: str
    stage: str
    priority: str
    examiner: str | None
    workstation: str | None
    starts_at: Instant
    ends_at: Instant
    attended_minutes: int
    machine_minutes: int
    exposure_minutes: int
    severity: int


class UnscheduledOut(BaseModel):
    job_id: int
    job: str
    reason: str
    detail: str
    forecast_start: Instant | None
    forecast_end: Instant | None


class Placement(BaseModel):
    examiner: str | None
    workstation: str | None
    starts_at: str
    ends_at: str


class DiffItem(BaseModel):
    model_config = ConfigDict(populate_by_name=True, serialize_by_alias=True)

    job_id: int
    job: str
    changes: list[str]
    from_: Placement | None = Field(alias="from")
    to: Placement | None


class DiffOut(BaseModel):
    from_version: int | None
    to_version: int | None
    counts: dict[str, int]
    moved: list[DiffItem]
    added: list[DiffItem]
    removed: list[DiffItem]


class ExaminerScheduleOut(BaseModel):
    examiner: str
    display_name: str
    version: int
    timezone: str
    assignments: list[AssignmentOut]
    exposure: dict[str, Any] | None = Field(description="Planned exposure against the caps.")


class ResourceScheduleOut(BaseModel):
    workstation: str
    name: str
    version: int
    timezone: str
    assignments: list[AssignmentOut]


class CaseScheduleOut(BaseModel):
    case: str
    version: int
    timezone: str
    assignments: list[AssignmentOut]
    unscheduled: list[UnscheduledOut]


# AssignmentOut's fields and types as a TypedDict: serializing plain dicts skips building and
# validating a model per row (most of rendering a long list); the JSON is the same byte for byte.
AssignmentRow = TypedDict(  # type: ignore[misc]
    "AssignmentRow", {name: f.annotation for name, f in AssignmentOut.model_fields.items()}
)
ASSIGNMENT_ROWS: TypeAdapter[list[Any]] = TypeAdapter(list[AssignmentRow])


def assignments_json(rows: list[views.PlacedJob]) -> bytes:
    """``list[AssignmentOut]`` as JSON, rendered from the rows directly."""
    return ASSIGNMENT_ROWS.dump_json(
        [
            {
                "job_id": r.job_id,
                "job": r.job,
                "case": r.case,
                "device": r.device,
                "stage": r.stage,
                "priority": r.priority,
                "examiner": r.examiner,
                "workstation": r.workstation,
                "starts_at": r.starts_at,
                "ends_at": r.ends_at,
                "attended_minutes": r.attended_minutes,
                "machine_minutes": r.machine_minutes,
                "exposure_minutes": r.exposure_minutes,
                "severity": r.severity,
            }
            for r in rows
        ]
    )


def read_cache(request: Request) -> views.ReadCache:
    """The app's cache of rendered version reads (``schedule_cache_entries``)."""
    return app_cache(request, "schedule_cache", lambda s: views.ReadCache(s.schedule_cache_entries))


def _resolve(ctx: Context, version: str) -> ScheduleVersion:
    if version == "current":
        return views.current_or_404(ctx.session, ctx.lab)
    if int(version) > MAX_ID:
        raise NotFound(f"schedule version {version} does not exist")
    return views.get_version(ctx.session, ctx.lab, int(version))


def version_out(ctx: Context, version: ScheduleVersion) -> VersionOut:
    run = ctx.session.get(SolveRun, version.solve_run_id) if version.solve_run_id else None
    kpis = version.kpis or {}
    return VersionOut(
        id=version.id,
        lab=ctx.lab.code,
        solve_run=version.solve_run_id,
        mode=run.mode if run is not None else None,
        status=version.status,
        created_at=version.created_at,
        published_at=version.published_at,
        is_current=version.is_current,
        epoch=version.epoch,
        objective=version.objective,
        bound=version.bound,
        terms=version.terms or {},
        kpis=kpis,
        assignments=int(kpis.get("scheduled", 0)),
        unscheduled=int(kpis.get("unscheduled", 0)),
    )


def assignment_out(row: views.PlacedJob) -> AssignmentOut:
    return AssignmentOut(
        job_id=row.job_id,
        job=row.job,
        case=row.case,
        device=row.device,
        stage=row.stage,
        priority=row.priority,
        examiner=row.examiner,
        workstation=row.workstation,
        starts_at=row.starts_at,
        ends_at=row.ends_at,
        attended_minutes=row.attended_minutes,
        machine_minutes=row.machine_minutes,
        exposure_minutes=row.exposure_minutes,
        severity=row.severity,
    )


def _unscheduled(
    ctx: Context, version: ScheduleVersion, rows: list[UnscheduledJob]
) -> list[UnscheduledOut]:
    ids = [r.job_id for r in rows]
    refs = views.job_refs(ctx.session, ids)
    forecast = version_reads.forecast_of(ctx.session, version, ids)
    return [
        UnscheduledOut(
            job_id=r.job_id,
            job=refs.get(r.job_id, f"#{r.job_id}"),
            reason=r.reason,
            detail=r.detail,
            forecast_start=forecast[r.job_id].starts_at if r.job_id in forecast else None,
            forecast_end=forecast[r.job_id].ends_at if r.job_id in forecast else None,
        )
        for r in rows
    ]


# ---- versions -------------------------------------------------------------------------------


@router.get("/schedules", responses=problems(404, 422))
def list_versions(ctx: ReadCtx, page: PageDep) -> Page[VersionOut]:
    """Every schedule version of the lab (published or not), oldest first."""
    rows, cursors = paginate(ctx.session, version_reads.versions_of(ctx.lab), page)
    return Page[VersionOut](items=[version_out(ctx, v) for v in rows], **cursors._asdict())


def summary_json(ctx: Context, request: Request, version: ScheduleVersion) -> tuple[bytes, str]:
    """A version's summary as JSON and its ETag, rendered once per process and state.

    Everything in it is stored with the version and never changes, except ``is_current`` and
    ``published_at`` (a publish) and the run link (``SET NULL``): those are part of the key and
    come from the version row read by this request.
    """
    cache = read_cache(request)
    key = (
        "summary",
        version.id,
        version.is_current,
        version.published_at,
        version.solve_run_id,
        ctx.lab.code,
    )
    found: tuple[bytes, str] | None = cache.get(key)
    if found is None:
        body = version_out(ctx, version).model_dump_json().encode()
        found = (body, etag_of_json(body))
        cache.put(key, found)
    return found


def stored_exposure(request: Request, version: ScheduleVersion) -> dict[str, Any]:
    """The version's planned exposure per examiner (from its KPIs, which never change)."""
    cache = read_cache(request)
    key = ("exposure", version.id)
    found: dict[str, Any] | None = cache.get(key)
    if found is None:
        found = (version.kpis or {}).get("exposure", {})
        cache.put(key, found)
    return found


@router.get(
    "/schedules/{version:segment}",
    response_model=VersionOut,
    responses={**problems(404, 422), **NOT_MODIFIED},
)
def get_version(
    version: VersionRef, ctx: ReadCtx, request: Request, if_none_match: IfNoneMatch = None
) -> Response:
    """A version's summary: status, objective and bound, soft terms and KPIs."""
    body, tag = summary_json(ctx, request, _resolve(ctx, version))
    if not_modified(if_none_match, tag):
        return Response(status_code=304, headers={"ETag": tag})
    return Response(body, media_type=JSON, headers={"ETag": tag})


@router.post("/schedules/{version_id}:publish", responses=problems(404, 409, 422))
def publish_version(
    version_id: VersionId,
    ctx: ManageCtx,
    force: Annotated[
        bool,
        Query(
            description="Publish a version that is infeasible or carries pin conflicts anyway; "
            "its warnings then say so. Without it such a version is a 409 naming the conflicts."
        ),
    ] = False,
) -> VersionOut:
    """Make a version the lab's published schedule (a preview, a stale version, or one with pin
    conflicts without ``force``, is a 409)."""
    version = views.get_version(ctx.session, ctx.lab, version_id)
    return version_out(ctx, publish(ctx.session, version, actor=ctx.actor, force=force))


@router.get("/schedules/{version}/diff", responses=problems(404, 422))
def get_diff(
    version: VersionRef,
    ctx: ReadCtx,
    against: Annotated[
        int | None,
        Query(
            alias="from",
            ge=1,
            le=MAX_ID,
            description="The version to compare with (default: the one it replaced, or the "
            "current published one for an unpublished version).",
        ),
    ] = None,
) -> DiffOut:
    """Assignments moved (examiner, workstation or start), added and removed between versions."""
    target = _resolve(ctx, version)
    if against is None and target.diff is not None:
        stored = target.diff
    else:
        if against is not None:
            base: ScheduleVersion | None = views.get_version(ctx.session, ctx.lab, against)
        else:
            base = current_version(ctx.session, ctx.lab)
        stored = diff_versions(base, target)
    return DiffOut.model_validate(views.readable_diff(ctx.session, ctx.lab, stored))


EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_LAST_MICROS = (datetime.max.replace(tzinfo=UTC) - EPOCH) // timedelta(microseconds=1)


def _start_key(cursor: tuple[int, ...] | None) -> tuple[datetime, int] | None:
    """An assignments cursor: (start in microseconds since 1970, job id); one past the last
    instant or id a row can hold is the end of the list."""
    if cursor is None:
        return None
    micros, job_id = cursor
    return EPOCH + timedelta(microseconds=min(micros, _LAST_MICROS)), min(job_id, MAX_ID)


@router.get(
    "/schedules/{version}/assignments",
    response_model=Page[AssignmentOut],
    responses=problems(404, 422),
)
def list_assignments(
    version: VersionRef,
    ctx: ReadCtx,
    page: StartPageDep,
    starts_before: Annotated[
        FilterInstant | None, Query(description="Only work starting before (RFC 3339).")
    ] = None,
    ends_after: Annotated[
        FilterInstant | None, Query(description="Only work ending after (RFC 3339).")
    ] = None,
) -> Response:
    """The version's assignments in start order, optionally within a time window, a page at a
    time (``next_cursor``)."""
    target = _resolve(ctx, version)
    rows = views.placed_jobs(
        ctx.session,
        target,
        starts_before=starts_before,
        ends_after=ends_after,
        after=_start_key(page.after_key(2)),
        limit=page.limit + 1,
    )
    more = len(rows) > page.limit
    rows = rows[: page.limit]
    last_key = None
    if rows:
        last = rows[-1]
        last_key = ((last.starts_at - EPOCH) // timedelta(microseconds=1), last.job_id)
    body = b'{"items":' + assignments_json(rows)
    for name, cursor in page.cursors(last_key, more)._asdict().items():
        body += b',"' + name.encode() + b'":'
        body += b'"' + cursor.encode() + b'"' if cursor else b"null"
    return Response(body + b"}", media_type=JSON)


@router.get("/schedules/{version}/unscheduled", responses=problems(404, 422))
def list_unscheduled(
    version: VersionRef,
    ctx: ReadCtx,
    page: PageDep,
    reason: Annotated[UnscheduledReason | None, Query(description="Only this reason.")] = None,
) -> Page[UnscheduledOut]:
    """Jobs the version leaves out, each with its reason and its forecast beyond the horizon."""
    target = _resolve(ctx, version)
    listing = version_reads.unscheduled_of(
        target, reason=reason.value if reason is not None else None
    )
    rows, cursors = paginate(ctx.session, listing, page)
    return Page[UnscheduledOut](items=_unscheduled(ctx, target, rows), **cursors._asdict())


# ---- views ----------------------------------------------------------------------------------


@router.get(
    "/schedules/{version}/examiners/{ref}",
    response_model=ExaminerScheduleOut,
    responses=problems(404, 422),
)
def examiner_schedule(
    version: VersionRef, ref: RefPath, ctx: SelfCtx, request: Request
) -> Response:
    """One examiner's work in a version (an examiner key: only its own)."""
    examiner = get_examiner(ctx.session, ctx.lab, ref)
    require_examiner_self(ctx, examiner)
    target = _resolve(ctx, version)
    rows = views.placed_jobs(ctx.session, target, examiner_id=examiner.id)
    out = ExaminerScheduleOut(
        examiner=examiner.external_ref,
        display_name=examiner.display_name,
        version=target.id,
        timezone=ctx.lab.timezone,
        assignments=[assignment_out(r) for r in rows],
        exposure=stored_exposure(request, target).get(examiner.external_ref),
    )
    return Response(out.model_dump_json(), media_type=JSON)


@router.get("/schedules/{version}/workstations/{ref}", responses=problems(404, 422))
def workstation_schedule(version: VersionRef, ref: RefPath, ctx: ReadCtx) -> ResourceScheduleOut:
    workstation = get_workstation(ctx.session, ctx.lab, ref)
    target = _resolve(ctx, version)
    rows = views.placed_jobs(ctx.session, target, workstation_id=workstation.id)
    return ResourceScheduleOut(
        workstation=workstation.external_ref,
        name=workstation.name,
        version=target.id,
        timezone=ctx.lab.timezone,
        assignments=[assignment_out(r) for r in rows],
    )


@router.get("/schedules/{version}/cases/{ref}", responses=problems(404, 422))
def case_schedule(version: VersionRef, ref: RefPath, ctx: ReadCtx) -> CaseScheduleOut:
    case = get_case(ctx.session, ctx.lab, ref)
    target = _resolve(ctx, version)
    rows = views.placed_jobs(ctx.session, target, case_id=case.id)
    job_ids = views.case_job_ids(ctx.session, case)
    left = version_reads.unscheduled_among(ctx.session, target, job_ids)
    return CaseScheduleOut(
        case=case.external_ref,
        version=target.id,
        timezone=ctx.lab.timezone,
        assignments=[assignment_out(r) for r in rows],
        unscheduled=_unscheduled(ctx, target, left),
    )


@router.get(
    "/examiners/{ref}/schedule.ics",
    responses={
        **problems(404, 422),
        200: {"content": {"text/calendar": {}}, "description": "iCalendar feed"},
    },
)
def examiner_calendar(ref: RefPath, ctx: SelfCtx) -> Response:
    """The examiner's published schedule as an iCalendar feed (subscribe from a calendar app)."""
    examiner = get_examiner(ctx.session, ctx.lab, ref)
    require_examiner_self(ctx, examiner)
    return calendar_response(ctx.session, ctx.lab, examiner)


def calendar_response(session: Session, lab: Lab, examiner: Examiner) -> Response:
    """One examiner's feed of the lab's published schedule, as a calendar app reads it."""
    target = views.current_or_404(session, lab)
    rows = views.placed_jobs(session, target, examiner_id=examiner.id)
    revisions = views.placement_revisions(session, lab, [r.job_id for r in rows])
    feed = views.examiner_ical(lab, examiner, rows, target.id, revisions)
    return Response(
        content=feed,
        media_type="text/calendar; charset=utf-8",
        headers={
            "Content-Disposition": f'inline; filename="{lab.code}-{examiner.external_ref}.ics"'
        },
    )


@router.get(
    "/schedules/{version}/export.csv",
    responses={**problems(404, 422), 200: {"content": {"text/csv": {}}, "description": "CSV"}},
)
def export_csv(version: VersionRef, ctx: ReadCtx) -> Response:
    """The version's assignments as CSV (lab-local times, references only)."""
    target = _resolve(ctx, version)
    rows = views.placed_jobs(ctx.session, target)
    text = views.schedule_csv(rows, ZoneInfo(ctx.lab.timezone))
    return Response(
        content=text,
        media_type="text/csv; charset=utf-8",
        headers={
            "Content-Disposition": (
                f'attachment; filename="{ctx.lab.code}-schedule-{target.id}.csv"'
            )
        },
    )


@router.get(
    "/schedules/{version}/gantt",
    responses={**problems(404, 422), 200: {"content": {"text/html": {}}, "description": "HTML"}},
)
def gantt_page(version: VersionRef, ctx: ReadCtx) -> HTMLResponse:
    """A self-contained Gantt chart page of the version (examiners and workstations)."""
    return HTMLResponse(board_page(ctx.session, ctx.lab, _resolve(ctx, version)))
