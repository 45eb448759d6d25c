"""Who and what may take a job, independent of time (docs/architecture.md §3.1, §3.5).

Kept apart from the time-dependent rules so the dispatch baselines, the objective's balance term,
the bounds and the forecast agree on the same static eligibility as the verifier.
"""

from __future__ import annotations

from .rules.exposure import caps_allow
from .snapshot import Examiner, Job, Snapshot, Workstation

__all__ = [
    "caps_allow",  # rule 3.5's, defined in rules/exposure.py; eligibility's users find it here
    "eligible_examiners",
    "eligible_workstations",
    "examiner_can_take",
    "exposure_examiners",
    "workstation_can_take",
]


def examiner_can_take(job: Job, examiner: Examiner) -> bool:
    """Skills, allow-list and severity: may this examiner ever do this job's attended part?

    The severity limit is applied whenever the job has a severity above the examiner's limit,
    even with no exposure minutes: an opted-out examiner is never handed such material.
    """
    if not job.skills <= examiner.skills:
        return False
    if job.examiners is not None and examiner.id not in job.examiners:
        return False
    return job.severity <= examiner.exposure.max_severity


def workstation_can_take(job: Job, workstation: Workstation) -> bool:
    """Capabilities and the ``machine_by_workstation`` restriction."""
    if job.machine_by_workstation is not None and workstation.id not in job.machine_by_workstation:
        return False
    return job.capabilities <= workstation.capabilities


def eligible_examiners(snapshot: Snapshot, job: Job) -> list[Examiner]:
    """Examiners who may take the job, in snapshot order (empty if it needs none)."""
    if not job.needs_examiner:
        return []
    return [e for e in snapshot.examiners if examiner_can_take(job, e)]


def eligible_workstations(snapshot: Snapshot, job: Job) -> list[Workstation]:
    """Workstations that may run the job, in snapshot order (empty if it needs none)."""
    if not job.needs_workstation:
        return []
    return [w for w in snapshot.workstations if workstation_can_take(job, w)]


def exposure_examiners(snapshot: Snapshot) -> list[Examiner]:
    """Examiners who can take at least one of the snapshot's exposure jobs (balance term scope)."""
    exposure_jobs = [j for j in snapshot.jobs if j.exposure > 0 and j.needs_examiner]
    return [
        e
        for e in snapshot.examiners
        if any(examiner_can_take(j, e) and caps_allow(j, e) for j in exposure_jobs)
    ]
