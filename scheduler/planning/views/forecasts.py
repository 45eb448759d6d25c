"""When a case's work will be examined and finished, and why not sooner (docs/architecture.md
§5.8, §7.3).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from models import (
    Case,
    Device,
    ForecastEntry,
    Job,
    JobPredecessor,
    Lab,
    PriorityLevel,
    ScheduleVersion,
    UnscheduledJob,
)
from models.lab import target_start
from scheduler.planning.loading.jobs import STAGE_ALLOWANCE_HOURS
from scheduler.planning.loading.rows import ACTIVE_JOB_STATUSES
from scheduler.planning.views.placed import job_refs, placed_jobs


@dataclass
class JobOutlook:
    job_id: int
    job: str
    stage: str
    status: str
    expected_start: datetime | None = None
    expected_end: datetime | None = None
    source: str = "none"  # schedule | forecast | done | none
    examiner: str | None = None
    workstation: str | None = None
    reason: str | None = None
    detail: str | None = None
    due_at: datetime | None = None
    waits_for: list[str] = field(default_factory=list)


def case_forecast(
    session: Session, lab: Lab, case: Case, version: ScheduleVersion | None
) -> dict[str, Any]:
    """When a case's work will be examined and finished, and why not sooner."""
    level = session.get(PriorityLevel, case.priority_level_id)
    assert level is not None
    jobs = list(
        session.scalars(
            select(Job)
            .join(Device, Job.device_id == Device.id)
            .where(Device.case_id == case.id)
            .order_by(Device.id, Job.id)
        )
    )
    refs = job_refs(session, (j.id for j in jobs))
    ids = [j.id for j in jobs]
    preds: dict[int, list[int]] = defaultdict(list)
    if ids:
        for job_id, pred_id in session.execute(
            select(JobPredecessor.job_id, JobPredecessor.predecessor_id).where(
                JobPredecessor.job_id.in_(ids)
            )
        ):
            preds[job_id].append(pred_id)
    outlooks: dict[int, JobOutlook] = {
        j.id: JobOutlook(j.id, refs[j.id], j.stage, j.status) for j in jobs
    }
    status_of = {j.id: j.status for j in jobs}
    if version is not None and ids:
        for placed in placed_jobs(session, version, case_id=case.id):
            o = outlooks[placed.job_id]
            o.expected_start, o.expected_end, o.source = (
                placed.starts_at,
                placed.ends_at,
                "schedule",
            )
            o.examiner, o.workstation = placed.examiner, placed.workstation
        for entry in session.scalars(
            select(ForecastEntry).where(
                ForecastEntry.schedule_version_id == version.id, ForecastEntry.job_id.in_(ids)
            )
        ):
            o = outlooks[entry.job_id]
            o.expected_start, o.expected_end, o.source = entry.starts_at, entry.ends_at, "forecast"
        for left in session.scalars(
            select(UnscheduledJob).where(
                UnscheduledJob.schedule_version_id == version.id, UnscheduledJob.job_id.in_(ids)
            )
        ):
            o = outlooks[left.job_id]
            o.reason, o.detail = left.reason, left.detail
    for job in jobs:
        o = outlooks[job.id]
        if job.status == "done":
            o.source = "done"
        o.waits_for = [
            refs.get(p, f"#{p}") for p in preds.get(job.id, []) if status_of.get(p) != "done"
        ]
    sla_start = target_start(case.received_at, level.target_start_hours)
    open_jobs = [o for o in outlooks.values() if o.status in ACTIVE_JOB_STATUSES]
    starts = [o.expected_start for o in open_jobs if o.expected_start is not None]
    ends = [o.expected_end for o in open_jobs if o.expected_end is not None]
    unknown = [o for o in open_jobs if o.expected_end is None]
    examined_from = min(starts) if starts else None
    finished_by = max(ends) if ends and not unknown else None
    why: list[str] = []
    for o in open_jobs:
        if o.reason is not None:
            why.append(
                f"{o.job}: {o.reason.replace('_', ' ')}" + (f" ({o.detail})" if o.detail else "")
            )
    if version is None:
        why.append("no schedule has been published for this lab yet")
    elif examined_from is not None and examined_from > sla_start:
        why.append(
            f"first work starts after the {level.code} target start "
            f"({level.target_start_hours} h after receipt): higher-priority or older work "
            "fills the capacity before it"
        )
    if case.status != "open":
        why.append(f"the case is {case.status.replace('_', ' ')}; its work is not planned")
    late = case.legal_deadline_at is not None and (
        finished_by is None or finished_by > case.legal_deadline_at
    )
    return {
        "case": case.external_ref,
        "status": case.status,
        "priority": level.code,
        "received_at": case.received_at,
        "target_start_at": sla_start,
        "legal_deadline_at": case.legal_deadline_at,
        "schedule_version": version.id if version is not None else None,
        "expected_examination_start": examined_from,
        "expected_finish": finished_by,
        "meets_target_start": None if examined_from is None else examined_from <= sla_start,
        "misses_legal_deadline": late if case.legal_deadline_at is not None else None,
        "jobs_open": len(open_jobs),
        "jobs_done": sum(1 for o in outlooks.values() if o.status == "done"),
        "why_not_sooner": why,
        "jobs": list(outlooks.values()),
        "stage_allowance_hours": STAGE_ALLOWANCE_HOURS,
    }
