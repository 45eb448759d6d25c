"""Rules 2-3, capacity: one job at a time per examiner; workstations and pools up to capacity.

Time taken by fixed jobs on capacity-1 resources is already cut out of the start domains; on larger
capacities the fixed jobs that can meet a free one enter the cumulative as constant intervals.
"""

from __future__ import annotations

from ortools.sat.python import cp_model

from scheduler.core.cpsat.context import Interval, ModelContext


def add_examiner_no_overlap(ctx: ModelContext) -> None:
    """Rule 2: an examiner's attended intervals do not overlap."""
    by_examiner: dict[str, list[cp_model.IntervalVar]] = {}
    for jv in ctx.vars.values():
        for e, interval in jv.attended.items():
            by_examiner.setdefault(e, []).append(interval)
    for intervals in by_examiner.values():
        if len(intervals) > 1:
            ctx.model.add_no_overlap(intervals)


def _reach(ctx: ModelContext, job_ids: list[str]) -> Interval:
    """Earliest start and latest end any of these free jobs can have."""
    lo, hi = ctx.horizon, 0
    for job_id in job_ids:
        jv = ctx.vars[job_id]
        if not jv.start_domain:
            continue
        longest = max((jv.job.duration_on(w) for w in jv.workstations), default=jv.job.min_duration)
        lo = min(lo, jv.start_domain[0][0])
        hi = max(hi, jv.start_domain[-1][1] + longest)
    return lo, hi


def _cumulative(
    ctx: ModelContext,
    name: str,
    free: list[tuple[str, cp_model.IntervalVar]],
    fixed: list[tuple[str, Interval]],
    capacity: int,
) -> None:
    if not free:
        return
    if capacity == 1 and len(free) > 1:
        ctx.model.add_no_overlap([i for _, i in free])
        return
    lo, hi = _reach(ctx, [j for j, _ in free])
    constants = [
        ctx.model.new_fixed_size_interval_var(a, b - a, f"fixed[{name},j={job_id}]")
        for job_id, (a, b) in fixed
        if b > lo and a < hi and b > a
    ]
    if len(free) + len(constants) <= capacity:
        return
    intervals = [i for _, i in free] + constants
    ctx.model.add_cumulative(intervals, [1] * len(intervals), capacity)


def add_workstation_capacity(ctx: ModelContext) -> None:
    """Rule 3: at most ``capacity`` machine intervals at once on a workstation."""
    free: dict[str, list[tuple[str, cp_model.IntervalVar]]] = {}
    for job_id, jv in ctx.vars.items():
        for w, interval in jv.machine.items():
            free.setdefault(w, []).append((job_id, interval))
    for w, items in free.items():
        fixed = ctx.fixed_machine.get(w, [])
        _cumulative(ctx, f"w={w}", items, fixed, ctx.workstations[w].capacity)


def add_pool_capacity(ctx: ModelContext) -> None:
    """Rule 3: a licence pool is held by at most ``capacity`` jobs over ``[start, end)``."""
    free: dict[str, list[tuple[str, cp_model.IntervalVar]]] = {}
    for job_id, jv in ctx.vars.items():
        if jv.span is None:
            continue
        for pool in jv.job.pools:
            free.setdefault(pool, []).append((job_id, jv.span))
    for pool, items in free.items():
        fixed = ctx.fixed_pool.get(pool, [])
        _cumulative(ctx, f"p={pool}", items, fixed, ctx.pool_capacity[pool])
