"""Forecasts (when will a case be examined and finished, and why not sooner) and recommendations
(the best examiner/slot options for one job). Integrations read forecasts; no case content."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query
from pydantic import BaseModel, Field

from api.deps import REF_PATTERN, CaseReadCtx, Context, ReadCtx, lab_path
from api.job_address import JobAt, job_route
from api.pagination import Page, PageDep, id_path, paginate
from api.problems import problems
from api.schemas.common import Instant
from models import ScheduleVersion
from models.base import utcnow
from scheduler.planning import views
from scheduler.planning.publish import current_version
from scheduler.services import casework
from scheduler.services.casework import get_case
from scheduler.services.labs import level_codes

router = APIRouter(prefix="/labs/{lab}", dependencies=[Depends(lab_path)], tags=["forecasts"])

RefPath = Annotated[str, Path(min_length=1, max_length=64, pattern=REF_PATTERN)]
JobId = Annotated[int, id_path("job")]


class JobForecastOut(BaseModel):
    job_id: int
    job: str
    stage: str
    status: str
    expected_start: Instant | None
    expected_end: Instant | None
    source: str = Field(description="schedule (published), forecast (beyond it), done or none.")
    examiner: str | None
    workstation: str | None
    reason: str | None = Field(description="Why the job is not in the published schedule.")
    detail: str | None
    waits_for: list[str] = Field(description="Unfinished predecessors.")


class CaseForecastOut(BaseModel):
    case: str
    status: str
    priority: str
    received_at: Instant
    target_start_at: Instant = Field(description="received_at + the level's target start hours.")
    legal_deadline_at: Instant | None
    schedule_version: int | None
    expected_examination_start: Instant | None
    expected_finish: Instant | None
    meets_target_start: bool | None
    misses_legal_deadline: bool | None
    jobs_open: int
    jobs_done: int
    why_not_sooner: list[str]
    jobs: list[JobForecastOut]


class CaseOutlookOut(BaseModel):
    case: str
    priority: str
    received_at: Instant
    expected_examination_start: Instant | None
    expected_finish: Instant | None


class MoveOut(BaseModel):
    job_id: int
    job: str
    examiner: str | None
    workstation: str | None
    starts_at: Instant
    ends_at: Instant


class OptionOut(BaseModel):
    examiner: str | None
    workstation: str | None
    starts_at: Instant
    ends_at: Instant
    cost_delta: int = Field(description="Change of the lab's weighted objective (+ is worse).")
    moves: list[MoveOut] = Field(
        default_factory=list,
        description="Successors that must start later for this option (empty: the job alone).",
    )


class RefusedOut(BaseModel):
    examiner: str | None
    workstation: str | None
    reason: str = Field(description="Why the job cannot move there, in the lab's own terms.")


class RecommendationsOut(BaseModel):
    job_id: int
    job: str
    schedule_version: int | None
    current: dict[str, Any] | None
    kept: bool = Field(
        description="Pinned, in progress, taken as started or frozen: it stays where it is."
    )
    kept_reason: str | None = Field(None, description="Why it stays, when it is kept.")
    options: list[OptionOut]
    refused: list[RefusedOut] = Field(
        default_factory=list,
        description="Every other eligible examiner/workstation pair, with why it is no option.",
    )


def _current(ctx: Context) -> ScheduleVersion | None:
    return current_version(ctx.session, ctx.lab)


@router.get("/cases/{ref}/forecast", responses=problems(404, 422))
def case_forecast(ref: RefPath, ctx: CaseReadCtx) -> CaseForecastOut:
    """When the case's work is expected to start and finish, job by job, and why not sooner."""
    case = get_case(ctx.session, ctx.lab, ref)
    data = views.case_forecast(ctx.session, ctx.lab, case, _current(ctx))
    data["jobs"] = [
        JobForecastOut(
            job_id=o.job_id,
            job=o.job,
            stage=o.stage,
            status=o.status,
            expected_start=o.expected_start,
            expected_end=o.expected_end,
            source=o.source,
            examiner=o.examiner,
            workstation=o.workstation,
            reason=o.reason,
            detail=o.detail,
            waits_for=o.waits_for,
        )
        for o in data["jobs"]
    ]
    data.pop("stage_allowance_hours", None)
    return CaseForecastOut.model_validate(data)


@router.get("/forecasts", responses=problems(404, 422))
def list_forecasts(ctx: CaseReadCtx, page: PageDep) -> Page[CaseOutlookOut]:
    """Expected start and finish of every open case, from the published schedule and forecast."""
    version = _current(ctx)
    rows, cursors = paginate(ctx.session, casework.open_cases(ctx.lab), page)
    levels = level_codes(ctx.session, ctx.lab)
    first, last = views.case_expectations(ctx.session, version, [c.id for c in rows])
    return Page[CaseOutlookOut](
        items=[
            CaseOutlookOut(
                case=c.external_ref,
                priority=levels.get(c.priority_level_id, "?"),
                received_at=c.received_at,
                expected_examination_start=first.get(c.id),
                expected_finish=last.get(c.id),
            )
            for c in rows
        ],
        **cursors._asdict(),
    )


def job_recommendations(
    ctx: ReadCtx,
    at: JobAt,
    limit: Annotated[int, Query(ge=1, le=20, description="Options to return.")] = 5,
) -> RecommendationsOut:
    """Where else the job could go (examiner, workstation, start), priced against the schedule."""
    data = views.recommendations(ctx.session, ctx.lab, at.find(ctx), limit=limit, now=utcnow())
    return RecommendationsOut.model_validate(data)


job_route(
    router,
    "GET",
    "/recommendations",
    job_recommendations,
    name="job_recommendations",
    responses=problems(404, 409, 422),
)
