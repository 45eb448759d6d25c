"""Shared state of one CP-SAT model: the snapshot, which jobs are free, and their variables.

A model is always built over a set of *free* jobs; every other job of the snapshot is *fixed* to a
known placement (or known to be left out). The full model frees every job that is not pinned or
frozen; a large-neighbourhood step frees a few hundred and fixes the rest to the incumbent. Fixed
jobs enter as constants (busy time removed from start domains, constant resource usage, constant
cost), so the model's objective is always the plan's exact objective, not a local surrogate.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from ortools.sat.python import cp_model

from scheduler.core.eligibility import exposure_examiners
from scheduler.core.plan import Assignment
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
    ) -> None:
        self.snapshot = snapshot
        self.model = cp_model.CpModel()
        self.jobs: Mapping[str, Job] = snapshot.jobs_by_id
        self.examiners: Mapping[str, Examiner] = snapshot.examiners_by_id
        self.workstations: Mapping[str, Workstation] = snapshot.workstations_by_id
        self.pool_capacity: dict[str, int] = {p.id: p.capacity for p in snapshot.pools}
        self.free: list[str] = list(free)
        self.free_set = frozenset(self.free)
        self.fixed: dict[str, Assignment | None] = dict(fixed)
        missing = [j.id for j in snapshot.jobs if j.id not in self.free_set and j.id not in fixed]
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

        self.successors: dict[str, list[str]] = defaultdict(list)
        for job in snapshot.jobs:
            for pred in job.after:
                if pred in self.jobs:
                    self.successors[pred].append(job.id)

        # Time the fixed jobs already take on each resource.
        self.fixed_attended: dict[str, list[tuple[str, Interval]]] = defaultdict(list)
        self.fixed_machine: dict[str, list[tuple[str, Interval]]] = defaultdict(list)
        self.fixed_pool: dict[str, list[tuple[str, Interval]]] = defaultdict(list)
        for job_id, a in self.fixed.items():
            if a is None:
                continue
            job = self.jobs[job_id]
            if a.examiner is not None and job.attended > 0:
                self.fixed_attended[a.examiner].append((job_id, (a.start, a.start + job.attended)))
            if a.workstation is not None:
                m = job.machine_on(a.workstation)
                self.fixed_machine[a.workstation].append((job_id, (a.start, a.start + m)))
            for pool in job.pools:
                self.fixed_pool[pool].append((job_id, (a.start, a.end)))

    # -- helpers shared by the rules ---------------------------------------------------------

    def day_of(self, t: int) -> int | None:
        """Index of the lab-local day containing minute ``t`` (a job counts on its start day)."""
        return self.snapshot.day_of(t)

    def week_of(self, t: int) -> int | None:
        return self.snapshot.week_of(t)

    def fixed_end(self, job_id: str) -> int | None:
        a = self.fixed.get(job_id)
        return None if a is None else a.end
