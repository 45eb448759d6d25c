"""One lab's planning problem as plain, immutable data: the `labq.snapshot/1` contract.

All times are integer minutes from the snapshot's epoch; intervals are half-open ``[start, end)``.
The solver, the dispatch baselines and the verifier read only this; nothing here knows about the
database or HTTP, so a production snapshot can be replayed offline.

`snapshot_from_json` is the only way untrusted data becomes a `Snapshot`: it checks every field
of the contract (docs/architecture.md §6) and raises `SnapshotError` naming the offending field
(``jobs[j3].after``), so a malformed file never reaches a solver and never ends in a traceback.
A predecessor absent from the jobs is done, and a document lists such ids in ``done``
(`snapshot_to_json` does), so that a typo in ``after`` is refused rather than taken for finished
work. What is legal but cannot be scheduled (a skill no examiner has) is accepted;
`snapshot_warnings` lists it, and plans carry it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from functools import cached_property
from pathlib import Path
from types import MappingProxyType

from scheduler.core.fields import (
    FieldError,
    fail,
    join,
    kind,
    parse_json,
    read_array,
    read_bool,
    read_int,
    read_object,
)
from scheduler.core.plan import PlanWarning
from scheduler.core.rules.names import FROZEN, PIN

SNAPSHOT_FORMAT = "labq.snapshot/1"

WEIGHTED_TARDINESS = "weighted_tardiness"
MAKESPAN = "makespan"
OBJECTIVES = (WEIGHTED_TARDINESS, MAKESPAN)

# Sane bounds: keep every product the solvers form (weight x minutes x jobs) inside int64.
MAX_MINUTES = 10**9
MAX_WEIGHT = 10**6
#: The most changes one published assignment's move may count for.
MAX_CHANGES = 1000
MAX_CAPACITY = 10**6
MAX_SEVERITY = 3
MAX_ID_LENGTH = 200

# The size of a lab the engine promises to plan within a time limit (plus its allowance) and
# 4 GB of memory: `labq bench limits` solves snapshots at these limits. A snapshot beyond one is
# refused naming the limit, rather than left to run for minutes or exhaust the memory.
#: 60 weeks of minutes: the loader's longest horizon (60 working days, one a week) fits.
MAX_HORIZON = 60 * 7 * 24 * 60
#: Listed days and weeks, and the windows of one examiner, workstation or exposure policy.
MAX_DAYS = 60 * 7
MAX_WINDOWS = 5 * MAX_DAYS
MAX_JOBS = 20_000
MAX_EXAMINERS = 500
MAX_WORKSTATIONS = 500
MAX_POOLS = 500

Interval = tuple[int, int]


@dataclass(frozen=True)
class ExposurePolicy:
    """Limits on an examiner's exposure to abuse material (rule 5, docs/architecture.md §3.5).

    A cap of ``None`` means no cap. ``windows`` are the intervals in which exposure work may start
    and run (before the daily cut-off); left empty they take the examiner's availability (filled in
    when the `Examiner` is built, so readers can use them as they are).
    ``used_by_day`` maps an index into ``Snapshot.days`` to exposure minutes already logged that
    day; they count against that day's cap and against the week the day starts in.
    ``used_this_week`` is exposure logged earlier in the first week, before any day listed in
    ``used_by_day``; it counts against the first week only. Logged minutes carry no severity, so
    they do not count against ``severe_daily_cap``.
    """

    daily_cap: int | None = None
    severe_daily_cap: int | None = None
    weekly_cap: int | None = None
    windows: tuple[Interval, ...] = ()
    max_severity: int = 3
    used_by_day: Mapping[int, int] = field(default_factory=dict)
    used_this_week: int = 0


@dataclass(frozen=True)
class Examiner:
    id: str
    skills: frozenset[str]
    available: tuple[Interval, ...]
    exposure: ExposurePolicy

    def __post_init__(self) -> None:
        # Exposure windows default to availability (docs/architecture.md §6.3); resolve it once,
        # here, so that every solver and the verifier read the same windows.
        if not self.exposure.windows and self.available:
            object.__setattr__(self, "exposure", replace(self.exposure, windows=self.available))


@dataclass(frozen=True)
class Workstation:
    id: str
    capabilities: frozenset[str]
    capacity: int
    available: tuple[Interval, ...]


@dataclass(frozen=True)
class Pool:
    """Floating licences shared by jobs; at most ``capacity`` jobs hold one at once."""

    id: str
    capacity: int


@dataclass(frozen=True)
class Pin:
    """A fixed placement a supervisor set (or an in-progress job): kept exactly."""

    examiner: str | None
    workstation: str | None
    start: int


@dataclass(frozen=True)
class KeptPlacement:
    """A placement every plan must keep exactly (hard rule 6): a pin (``kind`` "pin") or a
    published assignment starting before ``frozen_until`` ("frozen")."""

    job: str
    examiner: str | None
    workstation: str | None
    start: int
    kind: str


SEVERE = 3
"""The severity (top of the 0-3 scale) whose exposure also counts against the severe daily cap."""


@dataclass(frozen=True)
class Job:
    """One stage of work on one device.

    The job needs an examiner iff ``attended > 0`` and a workstation iff ``machine > 0`` or
    ``machine_by_workstation`` is given (which then restricts the workstation and sets its
    machine minutes). ``examiners``, when not ``None``, restricts the examiner.
    """

    id: str
    case: str
    weight: int
    release: int
    due: int | None
    attended: int
    machine: int
    machine_by_workstation: Mapping[str, int] | None = None
    skills: frozenset[str] = frozenset()
    capabilities: frozenset[str] = frozenset()
    pools: tuple[str, ...] = ()
    examiners: tuple[str, ...] | None = None
    exposure: int = 0
    severity: int = 0
    after: tuple[str, ...] = ()
    pin: Pin | None = None

    @property
    def needs_examiner(self) -> bool:
        return self.attended > 0

    @property
    def is_severe(self) -> bool:
        """Its exposure counts against the severe daily cap too (`SEVERE`)."""
        return self.severity >= SEVERE

    @property
    def needs_workstation(self) -> bool:
        return self.machine > 0 or self.machine_by_workstation is not None

    def machine_on(self, workstation: str | None) -> int:
        """Machine minutes on ``workstation`` (a faster box may image faster)."""
        if workstation is not None and self.machine_by_workstation is not None:
            return self.machine_by_workstation[workstation]
        return self.machine

    def duration_on(self, workstation: str | None) -> int:
        """end - start when run on ``workstation``: the longer of the attended and machine parts."""
        return max(self.attended, self.machine_on(workstation))

    @property
    def min_duration(self) -> int:
        """Shortest possible duration over all workstations the job may use."""
        if self.machine_by_workstation:
            return max(self.attended, min(self.machine_by_workstation.values()))
        return max(self.attended, self.machine)


@dataclass(frozen=True)
class PreviousAssignment:
    """An assignment of the currently published schedule.

    ``changes`` is how many changes moving it counts for in the stability term: examiners plan
    their next days around what is published, so the loader counts that work more than next
    week's (docs/architecture.md §4). ``frozen`` False lets a placement that starts before
    ``frozen_until`` move all the same (its move still counts its changes): the loader gives up
    such frozen room to urgent work that has none before its target start (§7.9)."""

    job: str
    examiner: str | None
    workstation: str | None
    start: int
    changes: int = 1
    frozen: bool = True


@dataclass(frozen=True)
class Weights:
    """Soft-term weights (docs/architecture.md §4), configurable per lab."""

    tardiness: int = 1
    change: int = 50
    balance: int = 5
    continuity: int = 2


@dataclass(frozen=True)
class Snapshot:
    lab: str
    epoch: str
    horizon: int
    objective: str  # "weighted_tardiness" or "makespan"
    days: tuple[Interval, ...]
    weeks: tuple[Interval, ...]
    examiners: tuple[Examiner, ...]
    workstations: tuple[Workstation, ...]
    pools: tuple[Pool, ...]
    jobs: tuple[Job, ...]
    previous: tuple[PreviousAssignment, ...] = ()
    frozen_until: int = 0
    weights: Weights = Weights()

    def check(self) -> Snapshot:
        """This snapshot, once it keeps the contract; raises the `SnapshotError` that
        `snapshot_from_json` of it would raise (same field path and message), far cheaper than
        that round trip. Every builder checks what it builds: ``Snapshot(...).check()``
        (docs/architecture.md §6.3, `scheduler.core.snapshot_check`)."""
        from scheduler.core.snapshot_check import check_snapshot

        check_snapshot(self)
        return self

    # Indexes, built once per snapshot on first use and read-only: every consumer reads these
    # rather than building its own id -> object dict.
    @cached_property
    def jobs_by_id(self) -> Mapping[str, Job]:
        return MappingProxyType({job.id: job for job in self.jobs})

    @cached_property
    def examiners_by_id(self) -> Mapping[str, Examiner]:
        return MappingProxyType({e.id: e for e in self.examiners})

    @cached_property
    def workstations_by_id(self) -> Mapping[str, Workstation]:
        return MappingProxyType({w.id: w for w in self.workstations})

    @cached_property
    def kept(self) -> Mapping[str, KeptPlacement]:
        """Job id -> the placement it must keep (a pin governs over a frozen assignment): pins
        first, then frozen assignments, each in order of start. Reserving in that order matters:
        a workstation of capacity 2 takes any set of placements that never overlaps three deep
        when they come in order of start, but can refuse one of them in another order."""
        kept: dict[str, KeptPlacement] = {}
        for job in sorted((j for j in self.jobs if j.pin is not None), key=_pin_order):
            assert job.pin is not None
            pin = job.pin
            kept[job.id] = KeptPlacement(job.id, pin.examiner, pin.workstation, pin.start, PIN)
        present = self.jobs_by_id
        for prev in sorted(self.previous, key=lambda p: (p.start, p.job)):
            if (
                prev.job in present
                and prev.job not in kept
                and prev.frozen
                and prev.start < self.frozen_until
            ):
                kept[prev.job] = KeptPlacement(
                    prev.job, prev.examiner, prev.workstation, prev.start, FROZEN
                )
        return MappingProxyType(kept)

    @cached_property
    def successors(self) -> Mapping[str, tuple[str, ...]]:
        """Job id -> the ids of the jobs that list it in ``after`` (present jobs only)."""
        found: dict[str, list[str]] = {job.id: [] for job in self.jobs}
        for job in self.jobs:
            for pred in job.after:
                if pred in found:
                    found[pred].append(job.id)
        return MappingProxyType({job: tuple(succ) for job, succ in found.items()})

    def day_of(self, minute: int) -> int | None:
        """Index of the lab-local day containing ``minute``; ``None`` if no listed day does.

        A job counts against the exposure caps of the day it starts in; a start outside every
        listed day counts against no daily cap.
        """
        return _index_of(self.days, minute)

    def week_of(self, minute: int) -> int | None:
        """Index of the week containing ``minute``; ``None`` if no listed week does."""
        return _index_of(self.weeks, minute)

    def logged_day_exposure(self, examiner: Examiner) -> dict[int, int]:
        """Exposure minutes already logged per day index (counts against the daily cap)."""
        return {day: minutes for day, minutes in examiner.exposure.used_by_day.items() if minutes}

    def logged_week_exposure(self, examiner: Examiner) -> dict[int, int]:
        """Exposure minutes already logged per week index (counts against the weekly cap).

        ``used_this_week`` goes to the first week; each ``used_by_day`` entry to the week its
        day starts in.
        """
        logged: dict[int, int] = {}
        policy = examiner.exposure
        if policy.used_this_week and self.weeks:
            logged[0] = policy.used_this_week
        for day, minutes in policy.used_by_day.items():
            if not minutes or not 0 <= day < len(self.days):
                continue
            week = self.week_of(self.days[day][0])
            if week is not None:
                logged[week] = logged.get(week, 0) + minutes
        return logged


def _index_of(intervals: Sequence[Interval], minute: int) -> int | None:
    for index, (start, end) in enumerate(intervals):
        if start <= minute < end:
            return index
    return None


# --------------------------------------------------------------------------------------------
# JSON contract
# --------------------------------------------------------------------------------------------


def _pin_order(job: Job) -> tuple[int, str]:
    assert job.pin is not None
    return job.pin.start, job.id


class SnapshotError(FieldError):
    """A snapshot that breaks the `labq.snapshot/1` contract.

    ``field`` is a JSON path such as ``jobs[j3].machine_by_workstation`` (ids in brackets where
    the item has a readable id, list positions otherwise); empty for whole-document errors.
    """


def _optional_int(value: object, path: str, low: int, high: int) -> int | None:
    return None if value is None else read_int(value, path, low, high)


def _text(value: object, path: str, max_length: int = MAX_ID_LENGTH) -> str:
    if not isinstance(value, str):
        fail(path, f"expected a string, got {kind(value)}")
    if not value.strip():
        fail(path, "must not be empty")
    if len(value) > max_length:
        fail(path, f"longer than {max_length} characters")
    return value


def _texts(value: object, path: str) -> tuple[str, ...]:
    items = read_array(value, path)
    if all(type(item) is str and len(item) <= MAX_ID_LENGTH and item.strip() for item in items):
        return tuple(items)  # type: ignore[arg-type]  # the usual case, checked without paths
    return tuple(_text(item, f"{path}[{i}]") for i, item in enumerate(items))


def _interval(value: object, path: str, horizon: int) -> Interval:
    items = read_array(value, path)
    if len(items) != 2:
        fail(path, f"expected [start, end], got {len(items)} numbers")
    start = read_int(items[0], f"{path}[0]", -MAX_MINUTES, MAX_MINUTES)
    end = read_int(items[1], f"{path}[1]", -MAX_MINUTES, MAX_MINUTES)
    if end < start:
        fail(path, f"end {end} is before start {start}")
    if start < 0 or end > horizon:
        fail(path, f"[{start}, {end}] is outside [0, horizon={horizon}]")
    return (start, end)


def _limited(value: object, path: str, limit: int, what: str) -> Sequence[object]:
    """An array of at most ``limit`` items (a limit of the contract, see ``MAX_JOBS``)."""
    items = read_array(value, path)
    if len(items) > limit:
        fail(path, f"{len(items):,} {what} is beyond the limit of {limit:,} {what}")
    return items


def _intervals(
    value: object,
    path: str,
    horizon: int,
    *,
    nonempty: bool = False,
    limit: int = MAX_WINDOWS,
) -> tuple[Interval, ...]:
    """Intervals in time order, not overlapping (touching is fine): windows, days, weeks."""
    result: list[Interval] = []
    for i, item in enumerate(_limited(value, path, limit, "intervals")):
        start, end = _interval(item, f"{path}[{i}]", horizon)
        if nonempty and end == start:
            fail(f"{path}[{i}]", "must not be empty")
        if result and start < result[-1][1]:
            fail(f"{path}[{i}]", "overlaps or precedes the previous interval; list in time order")
        result.append((start, end))
    return tuple(result)


def _ids(items: Sequence[object], path: str, what: str) -> list[str]:
    """The ids of a list of objects, rejecting missing, malformed and duplicate ones."""
    seen: set[str] = set()
    ids: list[str] = []
    for i, item in enumerate(items):
        if not isinstance(item, dict):
            fail(f"{path}[{i}]", f"expected an object, got {kind(item)}")
        if "id" not in item:
            fail(f"{path}[{i}].id", "missing required field")
        ident = _text(item["id"], f"{path}[{i}].id")
        if ident in seen:
            fail(f"{path}[{i}].id", f"duplicate {what} id '{ident}'")
        seen.add(ident)
        ids.append(ident)
    return ids


def _known(ident: str, known: Mapping[str, object] | set[str], path: str, what: str) -> str:
    if ident not in known:
        fail(path, f"unknown {what} '{ident}'")
    return ident


def _exposure(
    value: object, path: str, horizon: int, n_days: int, available: tuple[Interval, ...]
) -> ExposurePolicy:
    fields = read_object(
        value,
        path,
        (),
        (
            "daily_cap",
            "severe_daily_cap",
            "weekly_cap",
            "windows",
            "max_severity",
            "used_by_day",
            "used_this_week",
        ),
    )
    windows = available
    if fields.get("windows") is not None:
        windows = _intervals(fields["windows"], join(path, "windows"), horizon)
    used_by_day: dict[int, int] = {}
    raw_used = fields.get("used_by_day")
    if raw_used is not None:
        used_path = join(path, "used_by_day")
        if not isinstance(raw_used, dict):
            fail(used_path, f"expected an object, got {kind(raw_used)}")
        for key, minutes in raw_used.items():
            key_path = f"{used_path}[{key}]"
            if not isinstance(key, str) or not key.isdigit() or not key.isascii():
                fail(key_path, 'keys must be day indexes written as strings, e.g. "0"')
            day = int(key)
            if day >= n_days:
                fail(key_path, f"day index {day} is out of range (snapshot has {n_days} days)")
            used_by_day[day] = read_int(minutes, key_path, 0, MAX_MINUTES)
    max_severity = fields.get("max_severity", MAX_SEVERITY)
    return ExposurePolicy(
        daily_cap=_optional_int(fields.get("daily_cap"), join(path, "daily_cap"), 0, MAX_MINUTES),
        severe_daily_cap=_optional_int(
            fields.get("severe_daily_cap"), join(path, "severe_daily_cap"), 0, MAX_MINUTES
        ),
        weekly_cap=_optional_int(
            fields.get("weekly_cap"), join(path, "weekly_cap"), 0, MAX_MINUTES
        ),
        windows=windows,
        max_severity=read_int(max_severity, join(path, "max_severity"), 0, MAX_SEVERITY),
        used_by_day=used_by_day,
        used_this_week=read_int(
            fields.get("used_this_week", 0), join(path, "used_this_week"), 0, MAX_MINUTES
        ),
    )


def _examiner(value: object, path: str, ident: str, horizon: int, n_days: int) -> Examiner:
    fields = read_object(value, path, ("id", "available"), ("skills", "exposure"))
    available = _intervals(fields["available"], join(path, "available"), horizon)
    exposure = ExposurePolicy(windows=available)
    if fields.get("exposure") is not None:
        exposure = _exposure(fields["exposure"], join(path, "exposure"), horizon, n_days, available)
    return Examiner(
        id=ident,
        skills=frozenset(_texts(fields.get("skills", []), join(path, "skills"))),
        available=available,
        exposure=exposure,
    )


def _workstation(value: object, path: str, ident: str, horizon: int) -> Workstation:
    fields = read_object(value, path, ("id",), ("capabilities", "capacity", "available"))
    available: tuple[Interval, ...] = ((0, horizon),)
    if fields.get("available") is not None:
        available = _intervals(fields["available"], join(path, "available"), horizon)
    return Workstation(
        id=ident,
        capabilities=frozenset(_texts(fields.get("capabilities", []), join(path, "capabilities"))),
        capacity=read_int(fields.get("capacity", 1), join(path, "capacity"), 1, MAX_CAPACITY),
        available=available,
    )


def _pool(value: object, path: str, ident: str) -> Pool:
    fields = read_object(value, path, ("id", "capacity"))
    return Pool(
        id=ident, capacity=read_int(fields["capacity"], join(path, "capacity"), 1, MAX_CAPACITY)
    )


@dataclass(frozen=True)
class _Known:
    """Ids a job may refer to."""

    examiners: set[str]
    workstations: set[str]
    pools: set[str]
    horizon: int


def _pin(value: object, path: str, known: _Known) -> Pin:
    fields = read_object(value, path, ("start",), ("examiner", "workstation"))
    examiner = workstation = None
    if fields.get("examiner") is not None:
        examiner_path = join(path, "examiner")
        examiner = _known(
            _text(fields["examiner"], examiner_path), known.examiners, examiner_path, "examiner"
        )
    if fields.get("workstation") is not None:
        ws_path = join(path, "workstation")
        workstation = _known(
            _text(fields["workstation"], ws_path), known.workstations, ws_path, "workstation"
        )
    return Pin(
        examiner=examiner,
        workstation=workstation,
        start=read_int(fields["start"], join(path, "start"), 0, known.horizon),
    )


_JOB_REQUIRED = ("id", "case", "weight", "release", "attended", "machine")
_JOB_OPTIONAL = (
    "due",
    "machine_by_workstation",
    "skills",
    "capabilities",
    "pools",
    "examiners",
    "exposure",
    "severity",
    "after",
    "pin",
)


def _job(value: object, path: str, ident: str, known: _Known) -> Job:
    fields = read_object(value, path, _JOB_REQUIRED, _JOB_OPTIONAL)
    attended = read_int(fields["attended"], join(path, "attended"), 0, MAX_MINUTES)

    by_ws: dict[str, int] | None = None
    if fields.get("machine_by_workstation") is not None:
        mbw_path = join(path, "machine_by_workstation")
        raw = fields["machine_by_workstation"]
        if not isinstance(raw, dict):
            fail(mbw_path, f"expected an object, got {kind(raw)}")
        by_ws = {}
        for ws, minutes in raw.items():
            if not isinstance(ws, str):
                fail(mbw_path, "keys must be workstation ids")
            _known(ws, known.workstations, f"{mbw_path}[{ws}]", "workstation")
            by_ws[ws] = read_int(minutes, f"{mbw_path}[{ws}]", 0, MAX_MINUTES)

    pools = _texts(fields.get("pools", []), join(path, "pools"))
    for i, pool in enumerate(pools):
        _known(pool, known.pools, f"{path}.pools[{i}]", "pool")
        if pool in pools[:i]:
            fail(f"{path}.pools[{i}]", f"pool '{pool}' listed twice")

    examiners: tuple[str, ...] | None = None
    if fields.get("examiners") is not None:
        examiners = _texts(fields["examiners"], join(path, "examiners"))
        for i, examiner in enumerate(examiners):
            _known(examiner, known.examiners, f"{path}.examiners[{i}]", "examiner")

    exposure = read_int(fields.get("exposure", 0), join(path, "exposure"), 0, MAX_MINUTES)
    if exposure > attended:
        fail(
            join(path, "exposure"),
            f"exposure {exposure} exceeds attended {attended}: exposure is part of attended time",
        )
    after = _texts(fields.get("after", []), join(path, "after"))
    if ident in after:
        fail(join(path, "after"), f"cycle in predecessors: {ident} -> {ident}")
    pin = None
    if fields.get("pin") is not None:
        pin = _pin(fields["pin"], join(path, "pin"), known)

    return Job(
        id=ident,
        case=_text(fields["case"], join(path, "case")),
        weight=read_int(fields["weight"], join(path, "weight"), 0, MAX_WEIGHT),
        release=read_int(fields["release"], join(path, "release"), -MAX_MINUTES, MAX_MINUTES),
        due=_optional_int(fields.get("due"), join(path, "due"), -MAX_MINUTES, MAX_MINUTES),
        attended=attended,
        machine=read_int(fields["machine"], join(path, "machine"), 0, MAX_MINUTES),
        machine_by_workstation=by_ws,
        skills=frozenset(_texts(fields.get("skills", []), join(path, "skills"))),
        capabilities=frozenset(_texts(fields.get("capabilities", []), join(path, "capabilities"))),
        pools=pools,
        examiners=examiners,
        exposure=exposure,
        severity=read_int(fields.get("severity", 0), join(path, "severity"), 0, MAX_SEVERITY),
        after=after,
        pin=pin,
    )


def _find_cycle(after: Mapping[str, tuple[str, ...]]) -> list[str] | None:
    """A cycle of present jobs in the ``after`` graph, as ids ending where they start."""
    state: dict[str, int] = dict.fromkeys(after, 0)  # 0 new, 1 on the current path, 2 done
    for root in after:
        if state[root]:
            continue
        state[root] = 1
        path = [root]
        stack = [iter(after[root])]
        while stack:
            for pred in stack[-1]:
                if pred not in state:  # absent predecessor: already done
                    continue
                if state[pred] == 1:
                    return [*path[path.index(pred) :], pred]
                if state[pred] == 0:
                    state[pred] = 1
                    path.append(pred)
                    stack.append(iter(after[pred]))
                    break
            else:
                state[path.pop()] = 2
                stack.pop()
    return None


def _previous(value: object, path: str, known: _Known) -> PreviousAssignment:
    optional = ("examiner", "workstation", "changes", "frozen")
    fields = read_object(value, path, ("job", "start"), optional)
    examiner = workstation = None
    if fields.get("examiner") is not None:
        examiner_path = join(path, "examiner")
        examiner = _known(
            _text(fields["examiner"], examiner_path), known.examiners, examiner_path, "examiner"
        )
    if fields.get("workstation") is not None:
        ws_path = join(path, "workstation")
        workstation = _known(
            _text(fields["workstation"], ws_path), known.workstations, ws_path, "workstation"
        )
    return PreviousAssignment(
        job=_text(fields["job"], join(path, "job")),
        examiner=examiner,
        workstation=workstation,
        start=read_int(fields["start"], join(path, "start"), 0, MAX_MINUTES),
        changes=read_int(fields.get("changes", 1), join(path, "changes"), 1, MAX_CHANGES),
        frozen=read_bool(fields.get("frozen", True), join(path, "frozen")),
    )


def _previous_to_json(p: PreviousAssignment) -> dict[str, object]:
    out: dict[str, object] = {
        "job": p.job,
        "examiner": p.examiner,
        "workstation": p.workstation,
        "start": p.start,
    }
    if p.changes != 1:
        out["changes"] = p.changes
    if not p.frozen:
        out["frozen"] = False
    return out


def _weights(value: object, path: str) -> Weights:
    names = ("tardiness", "change", "balance", "continuity")
    fields = read_object(value, path, (), names)
    defaults = Weights()
    values = {
        name: read_int(fields.get(name, getattr(defaults, name)), join(path, name), 0, MAX_WEIGHT)
        for name in names
    }
    return Weights(**values)


_TOP_REQUIRED = (
    "format",
    "lab",
    "epoch",
    "horizon",
    "days",
    "weeks",
    "examiners",
    "workstations",
    "jobs",
)
_TOP_OPTIONAL = ("objective", "pools", "previous", "frozen_until", "weights", "done")


def snapshot_from_json(data: object) -> Snapshot:
    """Validate a decoded `labq.snapshot/1` document and build the `Snapshot`.

    Raises `SnapshotError` naming the first offending field; never anything else.
    """
    try:
        return _snapshot_from_json(data)
    except SnapshotError:
        raise
    except FieldError as exc:
        raise SnapshotError(exc.field, exc.message) from None
    except RecursionError:
        raise SnapshotError("", "document is nested too deeply") from None


def _snapshot_from_json(data: object) -> Snapshot:
    if not isinstance(data, dict):
        fail("", f"expected a JSON object, got {kind(data)}")
    if "format" not in data:
        fail("format", f"missing required field (expected '{SNAPSHOT_FORMAT}')")
    if data["format"] != SNAPSHOT_FORMAT:
        fail("format", f"expected '{SNAPSHOT_FORMAT}', got {data['format']!r:.60}")
    top = read_object(data, "", _TOP_REQUIRED, _TOP_OPTIONAL)

    lab = _text(top["lab"], "lab")
    epoch = _text(top["epoch"], "epoch")
    try:
        instant = datetime.fromisoformat(epoch)
    except ValueError:
        fail("epoch", f"not an ISO 8601 date-time: {epoch!r:.60}")
    if instant.utcoffset() is None:
        fail("epoch", f"needs a UTC offset (e.g. {epoch}+00:00): {epoch!r:.60} is naive")
    horizon = read_int(top["horizon"], "horizon", 1, MAX_MINUTES)
    if horizon > MAX_HORIZON:
        fail(
            "horizon",
            f"{horizon:,} minutes is beyond the limit of {MAX_HORIZON:,} minutes "
            f"({MAX_HORIZON // 1440} days)",
        )
    objective = top.get("objective", WEIGHTED_TARDINESS)
    if not isinstance(objective, str) or objective not in OBJECTIVES:
        fail("objective", f"expected one of {', '.join(OBJECTIVES)}, got {objective!r:.60}")
    days = _intervals(top["days"], "days", horizon, nonempty=True, limit=MAX_DAYS)
    weeks = _intervals(top["weeks"], "weeks", horizon, nonempty=True, limit=MAX_DAYS)

    raw_examiners = _limited(top["examiners"], "examiners", MAX_EXAMINERS, "examiners")
    examiner_ids = _ids(raw_examiners, "examiners", "examiner")
    examiners = tuple(
        _examiner(raw, f"examiners[{ident}]", ident, horizon, len(days))
        for ident, raw in zip(examiner_ids, raw_examiners, strict=True)
    )
    raw_workstations = _limited(
        top["workstations"], "workstations", MAX_WORKSTATIONS, "workstations"
    )
    workstation_ids = _ids(raw_workstations, "workstations", "workstation")
    workstations = tuple(
        _workstation(raw, f"workstations[{ident}]", ident, horizon)
        for ident, raw in zip(workstation_ids, raw_workstations, strict=True)
    )
    raw_pools = _limited(top.get("pools", []), "pools", MAX_POOLS, "pools")
    pool_ids = _ids(raw_pools, "pools", "pool")
    pools = tuple(
        _pool(raw, f"pools[{ident}]", ident) for ident, raw in zip(pool_ids, raw_pools, strict=True)
    )

    known = _Known(set(examiner_ids), set(workstation_ids), set(pool_ids), horizon)
    raw_jobs = _limited(top["jobs"], "jobs", MAX_JOBS, "jobs")
    job_ids = _ids(raw_jobs, "jobs", "job")
    jobs = tuple(
        _job(raw, f"jobs[{ident}]", ident, known)
        for ident, raw in zip(job_ids, raw_jobs, strict=True)
    )
    present = set(job_ids)
    done: set[str] = set()
    for i, raw in enumerate(_limited(top.get("done", []), "done", MAX_JOBS, "jobs")):
        ident = _text(raw, f"done[{i}]")
        if ident in present:
            fail(f"done[{i}]", f"job '{ident}' is listed as done and among the jobs")
        done.add(ident)
    for job in jobs:
        for i, pred in enumerate(job.after):
            if pred not in present and pred not in done:
                fail(
                    f"jobs[{job.id}].after[{i}]",
                    f"unknown job '{pred}' (list a finished predecessor in `done`)",
                )
    cycle = _find_cycle({job.id: job.after for job in jobs})
    if cycle:
        fail(f"jobs[{cycle[0]}].after", "cycle in predecessors: " + " -> ".join(cycle))

    previous: list[PreviousAssignment] = []
    seen_previous: set[str] = set()
    for i, raw in enumerate(_limited(top.get("previous", []), "previous", MAX_JOBS, "assignments")):
        item = _previous(raw, f"previous[{i}]", known)
        if item.job in seen_previous:
            fail(f"previous[{i}].job", f"job '{item.job}' has two previous assignments")
        seen_previous.add(item.job)
        previous.append(item)

    weights = Weights()
    if top.get("weights") is not None:
        weights = _weights(top["weights"], "weights")

    return Snapshot(
        lab=lab,
        epoch=epoch,
        horizon=horizon,
        objective=objective,
        days=days,
        weeks=weeks,
        examiners=examiners,
        workstations=workstations,
        pools=pools,
        jobs=jobs,
        previous=tuple(previous),
        frozen_until=read_int(top.get("frozen_until", 0), "frozen_until", 0, MAX_MINUTES),
        weights=weights,
    )


def _intervals_to_json(intervals: Sequence[Interval]) -> list[list[int]]:
    return [[start, end] for start, end in intervals]


def _examiner_to_json(examiner: Examiner) -> dict[str, object]:
    policy = examiner.exposure
    exposure: dict[str, object] = {
        "daily_cap": policy.daily_cap,
        "severe_daily_cap": policy.severe_daily_cap,
        "weekly_cap": policy.weekly_cap,
        "windows": _intervals_to_json(policy.windows),
        "max_severity": policy.max_severity,
        "used_by_day": {str(day): minutes for day, minutes in sorted(policy.used_by_day.items())},
        "used_this_week": policy.used_this_week,
    }
    return {
        "id": examiner.id,
        "skills": sorted(examiner.skills),
        "available": _intervals_to_json(examiner.available),
        "exposure": exposure,
    }


def _job_to_json(job: Job) -> dict[str, object]:
    data: dict[str, object] = {
        "id": job.id,
        "case": job.case,
        "weight": job.weight,
        "release": job.release,
        "due": job.due,
        "attended": job.attended,
        "machine": job.machine,
        "machine_by_workstation": (
            None if job.machine_by_workstation is None else dict(job.machine_by_workstation)
        ),
        "skills": sorted(job.skills),
        "capabilities": sorted(job.capabilities),
        "pools": list(job.pools),
        "examiners": None if job.examiners is None else list(job.examiners),
        "exposure": job.exposure,
        "severity": job.severity,
        "after": list(job.after),
    }
    if job.pin is not None:
        data["pin"] = {
            "examiner": job.pin.examiner,
            "workstation": job.pin.workstation,
            "start": job.pin.start,
        }
    return data


def snapshot_to_json(snapshot: Snapshot) -> dict[str, object]:
    """The `labq.snapshot/1` document of ``snapshot``; `snapshot_from_json` reads it back equal."""
    return {
        "format": SNAPSHOT_FORMAT,
        "lab": snapshot.lab,
        "epoch": snapshot.epoch,
        "horizon": snapshot.horizon,
        "objective": snapshot.objective,
        "days": _intervals_to_json(snapshot.days),
        "weeks": _intervals_to_json(snapshot.weeks),
        "examiners": [_examiner_to_json(examiner) for examiner in snapshot.examiners],
        "workstations": [
            {
                "id": ws.id,
                "capabilities": sorted(ws.capabilities),
                "capacity": ws.capacity,
                "available": _intervals_to_json(ws.available),
            }
            for ws in snapshot.workstations
        ],
        "pools": [{"id": pool.id, "capacity": pool.capacity} for pool in snapshot.pools],
        "jobs": [_job_to_json(job) for job in snapshot.jobs],
        "previous": [_previous_to_json(p) for p in snapshot.previous],
        "frozen_until": snapshot.frozen_until,
        "done": done_predecessors(snapshot),
        "weights": {
            "tardiness": snapshot.weights.tardiness,
            "change": snapshot.weights.change,
            "balance": snapshot.weights.balance,
            "continuity": snapshot.weights.continuity,
        },
    }


def done_predecessors(snapshot: Snapshot) -> list[str]:
    """The predecessors named in ``after`` that are not among the jobs: done (sorted)."""
    present = {job.id for job in snapshot.jobs}
    return sorted({pred for job in snapshot.jobs for pred in job.after if pred not in present})


SKILL_UNAVAILABLE = "skill_unavailable"
CAPABILITY_UNAVAILABLE = "capability_unavailable"


def snapshot_warnings(snapshot: Snapshot) -> tuple[PlanWarning, ...]:
    """Skills no examiner has and capabilities no workstation has, one warning per term (the
    field of its first use, and how many jobs name it): their jobs can never be scheduled."""
    skills = frozenset().union(*(e.skills for e in snapshot.examiners))
    capabilities = frozenset().union(*(w.capabilities for w in snapshot.workstations))
    first: dict[tuple[str, str], str] = {}
    uses: dict[tuple[str, str], int] = {}
    for job in snapshot.jobs:
        for attribute, code, had in (
            ("skills", SKILL_UNAVAILABLE, skills),
            ("capabilities", CAPABILITY_UNAVAILABLE, capabilities),
        ):
            for term in sorted(getattr(job, attribute) - had):
                key = (code, term)
                first.setdefault(key, f"jobs[{job.id}].{attribute}")
                uses[key] = uses.get(key, 0) + 1
    warnings = []
    for (code, term), path in first.items():
        holder = "examiner has skill" if code == SKILL_UNAVAILABLE else "workstation has capability"
        jobs = uses[(code, term)]
        warnings.append(
            PlanWarning(
                code,
                path,
                f"no {holder} '{term}': {jobs} job{'s' if jobs != 1 else ''} "
                "needing it cannot be scheduled",
            )
        )
    return tuple(warnings)


def load_snapshot(path: str | Path) -> Snapshot:
    """Read and validate a snapshot file; unreadable files and invalid JSON are `SnapshotError`."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise SnapshotError("", f"cannot read snapshot file {path}: {exc}") from None
    try:
        data = parse_json(text)
    except (ValueError, RecursionError) as exc:
        raise SnapshotError("", f"invalid JSON in {path}: {exc}") from None
    return snapshot_from_json(data)
