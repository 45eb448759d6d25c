"""The demo lab: a realistic unit seeded through the domain services.

Numbers follow docs/architecture.md §2.5, §2.6: the default priority scheme, 56 % of phones locked
(hours on a GrayKey that runs two at once), overnight processing on shared licences, review in
sessions with hourly breaks folded in, exposure caps with one new examiner on reduced caps and one
who opted out of the most severe material.
"""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from models import Case, Device, Examiner, Job, Lab, Workstation
from models.base import utcnow
from scheduler.services import casework, labs, resources

log = logging.getLogger(__name__)

DEMO_LAB = "north"
ACTOR = "demo"
SEED = 7

# (ref, name, skills, shift start, shift end, policy overrides)
EXAMINERS: tuple[tuple[str, str, tuple[str, ...], time, time, dict[str, object]], ...] = (
    ("E01", "A. Reyes", ("mobile", "unlock", "review", "report"), time(8), time(16, 30), {}),
    ("E02", "B. Okafor", ("computer", "review", "report"), time(8), time(16, 30), {}),
    ("E03", "C. Lindqvist", ("mobile", "computer", "review"), time(7), time(15, 30), {}),
    ("E04", "D. Haddad", ("mobile", "unlock"), time(8), time(16, 30), {}),
    ("E05", "E. Novak", ("computer", "review", "report"), time(8, 30), time(17), {}),
    ("E06", "F. Tanaka", ("review", "report"), time(8), time(16, 30), {"max_severity": 2}),
    ("E07", "G. Mensah", ("mobile", "review"), time(8), time(16, 30), {}),
    ("E08", "H. Costa", ("computer", "mobile", "review", "report"), time(7, 30), time(16), {}),
    (
        "E09",
        "I. Walsh (new)",
        ("review", "computer"),
        time(8),
        time(16, 30),
        {
            "daily_cap_minutes": 150,
            "severe_daily_cap_minutes": 0,
            "weekly_cap_minutes": 450,
            "max_severity": 2,
        },
    ),
    ("E10", "J. Petrov", ("mobile", "computer", "unlock", "report"), time(8), time(16, 30), {}),
)

# (ref, name, capabilities, capacity)
WORKSTATIONS: tuple[tuple[str, str, tuple[str, ...], int], ...] = (
    ("GK1", "GrayKey", ("graykey",), 2),
    ("UFED1", "UFED station 1", ("ufed",), 1),
    ("UFED2", "UFED station 2", ("ufed",), 1),
    ("IMG1", "Imager 1", ("imager", "write_blocker"), 1),
    ("IMG2", "Imager 2 (fast)", ("imager", "write_blocker"), 1),
    ("PROC1", "Processing server 1", ("processing",), 1),
    ("PROC2", "Processing server 2", ("processing",), 1),
    ("PROC3", "Processing server 3 (fast)", ("processing",), 1),
)

# How many demo cases at each level, and how far back they were received (days). Urgent cases
# are fresh so the demo shows whether their targets (24 h / 72 h) are met, not that they passed.
CASE_MIX: tuple[tuple[str, int, float], ...] = (
    ("P1", 2, 0.5),
    ("P2", 6, 2),
    ("P3", 8, 60),
    ("P4", 18, 270),
    ("P5", 6, 360),
)

DEVICE_KINDS = ("phone", "phone", "phone", "computer", "storage", "cloud_return")


@dataclass(frozen=True)
class DemoSummary:
    created: bool
    lab: str
    examiners: int
    workstations: int
    cases: int
    devices: int
    jobs: int


def _counts(session: Session, lab: Lab, created: bool) -> DemoSummary:
    def count(model: type, *where: Any) -> int:
        return int(session.scalar(select(func.count()).select_from(model).where(*where)) or 0)

    return DemoSummary(
        created=created,
        lab=lab.code,
        examiners=count(Examiner, Examiner.lab_id == lab.id),
        workstations=count(Workstation, Workstation.lab_id == lab.id),
        cases=count(Case, Case.lab_id == lab.id),
        devices=count(Device, Device.case_id.in_(select(Case.id).where(Case.lab_id == lab.id))),
        jobs=count(Job, Job.lab_id == lab.id),
    )


def seed_demo(session: Session, now: datetime | None = None) -> DemoSummary:
    """Seed the demo lab once; a second call changes nothing and reports what is there."""
    existing = labs.find_lab(session, DEMO_LAB)
    if existing is not None:
        return _counts(session, existing, created=False)
    now = now or utcnow()
    rng = random.Random(SEED)
    lab = labs.create_lab(
        session,
        actor=ACTOR,
        code=DEMO_LAB,
        name="North Regional Digital Forensics Unit",
        timezone="America/New_York",
    )
    _seed_examiners(session, lab, now, rng)
    for ref, name, caps, capacity in WORKSTATIONS:
        resources.upsert_workstation(
            session,
            lab,
            actor=ACTOR,
            external_ref=ref,
            name=name,
            capabilities=caps,
            capacity=capacity,
        )
    resources.upsert_pool(session, lab, actor=ACTOR, name="axiom", capacity=2)
    _seed_cases(session, lab, now, rng)
    return _counts(session, lab, created=True)


def _seed_examiners(session: Session, lab: Lab, now: datetime, rng: random.Random) -> None:
    monday = (now - timedelta(days=now.weekday())).replace(
        hour=0, minute=0, second=0, microsecond=0
    )
    for index, (ref, name, skills, start, end, policy) in enumerate(EXAMINERS):
        examiner = resources.upsert_examiner(
            session,
            lab,
            actor=ACTOR,
            external_ref=ref,
            display_name=name,
            skills=skills,
            shifts=[(day, start, end) for day in range(5)],
            **policy,
        )
        # Fortnightly counselling appointments (docs/architecture.md §2.3: exposure welfare).
        for week in (0, 2):
            day = monday + timedelta(weeks=week, days=index % 5, hours=14)
            resources.add_absence(
                session,
                examiner,
                actor=ACTOR,
                kind="counselling",
                starts_at=day,
                ends_at=day + timedelta(hours=1),
            )
        if index in (2, 6):  # two examiners take a week of leave next week
            leave = monday + timedelta(weeks=1)
            resources.add_absence(
                session,
                examiner,
                actor=ACTOR,
                kind="leave",
                starts_at=leave,
                ends_at=leave + timedelta(days=5),
            )
        if "review" in skills and rng.random() < 0.5:
            resources.log_exposure(
                session,
                examiner,
                actor=ACTOR,
                day=(now - timedelta(days=1)).date(),
                minutes=rng.choice((60, 90, 120)),
                severity=rng.choice((1, 2)),
            )


def _seed_cases(session: Session, lab: Lab, now: datetime, rng: random.Random) -> None:
    number = 400
    for level, count, max_age_days in CASE_MIX:
        for _ in range(count):
            number += rng.randint(1, 9)
            received = now - timedelta(days=rng.uniform(0.2, max_age_days))
            deadline = None
            if level in ("P2", "P3") and rng.random() < 0.3:
                deadline = now + timedelta(days=rng.randint(5, 40))  # a court date
            case = casework.upsert_case(
                session,
                lab,
                actor=ACTOR,
                external_ref=f"CR-2026-{number:04d}",
                priority=level,
                received_at=received,
                legal_deadline_at=deadline,
            )
            _seed_devices(session, case, received, rng)


def _seed_devices(session: Session, case: Case, received: datetime, rng: random.Random) -> None:
    reviews: list[Job] = []
    devices: list[Device] = []
    device_count = rng.choices((1, 2, 3, 4), weights=(4, 3, 2, 1))[0]
    review_minutes_per_device = 45 * 60 // device_count
    for d in range(1, device_count + 1):
        kind = rng.choice(DEVICE_KINDS)
        locked = kind == "phone" and rng.random() < 0.56
        device = casework.upsert_device(
            session,
            case,
            actor=ACTOR,
            external_ref=f"D{d}",
            kind=kind,
            locked=locked,
            size_gb=rng.choice((64, 128, 256, 512, 1000, 2000)),
            arrived_at=received + timedelta(hours=rng.randint(0, 48)),
        )
        devices.append(device)
        reviews.extend(_seed_jobs(session, device, review_minutes_per_device, rng))
    report_device = devices[0]
    casework.upsert_job(
        session,
        report_device,
        actor=ACTOR,
        external_ref="report",
        stage="report",
        attended_minutes=240,
        skills=["report"],
        after=reviews,
    )


def _seed_jobs(
    session: Session, device: Device, review_minutes: int, rng: random.Random
) -> list[Job]:
    """One device's chain: unlock (locked phones) -> acquire -> process -> review sessions.

    Returns the review jobs, which the case's report waits for.
    """
    chain: list[Job] = []

    def job(ref: str, stage: str, **effort: Any) -> Job:
        created = casework.upsert_job(
            session, device, actor=ACTOR, external_ref=ref, stage=stage, after=chain[-1:], **effort
        )
        chain.append(created)
        return created

    kind, reviews = device.kind, []
    if device.locked:
        job(
            "unlock",
            "unlock",
            attended_minutes=30,
            machine_minutes=rng.choice((240, 480, 960)),
            skills=["unlock"],
            capabilities=["graykey"],
        )
    if kind == "phone":
        job(
            "acquire",
            "acquire",
            attended_minutes=60,
            machine_minutes=120,
            skills=["mobile"],
            capabilities=["ufed"],
        )
    elif kind == "cloud_return":
        job("acquire", "acquire", attended_minutes=45, skills=["computer"])
    else:
        size = device.size_gb or 256
        job(
            "acquire",
            "acquire",
            attended_minutes=45,
            machine_minutes=max(60, size // 4),
            skills=["computer"],
            capabilities=["imager"],
            workstation_minutes={"IMG1": max(60, size // 4), "IMG2": max(45, size // 6)},
        )
    job(
        "process",
        "process",
        attended_minutes=15,
        machine_minutes=720,
        capabilities=["processing"],
        pools=["axiom"],
        workstation_minutes={"PROC1": 720, "PROC2": 720, "PROC3": 480},
    )
    severity = rng.choices((0, 1, 2, 3), weights=(1, 4, 3, 2))[0]
    # Sessions with hourly 10-minute breaks folded in; severe material in shorter sessions.
    session_minutes = 120 if severity == 3 else 180
    remaining, n = review_minutes, 0
    while remaining > 0:
        n += 1
        attended = min(session_minutes, remaining)
        exposure = 0 if severity == 0 else attended - 10 * (attended // 60)
        reviews.append(
            job(
                f"review-{n}",
                "review",
                attended_minutes=attended,
                exposure_minutes=exposure,
                severity=severity,
                skills=["review"],
            )
        )
        remaining -= attended
    return reviews
