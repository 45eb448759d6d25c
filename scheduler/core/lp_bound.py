"""A time-indexed LP lower bound on weighted tardiness (docs/architecture.md §5.7).

``bounds.lower_bound`` relaxes one kind of work at a time (examiner minutes, machine minutes,
exposure), so an overloaded lab reads as far less late than it must be. This relaxation couples
them: per lab-local day, a job is started by some examiner (or on some workstation) or left out,
and every examiner-day, exposure cap, workstation, licence pool and predecessor chain limits the
same fractions at once.

Columns (each between 0 and 1; per job they sum to 1):

- ``start[j,e,b]``: job j starts in time bucket b with examiner e (jobs with attended minutes);
- ``start[j,w,b]``: job j starts in bucket b on workstation w (jobs with a machine part); a job
  with both has ``sum_e start[j,e,b] == sum_w start[j,w,b]``;
- ``left_out[j]``, charged as the objective charges it (horizon + the job's shortest duration).

Buckets are the lab-local days (split where a week starts), so each bucket lies in one day and
one week: a job counts against the exposure caps of the day and week it starts in. A column
exists only where the verifier's rules leave some start in that bucket (release, chain, windows,
horizon, skills, allow-list, severity, capabilities, a job's exposure fitting what is left of the
caps); a kept placement (pin, frozen) has only its own. Its cost is the tardiness of the earliest
end any such start allows (nor earlier than the critical path allows), so it never exceeds what a
plan starting the job there pays.

Rows (each holds for every plan the verifier accepts):

- Examiner attended time, attended time of exposure work inside exposure windows, machine time
  per workstation and licence time per pool: the work of the jobs started in buckets b1..b2
  starts in [F, L] (first and last start the columns allow) and, at most ``capacity`` at a time,
  lies inside the windows; so it is at most ``capacity * window minutes in [F, L)`` plus what at
  most ``capacity`` jobs still running at L can add after L.
- Exposure per examiner: per day, minutes <= daily cap - logged, severity-3 minutes <= severe cap;
  per week <= weekly cap - logged.
- Whole jobs: for examiner time and exposure caps, the jobs needing at least t minutes number at
  most what the smallest of them that fit allow (the LP alone would fit 1.45 jobs of 165 exposure
  minutes into a 240-minute cap); and, counted in whole units of t minutes (a job of m minutes
  holds ``m // t`` of them, an examiner's limit ``cap // t``), they fit the units the examiners
  hold (a rounding of the minutes row, valid for whole jobs: two 210-minute reviews leave no room
  for part of a 150-minute report in a 510-minute day).
- Precedence: j cannot have started by bucket b more than p has started in the buckets from which
  p can end by j's latest start there (so p left out keeps j out).

``lp_bound`` is the LP optimum, made rigorous: GLOP's row duals are turned into a weak-duality
bound computed here in exact integers (any duals give a valid bound, so neither solver
tolerances nor float rounding can make it too high; an unfinished solve's duals still count).
Jobs nobody is charged for and no charged job waits on are left out of the model (leaving them
out costs nothing and only frees capacity), and examiners share columns unless ``pooled=False``.
"""

from __future__ import annotations

import logging
import math
import time
from bisect import bisect_right
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from itertools import accumulate

from ortools.linear_solver import linear_solver_pb2, pywraplp

from .bounds import may_run, relax
from .intervals import clip_closed, intersect_closed, merge_closed
from .objective import job_tardiness
from .rules.exposure import DAILY, SEVERE_DAILY, WEEKLY, Cap, ExposureLedger
from .snapshot import Examiner, Interval, Job, KeptPlacement, Snapshot

logger = logging.getLogger(__name__)

#: Rows per examiner limit in whole units of ``cap / (k + 1)`` minutes, k = 1..this
#: (``_Model._rounded``).
ROUNDED_ROWS = 6

#: Default time limit (seconds) for GLOP.
LP_TIME_LIMIT = 60.0

INF = math.inf

Starts = list[tuple[int, int]]  # closed integer ranges [lo, hi] of start times, sorted, disjoint


# -- start-time sets ----------------------------------------------------------------------------


def _fits(windows: Sequence[Interval], length: int) -> Starts:
    """Starts s with [s, s + length) inside one window (touching windows are not merged)."""
    return merge_closed((a, b - length) for a, b in windows)


def _windows_meet(a: Sequence[Interval], b: Sequence[Interval]) -> list[Interval]:
    """Pairwise intersections: the pieces lying inside one window of each list."""
    return [(max(x, u), min(y, v)) for x, y in a for u, v in b if max(x, u) <= min(y, v)]


def _measure(windows: Sequence[Interval], lo: int, hi: int) -> int:
    """Minutes of [lo, hi) covered by the union of ``windows``."""
    total, reach = 0, lo
    for a, b in sorted(windows):
        a, b = max(a, reach), min(b, hi)
        if a < b:
            total += b - a
            reach = b
    return total


# -- the LP -------------------------------------------------------------------------------------


#: Largest denominator of the simple fractions GLOP's duals are read as (``_Lp.dual_bound``).
MAX_DENOMINATOR = 10_000


@dataclass
class _Lp:
    """Columns in [0, upper] with integer costs; rows lo <= sum coef * column <= hi (None: no
    limit on that side). Everything is an integer, so the dual bound can be exact."""

    cost: list[int] = field(default_factory=list)
    upper: list[int] = field(default_factory=list)
    rows: list[tuple[list[int], list[int], int | None, int | None]] = field(default_factory=list)

    def column(self, cost: int = 0, upper: int = 1) -> int:
        self.cost.append(cost)
        self.upper.append(upper)
        return len(self.cost) - 1

    def row(self, cols: list[int], coefs: list[int], lo: int | None, hi: int | None) -> None:
        if cols:
            self.rows.append((cols, coefs, lo, hi))

    def proto(self, time_limit: float) -> linear_solver_pb2.MPModelRequest:
        request = linear_solver_pb2.MPModelRequest()
        request.solver_type = linear_solver_pb2.MPModelRequest.GLOP_LINEAR_PROGRAMMING
        request.solver_time_limit_seconds = time_limit
        model = request.model
        for c, u in zip(self.cost, self.upper, strict=True):
            model.variable.add(lower_bound=0.0, upper_bound=u, objective_coefficient=c)
        for cols, coefs, lo, hi in self.rows:
            ct = model.constraint.add(
                lower_bound=-INF if lo is None else lo, upper_bound=INF if hi is None else hi
            )
            ct.var_index.extend(cols)
            ct.coefficient.extend(coefs)
        return request

    def dual_bound(self, duals: Sequence[float]) -> int:
        """Weak duality with any row duals: for every column vector in the box, cost >= sum over
        rows of the dual times the side it presses on, plus each column's reduced cost at its
        cheaper bound. Any duals will do, so GLOP's are first made simple fractions (an optimal
        basis gives ratios of small integers; 1440/300 is stored as 4.7999...) and the sum is
        done in exact integers: solver tolerances and float rounding cannot make it too high.
        Returns its floor."""
        ys = [
            Fraction(y).limit_denominator(MAX_DENOMINATOR) if math.isfinite(y) else Fraction(0)
            for y in duals
        ]
        scale = math.lcm(*(y.denominator for y in ys)) if ys else 1
        if scale > 1 << 128:  # too many different denominators: round to a common one
            scale = 1 << 40
            ys = [Fraction(round(y * scale), scale) for y in ys]
        reduced = [c * scale for c in self.cost]
        total = 0
        for (cols, coefs, lo, hi), dual in zip(self.rows, ys, strict=True):
            y = dual.numerator * (scale // dual.denominator)
            side = lo if y > 0 else hi
            if y == 0 or side is None:
                continue  # that side is not a limit: pressing on it would give -inf
            total += y * side
            for col, a in zip(cols, coefs, strict=True):
                reduced[col] -= y * a
        total += sum(r * u for r, u in zip(reduced, self.upper, strict=True) if r < 0)
        return total // scale


@dataclass(frozen=True)
class _Bucket:
    start: int
    end: int  # last start it holds + 1 (the last bucket also holds a start at the horizon)
    day: int | None
    week: int | None


def _buckets(snapshot: Snapshot) -> list[_Bucket]:
    """Lab-local days cut where a week starts: each bucket lies in at most one day and week."""
    h = snapshot.horizon
    cuts = {0, h}
    for a, b in (*snapshot.days, *snapshot.weeks):
        cuts.update(t for t in (a, b) if 0 < t < h)
    times = sorted(cuts)
    out = []
    for k, (a, b) in enumerate(zip(times, times[1:], strict=False)):
        last = k == len(times) - 2
        out.append(_Bucket(a, b + 1 if last else b, snapshot.day_of(a), snapshot.week_of(a)))
    return out


@dataclass(frozen=True)
class _Start:
    """One column: a job starting in one bucket (with one examiner or on one workstation)."""

    col: int
    bucket: int
    first: int  # earliest start the column stands for
    last: int  # latest start
    end: int  # earliest end it allows


def _may_attend(job: Job, examiner: Examiner) -> bool:
    """The verifier's examiner rules that hold whatever the time (caps are checked per day)."""
    if not job.skills <= examiner.skills:
        return False
    if job.examiners is not None and examiner.id not in job.examiners:
        return False
    return job.exposure <= 0 or job.severity <= examiner.exposure.max_severity


def _covers(intervals: Sequence[Interval], horizon: int) -> bool:
    return _measure(intervals, 0, horizon) >= horizon


@dataclass
class _Job:
    """A job's columns: by examiner and by workstation (``own`` carries the assignment)."""

    job: Job
    by_examiner: list[tuple[frozenset[str], _Start]] = field(default_factory=list)
    by_workstation: list[tuple[str, _Start]] = field(default_factory=list)
    free: list[_Start] = field(default_factory=list)  # no examiner, no workstation
    left_out: int = -1

    @property
    def own(self) -> list[_Start]:
        """The columns whose sum is the fraction of the job started."""
        if self.job.needs_examiner:
            return [s for _, s in self.by_examiner]
        if self.job.needs_workstation:
            return [s for _, s in self.by_workstation]
        return self.free

    @property
    def timed(self) -> list[_Start]:
        """The columns that say when the job ends (workstation ones when it has a machine part)."""
        if self.job.needs_workstation:
            return [s for _, s in self.by_workstation]
        return self.own


@dataclass(frozen=True)
class LpBound:
    """What one LP bound computation gave: ``value`` (None when GLOP gave no duals) and sizes."""

    value: int | None
    status: str
    columns: int
    rows: int
    build_seconds: float
    solve_seconds: float


class _Model:
    def __init__(self, snapshot: Snapshot, pooled: bool) -> None:
        self.snapshot = snapshot
        self.pooled = pooled
        # (examiner, bucket, exposure work only) -> [first start, last start, longest attended]
        self.spans: dict[tuple[str, int, bool], list[int]] = {}
        self.lp = _Lp()
        self.buckets = _buckets(snapshot)
        self.examiners = snapshot.examiners_by_id
        self.workstations = snapshot.workstations_by_id
        self.logged = ExposureLedger(snapshot)  # rule 3.5's room before anything is planned
        self.jobs: dict[str, _Job] = {}
        self.critical = 0  # the critical-path bound, when relax() could be used

    # -- columns --------------------------------------------------------------------------------

    def add_jobs(self) -> None:
        snapshot = self.snapshot
        h = snapshot.horizon
        present = snapshot.jobs_by_id
        # relax() reads a cap that a job's exposure exceeds as "never with this examiner", true
        # only when every start lies in a listed day and week; otherwise use releases alone.
        chain = (
            relax(snapshot) if _covers(snapshot.days, h) and _covers(snapshot.weeks, h) else None
        )
        fixed = snapshot.kept
        needed = self._needed()
        if chain is not None:
            self.critical = sum(job_tardiness(r.job, r.charged) for r in chain.values())
        for job in snapshot.jobs:
            if job.id not in needed:
                continue
            entry = _Job(job)
            entry.left_out = self.lp.column(job_tardiness(job, h + job.min_duration))
            self.jobs[job.id] = entry
            earliest = max(0, job.release)
            if chain is not None:
                end = chain[job.id].earliest_end
                preds = [chain[p].earliest_end for p in job.after if p in present and p != job.id]
                if end is None or None in preds:
                    continue
                earliest = max([earliest, *(p for p in preds if p is not None)])
            else:
                end = earliest + job.min_duration
            self._job_columns(entry, earliest, end, fixed.get(job.id))

    def _needed(self) -> set[str]:
        """Jobs whose charge can be positive, and their predecessors: leaving every other job
        out costs nothing and only frees capacity, so they cannot change the optimum."""
        h = self.snapshot.horizon
        present = self.snapshot.jobs_by_id
        stack = [j.id for j in self.snapshot.jobs if job_tardiness(j, h + j.min_duration) > 0]
        needed: set[str] = set()
        while stack:
            j = stack.pop()
            if j in needed:
                continue
            needed.add(j)
            stack.extend(p for p in present[j].after if p in present)
        return needed

    def _job_columns(
        self,
        entry: _Job,
        earliest: int,
        earliest_end: int,
        fixed: KeptPlacement | None,
    ) -> None:
        job = entry.job
        h = self.snapshot.horizon
        examiners = [e for e in self.snapshot.examiners if _may_attend(job, e)]
        stations = [w for w in self.snapshot.workstations if may_run(job, w)]
        latest = h
        if fixed is not None:
            ex, ws, start = fixed.examiner, fixed.workstation, fixed.start
            if (ex is not None) != job.needs_examiner or (ws is not None) != job.needs_workstation:
                return  # keeping it breaks a rule: it can only be left out
            examiners = [e for e in examiners if e.id == ex]
            stations = [w for w in stations if w.id == ws]
            earliest, latest = max(earliest, start), start
        if job.needs_examiner and not examiners or job.needs_workstation and not stations:
            return
        by_examiner: dict[str, Starts] = {}
        for e in examiners:
            s = _fits(e.available, job.attended)
            if job.exposure > 0:
                s = intersect_closed(s, _fits(e.exposure.windows, job.attended))
            s = clip_closed(s, earliest, min(latest, h - job.attended))
            if s:
                by_examiner[e.id] = s
        by_station: dict[str, Starts] = {}
        for w in stations:
            s = clip_closed(
                _fits(w.available, job.machine_on(w.id)),
                earliest,
                min(latest, h - job.duration_on(w.id)),
            )
            if s:
                by_station[w.id] = s
        any_examiner = merge_closed(r for s in by_examiner.values() for r in s)
        any_station = merge_closed(r for s in by_station.values() for r in s)

        def cost(end: int) -> int:
            return job_tardiness(job, end)

        for b, bucket in enumerate(self.buckets):
            if bucket.end <= earliest or bucket.start > latest:
                continue
            if not job.needs_examiner and not job.needs_workstation:
                s = clip_closed([(earliest, min(latest, h))], bucket.start, bucket.end - 1)
                if s:
                    first = s[0][0]
                    end = max(first, earliest_end)
                    col = self.lp.column(cost(end))
                    entry.free.append(_Start(col, b, first, s[-1][1], end))
                continue
            starts_e: list[tuple[str, Starts]] = []
            if job.needs_examiner:
                for e_id, s in by_examiner.items():
                    s = clip_closed(s, bucket.start, bucket.end - 1)
                    if job.needs_workstation:
                        s = intersect_closed(s, any_station)
                    if s and self._caps_allow(job, self.examiners[e_id], bucket):
                        starts_e.append((e_id, s))
                if not starts_e:
                    continue
            starts_w: list[tuple[str, Starts]] = []
            if job.needs_workstation:
                for w_id, s in by_station.items():
                    s = clip_closed(s, bucket.start, bucket.end - 1)
                    if job.needs_examiner:
                        s = intersect_closed(s, any_examiner)
                    if s:
                        starts_w.append((w_id, s))
                if not starts_w:
                    continue
            for e_id, s in starts_e:
                for exposed in (False, True)[: 1 + (job.exposure > 0)]:
                    span = self.spans.setdefault((e_id, b, exposed), [s[0][0], s[-1][1], 0])
                    span[:] = [
                        min(span[0], s[0][0]),
                        max(span[1], s[-1][1]),
                        max(span[2], job.attended),
                    ]
            groups = (
                [
                    (
                        frozenset(e for e, _ in starts_e),
                        merge_closed(r for _, s in starts_e for r in s),
                    )
                ]
                if self.pooled and starts_e
                else [(frozenset([e]), s) for e, s in starts_e]
            )
            for holders, s in groups:
                first = s[0][0]
                end = max(first + job.min_duration, earliest_end)
                col = self.lp.column(0 if job.needs_workstation else cost(end))
                entry.by_examiner.append((holders, _Start(col, b, first, s[-1][1], end)))
            for w_id, s in starts_w:
                first = s[0][0]
                end = max(first + job.duration_on(w_id), earliest_end)
                col = self.lp.column(cost(end))
                entry.by_workstation.append((w_id, _Start(col, b, first, s[-1][1], end)))

    def _caps_allow(self, job: Job, examiner: Examiner, bucket: _Bucket) -> bool:
        """Whether the job's exposure fits what is left of the caps of the bucket's day and week."""
        if job.exposure <= 0:
            return True
        return self.logged.exceeded(job, examiner, bucket.day, bucket.week) is None

    # -- rows -----------------------------------------------------------------------------------

    def add_rows(self) -> None:
        self._assignment_and_precedence()
        self._examiner_and_workstation_link()
        self._examiner_time()
        self._exposure_caps()
        self._workstation_time()
        self._pool_time()

    def _assignment_and_precedence(self) -> None:
        """Each job starts once or is left out; a job starts no sooner than its predecessors can
        have ended, as fractions: started[j] by bucket b <= started[p] by the last bucket from
        which p can end by j's latest start up to b."""
        lp = self.lp
        started: dict[str, list[tuple[int, int]]] = {}  # job -> [(bucket, cumulative column)]
        for job_id, entry in self.jobs.items():
            by_bucket: dict[int, list[int]] = defaultdict(list)
            for s in entry.own:
                by_bucket[s.bucket].append(s.col)
            cumulative: list[tuple[int, int]] = []
            previous: int | None = None
            for b in sorted(by_bucket):
                col = lp.column()
                cols = [col, *by_bucket[b]] + ([previous] if previous is not None else [])
                coefs = [1] + [-1] * (len(cols) - 1)
                lp.row(cols, coefs, 0, 0)
                cumulative.append((b, col))
                previous = col
            last = [previous] if previous is not None else []
            lp.row([entry.left_out, *last], [1] * (1 + len(last)), 1, 1)
            started[job_id] = cumulative
        for job_id, entry in self.jobs.items():
            ends: dict[str, dict[int, int]] = {}
            for p in set(entry.job.after):
                if p == job_id or p not in self.jobs:
                    continue  # done (absent), or a self-reference relax() ignores as well
                ends[p] = {}
                for s in self.jobs[p].timed:
                    ends[p][s.bucket] = min(ends[p].get(s.bucket, s.end), s.end)
            if not ends:
                continue
            latest = -1
            last_by_bucket: dict[int, int] = defaultdict(lambda: -1)
            for s in entry.own:
                last_by_bucket[s.bucket] = max(last_by_bucket[s.bucket], s.last)
            for b, col in started[job_id]:
                latest = max(latest, last_by_bucket[b])
                for p, p_ends in ends.items():
                    ready = [k for k, end in p_ends.items() if end <= latest]
                    upto = max(ready, default=-1)
                    p_col = [c for k, c in started[p] if k <= upto][-1:]
                    lp.row([col, *p_col], [1] + [-1] * len(p_col), None, 0)

    def _examiner_and_workstation_link(self) -> None:
        """A job with both parts starts with one examiner and on one workstation at once."""
        for entry in self.jobs.values():
            if not (entry.job.needs_examiner and entry.job.needs_workstation):
                continue
            sides: dict[int, tuple[list[int], list[int]]] = defaultdict(lambda: ([], []))
            for _, s in entry.by_examiner:
                sides[s.bucket][0].append(s.col)
            for _, s in entry.by_workstation:
                sides[s.bucket][1].append(s.col)
            for ex, ws in sides.values():
                self.lp.row(ex + ws, [1] * len(ex) + [-1] * len(ws), 0, 0)

    def _examiner_time(self) -> None:
        """Attended minutes per examiner and bucket; those of exposure work inside exposure
        windows. Work that only a set of examiners may take fits what the set can hold."""
        for exposed in (False, True):
            work: dict[int, list[tuple[frozenset[str], int, int]]] = defaultdict(list)
            for entry in self.jobs.values():
                if exposed and entry.job.exposure <= 0:
                    continue
                for holders, s in entry.by_examiner:
                    work[s.bucket].append((holders, s.col, entry.job.attended))
            for b, items in work.items():

                def held(e_id: str, b: int = b, exposed: bool = exposed) -> int | None:
                    e = self.examiners[e_id]
                    windows: Sequence[Interval] = e.available
                    if exposed:
                        windows = _windows_meet(e.available, e.exposure.windows)
                    first, last, longest = self.spans[(e_id, b, exposed)]
                    reach = max((y - last for x, y in windows if x <= last < y), default=0)
                    return _measure(windows, first, last) + min(longest, reach)

                self._shared(items, held)

    def _exposure_caps(self) -> None:
        """Exposure minutes per examiner and day (less those logged), severity-3 minutes per
        day (logged minutes carry no severity), minutes per week (less those logged)."""
        daily: dict[int, list[tuple[frozenset[str], int, int]]] = defaultdict(list)
        severe: dict[int, list[tuple[frozenset[str], int, int]]] = defaultdict(list)
        weekly: dict[int, list[tuple[frozenset[str], int, int]]] = defaultdict(list)
        for entry in self.jobs.values():
            job = entry.job
            if job.exposure <= 0:
                continue
            for holders, s in entry.by_examiner:
                item = (holders, s.col, job.exposure)
                bucket = self.buckets[s.bucket]
                if bucket.day is not None:
                    daily[bucket.day].append(item)
                    if SEVERE_DAILY.counts(job):
                        severe[bucket.day].append(item)
                if bucket.week is not None:
                    weekly[bucket.week].append(item)

        def left(cap: Cap, period: int) -> Callable[[str], int | None]:
            def limit(e_id: str) -> int | None:
                return self.logged.room(cap, self.examiners[e_id], period)

            return limit

        for day, items in daily.items():
            self._shared(items, left(DAILY, day))
        for day, items in severe.items():
            self._shared(items, left(SEVERE_DAILY, day))
        for week, items in weekly.items():
            self._shared(items, left(WEEKLY, week))

    def _shared(
        self,
        items: list[tuple[frozenset[str], int, int]],
        limit: Callable[[str], int | None],
    ) -> None:
        """One row per set S of examiners some column may go to: the columns that may only go to
        examiners in S need at most what S can give (``limit`` per examiner, None: no limit)."""
        family = {holders for holders, _, _ in items}
        if self.pooled:
            family.add(frozenset().union(*family))
        for group in family:
            caps = [limit(e) for e in group]
            if any(c is None for c in caps):
                continue
            inside = [(col, m) for holders, col, m in items if holders <= group and m > 0]
            held = [c for c in caps if c is not None]
            self.lp.row([c for c, _ in inside], [m for _, m in inside], None, sum(held))
            self._counts(inside, held)
            self._rounded(inside, held)

    def _counts(self, inside: list[tuple[int, int]], caps: list[int]) -> None:
        """Whole jobs: of the jobs needing at least t minutes, an examiner holding ``cap``
        minutes takes no more than the most of the smallest of them that fit (two 165-minute
        reviews never share a 240-minute cap, though 1.45 of them would)."""
        sizes = sorted(m for _, m in inside)
        if not sizes:
            return
        previous = None
        for i, t in enumerate(sizes):
            if i and t == sizes[i - 1]:
                continue
            prefix = list(accumulate(sizes[i:]))
            most = sum(bisect_right(prefix, cap) for cap in caps)
            if most == previous or most * t >= sum(caps):
                continue  # no stronger than the minutes row or the previous (larger) count
            previous = most
            chosen = [col for col, m in inside if m >= t]
            self.lp.row(chosen, [1] * len(chosen), None, most)

    def _rounded(self, inside: list[tuple[int, int]], caps: list[int]) -> None:
        """Whole jobs, in units of t minutes: each examiner's jobs fit ``cap``, so they hold at
        most ``cap // t`` whole units, and a job of m minutes holds ``m // t`` of them (two
        210-minute reviews and part of a 150-minute report fill 510 minutes; in units of 103
        minutes they need 4.4 of 4). One row per t just above ``cap / (k + 1)``."""
        if not inside or not caps:
            return
        top = max(caps)
        for t in sorted({top // (k + 1) + 1 for k in range(1, ROUNDED_ROWS + 1)}):
            units = [(col, m // t) for col, m in inside if m >= t]
            most = sum(c // t for c in caps)
            if sum(u for _, u in units) <= most:
                continue  # cannot bind
            self.lp.row([c for c, _ in units], [u for _, u in units], None, most)

    def _workstation_time(self) -> None:
        work: dict[str, list[tuple[_Start, int]]] = defaultdict(list)
        for entry in self.jobs.values():
            for w_id, s in entry.by_workstation:
                work[w_id].append((s, entry.job.machine_on(w_id)))
        for w_id, items in work.items():
            w = self.workstations[w_id]
            self._load(items, w.available, w.capacity)

    def _pool_time(self) -> None:
        """A licence is held for the whole job; an unknown pool has no licences at all."""
        capacity = {p.id: p.capacity for p in self.snapshot.pools}
        held: dict[str, list[tuple[_Start, int]]] = defaultdict(list)
        for entry in self.jobs.values():
            for pool in set(entry.job.pools):
                if entry.job.needs_workstation:
                    for w_id, s in entry.by_workstation:
                        held[pool].append((s, entry.job.duration_on(w_id)))
                else:
                    held[pool] += [(s, entry.job.attended) for s in entry.own]
        h = self.snapshot.horizon
        for pool, items in held.items():
            self._load(items, [(0, h)], capacity.get(pool, 0))

    def _load(
        self, items: list[tuple[_Start, int]], windows: Sequence[Interval], capacity: int
    ) -> None:
        """Work of the jobs started in buckets b1..b2 on one resource (see the module docstring):
        at most ``capacity * window minutes in [F, L)`` plus ``capacity`` jobs running past L."""
        by_bucket: dict[int, list[tuple[_Start, int]]] = defaultdict(list)
        for s, minutes in items:
            if minutes > 0:
                by_bucket[s.bucket].append((s, minutes))
        if not by_bucket:
            return
        work = sum(m for _, m in items if m > 0)
        lp = self.lp
        buckets = sorted(by_bucket)
        total: list[int] = []  # cumulative work column after each bucket of ``buckets``
        for b in buckets:
            here = by_bucket[b]
            col = lp.column(upper=work)
            cols = [col] + [s.col for s, _ in here] + total[-1:]
            coefs = [1] + [-m for _, m in here] + [-1] * len(total[-1:])
            lp.row(cols, coefs, 0, 0)
            total.append(col)
        for i in range(len(buckets)):
            first = min(s.first for s, _ in by_bucket[buckets[i]])
            last = longest = -1
            for k in range(i, len(buckets)):
                for s, m in by_bucket[buckets[k]]:
                    last, longest = max(last, s.last), max(longest, m)
                reach = max((b - last for a, b in windows if a <= last < b), default=0)
                cap = capacity * (_measure(windows, first, last) + min(longest, reach))
                cols = [total[k]] + ([total[i - 1]] if i > 0 else [])
                lp.row(cols, [1, -1][: len(cols)], None, cap)


def lp_bound_report(
    snapshot: Snapshot, time_limit: float = LP_TIME_LIMIT, pooled: bool = True
) -> LpBound:
    """``lp_bound`` with its status, model size and build and solve times.

    ``pooled`` gives one column per job and bucket for all its examiners instead of one per
    examiner; rows then limit what each set of examiners can hold together. Weaker in theory,
    but within 0.3 % of the per-examiner LP on generated small labs at a third of the columns,
    and a medium lab's 49k columns solve in about 13 s where 361k took 300 s.
    """
    started = time.perf_counter()
    if snapshot.objective == "makespan":
        return LpBound(None, "makespan", 0, 0, 0.0, 0.0)
    model = _Model(snapshot, pooled)
    model.add_jobs()
    model.add_rows()
    lp = model.lp
    request = lp.proto(time_limit)
    built = time.perf_counter()
    response = linear_solver_pb2.MPSolutionResponse()
    pywraplp.Solver.SolveWithProto(request, response)
    status = linear_solver_pb2.MPSolverResponseStatus.Name(response.status)
    value: int | None = None
    duals = response.dual_value
    if len(duals) == len(lp.rows):
        # any duals give a valid bound (``_Lp.dual_bound``), even those of an unfinished solve
        value = snapshot.weights.tardiness * max(0, lp.dual_bound(duals), model.critical)
    solved = time.perf_counter()
    logger.debug(
        "LP bound %s (%s): %d columns, %d rows, built in %.2f s, solved and checked in %.2f s",
        value,
        status,
        len(lp.cost),
        len(lp.rows),
        built - started,
        solved - built,
    )
    return LpBound(value, status, len(lp.cost), len(lp.rows), built - started, solved - built)


def lp_bound(
    snapshot: Snapshot, time_limit: float = LP_TIME_LIMIT, pooled: bool = True
) -> int | None:
    """A lower bound on ``weights.tardiness`` times the tardiness term of every valid plan, from
    the time-indexed LP (module docstring); None for makespan snapshots or when GLOP stops
    without an answer within ``time_limit`` seconds."""
    return lp_bound_report(snapshot, time_limit, pooled).value
