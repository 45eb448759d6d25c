"""A solved schedule as plain data: the `labq.plan/1` contract."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

PLAN_FORMAT = "labq.plan/1"

# Plan.status values
OPTIMAL = "optimal"
FEASIBLE = "feasible"
INFEASIBLE = "infeasible"
UNKNOWN = "unknown"

# Unscheduled.reason codes
NO_ELIGIBLE_EXAMINER = "no_eligible_examiner"
NO_ELIGIBLE_WORKSTATION = "no_eligible_workstation"
EXPOSURE_CAPS = "exposure_caps"
HORIZON_FULL = "horizon_full"
PREDECESSOR_UNSCHEDULED = "predecessor_unscheduled"
RELEASED_AFTER_HORIZON = "released_after_horizon"
NOT_A_CANDIDATE = "not_a_candidate"
PIN_CONFLICT = "pin_conflict"


@dataclass(frozen=True)
class Assignment:
    job: str
    examiner: str | None
    workstation: str | None
    start: int
    end: int


@dataclass(frozen=True)
class Unscheduled:
    """A job left out of the plan, with a reason code and a human-readable detail."""

    job: str
    reason: str
    detail: str = ""


@dataclass(frozen=True)
class Forecast:
    """Projected start/end of a job beyond the horizon, from a capacity simulation."""

    job: str
    start: int
    end: int


@dataclass(frozen=True)
class Plan:
    status: str
    objective: int | None
    bound: int | None
    solve_seconds: float
    assignments: tuple[Assignment, ...]
    unscheduled: tuple[Unscheduled, ...] = ()
    forecast: tuple[Forecast, ...] = ()
    terms: Mapping[str, int] = field(default_factory=dict)
