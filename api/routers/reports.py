"""Reports for supervisors and auditors: backlog by priority and age, SLA breaches, exposure per
examiner and week (planned vs cap vs logged), utilization. Computed from the published schedule."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, Field

from api.deps import ReadCtx, lab_path
from api.problems import problems
from api.schemas.common import Instant
from models import ScheduleVersion
from models.base import utcnow
from scheduler.planning import progress, views
from scheduler.planning.publish import current_version

router = APIRouter(prefix="/labs/{lab}/reports", dependencies=[Depends(lab_path)], tags=["reports"])


class BacklogLevel(BaseModel):
    priority: str
    name: str
    cases: int
    open_jobs: int
    by_age: dict[str, int] = Field(description="Open cases by days since receipt.")
    oldest_received_at: Instant | None
    cases_started_in_horizon: int
    expected_finish_median: Instant | None
    expected_finish_latest: Instant | None
    cases_without_expected_date: int


class BacklogOut(BaseModel):
    lab: str
    as_of: Instant
    schedule_version: int | None
    levels: list[BacklogLevel]
    total_cases: int
    total_open_jobs: int


class Breach(BaseModel):
    case: str
    priority: str
    received_at: Instant
    target_start_at: Instant
    legal_deadline_at: Instant | None
    expected_start: Instant | None
    expected_finish: Instant | None
    breaches: list[str] = Field(
        description="target_start_passed, target_start_will_be_missed, legal_deadline_passed, "
        "legal_deadline_at_risk."
    )
    overdue_hours: float


class BreachesOut(BaseModel):
    lab: str
    as_of: Instant
    schedule_version: int | None
    count: int
    by_priority: dict[str, int]
    cases: list[Breach]


class ExposureWeek(BaseModel):
    week_of: date
    planned: int
    logged: int
    weekly_cap: int | None
    over_weekly_cap: bool
    max_day: int = Field(description="Worst day of the week: planned + logged minutes.")
    daily_cap: int | None
    over_daily_cap: bool


class ExaminerExposure(BaseModel):
    examiner: str
    active: bool
    max_severity: int
    weeks: list[ExposureWeek]


class ExposureOut(BaseModel):
    lab: str
    schedule_version: int | None
    examiners: list[ExaminerExposure]


class UtilizationOut(BaseModel):
    lab: str
    schedule_version: int
    horizon_start: Instant | None
    horizon_end: Instant | None
    examiner_share: float | None
    examiners: list[dict[str, Any]]
    workstations: list[dict[str, Any]]
    known_examiners: int
    known_workstations: int


def _current(ctx: Any) -> ScheduleVersion | None:
    return current_version(ctx.session, ctx.lab)


@router.get("/backlog", responses=problems(404, 422))
def backlog(ctx: ReadCtx) -> BacklogOut:
    """Open cases by priority and age, with the expected finish from the published schedule."""
    data = views.backlog_report(ctx.session, ctx.lab, _current(ctx), utcnow())
    return BacklogOut.model_validate(data)


@router.get("/sla-breaches", responses=problems(404, 422))
def sla_breaches(ctx: ReadCtx) -> BreachesOut:
    """Open cases past (or set to miss) their target start, or at risk on a legal deadline."""
    data = views.sla_breaches(ctx.session, ctx.lab, _current(ctx), utcnow())
    return BreachesOut.model_validate(data)


class LateJob(BaseModel):
    job_id: int
    case: str
    device: str
    stage: str
    status: str
    examiner: str | None
    workstation: str | None
    planned_start: Instant
    planned_end: Instant
    since: Instant = Field(description="When it became overdue or started to overrun.")
    started_at: Instant | None = None
    detail: str = Field(description="In plain words, times in the lab's time zone.")


class OverdueOut(BaseModel):
    lab: str
    as_of: Instant
    schedule_version: int | None
    grace_minutes: int = Field(description="The lab's start_grace_minutes.")
    overdue: list[LateJob] = Field(
        description="Published jobs whose start passed with no :start, beyond their planned end "
        "plus the grace period: re-planned on their own; someone should find out why."
    )
    overrunning: list[LateJob] = Field(
        description="Work in progress past its estimated end: planned to run its estimate again."
    )


@router.get("/overdue", responses=problems(404, 422))
def overdue(ctx: ReadCtx) -> OverdueOut:
    """Published work that has not started as planned, and work in progress past its estimate."""
    data = progress.overdue_report(ctx.session, ctx.lab, _current(ctx), utcnow())
    return OverdueOut.model_validate(data)


@router.get("/exposure", responses=problems(404, 422))
def exposure(
    ctx: ReadCtx,
    weeks: Annotated[int, Query(ge=1, le=8, description="Weeks ahead (plus last week).")] = 2,
) -> ExposureOut:
    """Exposure per examiner and week: planned (published) vs caps vs logged."""
    data = views.exposure_report(ctx.session, ctx.lab, _current(ctx), weeks=weeks)
    return ExposureOut.model_validate(data)


@router.get("/utilization", responses=problems(404, 422))
def utilization(ctx: ReadCtx) -> UtilizationOut:
    """Planned attended time over availability per examiner; machine load per workstation."""
    version = views.current_or_404(ctx.session, ctx.lab)
    return UtilizationOut.model_validate(views.utilization_report(ctx.session, ctx.lab, version))
