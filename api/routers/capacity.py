"""Capacity and what-if: how busy the lab is and what holds it up; the lab changed on paper.

``GET /labs/{lab}/capacity`` reads the analysis stored with a schedule version (the published one
by default): per examiner, skill, workstation capability and licence pool, what is available,
needed and planned over the horizon and in shift hours, and the bottleneck in one sentence
(docs/architecture.md §5.10).

A what-if (docs/architecture.md §5.11) is created with the changes (202: a worker runs its preview
solve), polled, and read with its comparison beside the published schedule. It never becomes a
schedule version: nothing about it can be published or served as the lab's schedule.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Response
from pydantic import BaseModel, Field

from api.deps import REF_PATTERN, ManageCtx, ReadCtx, lab_path
from api.pagination import MAX_ID, id_path
from api.problems import problems
from api.schemas.common import Body, Code, Instant, IntegerOnly, Label, Ref
from models import ScheduleVersion
from scheduler.errors import Conflict, NotFound
from scheduler.planning import views, whatif

router = APIRouter(prefix="/labs/{lab}", dependencies=[Depends(lab_path)], tags=["capacity"])

WhatIfId = Annotated[int, id_path("what-if")]
Count = Annotated[int, Field(ge=1, le=whatif.MAX_COUNT), IntegerOnly]
Skills = Annotated[list[Label], Field(min_length=1, max_length=64)]
Refs = Annotated[
    list[Annotated[str, Field(min_length=1, max_length=64, pattern=REF_PATTERN)]],
    Field(max_length=500),
]
VersionRef = Annotated[
    str,
    Path(
        pattern=r"^(current|[1-9][0-9]{0,9})$",
        description="A schedule version id, or `current` for the published schedule.",
    ),
]


# ---- capacity ---------------------------------------------------------------------------------


class LoadOut(BaseModel):
    """One resource or group over the horizon, in minutes (shares are 0..1, or null)."""

    kind: str = Field(description="examiners, examiner, skill, capability or pool.")
    id: str
    units: int = Field(description="Examiners, workstation capacity or licences.")
    available_minutes: int
    in_shifts_minutes: int = Field(description="The part of it inside the lab's shift hours.")
    demand_minutes: int = Field(description="What all the open work needs, planned or not.")
    planned_minutes: int
    planned_in_shifts_minutes: int
    share: float | None = Field(description="planned / available.")
    shift_share: float | None = Field(description="Planned in shift hours / in_shifts.")
    pressure: float | None = Field(description="demand / available: above 1 cannot all fit.")
    waiting_jobs: int = Field(description="Left-out jobs that need it themselves.")


class BottleneckOut(BaseModel):
    kind: str = Field(description="skill, capability or pool.")
    id: str
    shift_share: float | None
    examiner_share: float | None
    waiting_behind: int = Field(description="Left-out jobs downstream of its own left-out jobs.")
    waiting_by_stage: dict[str, int]
    blocked: int = Field(description="Left-out jobs that need it themselves.")
    blocked_stage: str | None


class CapacityOut(BaseModel):
    lab: str
    schedule_version: int
    epoch: Instant
    horizon_minutes: int
    shift_minutes: int = Field(description="Minutes of shift hours (any examiner available).")
    unscheduled_jobs: int
    sentence: str = Field(description="The bottleneck named in one sentence.")
    bottleneck: BottleneckOut | None
    examiners: LoadOut
    by_examiner: list[LoadOut]
    by_skill: list[LoadOut]
    by_capability: list[LoadOut]
    by_pool: list[LoadOut]


def capacity_of(version: ScheduleVersion) -> dict[str, Any]:
    figures: dict[str, Any] | None = (version.kpis or {}).get("capacity")
    if figures is None:
        raise Conflict(
            f"schedule version {version.id} was stored before capacity analysis existed; "
            "queue a solve run for a version that has it"
        )
    return figures


@router.get("/capacity", responses=problems(404, 409, 422))
def get_capacity(ctx: ReadCtx, version: str = "current") -> CapacityOut:
    """Utilization per examiner, skill, capability and licence pool of the published schedule
    (or ``?version=ID``), demand against what is available, and the bottleneck in a sentence."""
    found = _resolve(ctx, version)
    figures = capacity_of(found)
    return CapacityOut(lab=ctx.lab.code, schedule_version=found.id, epoch=found.epoch, **figures)


def _resolve(ctx: Any, version: str) -> ScheduleVersion:
    if version == "current":
        return views.current_or_404(ctx.session, ctx.lab)
    if not version.isdigit() or not 1 <= int(version) <= MAX_ID:
        raise NotFound(f"schedule version {version!r} does not exist")
    return views.get_version(ctx.session, ctx.lab, int(version))


# ---- what-if ----------------------------------------------------------------------------------


class AddExaminersIn(Body):
    count: Count
    skills: Skills
    like: Ref | None = Field(
        default=None,
        description="An examiner whose shifts and exposure caps they get (default: the first).",
    )
    max_severity: Annotated[int | None, Field(ge=0, le=3), IntegerOnly] = None


class AddWorkstationsIn(Body):
    count: Count
    capabilities: Skills
    capacity: Annotated[int, Field(ge=1, le=64), IntegerOnly] = 1


class LicencesIn(Body):
    pool: Annotated[str, Field(min_length=1, max_length=64)]
    capacity: Annotated[int, Field(ge=1, le=1000), IntegerOnly]


class OvertimeIn(Body):
    minutes_per_day: Annotated[int, Field(ge=1, le=480), IntegerOnly]
    examiners: Refs | None = Field(default=None, description="Who works it (default: everyone).")


class WeekendIn(Body):
    """Examiners who come in on closed days (weekends, holidays) to start processing."""

    examiners: Annotated[Refs, Field(min_length=1)]
    start: Annotated[str, Field(pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$")] = "08:00"
    minutes: Annotated[int, Field(ge=15, le=720), IntegerOnly]


class TargetIn(Body):
    level: Code
    target_start_hours: Annotated[int, Field(ge=1, le=24 * 365), IntegerOnly]


class WhatIfIn(Body):
    add_examiners: list[AddExaminersIn] = Field(default=[], max_length=20)
    remove_examiners: Refs = []
    add_workstations: list[AddWorkstationsIn] = Field(default=[], max_length=20)
    remove_workstations: Refs = []
    licences: list[LicencesIn] = Field(default=[], max_length=50)
    overtime: OvertimeIn | None = None
    weekend: WeekendIn | None = None
    targets: list[TargetIn] = Field(default=[], max_length=20)
    time_limit_seconds: Annotated[
        int | None,
        Field(ge=1, le=3600, description="Seconds for the preview solve (default: the lab's)."),
        IntegerOnly,
    ] = None


class WhatIfOut(BaseModel):
    id: int
    lab: str
    created_at: Instant
    requested_by: str
    changes: dict[str, Any]
    described: list[str] = Field(description="The changes in plain words.")
    solve_run: int
    status: str = Field(description="The preview run's: queued, running, succeeded, failed...")
    progress: float
    error: str | None
    baseline_version: int | None = Field(description="The published version when it was made.")
    comparison: dict[str, Any] | None = Field(
        description="Once succeeded: `baseline` (the published schedule) and `preview`, each "
        "with cases on target per level, cleared-by dates, examiner share, exposure and the "
        "bottleneck sentence."
    )


def what_if_out(ctx: Any, found: Any) -> WhatIfOut:
    state = whatif.state_of(ctx.session, found)
    state["lab"] = ctx.lab.code
    return WhatIfOut(**state, described=whatif.change_lines(found.changes))


@router.post("/what-ifs", status_code=202, responses=problems(404, 422))
def create_what_if(body: WhatIfIn, ctx: ManageCtx, response: Response) -> WhatIfOut:
    """Change the lab on paper and queue a preview solve of it (never published). Poll the
    what-if (``Location``) until its status is ``succeeded``, then read its comparison."""
    changes = body.model_dump(exclude={"time_limit_seconds"}, exclude_defaults=True)
    found = whatif.create_what_if(
        ctx.session,
        ctx.lab,
        actor=ctx.actor,
        changes=changes,
        time_limit_seconds=body.time_limit_seconds,
    )
    response.headers["Location"] = f"/labs/{ctx.lab.code}/what-ifs/{found.id}"
    return what_if_out(ctx, found)


@router.get("/what-ifs", responses=problems(404, 422))
def list_what_ifs(ctx: ManageCtx) -> list[WhatIfOut]:
    """The lab's latest what-ifs, newest first."""
    return [what_if_out(ctx, found) for found in whatif.list_what_ifs(ctx.session, ctx.lab)]


@router.get("/what-ifs/{what_if_id:segment}", responses=problems(404, 422))
def get_what_if(what_if_id: WhatIfId, ctx: ManageCtx) -> WhatIfOut:
    """A what-if: its changes, its preview run's state and, once done, the comparison."""
    return what_if_out(ctx, whatif.get_what_if(ctx.session, ctx.lab, what_if_id))
