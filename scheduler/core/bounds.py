"""Lower bounds on the main term, so every solve can report its gap (docs/architecture.md §5.7).

CP-SAT's own bound is near zero on these models, so we compute ours from relaxations that every
valid plan satisfies (the verifier's rules, loosened):

1. **Critical path** (``critical_path_bound``): each job, ignoring every other job, can end no
   earlier than its release plus its chain of predecessors, each placed at the first time some
   eligible examiner and workstation window could hold it. A job that cannot end inside the horizon
   this way is charged as unscheduled (horizon + its minimum duration), exactly as the objective
   charges it; so is a job nobody may take.
2. **Capacity** (per group of interchangeable resources): the attended minutes of all jobs that
   only a set S of examiners may take cannot exceed S's available minutes in the horizon (likewise
   machine minutes on workstations, exposure minutes against the caps, severity-3 minutes against
   the severe caps). When they do, some jobs must be left out; the cheapest way to drop enough
   minutes, as a fractional knapsack, adds to the critical-path charge.

``lower_bound`` is the best of these, multiplied by ``weights.tardiness`` so it bounds the weighted
objective of any valid plan (the other terms are never negative). With ``objective: "makespan"``
the same relaxations bound the latest end instead.
"""

from __future__ import annotations

import time
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from itertools import accumulate

from ortools.graph.python import min_cost_flow

from .calendar import FreeList
from .eligibility import caps_allow
from .intervals import intersect_sorted, keep_touching
from .rules.exposure import DAILY, SEVERE_DAILY, WEEKLY, ExposureLedger
from .snapshot import Examiner, Job, Snapshot, Workstation


def may_take(job: Job, examiner: Examiner, caps_everywhere: bool = True) -> bool:
    """The verifier's examiner rules that hold whatever the time: skills, allow-list, severity
    and, when the caps hold at every start (``caps_everywhere``), a job's exposure fitting them."""
    if not job.skills <= examiner.skills:
        return False
    if job.examiners is not None and examiner.id not in job.examiners:
        return False
    if job.exposure > 0:
        if job.severity > examiner.exposure.max_severity:
            return False
        return caps_allow(job, examiner) if caps_everywhere else True
    return True


def caps_hold_everywhere(snapshot: Snapshot) -> bool:
    """Whether the listed days and weeks cover the horizon: a start outside every listed day
    (week) counts against no daily (weekly) cap, so elsewhere a cap bounds nothing."""
    h = snapshot.horizon
    return _available_minutes(snapshot.days, h) >= h and _available_minutes(snapshot.weeks, h) >= h


def may_run(job: Job, workstation: Workstation) -> bool:
    if job.machine_by_workstation is not None and workstation.id not in job.machine_by_workstation:
        return False
    return job.capabilities <= workstation.capabilities


@dataclass
class _Relaxed:
    """Per job, what the relaxations need."""

    job: Job
    examiners: list[str]
    workstations: list[str]
    earliest_end: int | None  # None: cannot be scheduled at all
    charged: int  # lower bound on the end the objective charges


class _AnyOf:
    """The windows of several examiners at once, never cut (other jobs are relaxed away).

    ``earliest(t, length)`` equals the least ``FreeList.earliest`` over the examiners, in
    O(log n) instead of one search per examiner (a lab at the contract's limits has hundreds of
    them): a window that starts by ``t`` and reaches ``t + length`` answers ``t``; otherwise the
    answer is the start of the first later window at least ``length`` long, found by descending
    a max-tree of window lengths.
    """

    __slots__ = ("starts", "reach", "size", "tree")

    def __init__(self, lists: Iterable[FreeList]) -> None:
        distinct = {id(fl): fl for fl in lists}.values()  # examiners on one shift share a list
        segs = sorted((a, b) for fl in distinct for a, b in zip(fl.starts, fl.ends, strict=True))
        self.starts = [a for a, _ in segs]
        self.reach = list(accumulate((b for _, b in segs), max))  # latest end so far
        size = 1
        while size < len(segs):
            size *= 2
        tree = [0] * (2 * size)
        for k, (a, b) in enumerate(segs):
            tree[size + k] = b - a
        for k in range(size - 1, 0, -1):
            tree[k] = max(tree[2 * k], tree[2 * k + 1])
        self.size, self.tree = size, tree

    def earliest(self, t: int, length: int) -> int | None:
        i = bisect_right(self.starts, t)
        if i and self.reach[i - 1] >= t + length:
            return t
        if i >= len(self.starts):
            return None
        size, tree = self.size, self.tree
        k = i + size
        while tree[k] < length:  # nothing here: on to the next subtree to the right
            while k & 1:
                k >>= 1
            if k == 0:
                return None
            k += 1
        while k < size:
            k = 2 * k if tree[2 * k] >= length else 2 * k + 1
        return self.starts[k - size]


class _Windows:
    """Each resource's windows as free lists, never cut (other jobs are relaxed away)."""

    def __init__(self, snapshot: Snapshot) -> None:
        h = snapshot.horizon
        self.available: dict[str, FreeList] = {}
        self.exposure: dict[str, FreeList] = {}
        # examiners with the same windows share one list, so that a group of them is searched
        # as one (``_AnyOf``)
        shared: dict[tuple[tuple[int, int], ...], FreeList] = {}
        for e in snapshot.examiners:
            avail = keep_touching(e.available, 0, h)
            self.available[e.id] = shared.setdefault(tuple(avail), FreeList(avail))
            exposed = intersect_sorted(
                avail, keep_touching(e.exposure.windows or e.available, 0, h)
            )
            self.exposure[e.id] = shared.setdefault(tuple(exposed), FreeList(exposed))
        boxes: dict[tuple[tuple[int, int], ...], FreeList] = {}
        self.workstations: dict[str, FreeList] = {}
        for w in snapshot.workstations:
            windows = keep_touching(w.available, 0, h)
            self.workstations[w.id] = boxes.setdefault(tuple(windows), FreeList(windows))
        # per examiner list (by identity: ``relax`` shares one list per kind of job) and kind of
        # window, the list itself (so its id stays taken) and the group searched as one
        self._groups: dict[tuple[int, bool], tuple[Sequence[str], _AnyOf]] = {}

    def examiner_start(self, job: Job, examiners: Sequence[str], t: int) -> int | None:
        """Earliest start >= t at which one of ``examiners`` could hold the attended part."""
        lists = self.exposure if job.exposure > 0 else self.available
        if job.attended <= 0:  # FreeList's own rule for an empty part
            starts = [s for e in examiners if (s := lists[e].earliest(t, 0)) is not None]
            return min(starts, default=None)
        key = (id(examiners), job.exposure > 0)
        known = self._groups.get(key)
        if known is None:
            known = self._groups[key] = (examiners, _AnyOf(lists[e] for e in examiners))
        return known[1].earliest(t, job.attended)


#: What ``relax`` works out, per job id: computed once per solve and shared by its phases.
Relaxation = dict[str, _Relaxed]


def relax(snapshot: Snapshot) -> Relaxation:
    """Earliest possible end of every job with all other jobs relaxed away (critical path)."""
    h = snapshot.horizon
    jobs = snapshot.jobs_by_id
    fixed = snapshot.kept
    windows = _Windows(snapshot)
    caps_everywhere = caps_hold_everywhere(snapshot)
    out: dict[str, _Relaxed] = {}
    # who may take a job depends only on these of its fields: worked out once per combination
    takers: dict[tuple[object, ...], list[str]] = {}
    alike: dict[tuple[str, ...], list[str]] = {}
    runners: dict[tuple[object, ...], list[str]] = {}
    for job in _topological(snapshot):
        examiners: list[str] = []
        if job.needs_examiner:
            exposed = (job.severity, job.exposure) if job.exposure > 0 else None
            key = (job.skills, job.examiners, exposed)
            if key not in takers:
                ids = [e.id for e in snapshot.examiners if may_take(job, e, caps_everywhere)]
                takers[key] = alike.setdefault(tuple(ids), ids)  # one list per set of examiners
            examiners = takers[key]
        stations: list[str] = []
        if job.needs_workstation:
            mbw = job.machine_by_workstation
            box = (job.capabilities, None if mbw is None else frozenset(mbw))
            if box not in runners:
                runners[box] = [w.id for w in snapshot.workstations if may_run(job, w)]
            stations = runners[box]
        unscheduled_end = h + job.min_duration
        earliest: int | None
        if job.id in fixed:
            k = fixed[job.id]
            ws, start = k.workstation, k.start
            usable = ws is None or job.machine_by_workstation is None
            if usable or ws in (job.machine_by_workstation or {}):
                earliest = start + job.duration_on(ws)  # if kept at all, kept exactly
            else:
                earliest = None  # pinned to a box the job cannot use: never kept, so left out
        else:
            t = max(job.release, 0)
            blocked = False
            for p in job.after:
                if p in jobs and p != job.id:
                    pred = out.get(p)
                    if pred is None or pred.earliest_end is None:
                        blocked = True
                        break
                    t = max(t, pred.earliest_end)
            if blocked:
                earliest = None
            else:
                earliest = _earliest_end(job, examiners, stations, t, h, windows)
        if earliest is not None and earliest > h:
            earliest = None
        charged = unscheduled_end if earliest is None else min(earliest, unscheduled_end)
        out[job.id] = _Relaxed(job, examiners, stations, earliest, charged)
    return out


def _earliest_end(
    job: Job,
    examiners: Sequence[str],
    stations: Sequence[str],
    t: int,
    horizon: int,
    windows: _Windows,
) -> int | None:
    if job.needs_examiner and not examiners:
        return None
    if job.needs_workstation and not stations:
        return None
    options: Sequence[str | None] = stations if job.needs_workstation else [None]
    best: int | None = None
    tried: set[tuple[int, int, int]] = set()  # boxes with the same windows answer alike
    for w in options:
        machine = job.machine_on(w)
        duration = job.duration_on(w)
        if w is not None:
            alike = (id(windows.workstations[w]), machine, duration)
            if alike in tried:
                continue
            tried.add(alike)
        s: int | None = t
        while s is not None and s + duration <= horizon:
            s0 = s
            if job.needs_examiner:
                s = windows.examiner_start(job, examiners, s)
                if s is None:
                    break
            if w is not None and machine > 0:
                # A zero-minute part occupies nothing: the verifier accepts it even at a
                # window's end, so the relaxation does not look for room for it.
                s = windows.workstations[w].earliest(s, machine)
                if s is None:
                    break
            if s == s0:
                if best is None or s + duration < best:
                    best = s + duration
                break
    return best


def _topological(snapshot: Snapshot) -> list[Job]:
    jobs = snapshot.jobs_by_id
    done: set[str] = set()
    order: list[Job] = []
    for root in snapshot.jobs:
        stack: list[tuple[Job, int]] = [(root, 0)]
        while stack:
            job, i = stack.pop()
            if job.id in done:
                continue
            preds = [p for p in job.after if p in jobs and p != job.id and p not in done]
            if i < len(preds):
                stack.append((job, i + 1))
                if all(s[0].id != preds[i] for s in stack):  # ignore cycles
                    stack.append((jobs[preds[i]], 0))
                continue
            done.add(job.id)
            order.append(job)
    return order


def _tardiness(job: Job, end: int) -> int:
    if job.due is None or end <= job.due:
        return 0
    return job.weight * (end - job.due)


def _critical(snapshot: Snapshot, relaxed: dict[str, _Relaxed]) -> int:
    """Raw main term under the critical-path relaxation."""
    if snapshot.objective == "makespan":
        return max((r.charged for r in relaxed.values()), default=0)
    return sum(_tardiness(r.job, r.charged) for r in relaxed.values())


def critical_path_bound(snapshot: Snapshot) -> int:
    """Resource-free bound (times ``weights.tardiness``): the tardiness no schedule can avoid.

    Benchmarks subtract it to report *avoidable* tardiness.
    """
    return snapshot.weights.tardiness * _critical(snapshot, relax(snapshot))


# -- capacity relaxations ---------------------------------------------------------------------

Members = Callable[[_Relaxed], frozenset[str] | None]
Minutes = Callable[[_Relaxed], int]
Capacity = Callable[[frozenset[str]], int | None]


@dataclass(frozen=True)
class _Demand:
    """One kind of work: which resources may serve a job, how many minutes it asks of them,
    and what a set of those resources can supply over the horizon (None: no limit)."""

    members_of: Members
    minutes_of: Minutes
    capacity_of: Capacity


def _knapsack_extra(items: list[tuple[int, int]], excess: int) -> int:
    """Least extra cost to drop at least ``excess`` minutes, items (minutes, extra cost),
    fractional: a valid lower bound on the integer choice."""
    if excess <= 0:
        return 0
    total = 0.0
    for minutes, extra in sorted((i for i in items if i[0] > 0), key=lambda i: i[1] / i[0]):
        if minutes >= excess:
            return int(total + extra * excess / minutes)  # floor keeps it a lower bound
        total += extra
        excess -= minutes
    return 0  # the group's jobs cannot all be dropped enough: stay sound


def _available_minutes(windows: Iterable[tuple[int, int]], horizon: int) -> int:
    return sum(b - a for a, b in keep_touching(windows, 0, horizon))


def exposure_budget(snapshot: Snapshot, e: Examiner, severe: bool) -> int | None:
    """Most exposure minutes an examiner can be planned in the horizon (None: no limit).

    A cap only limits starts inside a listed day (week), so it bounds the total only when the
    days (weeks) cover the whole horizon.
    """
    h = snapshot.horizon
    covers = {
        "day": _available_minutes(snapshot.days, h) >= h,
        "week": _available_minutes(snapshot.weeks, h) >= h,
    }
    periods = {
        "day": [d for d, (a, _) in enumerate(snapshot.days) if a < h],
        "week": [w for w, (a, _) in enumerate(snapshot.weeks) if a < h],
    }
    logged = ExposureLedger(snapshot)
    budgets: list[int] = []
    for cap in (SEVERE_DAILY,) if severe else (DAILY, WEEKLY):
        if cap.limit(e) is not None and covers[cap.period]:
            budgets.append(sum(logged.room(cap, e, p) or 0 for p in periods[cap.period]))
    return min(budgets) if budgets else None


class _SetsOf:
    """Frozensets of the resource lists ``relax`` shares (one per kind of job), each made once:
    by the list's identity, the list kept so that its id stays taken."""

    def __init__(self) -> None:
        self._known: dict[int, tuple[list[str], frozenset[str]]] = {}

    def __call__(self, ids: list[str]) -> frozenset[str]:
        known = self._known.get(id(ids))
        if known is None:
            known = self._known[id(ids)] = (ids, frozenset(ids))
        return known[1]


def _demands(snapshot: Snapshot) -> list[_Demand]:
    h = snapshot.horizon
    examiners = snapshot.examiners_by_id
    avail = {e.id: _available_minutes(e.available, h) for e in snapshot.examiners}
    ws_avail = {
        w.id: w.capacity * _available_minutes(w.available, h) for w in snapshot.workstations
    }

    as_set = _SetsOf()

    def exposure_set(r: _Relaxed) -> frozenset[str] | None:
        return as_set(r.examiners) if r.job.exposure > 0 and r.job.needs_examiner else None

    def budget(severe: bool) -> Capacity:
        def cap(members: frozenset[str]) -> int | None:
            total = 0
            for m in members:
                b = exposure_budget(snapshot, examiners[m], severe)
                if b is None:
                    return None
                total += b
            return total

        return cap

    return [
        _Demand(  # attended minutes on examiners
            lambda r: as_set(r.examiners) if r.job.needs_examiner else None,
            lambda r: r.job.attended,
            lambda m: sum(avail[x] for x in m),
        ),
        _Demand(  # machine minutes on workstations (the fastest eligible box)
            lambda r: as_set(r.workstations) if r.job.needs_workstation else None,
            lambda r: min((r.job.machine_on(w) for w in r.workstations), default=0),
            lambda m: sum(ws_avail[x] for x in m),
        ),
        _Demand(exposure_set, lambda r: r.job.exposure, budget(False)),  # exposure caps
        _Demand(  # severity-3 minutes against the severe caps
            lambda r: exposure_set(r) if SEVERE_DAILY.counts(r.job) else None,
            lambda r: r.job.exposure,
            budget(True),
        ),
    ]


def _capacity_bounds(
    snapshot: Snapshot, relaxed: dict[str, _Relaxed], late: Callable[[], bool] = lambda: False
) -> list[int]:
    """Critical-path charge plus the least cost of leaving out what a group cannot hold.

    Groups are the distinct eligible sets S; a group holds every job whose eligible set lies
    inside S (they can only use S), so its demand is a true lower bound on S's load. Each bound
    holds on its own, so once ``late()`` the groups not yet looked at are skipped.
    """
    h = snapshot.horizon
    base = _critical(snapshot, relaxed)
    live = [r for r in relaxed.values() if r.earliest_end is not None]
    makespan = snapshot.objective == "makespan"
    bounds: list[int] = []
    for demand in _demands(snapshot):
        tagged = [(m, r) for r in live if (m := demand.members_of(r))]
        for members in {m for m, _ in tagged}:
            if late():
                return bounds
            capacity = demand.capacity_of(members)
            if capacity is None:
                continue
            inside = [r for m, r in tagged if m <= members]
            load = sum(demand.minutes_of(r) for r in inside)
            if load <= capacity:
                continue
            if makespan:
                # some job of the group is left out: it is charged horizon + its duration
                bounds.append(min(h + r.job.min_duration for r in inside))
                continue
            items = [
                (
                    demand.minutes_of(r),
                    _tardiness(r.job, h + r.job.min_duration) - _tardiness(r.job, r.charged),
                )
                for r in inside
            ]
            bounds.append(base + _knapsack_extra(items, load - capacity))
    return bounds


def _makespan_energy(snapshot: Snapshot, relaxed: dict[str, _Relaxed]) -> int:
    """Latest end is at least the time by which a group's resources could finish its work."""
    h = snapshot.horizon
    live = [r for r in relaxed.values() if r.earliest_end is not None]
    ws_windows = {
        w.id: (w.capacity, keep_touching(w.available, 0, h)) for w in snapshot.workstations
    }
    ex_windows = {e.id: (1, keep_touching(e.available, 0, h)) for e in snapshot.examiners}
    demands = _demands(snapshot)[:2]  # attended and machine minutes
    best = 0
    for demand, windows in zip(demands, (ex_windows, ws_windows), strict=True):
        tagged = [(m, r) for r in live if (m := demand.members_of(r))]
        for members in {m for m, _ in tagged}:
            inside = [r for m, r in tagged if m <= members]
            load = sum(demand.minutes_of(r) for r in inside)
            if load <= 0:
                continue
            earliest = min(max(r.job.release, 0) for r in inside)
            t = _time_to_supply([windows[m] for m in members], load, earliest)
            best = max(best, t if t is not None else min(h + r.job.min_duration for r in inside))
    return best


def _time_to_supply(
    resources: Sequence[tuple[int, list[tuple[int, int]]]], demand: int, start: int
) -> int | None:
    """Least T with ``demand`` capacity-minutes available in ``[start, T)``, or None."""
    events: list[tuple[int, int]] = []
    for capacity, windows in resources:
        for a, b in windows:
            a = max(a, start)
            if a < b:
                events.append((a, capacity))
                events.append((b, -capacity))
    events.sort()
    rate = 0
    supplied = 0
    last = start
    for t, delta in events:
        if rate > 0 and t > last:
            gain = rate * (t - last)
            if supplied + gain >= demand:
                need = demand - supplied
                return last + -(-need // rate)
            supplied += gain
        last = max(last, t)
        rate += delta
    return None


# -- fluid relaxation -------------------------------------------------------------------------

#: Block length (minutes) of the fluid relaxation's time grid: finer is tighter and slower.
FLUID_STEP = 120

#: Per-unit costs are scaled by this and rounded down before the min-cost flow (integers only).
FLUID_SCALE = 16

#: Work budget of one group's fluid bound: supply evaluations (grid times x members) and arcs
#: of the flow (jobs x blocks). Past them the grid coarsens and neighbouring blocks merge, which
#: weakens the bound but keeps it valid (work counted in a block ends no earlier than its
#: start), so a long horizon or a large lab costs seconds, not minutes or gigabytes.
FLUID_MAX_EVALUATIONS = 400_000
FLUID_MAX_ARCS = 1_000_000

#: Seconds one arc of the flow costs to add and solve (measured ~3 us on a medium lab ten times
#: over, padded for a busy machine): with a deadline, a group gets no more arcs than the time
#: left pays for, and is skipped if even one block per job would not fit.
FLUID_SECONDS_PER_ARC = 5e-6


Cumulative = Callable[[int], int | None]  # most units a resource can have completed by t


@dataclass(frozen=True)
class _Supply:
    """One kind of work for the fluid relaxation: which resources may serve a job, how many
    units it asks of them, and per resource the most units it can have completed by each time."""

    members_of: Members
    units_of: Minutes
    completed_by: dict[str, Cumulative]
    edges: dict[str, list[int]]  # times where a resource's supply rate changes


def _elapsed(windows: Sequence[tuple[int, int]]) -> Callable[[int], int]:
    """Minutes of sorted, disjoint ``windows`` before t, in O(log n) per call."""
    starts = [a for a, _ in windows]
    before = list(accumulate((b - a for a, b in windows), initial=0))

    def by(t: int) -> int:
        i = bisect_left(starts, t)  # windows[:i] start before t
        if i == 0:
            return 0
        a, b = windows[i - 1]
        return before[i - 1] + min(b, t) - a

    return by


def _begun(periods: Sequence[tuple[int, int]]) -> Callable[[int], int]:
    """Sum of the minutes of the (start, minutes) ``periods`` begun before t (sorted starts)."""
    starts = [a for a, _ in periods]
    before = list(accumulate((n for _, n in periods), initial=0))
    return lambda t: before[bisect_left(starts, t)]


def _window_supply(windows: list[tuple[int, int]], capacity: int) -> Cumulative:
    """Minutes of work a resource with ``capacity`` lanes open in ``windows`` can do by t."""
    elapsed = _elapsed(windows)
    return lambda t: capacity * elapsed(t)


def _exposure_supply(
    windows: list[tuple[int, int]], caps: list[list[tuple[int, int]]]
) -> Cumulative:
    """Exposure minutes an examiner can do by t: inside exposure windows, and no more than what
    is left of each cap in the days (weeks) begun by then."""
    limits = [_elapsed(windows), *(_begun(sorted(cap)) for cap in caps)]
    return lambda t: min(limit(t) for limit in limits)


def _fluid_supplies(snapshot: Snapshot) -> list[_Supply]:
    """Attended minutes against examiners' windows; exposure minutes against exposure windows
    and what is left of the daily and weekly caps; machine minutes against workstations."""
    h = snapshot.horizon
    days_cover = _available_minutes(snapshot.days, h) >= h
    weeks_cover = _available_minutes(snapshot.weeks, h) >= h
    attended: dict[str, Cumulative] = {}
    exposure: dict[str, Cumulative] = {}
    edges: dict[str, list[int]] = {}
    logged = ExposureLedger(snapshot)
    for e in snapshot.examiners:
        avail = keep_touching(e.available, 0, h)
        windows = intersect_sorted(avail, keep_touching(e.exposure.windows or e.available, 0, h))
        caps: list[list[tuple[int, int]]] = []  # per cap: (period start, minutes left)
        for cap, periods, cover in (
            (DAILY, snapshot.days, days_cover),
            (WEEKLY, snapshot.weeks, weeks_cover),
        ):
            if cap.limit(e) is not None and cover:
                caps.append([(a, logged.room(cap, e, p) or 0) for p, (a, _) in enumerate(periods)])
        attended[e.id] = _window_supply(avail, 1)
        exposure[e.id] = _exposure_supply(windows, caps)
        edges[e.id] = [x for w in avail for x in w]
    machine: dict[str, Cumulative] = {}
    for w in snapshot.workstations:
        avail = keep_touching(w.available, 0, h)
        machine[w.id] = _window_supply(avail, w.capacity)
        edges[w.id] = [x for window in avail for x in window]
    as_set = _SetsOf()
    return [
        _Supply(
            lambda r: as_set(r.examiners) if r.job.needs_examiner else None,
            lambda r: r.job.attended,
            attended,
            edges,
        ),
        _Supply(
            lambda r: (
                frozenset(r.examiners) if r.job.exposure > 0 and r.job.needs_examiner else None
            ),
            lambda r: min(r.job.exposure, r.job.attended),  # windows hold attended time
            exposure,
            edges,
        ),
        _Supply(
            lambda r: as_set(r.workstations) if r.job.needs_workstation else None,
            lambda r: min((r.job.machine_on(w) for w in r.workstations), default=0),
            machine,
            edges,
        ),
    ]


def _fluid_bounds(
    snapshot: Snapshot, relaxed: dict[str, _Relaxed], deadline: float | None = None
) -> list[int]:
    """The fluid bound (below) for every kind of work and every group of interchangeable
    resources: a group serves every job whose eligible set lies inside it. Groups not reached
    by ``deadline`` (``time.monotonic()``) are skipped: the bound is weaker, never wrong. A group
    is not begun unless it can be expected to end in time (as long as the longest so far): its
    min-cost flow cannot be interrupted."""
    live = [r for r in relaxed.values() if r.earliest_end is not None]
    out: list[int] = []
    longest = 0.0
    for supply in _fluid_supplies(snapshot):
        tagged = [(m, r) for r in live if (m := supply.members_of(r))]
        for members in sorted({m for m, _ in tagged}, key=sorted):
            begun = time.monotonic()
            if deadline is not None and begun + longest >= deadline:
                return out
            inside = {r.job.id for m, r in tagged if m <= members}
            arcs = FLUID_MAX_ARCS
            if deadline is not None:
                arcs = min(arcs, int((deadline - begun) / FLUID_SECONDS_PER_ARC))
                if arcs < 2 * len(inside):
                    continue  # not even one block per job in the time left: a smaller group may
            out.append(_fluid_bound(snapshot, relaxed, supply, members, inside, arcs))
            longest = max(longest, time.monotonic() - begun)
    return out


def _fluid_bound(
    snapshot: Snapshot,
    relaxed: dict[str, _Relaxed],
    supply: _Supply,
    members: frozenset[str],
    inside: set[str],
    max_arcs: int = FLUID_MAX_ARCS,
) -> int:
    """Weighted tardiness no plan can beat when the ``members`` pool into one fluid resource.

    Order a plan's jobs by end: the work of the ``inside`` jobs that have ended by ``t`` was done
    by ``t`` on the members, so it is at most what they can supply by ``t``. Cut time into
    blocks; a job whose work is counted in a block ends no earlier than the block's start (nor
    than its critical-path end). Spreading each job's units over blocks or leaving it out
    (charged as the objective charges it), at a cost per unit of its tardiness there over its
    units, is a transportation problem; its optimum (a min-cost flow) bounds every plan. Unlike
    the capacity knapsack, it also charges the queueing behind other work. Jobs outside the
    group keep their critical-path charge.
    """
    h = snapshot.horizon
    edges = {t for m in members for t in supply.edges.get(m, ()) if 0 <= t <= h}
    step = FLUID_STEP
    while (len(edges) + h // step) * len(members) > FLUID_MAX_EVALUATIONS and step < h:
        step *= 2
    grid = {0, h, *range(0, h, step)}
    if (len(edges) + h // step) * len(members) <= FLUID_MAX_EVALUATIONS:
        grid |= edges  # window edges sharpen the blocks when the budget allows them
    blocks: list[tuple[int, int]] = []  # (earliest end of work counted here, units it holds)
    done = 0
    times = sorted(grid)
    for a, b in zip(times, times[1:], strict=False):
        by_end = 0
        for m in members:
            units = supply.completed_by[m](b)
            if units is None:
                return 0
            by_end += units
        if by_end > done:
            blocks.append((a, by_end - done))
            done = by_end
    jobs_inside = max(1, len(inside))
    while len(blocks) > 1 and len(blocks) * jobs_inside > max_arcs:
        blocks = _merged(blocks)
    flow = min_cost_flow.SimpleMinCostFlow()
    sink, first_block = 0, 1
    node = first_block + len(blocks)
    base = demand = 0
    for r in relaxed.values():
        job = r.job
        units = supply.units_of(r) if r.job.id in inside else 0
        if units <= 0 or job.due is None or job.weight == 0:
            base += _tardiness(job, r.charged)
            continue
        out = _tardiness(job, h + job.min_duration)
        flow.add_arc_with_capacity_and_unit_cost(node, sink, units, FLUID_SCALE * out // units)
        if r.earliest_end is not None:
            for i, (start, _) in enumerate(blocks):
                cost = FLUID_SCALE * _tardiness(job, max(start, r.earliest_end)) // units
                flow.add_arc_with_capacity_and_unit_cost(node, first_block + i, units, cost)
        flow.set_node_supply(node, units)
        demand += units
        node += 1
    if demand == 0:
        return base
    for i, (_, held) in enumerate(blocks):
        flow.add_arc_with_capacity_and_unit_cost(first_block + i, sink, held, 0)
    flow.set_node_supply(sink, -demand)
    if flow.solve() != flow.OPTIMAL:
        return 0
    return base + int(flow.optimal_cost()) // FLUID_SCALE


def _merged(blocks: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Neighbouring blocks two by two: each starts where its first one did and holds both."""
    return [
        (blocks[i][0], sum(units for _, units in blocks[i : i + 2]))
        for i in range(0, len(blocks), 2)
    ]


def lower_bound(
    snapshot: Snapshot, deadline: float | None = None, relaxed: Relaxation | None = None
) -> int:
    """A lower bound on the weighted objective of every valid plan of ``snapshot``.

    ``weights.tardiness`` times the best relaxation bound of the main term (weighted tardiness, or
    the latest end for ``objective: "makespan"``). With a ``deadline`` (``time.monotonic()``) the
    relaxations still to run when it passes are skipped: a weaker bound, in time. ``relaxed`` is
    ``relax(snapshot)`` when the caller has it already.
    """

    def late() -> bool:
        return deadline is not None and time.monotonic() >= deadline

    if relaxed is None:
        relaxed = relax(snapshot)
    best = _critical(snapshot, relaxed)
    if late():
        return snapshot.weights.tardiness * best
    bounds = _capacity_bounds(snapshot, relaxed, late)
    if bounds:
        best = max(best, *bounds)
    if late():
        return snapshot.weights.tardiness * best
    if snapshot.objective == "makespan":
        best = max(best, _makespan_energy(snapshot, relaxed))
    else:
        best = max(best, *_fluid_bounds(snapshot, relaxed, deadline), 0)
    return snapshot.weights.tardiness * best
