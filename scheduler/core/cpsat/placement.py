"""Rules 2-5, time part: where each free job may start; its presence, start and intervals.

Availability windows, exposure windows (before the cut-off), release, the horizon, fixed
predecessors and successors and the time fixed jobs already occupy are all folded into start
domains (``NewIntVarFromDomain``), so "inside one window" needs no extra constraint and the
no-overlap propagators see the holes.
"""

from __future__ import annotations

from ortools.sat.python import cp_model

from scheduler.core import intervals as iv
from scheduler.core.cpsat.context import Interval, JobVars, ModelContext
from scheduler.core.snapshot import Job


class _Windows:
    """Free windows per resource after the fixed jobs, and the starts that fit a given length.

    Computed on demand and cached: a neighbourhood touches a few resources, and many jobs share
    the same length (review sittings), so most lookups are dictionary hits.
    """

    def __init__(self, ctx: ModelContext) -> None:
        self.ctx = ctx
        self.windows: dict[tuple[str, str], list[Interval]] = {}
        self.fits: dict[tuple[str, str, int], list[Interval]] = {}

    def _free(self, kind: str, rid: str) -> list[Interval]:
        key = (kind, rid)
        got = self.windows.get(key)
        if got is not None:
            return got
        ctx = self.ctx
        if kind in ("available", "exposure"):
            e = ctx.examiners[rid]
            busy = [span for _, span in ctx.fixed_attended.get(rid, [])]
            wins = list(e.available)
            if kind == "exposure":
                wins = iv.intersect(wins, list(e.exposure.windows))
            got = iv.subtract(wins, busy)
        elif kind == "workstation":
            w = ctx.workstations[rid]
            available = list(w.available) if w.available else [(0, ctx.horizon)]
            full = iv.overloaded([s for _, s in ctx.fixed_machine.get(rid, [])], w.capacity)
            got = iv.subtract(available, full)
        else:  # a licence pool
            capacity = ctx.pool_capacity.get(rid, 0)
            full = iv.overloaded([s for _, s in ctx.fixed_pool.get(rid, [])], capacity)
            got = iv.subtract([(0, ctx.horizon)], full) if capacity > 0 else []
        self.windows[key] = got
        return got

    def starts(self, kind: str, rid: str, length: int) -> list[Interval]:
        """Closed, merged ranges of starts s with ``[s, s+length)`` inside one free window."""
        key = (kind, rid, length)
        got = self.fits.get(key)
        if got is None:
            got = iv.merge_closed(iv.starts_fitting(self._free(kind, rid), length))
            self.fits[key] = got
        return got


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


def _pools_allow(
    windows: _Windows, job: Job, duration: int, starts: list[Interval]
) -> list[Interval]:
    """Starts where the whole job ``[start, start+duration)`` finds a free licence in each pool."""
    for pool in job.pools:
        starts = iv.intersect_closed(starts, windows.starts("pool", pool, duration))
    return starts


def add_placement(ctx: ModelContext) -> None:
    """Rules 2-5 (time): start domains, presence, options, attended/machine/pool intervals."""
    windows = _Windows(ctx)
    for job_id in ctx.free:
        job = ctx.jobs[job_id]
        lb, end_ub, forced, impossible = _bounds(ctx, job)
        base = [(max(lb, 0), min(end_ub, ctx.horizon) - job.min_duration)]
        window = ctx.start_windows.get(job_id)
        if window is not None:
            base = iv.clip_closed(base, *window)
        if impossible or not base or base[0][1] < base[0][0]:
            _make_vars(ctx, job, [], {}, {}, forced)
            continue

        pool_dom: dict[int, list[Interval]] = {}
        dom = base
        ws_dom: dict[str, list[Interval]] = {}
        if job.needs_workstation:
            for w in ctx.workstation_options[job_id]:
                dur = job.duration_on(w)
                starts = iv.clip_closed(
                    windows.starts("workstation", w, job.machine_on(w)), base[0][0], end_ub - dur
                )
                if window is not None:
                    starts = iv.clip_closed(starts, *window)
                if job.pools:
                    if dur not in pool_dom:
                        pool_dom[dur] = _pools_allow(windows, job, dur, [(0, ctx.horizon)])
                    starts = iv.intersect_closed(starts, pool_dom[dur])
                if starts:
                    ws_dom[w] = starts
            dom = iv.intersect_closed(dom, iv.merge_closed(r for v in ws_dom.values() for r in v))
        elif job.pools:
            dom = _pools_allow(windows, job, job.attended, dom)

        ex_dom: dict[str, list[Interval]] = {}
        if job.needs_examiner and dom:
            kind = "exposure" if job.exposure > 0 else "available"
            for e in ctx.examiner_options[job_id]:
                starts = iv.intersect_closed(windows.starts(kind, e, job.attended), dom)
                if starts:
                    ex_dom[e] = starts
            dom = iv.intersect_closed(dom, iv.merge_closed(r for v in ex_dom.values() for r in v))

        if job.needs_workstation:
            ws_dom = {
                w: r for w, r in ((w, iv.intersect_closed(r, dom)) for w, r in ws_dom.items()) if r
            }
        if (job.needs_examiner and not ex_dom) or (job.needs_workstation and not ws_dom):
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
