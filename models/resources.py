"""The lab's capacity: examiners, workstations and licence pools, with their calendars."""

from __future__ import annotations

from datetime import date, datetime, time

from sqlalchemy import CheckConstraint, ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from models.base import Base, CreatedAt, Timestamps, one_of

ABSENCE_KINDS = ("leave", "training", "counselling", "sick", "court", "other")


class Examiner(Timestamps, Base):
    """A person who examines devices, with the exposure policy that protects them.

    A cap of NULL means no cap. ``max_severity`` below 3 records an opt-out of the most severe
    material.
    """

    __tablename__ = "examiner"
    __table_args__ = (
        UniqueConstraint("lab_id", "external_ref"),
        CheckConstraint("daily_cap_minutes IS NULL OR daily_cap_minutes >= 0", name="daily_cap"),
        CheckConstraint(
            "severe_daily_cap_minutes IS NULL OR severe_daily_cap_minutes >= 0", name="severe_cap"
        ),
        CheckConstraint("weekly_cap_minutes IS NULL OR weekly_cap_minutes >= 0", name="weekly_cap"),
        CheckConstraint("max_severity BETWEEN 0 AND 3", name="max_severity_range"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    lab_id: Mapped[int] = mapped_column(ForeignKey("lab.id", ondelete="CASCADE"), index=True)
    external_ref: Mapped[str] = mapped_column(String(64))
    display_name: Mapped[str] = mapped_column(String(200))
    active: Mapped[bool] = mapped_column(default=True)
    daily_cap_minutes: Mapped[int | None] = mapped_column(default=240)
    severe_daily_cap_minutes: Mapped[int | None] = mapped_column(default=120)
    weekly_cap_minutes: Mapped[int | None] = mapped_column(default=900)
    exposure_cutoff: Mapped[time | None] = mapped_column(default=time(16, 0))
    max_severity: Mapped[int] = mapped_column(default=3)

    skills: Mapped[list[ExaminerSkill]] = relationship(
        cascade="all, delete-orphan", order_by="ExaminerSkill.skill"
    )
    shifts: Mapped[list[Shift]] = relationship(
        cascade="all, delete-orphan", order_by="(Shift.weekday, Shift.starts)"
    )
    absences: Mapped[list[Absence]] = relationship(
        cascade="all, delete-orphan", order_by="Absence.starts_at"
    )

    @property
    def skill_names(self) -> list[str]:
        return [s.skill for s in self.skills]


class ExaminerSkill(Base):
    __tablename__ = "examiner_skill"

    examiner_id: Mapped[int] = mapped_column(
        ForeignKey("examiner.id", ondelete="CASCADE"), primary_key=True
    )
    skill: Mapped[str] = mapped_column(String(64), primary_key=True)


class Shift(Base):
    """One block of the weekly shift pattern, in lab-local wall-clock time (0 = Monday)."""

    __tablename__ = "shift"
    __table_args__ = (
        CheckConstraint("weekday BETWEEN 0 AND 6", name="weekday_range"),
        CheckConstraint("ends > starts", name="ends_after_starts"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    examiner_id: Mapped[int] = mapped_column(
        ForeignKey("examiner.id", ondelete="CASCADE"), index=True
    )
    weekday: Mapped[int]
    starts: Mapped[time]
    ends: Mapped[time]


class Absence(CreatedAt, Base):
    """An exception to the shift pattern: leave, training, a counselling appointment, ..."""

    __tablename__ = "absence"
    __table_args__ = (
        CheckConstraint("ends_at > starts_at", name="ends_after_starts"),
        one_of("kind", ABSENCE_KINDS),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    examiner_id: Mapped[int] = mapped_column(
        ForeignKey("examiner.id", ondelete="CASCADE"), index=True
    )
    kind: Mapped[str] = mapped_column(String(32))
    starts_at: Mapped[datetime]
    ends_at: Mapped[datetime]


class ExposureLog(CreatedAt, Base):
    """Exposure an examiner actually had on a lab-local day; it lowers the remaining caps."""

    __tablename__ = "exposure_log"
    __table_args__ = (
        CheckConstraint("minutes >= 0 AND minutes <= 1440", name="minutes_range"),
        CheckConstraint("severity BETWEEN 0 AND 3", name="severity_range"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    examiner_id: Mapped[int] = mapped_column(
        ForeignKey("examiner.id", ondelete="CASCADE"), index=True
    )
    day: Mapped[date]
    minutes: Mapped[int]
    severity: Mapped[int]


class Workstation(Timestamps, Base):
    """A machine or tool seat; ``capacity`` is how many jobs it runs at once (GrayKey = 2)."""

    __tablename__ = "workstation"
    __table_args__ = (
        UniqueConstraint("lab_id", "external_ref"),
        CheckConstraint("capacity >= 1 AND capacity <= 1000", name="capacity_range"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    lab_id: Mapped[int] = mapped_column(ForeignKey("lab.id", ondelete="CASCADE"), index=True)
    external_ref: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(200))
    capacity: Mapped[int] = mapped_column(default=1)
    active: Mapped[bool] = mapped_column(default=True)

    capabilities: Mapped[list[WorkstationCapability]] = relationship(
        cascade="all, delete-orphan", order_by="WorkstationCapability.capability"
    )
    maintenance: Mapped[list[MaintenanceWindow]] = relationship(
        cascade="all, delete-orphan", order_by="MaintenanceWindow.starts_at"
    )

    @property
    def capability_names(self) -> list[str]:
        return [c.capability for c in self.capabilities]


class WorkstationCapability(Base):
    __tablename__ = "workstation_capability"

    workstation_id: Mapped[int] = mapped_column(
        ForeignKey("workstation.id", ondelete="CASCADE"), primary_key=True
    )
    capability: Mapped[str] = mapped_column(String(64), primary_key=True)


class MaintenanceWindow(Base):
    __tablename__ = "maintenance_window"
    __table_args__ = (CheckConstraint("ends_at > starts_at", name="ends_after_starts"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    workstation_id: Mapped[int] = mapped_column(
        ForeignKey("workstation.id", ondelete="CASCADE"), index=True
    )
    starts_at: Mapped[datetime]
    ends_at: Mapped[datetime]


class LicencePool(Timestamps, Base):
    """Floating licences (e.g. processing seats) shared by jobs."""

    __tablename__ = "licence_pool"
    __table_args__ = (
        UniqueConstraint("lab_id", "name"),
        CheckConstraint("capacity >= 1 AND capacity <= 1000", name="capacity_range"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    lab_id: Mapped[int] = mapped_column(ForeignKey("lab.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(64))
    capacity: Mapped[int]
