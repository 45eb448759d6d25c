"""Cases, devices and jobs: the work the lab has to do. Upserts are keyed by external reference so
a case-management system can push the same payload twice without duplicating anything."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from models import (
    Case,
    CaseLink,
    Device,
    Examiner,
    Job,
    Lab,
    PriorityLevel,
    TriageFlag,
    Workstation,
)
from models.base import utcnow
from scheduler.errors import Conflict, Invalid, NotFound
from scheduler.services import audit, escalation, events, job_store, vocabulary
from scheduler.services.integrity import flush
from scheduler.services.labs import get_level
from scheduler.services.listing import Listing, by_id
from scheduler.services.resources import get_examiner, get_pool, get_workstation

JOB_EFFORT = ("stage", "attended_minutes", "machine_minutes", "exposure_minutes", "severity")


def get_case(session: Session, lab: Lab, external_ref: str) -> Case:
    case = find_case(session, lab, external_ref)
    if case is None:
        raise NotFound(f"case {external_ref!r} does not exist in lab {lab.code!r}")
    return case


def find_case(session: Session, lab: Lab, external_ref: str) -> Case | None:
    return session.scalar(
        select(Case).where(Case.lab_id == lab.id, Case.external_ref == external_ref)
    )


def level_of(session: Session, case: Case) -> PriorityLevel | None:
    """The case's priority level."""
    return session.get(PriorityLevel, case.priority_level_id)


def case_summaries(
    session: Session,
    lab: Lab,
    *,
    status: str | None = None,
    priority: str | None = None,
    after_id: int | None = None,
    limit: int,
) -> list[tuple[Case, str]]:
    """Up to ``limit`` of the lab's cases after ``after_id`` in id order, each with its level's
    code, of one status or priority level when given."""
    stmt = (
        select(Case, PriorityLevel.code)
        .join(PriorityLevel, Case.priority_level_id == PriorityLevel.id)
        .where(Case.lab_id == lab.id)
    )
    if status is not None:
        stmt = stmt.where(Case.status == status)
    if priority is not None:
        stmt = stmt.where(PriorityLevel.code == priority)
    if after_id is not None:
        stmt = stmt.where(Case.id > after_id)
    return [(c, code) for c, code in session.execute(stmt.order_by(Case.id).limit(limit))]


def open_cases(lab: Lab) -> Listing:
    """The lab's open cases, in id order."""
    return by_id(select(Case).where(Case.lab_id == lab.id, Case.status == "open"))


def device_refs(session: Session, case: Case) -> list[str]:
    """The references of the case's devices, in id order."""
    return list(
        session.scalars(
            select(Device.external_ref).where(Device.case_id == case.id).order_by(Device.id)
        )
    )


def flags_of(session: Session, case: Case) -> list[TriageFlag]:
    """The case's triage flags, oldest first."""
    return list(
        session.scalars(
            select(TriageFlag).where(TriageFlag.case_id == case.id).order_by(TriageFlag.id)
        )
    )


def links_of(session: Session, case: Case) -> list[tuple[CaseLink, str]]:
    """The case's links, each with the other case's reference."""
    links = session.scalars(
        select(CaseLink)
        .where(or_(CaseLink.case_id == case.id, CaseLink.linked_case_id == case.id))
        .order_by(CaseLink.case_id, CaseLink.linked_case_id)
    ).all()
    other_ids = {ln.linked_case_id if ln.case_id == case.id else ln.case_id for ln in links}
    refs = dict(
        session.execute(select(Case.id, Case.external_ref).where(Case.id.in_(other_ids))).all()
    )
    return [(ln, refs[ln.linked_case_id if ln.case_id == case.id else ln.case_id]) for ln in links]


def upsert_case(
    session: Session,
    lab: Lab,
    *,
    actor: str,
    external_ref: str,
    priority: str,
    received_at: datetime,
    legal_deadline_at: datetime | None = None,
    status: str = "open",
    note: str | None = None,
) -> Case:
    level = get_level(session, lab, priority)
    case = find_case(session, lab, external_ref)
    before = audit.state_of(case) if case is not None else None
    if case is None:
        case = Case(lab_id=lab.id, external_ref=external_ref)
        session.add(case)
    case.priority_level_id = level.id
    case.received_at, case.legal_deadline_at = received_at, legal_deadline_at
    case.status, case.note = status, note
    flush(session)
    audit.record_if_changed(
        session, case, actor=actor, action="case.upsert", lab_id=lab.id, before=before
    )
    return case


def upsert_device(
    session: Session,
    case: Case,
    *,
    actor: str,
    external_ref: str,
    kind: str,
    arrived_at: datetime,
    size_gb: int | None = None,
    locked: bool = False,
) -> Device:
    device = session.scalar(
        select(Device).where(Device.case_id == case.id, Device.external_ref == external_ref)
    )
    before = audit.state_of(device) if device is not None else None
    if device is None:
        device = Device(case_id=case.id, external_ref=external_ref)
        session.add(device)
    device.kind, device.arrived_at, device.size_gb, device.locked = (
        kind,
        arrived_at,
        size_gb,
        locked,
    )
    flush(session)
    audit.record_if_changed(
        session, device, actor=actor, action="device.upsert", lab_id=case.lab_id, before=before
    )
    return device


def _reachable(session: Session, start: Iterable[int], target: int) -> bool:
    """Whether ``target`` is among the transitive predecessors of the jobs in ``start``."""
    seen: set[int] = set()
    frontier = list(start)
    while frontier:
        job_id = frontier.pop()
        if job_id == target:
            return True
        if job_id in seen:
            continue
        seen.add(job_id)
        frontier.extend(job_store.predecessor_ids(session, job_id))
    return False


def upsert_job(
    session: Session,
    device: Device,
    *,
    actor: str,
    external_ref: str,
    stage: str,
    attended_minutes: int = 0,
    machine_minutes: int = 0,
    exposure_minutes: int = 0,
    severity: int = 0,
    skills: Iterable[str] = (),
    capabilities: Iterable[str] = (),
    pools: Iterable[str] = (),
    after: Sequence[Job] = (),
    allowed_examiners: Iterable[str] = (),
    workstation_minutes: Mapping[str, int] | None = None,
) -> Job:
    """Create or update one job; ``after`` are the jobs that must finish before it starts."""
    lab = session.get(Lab, device.case.lab_id)
    assert lab is not None
    skills, capabilities = list(skills), list(capabilities)
    vocabulary.require_known(
        session,
        lab,
        [
            vocabulary.Use("stage", "stage", stage),
            *vocabulary.uses_of("skills", "skill", skills),
            *vocabulary.uses_of("capabilities", "capability", capabilities),
        ],
    )
    job = session.scalar(
        select(Job).where(Job.device_id == device.id, Job.external_ref == external_ref)
    )
    before = audit.state_of(job) if job is not None else None
    if job is None:
        job = Job(lab_id=lab.id, device_id=device.id, external_ref=external_ref)
        session.add(job)
    job.stage, job.attended_minutes, job.machine_minutes = stage, attended_minutes, machine_minutes
    job.exposure_minutes, job.severity = exposure_minutes, severity
    sets = job_store.Sets(
        skills=skills,
        capabilities=capabilities,
        pool_ids=[get_pool(session, lab, p).id for p in sorted(set(pools))],
        examiner_ids=[get_examiner(session, lab, e).id for e in sorted(set(allowed_examiners))],
        workstation_minutes={
            get_workstation(session, lab, ws).id: minutes
            for ws, minutes in sorted((workstation_minutes or {}).items())
        },
        predecessor_ids=[p.id for p in after],
    )
    flush(session)
    for predecessor in after:
        if predecessor.lab_id != lab.id:
            raise Invalid(f"job {external_ref!r} cannot wait for a job of another lab")
    predecessor_ids = sorted(set(sets.predecessor_ids))
    if job.id in predecessor_ids or _reachable(session, predecessor_ids, job.id):
        raise Invalid(f"job {external_ref!r}: predecessors would form a cycle", field="after")
    job_store.replace(job, sets)
    flush(session)
    audit.record_if_changed(
        session, job, actor=actor, action="job.upsert", lab_id=lab.id, before=before
    )
    return job


def link_cases(
    session: Session, case: Case, other: Case, *, actor: str, reason: str | None = None
) -> CaseLink:
    if case.lab_id != other.lab_id:
        raise Invalid("cases of different labs cannot be linked")
    if case.id == other.id:
        raise Invalid("a case cannot be linked to itself")
    a, b = sorted((case.id, other.id))
    if session.get(CaseLink, (a, b)) is not None:
        raise Conflict(f"cases {case.external_ref!r} and {other.external_ref!r} are already linked")
    link = CaseLink(case_id=a, linked_case_id=b, reason=reason)
    session.add(link)
    flush(session)
    # A link to a more urgent case raises the less urgent one to its level.
    lower, level = escalation.escalation_for_link(session, case, other)
    if level.id != lower.priority_level_id:
        lab = session.get(Lab, case.lab_id)
        assert lab is not None
        _raise_level(session, lab, lower, level, actor=actor, reason="linked to a case")
    audit.record(
        session,
        actor=actor,
        action="case.link",
        entity_type="case_link",
        entity_id=f"{a}-{b}",
        lab_id=case.lab_id,
        after=audit.state_of(link),
    )
    return link


def add_flag(
    session: Session, case: Case, *, actor: str, kind: str, note: str | None = None
) -> TriageFlag:
    """Record a triage signal; an escalating kind raises the case one level (see
    `scheduler.services.escalation.level_after_flag` for the policy)."""
    level = escalation.level_after_flag(session, case, kind)
    flag = TriageFlag(case_id=case.id, kind=kind, note=note)
    session.add(flag)
    flush(session)
    if level is not None:
        lab = session.get(Lab, case.lab_id)
        assert lab is not None
        _raise_level(session, lab, case, level, actor=actor, reason=f"triage flag {kind}")
    audit.record(
        session,
        actor=actor,
        action="case.flag",
        entity_type="triage_flag",
        entity_id=flag.id,
        lab_id=case.lab_id,
        after=audit.state_of(flag),
    )
    return flag


def pin_job(
    session: Session,
    job: Job,
    *,
    actor: str,
    start: datetime,
    examiner: Examiner | None,
    workstation: Workstation | None,
) -> Job:
    """Fix a job's examiner, workstation and start: the solver keeps it exactly."""
    for resource, what in ((examiner, "examiner"), (workstation, "workstation")):
        if resource is not None and resource.lab_id != job.lab_id:
            raise Invalid(f"the {what} belongs to another lab")
    if job.status in ("done", "cancelled"):
        raise Conflict(f"job {job.external_ref!r} is {job.status} and cannot be pinned")
    before = audit.state_of(job)
    job.pin_examiner_id = examiner.id if examiner else None
    job.pin_workstation_id = workstation.id if workstation else None
    job.pin_start_at = start
    flush(session)
    now = utcnow()
    if start >= now:  # a pin in the past records work begun: the loader keeps what remains
        lab = session.get(Lab, job.lab_id)
        assert lab is not None
        # refused now rather than dropped by every solve as a pin conflict (caller rolls back)
        events.announce(session, events.PinPlaced(lab, job, now))
    audit.record(
        session,
        actor=actor,
        action="job.pin",
        entity_type="job",
        entity_id=job.id,
        lab_id=job.lab_id,
        before=before,
        after=audit.state_of(job),
    )
    return job


_TRANSITIONS: dict[str, tuple[str, ...]] = {
    "pending": ("scheduled", "in_progress", "on_hold", "cancelled", "done"),
    "scheduled": ("pending", "in_progress", "on_hold", "cancelled", "done"),
    "in_progress": ("done", "on_hold", "cancelled"),
    "on_hold": ("pending", "cancelled"),
    "done": (),
    "cancelled": (),
}


def set_job_status(session: Session, job: Job, *, actor: str, status: str) -> Job:
    """Move a job through its life cycle; impossible moves are conflicts, not silent no-ops."""
    if status not in _TRANSITIONS:
        raise Invalid(f"unknown job status {status!r}")
    if status != job.status and status not in _TRANSITIONS[job.status]:
        raise Conflict(f"job {job.external_ref!r} cannot go from {job.status} to {status}")
    before = audit.state_of(job)
    if status != job.status:
        if status == "in_progress":
            job.started_at = utcnow()
        elif status == "done":
            job.finished_at = utcnow()
    job.status = status
    flush(session)
    audit.record(
        session,
        actor=actor,
        action=f"job.{status}",
        entity_type="job",
        entity_id=job.id,
        lab_id=job.lab_id,
        before=before,
        after=audit.state_of(job),
    )
    return job


def escalate_case(
    session: Session,
    lab: Lab,
    case: Case,
    level_code: str,
    actor: str,
    reason: str | None = None,
) -> Case:
    """Raise a case's priority level (a new link, a triage flag, a manual decision).

    Escalation only raises: a level that is not more urgent is a conflict. ``reason`` is a short,
    non-identifying note for whoever acts on the escalation (e.g. a repair run); it is not stored
    here.
    """
    level = get_level(session, lab, level_code)
    current = session.get(PriorityLevel, case.priority_level_id)
    if current is not None and level.rank >= current.rank:
        raise Conflict(
            f"case {case.external_ref!r} is {current.code}; escalating must raise the level "
            f"and {level.code} is not more urgent",
            field="priority",
        )
    _raise_level(session, lab, case, level, actor=actor, reason=reason)
    return case


def escalate_if_more_urgent(
    session: Session, lab: Lab, case: Case, level_code: str, actor: str
) -> None:
    """Escalate ``case`` to ``level_code`` when that is more urgent than its level (a whole-case
    replacement that raises the priority is an escalation, recorded as one)."""
    stored = level_of(session, case)
    wanted = get_level(session, lab, level_code)
    if stored is not None and wanted.rank < stored.rank:
        escalate_case(session, lab, case, level_code, actor)


def _raise_level(
    session: Session,
    lab: Lab,
    case: Case,
    level: PriorityLevel,
    *,
    actor: str,
    reason: str | None = None,
) -> None:
    """Move ``case`` to the more urgent ``level`` and queue the repair run that follows.

    Due times follow from the level when the next run loads the lab (see `scheduler.continuous`).
    The repair run is queued (and audited) before the escalation's own event is written, so the
    escalation is the newest event of the change.
    """
    before = audit.state_of(case)
    case.priority_level_id = level.id
    flush(session)
    events.announce(session, events.CaseEscalated(lab, case, level, actor, reason))
    audit.record(
        session,
        actor=actor,
        action="case.escalate",
        entity_type="case",
        entity_id=case.id,
        lab_id=lab.id,
        before=before,
        after=audit.state_of(case),
    )


def unpin_job(session: Session, job: Job, *, actor: str) -> Job:
    """Release a pin so the solver may move the job again; unpinning twice changes nothing."""
    if job.pin_start_at is None and job.pin_examiner_id is None and job.pin_workstation_id is None:
        return job
    before = audit.state_of(job)
    job.pin_examiner_id = job.pin_workstation_id = None
    job.pin_start_at = None
    flush(session)
    audit.record(
        session,
        actor=actor,
        action="job.unpin",
        entity_type="job",
        entity_id=job.id,
        lab_id=job.lab_id,
        before=before,
        after=audit.state_of(job),
    )
    return job


def get_job(session: Session, lab: Lab, job_id: int) -> Job:
    job = session.get(Job, job_id)
    if job is None or job.lab_id != lab.id:
        raise NotFound(f"job {job_id} does not exist in lab {lab.code!r}")
    return job


def find_device(session: Session, case: Case, external_ref: str) -> Device | None:
    return session.scalar(
        select(Device).where(Device.case_id == case.id, Device.external_ref == external_ref)
    )


def get_device(session: Session, case: Case, external_ref: str) -> Device:
    device = find_device(session, case, external_ref)
    if device is None:
        raise NotFound(f"device {external_ref!r} does not exist in case {case.external_ref!r}")
    return device


def devices_of(case: Case) -> Listing:
    """The case's devices, in id order."""
    return by_id(select(Device).where(Device.case_id == case.id))


def jobs_on(session: Session, device: Device) -> list[Job]:
    """The device's jobs, in id order."""
    return list(session.scalars(select(Job).where(Job.device_id == device.id).order_by(Job.id)))


def jobs_of(lab: Lab, *, status: str | None = None, case_ref: str | None = None) -> Listing:
    """The lab's jobs in id order, of one status or one case when given."""
    stmt = select(Job).where(Job.lab_id == lab.id)
    if status is not None:
        stmt = stmt.where(Job.status == status)
    if case_ref is not None:
        stmt = (
            stmt.join(Device, Job.device_id == Device.id)
            .join(Case, Device.case_id == Case.id)
            .where(Case.external_ref == case_ref)
        )
    return by_id(stmt)


def find_job(session: Session, case: Case, device_ref: str, job_ref: str) -> Job | None:
    return session.scalar(
        select(Job)
        .join(Device, Job.device_id == Device.id)
        .where(
            Device.case_id == case.id,
            Device.external_ref == device_ref,
            Job.external_ref == job_ref,
        )
    )


def job_at(session: Session, lab: Lab, case_ref: str, device_ref: str, job_ref: str) -> Job:
    """The job at its natural address; the error names the first part that does not exist."""
    case = get_case(session, lab, case_ref)
    get_device(session, case, device_ref)
    job = find_job(session, case, device_ref, job_ref)
    if job is None:
        raise NotFound(
            f"job {job_ref!r} does not exist on device {device_ref!r} of case {case_ref!r}"
        )
    return job


def resolve_predecessors(
    session: Session, case: Case, device_ref: str, refs: Sequence[str]
) -> list[Job]:
    """Jobs named ``"D1/acquire"`` (device/job, within the case) or ``"acquire"`` (same device)."""
    jobs = []
    for index, ref in enumerate(refs):
        dev, _, name = ref.rpartition("/")
        job = find_job(session, case, dev or device_ref, name)
        if job is None:
            raise Invalid(
                f"predecessor {ref!r} is not a job of case {case.external_ref!r}",
                field=f"after[{index}]",
            )
        jobs.append(job)
    return jobs


def unlink_cases(session: Session, case: Case, other: Case, *, actor: str) -> None:
    a, b = sorted((case.id, other.id))
    link = session.get(CaseLink, (a, b))
    if link is None:
        raise NotFound(f"cases {case.external_ref!r} and {other.external_ref!r} are not linked")
    before = audit.state_of(link)
    session.delete(link)
    flush(session)
    audit.record(
        session,
        actor=actor,
        action="case.unlink",
        entity_type="case_link",
        entity_id=f"{a}-{b}",
        lab_id=case.lab_id,
        before=before,
    )


def delete_case(session: Session, case: Case, *, actor: str) -> None:
    """Delete a case entered in error. Work that has started is history: close the case instead."""
    started = session.scalar(
        select(Job.external_ref)
        .join(Device, Job.device_id == Device.id)
        .where(Device.case_id == case.id, Job.status.in_(("in_progress", "done")))
        .limit(1)
    )
    if started is not None:
        raise Conflict(
            f"case {case.external_ref!r} has started work ({started!r}); set its status to "
            "closed instead of deleting it"
        )
    before = audit.state_of(case)
    case_id, lab_id = case.id, case.lab_id
    session.delete(case)
    flush(session)
    audit.record(
        session,
        actor=actor,
        action="case.delete",
        entity_type="case",
        entity_id=case_id,
        lab_id=lab_id,
        before=before,
    )
