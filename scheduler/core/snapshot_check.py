"""The `labq.snapshot/1` contract checked on a built `Snapshot` (docs/architecture.md §6.3).

`Snapshot` runs `check_snapshot` when it is constructed, whatever builds it (the loader, the
generators, a what-if preview, a test's builder, ``dataclasses.replace``), so no Snapshot that
breaks the contract reaches a solver. It checks what `snapshot_from_json` checks of the same data
(`snapshot_to_json` of it), in the same order and with the same readers, so a problem raises the
same `SnapshotError`: the same field path (``jobs[j3].after``) and message. Only what a typed
object cannot get wrong is not repeated: unknown and missing fields, and predecessors absent from
the jobs (a built snapshot lists no ``done``: an absent predecessor is done).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING

from scheduler.core.fields import FieldError, fail, join, kind, read_bool, read_int
from scheduler.core.snapshot import (
    MAX_CAPACITY,
    MAX_CHANGES,
    MAX_DAYS,
    MAX_EXAMINERS,
    MAX_HORIZON,
    MAX_ID_LENGTH,
    MAX_JOBS,
    MAX_MINUTES,
    MAX_POOLS,
    MAX_SEVERITY,
    MAX_WEIGHT,
    MAX_WORKSTATIONS,
    OBJECTIVES,
    Examiner,
    Job,
    Pin,
    Pool,
    PreviousAssignment,
    SnapshotError,
    Workstation,
    _find_cycle,
    _intervals,
    _known,
    _limited,
    _optional_int,
    _text,
    _texts,
)

if TYPE_CHECKING:
    from scheduler.core.snapshot import Snapshot


def check_snapshot(snapshot: Snapshot) -> None:
    """Raise `SnapshotError` naming the first field of ``snapshot`` that breaks the contract."""
    try:
        _check(snapshot)
    except SnapshotError:
        raise
    except FieldError as exc:
        raise SnapshotError(exc.field, exc.message) from None


def _sorted(values: Collection[object]) -> list[object]:
    """A set's items in the order `snapshot_to_json` writes them (sorted, when they sort)."""
    if all(type(value) is str for value in values):
        return sorted(values)  # type: ignore[type-var]  # all str, checked just above
    return list(values)


def _ids(items: Sequence[object], path: str, what: str, cls: type) -> list[str]:
    seen: set[str] = set()
    ids: list[str] = []
    for i, item in enumerate(items):
        if not isinstance(item, cls):
            fail(f"{path}[{i}]", f"expected an object, got {kind(item)}")
        ident = _text(item.id, f"{path}[{i}].id")  # type: ignore[attr-defined]
        if ident in seen:
            fail(f"{path}[{i}].id", f"duplicate {what} id '{ident}'")
        seen.add(ident)
        ids.append(ident)
    return ids


def _check(snapshot: Snapshot) -> None:
    # Collections are read as `snapshot_to_json` writes them (a list of their items).
    examiners_, workstations_, pools_, jobs_, previous_ = (
        list(snapshot.examiners),
        list(snapshot.workstations),
        list(snapshot.pools),
        list(snapshot.jobs),
        list(snapshot.previous),
    )
    _text(snapshot.lab, "lab")
    epoch = _text(snapshot.epoch, "epoch")
    try:
        instant = datetime.fromisoformat(epoch)
    except ValueError:
        fail("epoch", f"not an ISO 8601 date-time: {epoch!r:.60}")
    if instant.utcoffset() is None:
        fail("epoch", f"needs a UTC offset (e.g. {epoch}+00:00): {epoch!r:.60} is naive")
    horizon = read_int(snapshot.horizon, "horizon", 1, MAX_MINUTES)
    if horizon > MAX_HORIZON:
        fail(
            "horizon",
            f"{horizon:,} minutes is beyond the limit of {MAX_HORIZON:,} minutes "
            f"({MAX_HORIZON // 1440} days)",
        )
    objective: object = snapshot.objective
    if not isinstance(objective, str) or objective not in OBJECTIVES:
        fail("objective", f"expected one of {', '.join(OBJECTIVES)}, got {objective!r:.60}")
    days = _intervals(snapshot.days, "days", horizon, nonempty=True, limit=MAX_DAYS)
    _intervals(snapshot.weeks, "weeks", horizon, nonempty=True, limit=MAX_DAYS)

    _limited(examiners_, "examiners", MAX_EXAMINERS, "examiners")
    examiner_ids = _ids(examiners_, "examiners", "examiner", Examiner)
    for examiner in examiners_:
        _examiner(examiner, f"examiners[{examiner.id}]", horizon, len(days))
    _limited(workstations_, "workstations", MAX_WORKSTATIONS, "workstations")
    workstation_ids = _ids(workstations_, "workstations", "workstation", Workstation)
    for ws in workstations_:
        _workstation(ws, f"workstations[{ws.id}]", horizon)
    _limited(pools_, "pools", MAX_POOLS, "pools")
    pool_ids = _ids(pools_, "pools", "pool", Pool)
    for pool in pools_:
        read_int(pool.capacity, f"pools[{pool.id}].capacity", 1, MAX_CAPACITY)

    examiners, workstations, pools = set(examiner_ids), set(workstation_ids), set(pool_ids)
    _limited(jobs_, "jobs", MAX_JOBS, "jobs")
    job_ids = _ids(jobs_, "jobs", "job", Job)
    for job in jobs_:
        _job(job, f"jobs[{job.id}]", examiners, workstations, pools, horizon)
    present = set(job_ids)
    done = sorted({pred for job in jobs_ for pred in job.after if pred not in present})
    _limited(done, "done", MAX_JOBS, "jobs")
    cycle = _find_cycle({job.id: tuple(job.after) for job in jobs_})
    if cycle:
        fail(f"jobs[{cycle[0]}].after", "cycle in predecessors: " + " -> ".join(cycle))

    _limited(previous_, "previous", MAX_JOBS, "assignments")
    seen_previous: set[str] = set()
    for i, item in enumerate(previous_):
        path = f"previous[{i}]"
        if not isinstance(item, PreviousAssignment):
            fail(path, f"expected an object, got {kind(item)}")
        _resource(item.examiner, join(path, "examiner"), examiners, "examiner")
        _resource(item.workstation, join(path, "workstation"), workstations, "workstation")
        _text(item.job, join(path, "job"))
        read_int(item.start, join(path, "start"), 0, MAX_MINUTES)
        read_int(item.changes, join(path, "changes"), 1, MAX_CHANGES)
        read_bool(item.frozen, join(path, "frozen"))
        if item.job in seen_previous:
            fail(f"{path}.job", f"job '{item.job}' has two previous assignments")
        seen_previous.add(item.job)

    for name in ("tardiness", "change", "balance", "continuity"):
        read_int(getattr(snapshot.weights, name), join("weights", name), 0, MAX_WEIGHT)
    read_int(snapshot.frozen_until, "frozen_until", 0, MAX_MINUTES)


def _resource(ident: str | None, path: str, known: set[str], what: str) -> None:
    if ident is not None:
        _known(_text(ident, path), known, path, what)


def _examiner(examiner: Examiner, path: str, horizon: int, n_days: int) -> None:
    _intervals(examiner.available, join(path, "available"), horizon)
    policy, exposure = examiner.exposure, join(path, "exposure")
    _intervals(policy.windows, join(exposure, "windows"), horizon)
    used_path = join(exposure, "used_by_day")
    used = policy.used_by_day
    keys = list(used)
    if all(type(key) is int for key in keys):
        keys.sort()
    for key in keys:
        key_path = f"{used_path}[{key}]"
        if type(key) is not int or key < 0:
            fail(key_path, 'keys must be day indexes written as strings, e.g. "0"')
        if key >= n_days:
            fail(key_path, f"day index {key} is out of range (snapshot has {n_days} days)")
        read_int(used[key], key_path, 0, MAX_MINUTES)
    _optional_int(policy.daily_cap, join(exposure, "daily_cap"), 0, MAX_MINUTES)
    _optional_int(policy.severe_daily_cap, join(exposure, "severe_daily_cap"), 0, MAX_MINUTES)
    _optional_int(policy.weekly_cap, join(exposure, "weekly_cap"), 0, MAX_MINUTES)
    read_int(policy.max_severity, join(exposure, "max_severity"), 0, MAX_SEVERITY)
    read_int(policy.used_this_week, join(exposure, "used_this_week"), 0, MAX_MINUTES)
    _texts(_sorted(examiner.skills), join(path, "skills"))


def _workstation(ws: Workstation, path: str, horizon: int) -> None:
    _intervals(ws.available, join(path, "available"), horizon)
    _texts(_sorted(ws.capabilities), join(path, "capabilities"))
    read_int(ws.capacity, join(path, "capacity"), 1, MAX_CAPACITY)


def _minutes(value: object, low: int = 0, high: int = MAX_MINUTES) -> bool:
    return type(value) is int and low <= value <= high


def _names(values: object) -> bool:
    """A tuple or a frozenset of ids `_texts` accepts."""
    return type(values) in (tuple, frozenset) and all(
        type(v) is str and len(v) <= MAX_ID_LENGTH and v.strip()
        for v in values  # type: ignore[attr-defined]
    )


def _job_keeps_the_contract(
    job: Job, examiners: set[str], workstations: set[str], pools: set[str], horizon: int
) -> bool:
    """True when `_job` would find nothing: the same rules, without building a path for each
    field (most of the check's time, on a lab whose jobs are all fine). Anything it does not
    recognise is left to `_job`, which names the problem."""
    by_ws, pin, allowed = job.machine_by_workstation, job.pin, job.examiners
    return (
        _minutes(job.attended)
        and _minutes(job.machine)
        and _minutes(job.exposure, 0, job.attended)
        and _minutes(job.weight, 0, MAX_WEIGHT)
        and _minutes(job.release, -MAX_MINUTES)
        and (job.due is None or _minutes(job.due, -MAX_MINUTES))
        and _minutes(job.severity, 0, MAX_SEVERITY)
        and type(job.case) is str
        and len(job.case) <= MAX_ID_LENGTH
        and bool(job.case.strip())
        and _names(job.skills)
        and _names(job.capabilities)
        and _names(job.pools)
        and all(p in pools for p in job.pools)
        and len(set(job.pools)) == len(job.pools)
        and _names(job.after)
        and job.id not in job.after
        and (allowed is None or (_names(allowed) and all(e in examiners for e in allowed)))
        and (
            by_ws is None
            or (
                type(by_ws) is dict
                and all(w in workstations and _minutes(m) for w, m in by_ws.items())
            )
        )
        and (
            pin is None
            or (
                type(pin) is Pin
                and (pin.examiner is None or pin.examiner in examiners)
                and (pin.workstation is None or pin.workstation in workstations)
                and _minutes(pin.start, 0, horizon)
            )
        )
    )


def _job(
    job: Job,
    path: str,
    examiners: set[str],
    workstations: set[str],
    pools: set[str],
    horizon: int,
) -> None:
    if _job_keeps_the_contract(job, examiners, workstations, pools, horizon):
        return
    attended = read_int(job.attended, join(path, "attended"), 0, MAX_MINUTES)
    if job.machine_by_workstation is not None:
        mbw_path = join(path, "machine_by_workstation")
        if not isinstance(job.machine_by_workstation, Mapping):
            fail(mbw_path, f"expected an object, got {kind(job.machine_by_workstation)}")
        for ws, minutes in job.machine_by_workstation.items():
            if not isinstance(ws, str):
                fail(mbw_path, "keys must be workstation ids")
            _known(ws, workstations, f"{mbw_path}[{ws}]", "workstation")
            read_int(minutes, f"{mbw_path}[{ws}]", 0, MAX_MINUTES)
    job_pools = _texts(list(job.pools), join(path, "pools"))
    for i, pool in enumerate(job_pools):
        _known(pool, pools, f"{path}.pools[{i}]", "pool")
        if pool in job_pools[:i]:
            fail(f"{path}.pools[{i}]", f"pool '{pool}' listed twice")
    if job.examiners is not None:
        for i, examiner in enumerate(_texts(list(job.examiners), join(path, "examiners"))):
            _known(examiner, examiners, f"{path}.examiners[{i}]", "examiner")
    exposure = read_int(job.exposure, join(path, "exposure"), 0, MAX_MINUTES)
    if exposure > attended:
        fail(
            join(path, "exposure"),
            f"exposure {exposure} exceeds attended {attended}: exposure is part of attended time",
        )
    if job.id in _texts(list(job.after), join(path, "after")):
        fail(join(path, "after"), f"cycle in predecessors: {job.id} -> {job.id}")
    if job.pin is not None:
        pin = join(path, "pin")
        _resource(job.pin.examiner, join(pin, "examiner"), examiners, "examiner")
        _resource(job.pin.workstation, join(pin, "workstation"), workstations, "workstation")
        read_int(job.pin.start, join(pin, "start"), 0, horizon)
    _text(job.case, join(path, "case"))
    read_int(job.weight, join(path, "weight"), 0, MAX_WEIGHT)
    read_int(job.release, join(path, "release"), -MAX_MINUTES, MAX_MINUTES)
    _optional_int(job.due, join(path, "due"), -MAX_MINUTES, MAX_MINUTES)
    read_int(job.machine, join(path, "machine"), 0, MAX_MINUTES)
    _texts(_sorted(job.skills), join(path, "skills"))
    _texts(_sorted(job.capabilities), join(path, "capabilities"))
    read_int(job.severity, join(path, "severity"), 0, MAX_SEVERITY)
