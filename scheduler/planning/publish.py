"""Publishing a schedule version: the switch of the lab's current schedule, and the diff.

``publish`` makes a version the lab's one current schedule in the caller's transaction: the old
current version is switched off and the new one on in the same flush, and the partial unique index
``uq_schedule_version_current`` guarantees that two concurrent publishers cannot both win (the
loser gets a 409). The lab row is locked first on PostgreSQL so concurrent publishes of one lab
queue up instead of failing. The diff against the version it replaces is stored on the version;
jobs in the new schedule become ``scheduled``, jobs that dropped out of it ``pending`` again.
The lab's webhook events (scheduler/planning/events.py) are queued in the same transaction.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from models import (
    Assignment,
    Case,
    Device,
    Job,
    Lab,
    ScheduleVersion,
    SolveRun,
    UnscheduledJob,
)
from models.base import utcnow
from scheduler.core.plan import INFEASIBLE, PIN_CONFLICT
from scheduler.errors import Conflict
from scheduler.planning.events import announce_publication
from scheduler.services import audit
from scheduler.services.integrity import flush
from scheduler.services.labs import lock_lab


def _placement(a: Assignment) -> dict[str, Any]:
    return {
        "examiner_id": a.examiner_id,
        "workstation_id": a.workstation_id,
        "starts_at": a.starts_at.isoformat(),
        "ends_at": a.ends_at.isoformat(),
    }


def diff_assignments(
    old: Iterable[Assignment], new: Iterable[Assignment]
) -> dict[str, list[dict[str, Any]]]:
    """Moved (examiner, workstation or start changed), added and removed assignments by job."""
    before = {a.job_id: a for a in old}
    after = {a.job_id: a for a in new}
    moved, added, removed = [], [], []
    for job_id, a in sorted(after.items(), key=lambda kv: (kv[1].starts_at, kv[0])):
        b = before.get(job_id)
        if b is None:
            added.append({"job_id": job_id, "to": _placement(a)})
            continue
        changes = [
            name
            for name, x, y in (
                ("examiner", b.examiner_id, a.examiner_id),
                ("workstation", b.workstation_id, a.workstation_id),
                ("start", b.starts_at, a.starts_at),
            )
            if x != y
        ]
        if changes:
            moved.append(
                {"job_id": job_id, "changes": changes, "from": _placement(b), "to": _placement(a)}
            )
    for job_id, b in sorted(before.items(), key=lambda kv: (kv[1].starts_at, kv[0])):
        if job_id not in after:
            removed.append({"job_id": job_id, "from": _placement(b)})
    return {"moved": moved, "added": added, "removed": removed}


def diff(old: ScheduleVersion | None, new: ScheduleVersion) -> dict[str, Any]:
    """What changes going from ``old`` (``None``: nothing published) to ``new``."""
    changes = diff_assignments(old.assignments if old is not None else (), new.assignments)
    unchanged = len(new.assignments) - len(changes["moved"]) - len(changes["added"])
    return {
        "from_version": old.id if old is not None else None,
        "to_version": new.id,
        "counts": {
            "moved": len(changes["moved"]),
            "added": len(changes["added"]),
            "removed": len(changes["removed"]),
            "unchanged": unchanged,
        },
        **changes,
    }


def current_version(session: Session, lab: Lab) -> ScheduleVersion | None:
    return session.scalar(
        select(ScheduleVersion).where(
            ScheduleVersion.lab_id == lab.id, ScheduleVersion.is_current.is_(True)
        )
    )


#: Most pin conflicts a refusal or a stored warning names one by one.
NAMED_CONFLICTS = 5


def publish_blockers(session: Session, version: ScheduleVersion) -> list[str]:
    """Why ``version`` must not be published without ``force``: an infeasible status, and each
    pinned or frozen placement it could not keep (empty: it may be published as it is)."""
    conflicts = session.execute(
        select(Case.external_ref, Device.external_ref, Job.external_ref, UnscheduledJob.detail)
        .join(Job, Job.id == UnscheduledJob.job_id)
        .join(Device, Device.id == Job.device_id)
        .join(Case, Case.id == Device.case_id)
        .where(
            UnscheduledJob.schedule_version_id == version.id,
            UnscheduledJob.reason == PIN_CONFLICT,
        )
        .order_by(Job.id)
    ).all()
    out = []
    if version.status == INFEASIBLE or conflicts:
        count = len(conflicts)
        out.append(f"version {version.id} is {version.status} with {count} pin conflict(s)")
    out += [
        f"pin conflict: {case}/{device}/{job}: {detail}"
        for case, device, job, detail in conflicts[:NAMED_CONFLICTS]
    ]
    return out


def warn(version: ScheduleVersion, warning: str) -> None:
    """Put ``warning`` first among the version's warnings (what a supervisor reads first)."""
    kpis = dict(version.kpis or {})
    kpis["warnings"] = [warning, *kpis.get("warnings", [])]
    version.kpis = kpis


def publish(
    session: Session,
    version: ScheduleVersion,
    actor: str,
    *,
    now: datetime | None = None,
    force: bool = False,
) -> ScheduleVersion:
    """Make ``version`` the lab's published schedule (idempotent for the current version).

    A version that is infeasible or carries pin conflicts is published only with ``force``, and
    then its warnings say it was forced past them (examiners would otherwise see a schedule
    that silently drops a pin).
    """
    lab = session.get(Lab, version.lab_id)
    assert lab is not None
    run = session.get(SolveRun, version.solve_run_id) if version.solve_run_id else None
    if run is not None and run.mode == "preview":
        raise Conflict(f"version {version.id} is a preview and is never published")
    lock_lab(session, lab.code)
    session.refresh(version)
    if version.is_current:
        return version
    blockers = publish_blockers(session, version)
    if blockers and not force:
        named = f" ({'; '.join(blockers[1:])})" if len(blockers) > 1 else ""
        raise Conflict(f"{blockers[0]}{named}; publish with force=true to publish it anyway")
    if blockers:
        warn(version, f"published by {actor} with force despite: {blockers[0]}")
    current = current_version(session, lab)
    if current is not None and current.id > version.id:
        raise Conflict(
            f"version {version.id} is older than the published version {current.id}; "
            "queue a new run instead of publishing a stale plan",
            current=current.id,
        )
    before = audit.state_of(current) if current is not None else None
    version.diff = diff(current, version)
    session.execute(
        update(ScheduleVersion)
        .where(ScheduleVersion.lab_id == lab.id, ScheduleVersion.is_current.is_(True))
        .values(is_current=False)
    )
    in_new = select(Assignment.job_id).where(Assignment.schedule_version_id == version.id)
    left_out = select(UnscheduledJob.job_id).where(UnscheduledJob.schedule_version_id == version.id)
    session.execute(
        update(Job)
        .where(Job.id.in_(in_new), Job.status == "pending")
        .values(status="scheduled")
        .execution_options(synchronize_session=False)
    )
    session.execute(
        update(Job)
        .where(Job.id.in_(left_out), Job.status == "scheduled")
        .values(status="pending")
        .execution_options(synchronize_session=False)
    )
    if current is not None:
        old = select(Assignment.job_id).where(Assignment.schedule_version_id == current.id)
        session.execute(
            update(Job)
            .where(
                Job.lab_id == lab.id,
                Job.id.in_(old),
                Job.id.not_in(in_new),
                Job.status == "scheduled",
            )
            .values(status="pending")
            .execution_options(synchronize_session=False)
        )
        session.expire(current)
    # Published after the job updates, so "changed since publication" means changed later.
    version.is_current = True
    version.published_at = now or utcnow()
    flush(session)
    for obj in list(session.identity_map.values()):
        if isinstance(obj, Job):  # statuses were changed in bulk above
            session.expire(obj, ["status", "updated_at"])
    announce_publication(session, lab, current, version, version.published_at)
    audit.record(
        session,
        actor=actor,
        action="schedule.publish",
        entity_type="schedule_version",
        entity_id=version.id,
        lab_id=lab.id,
        before=before,
        after=audit.state_of(version),
    )
    return version
