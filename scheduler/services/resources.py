"""Examiners (skills, shifts, absences, exposure), workstations and licence pools."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime, time
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from models import (
    Absence,
    Examiner,
    ExaminerSkill,
    ExposureLog,
    Lab,
    LicencePool,
    MaintenanceWindow,
    Shift,
    Workstation,
    WorkstationCapability,
)
from scheduler.errors import Invalid, NotFound
from scheduler.services import audit, events, vocabulary
from scheduler.services.integrity import flush
from scheduler.services.listing import Listing, by_id

EXPOSURE_POLICY = (
    "daily_cap_minutes",
    "severe_daily_cap_minutes",
    "weekly_cap_minutes",
    "exposure_cutoff",
    "max_severity",
)
EXAMINER_FIELDS = ("display_name", "active", *EXPOSURE_POLICY)


def _labels(values: Iterable[str], what: str) -> list[str]:
    labels = sorted({v.strip() for v in values})
    if any(not v for v in labels):
        raise Invalid(f"{what} must not be blank")
    return labels


def active_examiners(session: Session, lab: Lab) -> list[Examiner]:
    """The lab's active examiners, by reference (the lanes of every board and form)."""
    return list(
        session.scalars(
            select(Examiner)
            .where(Examiner.lab_id == lab.id, Examiner.active.is_(True))
            .order_by(Examiner.external_ref)
        )
    )


def active_workstations(session: Session, lab: Lab) -> list[Workstation]:
    """The lab's active workstations, by reference."""
    return list(
        session.scalars(
            select(Workstation)
            .where(Workstation.lab_id == lab.id, Workstation.active.is_(True))
            .order_by(Workstation.external_ref)
        )
    )


def examiners_of(lab: Lab) -> Listing:
    """The lab's examiners with their skills and shifts, in id order."""
    return by_id(
        select(Examiner)
        .where(Examiner.lab_id == lab.id)
        .options(selectinload(Examiner.skills), selectinload(Examiner.shifts))
    )


def workstations_of(lab: Lab) -> Listing:
    """The lab's workstations with their capabilities, in id order."""
    return by_id(
        select(Workstation)
        .where(Workstation.lab_id == lab.id)
        .options(selectinload(Workstation.capabilities))
    )


def pools_of(lab: Lab) -> Listing:
    """The lab's licence pools, in id order."""
    return by_id(select(LicencePool).where(LicencePool.lab_id == lab.id))


def absences_of(examiner: Examiner) -> Listing:
    """The examiner's absences, in id order."""
    return by_id(select(Absence).where(Absence.examiner_id == examiner.id))


def exposure_logs_of(examiner: Examiner) -> Listing:
    """The exposure the examiner has logged, in id order."""
    return by_id(select(ExposureLog).where(ExposureLog.examiner_id == examiner.id))


def maintenance_of(workstation: Workstation) -> Listing:
    """The workstation's maintenance windows, in id order."""
    return by_id(
        select(MaintenanceWindow).where(MaintenanceWindow.workstation_id == workstation.id)
    )


def find_examiner(session: Session, lab: Lab, external_ref: str) -> Examiner | None:
    return session.scalar(
        select(Examiner).where(Examiner.lab_id == lab.id, Examiner.external_ref == external_ref)
    )


def find_workstation(session: Session, lab: Lab, external_ref: str) -> Workstation | None:
    return session.scalar(
        select(Workstation).where(
            Workstation.lab_id == lab.id, Workstation.external_ref == external_ref
        )
    )


def get_examiner(session: Session, lab: Lab, external_ref: str) -> Examiner:
    examiner = find_examiner(session, lab, external_ref)
    if examiner is None:
        raise NotFound(f"examiner {external_ref!r} does not exist in lab {lab.code!r}")
    return examiner


def upsert_examiner(
    session: Session,
    lab: Lab,
    *,
    actor: str,
    external_ref: str,
    skills: Iterable[str] | None = None,
    shifts: Iterable[tuple[int, time, time]] | None = None,
    **fields: Any,
) -> Examiner:
    """Create or update an examiner by reference; ``shifts`` replaces the weekly pattern."""
    unknown = set(fields) - set(EXAMINER_FIELDS)
    if unknown:
        raise Invalid(f"unknown examiner fields: {', '.join(sorted(unknown))}")
    if skills is not None:
        skills = [s.strip() for s in skills]
        vocabulary.require_known(session, lab, vocabulary.uses_of("skills", "skill", skills))
    examiner = session.scalar(
        select(Examiner).where(Examiner.lab_id == lab.id, Examiner.external_ref == external_ref)
    )
    before = audit.state_of(examiner) if examiner is not None else None
    if examiner is None:
        examiner = Examiner(lab_id=lab.id, external_ref=external_ref)
        fields.setdefault("display_name", external_ref)
        session.add(examiner)
    for key, value in fields.items():
        setattr(examiner, key, value)
    if skills is not None:
        examiner.skills = [ExaminerSkill(skill=s) for s in _labels(skills, "skill")]
    if shifts is not None:
        blocks = sorted(shifts)
        for (day_a, _, end_a), (day_b, start_b, _) in zip(blocks, blocks[1:], strict=False):
            if day_a == day_b and start_b < end_a:
                raise Invalid(f"shifts overlap on weekday {day_a}", field="shifts")
        examiner.shifts = [Shift(weekday=d, starts=s, ends=e) for d, s, e in blocks]
    flush(session)
    audit.record(
        session,
        actor=actor,
        action="examiner.upsert",
        entity_type="examiner",
        entity_id=examiner.id,
        lab_id=lab.id,
        before=before,
        after=audit.state_of(examiner),
    )
    return examiner


def add_absence(
    session: Session,
    examiner: Examiner,
    *,
    actor: str,
    kind: str,
    starts_at: datetime,
    ends_at: datetime,
) -> Absence:
    """Record an absence; one that reaches into the frozen horizon queues a repair run."""
    absence = Absence(examiner_id=examiner.id, kind=kind, starts_at=starts_at, ends_at=ends_at)
    session.add(absence)
    flush(session)
    events.announce(session, events.AbsenceRecorded(examiner, absence, actor))
    audit.record(
        session,
        actor=actor,
        action="absence.create",
        entity_type="absence",
        entity_id=absence.id,
        lab_id=examiner.lab_id,
        after=audit.state_of(absence),
    )
    return absence


def log_exposure(
    session: Session, examiner: Examiner, *, actor: str, day: date, minutes: int, severity: int
) -> ExposureLog:
    entry = ExposureLog(examiner_id=examiner.id, day=day, minutes=minutes, severity=severity)
    session.add(entry)
    flush(session)
    audit.record(
        session,
        actor=actor,
        action="exposure_log.create",
        entity_type="exposure_log",
        entity_id=entry.id,
        lab_id=examiner.lab_id,
        after=audit.state_of(entry),
    )
    return entry


def get_workstation(session: Session, lab: Lab, external_ref: str) -> Workstation:
    workstation = find_workstation(session, lab, external_ref)
    if workstation is None:
        raise NotFound(f"workstation {external_ref!r} does not exist in lab {lab.code!r}")
    return workstation


def upsert_workstation(
    session: Session,
    lab: Lab,
    *,
    actor: str,
    external_ref: str,
    capabilities: Iterable[str] | None = None,
    **fields: Any,
) -> Workstation:
    unknown = set(fields) - {"name", "capacity", "active"}
    if unknown:
        raise Invalid(f"unknown workstation fields: {', '.join(sorted(unknown))}")
    if capabilities is not None:
        capabilities = [c.strip() for c in capabilities]
        vocabulary.require_known(
            session, lab, vocabulary.uses_of("capabilities", "capability", capabilities)
        )
    workstation = session.scalar(
        select(Workstation).where(
            Workstation.lab_id == lab.id, Workstation.external_ref == external_ref
        )
    )
    before = audit.state_of(workstation) if workstation is not None else None
    if workstation is None:
        workstation = Workstation(lab_id=lab.id, external_ref=external_ref)
        fields.setdefault("name", external_ref)
        session.add(workstation)
    for key, value in fields.items():
        setattr(workstation, key, value)
    if capabilities is not None:
        workstation.capabilities = [
            WorkstationCapability(capability=c) for c in _labels(capabilities, "capability")
        ]
    flush(session)
    audit.record(
        session,
        actor=actor,
        action="workstation.upsert",
        entity_type="workstation",
        entity_id=workstation.id,
        lab_id=lab.id,
        before=before,
        after=audit.state_of(workstation),
    )
    return workstation


def add_maintenance(
    session: Session,
    workstation: Workstation,
    *,
    actor: str,
    starts_at: datetime,
    ends_at: datetime,
) -> MaintenanceWindow:
    window = MaintenanceWindow(workstation_id=workstation.id, starts_at=starts_at, ends_at=ends_at)
    session.add(window)
    flush(session)
    audit.record(
        session,
        actor=actor,
        action="maintenance.create",
        entity_type="maintenance_window",
        entity_id=window.id,
        lab_id=workstation.lab_id,
        after=audit.state_of(window),
    )
    return window


def get_pool(session: Session, lab: Lab, name: str) -> LicencePool:
    pool = session.scalar(
        select(LicencePool).where(LicencePool.lab_id == lab.id, LicencePool.name == name)
    )
    if pool is None:
        raise NotFound(f"licence pool {name!r} does not exist in lab {lab.code!r}")
    return pool


def upsert_pool(session: Session, lab: Lab, *, actor: str, name: str, capacity: int) -> LicencePool:
    pool = session.scalar(
        select(LicencePool).where(LicencePool.lab_id == lab.id, LicencePool.name == name)
    )
    before = audit.state_of(pool) if pool is not None else None
    if pool is None:
        pool = LicencePool(lab_id=lab.id, name=name, capacity=capacity)
        session.add(pool)
    pool.capacity = capacity
    flush(session)
    audit.record(
        session,
        actor=actor,
        action="licence_pool.upsert",
        entity_type="licence_pool",
        entity_id=pool.id,
        lab_id=lab.id,
        before=before,
        after=audit.state_of(pool),
    )
    return pool


def remove_absence(session: Session, examiner: Examiner, *, actor: str, absence_id: int) -> None:
    absence = session.get(Absence, absence_id)
    if absence is None or absence.examiner_id != examiner.id:
        raise NotFound(f"absence {absence_id} of examiner {examiner.external_ref!r} does not exist")
    before = audit.state_of(absence)
    session.delete(absence)
    flush(session)
    audit.record(
        session,
        actor=actor,
        action="absence.delete",
        entity_type="absence",
        entity_id=absence_id,
        lab_id=examiner.lab_id,
        before=before,
    )


def remove_maintenance(
    session: Session, workstation: Workstation, *, actor: str, window_id: int
) -> None:
    window = session.get(MaintenanceWindow, window_id)
    if window is None or window.workstation_id != workstation.id:
        raise NotFound(
            f"maintenance window {window_id} of workstation {workstation.external_ref!r} "
            "does not exist"
        )
    before = audit.state_of(window)
    session.delete(window)
    flush(session)
    audit.record(
        session,
        actor=actor,
        action="maintenance.delete",
        entity_type="maintenance_window",
        entity_id=window_id,
        lab_id=workstation.lab_id,
        before=before,
    )
