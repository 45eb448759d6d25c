"""A repair run, local: room for the trigger is taken from less urgent work first.

A repair (an escalation, new urgent cases, an absence) should change what its trigger forces and
the cheapest room it needs, and nothing else (docs/architecture.md §7.7). Freeing the whole
repair window lets the solver improve unrelated work too, which moves other P1/P2 cases for no
reason of the trigger's. So a repair is tried twice at most:

1. *held*: the unchanged published work of P1/P2 cases that is on time where it stands stays
   pinned inside the repair window as well (``load_snapshot(..., hold_urgent=True)``); only the
   changed jobs, late urgent work (an escalated case's, late where it was put as a less urgent
   case) and less urgent work are re-planned. If the trigger's urgent jobs are all on time, that
   plan is the repair.
2. *wide*: the repair window is free (``mode="repair"``). Its plan is taken only if it makes the
   trigger's urgent jobs (new, changed or of a changed case: ``IdMap.triggered``) less late; then
   the version's warnings say which P1/P2 case finishes later and whose work took its place
   (`scheduler/planning/delays.py`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from scheduler.core import objective as obj
from scheduler.core.plan import INFEASIBLE, PIN_CONFLICT, Plan
from scheduler.core.snapshot import Snapshot
from scheduler.planning.loading.idmap import IdMap

logger = logging.getLogger(__name__)

Solve = Callable[[Snapshot, float], Plan]  # (snapshot, seconds) -> plan


@dataclass(frozen=True)
class Loaded:
    snapshot: Snapshot
    idmap: IdMap


def triggered_urgent(held: Loaded) -> set[str]:
    """The P1/P2 jobs the trigger touched (new, changed, dropped, or of a changed case) that the
    held try leaves free: the work whose lateness the two tries are compared on."""
    idmap, snapshot = held.idmap, held.snapshot
    kept = snapshot.kept  # pinned or frozen: never free
    return {
        job.id
        for job in snapshot.jobs
        if job.id in idmap.triggered and job.id not in kept and idmap.is_urgent(job.case)
    }


def lateness(snapshot: Snapshot, plan: Plan, jobs: set[str]) -> int:
    """Weighted tardiness of ``jobs`` in ``plan`` (a job left out ends after the horizon)."""
    by_id = snapshot.jobs_by_id
    ends = {a.job: a.end for a in plan.assignments}
    total = 0
    for sid in jobs:
        job = by_id.get(sid)
        if job is None:
            continue
        end = ends.get(sid)
        total += obj.job_tardiness(
            job, end if end is not None else obj.unassigned_end(snapshot, job)
        )
    return total


def local_repair(
    held: Loaded, wide: Callable[[], Loaded], solve: Solve, seconds: float
) -> tuple[Loaded, Plan]:
    """The held try, or the wide one where it makes the trigger's urgent jobs less late. Each try
    gets half of ``seconds`` (not what the clock leaves: one worker stays reproducible)."""
    plan = solve(held.snapshot, seconds / 2)
    free = triggered_urgent(held)
    late = lateness(held.snapshot, plan, free)
    conflicts = any(u.reason == PIN_CONFLICT for u in plan.unscheduled)
    if late == 0 and not conflicts and plan.status != INFEASIBLE:
        logger.info("repair: held (the trigger's %d urgent jobs on time)", len(free))
        return held, plan
    other = wide()
    wide_plan = solve(other.snapshot, seconds / 2)
    wide_late = lateness(other.snapshot, wide_plan, free)
    if conflicts or plan.status == INFEASIBLE or wide_late < late:
        logger.info(
            "repair: wide (held %s, the trigger's urgent jobs' weighted lateness %d held, %d wide)",
            "infeasible" if conflicts or plan.status == INFEASIBLE else "feasible",
            late,
            wide_late,
        )
        return other, wide_plan
    logger.info("repair: held (the wide try is no less late: %d held, %d wide)", late, wide_late)
    return held, plan
