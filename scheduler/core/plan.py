"""A solved schedule as plain data: the `labq.plan/1` contract."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import NoReturn

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


STATUSES = (OPTIMAL, FEASIBLE, INFEASIBLE, UNKNOWN)
REASONS = (
    NO_ELIGIBLE_EXAMINER,
    NO_ELIGIBLE_WORKSTATION,
    EXPOSURE_CAPS,
    HORIZON_FULL,
    PREDECESSOR_UNSCHEDULED,
    RELEASED_AFTER_HORIZON,
    NOT_A_CANDIDATE,
    PIN_CONFLICT,
)

# Times beyond this are malformed; objective values may be large sums but stay inside int64.
_MAX_MINUTES = 10**9
_MAX_INT64 = 2**63 - 1
_MAX_TEXT = 2000


class PlanError(ValueError):
    """A plan document that breaks the `labq.plan/1` contract; ``field`` is its JSON path."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}" if field else message)
        self.field = field
        self.message = message


def _fail(path: str, message: str) -> NoReturn:
    raise PlanError(path, message)


def _kind(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list | tuple):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def _object(
    value: object, path: str, required: tuple[str, ...], optional: tuple[str, ...] = ()
) -> Mapping[str, object]:
    if not isinstance(value, dict):
        _fail(path, f"expected an object, got {_kind(value)}")
    for key in value:
        if not isinstance(key, str):
            _fail(path, f"object keys must be strings, got {_kind(key)}")
    prefix = f"{path}." if path else ""
    for key in required:
        if key not in value:
            _fail(prefix + key, "missing required field")
    allowed = set(required) | set(optional)
    for key in value:
        if key not in allowed:
            _fail(prefix + key, "unknown field")
    return value


def _int(value: object, path: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        _fail(path, f"expected an integer, got {_kind(value)}")
    if not low <= value <= high:
        _fail(path, f"{value} is outside [{low}, {high}]")
    return value


def _text(value: object, path: str, *, empty: bool = False) -> str:
    if not isinstance(value, str):
        _fail(path, f"expected a string, got {_kind(value)}")
    if not empty and not value.strip():
        _fail(path, "must not be empty")
    if len(value) > _MAX_TEXT:
        _fail(path, f"longer than {_MAX_TEXT} characters")
    return value


def _optional_text(value: object, path: str) -> str | None:
    return None if value is None else _text(value, path)


def _array(value: object, path: str) -> list[object] | tuple[object, ...]:
    if not isinstance(value, list | tuple):
        _fail(path, f"expected an array, got {_kind(value)}")
    return value


def _label(item: object, index: int) -> str:
    """``[j3]`` when the item names a job, ``[3]`` otherwise: paths a supervisor can follow."""
    if isinstance(item, dict):
        job = item.get("job")
        if isinstance(job, str) and job.strip() and len(job) <= 200:
            return f"[{job}]"
    return f"[{index}]"


def _assignment(value: object, path: str) -> Assignment:
    fields = _object(value, path, ("job", "start", "end"), ("examiner", "workstation"))
    return Assignment(
        job=_text(fields["job"], f"{path}.job"),
        examiner=_optional_text(fields.get("examiner"), f"{path}.examiner"),
        workstation=_optional_text(fields.get("workstation"), f"{path}.workstation"),
        start=_int(fields["start"], f"{path}.start", -_MAX_MINUTES, _MAX_MINUTES),
        end=_int(fields["end"], f"{path}.end", -_MAX_MINUTES, _MAX_MINUTES),
    )


def _unscheduled(value: object, path: str) -> Unscheduled:
    fields = _object(value, path, ("job", "reason"), ("detail",))
    return Unscheduled(
        job=_text(fields["job"], f"{path}.job"),
        reason=_text(fields["reason"], f"{path}.reason"),
        detail=_text(fields.get("detail", ""), f"{path}.detail", empty=True),
    )


def _forecast(value: object, path: str) -> Forecast:
    fields = _object(value, path, ("job", "start", "end"))
    start = _int(fields["start"], f"{path}.start", -_MAX_MINUTES, 100 * _MAX_MINUTES)
    end = _int(fields["end"], f"{path}.end", -_MAX_MINUTES, 100 * _MAX_MINUTES)
    if end < start:
        _fail(path, f"end {end} is before start {start}")
    return Forecast(job=_text(fields["job"], f"{path}.job"), start=start, end=end)


def plan_from_json(data: object) -> Plan:
    """Validate a decoded `labq.plan/1` document and build the `Plan`.

    Only the shape is checked here; whether the plan keeps the lab's rules is `verify`'s job.
    Raises `PlanError` naming the first offending field; never anything else.
    """
    if not isinstance(data, dict):
        _fail("", f"expected a JSON object, got {_kind(data)}")
    if data.get("format") != PLAN_FORMAT:
        _fail("format", f"expected '{PLAN_FORMAT}', got {data.get('format')!r:.60}")
    top = _object(
        data,
        "",
        ("format", "status", "assignments"),
        ("objective", "bound", "solve_seconds", "unscheduled", "forecast", "terms"),
    )
    status = top["status"]
    if not isinstance(status, str) or status not in STATUSES:
        _fail("status", f"expected one of {', '.join(STATUSES)}, got {status!r:.60}")
    objective = top.get("objective")
    bound = top.get("bound")
    seconds = top.get("solve_seconds", 0.0)
    if isinstance(seconds, bool) or not isinstance(seconds, int | float):
        _fail("solve_seconds", f"expected a number, got {_kind(seconds)}")
    if not math.isfinite(seconds) or seconds < 0:
        _fail("solve_seconds", f"expected a non-negative number, got {seconds}")
    terms: dict[str, int] = {}
    raw_terms = top.get("terms", {})
    if not isinstance(raw_terms, dict):
        _fail("terms", f"expected an object, got {_kind(raw_terms)}")
    for name, value in raw_terms.items():
        if not isinstance(name, str) or not name:
            _fail("terms", "term names must be non-empty strings")
        terms[name] = _int(value, f"terms.{name}", -_MAX_INT64, _MAX_INT64)

    def items(key: str) -> list[tuple[str, object]]:
        raw = _array(top.get(key, []), key)
        return [(f"{key}{_label(item, i)}", item) for i, item in enumerate(raw)]

    return Plan(
        status=status,
        objective=None
        if objective is None
        else _int(objective, "objective", -_MAX_INT64, _MAX_INT64),
        bound=None if bound is None else _int(bound, "bound", -_MAX_INT64, _MAX_INT64),
        solve_seconds=float(seconds),
        assignments=tuple(_assignment(item, path) for path, item in items("assignments")),
        unscheduled=tuple(_unscheduled(item, path) for path, item in items("unscheduled")),
        forecast=tuple(_forecast(item, path) for path, item in items("forecast")),
        terms=terms,
    )


def plan_to_json(plan: Plan) -> dict[str, object]:
    """The `labq.plan/1` document of ``plan``; `plan_from_json` reads it back equal."""
    return {
        "format": PLAN_FORMAT,
        "status": plan.status,
        "objective": plan.objective,
        "bound": plan.bound,
        "solve_seconds": plan.solve_seconds,
        "assignments": [
            {
                "job": a.job,
                "examiner": a.examiner,
                "workstation": a.workstation,
                "start": a.start,
                "end": a.end,
            }
            for a in plan.assignments
        ],
        "unscheduled": [
            {"job": u.job, "reason": u.reason, "detail": u.detail} for u in plan.unscheduled
        ],
        "forecast": [{"job": f.job, "start": f.start, "end": f.end} for f in plan.forecast],
        "terms": dict(plan.terms),
    }


def load_plan(path: str | Path) -> Plan:
    """Read and validate a plan file; unreadable files and invalid JSON are `PlanError`."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise PlanError("", f"cannot read plan file {path}: {exc}") from None
    try:
        data = json.loads(text, parse_constant=_reject_constant)
    except (ValueError, RecursionError) as exc:
        raise PlanError("", f"invalid JSON in {path}: {exc}") from None
    return plan_from_json(data)


def _reject_constant(name: str) -> NoReturn:
    raise ValueError(f"{name} is not valid JSON")
