"""Large-neighbourhood search: improve a valid plan by re-solving windows of it with CP-SAT.

A monolithic model of a medium lab finds no solution in a minute on two cores, but a model of a
few hundred jobs with everything else held fixed solves in a second. So: start from a valid plan
(the best dispatch baseline), repeatedly free one *neighbourhood* — a stretch of time, a group of
examiners or workstations, the costliest jobs and whoever holds their slots, a few cases (and when
asked the bottleneck resource's work or the case chains of the latest urgent jobs) — fix the rest
to the incumbent, re-solve with a short limit warm-started from the incumbent, and keep the
result when the plan's exact objective drops. Kinds are drawn by what they have gained per second
lately, and the size adapts to how easily CP-SAT closes the neighbourhoods. Asked for
(``SearchSettings.moves``), cheap relocation and swap moves around the bottleneck resource run
between sub-solves (``_moves``, docs/architecture.md §5.4).

With one worker the search is deterministic for a given seed: sub-solves are limited in CP-SAT's
deterministic time, and so is the whole search (see :func:`improve`).
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field

from ortools.sat.python import cp_model

from scheduler.core.cpsat import add_hint, build_model, read_solution
from scheduler.core.cpsat.context import FixedContext, Interval, ModelContext
from scheduler.core.cpsat.solver import make_solver, work_seconds
from scheduler.core.dispatch import redispatch
from scheduler.core.eligibility import eligible_examiners, eligible_workstations
from scheduler.core.objective import job_tardiness, plan_objective, unassigned_end
from scheduler.core.plan import HORIZON_FULL, Assignment, Plan, Unscheduled
from scheduler.core.rules.names import KEPT
from scheduler.core.snapshot import Job, Snapshot
from scheduler.core.stopping import is_set
from scheduler.core.verify import verify

log = logging.getLogger(__name__)

Placements = dict[str, Assignment | None]
Progress = Callable[[float, int], None]

#: With one worker the search runs on its work-counted clock; wall time stops it only past this
#: many time limits, a safety net for a machine so loaded that the work would outlast its promise.
DETERMINISTIC_WALL_FACTOR = 3

#: Give up after this many neighbourhoods in a row with nothing to move.
EMPTY_LIMIT = 50

#: Estimated seconds to build a neighbourhood model: per free job and per job of the snapshot.
BUILD_SECONDS_PER_FREE_JOB = 1.2e-3
BUILD_SECONDS_PER_JOB = 6e-5


#: Seconds per neighbourhood solve; shorter in labs of more than ``LARGE_LAB_JOBS`` jobs. A large
#: lab keeps finding improvements for minutes, and twice as many shorter solves find more of them
#: (medium labs, 60 s, 2 workers: 1 % lower objective in each of 4 runs); in a small lab the
#: longer solves do as well (the same results within noise).
NEIGHBOURHOOD_SECONDS = 0.3
LARGE_LAB_JOBS = 1000
LARGE_LAB_NEIGHBOURHOOD_SECONDS = 0.15


#: Of the cheap moves of a placed late job (``_move_jobs``), the share that are swaps.
MOVE_SWAPS = 0.7

#: Estimated seconds of one move and of verifying an accepted one, per job of the snapshot.
MOVE_SECONDS_PER_JOB = 1e-5
VERIFY_SECONDS_PER_JOB = 2.5e-5


def neighbourhood_seconds(jobs: int) -> float:
    """The time limit of one neighbourhood solve in a lab of ``jobs`` jobs."""
    return LARGE_LAB_NEIGHBOURHOOD_SECONDS if jobs > LARGE_LAB_JOBS else NEIGHBOURHOOD_SECONDS


#: Neighbourhood kinds, in the order they are first tried: a stretch of time, a group of
#: resources that can swap work, the costliest jobs, a few cases, the bottleneck resource (the
#: most late weighted work), the case chains of the latest high-weight jobs.
KINDS = ("time", "resources", "costly", "cases", "bottleneck", "urgent")

#: The kinds a search draws on unless told otherwise. The last two are there when asked: drawn
#: with the others they made the benchmark labs' one-worker profiles worse (bottleneck: small
#: labs 1-3 and medium 1 at 60 s, solver seeds 0 and 1, in six of seven runs; urgent with it,
#: and sizes per kind, worse still).
DEFAULT_KINDS = ("time", "resources", "costly", "cases")


@dataclass
class SearchSettings:
    """How long and how the search runs."""

    time_limit: float
    workers: int = 2
    seed: int = 0
    sub_limit: float = NEIGHBOURHOOD_SECONDS
    initial_size: int = 50
    min_size: int = 30
    max_size: int = 400
    solver_params: dict[str, object] = field(default_factory=dict)
    #: Prefer earlier ends among equal-cost neighbourhood solutions (None: for makespan only).
    tie_break: bool | None = None
    #: The neighbourhood kinds to draw on (of ``KINDS``); None: ``DEFAULT_KINDS``.
    kinds: tuple[str, ...] | None = None
    #: The share of the clock spent on cheap moves between sub-solves (``_moves``; 0: none).
    #: Asked for, not the default: measured with one worker on small labs 1-3 and medium 1,
    #: they made the 60 s objective worse on most (docs/architecture.md §5.4).
    moves: float = 0.0

    @property
    def deterministic(self) -> bool:
        return self.workers <= 1


#: The figures ``SearchOutcome.by_kind`` keeps per neighbourhood kind, in this order: wall
#: seconds from choosing the neighbourhood to its result, of which building it (choosing the
#: jobs, the model, the warm start) and solving it; ``clock`` is its share of the search's clock.
KIND_FIGURES = ("tries", "improvements", "gained", "seconds", "build", "solve", "clock")


@dataclass
class SearchOutcome:
    """The best plan found, and how the search got there: per neighbourhood kind the figures
    of ``KIND_FIGURES``; ``clock`` is the search's own clock at the end (with one worker the
    work-counted one, else wall seconds)."""

    placements: Placements
    objective: int
    iterations: int = 0
    improvements: int = 0
    history: list[tuple[float, int]] = field(default_factory=list)
    by_kind: dict[str, list[float]] = field(default_factory=dict)
    clock: float = 0.0
    #: Cheap moves between sub-solves: tried, accepted, objective gained, wall seconds, and
    #: their share of the search's clock.
    moves: list[float] = field(default_factory=lambda: [0.0] * 5)

    def total(self, figure: str) -> float:
        """One of ``KIND_FIGURES`` summed over the kinds."""
        i = KIND_FIGURES.index(figure)
        return sum(stats[i] for stats in self.by_kind.values())


@dataclass
class Neighbourhood:
    """Jobs to re-solve, optional start windows, optional resources they may move between."""

    free: list[str]
    windows: dict[str, Interval] = field(default_factory=dict)
    allowed: dict[str, frozenset[str]] = field(default_factory=dict)


class _Index:
    """Static facts about the snapshot the neighbourhoods draw on."""

    def __init__(self, snapshot: Snapshot, locked: frozenset[str]) -> None:
        self.snapshot = snapshot
        self.jobs: Mapping[str, Job] = snapshot.jobs_by_id
        self.order = [j.id for j in snapshot.jobs]
        self.locked = locked
        self.movable = [j for j in self.order if j not in locked]
        self.resources: dict[str, list[str]] = {}
        self.jobs_of_resource: dict[str, list[str]] = defaultdict(list)
        for job in snapshot.jobs:
            if job.id in locked:
                continue
            res = [f"e:{e.id}" for e in eligible_examiners(snapshot, job)]
            res += [f"w:{w.id}" for w in eligible_workstations(snapshot, job)]
            self.resources[job.id] = res
            for r in res:
                self.jobs_of_resource[r].append(job.id)
        self.by_case: dict[str, list[str]] = defaultdict(list)
        for job in snapshot.jobs:
            if job.id not in locked:
                self.by_case[job.case].append(job.id)
        self.present = set(self.order)
        # predecessors before successors (a move places its jobs again in this order)
        succs = snapshot.successors
        waiting = {j.id: sum(p in self.jobs for p in j.after) for j in snapshot.jobs}
        ready = [j for j in self.order if waiting[j] == 0]
        self.rank: dict[str, int] = {}
        while ready:
            job_id = ready.pop()
            self.rank[job_id] = len(self.rank)
            for s in succs[job_id]:
                waiting[s] -= 1
                if waiting[s] == 0:
                    ready.append(s)
        self.successors = succs


@dataclass
class _Attempt:
    """One neighbourhood on its way through CP-SAT."""

    iteration: int
    kind: str
    hood: Neighbourhood
    ctx: ModelContext
    solver: cp_model.CpSolver
    version: int  # of the plan it was built from
    objective: int  # of that plan
    ends: int  # sum of the free jobs' ends in that plan (tie-break)
    tried: float
    build: float  # estimated build seconds
    built: float  # wall seconds it took to build
    solve_started: float = 0.0
    solved: float = 0.0  # wall seconds the solve took

    def run(self) -> cp_model.CpSolverStatus:
        self.solve_started = time.monotonic()
        status = self.solver.solve(self.ctx.model)
        self.solved = time.monotonic() - self.solve_started
        return status


class _Search:
    def __init__(
        self,
        snapshot: Snapshot,
        placements: Placements,
        objective: int,
        locked: frozenset[str],
        settings: SearchSettings,
        balance_scope: Sequence[str] | None,
        progress: Progress | None,
        stop: threading.Event | None = None,
    ) -> None:
        self.stop = stop
        self.snapshot = snapshot
        self.placements = dict(placements)
        self.objective = objective
        self.settings = settings
        self.balance_scope = balance_scope
        self.progress = progress
        self.index = _Index(snapshot, locked)
        # The incumbent's fixed counts, updated with every accepted solution: a neighbourhood
        # model subtracts its free jobs rather than recounting the lab (docs/architecture.md §5.4).
        self.base = FixedContext(snapshot, self.placements)
        self.rng = random.Random(settings.seed)
        self.version = 0  # bumped whenever the plan changes
        self.estimated = 0.0  # the deterministic clock (seconds)
        self.started = time.monotonic()
        # Several single-worker solves at once use the cores better than one solve with several
        # workers (measured: the same gain per solve, twice the solves); one worker stays serial
        # and reproducible.
        self.threads = max(1, settings.workers) if not settings.deterministic else 1
        # With a makespan, most neighbourhoods cannot shorten the latest end; they may still
        # finish their jobs earlier, which is kept as progress. With a published schedule, a
        # neighbourhood keeps published starts where that costs nothing (``build_model``).
        self.published = {p.job: p for p in snapshot.previous}
        self.tie_break = (
            snapshot.objective == "makespan" or bool(self.published)
            if settings.tie_break is None
            else settings.tie_break
        )
        makers: dict[str, Callable[[int], Neighbourhood]] = {
            "time": self._time_window,
            "resources": self._resource_group,
            "costly": self._costly,
            "cases": self._cases,
            "bottleneck": self._bottleneck,
            "urgent": self._urgent,
        }
        chosen = settings.kinds if settings.kinds is not None else DEFAULT_KINDS
        if unknown := [k for k in chosen if k not in makers]:
            raise ValueError(f"unknown neighbourhood kinds: {unknown}")
        self.kinds: list[tuple[str, Callable[[int], Neighbourhood]]] = [
            (k, makers[k]) for k in KINDS if k in chosen
        ]
        # Objective gained per second, per kind (moving average); None until first tried.
        self.kind_rate: dict[str, float | None] = dict.fromkeys((k for k, _ in self.kinds))
        self.size = float(settings.initial_size)

    # -- neighbourhoods -------------------------------------------------------------------

    def _scheduled(self) -> list[tuple[int, str]]:
        return sorted(
            (a.start, j)
            for j, a in self.placements.items()
            if a is not None and j not in self.index.locked
        )

    def _insertable(self, free: set[str], limit: int, lo: int, hi: int) -> list[str]:
        """Left-out jobs worth trying inside ``[lo, hi]``: predecessors placed or also free."""
        jobs = self.index.jobs
        picks: list[tuple[float, str]] = []
        for job_id in self.index.movable:
            if self.placements.get(job_id) is not None or job_id in free:
                continue
            job = jobs[job_id]
            if job.release > hi:
                continue
            ok = True
            for pred in job.after:
                if pred in jobs and pred not in free:
                    a = self.placements.get(pred)
                    if a is None or a.end > hi:
                        ok = False
                        break
            if ok:
                cost = job_tardiness(job, unassigned_end(self.snapshot, job))
                picks.append((-cost - self.rng.random(), job_id))
        picks.sort()
        return [j for _, j in picks[:limit]]

    def _time_window(self, size: int) -> Neighbourhood:
        """A stretch of time: every job starting in it, plus left-out jobs that could fit."""
        placed = self._scheduled()
        if not placed:
            return self._insert_only(size)
        take = max(1, int(size * 0.75))
        first = self.rng.randrange(max(1, len(placed) - take + 1))
        block = placed[first : first + take]
        lo = block[0][0]
        hi = block[-1][0]
        if first + take >= len(placed):
            hi = self.snapshot.horizon
        free = {j for _, j in block}
        free.update(self._insertable(free, size - len(free), lo, hi))
        return Neighbourhood(sorted(free), dict.fromkeys(free, (lo, hi)))

    def _resource_group(self, size: int) -> Neighbourhood:
        """A few examiners or workstations that can swap work, over a stretch of time."""
        resources = [r for r, jobs in self.index.jobs_of_resource.items() if jobs]
        if not resources:
            return self._time_window(size)
        first = self.rng.choice(resources)
        related: dict[str, int] = defaultdict(int)
        for job_id in self.index.jobs_of_resource[first]:
            for r in self.index.resources[job_id]:
                if r != first and r[0] == first[0]:
                    related[r] += 1
        group = [first]
        others = sorted(related, key=lambda r: (-related[r], r))
        self.rng.shuffle(others)
        group += others[: self.rng.randint(1, 3)]
        holders: set[str] = set()
        for r in group:
            on = self.base.attended if r[0] == "e" else self.base.machine
            holders.update(j for j in on.get(r[2:], ()) if j not in self.index.locked)
        placed = sorted((self.placements[j].start, j) for j in holders)  # type: ignore[union-attr]
        take = max(1, int(size * 0.75))
        if len(placed) > take:
            first_i = self.rng.randrange(len(placed) - take + 1)
            placed = placed[first_i : first_i + take]
        free = {j for _, j in placed}
        lo = placed[0][0] if placed else 0
        hi = placed[-1][0] if placed else self.snapshot.horizon
        if not placed or placed[-1][1] == max(holders, default=""):
            hi = self.snapshot.horizon
        group_jobs = {j for r in group for j in self.index.jobs_of_resource[r]}
        extra = [j for j in self._insertable(free, 4 * size, lo, hi) if j in group_jobs]
        free.update(extra[: size - len(free)])
        # The group swaps work among itself: a job keeps its other resource (if any) but may
        # move between the group's examiners or workstations.
        allowed: dict[str, frozenset[str]] = {}
        members = set(group)
        for j in free:
            a = self.placements.get(j)
            own = set()
            if a is not None:
                own = {f"e:{a.examiner}", f"w:{a.workstation}"}
            allowed[j] = frozenset(members | own)
        return Neighbourhood(sorted(free), allowed=allowed)

    def _costly(self, size: int) -> Neighbourhood:
        """The jobs costing most, and the jobs holding their resources before them."""
        costs: list[tuple[int, str]] = []
        for job_id in self.index.movable:
            job = self.index.jobs[job_id]
            a = self.placements.get(job_id)
            end = a.end if a is not None else unassigned_end(self.snapshot, job)
            c = job_tardiness(job, end)
            if c > 0:
                costs.append((c, job_id))
        if not costs:
            return self._time_window(size)
        costs.sort(reverse=True)
        top = costs[: max(10, len(costs) // 4)]
        free: set[str] = set()
        by_resource: dict[str, list[tuple[int, str]]] = defaultdict(list)
        for j, a in self.placements.items():
            if a is None or j in self.index.locked:
                continue
            if a.examiner is not None:
                by_resource[f"e:{a.examiner}"].append((a.start, j))
            if a.workstation is not None:
                by_resource[f"w:{a.workstation}"].append((a.start, j))
        attempts = 0
        while len(free) < size and attempts < 4 * len(top):
            attempts += 1
            _, job_id = top[self.rng.randrange(len(top))]
            job = self.index.jobs[job_id]
            free.add(job_id)
            a = self.placements.get(job_id)
            until = a.start if a is not None else self.snapshot.horizon
            weight = job.weight
            res = self.index.resources.get(job_id, [])
            for r in self.rng.sample(res, min(len(res), 3)):
                for start, other in by_resource.get(r, []):
                    if job.release <= start < until and len(free) < size:
                        if self.index.jobs[other].weight <= weight:
                            free.add(other)
        return Neighbourhood(sorted(free))

    def _cases(self, size: int) -> Neighbourhood:
        """Every job of a few cases (continuity, chains), plus left-out ones that could fit."""
        cases = list(self.index.by_case)
        self.rng.shuffle(cases)
        free: set[str] = set()
        for case in cases:
            jobs = self.index.by_case[case]
            if len(free) + len(jobs) > size and free:
                break
            free.update(jobs)
        # A case's left-out job needs its predecessors placed or free.
        keep = set()
        for j in free:
            job = self.index.jobs[j]
            ok = all(
                p not in self.index.jobs or p in free or self.placements.get(p) is not None
                for p in job.after
            )
            if ok or self.placements.get(j) is not None:
                keep.add(j)
        return Neighbourhood(sorted(keep))

    def _late_work(self) -> dict[str, int]:
        """Per examiner, workstation and licence pool (``e:``, ``w:``, ``p:``), the weighted
        tardiness of the movable jobs it holds, plus that of the left-out jobs that could use it
        (counted on each: any of them could take the work)."""
        base = self.base
        locked = self.index.locked
        late: dict[str, int] = defaultdict(int)
        for prefix, held in (("e", base.attended), ("w", base.machine), ("p", base.pool)):
            for rid, jobs in held.items():
                cost = sum(base.tardiness[j] for j in jobs if j not in locked)
                if cost:
                    late[f"{prefix}:{rid}"] += cost
        for job_id in self.index.movable:
            if base.placements[job_id] is None and base.tardiness[job_id]:
                cost = base.tardiness[job_id]
                for r in self.index.resources.get(job_id, []):
                    late[r] += cost
                for pool in self.index.jobs[job_id].pools:
                    late[f"p:{pool}"] += cost
        return late

    def _held_by(self, resource: str) -> list[str]:
        """Movable jobs the plan puts on a resource (``e:``, ``w:`` or ``p:`` id)."""
        kind, rid = resource[0], resource[2:]
        held = {"e": self.base.attended, "w": self.base.machine, "p": self.base.pool}[kind]
        return [j for j in held.get(rid, ()) if j not in self.index.locked]

    def _bottleneck(self, size: int) -> Neighbourhood:
        """The resource with the most late weighted work (one of the few worst, at random):
        a stretch of its jobs around one of its late ones, the left-out jobs that could use it
        then, and nothing held to it, so work can move off it or be reordered on it."""
        late = self._late_work()
        if not late:
            return self._time_window(size)
        worst = sorted(late, key=lambda r: (-late[r], r))[:3]
        resource = worst[self.rng.randrange(len(worst))]
        placements = self.base.placements
        placed = sorted((placements[j].start, j) for j in self._held_by(resource))  # type: ignore[union-attr]
        take = max(1, int(size * 0.75))
        if not placed:
            lo, hi = 0, self.snapshot.horizon
            free: set[str] = set()
        else:
            # centre the stretch on a late job, chosen by how late it is
            costs = [self.base.tardiness[j] + 1 for _, j in placed]
            x = self.rng.random() * sum(costs)
            centre = len(placed) - 1
            for i, c in enumerate(costs):
                x -= c
                if x <= 0:
                    centre = i
                    break
            first = max(0, min(centre - take // 2, len(placed) - take))
            block = placed[first : first + take]
            free = {j for _, j in block}
            lo = block[0][0]
            hi = self.snapshot.horizon if first + take >= len(placed) else block[-1][0]
        users = {
            j
            for j in self._insertable(free, 4 * size, lo, hi)
            if resource in self.index.resources.get(j, [])
            or resource[2:] in self.index.jobs[j].pools
        }
        free.update(sorted(users)[: max(0, size - len(free))])
        return Neighbourhood(sorted(free))

    def _urgent(self, size: int) -> Neighbourhood:
        """The case chains of the latest high-weight jobs: every movable job of their cases,
        and the jobs of no more weight that hold the chain's examiners and workstations before
        each, so the chain can move earlier."""
        base = self.base
        late = [
            (job.weight, base.tardiness[j], j)
            for j in self.index.movable
            if base.tardiness[j] > 0 and (job := self.index.jobs[j]).weight > 0
        ]
        if not late:
            return self._time_window(size)
        late.sort(reverse=True)
        top = late[: max(5, len(late) // 10)]
        free: set[str] = set()
        cases: list[str] = []
        attempts = 0
        while len(free) < size // 2 and attempts < 2 * len(top):
            attempts += 1
            _, _, job_id = top[self.rng.randrange(len(top))]
            case = self.index.jobs[job_id].case
            if case in cases:
                continue
            cases.append(case)
            free.update(self.index.by_case[case])
        chain = sorted(free)
        for job_id in chain:
            if len(free) >= size:
                break
            job = self.index.jobs[job_id]
            a = base.placements[job_id]
            until = a.start if a is not None else self.snapshot.horizon
            for r in self.index.resources.get(job_id, []):
                for other in self._held_by(r):
                    b = base.placements[other]
                    if (
                        b is not None
                        and job.release <= b.start < until
                        and self.index.jobs[other].weight <= job.weight
                        and len(free) < size
                    ):
                        free.add(other)
        # a left-out job of the chain needs its predecessors placed or free
        keep = {
            j
            for j in free
            if base.placements[j] is not None
            or all(
                p not in self.index.jobs or p in free or base.placements.get(p) is not None
                for p in self.index.jobs[j].after
            )
        }
        return Neighbourhood(sorted(keep))

    # -- cheap moves ----------------------------------------------------------------------

    def _move_jobs(self) -> list[str]:
        """The jobs of one cheap move, in the order they are placed again: a late job held by
        (or left out of) one of the resources with the most late weighted work, alone or with a
        lighter job the resource holds before it (a swap: the late job is placed first, so it
        may take the other's slot), then the late job's placed successors, which may follow it
        earlier."""
        late = self._late_work()
        if not late:
            return []
        worst = sorted(late, key=lambda r: (-late[r], r))[:3]
        resource = worst[self.rng.randrange(len(worst))]
        base = self.base
        index = self.index
        held = self._held_by(resource)
        candidates = [j for j in held if base.tardiness[j] > 0]
        for job_id in index.movable:
            if (
                base.placements[job_id] is None
                and base.tardiness[job_id] > 0
                and (
                    resource in index.resources.get(job_id, [])
                    or resource[2:] in index.jobs[job_id].pools
                )
                and all(base.placements.get(p) is not None for p in index.jobs[job_id].after)
            ):
                candidates.append(job_id)
        if not candidates:
            return []
        x = self.rng.random() * sum(base.tardiness[j] for j in candidates)
        target = candidates[-1]
        for job_id in candidates:
            x -= base.tardiness[job_id]
            if x <= 0:
                target = job_id
                break
        job = index.jobs[target]
        a = base.placements[target]
        until = a.start if a is not None else self.snapshot.horizon
        chain = {target}
        frontier = [target]
        while frontier and len(chain) < 6:
            for s in index.successors.get(frontier.pop(), ()):
                if s not in chain and s not in index.locked and base.placements[s] is not None:
                    chain.add(s)
                    frontier.append(s)
        order = [target]
        if a is None or self.rng.random() < MOVE_SWAPS:  # a left-out job alone rarely finds room
            # the lighter work held there before it, nearest first
            before = sorted(
                (
                    (-b.start, j)
                    for j in held
                    if j not in chain
                    and (b := base.placements[j]) is not None
                    and job.release <= b.end
                    and b.start < until
                    and index.jobs[j].weight <= job.weight
                ),
            )[:8]
            if before:
                order.append(before[self.rng.randrange(len(before))][1])
        order += sorted(chain - {target}, key=lambda j: index.rank[j])
        return order

    def _moves(self, outcome: SearchOutcome) -> None:
        """Cheap moves while their share of the clock allows (``SearchSettings.moves``): each
        places its jobs again by the dispatch rules (``dispatch.redispatch``) and is kept when
        the plan's exact objective drops and the verifier passes the plan."""
        s = self.settings
        share = s.moves
        if share <= 0:
            return
        stats = outcome.moves
        jobs = len(self.index.order)
        while stats[4] < share * self._clock() and not is_set(self.stop):
            began = time.monotonic()
            cost = MOVE_SECONDS_PER_JOB * jobs
            charged = False
            stats[0] += 1
            order = self._move_jobs()
            if not order:  # nothing late to move
                self._charge(cost, began, stats)
                stats[3] += time.monotonic() - began
                break
            moved = redispatch(self.snapshot, self.placements, order, leave_out=True)
            if moved is not None and any(moved[j] != self.placements[j] for j in order):
                merged = {**self.placements, **moved}
                value, _ = plan_objective(
                    self.snapshot, (a for a in merged.values() if a is not None)
                )
                if value < self.objective:
                    cost += VERIFY_SECONDS_PER_JOB * jobs
                    accepted = self._merge_check(moved)
                    if accepted is not None and accepted < self.objective:
                        self._charge(cost, began, stats)
                        charged = True
                        self._accept(moved, accepted, stats, outcome)
            if not charged:
                self._charge(cost, began, stats)
            stats[3] += time.monotonic() - began
            if self._clock() >= s.time_limit:
                break

    def _accept(
        self,
        changed: Mapping[str, Assignment | None],
        accepted: int,
        stats: list[float],
        outcome: SearchOutcome,
    ) -> None:
        """Make ``changed`` the incumbent at objective ``accepted`` (a sub-solve's or a move's
        win), counted in its kind's ``stats`` and the search's history and progress."""
        stats[1] += 1
        stats[2] += self.objective - accepted
        self.placements.update(changed)
        self.base.update(changed)
        self.objective = accepted
        self.version += 1
        outcome.improvements += 1
        elapsed = self._clock()
        outcome.history.append((elapsed, accepted))
        if self.progress is not None:
            self.progress(min(1.0, elapsed / self.settings.time_limit), accepted)

    def _charge(self, cost: float, began: float, stats: list[float]) -> None:
        """Count a move on the search's clock: with one worker its estimated ``cost``, else the
        wall seconds since it ``began``."""
        if self.settings.deterministic:
            self.estimated += cost
            stats[4] += cost
        else:
            stats[4] += time.monotonic() - began

    def _insert_only(self, size: int) -> Neighbourhood:
        free = set(self._insertable(set(), size, 0, self.snapshot.horizon))
        return Neighbourhood(sorted(free))

    # -- the loop ---------------------------------------------------------------------------

    def _pick_kind(self) -> tuple[str, Callable[[int], Neighbourhood]]:
        """Untried kinds first, then at random in proportion to what each has been gaining per
        second lately (never below a tenth of the best, so every kind keeps being tried)."""
        for name, fn in self.kinds:
            if self.kind_rate[name] is None:
                return name, fn
        rates = {k: r or 0.0 for k, r in self.kind_rate.items()}
        best = max(rates.values())
        weights = {k: max(r, 0.1 * best) + 1e-9 for k, r in rates.items()}
        x = self.rng.random() * sum(weights.values())
        for name, fn in self.kinds:
            x -= weights[name]
            if x <= 0:
                return name, fn
        return self.kinds[-1]

    def _prepare(self, iteration: int, deadline: float) -> _Attempt | None:
        """Pick a neighbourhood and build its warm-started model and solver (not yet run)."""
        s = self.settings
        kind, make = self._pick_kind()
        tried = time.monotonic()
        hood = make(int(self.size))
        if not hood.free:
            return None
        ctx = build_model(
            self.snapshot,
            hood.free,
            self.base.placements,
            start_windows=hood.windows,
            allowed=hood.allowed,
            balance_scope=self.balance_scope,
            tie_break=self.tie_break,
            base=self.base,
        )
        add_hint(ctx, {j: a for j in hood.free if (a := self.placements[j]) is not None})
        build = BUILD_SECONDS_PER_FREE_JOB * len(hood.free)
        build += BUILD_SECONDS_PER_JOB * len(self.index.order)
        self.estimated += build
        if s.deterministic:
            seconds = max(0.01, min(s.sub_limit, s.time_limit - self.estimated))
        else:
            seconds = max(0.05, min(s.sub_limit, deadline - time.monotonic()))
        solver = make_solver(
            workers=1 if self.threads > 1 else s.workers,
            seconds=seconds,
            deterministic=s.deterministic,
            seed=(s.seed * 7919 + iteration) % (2**31 - 1),
            light_presolve=True,
            extra=s.solver_params,
        )
        before = self._secondary(hood.free, self.placements, ctx)
        built = time.monotonic() - tried
        return _Attempt(
            iteration,
            kind,
            hood,
            ctx,
            solver,
            self.version,
            self.objective,
            before,
            tried,
            build,
            built,
        )

    def _settle(
        self, attempt: _Attempt, status: cp_model.CpSolverStatus, outcome: SearchOutcome
    ) -> None:
        """Keep an improvement (checked against the current plan if it moved meanwhile), record
        statistics and adapt the neighbourhood size and the choice of kinds."""
        s = self.settings
        solver = attempt.solver
        spent_det = attempt.build + work_seconds(solver)
        self.estimated += work_seconds(solver)
        stats = outcome.by_kind.setdefault(attempt.kind, [0.0] * len(KIND_FIGURES))
        stats[0] += 1
        stats[4] += attempt.built
        stats[5] += attempt.solved
        gain = 0
        if status in (cp_model.OPTIMAL, cp_model.FEASIBLE):
            value, compacted = divmod(round(solver.objective_value), attempt.ctx.tie_scale)
            better = value < attempt.objective or (
                self.tie_break and value == attempt.objective and compacted < attempt.ends
            )
            if better:
                solution = read_solution(attempt.ctx, solver)
                if attempt.version == self.version:
                    accepted: int | None = value
                else:
                    accepted = self._merge_check(solution)
                if accepted is not None and (
                    accepted < self.objective or (self.tie_break and accepted == self.objective)
                ):
                    self._accept(solution, accepted, stats, outcome)
        elif status == cp_model.INFEASIBLE:
            log.warning(
                "neighbourhood %s of %d jobs is infeasible", attempt.kind, len(attempt.hood.free)
            )
        # Adapt: a neighbourhood CP-SAT closes easily may grow, a hard one shrinks.
        if status == cp_model.OPTIMAL:
            self.size = min(s.max_size, self.size * 1.08 + 1)
        else:
            self.size = max(s.min_size, self.size * 0.93)
        spent = time.monotonic() - attempt.tried
        stats[3] += spent
        stats[6] += spent_det if s.deterministic else attempt.built + attempt.solved
        if s.deterministic:
            spent = spent_det
        rate = gain / max(spent, 1e-3)
        old = self.kind_rate[attempt.kind]
        self.kind_rate[attempt.kind] = rate if old is None else 0.7 * old + 0.3 * rate
        log.debug(
            "lns %d %s free=%d status=%s obj=%d size=%.0f",
            attempt.iteration,
            attempt.kind,
            len(attempt.hood.free),
            solver.status_name(status),
            self.objective,
            self.size,
        )

    def _clock(self) -> float:
        """Seconds the search has used: with one worker on its work-counted clock (so what it
        reports along the way repeats exactly), else wall seconds."""
        if self.settings.deterministic:
            return self.estimated
        return time.monotonic() - self.started

    def _secondary(
        self, jobs: Iterable[str], placements: Placements, ctx: ModelContext | None = None
    ) -> int:
        """The tie-break measure of ``jobs`` in ``placements``, as ``build_model`` counts it:
        the sum of their ends (makespan), else how many of them left their published start
        (within a neighbourhood, only those its model could keep there)."""
        if self.snapshot.objective == "makespan":
            return sum(
                a.end
                if (a := placements[j]) is not None
                else unassigned_end(self.snapshot, self.index.jobs[j])
                for j in jobs
            )
        moved = 0
        for j in jobs:
            p = self.published.get(j)
            if p is None or (ctx is not None and ctx.vars[j].same_start is None):
                continue
            a = placements[j]
            moved += a is None or (a.examiner, a.workstation, a.start) != (
                p.examiner,
                p.workstation,
                p.start,
            )
        return moved

    def _merge_check(self, solution: Placements) -> int | None:
        """Exact objective of the current plan with ``solution`` applied, or None if the result
        breaks a hard rule (the solution was found against an older plan)."""
        merged = {**self.placements, **solution}
        assignments = tuple(a for a in merged.values() if a is not None)
        left = tuple(Unscheduled(j, HORIZON_FULL, "") for j, a in merged.items() if a is None)
        problems = [
            v
            for v in verify(self.snapshot, Plan("feasible", None, None, 0.0, assignments, left))
            if v.rule not in KEPT  # locked jobs never move
        ]
        if problems:
            return None
        value, _ = plan_objective(self.snapshot, assignments)
        if self.tie_break and value == self.objective:
            order = self.index.order
            if self._secondary(order, merged) >= self._secondary(order, self.placements):
                return None
        return value

    def run(self) -> SearchOutcome:
        s = self.settings
        self.started = time.monotonic()
        deadline = self.started + s.time_limit
        outcome = SearchOutcome(self.placements, self.objective)
        iteration = 0
        empty = 0
        if self.threads > 1:
            iteration = self._run_parallel(outcome, deadline)
        else:
            while True:
                now = time.monotonic()
                if s.deterministic:
                    # A clock that depends only on the work done (CP-SAT deterministic time
                    # plus an estimate of the model building), so the run is reproducible.
                    if self.estimated >= s.time_limit or now >= (
                        self.started + DETERMINISTIC_WALL_FACTOR * s.time_limit
                    ):
                        break
                elif now >= deadline - 0.05:
                    break
                if is_set(self.stop):
                    break
                iteration += 1
                attempt = self._prepare(iteration, deadline)
                if attempt is None:
                    empty += 1
                    if empty > EMPTY_LIMIT:
                        break  # nothing left to move
                    continue
                empty = 0
                self._settle(attempt, attempt.run(), outcome)
                self._moves(outcome)
        outcome.placements = self.placements
        outcome.objective = self.objective
        outcome.iterations = iteration
        outcome.clock = self._clock()
        return outcome

    def _run_parallel(self, outcome: SearchOutcome, deadline: float) -> int:
        """Keep ``threads`` single-worker neighbourhood solves running at once (CP-SAT releases
        the GIL while it searches); results found against an older plan are merged only if the
        merged plan passes the verifier and is cheaper."""
        iteration = 0
        empty = 0
        pending: dict[Future[cp_model.CpSolverStatus], _Attempt] = {}
        with ThreadPoolExecutor(max_workers=self.threads) as pool:
            while True:
                while (
                    len(pending) < self.threads
                    and time.monotonic() < deadline - 0.1
                    and not is_set(self.stop)
                ):
                    iteration += 1
                    attempt = self._prepare(iteration, deadline)
                    if attempt is None:
                        empty += 1
                        if empty > EMPTY_LIMIT:
                            break
                        continue
                    empty = 0
                    pending[pool.submit(attempt.run)] = attempt
                if not pending:
                    break
                # cheap moves in this thread while the solves run (CP-SAT releases the GIL)
                self._moves(outcome)
                done, _ = wait(pending, return_when=FIRST_COMPLETED)
                for future in done:
                    self._settle(pending.pop(future), future.result(), outcome)
        return iteration


def improve(
    snapshot: Snapshot,
    placements: Mapping[str, Assignment | None],
    objective: int,
    settings: SearchSettings,
    *,
    locked: frozenset[str] = frozenset(),
    balance_scope: Sequence[str] | None = None,
    progress: Progress | None = None,
    stop: threading.Event | None = None,
) -> SearchOutcome:
    """Improve a valid plan by large-neighbourhood search within ``settings.time_limit``.

    ``placements`` holds every job of ``snapshot`` (``None`` = left out) and ``objective`` its
    weighted objective. ``locked`` jobs (pinned, frozen) are never freed. Returns the best plan
    found; it is never worse than the one given. With ``settings.workers == 1`` the result depends
    only on the inputs and the seed: time is counted on a clock of CP-SAT deterministic time
    (``DETERMINISTIC_UNITS_PER_SECOND`` per second) plus an estimate of model building; wall
    time only stops a run that takes more than three times its limit. Setting ``stop`` ends the
    search after the neighbourhood solves in progress (each at most ``settings.sub_limit``).
    """
    search = _Search(
        snapshot, dict(placements), objective, locked, settings, balance_scope, progress, stop
    )
    return search.run()
