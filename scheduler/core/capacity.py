"""Capacity and the bottleneck: how busy each kind of resource is in a plan, and what holds it up.

Pure arithmetic over a snapshot and a plan (docs/architecture.md §5.10). Every figure is in minutes
over the horizon:

- ``available``: what the resources offer. Examiners: their availability (shifts minus absences).
  Workstations: availability times capacity. A licence pool: capacity times the horizon.
- ``in_shifts``: the part of ``available`` inside the lab's shift hours (the union of every
  examiner's availability). A job with an attended part starts only when an examiner is there,
  so a workstation or licence held overnight by a long job is still only useful in shifts.
- ``demand``: what all the open work of the snapshot needs, planned or not (examiners: attended
  minutes; a capability: nominal machine minutes; a pool: nominal duration, as a pool is held
  for the whole job).
- ``planned`` and ``planned_in_shifts``: what the plan uses, in all and inside shift hours.
- ``waiting``: left-out jobs that need the resource themselves.

The bottleneck is the resource with left-out work that is busiest in shift hours; the jobs that
wait for it are the left-out jobs downstream of its own left-out jobs.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from scheduler.core.plan import Assignment, Plan
from scheduler.core.snapshot import Interval, Job, Snapshot

EXAMINERS = "examiners"
KINDS = ("examiner", "skill", "capability", "pool")


@dataclass(frozen=True)
class Load:
    """One resource or group of resources over the horizon (minutes)."""

    kind: str  # "examiners" (all of them), "examiner", "skill", "capability" or "pool"
    id: str
    units: int  # examiners, workstation capacity or licences
    available: int
    in_shifts: int
    demand: int
    planned: int
    planned_in_shifts: int
    waiting: int = 0

    @property
    def share(self) -> float | None:
        """Planned over available: how busy it is over the whole horizon."""
        return _rate(self.planned, self.available)

    @property
    def shift_share(self) -> float | None:
        """Planned inside shift hours over what it offers in them."""
        return _rate(self.planned_in_shifts, self.in_shifts)

    @property
    def pressure(self) -> float | None:
        """Demand over available: above 1, the horizon cannot hold the open work."""
        return _rate(self.demand, self.available)

    def to_json(self) -> dict[str, object]:
        return {
            "kind": self.kind,
            "id": self.id,
            "units": self.units,
            "available_minutes": self.available,
            "in_shifts_minutes": self.in_shifts,
            "demand_minutes": self.demand,
            "planned_minutes": self.planned,
            "planned_in_shifts_minutes": self.planned_in_shifts,
            "share": self.share,
            "shift_share": self.shift_share,
            "pressure": self.pressure,
            "waiting_jobs": self.waiting,
        }


@dataclass(frozen=True)
class Bottleneck:
    kind: str
    id: str
    shift_share: float | None
    examiner_share: float | None
    waiting_behind: int
    waiting_by_stage: Mapping[str, int] = field(default_factory=dict)
    blocked: int = 0  # left-out jobs that need the resource themselves
    blocked_stage: str | None = None  # the most common stage among them


@dataclass(frozen=True)
class Capacity:
    horizon: int
    shift_minutes: int
    examiners: Load
    loads: tuple[Load, ...]  # per examiner, skill, capability and pool
    bottleneck: Bottleneck | None
    unscheduled: int

    def of_kind(self, kind: str) -> list[Load]:
        return [load for load in self.loads if load.kind == kind]


def _rate(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def _length(intervals: Iterable[Interval]) -> int:
    return sum(b - a for a, b in intervals)


def union(lists: Iterable[Sequence[Interval]]) -> tuple[Interval, ...]:
    """The union of interval lists, as sorted disjoint intervals."""
    spans = sorted(span for intervals in lists for span in intervals if span[1] > span[0])
    merged: list[list[int]] = []
    for a, b in spans:
        if merged and a <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], b)
        else:
            merged.append([a, b])
    return tuple((a, b) for a, b in merged)


def overlap(start: int, end: int, intervals: Sequence[Interval]) -> int:
    """Minutes of ``[start, end)`` inside ``intervals`` (sorted, disjoint)."""
    return sum(max(0, min(end, b) - max(start, a)) for a, b in intervals if a < end and b > start)


def intersect(first: Sequence[Interval], second: Sequence[Interval]) -> int:
    return sum(overlap(a, b, second) for a, b in first)


def analyse(snapshot: Snapshot, plan: Plan, stage_of: Mapping[str, str] | None = None) -> Capacity:
    """Loads per examiner, skill, capability and pool, and the bottleneck, of ``plan``."""
    stage_of = stage_of or {}
    jobs = {job.id: job for job in snapshot.jobs}
    assigned: dict[str, Assignment] = {a.job: a for a in plan.assignments if a.job in jobs}
    left_out = [job for job in snapshot.jobs if job.id not in assigned]
    shifts = union(e.available for e in snapshot.examiners)
    shift_minutes = _length(shifts)
    horizon = ((0, snapshot.horizon),)

    attended: dict[str, int] = defaultdict(int)
    machine: dict[str, int] = defaultdict(int)
    machine_in_shifts: dict[str, int] = defaultdict(int)
    pool_held: dict[str, int] = defaultdict(int)
    pool_in_shifts: dict[str, int] = defaultdict(int)
    for a in assigned.values():
        job = jobs[a.job]
        if a.examiner is not None:
            attended[a.examiner] += job.attended
        if a.workstation is not None:
            minutes = job.machine_on(a.workstation)
            machine[a.workstation] += minutes
            machine_in_shifts[a.workstation] += overlap(a.start, a.start + minutes, shifts)
        for pool in job.pools:
            pool_held[pool] += a.end - a.start
            pool_in_shifts[pool] += overlap(a.start, a.end, shifts)

    loads: list[Load] = []
    for e in snapshot.examiners:
        available = _length(e.available)
        loads.append(
            Load(
                "examiner",
                e.id,
                1,
                available,
                available,
                sum(job.attended for job in snapshot.jobs if job.examiners == (e.id,)),
                attended[e.id],
                attended[e.id],
                sum(1 for job in left_out if job.examiners == (e.id,)),
            )
        )
    for skill in sorted({s for e in snapshot.examiners for s in e.skills} | _skills(snapshot)):
        holders = [e for e in snapshot.examiners if skill in e.skills]
        available = sum(_length(e.available) for e in holders)
        busy = sum(attended[e.id] for e in holders)
        loads.append(
            Load(
                "skill",
                skill,
                len(holders),
                available,
                available,
                sum(job.attended for job in snapshot.jobs if skill in job.skills),
                busy,
                busy,
                sum(1 for job in left_out if skill in job.skills),
            )
        )
    capabilities = {c for w in snapshot.workstations for c in w.capabilities}
    capabilities |= {c for job in snapshot.jobs for c in job.capabilities}
    for capability in sorted(capabilities):
        holders_ws = [w for w in snapshot.workstations if capability in w.capabilities]
        loads.append(
            Load(
                "capability",
                capability,
                sum(w.capacity for w in holders_ws),
                sum(_length(w.available) * w.capacity for w in holders_ws),
                sum(intersect(w.available, shifts) * w.capacity for w in holders_ws),
                sum(job.machine for job in snapshot.jobs if capability in job.capabilities),
                sum(machine[w.id] for w in holders_ws),
                sum(machine_in_shifts[w.id] for w in holders_ws),
                sum(1 for job in left_out if capability in job.capabilities),
            )
        )
    for licences in snapshot.pools:
        loads.append(
            Load(
                "pool",
                licences.id,
                licences.capacity,
                licences.capacity * _length(horizon),
                licences.capacity * shift_minutes,
                sum(job.duration_on(None) for job in snapshot.jobs if licences.id in job.pools),
                pool_held[licences.id],
                pool_in_shifts[licences.id],
                sum(1 for job in left_out if licences.id in job.pools),
            )
        )
    total_available = sum(_length(e.available) for e in snapshot.examiners)
    total_busy = sum(attended.values())
    examiners = Load(
        EXAMINERS,
        EXAMINERS,
        len(snapshot.examiners),
        total_available,
        total_available,
        sum(job.attended for job in snapshot.jobs),
        total_busy,
        total_busy,
        sum(1 for job in left_out if job.attended > 0),
    )
    return Capacity(
        horizon=snapshot.horizon,
        shift_minutes=shift_minutes,
        examiners=examiners,
        loads=tuple(loads),
        bottleneck=_bottleneck(loads, examiners, left_out, stage_of),
        unscheduled=len(left_out),
    )


def _skills(snapshot: Snapshot) -> set[str]:
    return {s for job in snapshot.jobs for s in job.skills}


def needs(job: Job, load: Load) -> bool:
    if load.kind == "skill":
        return load.id in job.skills
    if load.kind == "capability":
        return load.id in job.capabilities
    if load.kind == "pool":
        return load.id in job.pools
    if load.kind == "examiner":
        return job.examiners == (load.id,)
    return job.attended > 0


def _bottleneck(
    loads: Sequence[Load],
    examiners: Load,
    left_out: Sequence[Job],
    stage_of: Mapping[str, str],
) -> Bottleneck | None:
    """The busiest resource in shift hours among those with work left out (groups, not people)."""
    candidates = [
        load
        for load in loads
        if load.kind in ("skill", "capability", "pool") and load.waiting and load.in_shifts
    ]
    if not candidates:
        return None
    # Ties go to the scarcer kind: a pool limits every workstation it runs on.
    order = {"pool": 0, "capability": 1, "skill": 2}
    best = max(candidates, key=lambda load: (load.shift_share or 0.0, -order[load.kind]))
    blocked = {job.id for job in left_out if needs(job, best)}
    behind = _downstream(left_out, blocked)
    stages = Counter(stage_of.get(job_id, "job") for job_id in behind)
    own = Counter(stage_of[job_id] for job_id in blocked if job_id in stage_of).most_common(1)
    return Bottleneck(
        kind=best.kind,
        id=best.id,
        shift_share=best.shift_share,
        examiner_share=examiners.share,
        waiting_behind=len(behind),
        waiting_by_stage=dict(stages.most_common()),
        blocked=len(blocked),
        blocked_stage=own[0][0] if own else None,
    )


def _downstream(left_out: Sequence[Job], blocked: set[str]) -> set[str]:
    """Left-out jobs that wait, through their predecessors, for a job in ``blocked``."""
    successors: dict[str, list[str]] = defaultdict(list)
    for job in left_out:
        for pred in job.after:
            successors[pred].append(job.id)
    seen: set[str] = set()
    stack = list(blocked)
    while stack:
        for nxt in successors.get(stack.pop(), ()):
            if nxt not in seen and nxt not in blocked:
                seen.add(nxt)
                stack.append(nxt)
    return seen


def capacity_to_json(capacity: Capacity) -> dict[str, object]:
    """The JSON form stored with a schedule version (``kpis.capacity``) and served by the API."""
    b = capacity.bottleneck
    return {
        "horizon_minutes": capacity.horizon,
        "shift_minutes": capacity.shift_minutes,
        "unscheduled_jobs": capacity.unscheduled,
        "examiners": capacity.examiners.to_json(),
        "by_examiner": [load.to_json() for load in capacity.of_kind("examiner")],
        "by_skill": [load.to_json() for load in capacity.of_kind("skill")],
        "by_capability": [load.to_json() for load in capacity.of_kind("capability")],
        "by_pool": [load.to_json() for load in capacity.of_kind("pool")],
        "bottleneck": None
        if b is None
        else {
            "kind": b.kind,
            "id": b.id,
            "shift_share": b.shift_share,
            "examiner_share": b.examiner_share,
            "waiting_behind": b.waiting_behind,
            "waiting_by_stage": dict(b.waiting_by_stage),
            "blocked": b.blocked,
            "blocked_stage": b.blocked_stage,
        },
    }
