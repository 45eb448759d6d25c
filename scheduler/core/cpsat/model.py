"""The CP-SAT model of one lab: an explicit, ordered list of rules applied to a context.

``build_model`` is the only way a model is made, for the full problem and for every neighbourhood
of the large-neighbourhood search alike, so the hard rules live in exactly one place each:

=====================  ================================================================
rule module            rule (docs/architecture.md §3)
=====================  ================================================================
eligibility            1  skills, capabilities, allow-lists, max severity
placement              2-5 availability and exposure windows, release, horizon (domains)
precedence             4  predecessors first; a left-out predecessor keeps successors out
resources              2-3 examiner no-overlap, workstation and pool capacity
exposure               5  daily, severe daily and weekly exposure caps
costs                  soft terms: tardiness (or makespan), change, balance, continuity
=====================  ================================================================
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

from ortools.sat.python import cp_model

from scheduler.core.cpsat import costs, eligibility, exposure, placement, precedence, resources
from scheduler.core.cpsat.context import FixedContext, Interval, ModelContext
from scheduler.core.plan import Assignment
from scheduler.core.snapshot import Snapshot

Rule = Callable[[ModelContext], None]

HARD_RULES: tuple[Rule, ...] = (
    eligibility.add_eligibility,
    placement.add_placement,
    precedence.add_precedence,
    resources.add_examiner_no_overlap,
    resources.add_workstation_capacity,
    resources.add_pool_capacity,
    exposure.add_exposure_caps,
)

SOFT_RULES: tuple[Rule, ...] = (
    costs.add_change,
    costs.add_balance,
    costs.add_continuity,
    costs.add_objective,
)


def build_model(
    snapshot: Snapshot,
    free: Sequence[str],
    fixed: Mapping[str, Assignment | None],
    *,
    start_windows: Mapping[str, Interval] | None = None,
    forced: frozenset[str] = frozenset(),
    allowed: Mapping[str, frozenset[str]] | None = None,
    balance_scope: Sequence[str] | None = None,
    tie_break: bool = False,
    base: FixedContext | None = None,
) -> ModelContext:
    """Build the model over ``free`` jobs with every other job held at ``fixed`` (with ``base``,
    the whole plan's fixed context, held where it places them: see ``ModelContext``)."""
    ctx = ModelContext(
        snapshot,
        free,
        fixed,
        start_windows=start_windows,
        forced=forced,
        allowed=allowed,
        balance_scope=balance_scope,
        tie_break=tie_break,
        base=base,
    )
    primary = costs.add_makespan if snapshot.objective == "makespan" else costs.add_tardiness
    for rule in (*HARD_RULES, primary, *SOFT_RULES):
        rule(ctx)
    return ctx


def read_solution(ctx: ModelContext, solver: cp_model.CpSolver) -> dict[str, Assignment | None]:
    """Placement of every free job in the solver's current solution (``None`` = left out)."""
    out: dict[str, Assignment | None] = {}
    for job_id in ctx.free:
        jv = ctx.vars[job_id]
        if not solver.boolean_value(jv.present):
            out[job_id] = None
            continue
        start = solver.value(jv.start)
        examiner = next((e for e, x in jv.examiners.items() if solver.boolean_value(x)), None)
        ws = next((w for w, y in jv.workstations.items() if solver.boolean_value(y)), None)
        out[job_id] = Assignment(job_id, examiner, ws, start, start + jv.job.duration_on(ws))
    return out


def term_values(ctx: ModelContext, solver: cp_model.CpSolver) -> dict[str, int]:
    """Raw value of every soft term in the solver's current solution."""
    return {name: int(solver.value(t.expr)) + t.constant for name, t in ctx.terms.items()}
