"""When will a job left out of the horizon be examined? A fast capacity simulation past the horizon.

Nothing is silently parked (docs/architecture.md §1): every unscheduled job that some examiner and
workstation could ever take gets a projected start and end beyond the horizon, so every case in
the backlog has an expected date.

The simulation is deliberately simple and deterministic, so thousands of jobs take well under a
second:

- each examiner's *typical week* (the full week of the horizon in which they are available the
  longest, so one week of leave does not stretch every forecast) repeats after the horizon;
- jobs are taken in priority order (weight, then due time, then release, then received order), a
  job only after its predecessors (planned or forecast);
- each goes to the eligible examiner who would finish it first; an examiner works through their
  queue without going back to fill earlier gaps, and attended work may run across shifts;
- the daily, severe daily and weekly exposure caps hold (an exposure job moves to the next day
  with room; docs/architecture.md §3.5);
- workstations are relaxed to their capacity (no maintenance windows), licence pools are ignored.
"""

from __future__ import annotations

import heapq
import logging
import time
from bisect import bisect_right
from collections.abc import Mapping, Sequence

from .eligibility import caps_allow, examiner_can_take, workstation_can_take
from .plan import Forecast, Plan
from .rules.exposure import ExposureLedger
from .snapshot import Examiner, Job, Snapshot

log = logging.getLogger(__name__)

WEEK = 7 * 24 * 60
DAY = 24 * 60


class _Pattern:
    """An examiner's availability repeating every ``period`` minutes after ``origin``."""

    def __init__(self, windows: Sequence[tuple[int, int]], base: int, period: int) -> None:
        # offsets inside one period, sorted; windows given in [base, base + period)
        self.period = period
        self.origin = base
        offsets = sorted((a - base, b - base) for a, b in windows if a < b)
        self.starts = [a for a, _ in offsets]
        self.ends = [b for _, b in offsets]
        self.minutes = sum(b - a for a, b in offsets)

    def _locate(self, t: int) -> tuple[int, int]:
        """(period number, window index) of the first window that ends after ``t``."""
        rel = t - self.origin
        k, off = divmod(rel, self.period)
        i = bisect_right(self.ends, off)
        if i == len(self.ends):
            return k + 1, 0
        return k, i

    def next_free(self, t: int) -> int:
        """First available minute at or after ``t``."""
        t = max(t, self.origin)
        k, i = self._locate(t)
        a = self.origin + k * self.period + self.starts[i]
        return max(a, t)

    def consume(self, t: int, minutes: int) -> int:
        """When ``minutes`` of work starting at the first available minute >= t are done."""
        t = self.next_free(t)
        k, i = self._locate(t)
        while True:
            a = self.origin + k * self.period + self.starts[i]
            b = self.origin + k * self.period + self.ends[i]
            s = max(a, t)
            if s + minutes <= b:
                return s + minutes
            minutes -= b - s
            i += 1
            if i == len(self.starts):
                i = 0
                k += 1


def _typical_week(snapshot: Snapshot, examiner: Examiner) -> _Pattern | None:
    """The examiner's availability pattern to repeat after the horizon (None: never available)."""
    h = snapshot.horizon
    period = WEEK if h >= WEEK else h
    # Periods end at the horizon: [offset + n * period, offset + (n + 1) * period).
    offset = h % period
    minutes: dict[int, int] = {}
    for a, b in examiner.available:
        a, b = max(a, offset), min(b, h)
        while a < b:
            n = (a - offset) // period
            end = min(b, offset + (n + 1) * period)
            minutes[n] = minutes.get(n, 0) + end - a
            a = end
    worked = [n for n, m in minutes.items() if m > 0]
    if not worked:
        return None
    # The longest week; of equally long ones the latest, the most like the weeks to come.
    base = offset + period * max(worked, key=lambda n: (minutes[n], n))
    windows = [
        (max(a, base), min(b, base + period))
        for a, b in examiner.available
        if min(b, base + period) > max(a, base)
    ]
    return _Pattern(windows, base, period)


def _priority(job: Job, order: int) -> tuple[int, int, int, int]:
    return (-job.weight, job.due if job.due is not None else 2**62, job.release, order)


class _Simulation:
    """Examiner queues and workstation lanes past the horizon, filled job by job."""

    def __init__(self, snapshot: Snapshot) -> None:
        h = snapshot.horizon
        self.snapshot = snapshot
        self.patterns: dict[str, _Pattern] = {}
        for e in snapshot.examiners:
            p = _typical_week(snapshot, e)
            if p is not None and p.starts:
                self.patterns[e.id] = p
        self.cursor = dict.fromkeys(self.patterns, h)
        # first available minute at or after each cursor, kept current for quick pruning
        self.free_at = {e: p.next_free(h) for e, p in self.patterns.items()}
        self._eligible: dict[tuple[object, ...], list[Examiner]] = {}
        self.rank = {e.id: i for i, e in enumerate(snapshot.examiners)}
        self.lanes = {w.id: [h] * max(w.capacity, 1) for w in snapshot.workstations}
        self.day_origin = snapshot.days[-1][0] if snapshot.days else 0
        self.week_origin = snapshot.weeks[-1][0] if snapshot.weeks else 0
        # Rule 3.5's caps over the forecast's own days and weeks, counted from the last listed
        # day (week); nothing is logged that far ahead.
        self.exposure = ExposureLedger(snapshot, logged=False)
        self.examiner_of: dict[str, str | None] = {}  # who takes each forecast job

    def _exposure_start(self, e: Examiner, job: Job, t: int) -> int:
        """First time >= t on a day (and week) whose caps leave room for the job."""
        pattern = self.patterns[e.id]
        for _ in range(10_000):
            t = pattern.next_free(t)
            d, w = self._periods(t)
            cap = self.exposure.exceeded(job, e, d, w)
            if cap is None:
                return t
            if cap.period == "day":
                t = self.day_origin + (d + 1) * DAY
            else:
                t = self.week_origin + (w + 1) * WEEK
        return t

    def _periods(self, t: int) -> tuple[int, int]:
        """The forecast's day and week of ``t``: whole days (weeks) from the last listed one."""
        return (t - self.day_origin) // DAY, (t - self.week_origin) // WEEK

    def place(self, job: Job, ready: int) -> Forecast | None:
        """Earliest-finishing eligible examiner (and workstation lane) for the job, committed."""
        snap = self.snapshot
        examiners: list[Examiner | None] = [None]
        if job.needs_examiner:
            key = (job.skills, job.examiners, job.severity, job.exposure)
            if key not in self._eligible:
                self._eligible[key] = [
                    e
                    for e in snap.examiners
                    if e.id in self.patterns and examiner_can_take(job, e) and caps_allow(job, e)
                ]
            examiners = list(self._eligible[key])
        ws: str | None = None
        lane = 0
        t_ws = ready
        if job.needs_workstation:
            # the workstation lane that frees first (machine minutes break ties), then examiners
            options = []
            for i, w in enumerate(snap.workstations):
                if workstation_can_take(job, w):
                    lanes = self.lanes[w.id]
                    k = min(range(len(lanes)), key=lanes.__getitem__)
                    free = max(ready, lanes[k])
                    options.append((free + job.machine_on(w.id), free, i, w.id, k))
            if not options:
                return None
            _, t_ws, _, ws, lane = min(options)
        if not examiners:
            return None
        machine = job.machine_on(ws)
        best: tuple[int, int, int, Examiner | None] | None = None
        s0 = max(ready, t_ws)
        if job.needs_examiner:  # likely winners first, so the pruning below bites early
            examiners.sort(key=lambda x: max(s0, self.free_at[x.id]) if x else s0)
        for e in examiners:
            s = s0
            if e is None:
                end = s + machine
            else:
                free = self.free_at[e.id]
                if best is not None and max(s, free) + max(job.attended, machine) > best[0]:
                    break  # sorted by earliest start: nobody later can finish sooner
                s = max(s, free)
                pattern = self.patterns[e.id]
                s = self._exposure_start(e, job, s) if job.exposure > 0 else pattern.next_free(s)
                end = max(pattern.consume(s, job.attended), s + machine)
            rank = self.rank[e.id] if e is not None else 0
            if best is None or (end, s, rank) < best[:3]:
                best = (end, s, rank, e)
        assert best is not None
        end, start, _, e = best
        if e is not None:
            self.cursor[e.id] = self.patterns[e.id].consume(start, job.attended)
            self.free_at[e.id] = self.patterns[e.id].next_free(self.cursor[e.id])
            if job.exposure > 0:
                self.exposure.take(job, e, *self._periods(start))
        if ws is not None:
            self.lanes[ws][lane] = start + job.machine_on(ws)
        self.examiner_of[job.id] = e.id if e is not None else None
        return Forecast(job.id, start, end)


def forecast(snapshot: Snapshot, plan: Plan, deadline: float | None = None) -> tuple[Forecast, ...]:
    """Projected start and end, beyond the horizon, of every unscheduled job that can be done.

    Jobs no examiner or workstation may ever take (and their successors) get no forecast: their
    unscheduled reason says why. The result is in snapshot order. Past ``deadline``
    (``time.monotonic()``) the simulation stops: the jobs it had not reached (the least urgent,
    as it goes in priority order) get no forecast, and a warning says how many.
    """
    return forecast_by_examiner(snapshot, plan, deadline)[0]


def forecast_by_examiner(
    snapshot: Snapshot, plan: Plan, deadline: float | None = None
) -> tuple[tuple[Forecast, ...], Mapping[str, str | None]]:
    """`forecast`, and who the simulation has take each forecast job (``None``: no examiner)."""
    h = snapshot.horizon
    jobs = snapshot.jobs_by_id
    order = {j.id: i for i, j in enumerate(snapshot.jobs)}
    ends = {a.job: a.end for a in plan.assignments if a.job in jobs}
    pending = [j for j in snapshot.jobs if j.id not in ends]
    if not pending:
        return (), {}
    if deadline is not None and time.monotonic() >= deadline:
        log.warning("forecast skipped at the time limit: %d unscheduled jobs", len(pending))
        return (), {}
    sim = _Simulation(snapshot)
    preds = {
        j.id: [p for p in dict.fromkeys(j.after) if p in jobs and p != j.id and p not in ends]
        for j in pending
    }
    succs: dict[str, list[str]] = {j.id: [] for j in pending}
    for j in pending:
        for p in preds[j.id]:
            succs[p].append(j.id)
    waiting = {j: len(ps) for j, ps in preds.items()}
    heap = [(_priority(j, order[j.id]), j.id) for j in pending if waiting[j.id] == 0]
    heapq.heapify(heap)
    out: dict[str, Forecast] = {}
    placed_count = 0
    while heap:
        placed_count += 1
        if deadline is not None and placed_count % 64 == 0 and time.monotonic() >= deadline:
            log.warning(
                "forecast cut short at the time limit: %d of %d unscheduled jobs not reached",
                len(pending) - placed_count + 1,
                len(pending),
            )
            break
        _, job_id = heapq.heappop(heap)
        job = jobs[job_id]
        ready = max(h, job.release)
        blocked = False
        for p in preds[job_id]:
            if p in out:
                ready = max(ready, out[p].end)
            else:
                blocked = True  # its predecessor can never be done
        for p in job.after:
            if p in ends:
                ready = max(ready, ends[p])
        placed = None if blocked else sim.place(job, ready)
        if placed is not None:
            out[job_id] = placed
        for s in succs[job_id]:
            waiting[s] -= 1
            if waiting[s] == 0:
                heapq.heappush(heap, (_priority(jobs[s], order[s]), s))
    return tuple(out[j.id] for j in snapshot.jobs if j.id in out), sim.examiner_of
