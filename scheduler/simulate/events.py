"""The generated lab and its event stream (docs/architecture.md §10.1).

Everything here is drawn from the seed alone, never from what a policy did, so ``--policy cpsat``
and ``--policy priority`` replay exactly the same lab: the same backlog, the same case arrivals at
the same minutes, the same sick days and escalations. What depends on the plan (when an examiner
actually starts a job) is drawn per job from a stream keyed by the job's reference
(`job_draws`), so a job is as slow, and its examiner as late, under either policy.
"""

from __future__ import annotations

import math
import random
from collections import defaultdict
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from scheduler.benchmarks.seed_db import CAPABILITY_KIND, WEIGHT_LEVEL
from scheduler.core.snapshot import Job as SnapJob
from scheduler.core.snapshot import Snapshot
from scheduler.generate import PRIORITIES, SIZES, generate_lab

START = datetime.fromisoformat("2027-01-04T08:00:00+00:00")  # a Monday 08:00, lab time zone UTC
LEVELS = ("P1", "P2", "P3", "P4", "P5")
SHARE = {p.code: p.share for p in PRIORITIES}
SHIFT_MINUTES = 510  # 08:00-16:30, the generator's shift
LOAD = 0.85  # arriving attended work against the examiners' attended capacity
SICK_PER_DAY = 0.015  # chance an examiner calls in sick on a working day
ESCALATIONS_PER_EXAMINER_DAY = 0.02
LATE_SHARE = 0.2  # starts pressed late
DURATION_SIGMA = 0.35  # real duration = estimate x lognormal(0, sigma)


@dataclass(frozen=True)
class JobTemplate:
    ref: str  # within its device: acquire, review1, report
    stage: str
    attended: int
    machine: int
    exposure: int
    severity: int
    skills: tuple[str, ...]
    capabilities: tuple[str, ...]
    pools: tuple[str, ...]
    workstation_minutes: tuple[tuple[str, int], ...]
    after: tuple[str, ...]  # "acquire" (same device) or "d1/review1"


@dataclass(frozen=True)
class DeviceTemplate:
    ref: str
    kind: str
    locked: bool
    jobs: tuple[JobTemplate, ...]


@dataclass(frozen=True)
class CaseTemplate:
    devices: tuple[DeviceTemplate, ...]  # the last is the pseudo-device "case" with the report

    @property
    def attended(self) -> int:
        return sum(j.attended for d in self.devices for j in d.jobs)


@dataclass(frozen=True)
class Event:
    """One thing that happens to the lab at ``at`` (UTC); ``kind`` says which."""

    at: datetime
    kind: str  # arrival, device, absence, flag, link, escalate
    case: str = ""
    level: str = ""
    template: CaseTemplate | None = None
    devices: tuple[str, ...] = ()  # arrival: the devices that come with the case
    device: str = ""  # device: the one arriving now
    examiner: str = ""
    until: datetime | None = None
    other: str = ""  # link: the other case
    flag: str = ""


@dataclass
class Scenario:
    """A generated lab (its backlog as a snapshot) and the events of ``days`` calendar days."""

    size: str
    seed: int
    days: int
    backlog: Snapshot
    events: list[Event]
    levels: dict[str, str] = field(default_factory=dict)  # every case's starting level


def _split(job_id: str) -> tuple[str, str, str]:
    parts = job_id.split("-", 2)
    return (parts[0], "case", parts[1]) if len(parts) == 2 else (parts[0], parts[1], parts[2])


def _stage(ref: str) -> str:
    for stage in ("unlock", "acquire", "process", "review", "report"):
        if ref.startswith(stage):
            return stage
    return "process"


def _templates(snapshot: Snapshot) -> list[CaseTemplate]:
    """The generator's fresh cases (every device still to acquire, nothing pinned) as templates."""
    by_case: dict[str, list[SnapJob]] = defaultdict(list)
    for job in snapshot.jobs:
        by_case[job.case].append(job)
    templates = []
    for jobs in by_case.values():
        ids = {j.id for j in jobs}
        if any(j.pin is not None or any(p not in ids for p in j.after) for j in jobs):
            continue
        devices: dict[str, list[JobTemplate]] = defaultdict(list)
        for j in jobs:
            _, device, ref = _split(j.id)

            def path(pred: str, device: str = device) -> str:
                _, d, r = _split(pred)
                return r if d == device else f"{d}/{r}"

            devices[device].append(
                JobTemplate(
                    ref=ref,
                    stage=_stage(ref),
                    attended=j.attended,
                    machine=j.machine,
                    exposure=j.exposure,
                    severity=j.severity,
                    skills=tuple(sorted(j.skills)),
                    capabilities=tuple(sorted(j.capabilities)),
                    pools=tuple(sorted(set(j.pools))),
                    workstation_minutes=tuple(sorted((j.machine_by_workstation or {}).items())),
                    after=tuple(path(p) for p in j.after),
                )
            )
        out = []
        for ref, device_jobs in devices.items():
            caps = sorted({c for j in device_jobs for c in j.capabilities})
            kind = next((CAPABILITY_KIND[c] for c in caps if c in CAPABILITY_KIND), "other")
            locked = any(j.stage == "unlock" for j in device_jobs)
            out.append(DeviceTemplate(ref, kind, locked, tuple(device_jobs)))
        out.sort(key=lambda d: (d.ref == "case", d.ref))
        templates.append(CaseTemplate(tuple(out)))
    return templates


def working(day: datetime) -> bool:
    return day.weekday() < 5


def _poisson(rng: random.Random, mean: float) -> int:
    limit, k, p = math.exp(-mean), 0, 1.0
    while True:
        p *= rng.random()
        if p <= limit:
            return k
        k += 1


def scenario(size: str, seed: int, days: int, start: datetime = START) -> Scenario:
    """The backlog and every event of ``days`` days from ``start`` (a Monday 08:00 UTC)."""
    lab = generate_lab(size, seed, start.isoformat())
    # The backlog: cases already waiting (released at once); arriving work comes as events.
    late = {j.case for j in lab.jobs if j.release > 0}
    backlog = replace(lab, jobs=tuple(j for j in lab.jobs if j.case not in late))
    levels = {j.case: WEIGHT_LEVEL.get(j.weight, "P4") for j in backlog.jobs}
    initial = dict(levels)
    rng = random.Random(f"labq-simulate:{size}:{seed}")
    pool: list[CaseTemplate] = []
    for extra in range(1, 4):
        pool += _templates(generate_lab(size, seed * 1000 + extra, start.isoformat()))
    mean_attended = sum(t.attended for t in pool) / len(pool)
    examiners = [e.id for e in lab.examiners]
    capacity = len(examiners) * SHIFT_MINUTES * 0.9
    per_day = LOAD * capacity / mean_attended
    events: list[Event] = []
    arrived: list[str] = []
    arrival_at: dict[str, datetime] = {}  # a case is escalated or linked only once it is known
    flagged: set[tuple[str, str]] = set()
    linked: set[frozenset[str]] = set()
    number = 0
    midnight = start.replace(hour=0, minute=0)
    for d in range(days):
        day = midnight + timedelta(days=d)
        if not working(day):
            continue
        for examiner in examiners:
            if rng.random() < SICK_PER_DAY:
                length = rng.choice((1, 1, 1, 2, 3))
                until = day + timedelta(days=length)
                at = day + timedelta(hours=7, minutes=rng.randrange(0, 90, 15))
                events.append(Event(at, "absence", examiner=examiner, until=until))
        for _ in range(_poisson(rng, per_day)):
            number += 1
            ref = f"n{number:04d}"
            level = rng.choices(LEVELS, [SHARE[c] for c in LEVELS])[0]
            template = rng.choice(pool)
            at = day + timedelta(hours=8, minutes=rng.randrange(0, 8 * 60, 15))
            real = [dv.ref for dv in template.devices if dv.ref != "case"]
            later = [r for r in real[1:] if rng.random() < 0.3]
            now_devices = tuple(r for r in real if r not in later) + ("case",)
            events.append(Event(at, "arrival", ref, level, template, devices=now_devices))
            for device in later:
                ahead = rng.randint(1, 3)
                when = at + timedelta(days=ahead + (2 if (at.weekday() + ahead) >= 5 else 0))
                if d + (when - at).days < days:
                    events.append(Event(when, "device", ref, device=device, template=template))
            levels[ref] = initial[ref] = level
            arrival_at[ref] = at
            arrived.append(ref)
        for _ in range(_poisson(rng, ESCALATIONS_PER_EXAMINER_DAY * len(examiners))):
            at = day + timedelta(hours=9, minutes=rng.randrange(0, 7 * 60, 15))
            known = {c for c in levels if c not in arrival_at or arrival_at[c] < at}
            candidates = sorted(c for c in known if levels[c] in ("P3", "P4", "P5"))
            urgent = sorted(c for c in arrived if c in known and levels[c] in ("P1", "P2"))
            if not candidates:
                continue
            case = rng.choice(candidates)
            kind = rng.choices(("flag", "link", "escalate"), (0.4, 0.3, 0.3))[0]
            current = LEVELS.index(levels[case])
            if kind == "link" and urgent:
                other = rng.choice(urgent)
                if frozenset((case, other)) in linked:
                    continue
                linked.add(frozenset((case, other)))
                levels[case] = LEVELS[min(current, LEVELS.index(levels[other]))]
                events.append(Event(at, "link", case, other=other))
            elif kind == "flag":
                flag = rng.choice(("hash_match", "classifier", "linked_report"))
                if (case, flag) in flagged:
                    continue
                flagged.add((case, flag))
                levels[case] = LEVELS[max(0, current - 1)]
                events.append(Event(at, "flag", case, flag=flag))
            else:
                level = rng.choice(LEVELS[:current])
                levels[case] = level
                events.append(Event(at, "escalate", case, level))
    events.sort(key=lambda e: (e.at, e.kind, e.case, e.examiner))
    return Scenario(size, seed, days, backlog, events, initial)


@dataclass(frozen=True)
class JobDraws:
    """How one job goes in reality: its duration factor and how late its start is pressed."""

    factor: float
    late_minutes: int


def job_draws(seed: int, job: str) -> JobDraws:
    """The draws of job ``job`` ("case/device/job"), the same under every policy."""
    rng = random.Random(f"labq-simulate-job:{seed}:{job}")
    factor = math.exp(rng.gauss(0.0, DURATION_SIGMA))
    late = rng.choice((15, 30, 45, 60, 90)) if rng.random() < LATE_SHARE else 0
    return JobDraws(round(factor, 4), late)


def import_case(ref: str, level: str, at: datetime, template: CaseTemplate,
                devices: tuple[str, ...]) -> dict[str, Any]:  # fmt: skip
    """A ``cases:import`` item for a case arriving at ``at`` with ``devices`` of its template."""
    present = set(devices)
    return {
        "external_ref": ref,
        "priority": level,
        "received_at": at.isoformat(),
        "devices": [device_payload(d, at, present) for d in template.devices if d.ref in present],
    }


def device_payload(device: DeviceTemplate, at: datetime, present: set[str]) -> dict[str, Any]:
    return {
        "external_ref": device.ref,
        "kind": device.kind,
        "locked": device.locked,
        "arrived_at": at.isoformat(),
        "jobs": [job_payload(j, present) for j in device.jobs],
    }


def job_payload(job: JobTemplate, present: set[str]) -> dict[str, Any]:
    """A job's body; predecessors on devices not yet arrived are left out (added when they come)."""
    body: dict[str, Any] = {
        "external_ref": job.ref,
        "stage": job.stage,
        "attended_minutes": job.attended,
        "machine_minutes": job.machine,
        "exposure_minutes": job.exposure,
        "severity": job.severity,
        "skills": list(job.skills),
        "capabilities": list(job.capabilities),
        "pools": list(job.pools),
        "after": [a for a in job.after if "/" not in a or a.split("/")[0] in present],
    }
    if job.workstation_minutes:
        body["workstation_minutes"] = dict(job.workstation_minutes)
    return body


def sizes() -> tuple[str, ...]:
    return tuple(s for s in SIZES if s != "large")
