"""Replaying recorded snapshots: how a production incident becomes a regression test.

A folder holds ``NAME.snapshot.json`` files (``labq.snapshot/1``, e.g. exported from a lab when
something went wrong), each with the plan recorded for it next to it: ``NAME.plan.json``
(``labq.plan/1``) or ``NAME.expected.json`` (the figures only: ``status``, ``objective``,
``terms``, and ``unscheduled`` as a map from job to reason, as in the test suite's golden files).
`replay` solves each snapshot again, verifies the new plan (and the recorded one), and lists every
key figure that differs. One worker by default, so a replay gives the same plan on any machine.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from scheduler.core.fields import FieldError, parse_json
from scheduler.core.plan import Plan, load_plan, plan_to_json
from scheduler.core.snapshot import Snapshot, load_snapshot
from scheduler.core.verify import Violation, verify

SNAPSHOT_SUFFIX = ".snapshot.json"
PLAN_SUFFIX = ".plan.json"
EXPECTED_SUFFIX = ".expected.json"

Figure = str | int | None


def plan_figures(plan: Plan) -> dict[str, Figure]:
    """The key figures compared between a recorded plan and its replay."""
    figures: dict[str, Figure] = {
        "status": plan.status,
        "objective": plan.objective,
        "scheduled": len(plan.assignments),
        "unscheduled": len(plan.unscheduled),
    }
    for reason, count in sorted(Counter(u.reason for u in plan.unscheduled).items()):
        figures[f"unscheduled {reason}"] = count
    for term, value in sorted(plan.terms.items()):
        figures[f"term {term}"] = value
    return figures


def expected_figures(snapshot: Snapshot, expected: dict[str, object]) -> dict[str, Figure]:
    """The figures of a golden ``expected.json`` (no assignments: scheduled is what is left)."""
    unscheduled = expected.get("unscheduled", {})
    reasons = unscheduled if isinstance(unscheduled, dict) else {}
    objective = expected.get("objective")
    figures: dict[str, Figure] = {
        "status": str(expected.get("status")),
        "objective": objective if isinstance(objective, int) else None,
        "scheduled": len(snapshot.jobs) - len(reasons),
        "unscheduled": len(reasons),
    }
    for reason, count in sorted(Counter(str(r) for r in reasons.values()).items()):
        figures[f"unscheduled {reason}"] = count
    terms = expected.get("terms", {})
    for term, value in sorted(terms.items() if isinstance(terms, dict) else []):
        figures[f"term {term}"] = value if isinstance(value, int) else None
    return figures


@dataclass
class Replayed:
    """One snapshot replayed: what was recorded, what the replay gave, and where they differ."""

    name: str
    jobs: int = 0
    recorded: str | None = None  # the file the figures were compared with
    error: str | None = None  # the snapshot or its record could not be read or solved
    violations: list[Violation] = field(default_factory=list)  # of the replayed plan
    recorded_violations: list[Violation] = field(default_factory=list)
    differences: list[tuple[str, Figure, Figure]] = field(default_factory=list)
    seconds: float = 0.0
    written: str | None = None  # a plan recorded by this replay (``record``)

    @property
    def ok(self) -> bool:
        return (
            self.error is None
            and not self.violations
            and not self.recorded_violations
            and not self.differences
        )


def snapshots_in(directory: Path) -> list[Path]:
    """The folder's snapshot files, by name."""
    return sorted(directory.glob(f"*{SNAPSHOT_SUFFIX}"))


def replay_one(
    path: Path, *, time_limit: float, workers: int, seed: int, record: bool = False
) -> Replayed:
    """Solve one recorded snapshot again and compare (see the module)."""
    from scheduler.benchmarks.runner import solve_snapshot

    name = path.name.removesuffix(SNAPSHOT_SUFFIX)
    result = Replayed(name)
    try:
        snapshot = load_snapshot(path)
    except FieldError as exc:
        result.error = f"malformed snapshot: {exc}"
        return result
    result.jobs = len(snapshot.jobs)
    plan_path = path.with_name(name + PLAN_SUFFIX)
    expected_path = path.with_name(name + EXPECTED_SUFFIX)
    recorded: dict[str, Figure] | None = None
    try:
        if plan_path.exists():
            recorded_plan = load_plan(plan_path)
            result.recorded = plan_path.name
            result.recorded_violations = verify(snapshot, recorded_plan)
            recorded = plan_figures(recorded_plan)
        elif expected_path.exists():
            data = parse_json(expected_path.read_text(encoding="utf-8"))
            if not isinstance(data, dict):
                raise FieldError("", f"{expected_path.name}: expected a JSON object")
            result.recorded = expected_path.name
            recorded = expected_figures(snapshot, data)
    except (FieldError, ValueError, OSError) as exc:
        result.error = f"unreadable record: {exc}"
        return result
    try:
        timed = solve_snapshot(snapshot, time_limit=time_limit, workers=workers, seed=seed)
    except Exception as exc:  # a replay reports every snapshot, whatever one of them does
        result.error = f"solve failed: {type(exc).__name__}: {exc}"
        return result
    result.seconds = timed.seconds
    result.violations = verify(snapshot, timed.plan)
    replayed = plan_figures(timed.plan)
    if recorded is not None:
        for key in dict.fromkeys([*recorded, *replayed]):
            before, after = recorded.get(key), replayed.get(key)
            if key.startswith(("unscheduled ", "term ")):  # an absent count is a zero
                before, after = before or 0, after or 0
            if before != after:
                result.differences.append((key, before, after))
    elif record and not result.violations:
        plan_path.write_text(json.dumps(plan_to_json(timed.plan), indent=1) + "\n")
        result.written = plan_path.name
    return result
