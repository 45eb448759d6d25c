"""The one entry point that turns a snapshot into a verified plan: ``solve(snapshot, config)``.

The service, the CLI and the benchmarks all call this function; it never raises on a valid
snapshot and never returns a plan the verifier rejects. The pipeline (docs/architecture.md §5):

1. dispatch baselines — the best of FIFO, strict priority and WSJF is the first valid plan and the
   fallback (with ``policy`` other than "cpsat" the named baseline is the answer);
2. candidate selection — which left-out jobs are worth trying to fit (the rest get a forecast);
3. CP-SAT — a full model when the candidate set is small (proves optimality on small labs), then
   large-neighbourhood search warm-started from the incumbent until the time limit;
4. verify — an optimized plan that fails the verifier is logged and replaced by the best valid one;
5. explanations, lower bound, forecast and the soft terms.

Pinned and frozen placements that cannot all be kept make the status "infeasible": the plan keeps
the ones that fit, and each dropped one is listed as ``pin_conflict`` with the jobs and rules it
clashes with (found with CP-SAT assumptions, see ``explain.py``).

The time limit is the budget of the whole call, and a promise: ``solve`` returns within
``time_limit + allowance(time_limit)`` (the allowance, ``max(2 s, 10 %)``, also covers a caller's
final verify and write). Every phase draws on one deadline: dispatch tries further baselines
only within ``DISPATCH_SHARE`` of it; the optimizer stops ``reserve`` seconds before it (more for
larger labs); the bound, the explanations and the forecast then degrade rather than overrun — a
weaker bound (relaxations not reached are skipped), jobs whose reason was not worked out marked
``NOT_EXPLAINED``, the least urgent backlog left without a forecast. With one worker the
optimizer counts CP-SAT's deterministic time instead of the clock, so the plan is reproducible;
wall time then stops it only at three times its share (``lns.improve``), so the promise holds
for two or more workers (the default of the CLI, the API's runs and the nightly run).
Memory and time stay bounded because the snapshot contract bounds the lab (``MAX_JOBS`` and the
other limits in ``snapshot.py``).
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace

from ortools.sat.python import cp_model

from scheduler.core import explain
from scheduler.core.bounds import Relaxation, lower_bound, relax
from scheduler.core.candidates import select_candidates
from scheduler.core.cpsat import add_hint, build_model, read_solution
from scheduler.core.cpsat.solver import make_solver
from scheduler.core.dispatch import POLICIES, best_dispatch, dispatch
from scheduler.core.eligibility import exposure_examiners
from scheduler.core.forecast import forecast
from scheduler.core.lns import (
    SearchOutcome,
    SearchSettings,
    improve,
    neighbourhood_seconds,
)
from scheduler.core.lp_bound import lp_bound
from scheduler.core.makespan import search as makespan_search
from scheduler.core.objective import CHANGE, job_tardiness, plan_objective, unassigned_end
from scheduler.core.plan import (
    FEASIBLE,
    HORIZON_FULL,
    INFEASIBLE,
    OPTIMAL,
    PIN_CONFLICT,
    UNKNOWN,
    Assignment,
    Plan,
    Unscheduled,
)
from scheduler.core.snapshot import Snapshot
from scheduler.core.stopping import check, under
from scheduler.core.verify import verify

log = logging.getLogger(__name__)

Progress = Callable[[float, int], None]

CPSAT = "cpsat"

#: Up to this many free jobs the whole problem is first given to CP-SAT as one model; larger
#: problems go straight to the neighbourhood search (a monolithic model stalls there).
FULL_MODEL_MAX_JOBS = 120

#: Share of the time limit the full model may take before the neighbourhood search continues.
FULL_MODEL_SHARE = 0.5

#: Makespan problems (shop benchmarks) get the whole time limit in ``makespan.search``: a full
#: model, then neighbourhoods that keep the other jobs' order rather than their times (freeing
#: part of the plan with the rest fixed in time rarely shortens the latest end).
MAKESPAN_FULL_MODEL_MAX_JOBS = 3000
MAKESPAN_FULL_MODEL_SHARE = 1.0

#: Our time-indexed LP bound (``lp_bound.py``) is far tighter than ``bounds.lower_bound`` on
#: overloaded labs but costs seconds: 1-2 s up to a few hundred jobs, 17-25 s at 2,000. Solves
#: of labs up to this many jobs spend up to ``LP_BOUND_SHARE`` of their time limit on it, so the
#: gap they report is honest; larger ones report the fast bound (``labq bench lab`` runs both).
#: With one worker the LP runs on a thread beside the search (the other core), so neither the
#: early objectives nor the search's budget pay for it; with more it runs before the search.
LP_BOUND_MAX_JOBS = 800
LP_BOUND_SHARE = 0.1

#: The LP has a column per job, day and examiner, and is built before its time limit starts:
#: it runs only while jobs x days stay within what ``LP_BOUND_MAX_JOBS`` jobs over a two-week
#: horizon make (a year-long horizon took minutes just to build).
LP_BOUND_MAX_JOB_DAYS = LP_BOUND_MAX_JOBS * 14


def _lp_bound_fits(snapshot: Snapshot) -> bool:
    jobs = len(snapshot.jobs)
    return jobs <= LP_BOUND_MAX_JOBS and jobs * max(1, len(snapshot.days)) <= LP_BOUND_MAX_JOB_DAYS


#: Share of the time limit within which dispatch tries further baselines and the warm start
#: from the published schedule (the first baseline always runs: it is the fallback plan).
DISPATCH_SHARE = 0.3

#: Share of the time limit after which the first baseline stops placing jobs: a lab too large
#: to dispatch whole in time leaves its least urgent jobs for the forecast (``dispatch``).
FIRST_DISPATCH_SHARE = 0.5

#: Seconds per job kept back from the optimizer for the explanations, the bound, the forecast
#: and the verify (measured: ~0.5 ms a job on a medium lab); at least ``min(2 s, 10 %)``, at most
#: half the limit.
RESERVE_SECONDS_PER_JOB = 5e-4


#: Seconds per job the explanations leave before the deadline for what must follow them: the
#: verify, the objective and the forecast's set-up (measured: ~0.4 s for 20,000 jobs, doubled).
TAIL_SECONDS_PER_JOB = 5e-5


#: With one worker, wall time stops the solve's phases only past this many time limits (as it
#: stops the neighbourhood search, ``lns.improve``): a busy machine must not change the plan.
DETERMINISTIC_WALL_FACTOR = 3


def allowance(time_limit: float) -> float:
    """Seconds past ``time_limit`` within which a solve, verified and written, is promised."""
    return max(2.0, 0.1 * time_limit)


def limit_left(time_limit: float, since: float, workers: int) -> float:
    """What is left of a command's or a run's ``time_limit`` for the solve, counted from
    ``since`` (``time.monotonic()`` when it began): reading a large lab comes out of it. With one
    worker the solve is paced by work, not the clock, and keeps the whole limit (reproducible)."""
    if workers <= 1:
        return time_limit
    return max(0.1, time_limit - (time.monotonic() - since))


#: Dispatch rounds for the warm start that holds the published schedule: each round lets go of
#: the held placements the previous one could not keep.
HELD_START_ROUNDS = 4

#: The held warm start is taken unless it costs this share more than the best baseline. Held
#: placements can strand a job whose predecessor moved (an absence) that the search then
#: repairs in a few neighbourhoods; a from-scratch start instead re-shuffles the whole schedule,
#: which no change penalty wins back within a nightly time limit (``labq bench churn``).
HELD_START_TOLERANCE = 0.05


@dataclass
class SolveConfig:
    """Limits and choices of one solve.

    ``time_limit`` is in seconds for the whole call; ``workers`` is the number of CP-SAT threads;
    with ``workers=1`` the result depends only on the snapshot and ``seed``. ``policy`` is
    "cpsat" (optimize) or a dispatch baseline: "fifo", "priority", "wsjf". ``moves`` is the
    share of the neighbourhood search's clock for cheap moves (``lns.SearchSettings.moves``).
    """

    time_limit: float = 30
    workers: int = 2
    seed: int = 0
    policy: str = CPSAT
    moves: float = 0.0


def solve(
    snapshot: Snapshot,
    config: SolveConfig | None = None,
    progress: Progress | None = None,
    stop: threading.Event | None = None,
    on_search: Callable[[SearchOutcome], None] | None = None,
) -> Plan:
    """Solve ``snapshot`` and return a plan that passes ``verify`` (see the module docstring).

    ``progress(fraction, objective)`` is called with the fraction of the time limit used (with
    one worker, of the phases' work-counted budgets, so it repeats exactly) and the best
    objective so far, at least once at the start and once at the end. Setting ``stop`` (a
    cancel, from another thread) ends the search within a fraction of a second and raises
    `SolveStopped` (see `scheduler.core.stopping`). ``on_search`` is given the outcome of the
    neighbourhood search, when one ran (what each kind of neighbourhood cost and won: the lab
    benchmark prints it).
    """
    config = config or SolveConfig()
    if config.policy != CPSAT and config.policy not in POLICIES:
        raise ValueError(f"unknown policy {config.policy!r}; expected cpsat or one of {POLICIES}")
    started = time.monotonic()
    limit = max(0.1, float(config.time_limit))

    def report(objective: int | None, fraction: float | None = None) -> None:
        if progress is not None and objective is not None:
            used = (time.monotonic() - started) / limit if fraction is None else fraction
            progress(min(1.0, max(0.0, used)), objective)

    if config.policy != CPSAT:
        base = dispatch(snapshot, config.policy)
        plan = _finish(
            snapshot, base, base, FEASIBLE, started, proven=False, deadline=started + limit
        )
        report(plan.objective, 1.0)
        return plan

    deterministic = config.workers <= 1
    # With one worker the clock must not change the plan: dispatch runs whole, and the clock
    # cuts the later phases only where the optimizer's own wall-clock stop does (three limits).
    deadline = started + (DETERMINISTIC_WALL_FACTOR if deterministic else 1) * limit
    dispatch_deadline = None if deterministic else started + DISPATCH_SHARE * limit
    cutoff = None if deterministic else started + FIRST_DISPATCH_SHARE * limit
    # With one worker progress is reported on the phases' own budgets, not the wall clock, so
    # an anytime profile of the solve repeats exactly (dispatch counts nothing on it).
    at_start = 0.0 if deterministic else None
    policy, base = best_dispatch(snapshot, deadline=dispatch_deadline, cutoff=cutoff)
    check(stop)
    report(base.objective, at_start)
    published = None
    if dispatch_deadline is None or time.monotonic() < dispatch_deadline:
        published = _published_start(snapshot, policy, base, cutoff)
    if published is not None:
        base = published
        report(base.objective, at_start)
    placements: dict[str, Assignment | None] = {j.id: None for j in snapshot.jobs}
    for a in base.assignments:
        placements[a.job] = a
    dropped = {u.job for u in base.unscheduled if u.reason == PIN_CONFLICT}
    kept_targets = explain.kept_placements(snapshot)
    locked = frozenset(kept_targets) | dropped
    objective = base.objective if base.objective is not None else 0

    relaxed = relax(snapshot)  # shared by the candidates, the full model's proof and the bound
    candidates, _ = select_candidates(snapshot, plan=base, relaxed=relaxed)
    candidate_ids = {j.id for j in candidates.jobs}
    scope = [e.id for e in exposure_examiners(snapshot)]
    known_bound = 0  # a bound on the objective found by the solver itself
    proven = False  # optimal over every job
    closed = False  # optimal over the jobs the search may touch: nothing left to improve
    free = [
        j.id
        for j in snapshot.jobs
        if j.id not in locked and (j.id in candidate_ids or placements[j.id] is not None)
    ]
    reserve = min(  # explanations, bound, forecast, verify
        0.5 * limit, max(min(2.0, 0.1 * limit), RESERVE_SECONDS_PER_JOB * len(snapshot.jobs))
    )

    def time_left(planned: float) -> float:
        """Seconds left for optimizing; with one worker counted without the wall clock (the
        phases' own budgets), so that the result does not depend on the machine's load."""
        if deterministic:
            return limit - reserve - planned
        return limit - reserve - (time.monotonic() - started)

    makespan = snapshot.objective == "makespan"
    planned = 0.0
    if len(free) <= (MAKESPAN_FULL_MODEL_MAX_JOBS if makespan else FULL_MODEL_MAX_JOBS):
        share = MAKESPAN_FULL_MODEL_SHARE if makespan else FULL_MODEL_SHARE
        budget = min(limit * share, time_left(0.0))
        planned = budget
        if makespan and all(a is not None for a in placements.values()):
            result = _makespan_search(snapshot, free, placements, scope, config, budget, stop)
        else:
            result = _full_model(snapshot, free, placements, scope, config, budget, stop)
        if result is not None:
            better, value, optimal, model_bound = result
            if value < objective:
                placements.update(better)
                objective = value
                report(objective, planned / limit if deterministic else None)
            # Optimal overall if every job outside the model could never be scheduled anyway.
            inside = set(free) | locked
            outside = [j.id for j in snapshot.jobs if j.id not in inside]
            everything = all(relaxed[j].earliest_end is None for j in outside)
            proven = optimal and everything
            closed = optimal
            if everything and not dropped:
                known_bound = model_bound  # valid for every plan: nothing else could be planned
    check(stop)
    beside: _Beside | None = None
    if not proven and snapshot.objective != "makespan" and _lp_bound_fits(snapshot):
        lp_budget = LP_BOUND_SHARE * limit
        if deterministic:
            # One CP-SAT worker leaves a core to the LP (GLOP lets go of the interpreter while it
            # solves): it runs beside the search, which reads no bound, and costs it nothing.
            beside = _Beside(lambda: lp_bound(snapshot, time_limit=lp_budget))
        else:
            known_bound = max(known_bound, lp_bound(snapshot, time_limit=lp_budget) or 0)
    remaining = time_left(planned)
    if not closed and remaining > 0.2 and free:
        settings = SearchSettings(
            time_limit=remaining,
            workers=config.workers,
            seed=config.seed,
            sub_limit=neighbourhood_seconds(len(snapshot.jobs)),
            moves=config.moves,
        )
        insertable = candidate_ids | {j for j, a in placements.items() if a is not None}
        outcome = improve(
            snapshot,
            placements,
            objective,
            settings,
            locked=locked | frozenset(j.id for j in snapshot.jobs if j.id not in insertable),
            balance_scope=scope,
            progress=lambda f, v: report(
                v, (planned + f * remaining) / limit if deterministic else None
            ),
            stop=stop,
        )
        if on_search is not None:
            on_search(outcome)
        if outcome.objective < objective:
            placements = outcome.placements
            objective = outcome.objective
        log.info(
            "lns: %d neighbourhoods, %d improvements, objective %d",
            outcome.iterations,
            outcome.improvements,
            objective,
        )
    check(stop)
    if beside is not None:
        # waited for no later than the explanations, the bound and the forecast need to begin
        known_bound = max(known_bound, beside.result(deadline - reserve) or 0)
    optimized = _plan_from(snapshot, placements, base)
    status = INFEASIBLE if dropped else FEASIBLE
    plan = _finish(
        snapshot,
        optimized,
        base,
        status,
        started,
        proven=proven,
        bound=known_bound,
        deadline=deadline,
        relaxed=relaxed,
    )
    report(plan.objective, 1.0)
    return plan


class _Beside:
    """A computation on a thread of its own (a daemon: a stopped solve does not wait for it)."""

    def __init__(self, work: Callable[[], int | None]) -> None:
        self._value: int | None = None
        self._error: BaseException | None = None

        def run() -> None:
            try:
                self._value = work()
            except BaseException as exc:  # raised again by ``result``, in the solve's thread
                self._error = exc

        self._thread = threading.Thread(target=run, name="lp-bound", daemon=True)
        self._thread.start()

    def result(self, by: float) -> int | None:
        """The value, waiting for it until ``by`` (``time.monotonic()``); None if not done."""
        self._thread.join(max(0.0, by - time.monotonic()))
        if self._thread.is_alive():
            return None
        if self._error is not None:
            raise self._error
        return self._value


def _published_start(
    snapshot: Snapshot, policy: str, base: Plan, deadline: float | None = None
) -> Plan | None:
    """The most stable warm start from the published schedule that is not clearly dearer than
    the best baseline (``HELD_START_TOLERANCE``), or None.

    Tried from the most stable: every published placement held like a frozen one, new work in
    the room left (a quiet night, an escalation that fits in the gaps); then each weight's
    published work held at once, heaviest first, so heavier work displaces lighter
    (``hold_levels``); then the policy's own order, each job keeping its published placement if
    it still fits (``keep_published``). Whatever no longer fits (an absence, a predecessor that
    moved) is dispatched again. The search then trades a change only for a real gain.
    """
    if not any(p.job not in snapshot.kept for p in snapshot.previous):
        return None
    tries: tuple[Callable[[], Plan | None], ...] = (
        lambda: _held_start(snapshot, policy, deadline),
        lambda: dispatch(snapshot, policy, deadline, hold_levels=True),
        lambda: dispatch(snapshot, policy, deadline, keep_published=True),
    )
    heaviest = _heaviest_lateness(snapshot, base)
    for attempt in tries:
        plan = attempt()
        if plan is None or plan.objective is None or verify(snapshot, plan):
            continue
        if _heaviest_lateness(snapshot, plan) > heaviest + _saved(snapshot, base, plan):
            continue  # it keeps the published schedule at the cost of the most urgent work
        if base.objective is None or plan.objective <= base.objective * (1 + HELD_START_TOLERANCE):
            log.info(
                "warm start from the published schedule: %d against %s",
                plan.objective,
                base.objective,
            )
            return plan
    return None


def _heaviest_lateness(snapshot: Snapshot, plan: Plan) -> int:
    """The weighted lateness of the heaviest work with a due time (a job left out charged as the
    objective charges it). ``HELD_START_TOLERANCE`` is a share of an
    objective that the charges of the backlog dominate, so a warm start within it could still
    leave a P1 case hours late; this is the check it must pass as well."""
    due = [job for job in snapshot.jobs if job.due is not None]
    top = max((job.weight for job in due), default=0)
    ends = {a.job: a.end for a in plan.assignments}
    return sum(
        job_tardiness(job, ends.get(job.id, unassigned_end(snapshot, job)))
        for job in due
        if job.weight == top
    )


def _saved(snapshot: Snapshot, base: Plan, plan: Plan) -> int:
    """What ``plan`` saves in the stability term against ``base``: the most lateness of the
    heaviest work a warm start may trade for keeping the published schedule."""
    changes = base.terms.get(CHANGE, 0) - plan.terms.get(CHANGE, 0)
    return max(0, changes) * snapshot.weights.change


def _held_start(snapshot: Snapshot, policy: str, deadline: float | None) -> Plan:
    """The baseline policy with every published assignment held like a frozen one; a held
    placement that no longer works (its predecessor moved, a pool filled up) is let go and
    dispatched again, in rounds, rather than left out of the plan."""
    jobs = snapshot.jobs_by_id
    kept = explain.kept_placements(snapshot)
    held = {p.job: p for p in snapshot.previous if p.job in jobs and p.job not in kept}
    for _ in range(HELD_START_ROUNDS):
        # Held like frozen placements, reserved in order of start, so a kept (frozen) one is
        # never crowded out by a held one that starts after it.
        holding = replace(
            snapshot,
            previous=tuple(p for p in snapshot.previous if p.job in kept or p.job in held),
            frozen_until=snapshot.horizon,
        )
        plan = dispatch(holding, policy, deadline)
        lost = {u.job for u in plan.unscheduled if u.job in held and u.reason == PIN_CONFLICT}
        if not lost:
            break
        held = {j: p for j, p in held.items() if j not in lost}
    placed = {a.job for a in plan.assignments}
    left = tuple(
        Unscheduled(j.id, PIN_CONFLICT if j.id in kept else HORIZON_FULL, "held")
        for j in snapshot.jobs
        if j.id not in placed
    )
    objective, terms = plan_objective(snapshot, plan.assignments)
    return Plan(FEASIBLE, objective, None, 0.0, plan.assignments, left, terms=terms)


def _full_model(
    snapshot: Snapshot,
    free: list[str],
    placements: Mapping[str, Assignment | None],
    scope: list[str],
    config: SolveConfig,
    budget: float,
    stop: threading.Event | None = None,
) -> tuple[dict[str, Assignment | None], int, bool, int] | None:
    """Solve all free jobs in one model, warm-started.

    Returns (placements, objective, proven optimal, CP-SAT's bound on the objective), or None.
    """
    if budget <= 0.05:
        return None
    free_set = set(free)
    fixed = {j: a for j, a in placements.items() if j not in free_set}
    forced: frozenset[str] = frozenset()
    if snapshot.objective == "makespan" and all(a is not None for a in placements.values()):
        # Leaving a job out costs more than the horizon, which the warm start already beats:
        # every job stays in, and the model loses its presence literals.
        forced = frozenset(free)
    # With a published schedule, equal-cost plans keep published starts (see lns.py).
    keep_starts = bool(snapshot.previous) and snapshot.objective != "makespan"
    ctx = build_model(
        snapshot, free, fixed, forced=forced, balance_scope=scope, tie_break=keep_starts
    )
    add_hint(ctx, {j: a for j in free if (a := placements[j]) is not None})
    solver = make_solver(
        workers=config.workers,
        seconds=budget,
        deterministic=config.workers <= 1,
        seed=config.seed,
        light_presolve=len(free) > 40,
    )
    with under(stop, solver):
        status = solver.solve(ctx.model)
    log.info("full model on %d jobs: %s", len(free), solver.status_name(status))
    if status not in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        return None
    optimal = status == cp_model.OPTIMAL
    # The tie-break measure is below ``tie_scale``: the plan's objective is the quotient.
    bound = math.ceil(solver.best_objective_bound - 1e-6) // ctx.tie_scale
    value = round(solver.objective_value) // ctx.tie_scale
    return read_solution(ctx, solver), value, optimal, bound


def _makespan_search(
    snapshot: Snapshot,
    free: list[str],
    placements: Mapping[str, Assignment | None],
    scope: list[str],
    config: SolveConfig,
    budget: float,
    stop: threading.Event | None = None,
) -> tuple[dict[str, Assignment | None], int, bool, int] | None:
    """Every job placed: the makespan search (full model, then order-keeping neighbourhoods)."""
    if budget <= 0.05:
        return None
    outcome = makespan_search(
        snapshot,
        free,
        placements,
        budget=budget,
        workers=config.workers,
        seed=config.seed,
        balance_scope=scope,
        stop=stop,
        floor=lower_bound(snapshot),
    )
    if outcome is None:
        return None
    return outcome.placements, outcome.objective, outcome.optimal, outcome.bound


def _plan_from(snapshot: Snapshot, placements: Mapping[str, Assignment | None], base: Plan) -> Plan:
    """A plan (no reasons yet) from placements; pin conflicts keep the baseline's entries."""
    order = {j.id: i for i, j in enumerate(snapshot.jobs)}
    assignments = tuple(
        sorted((a for a in placements.values() if a is not None), key=lambda a: order[a.job])
    )
    conflicts = tuple(u for u in base.unscheduled if u.reason == PIN_CONFLICT)
    return Plan(UNKNOWN, None, None, 0.0, assignments, conflicts)


def _finish(
    snapshot: Snapshot,
    plan: Plan,
    fallback: Plan,
    status: str,
    started: float,
    *,
    proven: bool,
    bound: int = 0,
    deadline: float | None = None,
    relaxed: Relaxation | None = None,
) -> Plan:
    """Reasons, verification (with fallback), objective, bound, status and forecast; the bound
    gets half of what is left before ``deadline``, the forecast the rest (see the module)."""
    # the explanations stop early enough for the verify, the objective and the forecast's set-up
    explain_by = deadline
    if deadline is not None:
        tail = min(
            0.5 * max(0.0, deadline - time.monotonic()), TAIL_SECONDS_PER_JOB * len(snapshot.jobs)
        )
        explain_by = deadline - tail
    complete = _explained(snapshot, plan, explain_by)
    violations = verify(snapshot, complete)
    if violations:
        log.error(
            "optimized plan breaks %d rules (first: %s); falling back to the baseline",
            len(violations),
            violations[0],
        )
        complete = _explained(snapshot, fallback, deadline)
        proven = False
        if verify(snapshot, complete):
            log.error("baseline plan is not valid either; returning an empty plan")
            complete = _explained(snapshot, Plan(UNKNOWN, None, None, 0.0, ()), deadline)
            status = UNKNOWN
    objective, terms = plan_objective(snapshot, complete.assignments, complete.unscheduled)
    bound_deadline = None
    if deadline is not None:
        bound_deadline = time.monotonic() + max(0.0, deadline - time.monotonic()) / 2
    bound = min(max(bound, lower_bound(snapshot, bound_deadline, relaxed)), objective)
    if proven:
        bound = objective
    if status == FEASIBLE and (proven or bound == objective):
        status = OPTIMAL
    if any(u.reason == PIN_CONFLICT for u in complete.unscheduled):
        status = INFEASIBLE
    draft = Plan(
        status=status,
        objective=objective,
        bound=bound,
        solve_seconds=round(time.monotonic() - started, 3),
        assignments=complete.assignments,
        unscheduled=complete.unscheduled,
        terms=terms,
    )
    return Plan(
        status=draft.status,
        objective=draft.objective,
        bound=draft.bound,
        solve_seconds=round(time.monotonic() - started, 3),
        assignments=draft.assignments,
        unscheduled=draft.unscheduled,
        forecast=forecast(snapshot, draft, deadline),
        terms=draft.terms,
    )


def _explained(snapshot: Snapshot, plan: Plan, deadline: float | None = None) -> Plan:
    """The plan with every left-out job given a reason (pin conflicts with what they clash with)."""
    placed = {a.job for a in plan.assignments}
    conflicts = [u.job for u in plan.unscheduled if u.reason == PIN_CONFLICT]
    known: dict[str, Unscheduled] = {}
    if conflicts:
        kept = [j for j in explain.kept_placements(snapshot) if j in placed]
        details = explain.pin_conflicts(snapshot, kept, conflicts)
        for job_id in conflicts:
            known[job_id] = Unscheduled(job_id, PIN_CONFLICT, details.get(job_id, ""))
    left = [j.id for j in snapshot.jobs if j.id not in placed]
    unscheduled = explain.unscheduled_reasons(snapshot, plan.assignments, left, known, deadline)
    return Plan(
        plan.status, plan.objective, plan.bound, plan.solve_seconds, plan.assignments, unscheduled
    )
