"""Warm starts: give *every* variable of a model its value in a known plan.

CP-SAT takes a complete, feasible hint as its first solution straight after presolve, so a
neighbourhood solve can only return the incumbent or something better; a partial hint has to be
repaired by search and, under a short time limit, may come back worse than the plan it started from.
"""

from __future__ import annotations

from collections.abc import Mapping

from ortools.sat.python import cp_model

from scheduler.core import objective as obj
from scheduler.core.cpsat.context import ModelContext
from scheduler.core.plan import Assignment


def add_hint(ctx: ModelContext, assignments: Mapping[str, Assignment]) -> None:
    """Hint every variable of ``ctx`` from ``assignments`` (a free job not in it is left out)."""
    model = ctx.model
    proto_vars = model.proto.variables
    values: dict[int, int] = {}

    def put(var: cp_model.IntVar, value: int) -> None:
        if var.index not in values:
            values[var.index] = value

    def lowest(var: cp_model.IntVar) -> int:
        return int(proto_vars[var.index].domain[0])

    snap = ctx.snapshot
    chosen: dict[str, Assignment] = {}
    for job_id in ctx.free:
        jv = ctx.vars[job_id]
        a = assignments.get(job_id)
        present = a is not None and bool(jv.start_domain)
        put(jv.present, int(present))
        if a is None or not present:
            put(jv.start, lowest(jv.start))
            for lit in (*jv.examiners.values(), *jv.workstations.values()):
                put(lit, 0)
            for var in jv.option_starts.values():
                put(var, lowest(var))
            if jv.size_var is not None:
                put(jv.size_var, 0)
            if jv.end_var is not None:
                put(jv.end_var, lowest(jv.end_var))
            for lit in jv.start_days.values():
                put(lit, 0)
            if jv.late is not None:
                put(jv.late, 0)
            if jv.finish is not None:
                put(jv.finish, obj.unassigned_end(snap, jv.job))
            if jv.kept is not None:
                put(jv.kept, 0)
            if jv.same_start is not None:
                put(jv.same_start, 0)
            continue
        chosen[job_id] = a
        put(jv.start, a.start)
        for e, lit in jv.examiners.items():
            put(lit, int(e == a.examiner))
        for w, lit in jv.workstations.items():
            put(lit, int(w == a.workstation))
        for key, var in jv.option_starts.items():
            kind, rid = key.split(":", 1)
            mine = a.examiner if kind == "e" else a.workstation
            put(var, a.start if rid == mine else lowest(var))
        duration = jv.job.duration_on(a.workstation)
        if jv.size_var is not None:
            put(jv.size_var, duration)
        if jv.end_var is not None:
            put(jv.end_var, a.start + duration)
        day = snap.day_of(a.start)
        for d, lit in jv.start_days.items():
            put(lit, int(d == day))
        if jv.late is not None:
            due = jv.job.due if jv.job.due is not None else a.start + duration
            put(jv.late, max(0, a.start + duration - due))
        if jv.kept is not None:
            put(jv.kept, int(_kept(ctx, job_id, a)))
        if jv.same_start is not None:
            put(
                jv.same_start,
                int(_kept(ctx, job_id, a) and _published_start(ctx, job_id) == a.start),
            )
        if jv.finish is not None:
            put(jv.finish, a.start + duration)

    for (job_id, e, d), lit in ctx.exposed.items():
        a = chosen.get(job_id)
        put(lit, int(a is not None and a.examiner == e and snap.day_of(a.start) == d))

    if ctx.makespan is not None:
        ends = [lowest(ctx.makespan)]
        for job_id in ctx.free:
            a = chosen.get(job_id)
            ends.append(a.end if a is not None else obj.unassigned_end(snap, ctx.jobs[job_id]))
        put(ctx.makespan, max(ends))

    if ctx.balance is not None:
        loads = dict(ctx.balance_loads)  # the fixed jobs' (costs.add_balance)
        for job_id, a in chosen.items():
            job = ctx.jobs[job_id]
            if job.exposure > 0 and a.examiner in loads:
                loads[a.examiner] += job.exposure
        high, low = ctx.balance
        put(high, max(loads.values()))
        put(low, min(loads.values()))

    for u, lits in ctx.works_on.values():
        put(u, int(any(values.get(lit.index, 0) for lit in lits)))
    for extra, base, used in ctx.continuity.values():
        count = base + sum(values.get(u.index, 0) for u in used)
        put(extra, max(0, count - 1))

    hint = model.proto.solution_hint
    hint.vars.extend(values.keys())
    hint.values.extend(values.values())


def _published_start(ctx: ModelContext, job_id: str) -> int | None:
    return next((p.start for p in ctx.snapshot.previous if p.job == job_id), None)


def _kept(ctx: ModelContext, job_id: str, a: Assignment) -> bool:
    snap = ctx.snapshot
    for prev in snap.previous:
        if prev.job == job_id:
            return (
                prev.examiner == a.examiner
                and prev.workstation == a.workstation
                and snap.day_of(prev.start) == snap.day_of(a.start)
            )
    return False
