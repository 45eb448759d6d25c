"""Labs, priority levels and vocabularies."""

from __future__ import annotations

from typing import Annotated, get_args

from pydantic import Field, WithJsonSchema

from api.schemas.cases import Stage
from api.schemas.common import (
    Body,
    Flag,
    Instant,
    IntegerOnly,
    Label,
    Name,
    Omittable,
    Out,
    PlainText,
    Ref,
    Weight,
)
from models.lab import (
    DEFAULT_CHANGE_WEIGHT,
    DEFAULT_MAX_TIME_LIMIT_SECONDS,
    DEFAULT_START_GRACE_MINUTES,
    DEFAULT_VOCABULARY,
)
from scheduler.services.labs import timezone_names

Timezone = Annotated[
    str,
    Field(min_length=1, max_length=64),
    PlainText,
    WithJsonSchema(
        {
            "type": "string",
            "enum": list(timezone_names()),
            "description": "IANA name, e.g. Europe/London (those this installation knows).",
        }
    ),
]
HorizonDays = Annotated[int, Field(ge=1, le=60, description="Working days planned."), IntegerOnly]
SlotMinutes = Annotated[int, Field(ge=1, le=240), IntegerOnly]
FrozenDays = Annotated[int, Field(ge=0, le=10), IntegerOnly]
GraceMinutes = Annotated[
    int,
    Field(
        ge=0,
        le=1440,
        description="Minutes past a published job's planned end during which a missed :start "
        "is taken as started as planned; after that the job is overdue and re-planned alone.",
    ),
    IntegerOnly,
]
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
    start_grace_minutes: GraceMinutes = DEFAULT_START_GRACE_MINUTES
    solve_time_limit_seconds: TimeLimit = 60
    max_time_limit_seconds: TimeLimitCap = DEFAULT_MAX_TIME_LIMIT_SECONDS
    weight_tardiness: Weight = 1
    weight_change: Weight = DEFAULT_CHANGE_WEIGHT
    weight_balance: Weight = 5
    weight_continuity: Weight = 2


Terms = Annotated[list[Label], Field(max_length=500)]


class VocabularyIn(Body):
    """A lab's whole vocabulary: the only skills, capabilities and stages its examiners,
    workstations and jobs may name."""

    skills: Terms = Field(default=[], description="Skills examiners hold and jobs need.")
    capabilities: Terms = Field(default=[], description="Workstation capabilities jobs need.")
    stages: Annotated[list[Stage], Field(max_length=len(get_args(Stage)))] = Field(
        default=list(get_args(Stage)), description="The stages the lab works; omitted: all of them."
    )


class VocabularyOut(Out):
    skills: list[str]
    capabilities: list[str]
    stages: list[str]


def _default_vocabulary() -> str:
    return "; ".join(f"{kind}: {', '.join(terms)}" for kind, terms in DEFAULT_VOCABULARY.items())


class LabCreate(LabSettings):
    code: Ref
    name: Name
    timezone: Timezone
    default_scheme: Flag = Field(
        default=True, description="Create the default P1..P5 priority scheme."
    )
    vocabulary: VocabularyIn | None = Field(
        default=None,
        description="The lab's skills, capabilities and stages. Omitted or null: the default "
        f"vocabulary ({_default_vocabulary()}).",
    )


class LabPatch(Body):
    name: Omittable[Name] = None
    timezone: Omittable[Timezone] = None
    planning_horizon_days: Omittable[HorizonDays] = None
    slot_minutes: Omittable[SlotMinutes] = None
    frozen_working_days: Omittable[FrozenDays] = None
    start_grace_minutes: Omittable[GraceMinutes] = None
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
    start_grace_minutes: int
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
