"""The soft terms (docs/architecture.md §4), built to give exactly what ``objective.py`` computes.

Each term is a :class:`Term` (a linear expression over the free jobs plus the constant the fixed
jobs contribute), so the model's objective is the plan's weighted objective. Penalty variables are
named after their rule (``tardiness[j=..]``, ``changed[j=..]``, ``continuity[c=..]``) so a solve
can say what each part costs.
"""

from __future__ import annotations

from collections import Counter, defaultdict

from ortools.sat.python import cp_model

from scheduler.core import objective as obj
from scheduler.core.cpsat.context import ModelContext, Term


def _charge(ctx: ModelContext, job_id: str) -> int:
    """End a left-out job is charged with (horizon plus its own shortest duration)."""
    return obj.unassigned_end(ctx.snapshot, ctx.jobs[job_id])


def add_tardiness(ctx: ModelContext) -> None:
    """Weighted tardiness against due times; a left-out job ends at horizon + its duration."""
    model = ctx.model
    term = Term()
    parts: list[cp_model.LinearExprT] = []
    if ctx.base is not None:
        base = ctx.base
        term.constant = base.tardiness_total - sum(base.tardiness[j] for j in ctx.free)
    else:
        for job_id, a in ctx.fixed.items():
            job = ctx.jobs[job_id]
            end = a.end if a is not None else _charge(ctx, job_id)
            term.constant += obj.job_tardiness(job, end)
    for job_id in ctx.free:
        jv = ctx.vars[job_id]
        job = jv.job
        if job.due is None or job.weight == 0:
            continue
        absent_cost = obj.job_tardiness(job, _charge(ctx, job_id))
        latest = max(0, ctx.horizon - job.due)
        if latest > 0 and jv.start_domain:
            late = model.new_int_var(0, latest, f"tardiness[j={job_id}]")
            model.add(late >= jv.end - job.due).only_enforce_if(jv.present)
            parts.append(job.weight * late)
            jv.late = late
        if absent_cost:
            term.constant += absent_cost
            parts.append(-absent_cost * jv.present)
    term.expr = sum(parts) if parts else 0
    ctx.terms[obj.TARDINESS] = term


def add_makespan(ctx: ModelContext) -> None:
    """Latest end over all jobs; a left-out job is charged horizon + its duration."""
    model = ctx.model
    floor = 0
    for job_id, a in ctx.fixed.items():
        floor = max(floor, a.end if a is not None else _charge(ctx, job_id))
    if not ctx.free:
        ctx.terms[obj.MAKESPAN] = Term(0, floor)
        return
    upper = max([floor] + [_charge(ctx, j) for j in ctx.free])
    makespan = model.new_int_var(floor, upper, "makespan")
    ctx.makespan = makespan
    for job_id in ctx.free:
        jv = ctx.vars[job_id]
        model.add(makespan >= jv.end).only_enforce_if(jv.present)
        model.add(makespan >= _charge(ctx, job_id)).only_enforce_if(jv.present.Not())
    ctx.terms[obj.MAKESPAN] = Term(makespan, 0)


def add_change(ctx: ModelContext) -> None:
    """Stability: each job whose examiner, workstation or day moved from the published plan."""
    model = ctx.model
    term = Term()
    parts: list[cp_model.LinearExprT] = []
    snap = ctx.snapshot
    for prev in snap.previous:
        if prev.job not in ctx.jobs:
            continue
        prev_day = snap.day_of(prev.start)
        if prev.job not in ctx.free_set:
            a = ctx.fixed[prev.job]
            same = (
                a is not None
                and a.examiner == prev.examiner
                and a.workstation == prev.workstation
                and snap.day_of(a.start) == prev_day
            )
            term.constant += 0 if same else prev.changes
            continue
        jv = ctx.vars[prev.job]
        job = jv.job
        ok = jv.start_domain != []
        ok = ok and (prev.examiner is None) == (not job.needs_examiner)
        ok = ok and (prev.workstation is None) == (not job.needs_workstation)
        ok = ok and (prev.examiner is None or prev.examiner in jv.examiners)
        ok = ok and (prev.workstation is None or prev.workstation in jv.workstations)
        if prev_day is None:
            target = cp_model.Domain.from_flat_intervals(
                [x for lo, hi in snap.days for x in (lo, hi - 1)]
            ).complement()
        else:
            lo, hi = snap.days[prev_day]
            target = cp_model.Domain(lo, hi - 1)
        if not ok:
            term.constant += prev.changes
            continue
        kept: cp_model.IntVar = model.new_bool_var(f"kept[j={prev.job}]")
        jv.kept = kept
        model.add_implication(kept, jv.present)
        if prev.examiner is not None:
            model.add_implication(kept, jv.examiners[prev.examiner])
        if prev.workstation is not None:
            model.add_implication(kept, jv.workstations[prev.workstation])
        model.add_linear_expression_in_domain(jv.start, target).only_enforce_if(kept)
        term.constant += prev.changes
        parts.append(-prev.changes * kept)
    term.expr = sum(parts) if parts else 0
    ctx.terms[obj.CHANGE] = term


def add_balance(ctx: ModelContext) -> None:
    """Spread (max - min) of planned exposure minutes over the examiners in scope."""
    model = ctx.model
    scope = ctx.balance_scope
    if len(scope) < 2:
        ctx.terms[obj.BALANCE] = Term()
        return
    constant: dict[str, int] = dict.fromkeys(scope, 0)
    if ctx.base is not None:
        base = ctx.base
        for e in scope:
            constant[e] = base.exposure_load.get(e, 0)
        for job_id in ctx.free:
            a = base.placements[job_id]
            job = ctx.jobs[job_id]
            if a is not None and job.exposure > 0 and a.examiner in constant:
                constant[a.examiner] -= job.exposure
    else:
        for job_id, a in ctx.fixed.items():
            job = ctx.jobs[job_id]
            if a is not None and job.exposure > 0 and a.examiner in constant:
                constant[a.examiner] += job.exposure
    ctx.balance_loads = constant
    free_parts: dict[str, list[cp_model.LinearExprT]] = defaultdict(list)
    total = sum(constant.values())
    for job_id in ctx.free:
        jv = ctx.vars[job_id]
        if jv.job.exposure <= 0:
            continue
        total += jv.job.exposure
        for e, lit in jv.examiners.items():
            if e in constant:
                free_parts[e].append(jv.job.exposure * lit)
    if not free_parts:
        ctx.terms[obj.BALANCE] = Term(0, max(constant.values()) - min(constant.values()))
        return
    high = model.new_int_var(max(constant.values()), total, "balance_max")
    low = model.new_int_var(0, min(constant.values()) + total, "balance_min")
    ctx.balance = (high, low)
    for e in scope:
        load = constant[e] + sum(free_parts.get(e, []))
        model.add(high >= load)
        model.add(low <= load)
    ctx.terms[obj.BALANCE] = Term(high - low, 0)


def add_continuity(ctx: ModelContext) -> None:
    """One examiner per case: extra distinct examiners on a case's attended jobs cost."""
    model = ctx.model
    term = Term()
    parts: list[cp_model.LinearExprT] = []
    fixed_by_case: dict[str, set[str]] = defaultdict(set)
    # with the whole plan's counts: the cases of free jobs are counted here, the rest at once
    untouched = 0
    if ctx.base is not None:
        whole = ctx.base
        counts: dict[str, Counter[str]] = {}
        for job_id in ctx.free:
            case = ctx.jobs[job_id].case
            if case not in counts:
                counts[case] = Counter(whole.case_examiners.get(case, {}))
            a = whole.placements[job_id]
            if a is not None and ctx.jobs[job_id].needs_examiner and a.examiner is not None:
                counts[case][a.examiner] -= 1
        untouched = whole.continuity_total
        for case, counted in counts.items():
            untouched -= max(0, len(whole.case_examiners.get(case, ())) - 1)
            examiners = {e for e, n in counted.items() if n > 0}
            if examiners:
                fixed_by_case[case] = examiners
    else:
        for job_id, a in ctx.fixed.items():
            job = ctx.jobs[job_id]
            if a is not None and job.needs_examiner and a.examiner is not None:
                fixed_by_case[job.case].add(a.examiner)
    term.constant = untouched
    free_by_case: dict[str, dict[str, list[cp_model.IntVar]]] = defaultdict(
        lambda: defaultdict(list)
    )
    for job_id in ctx.free:
        jv = ctx.vars[job_id]
        for e, lit in jv.examiners.items():
            if e not in fixed_by_case.get(jv.job.case, set()):
                free_by_case[jv.job.case][e].append(lit)
    for case, examiners in fixed_by_case.items():
        if case not in free_by_case:
            term.constant += len(examiners) - 1
    for case, options in sorted(free_by_case.items()):
        base = len(fixed_by_case.get(case, set()))
        used = []
        for e, lits in sorted(options.items()):
            if len(lits) == 1:
                used.append(lits[0])
                continue
            u = model.new_bool_var(f"works_on[c={case},e={e}]")
            for lit in lits:
                model.add_implication(lit, u)
            used.append(u)
            ctx.works_on[case, e] = (u, lits)
        extra = model.new_int_var(0, base + len(used), f"continuity[c={case}]")
        model.add(extra >= base + sum(used) - 1)
        ctx.continuity[case] = (extra, base, used)
        parts.append(extra)
    term.expr = sum(parts) if parts else 0
    ctx.terms[obj.CONTINUITY] = term


def add_objective(ctx: ModelContext) -> None:
    """Minimise the weighted sum of the terms, exactly ``objective.weighted_objective``."""
    w = ctx.snapshot.weights
    weights = {
        obj.TARDINESS: w.tardiness,
        obj.MAKESPAN: w.tardiness,
        obj.CHANGE: w.change,
        obj.BALANCE: w.balance,
        obj.CONTINUITY: w.continuity,
    }
    expr: list[cp_model.LinearExprT] = []
    constant = 0
    for name, term in ctx.terms.items():
        weight = weights[name]
        if weight == 0:
            continue
        expr.append(weight * term.expr)
        constant += weight * term.constant
    ctx.objective_constant = constant
    if not ctx.tie_break:
        ctx.model.minimize(sum(expr) + constant)
        return
    if ctx.snapshot.objective == "makespan":
        secondary, total = _ends(ctx)
    else:
        secondary, total = _moved_starts(ctx)
    ctx.tie_scale = total + 1
    ctx.model.minimize(
        cp_model.LinearExpr.sum([ctx.tie_scale * (sum(expr) + constant), *secondary])
    )


def _ends(ctx: ModelContext) -> tuple[list[cp_model.LinearExprT], int]:
    """Among plans of equal cost prefer the one that ends its jobs earliest: a neighbourhood that
    cannot shorten the latest end can still compact the plan and open the way for the next."""
    ends: list[cp_model.LinearExprT] = []
    total = 0
    for job_id in ctx.free:
        jv = ctx.vars[job_id]
        if not jv.start_domain:
            continue
        charge = _charge(ctx, job_id)
        finish = ctx.model.new_int_var(0, charge, f"finish[j={job_id}]")
        ctx.model.add(finish >= jv.end).only_enforce_if(jv.present)
        ctx.model.add(finish >= charge).only_enforce_if(jv.present.Not())
        jv.finish = finish
        ends.append(finish)
        total += charge
    return ends, total


def _moved_starts(ctx: ModelContext) -> tuple[list[cp_model.LinearExprT], int]:
    """Among plans of equal cost prefer the one that keeps published starts to the minute: the
    change term only counts examiner, workstation and day, but an examiner also reads the hour."""
    moved: list[cp_model.LinearExprT] = []
    for prev in ctx.snapshot.previous:
        jv = ctx.vars.get(prev.job) if prev.job in ctx.free_set else None
        if jv is None or jv.kept is None:
            continue
        same = ctx.model.new_bool_var(f"same_start[j={prev.job}]")
        ctx.model.add_implication(same, jv.kept)
        ctx.model.add(jv.start == prev.start).only_enforce_if(same)
        jv.same_start = same
        moved.append(1 - same)
    return moved, len(moved)
