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
from scheduler.core.rules.exposure import DAILY, SEVERE_DAILY, WEEKLY, Cap, ExposureLedger


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
    """Rule 5: daily cap (plus minutes already logged), severe daily cap, weekly cap.

    The caps, what each counts and the room the logged and fixed minutes leave come from
    ``scheduler.core.rules.exposure``; this module only sums the free jobs' literals against it.
    """
    snap = ctx.snapshot
    # Room left per cap once the logged minutes and the fixed jobs are counted.
    if ctx.base is not None:
        ledger = ctx.base.ledger.copy()
        for job_id in ctx.free:
            a = ctx.base.placements[job_id]
            job = ctx.jobs[job_id]
            if a is not None and a.examiner is not None and job.exposure > 0:
                examiner = ctx.examiners.get(a.examiner)
                if examiner is not None:
                    ledger.give_back(job, examiner, a.start)
    else:
        ledger = ExposureLedger(snap).take_all(ctx.fixed.values())

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

    def bind(cap: Cap, e: str, period: int, items: list[tuple[JobVars, int]]) -> None:
        """``sum exposure * exposed <= room``, unless all that could land there fits anyway."""
        room = ledger.room(cap, ctx.examiners[e], period)
        counted = [(jv, d) for jv, d in items if cap.counts(jv.job)]
        if room is None or not counted or sum(jv.job.exposure for jv, _ in counted) <= room:
            return
        lits = [exposed.get(jv, e, d) for jv, d in counted]
        minutes = [jv.job.exposure for jv, _ in counted]
        ctx.model.add(cp_model.LinearExpr.weighted_sum(lits, minutes) <= room).with_name(
            f"{cap.rule}[e={e},{cap.period[0]}={period}]"
        )

    for (e, d), jobs in sorted(candidates.items()):
        for cap in (DAILY, SEVERE_DAILY):
            bind(cap, e, d, [(jv, d) for jv in jobs])

    by_week: dict[tuple[str, int], list[tuple[JobVars, int]]] = defaultdict(list)
    for (e, d), jobs in candidates.items():
        k = WEEKLY.period_of(snap, snap.days[d][0])
        if k is not None:
            by_week[e, k].extend((jv, d) for jv in jobs)
    for (e, k), items in sorted(by_week.items(), key=lambda kv: kv[0]):
        bind(WEEKLY, e, k, items)
