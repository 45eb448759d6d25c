"""What-if: the lab changed on paper, pure functions over a snapshot (docs/architecture.md §5.11).

`apply_changes` returns a new snapshot with examiners or workstations added or removed, licence
pools resized, overtime after each shift, weekend cover on closed days and new due times. The
stored lab is never touched: a preview solve plans the changed snapshot and is compared with the
published schedule. References the snapshot does not know are refused with `WhatIfError` naming
the field; the result is checked as every built Snapshot is (docs/architecture.md §6.3), so the
engine gets a valid lab.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace

from scheduler.core.fields import FieldError
from scheduler.core.snapshot import (
    Examiner,
    Interval,
    Job,
    Pin,
    Pool,
    Snapshot,
    Workstation,
)

ADDED_PREFIX = "whatif-"


class WhatIfError(FieldError):
    """A change that names what the snapshot does not have; ``field`` is its path."""


@dataclass(frozen=True)
class AddExaminers:
    count: int
    skills: frozenset[str]
    like: str | None = None  # an examiner whose shifts and exposure caps they get
    max_severity: int | None = None


@dataclass(frozen=True)
class AddWorkstations:
    count: int
    capabilities: frozenset[str]
    capacity: int = 1


@dataclass(frozen=True)
class WeekendCover:
    """Who comes in on closed days (no examiner available all day), from when and how long."""

    examiners: tuple[str, ...]
    start: int  # minutes after the day's local midnight
    minutes: int


@dataclass(frozen=True)
class Changes:
    add_examiners: tuple[AddExaminers, ...] = ()
    remove_examiners: tuple[str, ...] = ()
    add_workstations: tuple[AddWorkstations, ...] = ()
    remove_workstations: tuple[str, ...] = ()
    licences: Mapping[str, int] = field(default_factory=dict)  # pool -> new capacity
    overtime_minutes: int = 0  # added after each shift window
    overtime_examiners: tuple[str, ...] | None = None  # None: every examiner
    weekend_cover: WeekendCover | None = None
    due: Mapping[str, int] = field(default_factory=dict)  # job -> new due time


def _known(ids: tuple[str, ...], known: set[str], path: str, what: str) -> None:
    for index, ident in enumerate(ids):
        if ident not in known:
            raise WhatIfError(f"{path}[{index}]", f"{what} {ident!r} is not in the lab")


def extend(windows: tuple[Interval, ...], minutes: int, horizon: int) -> tuple[Interval, ...]:
    """Each window ``minutes`` longer, never into the next window nor past the horizon."""
    out: list[Interval] = []
    for index, (a, b) in enumerate(windows):
        limit = windows[index + 1][0] if index + 1 < len(windows) else horizon
        out.append((a, max(b, min(b + minutes, limit))))
    return tuple(out)


def closed_days(snapshot: Snapshot) -> list[Interval]:
    """Lab-local days on which no examiner is available at all (weekends, holidays)."""
    return [
        (a, b)
        for a, b in snapshot.days
        if not any(s < b and e > a for ex in snapshot.examiners for s, e in ex.available)
    ]


def _merge(windows: list[Interval]) -> tuple[Interval, ...]:
    merged: list[list[int]] = []
    for a, b in sorted(windows):
        if merged and a <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], b)
        else:
            merged.append([a, b])
    return tuple((a, b) for a, b in merged)


def apply_changes(snapshot: Snapshot, changes: Changes) -> Snapshot:
    """``snapshot`` with ``changes`` made; refuses unknown references with `WhatIfError`."""
    examiners = {e.id: e for e in snapshot.examiners}
    workstations = {w.id: w for w in snapshot.workstations}
    pools = {p.id: p for p in snapshot.pools}
    _known(changes.remove_examiners, set(examiners), "remove_examiners", "examiner")
    _known(changes.remove_workstations, set(workstations), "remove_workstations", "workstation")
    _known(tuple(changes.licences), set(pools), "licences", "licence pool")
    if changes.overtime_examiners is not None:
        _known(changes.overtime_examiners, set(examiners), "overtime.examiners", "examiner")
    if changes.weekend_cover is not None:
        _known(changes.weekend_cover.examiners, set(examiners), "weekend.examiners", "examiner")
    for index, add in enumerate(changes.add_examiners):
        if add.like is not None and add.like not in examiners:
            raise WhatIfError(
                f"add_examiners[{index}].like", f"examiner {add.like!r} is not in the lab"
            )
    jobs = {job.id for job in snapshot.jobs}
    _known(tuple(changes.due), jobs, "due", "job")

    horizon = snapshot.horizon
    closed = closed_days(snapshot)
    new_examiners: list[Examiner] = []
    overtime = (
        set(examiners) if changes.overtime_examiners is None else set(changes.overtime_examiners)
    )
    cover = changes.weekend_cover
    for e in snapshot.examiners:
        if e.id in changes.remove_examiners:
            continue
        available = e.available
        if changes.overtime_minutes and e.id in overtime:
            available = extend(available, changes.overtime_minutes, horizon)
        if cover is not None and e.id in cover.examiners:
            visits = [
                (a + cover.start, min(b, a + cover.start + cover.minutes))
                for a, b in closed
                if a + cover.start < b
            ]
            available = _merge([*available, *visits])
        if available != e.available:
            # Exposure keeps its windows: no review of abuse material in overtime or at weekends.
            e = replace(e, available=available)
        new_examiners.append(e)
    template = snapshot.examiners[0] if snapshot.examiners else None
    number = 0
    for index, add in enumerate(changes.add_examiners):
        like = examiners[add.like] if add.like is not None else template
        if like is None:
            raise WhatIfError(
                f"add_examiners[{index}].like", "the lab has no examiner whose shifts to copy"
            )
        policy = like.exposure
        for _ in range(add.count):
            number += 1
            new_examiners.append(
                Examiner(
                    id=f"{ADDED_PREFIX}examiner-{number}",
                    skills=add.skills,
                    available=like.available,
                    # the same caps and windows, nothing logged yet (a new examiner)
                    exposure=replace(
                        policy,
                        used_by_day={},
                        used_this_week=0,
                        max_severity=(
                            policy.max_severity if add.max_severity is None else add.max_severity
                        ),
                    ),
                )
            )
    new_workstations = [w for w in snapshot.workstations if w.id not in changes.remove_workstations]
    number = 0
    for add_ws in changes.add_workstations:
        for _ in range(add_ws.count):
            number += 1
            new_workstations.append(
                Workstation(
                    id=f"{ADDED_PREFIX}workstation-{number}",
                    capabilities=add_ws.capabilities,
                    capacity=add_ws.capacity,
                    available=((0, horizon),),
                )
            )
    new_pools = tuple(Pool(p.id, changes.licences.get(p.id, p.capacity)) for p in snapshot.pools)
    gone_examiners = set(changes.remove_examiners)
    gone_workstations = set(changes.remove_workstations)
    added = new_workstations[len(new_workstations) - number :] if number else []
    new_jobs = tuple(
        _job(job, gone_examiners, gone_workstations, added, changes.due.get(job.id))
        for job in snapshot.jobs
    )
    previous = tuple(
        p
        for p in snapshot.previous
        if p.examiner not in gone_examiners and p.workstation not in gone_workstations
    )
    changed = replace(
        snapshot,
        examiners=tuple(new_examiners),
        workstations=tuple(new_workstations),
        pools=new_pools,
        jobs=new_jobs,
        previous=previous,
    )
    return changed.check()


def _job(
    job: Job,
    examiners: set[str],
    workstations: set[str],
    added: list[Workstation],
    due: int | None,
) -> Job:
    """A job once examiners or workstations are gone (its pin and allow-lists lose them) or added
    (a job with minutes per workstation runs its nominal machine minutes on a new one)."""
    pin: Pin | None = job.pin
    if pin is not None and (pin.examiner in examiners or pin.workstation in workstations):
        pin = None
    allowed = job.examiners
    if allowed is not None and examiners & set(allowed):
        allowed = tuple(e for e in allowed if e not in examiners)
    by_ws = job.machine_by_workstation
    if by_ws is not None and workstations & set(by_ws):
        by_ws = {w: m for w, m in by_ws.items() if w not in workstations}
    if by_ws is not None and job.capabilities:
        extra = {w.id: job.machine for w in added if job.capabilities <= w.capabilities}
        if extra:
            by_ws = {**by_ws, **extra}
    if (pin, allowed, by_ws, due) == (job.pin, job.examiners, job.machine_by_workstation, None):
        return job
    return replace(
        job,
        pin=pin,
        examiners=allowed,
        machine_by_workstation=by_ws,
        due=job.due if due is None else due,
    )
