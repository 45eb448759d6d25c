"""Put a generated lab (`scheduler.generate.generate_lab`) into a database, fast.

The lab is created through the labs service (priority scheme, audit event); everything below it
is written with multi-row inserts, a few statements per table, so 20,000 jobs load in seconds on
either backend. What is kept from the generated snapshot:

- examiners: skills, a weekly shift pattern (per weekday, the earliest start and latest end the
  snapshot gives that weekday), exposure caps, 16:00 cut-off, maximum severity;
- workstations: capabilities, capacity, and a maintenance window for every gap in availability;
- licence pools; cases (priority from the job weight, ``received_at`` so the loader's due times
  match the snapshot's), devices (kind from the first stage's capability), jobs with skills,
  capabilities, pools, allowed examiners, per-workstation minutes and predecessors.

Times: the snapshot's minute 0 becomes ``epoch`` (a Monday 08:00, lab time zone UTC), so the lab
can be laid on the real calendar that the worker plans against. Pins and logged exposure of the
generator are not kept (all jobs start pending). ``min_jobs`` pads the backlog with copies of
the lab's low-priority cases (P4/P5, released at once) to reach a job count.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from models import (
    Case,
    Device,
    Examiner,
    ExaminerSkill,
    Job,
    Lab,
    LicencePool,
    MaintenanceWindow,
    Shift,
    Workstation,
    WorkstationCapability,
)
from models.casework import STAGES
from scheduler.core.snapshot import Job as SnapJob
from scheduler.core.snapshot import Snapshot
from scheduler.services import job_store
from scheduler.services.labs import create_lab

logger = logging.getLogger(__name__)

DAY = 1440
WEIGHT_LEVEL = {1000: "P1", 300: "P2", 100: "P3", 30: "P4", 10: "P5"}
LEVEL_HOURS = {"P1": 24, "P2": 72, "P3": 14 * 24, "P4": 60 * 24, "P5": 180 * 24}
STAGE_ALLOWANCE_MINUTES = 4 * 60
BACKLOG_LEVELS = ("P4", "P5")
CAPABILITY_KIND = {
    "ufed": "phone",
    "graykey": "phone",
    "imager": "computer",
    "write_blocker": "storage",
    "cloud": "cloud_return",
}

CHUNK = 2000
CASE_DEVICE = "case"  # the pseudo-exhibit holding a case's report job


@dataclass(frozen=True)
class Seeded:
    lab_id: int
    code: str
    examiners: int
    jobs: int
    cases: int


def next_monday_8am(now: datetime) -> datetime:
    """The first Monday 08:00 UTC at or after ``now`` (a generated lab's epoch)."""
    day = now.astimezone().date()
    start = datetime(day.year, day.month, day.day, 8, tzinfo=now.tzinfo)
    start += timedelta(days=(7 - start.weekday()) % 7)
    if start < now:
        start += timedelta(days=7)
    return start


def _split(job_id: str) -> tuple[str, str, str]:
    """``c0001-d1-acquire`` -> (case, device, job); a case's ``c0001-report`` -> device ``case``."""
    parts = job_id.split("-", 2)
    if len(parts) == 2:
        return parts[0], CASE_DEVICE, parts[1]
    return parts[0], parts[1], parts[2]


def _stage(job_ref: str) -> str:
    for stage in STAGES:
        if job_ref.startswith(stage):
            return stage
    return "process"


def _chunks(rows: Sequence[dict[str, Any]]) -> Iterable[Sequence[dict[str, Any]]]:
    for i in range(0, len(rows), CHUNK):
        yield rows[i : i + CHUNK]


def _insert(session: Session, model: Any, rows: Sequence[dict[str, Any]]) -> None:
    for chunk in _chunks(rows):
        session.execute(insert(model), list(chunk))


def _depths(jobs: Sequence[SnapJob]) -> dict[str, int]:
    by_id = {j.id: j for j in jobs}
    depth: dict[str, int] = {}

    def walk(jid: str) -> int:
        if jid not in depth:
            depth[jid] = 0  # cut cycles (none in generated labs)
            job = by_id[jid]
            depth[jid] = 1 + max((walk(p) for p in job.after if p in by_id), default=-1)
        return depth[jid]

    for job in jobs:
        walk(job.id)
    return depth


def _padded_jobs(snapshot: Snapshot, min_jobs: int | None) -> list[SnapJob]:
    """The snapshot's jobs plus copies of its backlog cases until ``min_jobs`` is reached."""
    jobs = list(snapshot.jobs)
    if min_jobs is None or len(jobs) >= min_jobs:
        return jobs
    by_case: dict[str, list[SnapJob]] = defaultdict(list)
    for job in jobs:
        by_case[job.case].append(job)
    backlog = [
        c for c, js in by_case.items() if WEIGHT_LEVEL.get(js[0].weight, "P4") in BACKLOG_LEVELS
    ] or list(by_case)
    copy = 0
    while len(jobs) < min_jobs:
        copy += 1
        for case in backlog:
            suffix = f"b{copy}"
            for job in by_case[case]:
                c, d, j = _split(job.id)
                jobs.append(
                    SnapJob(
                        id=f"{c}{suffix}-{j}" if d == CASE_DEVICE else f"{c}{suffix}-{d}-{j}",
                        case=f"{c}{suffix}",
                        weight=job.weight,
                        release=0,
                        due=job.due,
                        attended=job.attended,
                        machine=job.machine,
                        machine_by_workstation=job.machine_by_workstation,
                        skills=job.skills,
                        capabilities=job.capabilities,
                        pools=job.pools,
                        examiners=job.examiners,
                        exposure=job.exposure,
                        severity=job.severity,
                        after=tuple(f"{c}{suffix}-{p.split('-', 1)[1]}" for p in job.after),
                    )
                )
            if len(jobs) >= min_jobs:
                break
    return jobs


def _vocabulary(snapshot: Snapshot) -> dict[str, list[str]]:
    """The terms the snapshot's people, machines and work use: the lab defines these."""
    skills = {s for e in snapshot.examiners for s in e.skills}
    skills |= {s for j in snapshot.jobs for s in j.skills}
    capabilities = {c for w in snapshot.workstations for c in w.capabilities}
    capabilities |= {c for j in snapshot.jobs for c in j.capabilities}
    return {
        "skills": sorted(skills),
        "capabilities": sorted(capabilities),
        "stages": list(STAGES),
    }


def seed_lab(
    session: Session,
    snapshot: Snapshot,
    *,
    code: str,
    epoch: datetime,
    min_jobs: int | None = None,
    actor: str = "bench:seed",
    **lab_settings: Any,
) -> Seeded:
    """Create lab ``code`` holding ``snapshot``'s people, machines and work (see module doc)."""

    def at(minute: int) -> datetime:
        return epoch + timedelta(minutes=minute)

    lab = create_lab(
        session,
        actor=actor,
        code=code,
        name=f"Lab {code}",
        timezone="UTC",
        terms=_vocabulary(snapshot),
        **lab_settings,
    )
    levels = {level.code: level for level in lab.priority_levels}

    # -- examiners
    _insert(
        session,
        Examiner,
        [
            {
                "lab_id": lab.id,
                "external_ref": e.id,
                "display_name": e.id,
                "daily_cap_minutes": e.exposure.daily_cap,
                "severe_daily_cap_minutes": e.exposure.severe_daily_cap,
                "weekly_cap_minutes": e.exposure.weekly_cap,
                "exposure_cutoff": time(16, 0),
                "max_severity": e.exposure.max_severity,
            }
            for e in snapshot.examiners
        ],
    )
    ex_ids = dict(
        session.execute(
            select(Examiner.external_ref, Examiner.id).where(Examiner.lab_id == lab.id)
        ).all()
    )
    skills: list[dict[str, Any]] = []
    shifts: list[dict[str, Any]] = []
    for e in snapshot.examiners:
        skills.extend({"examiner_id": ex_ids[e.id], "skill": s} for s in sorted(e.skills))
        spans: dict[int, tuple[int, int]] = {}
        for a, b in e.available:
            day = a // DAY
            if day != (b - 1) // DAY:
                continue
            weekday = (epoch.weekday() + day) % 7
            start, end = a - day * DAY, b - day * DAY
            lo, hi = spans.get(weekday, (start, end))
            spans[weekday] = (min(lo, start), max(hi, end))
        for weekday, (start, end) in sorted(spans.items()):
            begin = epoch.replace(hour=0, minute=0) + timedelta(hours=8, minutes=start)
            finish = epoch.replace(hour=0, minute=0) + timedelta(hours=8, minutes=end)
            if finish.date() != begin.date():
                continue
            shifts.append(
                {
                    "examiner_id": ex_ids[e.id],
                    "weekday": weekday,
                    "starts": begin.time(),
                    "ends": finish.time(),
                }
            )
    _insert(session, ExaminerSkill, skills)
    _insert(session, Shift, shifts)

    # -- workstations and pools
    _insert(
        session,
        Workstation,
        [
            {"lab_id": lab.id, "external_ref": w.id, "name": w.id, "capacity": w.capacity}
            for w in snapshot.workstations
        ],
    )
    ws_ids = dict(
        session.execute(
            select(Workstation.external_ref, Workstation.id).where(Workstation.lab_id == lab.id)
        ).all()
    )
    caps: list[dict[str, Any]] = []
    maintenance: list[dict[str, Any]] = []
    for w in snapshot.workstations:
        caps.extend({"workstation_id": ws_ids[w.id], "capability": c} for c in w.capabilities)
        if w.available is None:
            continue
        edge = 0
        for a, b in (*w.available, (snapshot.horizon, snapshot.horizon)):
            if a > edge:
                maintenance.append(
                    {"workstation_id": ws_ids[w.id], "starts_at": at(edge), "ends_at": at(a)}
                )
            edge = max(edge, b)
    _insert(session, WorkstationCapability, caps)
    _insert(session, MaintenanceWindow, maintenance)
    _insert(
        session,
        LicencePool,
        [{"lab_id": lab.id, "name": p.id, "capacity": p.capacity} for p in snapshot.pools],
    )
    pool_ids = dict(
        session.execute(
            select(LicencePool.name, LicencePool.id).where(LicencePool.lab_id == lab.id)
        ).all()
    )

    # -- cases, devices, jobs
    jobs = _padded_jobs(snapshot, min_jobs)
    depth = _depths(jobs)
    by_case: dict[str, list[SnapJob]] = defaultdict(list)
    for job in jobs:
        by_case[job.case].append(job)
    case_rows, device_rows = [], []
    device_seen: set[tuple[str, str]] = set()
    for case_ref, case_jobs in by_case.items():
        level = WEIGHT_LEVEL.get(case_jobs[0].weight, "P4")
        due = min(
            (j.due - STAGE_ALLOWANCE_MINUTES * depth[j.id] for j in case_jobs if j.due is not None),
            default=0,
        )
        received = at(due) - timedelta(hours=LEVEL_HOURS[level])
        case_rows.append(
            {
                "lab_id": lab.id,
                "external_ref": case_ref,
                "priority_level_id": levels[level].id,
                "received_at": received,
                "status": "open",
            }
        )
        for job in case_jobs:
            _, device_ref, _ = _split(job.id)
            if (case_ref, device_ref) in device_seen:
                continue
            device_seen.add((case_ref, device_ref))
            kind = next(
                (CAPABILITY_KIND[c] for c in sorted(job.capabilities) if c in CAPABILITY_KIND),
                "other",
            )
            release = min(j.release for j in case_jobs if _split(j.id)[1] == device_ref)
            device_rows.append(
                (
                    case_ref,
                    {
                        "external_ref": device_ref,
                        "kind": kind,
                        "locked": any(
                            _split(j.id)[1] == device_ref and _split(j.id)[2].startswith("unlock")
                            for j in case_jobs
                        ),
                        "arrived_at": max(received, at(release)) if release > 0 else received,
                    },
                )
            )
    _insert(session, Case, case_rows)
    case_ids = dict(
        session.execute(select(Case.external_ref, Case.id).where(Case.lab_id == lab.id)).all()
    )
    _insert(session, Device, [{"case_id": case_ids[c], **row} for c, row in device_rows])
    device_ids = {
        (case_ref, device_ref): device_id
        for case_ref, device_ref, device_id in session.execute(
            select(Case.external_ref, Device.external_ref, Device.id)
            .join(Case, Device.case_id == Case.id)
            .where(Case.lab_id == lab.id)
        )
    }
    _insert(
        session,
        Job,
        [
            {
                "lab_id": lab.id,
                "device_id": device_ids[(job.case, _split(job.id)[1])],
                "external_ref": _split(job.id)[2],
                "stage": _stage(_split(job.id)[2]),
                "status": "pending",
                "attended_minutes": job.attended,
                "machine_minutes": job.machine,
                "exposure_minutes": job.exposure,
                "severity": job.severity,
            }
            for job in jobs
        ],
    )
    job_ids = {
        (
            f"{case_ref}-{job_ref}"
            if device_ref == CASE_DEVICE
            else f"{case_ref}-{device_ref}-{job_ref}"
        ): job_id
        for case_ref, device_ref, job_ref, job_id in session.execute(
            select(Case.external_ref, Device.external_ref, Job.external_ref, Job.id)
            .join(Device, Job.device_id == Device.id)
            .join(Case, Device.case_id == Case.id)
            .where(Job.lab_id == lab.id)
        )
    }
    sets = {
        job_ids[job.id]: job_store.Sets(
            skills=list(job.skills),
            capabilities=list(job.capabilities),
            pool_ids=[pool_ids[p] for p in set(job.pools)],
            examiner_ids=[ex_ids[e] for e in job.examiners or ()],
            workstation_minutes={
                ws_ids[w]: m for w, m in (job.machine_by_workstation or {}).items()
            },
            # a predecessor absent from the snapshot is done
            predecessor_ids=[job_ids[p] for p in set(job.after) if p in job_ids],
        )
        for job in jobs
    }
    for table in job_store.TABLES:
        _insert(
            session,
            table.model,
            [
                dict(zip(table.columns, row, strict=True))
                for jid, job_sets in sets.items()
                for row in job_store.rows(table, jid, job_sets)
            ],
        )
    session.flush()
    logger.info("seeded lab %s: %d examiners, %d jobs", code, len(ex_ids), len(jobs))
    return Seeded(
        lab_id=lab.id,
        code=code,
        examiners=len(ex_ids),
        jobs=len(jobs),
        cases=len(case_rows),
    )


def lab_ids(session: Session) -> dict[str, int]:
    return dict(session.execute(select(Lab.code, Lab.id)).all())
