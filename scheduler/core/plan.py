"""A solved schedule as plain data: the `labq.plan/1` contract.

``warnings`` (optional, written only when there are some, so a plan without any reads as before)
name what in the snapshot was legal but cannot be honoured, such as a skill no examiner has.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from scheduler.core.fields import (
    FieldError,
    fail,
    kind,
    parse_json,
    read_array,
    read_int,
    read_object,
)

PLAN_FORMAT = "labq.plan/1"


def clock(minute: int) -> str:
    """A snapshot time as reasons and warnings write it: ``day 3 09:30`` (days and time from the
    epoch, which is UTC); the service puts it in the lab's own terms (``planning/words.py``)."""
    day, rest = divmod(minute, 1440)
    return f"day {day} {rest // 60:02d}:{rest % 60:02d}"


#: What ``clock`` writes, for whoever rewrites it.
CLOCK_PATTERN = r"\bday (-?\d+) (\d{2}):(\d{2})\b"

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
UNPLANNABLE_RECORD = "unplannable_record"
"""A stored record that cannot become planning data: an instant outside the contract's range of
minutes, a reference that no longer resolves, a number past the contract's bounds. It is left out
so the rest of its lab is planned; the detail names the record and the field to correct."""


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
class PlanWarning:
    """Something in the snapshot a person should look at: ``field`` is its JSON path."""

    code: str
    field: str
    detail: str


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
    warnings: tuple[PlanWarning, ...] = ()


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
    UNPLANNABLE_RECORD,
)

# Times beyond this are malformed; objective values may be large sums but stay inside int64.
_MAX_MINUTES = 10**9
_MAX_INT64 = 2**63 - 1
_MAX_TEXT = 2000


class PlanError(FieldError):
    """A plan document that breaks the `labq.plan/1` contract; ``field`` is its JSON path."""


def _text(value: object, path: str, *, empty: bool = False) -> str:
    if not isinstance(value, str):
        fail(path, f"expected a string, got {kind(value)}")
    if not empty and not value.strip():
        fail(path, "must not be empty")
    if len(value) > _MAX_TEXT:
        fail(path, f"longer than {_MAX_TEXT} characters")
    return value


def _optional_text(value: object, path: str) -> str | None:
    return None if value is None else _text(value, path)


def _label(item: object, index: int) -> str:
    """``[j3]`` when the item names a job, ``[3]`` otherwise: paths a supervisor can follow."""
    if isinstance(item, dict):
        job = item.get("job")
        if isinstance(job, str) and job.strip() and len(job) <= 200:
            return f"[{job}]"
    return f"[{index}]"


def _assignment(value: object, path: str) -> Assignment:
    fields = read_object(value, path, ("job", "start", "end"), ("examiner", "workstation"))
    return Assignment(
        job=_text(fields["job"], f"{path}.job"),
        examiner=_optional_text(fields.get("examiner"), f"{path}.examiner"),
        workstation=_optional_text(fields.get("workstation"), f"{path}.workstation"),
        start=read_int(fields["start"], f"{path}.start", -_MAX_MINUTES, _MAX_MINUTES),
        end=read_int(fields["end"], f"{path}.end", -_MAX_MINUTES, _MAX_MINUTES),
    )


def _unscheduled(value: object, path: str) -> Unscheduled:
    fields = read_object(value, path, ("job", "reason"), ("detail",))
    return Unscheduled(
        job=_text(fields["job"], f"{path}.job"),
        reason=_text(fields["reason"], f"{path}.reason"),
        detail=_text(fields.get("detail", ""), f"{path}.detail", empty=True),
    )


def _forecast(value: object, path: str) -> Forecast:
    fields = read_object(value, path, ("job", "start", "end"))
    start = read_int(fields["start"], f"{path}.start", -_MAX_MINUTES, 100 * _MAX_MINUTES)
    end = read_int(fields["end"], f"{path}.end", -_MAX_MINUTES, 100 * _MAX_MINUTES)
    if end < start:
        fail(path, f"end {end} is before start {start}")
    return Forecast(job=_text(fields["job"], f"{path}.job"), start=start, end=end)


def _warning(value: object, path: str) -> PlanWarning:
    fields = read_object(value, path, ("code", "detail"), ("field",))
    return PlanWarning(
        code=_text(fields["code"], f"{path}.code"),
        field=_text(fields.get("field", ""), f"{path}.field", empty=True),
        detail=_text(fields["detail"], f"{path}.detail"),
    )


def plan_from_json(data: object) -> Plan:
    """Validate a decoded `labq.plan/1` document and build the `Plan`.

    Only the shape is checked here; whether the plan keeps the lab's rules is `verify`'s job.
    Raises `PlanError` naming the first offending field; never anything else.
    """
    try:
        return _plan_from_json(data)
    except PlanError:
        raise
    except FieldError as exc:
        raise PlanError(exc.field, exc.message) from None


def _plan_from_json(data: object) -> Plan:
    if not isinstance(data, dict):
        fail("", f"expected a JSON object, got {kind(data)}")
    if data.get("format") != PLAN_FORMAT:
        fail("format", f"expected '{PLAN_FORMAT}', got {data.get('format')!r:.60}")
    top = read_object(
        data,
        "",
        ("format", "status", "assignments"),
        ("objective", "bound", "solve_seconds", "unscheduled", "forecast", "terms", "warnings"),
    )
    status = top["status"]
    if not isinstance(status, str) or status not in STATUSES:
        fail("status", f"expected one of {', '.join(STATUSES)}, got {status!r:.60}")
    objective = top.get("objective")
    bound = top.get("bound")
    seconds = top.get("solve_seconds", 0.0)
    if isinstance(seconds, bool) or not isinstance(seconds, int | float):
        fail("solve_seconds", f"expected a number, got {kind(seconds)}")
    if not math.isfinite(seconds) or seconds < 0:
        fail("solve_seconds", f"expected a non-negative number, got {seconds}")
    terms: dict[str, int] = {}
    raw_terms = top.get("terms", {})
    if not isinstance(raw_terms, dict):
        fail("terms", f"expected an object, got {kind(raw_terms)}")
    for name, value in raw_terms.items():
        if not isinstance(name, str) or not name:
            fail("terms", "term names must be non-empty strings")
        terms[name] = read_int(value, f"terms.{name}", -_MAX_INT64, _MAX_INT64)

    def items(key: str) -> list[tuple[str, object]]:
        raw = read_array(top.get(key, []), key)
        return [(f"{key}{_label(item, i)}", item) for i, item in enumerate(raw)]

    return Plan(
        status=status,
        objective=None
        if objective is None
        else read_int(objective, "objective", -_MAX_INT64, _MAX_INT64),
        bound=None if bound is None else read_int(bound, "bound", -_MAX_INT64, _MAX_INT64),
        solve_seconds=float(seconds),
        assignments=tuple(_assignment(item, path) for path, item in items("assignments")),
        unscheduled=tuple(_unscheduled(item, path) for path, item in items("unscheduled")),
        forecast=tuple(_forecast(item, path) for path, item in items("forecast")),
        terms=terms,
        warnings=tuple(
            _warning(item, f"warnings[{i}]")
            for i, item in enumerate(read_array(top.get("warnings", []), "warnings"))
        ),
    )


def plan_to_json(plan: Plan) -> dict[str, object]:
    """The `labq.plan/1` document of ``plan``; `plan_from_json` reads it back equal."""
    document: dict[str, object] = {
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
    if plan.warnings:
        document["warnings"] = [
            {"code": w.code, "field": w.field, "detail": w.detail} for w in plan.warnings
        ]
    return document


def load_plan(path: str | Path) -> Plan:
    """Read and validate a plan file; unreadable files and invalid JSON are `PlanError`."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise PlanError("", f"cannot read plan file {path}: {exc}") from None
    try:
        data = parse_json(text)
    except (ValueError, RecursionError) as exc:
        raise PlanError("", f"invalid JSON in {path}: {exc}") from None
    return plan_from_json(data)
