"""A forensic unit, its priority scheme and its solver settings."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import CheckConstraint, ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from models.base import Base, CreatedAt, Timestamps, one_of
from models.casework import STAGES

OBJECTIVES = ("weighted_tardiness", "makespan")

#: What moving one published assignment (examiner, workstation or day) costs, in the units of
#: weighted tardiness (priority weight x minutes late): ten minutes of a P1 case's lateness,
#: about 17 hours of a P5's. At the snapshot format's example weight (50) a re-run re-shuffled
#: two thirds of the first unfrozen day to win a few minutes here and there (``labq bench churn``).
DEFAULT_CHANGE_WEIGHT = 10_000
DEFAULT_MAX_TIME_LIMIT_SECONDS = 3600


DEFAULT_START_GRACE_MINUTES = 60


class Lab(Timestamps, Base):
    """One forensic unit. Solver settings live here so each lab tunes its own trade-offs."""

    __tablename__ = "lab"
    __table_args__ = (
        CheckConstraint("planning_horizon_days BETWEEN 1 AND 60", name="horizon_range"),
        CheckConstraint("slot_minutes BETWEEN 1 AND 240", name="slot_range"),
        CheckConstraint(
            "weight_tardiness >= 0 AND weight_change >= 0 AND weight_balance >= 0 "
            "AND weight_continuity >= 0",
            name="weights_nonneg",
        ),
        CheckConstraint("solve_time_limit_seconds BETWEEN 1 AND 3600", name="time_limit_range"),
        CheckConstraint("max_time_limit_seconds BETWEEN 1 AND 3600", name="max_time_limit_range"),
        CheckConstraint("frozen_working_days BETWEEN 0 AND 10", name="frozen_range"),
        CheckConstraint("start_grace_minutes BETWEEN 0 AND 1440", name="start_grace_range"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    timezone: Mapped[str] = mapped_column(String(64))
    planning_horizon_days: Mapped[int] = mapped_column(default=10)
    slot_minutes: Mapped[int] = mapped_column(default=15)
    frozen_working_days: Mapped[int] = mapped_column(default=1)
    #: A published job whose start passed with no ``:start`` is taken as started as planned until
    #: its planned end plus this many minutes; after that it is overdue and re-planned alone.
    start_grace_minutes: Mapped[int] = mapped_column(
        default=DEFAULT_START_GRACE_MINUTES, server_default=str(DEFAULT_START_GRACE_MINUTES)
    )
    solve_time_limit_seconds: Mapped[int] = mapped_column(default=60)
    #: The longest solve a run of this lab may ask for: a request above it is refused.
    max_time_limit_seconds: Mapped[int] = mapped_column(
        default=DEFAULT_MAX_TIME_LIMIT_SECONDS, server_default=str(DEFAULT_MAX_TIME_LIMIT_SECONDS)
    )
    weight_tardiness: Mapped[int] = mapped_column(default=1)
    weight_change: Mapped[int] = mapped_column(default=DEFAULT_CHANGE_WEIGHT)
    weight_balance: Mapped[int] = mapped_column(default=5)
    weight_continuity: Mapped[int] = mapped_column(default=2)

    priority_levels: Mapped[list[PriorityLevel]] = relationship(
        back_populates="lab", order_by="PriorityLevel.rank", cascade="all, delete-orphan"
    )


class PriorityLevel(Base):
    """One level of a lab's triage scheme: its weight drives tardiness, its SLA the due time."""

    __tablename__ = "priority_level"
    __table_args__ = (
        UniqueConstraint("lab_id", "code"),
        UniqueConstraint("lab_id", "rank"),
        CheckConstraint("weight >= 0 AND weight <= 1000000", name="weight_range"),
        CheckConstraint("target_start_hours >= 0", name="target_nonneg"),
        CheckConstraint("rank >= 1", name="rank_positive"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    lab_id: Mapped[int] = mapped_column(ForeignKey("lab.id", ondelete="CASCADE"), index=True)
    code: Mapped[str] = mapped_column(String(16))
    name: Mapped[str] = mapped_column(String(200))
    rank: Mapped[int]  # 1 is the most urgent
    weight: Mapped[int]
    target_start_hours: Mapped[int]
    auto_publish_repair: Mapped[bool] = mapped_column(default=False)

    lab: Mapped[Lab] = relationship(back_populates="priority_levels")


def target_start(received_at: datetime, target_start_hours: int) -> datetime:
    """The SLA (docs/architecture.md §2.5): a case's first work should start this long after
    it was received (or last escalated)."""
    return received_at + timedelta(hours=target_start_hours)


def target_start_minute(received_minute: int, target_start_hours: int) -> int:
    """``target_start`` in whole minutes of a timeline: a target past year 9999 is only late,
    never an overflow."""
    return received_minute + 60 * target_start_hours


# The default scheme (docs/architecture.md §2.5), after the ICAC review-board scale and NCMEC
# priority 1.
DEFAULT_PRIORITY_SCHEME: tuple[tuple[str, str, int, int, bool], ...] = (
    ("P1", "Child at immediate risk", 1000, 24, True),
    ("P2", "Hands-on abuse / known offender access", 300, 72, True),
    ("P3", "Producer / distributor network", 100, 14 * 24, False),
    ("P4", "Possession referral", 30, 60 * 24, False),
    ("P5", "Informational", 10, 180 * 24, False),
)


# --- the lab's vocabulary ------------------------------------------------------------------------

TERM_KINDS = ("skill", "capability", "stage")


class LabTerm(CreatedAt, Base):
    """One term a lab has defined: a skill examiners hold and jobs need, a workstation
    capability, or a stage the lab works (one of the stages labq plans). Skills, capabilities
    and stages outside a lab's terms are refused, so a typo ("mobil") is a 422, not a job no
    examiner can ever take."""

    __tablename__ = "lab_term"
    __table_args__ = (
        one_of("kind", TERM_KINDS),
        CheckConstraint(
            "kind <> 'stage' OR term IN ({})".format(", ".join(f"'{s}'" for s in STAGES)),
            name="stage_planned",
        ),
    )

    lab_id: Mapped[int] = mapped_column(ForeignKey("lab.id", ondelete="CASCADE"), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16), primary_key=True)
    term: Mapped[str] = mapped_column(String(64), primary_key=True)


# The vocabulary a new lab starts with unless told otherwise, as it starts with the default
# priority scheme: the skills and capabilities of the demo lab and the generated labs (mobile and
# computer work, unlocking, chip-off, cloud returns, review, reporting; UFED, GrayKey, imagers and
# write blockers, processing servers, AXIOM seats), and every stage labq plans.
DEFAULT_VOCABULARY: dict[str, tuple[str, ...]] = {
    "skill": ("chip_off", "cloud", "computer", "mobile", "report", "review", "unlock"),
    "capability": ("axiom", "graykey", "imager", "processing", "ufed", "write_blocker"),
    "stage": STAGES,
}
