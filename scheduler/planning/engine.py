"""The one call the planning service makes into the engine: ``solve_snapshot``.

It runs `scheduler.core.solve.solve` (dispatch construction, CP-SAT / LNS improvement, verify,
reasons, bound, forecast). Should the engine's solve entry point be unavailable, it falls back to
the best dispatch baseline plus the forecast, so the service path keeps working.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import replace

from scheduler.core.plan import Plan
from scheduler.core.snapshot import Snapshot

logger = logging.getLogger(__name__)

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
    try:
        from scheduler.core.solve import SolveConfig, solve
    except ImportError:
        logger.warning("scheduler.core.solve is not available; planning with dispatch only")
        return _dispatch_only(snapshot, policy, progress)
    config = SolveConfig(time_limit=time_limit, workers=workers, seed=seed, policy=policy)
    plan: Plan = solve(snapshot, config, progress=progress, stop=stop)
    return plan


def _dispatch_only(snapshot: Snapshot, policy: str, progress: Progress | None) -> Plan:
    from scheduler.core.dispatch import best_dispatch, dispatch

    plan = best_dispatch(snapshot)[1] if policy == "cpsat" else dispatch(snapshot, policy)
    try:
        from scheduler.core.forecast import forecast
    except ImportError:
        pass
    else:
        plan = replace(plan, forecast=tuple(forecast(snapshot, plan)))
    if progress is not None:
        progress(1.0, plan.objective or 0)
    return plan
