"""Labs and priority levels."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from api.schemas.common import (
    Body,
    Flag,
    Instant,
    IntegerOnly,
    Name,
    Omittable,
    Out,
    PlainText,
    Ref,
    Weight,
)
from models.lab import DEFAULT_CHANGE_WEIGHT, DEFAULT_MAX_TIME_LIMIT_SECONDS

Timezone = Annotated[
    str,
    Field(min_length=1, max_length=64, description="IANA name, e.g. Europe/London."),
    PlainText,
]
HorizonDays = Annotated[int, Field(ge=1, le=60, description="Working days planned."), IntegerOnly]
SlotMinutes = Annotated[int, Field(ge=1, le=240), IntegerOnly]
FrozenDays = Annotated[int, Field(ge=0, le=10), IntegerOnly]
TimeLimit = Annotated[int, Field(ge=1, le=3600, description="Seconds per solve."), IntegerOnly]
TimeLimitCap = Annotated[
    int,
    Field(
        ge=1,
        le=3600,
        description="The longest time limit a solve run of the lab may ask for (longer: 422).",
    ),
    IntegerOnly,
]
Rank = Annotated[int, Field(ge=1, le=100, description="1 is the most urgent."), IntegerOnly]
TargetHours = Annotated[
    int, Field(ge=0, le=100_000, description="SLA: start within this many hours."), IntegerOnly
]


class LabSettings(Body):
    planning_horizon_days: HorizonDays = 10
    slot_minutes: SlotMinutes = 15
    frozen_working_days: FrozenDays = 1
    solve_time_limit_seconds: TimeLimit = 60
    max_time_limit_seconds: TimeLimitCap = DEFAULT_MAX_TIME_LIMIT_SECONDS
    weight_tardiness: Weight = 1
    weight_change: Weight = DEFAULT_CHANGE_WEIGHT
    weight_balance: Weight = 5
    weight_continuity: Weight = 2


class LabCreate(LabSettings):
    code: Ref
    name: Name
    timezone: Timezone
    default_scheme: Flag = Field(
        default=True, description="Create the default P1..P5 priority scheme."
    )


class LabPatch(Body):
    name: Omittable[Name] = None
    timezone: Omittable[Timezone] = None
    planning_horizon_days: Omittable[HorizonDays] = None
    slot_minutes: Omittable[SlotMinutes] = None
    frozen_working_days: Omittable[FrozenDays] = None
    solve_time_limit_seconds: Omittable[TimeLimit] = None
    max_time_limit_seconds: Omittable[TimeLimitCap] = None
    weight_tardiness: Omittable[Weight] = None
    weight_change: Omittable[Weight] = None
    weight_balance: Omittable[Weight] = None
    weight_continuity: Omittable[Weight] = None


class LabOut(Out):
    code: str
    name: str
    timezone: str
    planning_horizon_days: int
    slot_minutes: int
    frozen_working_days: int
    solve_time_limit_seconds: int
    max_time_limit_seconds: int
    weight_tardiness: int
    weight_change: int
    weight_balance: int
    weight_continuity: int
    created_at: Instant
    updated_at: Instant


class PriorityLevelIn(Body):
    name: Name
    rank: Rank
    weight: Weight
    target_start_hours: TargetHours
    auto_publish_repair: Flag = False


class PriorityLevelOut(Out):
    code: str
    name: str
    rank: int
    weight: int
    target_start_hours: int
    auto_publish_repair: bool
