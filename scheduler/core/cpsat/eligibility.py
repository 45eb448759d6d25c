"""Rule 1 (and the severity part of rule 5): who and what may run a job.

Eligibility is decided before any variable exists, so an ineligible pairing never becomes a
literal. The predicates are the project's shared ones (``scheduler.core.eligibility``), so the
model, the dispatch baselines and the balance term agree; an examiner whose caps are smaller than
the job's exposure is left out here too, since no day could ever take it.
"""

from __future__ import annotations

from scheduler.core.cpsat.context import ModelContext
from scheduler.core.eligibility import caps_allow, eligible_examiners, eligible_workstations


def add_eligibility(ctx: ModelContext) -> None:
    """Rule 1: list the eligible examiners and workstations of every free job.

    A neighbourhood may narrow the list further (``ctx.allowed``); that only shrinks the search.
    """
    snap = ctx.snapshot
    for job_id in ctx.free:
        if ctx.base is not None:
            examiners, workstations = ctx.base.options(job_id)
        else:
            job = ctx.jobs[job_id]
            examiners = [e.id for e in eligible_examiners(snap, job) if caps_allow(job, e)]
            workstations = [w.id for w in eligible_workstations(snap, job)]
        allowed = ctx.allowed.get(job_id)
        if allowed is not None:
            examiners = [e for e in examiners if f"e:{e}" in allowed]
            workstations = [w for w in workstations if f"w:{w}" in allowed]
        ctx.examiner_options[job_id] = examiners
        ctx.workstation_options[job_id] = workstations
