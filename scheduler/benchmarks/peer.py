"""PyJobShop, the open CP-SAT scheduling library we compare against on the shop benchmarks.

It is an optional extra (``pip install labq[bench]``): without it the benchmarks say so and go
on. The model is built from the same snapshot our engine solves, so both see identical data.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any

from scheduler.core.snapshot import Snapshot

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class PeerResult:
    makespan: int | None
    lower_bound: int | None
    status: str
    seconds: float


def pyjobshop_available() -> bool:
    try:
        import pyjobshop  # noqa: F401
    except ImportError:
        return False
    return True


def pyjobshop_makespan(snapshot: Snapshot, *, time_limit: float, workers: int) -> PeerResult:
    """Solve a makespan snapshot of machine-only jobs with PyJobShop's OR-Tools backend."""
    import pyjobshop

    if snapshot.objective != "makespan" or any(j.attended for j in snapshot.jobs):
        raise ValueError("PyJobShop comparison needs a makespan snapshot of machine-only jobs")
    model: Any = pyjobshop.Model()
    machines = {w.id: model.add_machine(name=w.id) for w in snapshot.workstations}
    cases: dict[str, Any] = {}
    tasks: dict[str, Any] = {}
    for job in snapshot.jobs:
        if job.case not in cases:
            cases[job.case] = model.add_job(name=job.case)
        task = model.add_task(job=cases[job.case], name=job.id)
        tasks[job.id] = task
        durations = job.machine_by_workstation or {
            w.id: job.machine for w in snapshot.workstations if job.capabilities <= w.capabilities
        }
        for workstation, minutes in durations.items():
            model.add_mode(task, machines[workstation], minutes)
    for job in snapshot.jobs:
        for predecessor in job.after:
            if predecessor in tasks:
                model.add_end_before_start(tasks[predecessor], tasks[job.id])
    started = time.perf_counter()
    result = model.solve(time_limit=time_limit, num_workers=workers, display=False)
    seconds = time.perf_counter() - started
    found = result.objective != float("inf")
    logger.debug("pyjobshop %s: %s in %.1f s", snapshot.lab, result.objective, seconds)
    return PeerResult(
        makespan=round(result.objective) if found else None,
        lower_bound=round(result.lower_bound) if found else None,
        status=str(result.status.value),
        seconds=seconds,
    )
