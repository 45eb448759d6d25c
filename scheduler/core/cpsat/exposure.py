"""Rule 5, the caps: exposure minutes per examiner per lab-local day, severe minutes, and per week.

A job counts against the day and the week in which it starts. Each exposure job gets one
``starts_on[j=..,d=..]`` literal per day it can start on; ``exposed[j=..,e=..,d=..]`` is implied by
"assigned to e and starts on d" and the caps sum those. Caps that cannot bind (all the exposure that
could land there fits) get no constraint at all, which keeps neighbourhood models small.
"""

from __future__ import annotations

from bisect import bisect_right
from collections import defaultdict

from ortools.sat.python import cp_model

from scheduler.core import intervals as iv
from scheduler.core.cpsat.context import JobVars, ModelContext


def start_day_literal(ctx: ModelContext, jv: JobVars, day: int) -> cp_model.IntVar:
    """Literal "the job starts on ``day``" (created with the job's other day literals)."""
    if not jv.start_days:
        _make_start_days(ctx, jv)
    lit = jv.start_days.get(day)
    if lit is None:
        lit = ctx.model.new_constant(0)
    return lit


def possible_days(ctx: ModelContext, jv: JobVars) -> list[int]:
    """Days on which the job's start domain has a value."""
    days = ctx.snapshot.days
    starts = ctx.day_starts
    out: set[int] = set()
    for lo, hi in jv.start_domain:
        d = max(0, bisect_right(starts, lo) - 1)
        while d < len(days) and days[d][0] <= hi:
            if days[d][1] > lo:
                out.add(d)
            d += 1
    return sorted(out)


def _make_start_days(ctx: ModelContext, jv: JobVars) -> None:
    model = ctx.model
    days = possible_days(ctx, jv)
    if len(days) == 1:
        jv.start_days[days[0]] = jv.present
        return
    for d in days:
        a, b = ctx.snapshot.days[d]
        lit = model.new_bool_var(f"starts_on[j={jv.job.id},d={d}]")
        model.add_linear_constraint(jv.start, a, b - 1).only_enforce_if(lit)
        jv.start_days[d] = lit
    # Starts outside every listed day (if the days do not cover the horizon) count nowhere.
    model.add(sum(jv.start_days.values()) <= jv.present)
    coverage = iv.merge_closed((a, b - 1) for a, b in ctx.snapshot.days)
    if iv.intersect_closed(jv.start_domain, coverage) == jv.start_domain:
        model.add(sum(jv.start_days.values()) == jv.present)


class _Exposed:
    """Cache of ``exposed[j,e,d]`` literals (kept in ``ctx.exposed`` for the warm start)."""

    def __init__(self, ctx: ModelContext) -> None:
        self.ctx = ctx
        self.cache = ctx.exposed

    def get(self, jv: JobVars, e: str, d: int) -> cp_model.IntVar:
        key = (jv.job.id, e, d)
        lit = self.cache.get(key)
        if lit is None:
            day = start_day_literal(self.ctx, jv, d)
            assign = jv.examiners[e]
            if day is jv.present:
                lit = assign
            else:
                lit = self.ctx.model.new_bool_var(f"exposed[j={jv.job.id},e={e},d={d}]")
                self.ctx.model.add_bool_or([assign.Not(), day.Not(), lit])
            self.cache[key] = lit
        return lit


def add_exposure_caps(ctx: ModelContext) -> None:
    """Rule 5: daily cap (plus minutes already logged), severe daily cap, weekly cap."""
    snap = ctx.snapshot
    # Fixed exposure per (examiner, day) and (examiner, week).
    fixed_day: dict[tuple[str, int], int] = defaultdict(int)
    fixed_severe: dict[tuple[str, int], int] = defaultdict(int)
    fixed_week: dict[tuple[str, int], int] = defaultdict(int)
    for job_id, a in ctx.fixed.items():
        job = ctx.jobs[job_id]
        if a is None or a.examiner is None or job.exposure <= 0:
            continue
        d = ctx.day_of(a.start)
        k = ctx.week_of(a.start)
        if d is not None:
            fixed_day[a.examiner, d] += job.exposure
            if job.is_severe:
                fixed_severe[a.examiner, d] += job.exposure
        if k is not None:
            fixed_week[a.examiner, k] += job.exposure

    # Free exposure jobs that could land on each (examiner, day).
    candidates: dict[tuple[str, int], list[JobVars]] = defaultdict(list)
    for jv in ctx.vars.values():
        if jv.job.exposure <= 0 or not jv.examiners:
            continue
        days = possible_days(ctx, jv)
        for e in jv.examiners:
            for d in days:
                candidates[e, d].append(jv)

    exposed = _Exposed(ctx)
    week_of_day = {d: ctx.week_of(a) for d, (a, _) in enumerate(snap.days)}
    for (e, d), jobs in sorted(candidates.items()):
        examiner = ctx.examiners[e]
        policy = examiner.exposure
        if policy.daily_cap is not None:
            logged = ctx.snapshot.logged_day_exposure(examiner).get(d, 0)
            room = policy.daily_cap - logged - fixed_day[e, d]
            if sum(jv.job.exposure for jv in jobs) > room:
                ctx.model.add(
                    sum(jv.job.exposure * exposed.get(jv, e, d) for jv in jobs) <= max(room, 0)
                ).with_name(f"exposure_daily_cap[e={e},d={d}]")
        if policy.severe_daily_cap is not None:
            severe = [jv for jv in jobs if jv.job.is_severe]
            room = policy.severe_daily_cap - fixed_severe[e, d]
            if sum(jv.job.exposure for jv in severe) > room:
                ctx.model.add(
                    sum(jv.job.exposure * exposed.get(jv, e, d) for jv in severe) <= max(room, 0)
                ).with_name(f"exposure_severe_daily_cap[e={e},d={d}]")

    by_week: dict[tuple[str, int], list[tuple[JobVars, int]]] = defaultdict(list)
    for (e, d), jobs in candidates.items():
        k = week_of_day.get(d)
        if k is not None:
            by_week[e, k].extend((jv, d) for jv in jobs)
    for (e, k), items in sorted(by_week.items(), key=lambda kv: kv[0]):
        examiner = ctx.examiners[e]
        policy = examiner.exposure
        if policy.weekly_cap is None:
            continue
        logged = ctx.snapshot.logged_week_exposure(examiner).get(k, 0)
        room = policy.weekly_cap - logged - fixed_week[e, k]
        if sum(jv.job.exposure for jv, _ in items) <= room:
            continue
        ctx.model.add(
            sum(jv.job.exposure * exposed.get(jv, e, d) for jv, d in items) <= max(room, 0)
        ).with_name(f"exposure_weekly_cap[e={e},w={k}]")
