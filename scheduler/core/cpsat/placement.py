"""Rules 2-5, time part: where each free job may start; its presence, start and intervals.

Availability windows, exposure windows (before the cut-off), release, the horizon, fixed
predecessors and successors and the time fixed jobs already occupy are all folded into start
domains (``NewIntVarFromDomain``), so "inside one window" needs no extra constraint and the
no-overlap propagators see the holes.
"""

from __future__ import annotations

from ortools.sat.python import cp_model

from scheduler.core.cpsat import intervals as iv
from scheduler.core.cpsat.context import Interval, JobVars, ModelContext
from scheduler.core.snapshot import Job


def _examiner_windows(ctx: ModelContext) -> dict[str, tuple[list[Interval], list[Interval]]]:
    """Per examiner: (free availability, free exposure windows) after fixed jobs' attended time."""
    out: dict[str, tuple[list[Interval], list[Interval]]] = {}
    for e in ctx.examiners.values():
        busy = [span for _, span in ctx.fixed_attended.get(e.id, [])]
        available = iv.subtract(list(e.available), busy)
        exposure = iv.subtract(iv.intersect(list(e.available), list(e.exposure.windows)), busy)
        out[e.id] = (available, exposure)
    return out


def _workstation_windows(ctx: ModelContext) -> dict[str, list[Interval]]:
    """Per workstation: availability minus the time fixed jobs fill to capacity."""
    out: dict[str, list[Interval]] = {}
    for w in ctx.workstations.values():
        available = list(w.available) if w.available else [(0, ctx.horizon)]
        full = iv.overloaded([s for _, s in ctx.fixed_machine.get(w.id, [])], w.capacity)
        out[w.id] = iv.subtract(available, full)
    return out


def _pool_windows(ctx: ModelContext) -> dict[str, list[Interval]]:
    """Per pool: the horizon minus the time fixed jobs hold every licence."""
    out: dict[str, list[Interval]] = {}
    for pool, capacity in ctx.pool_capacity.items():
        full = iv.overloaded([s for _, s in ctx.fixed_pool.get(pool, [])], capacity)
        out[pool] = iv.subtract([(0, ctx.horizon)], full)
    return out


def _bounds(ctx: ModelContext, job: Job) -> tuple[int, int, bool, bool]:
    """(earliest start, latest end, must be present, cannot be present) from fixed neighbours."""
    lb = max(job.release, 0)
    end_ub = ctx.horizon
    impossible = False
    for pred in job.after:
        if pred not in ctx.jobs or pred in ctx.free_set:
            continue
        end = ctx.fixed_end(pred)
        if end is None:
            impossible = True  # a present predecessor is left out: so is this job
        else:
            lb = max(lb, end)
    forced = job.id in ctx.forced
    for succ in ctx.successors.get(job.id, []):
        if succ in ctx.free_set:
            continue
        a = ctx.fixed.get(succ)
        if a is not None:
            forced = True
            end_ub = min(end_ub, a.start)
    return lb, end_ub, forced, impossible


def add_placement(ctx: ModelContext) -> None:
    """Rules 2-5 (time): start domains, presence, options, attended/machine/pool intervals."""
    examiner_windows = _examiner_windows(ctx)
    workstation_windows = _workstation_windows(ctx)
    pool_windows = _pool_windows(ctx)
    for job_id in ctx.free:
        job = ctx.jobs[job_id]
        lb, end_ub, forced, impossible = _bounds(ctx, job)
        base = [(lb, end_ub - job.min_duration)]
        window = ctx.start_windows.get(job_id)
        if window is not None:
            base = iv.clip_closed(base, *window)

        ws_dom: dict[str, list[Interval]] = {}
        for w in ctx.workstation_options[job_id]:
            dur = job.duration_on(w)
            starts = iv.starts_fitting(workstation_windows[w], job.machine_on(w))
            starts = iv.clip_closed(starts, lb, end_ub - dur)
            if window is not None:
                starts = iv.clip_closed(starts, *window)
            for pool in job.pools:
                starts = iv.intersect_closed(
                    iv.normalize_closed(starts),
                    iv.normalize_closed(iv.starts_fitting(pool_windows.get(pool, []), dur)),
                )
            starts = iv.normalize_closed(starts)
            if starts:
                ws_dom[w] = starts

        ex_dom: dict[str, list[Interval]] = {}
        for e in ctx.examiner_options[job_id]:
            available, exposure = examiner_windows[e]
            wins = exposure if job.exposure > 0 else available
            starts = iv.intersect_closed(
                iv.normalize_closed(iv.starts_fitting(wins, job.attended)), base
            )
            if not job.needs_workstation:
                for pool in job.pools:
                    starts = iv.intersect_closed(
                        starts,
                        iv.normalize_closed(
                            iv.starts_fitting(pool_windows.get(pool, []), job.attended)
                        ),
                    )
            if starts:
                ex_dom[e] = starts

        dom = iv.normalize_closed(iv.clip_closed(base, 0, ctx.horizon))
        if job.needs_examiner:
            dom = iv.intersect_closed(
                dom, iv.normalize_closed(r for v in ex_dom.values() for r in v)
            )
        if job.needs_workstation:
            dom = iv.intersect_closed(
                dom, iv.normalize_closed(r for v in ws_dom.values() for r in v)
            )
        if not job.needs_workstation and not job.needs_examiner:
            for pool in job.pools:
                dom = iv.intersect_closed(
                    dom, iv.normalize_closed(iv.starts_fitting(pool_windows.get(pool, []), 0))
                )
        if impossible:
            dom = []
        ex_dom = {
            e: r for e, r in ((e, iv.intersect_closed(r, dom)) for e, r in ex_dom.items()) if r
        }
        ws_dom = {
            w: r for w, r in ((w, iv.intersect_closed(r, dom)) for w, r in ws_dom.items()) if r
        }
        if job.needs_examiner and not ex_dom:
            dom = []
        if job.needs_workstation and not ws_dom:
            dom = []
        _make_vars(ctx, job, dom, ex_dom, ws_dom, forced)


def _make_vars(
    ctx: ModelContext,
    job: Job,
    dom: list[Interval],
    ex_dom: dict[str, list[Interval]],
    ws_dom: dict[str, list[Interval]],
    forced: bool,
) -> None:
    model = ctx.model
    jid = job.id
    present = model.new_bool_var(f"present[j={jid}]")
    if not dom:
        model.add(present == 0)
        start = model.new_int_var(0, 0, f"start[j={jid}]")
        ctx.vars[jid] = JobVars(job=job, present=present, start=start, end=start)
        if forced:
            model.add(present == 1)  # infeasible on purpose: a fixed successor needs this job
        return
    if forced:
        model.add(present == 1)
    start = model.new_int_var_from_domain(iv.domain(dom), f"start[j={jid}]")
    jv = JobVars(job=job, present=present, start=start, end=start, start_domain=dom)

    for e, r in ex_dom.items():
        lit = model.new_bool_var(f"assign[j={jid},e={e}]")
        s = start
        if r != dom:
            s = model.new_int_var_from_domain(iv.domain(r), f"start[j={jid},e={e}]")
            model.add(s == start).only_enforce_if(lit)
            jv.option_starts[f"e:{e}"] = s
        jv.examiners[e] = lit
        jv.attended[e] = model.new_optional_fixed_size_interval_var(
            s, job.attended, lit, f"attended[j={jid},e={e}]"
        )
    if job.needs_examiner:
        model.add(sum(jv.examiners.values()) == present)

    durations: dict[str, int] = {}
    for w, r in ws_dom.items():
        lit = model.new_bool_var(f"use[j={jid},w={w}]")
        s = start
        if r != dom:
            s = model.new_int_var_from_domain(iv.domain(r), f"start[j={jid},w={w}]")
            model.add(s == start).only_enforce_if(lit)
            jv.option_starts[f"w:{w}"] = s
        jv.workstations[w] = lit
        jv.machine[w] = model.new_optional_fixed_size_interval_var(
            s, job.machine_on(w), lit, f"machine[j={jid},w={w}]"
        )
        durations[w] = job.duration_on(w)
    if job.needs_workstation:
        model.add(sum(jv.workstations.values()) == present)

    if len(set(durations.values())) > 1:
        # The duration depends on the workstation: end = start + the chosen one's duration.
        end = model.new_int_var(0, ctx.horizon, f"end[j={jid}]")
        size = model.new_int_var_from_domain(
            cp_model.Domain.from_values([0, *durations.values()]), f"duration[j={jid}]"
        )
        model.add(size == sum(durations[w] * lit for w, lit in jv.workstations.items()))
        model.add(end == start + size).only_enforce_if(present)
        jv.end = end
        jv.end_var = end
        jv.size_var = size
        if job.pools:
            jv.span = model.new_optional_interval_var(start, size, end, present, f"span[j={jid}]")
    else:
        duration = next(iter(durations.values())) if durations else job.attended
        jv.end = start + duration
        if job.pools:
            jv.span = model.new_optional_fixed_size_interval_var(
                start, duration, present, f"span[j={jid}]"
            )
    ctx.vars[jid] = jv
