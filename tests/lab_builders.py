"""Small labs for the planning and continuous-planning tests, built through the domain services
(as the API does)."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

from sqlalchemy.orm import Session

from models import Case, Device, Examiner, Job, Lab, Workstation
from scheduler.services import casework, labs, resources

# A Monday in winter (EST, UTC-5): 08:07 local.
MONDAY = datetime(2026, 11, 30, 13, 7, tzinfo=UTC)
ACTOR = "test"


def make_lab(session: Session, code: str, *, timezone: str = "America/New_York", **settings) -> Lab:
    settings.setdefault("planning_horizon_days", 3)
    return labs.create_lab(
        session, actor=ACTOR, code=code, name=f"Lab {code}", timezone=timezone, **settings
    )


def weekday_shifts(start: time = time(8), end: time = time(16, 30)) -> list[tuple[int, time, time]]:
    return [(day, start, end) for day in range(5)]


def make_examiner(
    session: Session, lab: Lab, ref: str, skills: tuple[str, ...] = ("mobile", "review"), **policy
) -> Examiner:
    return resources.upsert_examiner(
        session,
        lab,
        actor=ACTOR,
        external_ref=ref,
        skills=skills,
        shifts=policy.pop("shifts", weekday_shifts()),
        **policy,
    )


def make_workstation(
    session: Session, lab: Lab, ref: str, caps: tuple[str, ...] = ("ufed",), capacity: int = 1
) -> Workstation:
    return resources.upsert_workstation(
        session, lab, actor=ACTOR, external_ref=ref, capabilities=caps, capacity=capacity
    )


def make_case(
    session: Session,
    lab: Lab,
    ref: str,
    *,
    priority: str = "P3",
    received_at: datetime = MONDAY - timedelta(days=1),
    legal_deadline_at: datetime | None = None,
    status: str = "open",
) -> Case:
    return casework.upsert_case(
        session,
        lab,
        actor=ACTOR,
        external_ref=ref,
        priority=priority,
        received_at=received_at,
        legal_deadline_at=legal_deadline_at,
        status=status,
    )


def make_device(
    session: Session, case: Case, ref: str = "D1", *, arrived_at: datetime | None = None
) -> Device:
    return casework.upsert_device(
        session,
        case,
        actor=ACTOR,
        external_ref=ref,
        kind="phone",
        arrived_at=arrived_at or case.received_at,
    )


def phone_chain(
    session: Session, device: Device, *, review_minutes: int = 120, severity: int = 1
) -> tuple[Job, Job, Job]:
    """acquire (60 attended + 120 on a UFED) -> process (machine only) -> review (exposure)."""
    acquire = casework.upsert_job(
        session,
        device,
        actor=ACTOR,
        external_ref="acquire",
        stage="acquire",
        attended_minutes=60,
        machine_minutes=120,
        skills=["mobile"],
        capabilities=["ufed"],
    )
    process = casework.upsert_job(
        session,
        device,
        actor=ACTOR,
        external_ref="process",
        stage="process",
        machine_minutes=240,
        capabilities=["ufed"],
        after=[acquire],
    )
    review = casework.upsert_job(
        session,
        device,
        actor=ACTOR,
        external_ref="review",
        stage="review",
        attended_minutes=review_minutes,
        exposure_minutes=review_minutes - 20 if severity else 0,
        severity=severity,
        skills=["review"],
        after=[process],
    )
    return acquire, process, review


def small_lab(session: Session, code: str, *, cases: int = 3, **settings) -> Lab:
    """Two examiners, one UFED, ``cases`` open cases with a three-stage phone chain each."""
    lab = make_lab(session, code, **settings)
    make_examiner(session, lab, "E1")
    make_examiner(session, lab, "E2")
    make_workstation(session, lab, "U1")
    for n in range(cases):
        case = make_case(
            session,
            lab,
            f"C{n + 1}",
            priority=("P1", "P2", "P3", "P4")[n % 4],
            received_at=MONDAY - timedelta(days=n + 1),
        )
        phone_chain(session, make_device(session, case))
    return lab
