"""What every benchmark shares: one way to call the engine, and the figures recorded with a run."""

from __future__ import annotations

import resource
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from importlib.metadata import version

from scheduler.core.dispatch import POLICIES
from scheduler.core.lns import SearchOutcome
from scheduler.core.plan import Plan
from scheduler.core.snapshot import Snapshot, snapshot_warnings
from scheduler.core.solve import SolveConfig, solve

ENGINE_POLICIES = ("cpsat", *POLICIES)


@dataclass(frozen=True)
class Timed:
    """A plan and how long the engine took, with the time its first valid plan was known."""

    plan: Plan
    seconds: float
    first_plan_seconds: float | None


def solve_snapshot(
    snapshot: Snapshot,
    *,
    time_limit: float = 30.0,
    workers: int = 2,
    seed: int = 0,
    policy: str = "cpsat",
    on_progress: Callable[[float, int], None] | None = None,
    on_search: Callable[[SearchOutcome], None] | None = None,
    moves: float = 0.0,
) -> Timed:
    """Run the engine the way the service and the CLI do, timing it from the caller's side;
    ``on_progress(fraction of the time limit, best objective)`` follows the solve and
    ``on_search`` receives the neighbourhood search's outcome (see ``solve``)."""
    if policy not in ENGINE_POLICIES:
        raise ValueError(f"unknown policy {policy!r}; expected one of {', '.join(ENGINE_POLICIES)}")
    started = time.perf_counter()
    first: list[float] = []

    def progress(fraction: float, objective: int) -> None:
        # solve() reports first right after its construction step: that plan is valid.
        if not first:
            first.append(time.perf_counter() - started)

    def report(fraction: float, objective: int) -> None:
        progress(fraction, objective)
        if on_progress is not None:
            on_progress(fraction, objective)

    config = SolveConfig(
        time_limit=time_limit, workers=workers, seed=seed, policy=policy, moves=moves
    )
    plan = solve(snapshot, config, report, on_search=on_search)
    # What the snapshot asks for that nobody can give (a skill no examiner has) travels with
    # the plan, so whoever reads the plan sees why those jobs wait.
    plan = replace(plan, warnings=plan.warnings + snapshot_warnings(snapshot))
    seconds = time.perf_counter() - started
    return Timed(plan, seconds, first[0] if first else None)


def gap(objective: int | None, bound: int | None) -> float | None:
    """Relative distance from a plan's objective down to a lower bound (0.0 = proven optimal)."""
    if objective is None or bound is None:
        return None
    if objective <= 0:
        return 0.0
    return max(0, objective - bound) / objective


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far, in MiB."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024


def ortools_version() -> str:
    return version("ortools")
