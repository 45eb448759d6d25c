"""The one call the planning service makes into the engine: ``solve_snapshot``.

It runs `scheduler.core.solve.solve` (dispatch construction, CP-SAT / LNS improvement, verify,
reasons, bound, forecast) with the policy a run asks for.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from scheduler.core.plan import Plan
from scheduler.core.snapshot import Snapshot
from scheduler.core.solve import SolveConfig, solve

Progress = Callable[[float, int], None]

POLICIES = ("cpsat", "fifo", "priority", "wsjf")
DEFAULT_WORKERS = 2


def solve_snapshot(
    snapshot: Snapshot,
    *,
    time_limit: float,
    policy: str = "cpsat",
    workers: int = DEFAULT_WORKERS,
    seed: int = 0,
    progress: Progress | None = None,
    stop: threading.Event | None = None,
) -> Plan:
    """Solve ``snapshot`` within ``time_limit`` seconds with ``policy`` ("cpsat" or a dispatch).

    Setting ``stop`` (a cancelled run) ends the solve promptly with `SolveStopped`.
    """
    if policy not in POLICIES:
        raise ValueError(f"unknown policy {policy!r}; expected one of {', '.join(POLICIES)}")
    config = SolveConfig(time_limit=time_limit, workers=workers, seed=seed, policy=policy)
    plan: Plan = solve(snapshot, config, progress=progress, stop=stop)
    return plan
