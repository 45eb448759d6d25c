"""Shared state of one CP-SAT model: the snapshot, which jobs are free, and their variables.

A model is always built over a set of *free* jobs; every other job of the snapshot is *fixed* to a
known placement (or known to be left out). The full model frees every job that is not pinned or
frozen; a large-neighbourhood step frees a few hundred and fixes the rest to the incumbent. Fixed
jobs enter as constants (busy time removed from start domains, constant resource usage, constant
cost), so the model's objective is always the plan's exact objective, not a local surrogate.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field

from ortools.sat.python import cp_model

from scheduler.core import objective as obj
from scheduler.core.eligibility import (
    caps_allow,
    eligible_examiners,
    eligible_workstations,
    exposure_examiners,
)
from scheduler.core.plan import Assignment
from scheduler.core.rules.exposure import ExposureLedger
from scheduler.core.snapshot import Examiner, Job, Snapshot, Workstation

Interval = tuple[int, int]
LinearExpr = cp_model.LinearExprT


@dataclass
class JobVars:
    """Decision variables of one free job.

    ``examiners`` / ``workstations`` map a resource id to the literal "the job runs on it"
    (``assign[j=..,e=..]`` / ``use[j=..,w=..]``); exactly one is true when the job is present and
    needs that kind of resource. ``end`` is only meaningful when ``present`` is true.
    """

    job: Job
    present: cp_model.IntVar
    start: cp_model.IntVar
    end: LinearExpr
    examiners: dict[str, cp_model.IntVar] = field(default_factory=dict)
    workstations: dict[str, cp_model.IntVar] = field(default_factory=dict)
    attended: dict[str, cp_model.IntervalVar] = field(default_factory=dict)
    machine: dict[str, cp_model.IntervalVar] = field(default_factory=dict)
    span: cp_model.IntervalVar | None = None
    start_days: dict[int, cp_model.IntVar] = field(default_factory=dict)
    start_domain: list[Interval] = field(default_factory=list)
    # Auxiliary variables, kept so a warm start can give every variable a value.
    option_starts: dict[str, cp_model.IntVar] = field(default_factory=dict)
    end_var: cp_model.IntVar | None = None
    size_var: cp_model.IntVar | None = None
    late: cp_model.IntVar | None = None
    finish: cp_model.IntVar | None = None
    kept: cp_model.IntVar | None = None
    same_start: cp_model.IntVar | None = None


@dataclass
class Term:
    """One soft term: ``expr + constant`` is its raw (unweighted) value in the whole plan."""

    expr: LinearExpr = 0
    constant: int = 0


Spans = list[tuple[str, Interval]]


def successors_of(snapshot: Snapshot) -> dict[str, list[str]]:
    """Per job, the jobs of the snapshot that wait for it."""
    jobs = snapshot.jobs_by_id
    successors: dict[str, list[str]] = defaultdict(list)
    for job in snapshot.jobs:
        for pred in job.after:
            if pred in jobs:
                successors[pred].append(job.id)
    return successors


class FixedSpans:
    """Per resource, the ``(job, [start, end))`` spans fixed jobs take on it (``get`` only)."""

    def __init__(
        self, by_resource: Mapping[str, Mapping[str, Interval]], free: frozenset[str]
    ) -> None:
        self._by_resource = by_resource
        self._free = free
        self._cache: dict[str, Spans] = {}

    def get(self, rid: str, default: Spans | None = None) -> Spans:
        got = self._cache.get(rid)
        if got is None:
            spans = self._by_resource.get(rid)
            if spans is None:
                return default if default is not None else []
            got = [(j, span) for j, span in spans.items() if j not in self._free]
            self._cache[rid] = got
        return got


class _Without(Mapping[str, Assignment | None]):
    """A plan's placements without the free jobs (read-only, not copied)."""

    def __init__(self, placements: Mapping[str, Assignment | None], free: frozenset[str]) -> None:
        self._placements = placements
        self._free = free

    def __getitem__(self, job_id: str) -> Assignment | None:
        if job_id in self._free:
            raise KeyError(job_id)
        return self._placements[job_id]

    def __iter__(self) -> Iterator[str]:
        return (j for j in self._placements if j not in self._free)

    def __len__(self) -> int:
        return sum(1 for _ in self)


class FixedContext:
    """What a whole plan fixes, counted once and kept up to date as the plan changes.

    A neighbourhood model fixes every job but a few hundred free ones; counting the fixed jobs'
    busy time, costs and exposure afresh for every neighbourhood costs time in proportion to the
    lab. This keeps those counts for the whole plan (every job of the snapshot, ``None`` = left
    out), so a model subtracts its free jobs instead (docs/architecture.md §5.4). It also keeps
    each job's eligible examiners and workstations, which never change. ``update`` applies an
    accepted neighbourhood solution.
    """

    def __init__(self, snapshot: Snapshot, placements: Mapping[str, Assignment | None]) -> None:
        self.snapshot = snapshot
        self.jobs: Mapping[str, Job] = snapshot.jobs_by_id
        missing = [j.id for j in snapshot.jobs if j.id not in placements]
        if missing:
            raise ValueError(f"jobs without a placement: {missing[:5]}")
        self.placements: dict[str, Assignment | None] = {}
        self.attended: dict[str, dict[str, Interval]] = defaultdict(dict)
        self.machine: dict[str, dict[str, Interval]] = defaultdict(dict)
        self.pool: dict[str, dict[str, Interval]] = defaultdict(dict)
        self.tardiness: dict[str, int] = {}
        self.tardiness_total = 0
        self.exposure_load: dict[str, int] = defaultdict(int)  # planned exposure per examiner
        self.case_examiners: dict[str, Counter[str]] = defaultdict(Counter)
        self.continuity_total = 0  # sum over cases of (distinct examiners - 1)
        self.ledger = ExposureLedger(snapshot)
        self.successors = successors_of(snapshot)
        self._options: dict[str, tuple[list[str], list[str]]] = {}
        for job in snapshot.jobs:
            self.placements[job.id] = None
            self._add(job.id, placements[job.id])

    def options(self, job_id: str) -> tuple[list[str], list[str]]:
        """Eligible examiners (caps allowing) and workstations of a job (rule 1)."""
        got = self._options.get(job_id)
        if got is None:
            job = self.jobs[job_id]
            examiners = [e.id for e in eligible_examiners(self.snapshot, job) if caps_allow(job, e)]
            got = examiners, [w.id for w in eligible_workstations(self.snapshot, job)]
            self._options[job_id] = got
        return got

    def update(self, placements: Mapping[str, Assignment | None]) -> None:
        """The plan now places these jobs so (``None``: left out)."""
        for job_id, a in placements.items():
            self._remove(job_id)
            self._add(job_id, a)

    def _contribution(self, case: str) -> int:
        return max(0, len(self.case_examiners.get(case, ())) - 1)

    def _add(self, job_id: str, a: Assignment | None) -> None:
        job = self.jobs[job_id]
        self.placements[job_id] = a
        end = a.end if a is not None else obj.unassigned_end(self.snapshot, job)
        cost = obj.job_tardiness(job, end)
        self.tardiness[job_id] = cost
        self.tardiness_total += cost
        if a is None:
            return
        if a.examiner is not None and job.attended > 0:
            self.attended[a.examiner][job_id] = (a.start, a.start + job.attended)
        if a.workstation is not None:
            self.machine[a.workstation][job_id] = (a.start, a.start + job.machine_on(a.workstation))
        for pool in job.pools:
            self.pool[pool][job_id] = (a.start, a.end)
        if a.examiner is not None:
            if job.exposure > 0:
                self.exposure_load[a.examiner] += job.exposure
                examiner = self.snapshot.examiners_by_id.get(a.examiner)
                if examiner is not None:
                    self.ledger.take_at(job, examiner, a.start)
            if job.needs_examiner:
                before = self._contribution(job.case)
                self.case_examiners[job.case][a.examiner] += 1
                self.continuity_total += self._contribution(job.case) - before

    def _remove(self, job_id: str) -> None:
        job = self.jobs[job_id]
        a = self.placements[job_id]
        self.tardiness_total -= self.tardiness.pop(job_id)
        if a is None:
            return
        if a.examiner is not None:
            self.attended[a.examiner].pop(job_id, None)
        if a.workstation is not None:
            self.machine[a.workstation].pop(job_id, None)
        for pool in job.pools:
            self.pool[pool].pop(job_id, None)
        if a.examiner is not None:
            if job.exposure > 0:
                self.exposure_load[a.examiner] -= job.exposure
                examiner = self.snapshot.examiners_by_id.get(a.examiner)
                if examiner is not None:
                    self.ledger.give_back(job, examiner, a.start)
            if job.needs_examiner:
                before = self._contribution(job.case)
                counts = self.case_examiners[job.case]
                counts[a.examiner] -= 1
                if counts[a.examiner] <= 0:
                    del counts[a.examiner]
                self.continuity_total += self._contribution(job.case) - before


class ModelContext:
    """Everything the rule modules share while they add their constraints.

    Parameters
    ----------
    snapshot:
        The planning problem.
    free:
        Ids of the jobs the solver may place (or leave out).
    fixed:
        Placement of every other job: an :class:`Assignment`, or ``None`` for a job kept out of the
        plan. Pinned and frozen jobs must be fixed.
    start_windows:
        Optional closed ``[lo, hi]`` bounds on a free job's start (used to keep neighbourhoods
        local).
    forced:
        Free jobs that must be scheduled.
    allowed:
        Optional per free job: the only examiners/workstations (``"e:<id>"``, ``"w:<id>"``) it
        may use (a neighbourhood that swaps work inside a group of resources).
    tie_break:
        Also minimise, below the plan's objective, a secondary measure of the free jobs: with a
        makespan the sum of their ends (a left-out job counts its horizon charge), otherwise how
        many of them start other than at their published start; see ``costs.add_objective``.
    balance_scope:
        Examiners the balance term spreads over; defaults to those of ``snapshot`` (pass the full
        snapshot's when ``snapshot`` holds only the candidate jobs, so the numbers agree).
    base:
        The whole plan's :class:`FixedContext`, whose placements are then ``fixed`` (the free
        jobs among them are ignored): the fixed jobs' counts are read from it, not recounted.
    """

    def __init__(
        self,
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
    ) -> None:
        self.snapshot = snapshot
        self.base = base
        self.model = cp_model.CpModel()
        self.jobs: Mapping[str, Job] = snapshot.jobs_by_id
        self.examiners: Mapping[str, Examiner] = snapshot.examiners_by_id
        self.workstations: Mapping[str, Workstation] = snapshot.workstations_by_id
        self.pool_capacity: dict[str, int] = {p.id: p.capacity for p in snapshot.pools}
        self.free: list[str] = list(free)
        self.free_set = frozenset(self.free)
        self.fixed: Mapping[str, Assignment | None]
        if base is not None:
            if base.snapshot is not snapshot:
                raise ValueError("the fixed context is of another snapshot")
            self.fixed = _Without(base.placements, self.free_set)
        else:
            self.fixed = dict(fixed)
            missing = [
                j.id for j in snapshot.jobs if j.id not in self.free_set and j.id not in fixed
            ]
            if missing:
                raise ValueError(f"jobs neither free nor fixed: {missing[:5]}")
        self.start_windows: dict[str, Interval] = dict(start_windows or {})
        self.forced = forced
        self.allowed: dict[str, frozenset[str]] = dict(allowed or {})
        self.tie_break = tie_break
        self.tie_scale = 1  # objective value = tie_scale * plan objective + secondary measure
        self.horizon = snapshot.horizon
        self.day_starts = [a for a, _ in snapshot.days]
        if balance_scope is None:
            balance_scope = [e.id for e in exposure_examiners(snapshot)]
        self.balance_scope: list[str] = list(balance_scope)

        # Filled by the rule modules, in order.
        self.examiner_options: dict[str, list[str]] = {}
        self.workstation_options: dict[str, list[str]] = {}
        self.vars: dict[str, JobVars] = {}
        self.terms: dict[str, Term] = {}
        self.objective_constant = 0
        # Auxiliary variables of the costs and caps (see hints.py).
        self.exposed: dict[tuple[str, str, int], cp_model.IntVar] = {}
        self.makespan: cp_model.IntVar | None = None
        self.balance: tuple[cp_model.IntVar, cp_model.IntVar] | None = None
        self.works_on: dict[tuple[str, str], tuple[cp_model.IntVar, list[cp_model.IntVar]]] = {}
        self.continuity: dict[str, tuple[cp_model.IntVar, int, list[cp_model.IntVar]]] = {}

        self.successors: Mapping[str, list[str]]
        if base is not None:
            self.successors = base.successors
        else:
            self.successors = successors_of(snapshot)

        # Time the fixed jobs already take on each resource.
        if base is not None:
            attended, machine, pool = base.attended, base.machine, base.pool
        else:
            attended, machine, pool = defaultdict(dict), defaultdict(dict), defaultdict(dict)
            for job_id, a in self.fixed.items():
                if a is None:
                    continue
                job = self.jobs[job_id]
                if a.examiner is not None and job.attended > 0:
                    attended[a.examiner][job_id] = (a.start, a.start + job.attended)
                if a.workstation is not None:
                    m = job.machine_on(a.workstation)
                    machine[a.workstation][job_id] = (a.start, a.start + m)
                for p in job.pools:
                    pool[p][job_id] = (a.start, a.end)
        self.fixed_attended = FixedSpans(attended, self.free_set)
        self.fixed_machine = FixedSpans(machine, self.free_set)
        self.fixed_pool = FixedSpans(pool, self.free_set)
        # Planned exposure minutes per examiner in scope, fixed jobs only (costs.add_balance).
        self.balance_loads: dict[str, int] = {}

    # -- helpers shared by the rules ---------------------------------------------------------

    def day_of(self, t: int) -> int | None:
        """Index of the lab-local day containing minute ``t`` (a job counts on its start day)."""
        return self.snapshot.day_of(t)

    def week_of(self, t: int) -> int | None:
        return self.snapshot.week_of(t)

    def fixed_end(self, job_id: str) -> int | None:
        a = self.fixed.get(job_id)
        return None if a is None else a.end
