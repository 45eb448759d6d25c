"""The soft terms (docs/architecture.md §4), computed the same way for every solver.

This module is the single source of truth for what a plan costs: the dispatch baselines, the
CP-SAT model, the LNS acceptance test and the benchmarks all report these numbers, and the CP-SAT
model's objective must equal ``weighted_objective(snapshot, objective_terms(...))`` on its plan.

Terms (``objective_terms`` returns them *raw*, not multiplied by the weights):

``tardiness`` (objective "weighted_tardiness")
    sum over jobs with a due time of ``job.weight * max(0, end - due)``. A job that is not assigned
    is charged as if it ended at ``horizon + job.min_duration``.
``makespan`` (objective "makespan", replaces ``tardiness``)
    the latest end over all jobs, with the same charge ``horizon + min_duration`` for a job that is
    not assigned (0 for an empty snapshot).
``change``
    the changes against ``snapshot.previous``: each published job (still in the snapshot) whose
    examiner, workstation or lab-local day of start differs from the published one, or that is now
    unassigned, counts its ``changes`` (1 unless the snapshot says more: the loader counts the
    next working days' published work more, see ``PreviousAssignment``). The day is the index of
    the ``days`` interval that holds the start (``None`` outside every day, which compares equal
    only to ``None``).
``balance``
    the spread (max - min) of planned exposure minutes (the jobs' ``exposure`` fields) over the
    examiners in scope: those who could take at least one exposure job of the snapshot (skills,
    allow-list, severity and caps, see ``eligibility.exposure_examiners``). Zero with fewer than two
    examiners in scope. Spread rather than maximum, so a perfectly even plan costs nothing.
``continuity``
    for each case, the number of distinct examiners on its assigned attended jobs minus one (zero
    for a case without attended assignments).

``weighted_objective`` is ``weights.tardiness * (tardiness or makespan) + weights.change * change +
weights.balance * balance + weights.continuity * continuity``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from .calendar import Calendar
from .eligibility import exposure_examiners
from .plan import Assignment, Unscheduled
from .snapshot import Job, Snapshot

TARDINESS = "tardiness"
MAKESPAN = "makespan"
CHANGE = "change"
BALANCE = "balance"
CONTINUITY = "continuity"


def primary_term(snapshot: Snapshot) -> str:
    """The name of the main term: ``"makespan"`` or ``"tardiness"``."""
    return MAKESPAN if snapshot.objective == "makespan" else TARDINESS


def unassigned_end(snapshot: Snapshot, job: Job) -> int:
    """The end a job left out of the horizon is charged with: horizon plus its own duration."""
    return snapshot.horizon + job.min_duration


def job_tardiness(job: Job, end: int) -> int:
    """Weighted lateness of one job ending at ``end`` (0 without a due time)."""
    if job.due is None or end <= job.due:
        return 0
    return job.weight * (end - job.due)


def objective_terms(
    snapshot: Snapshot,
    assignments: Iterable[Assignment],
    unscheduled: Iterable[Unscheduled] = (),
) -> dict[str, int]:
    """Raw soft terms of a plan (see the module docstring for their exact definitions).

    Every snapshot job without an assignment is charged as unscheduled, whether or not it is
    listed in ``unscheduled`` (the list is accepted for symmetry with ``Plan``); assignments of
    jobs not in the snapshot are ignored.
    """
    del unscheduled  # every job without an assignment is charged the same way
    jobs = snapshot.jobs_by_id
    assigned: dict[str, Assignment] = {}
    for a in assignments:
        if a.job in jobs:
            assigned[a.job] = a

    tardiness = 0
    makespan = 0
    for job in snapshot.jobs:
        placed = assigned.get(job.id)
        end = placed.end if placed is not None else unassigned_end(snapshot, job)
        tardiness += job_tardiness(job, end)
        makespan = max(makespan, end)

    terms = {
        primary_term(snapshot): makespan if snapshot.objective == "makespan" else tardiness,
        CHANGE: change_term(snapshot, assigned),
        BALANCE: balance_term(snapshot, assigned),
        CONTINUITY: continuity_term(snapshot, assigned),
    }
    return terms


def change_term(snapshot: Snapshot, assigned: Mapping[str, Assignment]) -> int:
    """Jobs whose examiner, workstation or day moved against the published schedule."""
    if not snapshot.previous:
        return 0
    days = Calendar(snapshot.days)
    present = {j.id for j in snapshot.jobs}
    changes = 0
    for prev in snapshot.previous:
        if prev.job not in present:
            continue
        a = assigned.get(prev.job)
        if (
            a is None
            or a.examiner != prev.examiner
            or a.workstation != prev.workstation
            or days.index(a.start) != days.index(prev.start)
        ):
            changes += prev.changes
    return changes


def balance_term(snapshot: Snapshot, assigned: Mapping[str, Assignment]) -> int:
    """Spread of planned exposure minutes over the examiners who can take exposure work."""
    scope = [e.id for e in exposure_examiners(snapshot)]
    if len(scope) < 2:
        return 0
    minutes = dict.fromkeys(scope, 0)
    jobs = snapshot.jobs_by_id
    for a in assigned.values():
        job = jobs[a.job]
        if job.exposure > 0 and a.examiner in minutes:
            minutes[a.examiner] += job.exposure
    return max(minutes.values()) - min(minutes.values())


def continuity_term(snapshot: Snapshot, assigned: Mapping[str, Assignment]) -> int:
    """Extra examiners per case: one examiner per case is the ideal (chain of custody)."""
    jobs = snapshot.jobs_by_id
    by_case: dict[str, set[str]] = {}
    for a in assigned.values():
        job = jobs[a.job]
        if job.needs_examiner and a.examiner is not None:
            by_case.setdefault(job.case, set()).add(a.examiner)
    return sum(len(examiners) - 1 for examiners in by_case.values())


def weighted_objective(snapshot: Snapshot, terms: Mapping[str, int]) -> int:
    """The single number solvers minimise: each raw term times its weight, summed."""
    w = snapshot.weights
    return (
        w.tardiness * terms.get(primary_term(snapshot), 0)
        + w.change * terms.get(CHANGE, 0)
        + w.balance * terms.get(BALANCE, 0)
        + w.continuity * terms.get(CONTINUITY, 0)
    )


def plan_objective(
    snapshot: Snapshot,
    assignments: Iterable[Assignment],
    unscheduled: Iterable[Unscheduled] = (),
) -> tuple[int, dict[str, int]]:
    """Weighted objective and raw terms in one call."""
    terms = objective_terms(snapshot, assignments, unscheduled)
    return weighted_objective(snapshot, terms), terms
