"""Solve runs and the schedule versions they produce."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from models.base import Base, CreatedAt, one_of

RUN_MODES = ("full", "repair", "preview")

# Weighted objectives (weight x minutes x jobs) exceed 32 bits: BIGINT on PostgreSQL. SQLite's
# INTEGER is 64-bit already (and rebuilding its tables would cascade deletes), so it keeps INTEGER.
Objective = BigInteger().with_variant(Integer(), "sqlite")
RUN_STATUSES = ("queued", "running", "succeeded", "failed", "cancelled")


class SolveRun(CreatedAt, Base):
    """One optimisation request. Workers claim queued runs; the heartbeat reveals a dead worker."""

    __tablename__ = "solve_run"
    __table_args__ = (
        one_of("mode", RUN_MODES),
        one_of("status", RUN_STATUSES),
        CheckConstraint("progress >= 0 AND progress <= 1", name="progress_range"),
        CheckConstraint("attempts >= 0", name="attempts_nonneg"),
        CheckConstraint("time_limit_seconds BETWEEN 1 AND 3600", name="time_limit_range"),
        Index("ix_solve_run_lab_status", "lab_id", "status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    lab_id: Mapped[int] = mapped_column(ForeignKey("lab.id", ondelete="CASCADE"))
    mode: Mapped[str] = mapped_column(String(16), default="full")
    status: Mapped[str] = mapped_column(String(16), default="queued")
    auto_publish: Mapped[bool] = mapped_column(default=False)
    time_limit_seconds: Mapped[int] = mapped_column(default=60)
    progress: Mapped[float] = mapped_column(default=0.0)
    attempts: Mapped[int] = mapped_column(default=0)
    requested_by: Mapped[str] = mapped_column(String(64))
    reason: Mapped[str | None] = mapped_column(String(200))
    worker_id: Mapped[str | None] = mapped_column(String(128))
    started_at: Mapped[datetime | None]
    heartbeat_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
    cancel_requested: Mapped[bool] = mapped_column(default=False)
    objective: Mapped[int | None] = mapped_column(Objective)
    bound: Mapped[int | None] = mapped_column(Objective)
    error: Mapped[str | None] = mapped_column(Text)


ATTEMPT_OUTCOMES = ("succeeded", "failed", "cancelled", "stale")


class SolveRunAttempt(Base):
    """One claim of a run by a worker, and how it ended (``None`` while it is going on).

    ``stale``: the worker stopped beating; the run was re-queued, or failed after its last attempt.
    """

    __tablename__ = "solve_run_attempt"
    __table_args__ = (
        one_of("outcome", ATTEMPT_OUTCOMES),
        CheckConstraint("attempt >= 1", name="attempt_positive"),
    )

    solve_run_id: Mapped[int] = mapped_column(
        ForeignKey("solve_run.id", ondelete="CASCADE"), primary_key=True
    )
    attempt: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    worker_id: Mapped[str] = mapped_column(String(128))
    started_at: Mapped[datetime]
    ended_at: Mapped[datetime | None]
    outcome: Mapped[str | None] = mapped_column(String(16))
    reason: Mapped[str | None] = mapped_column(Text)


class ScheduleVersion(CreatedAt, Base):
    """The output of a run. At most one version per lab is current (the published schedule)."""

    __tablename__ = "schedule_version"
    __table_args__ = (
        Index(
            "uq_schedule_version_current",
            "lab_id",
            unique=True,
            sqlite_where=text("is_current"),
            postgresql_where=text("is_current"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    lab_id: Mapped[int] = mapped_column(ForeignKey("lab.id", ondelete="CASCADE"), index=True)
    solve_run_id: Mapped[int | None] = mapped_column(
        ForeignKey("solve_run.id", ondelete="SET NULL")
    )
    epoch: Mapped[datetime]
    status: Mapped[str] = mapped_column(String(16))
    objective: Mapped[int | None] = mapped_column(Objective)
    bound: Mapped[int | None] = mapped_column(Objective)
    published_at: Mapped[datetime | None]
    is_current: Mapped[bool] = mapped_column(default=False)
    terms: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    kpis: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    diff: Mapped[dict[str, Any] | None] = mapped_column(JSON)

    assignments: Mapped[list[Assignment]] = relationship(
        cascade="all, delete-orphan", order_by="Assignment.starts_at"
    )
    unscheduled: Mapped[list[UnscheduledJob]] = relationship(cascade="all, delete-orphan")
    forecast: Mapped[list[ForecastEntry]] = relationship(cascade="all, delete-orphan")


class Assignment(Base):
    __tablename__ = "assignment"
    __table_args__ = (CheckConstraint("ends_at >= starts_at", name="ends_after_starts"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    schedule_version_id: Mapped[int] = mapped_column(
        ForeignKey("schedule_version.id", ondelete="CASCADE"), index=True
    )
    job_id: Mapped[int] = mapped_column(ForeignKey("job.id", ondelete="CASCADE"), index=True)
    examiner_id: Mapped[int | None] = mapped_column(
        ForeignKey("examiner.id", ondelete="SET NULL"), index=True
    )
    workstation_id: Mapped[int | None] = mapped_column(
        ForeignKey("workstation.id", ondelete="SET NULL"), index=True
    )
    starts_at: Mapped[datetime]
    ends_at: Mapped[datetime]


class UnscheduledJob(Base):
    """A pending job the version leaves out, and why (no case is silently parked)."""

    __tablename__ = "unscheduled_job"

    schedule_version_id: Mapped[int] = mapped_column(
        ForeignKey("schedule_version.id", ondelete="CASCADE"), primary_key=True
    )
    job_id: Mapped[int] = mapped_column(ForeignKey("job.id", ondelete="CASCADE"), primary_key=True)
    reason: Mapped[str] = mapped_column(String(64))
    detail: Mapped[str] = mapped_column(String(500), default="")


class ForecastEntry(Base):
    """Projected start/end of a job beyond the planning horizon."""

    __tablename__ = "forecast_entry"
    __table_args__ = (CheckConstraint("ends_at >= starts_at", name="ends_after_starts"),)

    schedule_version_id: Mapped[int] = mapped_column(
        ForeignKey("schedule_version.id", ondelete="CASCADE"), primary_key=True
    )
    job_id: Mapped[int] = mapped_column(ForeignKey("job.id", ondelete="CASCADE"), primary_key=True)
    starts_at: Mapped[datetime]
    ends_at: Mapped[datetime]


class WhatIf(CreatedAt, Base):
    """A change of the lab on paper and its preview solve (docs/architecture.md §5.11).

    Its run is a ``preview``: solved, compared with the published schedule and kept here as
    ``result``; it never becomes a schedule version, so it can never be published or served.
    """

    __tablename__ = "what_if"

    id: Mapped[int] = mapped_column(primary_key=True)
    lab_id: Mapped[int] = mapped_column(ForeignKey("lab.id", ondelete="CASCADE"), index=True)
    solve_run_id: Mapped[int] = mapped_column(
        ForeignKey("solve_run.id", ondelete="CASCADE"), unique=True
    )
    requested_by: Mapped[str] = mapped_column(String(64))
    changes: Mapped[dict[str, Any]] = mapped_column(JSON)
    baseline_version_id: Mapped[int | None] = mapped_column(
        ForeignKey("schedule_version.id", ondelete="SET NULL")
    )
    result: Mapped[dict[str, Any] | None] = mapped_column(JSON)
