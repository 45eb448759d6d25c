"""A version's assignments with the references a person reads, job and resource references, and
a stored diff made readable (docs/architecture.md §7.3).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import Any

from sqlalchemy import and_, bindparam, or_, select
from sqlalchemy.orm import Session

from models import (
    Assignment,
    Case,
    Device,
    Examiner,
    Job,
    Lab,
    PriorityLevel,
    ScheduleVersion,
    Workstation,
)


@dataclass(frozen=True)
class PlacedJob:
    """One assignment with the references a person reads."""

    job_id: int
    job: str  # case/device/job
    case: str
    case_id: int
    device: str
    stage: str
    priority: str
    examiner_id: int | None
    examiner: str | None
    examiner_name: str | None
    workstation_id: int | None
    workstation: str | None
    starts_at: datetime
    ends_at: datetime
    attended_minutes: int
    machine_minutes: int
    exposure_minutes: int
    severity: int


_PLACED_FILTERS: dict[str, Any] = {
    "examiner_id": Assignment.examiner_id == bindparam("examiner_id"),
    "workstation_id": Assignment.workstation_id == bindparam("workstation_id"),
    "case_id": Case.id == bindparam("case_id"),
    "starts_before": Assignment.starts_at < bindparam("starts_before"),
    "ends_after": Assignment.ends_at > bindparam("ends_after"),
    # keyset: after the row (after_start, after_job) in (starts_at, job_id) order
    "after": or_(
        Assignment.starts_at > bindparam("after_start"),
        and_(
            Assignment.starts_at == bindparam("after_start"),
            Assignment.job_id > bindparam("after_job"),
        ),
    ),
}


@cache
def _placed_query(filters: frozenset[str]):  # type: ignore[no-untyped-def]
    """The placed-jobs select with these filters, built once per combination.

    Plain columns, not the Assignment entity: no identity map or instance state per row, which
    was most of the cost of a schedule read.
    """
    query = (
        select(
            Assignment.job_id,
            Job.external_ref,
            Case.external_ref,
            Case.id,
            Device.external_ref,
            Job.stage,
            PriorityLevel.code,
            Assignment.examiner_id,
            Examiner.external_ref,
            Examiner.display_name,
            Assignment.workstation_id,
            Workstation.external_ref,
            Assignment.starts_at,
            Assignment.ends_at,
            Job.attended_minutes,
            Job.machine_minutes,
            Job.exposure_minutes,
            Job.severity,
        )
        .join(Job, Assignment.job_id == Job.id)
        .join(Device, Job.device_id == Device.id)
        .join(Case, Device.case_id == Case.id)
        .join(PriorityLevel, Case.priority_level_id == PriorityLevel.id)
        .outerjoin(Examiner, Assignment.examiner_id == Examiner.id)
        .outerjoin(Workstation, Assignment.workstation_id == Workstation.id)
        .where(
            Assignment.schedule_version_id == bindparam("version_id"),
            *(_PLACED_FILTERS[name] for name in sorted(filters - {"limit"})),
        )
        .order_by(Assignment.starts_at, Assignment.job_id)
    )
    return query.limit(bindparam("limit")) if "limit" in filters else query


def placed_jobs(
    session: Session,
    version: ScheduleVersion,
    *,
    examiner_id: int | None = None,
    workstation_id: int | None = None,
    case_id: int | None = None,
    starts_before: datetime | None = None,
    ends_after: datetime | None = None,
    after: tuple[datetime, int] | None = None,
    limit: int | None = None,
) -> list[PlacedJob]:
    """The version's assignments in (start, job id) order; ``after`` and ``limit`` page them."""
    params: dict[str, Any] = {
        name: value
        for name, value in (
            ("examiner_id", examiner_id),
            ("workstation_id", workstation_id),
            ("case_id", case_id),
            ("starts_before", starts_before),
            ("ends_after", ends_after),
            ("after", after),
            ("limit", limit),
        )
        if value is not None
    }
    query = _placed_query(frozenset(params))
    if after is not None:
        params["after_start"], params["after_job"] = params.pop("after")
    params["version_id"] = version.id
    # Rows come as (job id, job ref, then PlacedJob's fields from ``case`` on).
    return [
        PlacedJob(job_id, f"{rest[0]}/{rest[2]}/{job}", *rest)
        for job_id, job, *rest in session.execute(query, params)
    ]


def job_refs(session: Session, job_ids: Iterable[int]) -> dict[int, str]:
    """``case/device/job`` references of jobs."""
    ids = sorted(set(job_ids))
    out: dict[int, str] = {}
    for chunk in (ids[i : i + 5000] for i in range(0, len(ids), 5000)):
        for job_id, job, device, case in session.execute(
            select(Job.id, Job.external_ref, Device.external_ref, Case.external_ref)
            .join(Device, Job.device_id == Device.id)
            .join(Case, Device.case_id == Case.id)
            .where(Job.id.in_(chunk))
        ):
            out[job_id] = f"{case}/{device}/{job}"
    return out


def resource_refs(session: Session, lab: Lab) -> tuple[dict[int, str], dict[int, str]]:
    examiners: dict[int, str] = {
        row.id: row.external_ref
        for row in session.execute(
            select(Examiner.id, Examiner.external_ref).where(Examiner.lab_id == lab.id)
        )
    }
    workstations: dict[int, str] = {
        row.id: row.external_ref
        for row in session.execute(
            select(Workstation.id, Workstation.external_ref).where(Workstation.lab_id == lab.id)
        )
    }
    return examiners, workstations


def readable_diff(session: Session, lab: Lab, stored: dict[str, Any] | None) -> dict[str, Any]:
    """A stored diff with job, examiner and workstation references added."""
    if not stored:
        return {"from_version": None, "to_version": None, "counts": {}, "moved": []}
    examiners, workstations = resource_refs(session, lab)
    items = [*stored.get("moved", []), *stored.get("added", []), *stored.get("removed", [])]
    refs = job_refs(session, (item["job_id"] for item in items))

    def place(p: dict[str, Any] | None) -> dict[str, Any] | None:
        if p is None:
            return None
        return {
            "examiner": examiners.get(p["examiner_id"]) if p["examiner_id"] else None,
            "workstation": workstations.get(p["workstation_id"]) if p["workstation_id"] else None,
            "starts_at": p["starts_at"],
            "ends_at": p["ends_at"],
        }

    def item(entry: dict[str, Any]) -> dict[str, Any]:
        return {
            "job_id": entry["job_id"],
            "job": refs.get(entry["job_id"], f"#{entry['job_id']}"),
            "changes": entry.get("changes", []),
            "from": place(entry.get("from")),
            "to": place(entry.get("to")),
        }

    return {
        "from_version": stored.get("from_version"),
        "to_version": stored.get("to_version"),
        "counts": stored.get("counts", {}),
        "moved": [item(e) for e in stored.get("moved", [])],
        "added": [item(e) for e in stored.get("added", [])],
        "removed": [item(e) for e in stored.get("removed", [])],
    }


def case_job_ids(session: Session, case: Case) -> list[int]:
    return list(
        session.scalars(
            select(Job.id).join(Device, Job.device_id == Device.id).where(Device.case_id == case.id)
        )
    )
