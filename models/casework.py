"""Cases, their devices (exhibits) and the jobs (stages of work) on each device.

Data minimisation: only references, priorities and effort estimates are stored, never content,
images, victim or suspect identities. ``note`` fields are short and must be non-identifying.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from models.base import Base, CreatedAt, Timestamps, one_of

CASE_STATUSES = ("open", "on_hold", "closed")
TRIAGE_FLAG_KINDS = ("hash_match", "classifier", "linked_report", "manual")
DEVICE_KINDS = ("phone", "computer", "storage", "cloud_return", "other")
STAGES = ("unlock", "acquire", "process", "review", "report")
JOB_STATUSES = ("pending", "scheduled", "in_progress", "done", "on_hold", "cancelled")
NOTE_LENGTH = 200


class Case(Timestamps, Base):
    """An investigation, known to labq only by the case system's reference."""

    __tablename__ = "case"
    __table_args__ = (UniqueConstraint("lab_id", "external_ref"), one_of("status", CASE_STATUSES))

    id: Mapped[int] = mapped_column(primary_key=True)
    lab_id: Mapped[int] = mapped_column(ForeignKey("lab.id", ondelete="CASCADE"), index=True)
    external_ref: Mapped[str] = mapped_column(String(64))
    priority_level_id: Mapped[int] = mapped_column(ForeignKey("priority_level.id"), index=True)
    received_at: Mapped[datetime]
    legal_deadline_at: Mapped[datetime | None]
    status: Mapped[str] = mapped_column(String(16), default="open")
    note: Mapped[str | None] = mapped_column(String(NOTE_LENGTH))

    devices: Mapped[list[Device]] = relationship(
        back_populates="case", cascade="all, delete-orphan", order_by="Device.id"
    )
    flags: Mapped[list[TriageFlag]] = relationship(
        cascade="all, delete-orphan", order_by="TriageFlag.id"
    )


class CaseLink(CreatedAt, Base):
    """A link between two cases of one lab (same suspect, same report, shared hashes)."""

    __tablename__ = "case_link"
    __table_args__ = (CheckConstraint("case_id <> linked_case_id", name="not_self"),)

    case_id: Mapped[int] = mapped_column(
        ForeignKey("case.id", ondelete="CASCADE"), primary_key=True
    )
    linked_case_id: Mapped[int] = mapped_column(
        ForeignKey("case.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    reason: Mapped[str | None] = mapped_column(String(NOTE_LENGTH))


class TriageFlag(CreatedAt, Base):
    """A signal that may escalate a case: a hash-set hit, a classifier, a linked report."""

    __tablename__ = "triage_flag"
    __table_args__ = (one_of("kind", TRIAGE_FLAG_KINDS),)

    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("case.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(32))
    note: Mapped[str | None] = mapped_column(String(NOTE_LENGTH))


class Device(Timestamps, Base):
    """One exhibit of a case."""

    __tablename__ = "device"
    __table_args__ = (
        UniqueConstraint("case_id", "external_ref"),
        one_of("kind", DEVICE_KINDS),
        CheckConstraint("size_gb IS NULL OR size_gb >= 0", name="size_nonneg"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("case.id", ondelete="CASCADE"), index=True)
    external_ref: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(32))
    size_gb: Mapped[int | None]
    locked: Mapped[bool] = mapped_column(default=False)
    arrived_at: Mapped[datetime]

    case: Mapped[Case] = relationship(back_populates="devices")
    jobs: Mapped[list[Job]] = relationship(
        back_populates="device", cascade="all, delete-orphan", order_by="Job.id"
    )


class Job(Timestamps, Base):
    """One stage of work on one device.

    The attended part needs an examiner from the start; the machine part occupies a workstation
    from the start (processing runs unattended overnight). A pin fixes examiner, workstation and
    start; an in-progress job is treated as pinned.
    """

    __tablename__ = "job"
    __table_args__ = (
        UniqueConstraint("device_id", "external_ref"),
        one_of("stage", STAGES),
        one_of("status", JOB_STATUSES),
        CheckConstraint("attended_minutes >= 0 AND attended_minutes <= 100000", name="attended"),
        CheckConstraint("machine_minutes >= 0 AND machine_minutes <= 100000", name="machine"),
        CheckConstraint("exposure_minutes >= 0 AND exposure_minutes <= 100000", name="exposure"),
        CheckConstraint("severity BETWEEN 0 AND 3", name="severity_range"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    lab_id: Mapped[int] = mapped_column(ForeignKey("lab.id", ondelete="CASCADE"), index=True)
    device_id: Mapped[int] = mapped_column(ForeignKey("device.id", ondelete="CASCADE"), index=True)
    external_ref: Mapped[str] = mapped_column(String(64))
    stage: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16), default="pending", index=True)
    attended_minutes: Mapped[int] = mapped_column(default=0)
    machine_minutes: Mapped[int] = mapped_column(default=0)
    exposure_minutes: Mapped[int] = mapped_column(default=0)
    severity: Mapped[int] = mapped_column(default=0)
    pin_examiner_id: Mapped[int | None] = mapped_column(ForeignKey("examiner.id"))
    pin_workstation_id: Mapped[int | None] = mapped_column(ForeignKey("workstation.id"))
    pin_start_at: Mapped[datetime | None]
    # when ``:start`` and ``:done`` were reported: the loader plans work in progress from its real
    # start, and the simulation measures forecasts against it (docs/architecture.md, §7.9)
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]

    device: Mapped[Device] = relationship(back_populates="jobs")
    skills: Mapped[list[JobSkill]] = relationship(
        cascade="all, delete-orphan", order_by="JobSkill.skill"
    )
    capabilities: Mapped[list[JobCapability]] = relationship(
        cascade="all, delete-orphan", order_by="JobCapability.capability"
    )
    pools: Mapped[list[JobLicencePool]] = relationship(cascade="all, delete-orphan")
    predecessors: Mapped[list[JobPredecessor]] = relationship(
        cascade="all, delete-orphan", foreign_keys="JobPredecessor.job_id"
    )
    allowed_examiners: Mapped[list[JobAllowedExaminer]] = relationship(cascade="all, delete-orphan")
    workstation_minutes: Mapped[list[JobWorkstationMinutes]] = relationship(
        cascade="all, delete-orphan"
    )


class JobSkill(Base):
    __tablename__ = "job_skill"

    job_id: Mapped[int] = mapped_column(ForeignKey("job.id", ondelete="CASCADE"), primary_key=True)
    skill: Mapped[str] = mapped_column(String(64), primary_key=True)


class JobCapability(Base):
    __tablename__ = "job_capability"

    job_id: Mapped[int] = mapped_column(ForeignKey("job.id", ondelete="CASCADE"), primary_key=True)
    capability: Mapped[str] = mapped_column(String(64), primary_key=True)


class JobLicencePool(Base):
    __tablename__ = "job_licence_pool"

    job_id: Mapped[int] = mapped_column(ForeignKey("job.id", ondelete="CASCADE"), primary_key=True)
    pool_id: Mapped[int] = mapped_column(
        ForeignKey("licence_pool.id", ondelete="CASCADE"), primary_key=True, index=True
    )


class JobPredecessor(Base):
    """``predecessor_id`` must finish before ``job_id`` starts."""

    __tablename__ = "job_predecessor"
    __table_args__ = (CheckConstraint("job_id <> predecessor_id", name="not_self"),)

    job_id: Mapped[int] = mapped_column(ForeignKey("job.id", ondelete="CASCADE"), primary_key=True)
    predecessor_id: Mapped[int] = mapped_column(
        ForeignKey("job.id", ondelete="CASCADE"), primary_key=True, index=True
    )


class JobAllowedExaminer(Base):
    """An allow-list entry: when a job has any, only these examiners may take it."""

    __tablename__ = "job_allowed_examiner"

    job_id: Mapped[int] = mapped_column(ForeignKey("job.id", ondelete="CASCADE"), primary_key=True)
    examiner_id: Mapped[int] = mapped_column(
        ForeignKey("examiner.id", ondelete="CASCADE"), primary_key=True, index=True
    )


class JobWorkstationMinutes(Base):
    """Machine minutes on a specific workstation; when a job has any, only these may run it."""

    __tablename__ = "job_workstation_minutes"
    __table_args__ = (CheckConstraint("machine_minutes >= 0", name="minutes_nonneg"),)

    job_id: Mapped[int] = mapped_column(ForeignKey("job.id", ondelete="CASCADE"), primary_key=True)
    workstation_id: Mapped[int] = mapped_column(
        ForeignKey("workstation.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    machine_minutes: Mapped[int]
