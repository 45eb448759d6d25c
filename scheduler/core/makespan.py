"""Makespan search: a full CP-SAT model first, then neighbourhoods that keep the plan's order.

With the makespan objective only the critical path matters, and a neighbourhood that fixes the
other jobs' *times* (the tardiness search of ``lns.py``) leaves the critical path nowhere to go.
Here a neighbourhood frees a few jobs completely (resource and time) and keeps every other job on
its resource and in its order there, but lets its time float: the classic order-preserving
relaxation of job-shop local search. The freed jobs are drawn around the incumbent's critical
path, so each solve works on what sets the latest end.

The full model runs first (it proves small instances optimal and gives CP-SAT's bound); the
neighbourhood search takes the rest of the time and stops as soon as the bound is reached.
With one worker every limit is in deterministic time, so a fixed seed gives a fixed plan.
"""

from __future__ import annotations

import logging
import math
import random
import threading
import time
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from ortools.sat.python import cp_model

from scheduler.core.cpsat import add_hint, build_model, read_solution
from scheduler.core.cpsat.context import ModelContext
from scheduler.core.cpsat.solver import make_solver, work_seconds
from scheduler.core.objective import plan_objective
from scheduler.core.plan import Assignment
from scheduler.core.snapshot import Job, Snapshot
from scheduler.core.stopping import is_set, under

log = logging.getLogger(__name__)

#: Share of the budget the full model gets before the neighbourhood search takes over.
FULL_MODEL_SHARE = 0.1

#: Time limit of one neighbourhood solve, in seconds, and the bounds of its adaptive size
#: (as a share of the free jobs).
NEIGHBOURHOOD_SECONDS = 0.5
INITIAL_SHARE = 0.2
MIN_SHARE = 0.05
MAX_SHARE = 0.6

#: Estimated seconds to build one neighbourhood model, per free job (deterministic accounting).
BUILD_SECONDS_PER_JOB = 3e-4

#: Growth and shrink factors of a neighbourhood kind's size after a finished / timed-out solve.
GROW = 1.1
SHRINK = 0.9

#: Neighbourhood kinds, taken in turn (see ``_pick``).
KINDS: tuple[str, ...] = ("critical", "window")

Placements = dict[str, Assignment | None]


@dataclass
class MakespanOutcome:
    """The best placements found, their objective, whether proven optimal, and a bound."""

    placements: Placements
    objective: int
    optimal: bool
    bound: int
    neighbourhoods: int = 0
    improvements: int = 0
    by_kind: dict[str, list[int]] = field(default_factory=dict)


def search(
    snapshot: Snapshot,
    free: Sequence[str],
    placements: Mapping[str, Assignment | None],
    *,
    budget: float,
    workers: int,
    seed: int,
    balance_scope: Sequence[str] | None = None,
    floor: int = 0,
    full_model_share: float | None = None,
    stop: threading.Event | None = None,
) -> MakespanOutcome | None:
    """Minimise the objective of a makespan snapshot whose jobs are all placed.

    ``placements`` holds every job (the free ones as the warm start); ``floor`` is a lower bound
    known from elsewhere. With ``full_model_share`` 0 the neighbourhoods start from the warm
    start itself. Returns None when the full model finds nothing within its share. Setting
    ``stop`` ends the search as if its budget were spent.
    """
    run = _Search(snapshot, free, placements, budget, workers, seed, balance_scope, stop)
    share = FULL_MODEL_SHARE if full_model_share is None else full_model_share
    return run.run(floor, share)


class _Search:
    """One run of the search: the incumbent, the clock and the random stream."""

    def __init__(
        self,
        snapshot: Snapshot,
        free: Sequence[str],
        placements: Mapping[str, Assignment | None],
        budget: float,
        workers: int,
        seed: int,
        balance_scope: Sequence[str] | None,
        stop: threading.Event | None = None,
    ) -> None:
        self.stop = stop
        self.snapshot = snapshot
        self.free = list(free)
        self.free_set = frozenset(free)
        self.fixed = {j: a for j, a in placements.items() if j not in self.free_set}
        self.best: Placements = {j: placements[j] for j in self.free}
        self.budget = budget
        self.workers = max(1, workers)
        self.deterministic = self.workers <= 1
        self.seed = seed
        self.rng = random.Random(seed)
        self.scope = balance_scope
        self.jobs: Mapping[str, Job] = snapshot.jobs_by_id
        self.started = time.monotonic()
        self.spent = 0.0  # deterministic accounting (one worker)
        self.successors: dict[str, list[str]] = defaultdict(list)
        for job in snapshot.jobs:
            for pred in job.after:
                if pred in self.free_set and job.id in self.free_set:
                    self.successors[pred].append(job.id)

    # -- time ---------------------------------------------------------------------------------

    def left(self) -> float:
        if is_set(self.stop):
            return 0.0
        if self.deterministic:
            return self.budget - self.spent
        return self.budget - (time.monotonic() - self.started)

    def _solver(self, limit: float, *, light_presolve: bool = False) -> cp_model.CpSolver:
        return make_solver(
            workers=self.workers,
            seconds=limit,
            deterministic=self.deterministic,
            seed=self.seed,
            light_presolve=light_presolve,
        )

    def _spend(self, solver: cp_model.CpSolver, build: float) -> None:
        self.spent += build + work_seconds(solver)

    # -- objective ----------------------------------------------------------------------------

    def objective_of(self, placements: Mapping[str, Assignment | None]) -> int:
        assignments = [a for a in (*self.fixed.values(), *placements.values()) if a is not None]
        value, _ = plan_objective(self.snapshot, assignments)
        return value

    # -- the search ---------------------------------------------------------------------------

    def run(self, floor: int, full_model_share: float) -> MakespanOutcome | None:
        if full_model_share <= 0:
            start = MakespanOutcome(self.best, self.objective_of(self.best), False, floor)
            self._neighbourhoods(start)
            start.placements = self.best
            start.optimal = start.objective <= start.bound
            return start
        forced = frozenset(self.free)
        ctx = build_model(
            self.snapshot, self.free, self.fixed, forced=forced, balance_scope=self.scope
        )
        hint = {j: a for j, a in self.best.items() if a is not None}
        add_hint(ctx, hint)
        limit = min(self.budget * full_model_share, self.left())
        solver = self._solver(limit, light_presolve=len(self.free) > 40)
        with under(self.stop, solver):
            status = solver.solve(ctx.model)
        self._spend(solver, BUILD_SECONDS_PER_JOB * len(self.free))
        log.info("makespan full model on %d jobs: %s", len(self.free), solver.status_name(status))
        if status not in (cp_model.OPTIMAL, cp_model.FEASIBLE):
            return None
        self.best = read_solution(ctx, solver)
        objective = self.objective_of(self.best)
        bound = max(floor, math.ceil(solver.best_objective_bound - 1e-6))
        log.info("makespan full model: objective %d, bound %d", objective, bound)
        outcome = MakespanOutcome(self.best, objective, status == cp_model.OPTIMAL, bound)
        if outcome.optimal or objective <= bound:
            outcome.optimal = True
            return outcome
        self._neighbourhoods(outcome)
        outcome.placements = self.best
        outcome.optimal = outcome.objective <= outcome.bound
        return outcome

    def _neighbourhoods(self, outcome: MakespanOutcome) -> None:
        # Each kind adapts its own size: grow while its solves finish (a proof that nothing
        # better is in reach, or the best in reach), shrink when they run out of time.
        shares = dict.fromkeys(KINDS, INITIAL_SHARE)
        while self.left() > 0.1 and outcome.objective > outcome.bound:
            kind = KINDS[outcome.neighbourhoods % len(KINDS)]
            size = max(2, round(shares[kind] * len(self.free)))
            relaxed = self._pick(kind, size)
            limit = min(NEIGHBOURHOOD_SECONDS, self.left())
            result = self._solve(relaxed, limit, outcome.objective)
            outcome.neighbourhoods += 1
            log.debug(
                "makespan %s of %d jobs: %s",
                kind,
                len(relaxed),
                "nothing" if result is None else result[1:],
            )
            stats = outcome.by_kind.setdefault(kind, [0, 0])
            stats[0] += 1
            if result is None:
                shares[kind] = max(MIN_SHARE, shares[kind] * SHRINK)
                continue
            placements, value, proven = result
            if proven:
                shares[kind] = min(MAX_SHARE, shares[kind] * GROW)
            if value < outcome.objective:
                stats[1] += 1
                outcome.improvements += 1
                log.info("makespan %s: %d -> %d", kind, outcome.objective, value)
                outcome.objective = value
                self.best = placements
        log.info(
            "makespan search: %d neighbourhoods, %d improvements, objective %d, bound %d %s",
            outcome.neighbourhoods,
            outcome.improvements,
            outcome.objective,
            outcome.bound,
            outcome.by_kind,
        )

    # -- neighbourhoods -----------------------------------------------------------------------

    def _critical(self) -> list[str]:
        """Jobs on a critical path of the incumbent: each starts when a blocker of it ends."""
        placed = {j: a for j, a in self.best.items() if a is not None}
        if not placed:
            return []
        ends_at: dict[tuple[str, int], list[str]] = defaultdict(list)
        for j, a in placed.items():
            for key, end in self._resource_ends(j, a):
                ends_at[(key, end)].append(j)
        latest = max(a.end for a in placed.values())
        stack = [j for j, a in placed.items() if a.end == latest]
        seen = set(stack)
        while stack:
            j = stack.pop()
            a = placed[j]
            blockers = [p for p in self.jobs[j].after if p in placed and placed[p].end == a.start]
            for key, _ in self._resource_ends(j, a):
                blockers.extend(ends_at.get((key, a.start), []))
            for b in blockers:
                if b not in seen:
                    seen.add(b)
                    stack.append(b)
        return sorted(seen, key=lambda j: (placed[j].start, j))

    def _resource_ends(self, job_id: str, a: Assignment) -> list[tuple[str, int]]:
        job = self.jobs[job_id]
        out = []
        if a.examiner is not None and job.attended > 0:
            out.append((f"e:{a.examiner}", a.start + job.attended))
        if a.workstation is not None:
            out.append((f"w:{a.workstation}", a.start + job.machine_on(a.workstation)))
        return out

    def _pick(self, kind: str, size: int) -> set[str]:
        rng = self.rng
        critical = self._critical()
        placed = {j: a for j, a in self.best.items() if a is not None}
        relaxed: set[str] = set()
        if kind == "critical" and critical:
            # A run of the critical path, then the jobs nearest in time to its members.
            length = max(1, min(len(critical), size // 2))
            at = rng.randrange(len(critical) - length + 1)
            relaxed.update(critical[at : at + length])
            others = sorted(placed, key=lambda j: (placed[j].start, j))
            while len(relaxed) < size and len(relaxed) < len(placed):
                seed_job = rng.choice(critical[at : at + length])
                mid = placed[seed_job].start
                near = [j for j in others if j not in relaxed]
                near.sort(key=lambda j: (abs(placed[j].start - mid), j))
                relaxed.update(near[: max(1, (size - len(relaxed)) // 2)])
        elif kind == "window" and placed:
            ordered = sorted(placed, key=lambda j: (placed[j].start, j))
            centre = placed[rng.choice(critical)].start if critical else 0
            first = min(range(len(ordered)), key=lambda i: abs(placed[ordered[i]].start - centre))
            lo = max(0, min(first - size // 2, len(ordered) - size))
            relaxed.update(ordered[lo : lo + size])
        return relaxed

    def _solve(
        self, relaxed: set[str], limit: float, incumbent: int
    ) -> tuple[Placements, int, bool] | None:
        """Re-solve with ``relaxed`` jobs free; the others keep resource and order.

        Returns (placements, objective, whether the neighbourhood is exhausted), the incumbent
        itself when nothing shorter exists there, or None when the time ran out first.
        """
        allowed: dict[str, frozenset[str]] = {}
        for j, a in self.best.items():
            if j in relaxed or a is None:
                continue
            keep = set()
            if a.examiner is not None:
                keep.add(f"e:{a.examiner}")
            if a.workstation is not None:
                keep.add(f"w:{a.workstation}")
            allowed[j] = frozenset(keep)
        ctx = build_model(
            self.snapshot,
            self.free,
            self.fixed,
            forced=frozenset(self.free),
            allowed=allowed,
            balance_scope=self.scope,
        )
        self._keep_order(ctx, relaxed)
        add_hint(ctx, {j: a for j, a in self.best.items() if a is not None})
        if ctx.makespan is not None:
            # Only a shorter plan is worth the time: infeasibility is proven fast on a tight
            # neighbourhood, which then grows. (A shorter one that costs more in the other
            # terms is refused below.)
            ends = [a.end for a in (*self.fixed.values(), *self.best.values()) if a is not None]
            ctx.model.add(ctx.makespan <= max(ends, default=0) - 1)
        solver = self._solver(limit, light_presolve=True)
        with under(self.stop, solver):
            status = solver.solve(ctx.model)
        self._spend(solver, BUILD_SECONDS_PER_JOB * len(self.free))
        if status == cp_model.INFEASIBLE:
            return self.best, incumbent, True
        if status not in (cp_model.OPTIMAL, cp_model.FEASIBLE):
            return None
        placements = read_solution(ctx, solver)
        value = self.objective_of(placements)
        if value > incumbent:
            return None
        return placements, value, status == cp_model.OPTIMAL

    def _keep_order(self, ctx: ModelContext, relaxed: set[str]) -> None:
        """Kept jobs run in their incumbent order on each single-capacity resource."""
        by_resource: dict[str, list[tuple[int, str, int]]] = defaultdict(list)
        for j, a in self.best.items():
            if j in relaxed or a is None:
                continue
            job = self.jobs[j]
            if a.examiner is not None and job.attended > 0:
                by_resource[f"e:{a.examiner}"].append((a.start, j, job.attended))
            if a.workstation is not None and ctx.workstations[a.workstation].capacity == 1:
                machine = job.machine_on(a.workstation)
                by_resource[f"w:{a.workstation}"].append((a.start, j, machine))
        for items in by_resource.values():
            items.sort()
            for (_, first, length), (_, second, _) in zip(items, items[1:], strict=False):
                ctx.model.add(ctx.vars[second].start >= ctx.vars[first].start + length)
