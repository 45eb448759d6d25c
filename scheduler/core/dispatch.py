"""Dispatch baselines: the list-scheduling policies labs use today (docs/architecture.md §5.2).

Each policy keeps a ready list (jobs whose present predecessors are all placed) and repeatedly takes
the most pressing ready job by its rule, placing it at the earliest end it can get from any eligible
examiner / workstation pair that honours every hard rule (docs/architecture.md §3):

- ``fifo``: the time a job joined the queue (its release, or when its last predecessor ends),
  then the order in which jobs were received (snapshot order);
- ``priority``: weight descending, then FIFO (strict priority, as most labs run their queue);
- ``wsjf``: weight / minimum duration descending (weighted shortest job first), then FIFO.

Pins and frozen published assignments are placed first, exactly. Jobs that cannot be placed inside
the horizon are returned as unscheduled with a reason code and a detail a supervisor understands.
Given a deadline, a dispatch stops searching once it passes: the jobs it has not reached are left
out as ``horizon_full`` with the detail ``NOT_DISPATCHED`` (their successors wait for them), so
a lab larger than its time limit still gets a valid plan in time, its most pressing jobs first.

The plans are valid by construction (the verifier checks them in every test), fast enough to be the
first plan of every solve, and the baselines every benchmark compares the optimizer against.
Resources are kept as sorted free-segment lists (``calendar.FreeList``), never per-minute arrays.
"""

from __future__ import annotations

import heapq
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from .calendar import Calendar, FreeList, Lanes
from .eligibility import caps_allow, examiner_can_take, workstation_can_take
from .intervals import keep_touching
from .objective import plan_objective
from .plan import (
    EXPOSURE_CAPS,
    FEASIBLE,
    HORIZON_FULL,
    NO_ELIGIBLE_EXAMINER,
    NO_ELIGIBLE_WORKSTATION,
    PIN_CONFLICT,
    PREDECESSOR_UNSCHEDULED,
    RELEASED_AFTER_HORIZON,
    Assignment,
    Plan,
    Unscheduled,
    clock,
)
from .rules.exposure import ExposureLedger
from .rules.names import PIN
from .snapshot import Examiner, Job, Snapshot, Workstation

logger = logging.getLogger(__name__)

POLICIES = ("fifo", "priority", "wsjf")

#: The order in which ``best_dispatch`` tries the policies: strict priority first, so that when
#: the time limit cuts the baselines short, the jobs left unreached are the least urgent.
TRY_ORDER = ("priority", "fifo", "wsjf")

#: Placements a search works out beyond the first it finds before it takes the best of them.
#: Pairs are tried most promising first, and on the benchmark labs no search needs more than
#: about 70, so their plans are exact; a lab of hundreds of examiners and workstations would
#: otherwise try thousands of pairs for every job and not be dispatched within its time limit.
SEARCH_TRIES = 128

NOT_DISPATCHED = "not placed: the solve's time limit ran out before dispatch reached this job"

# A ready job's sort key from the job, its received order and the time it joined the queue
# (release, or its last predecessor's end): smaller is dispatched first.
PolicyKey = Callable[[Job, int, int], tuple[float, ...]]


def _fifo_key(job: Job, order: int, queued: int) -> tuple[float, ...]:
    return (queued, order)


def _priority_key(job: Job, order: int, queued: int) -> tuple[float, ...]:
    return (-job.weight, queued, order)


def _wsjf_key(job: Job, order: int, queued: int) -> tuple[float, ...]:
    return (-job.weight / max(job.min_duration, 1), queued, order)


POLICY_KEYS: dict[str, PolicyKey] = {
    "fifo": _fifo_key,
    "priority": _priority_key,
    "wsjf": _wsjf_key,
}


def workstation_occupancy(job: Job, workstation: str | None) -> int:
    """Minutes a job holds its workstation from its start: its machine part (as verify reads it)."""
    return job.machine_on(workstation)


@dataclass
class ExaminerState:
    """One examiner's remaining free time and exposure budget during a dispatch."""

    examiner: Examiner
    index: int
    free: FreeList
    exposure_windows: FreeList
    exposure_planned: int = 0


@dataclass
class WorkstationState:
    workstation: Workstation
    index: int
    lanes: Lanes


class Board:
    """The resources of one snapshot and what has been reserved on them so far.

    Shared by the dispatch policies and the recommendation call: ``earliest_examiner`` and
    ``fit`` answer "when could this job start here", ``reserve`` commits a placement.
    """

    def __init__(self, snapshot: Snapshot) -> None:
        self.snapshot = snapshot
        h = snapshot.horizon
        self.days = Calendar(snapshot.days)
        self.weeks = Calendar(snapshot.weeks)
        self.examiners: dict[str, ExaminerState] = {}
        for i, e in enumerate(snapshot.examiners):
            windows = e.exposure.windows or e.available
            self.examiners[e.id] = ExaminerState(
                examiner=e,
                index=i,
                free=FreeList(keep_touching(e.available, 0, h)),
                exposure_windows=FreeList(keep_touching(windows, 0, h)),
            )
        # Exposure logged and reserved so far, against the caps of rule 3.5.
        self.exposure = ExposureLedger(snapshot)
        self.workstations: dict[str, WorkstationState] = {
            w.id: WorkstationState(w, i, Lanes(w.capacity, keep_touching(w.available, 0, h)))
            for i, w in enumerate(snapshot.workstations)
        }
        self.pools: dict[str, Lanes] = {p.id: Lanes(p.capacity, [(0, h)]) for p in snapshot.pools}

    # -- exposure ---------------------------------------------------------------------------

    def exposure_block(
        self, st: ExaminerState, job: Job, start: int, listed_only: bool = True
    ) -> int | None:
        """None if the caps allow the job to start at ``start``; else the next time worth trying.

        A job counts against the day and week in which it starts. The verifier applies no cap to
        a start outside every listed day (week); with ``listed_only`` (the dispatch search) such
        starts are simply not used for exposure work, which is always safe.
        """
        d = self.days.index(start)
        w = self.weeks.index(start)
        if listed_only and (d is None or w is None):
            nxt = self.days.next_start(start) if d is None else self.weeks.next_start(start)
            return nxt if nxt is not None else self.snapshot.horizon
        cap = self.exposure.exceeded(job, st.examiner, d, w)
        if cap is None:
            return None
        if cap.period == "day":
            assert d is not None
            return self.snapshot.days[d][1]
        assert w is not None
        return self.snapshot.weeks[w][1]

    def earliest_examiner(
        self, st: ExaminerState, job: Job, t: int, use_caps: bool = True
    ) -> int | None:
        """Earliest start >= t at which this examiner could do the job's attended part."""
        length = job.attended
        horizon = self.snapshot.horizon
        while t < horizon:
            s = st.free.earliest(t, length)
            if s is None:
                return None
            if job.exposure <= 0:
                return s
            s2 = st.exposure_windows.earliest(s, length)
            if s2 is None:
                return None
            if s2 != s:
                t = s2
                continue
            if use_caps:
                nxt = self.exposure_block(st, job, s)
                if nxt is not None:
                    t = max(nxt, s + 1)
                    continue
            return s
        return None

    # -- placement --------------------------------------------------------------------------

    def fit(
        self,
        job: Job,
        ex: ExaminerState | None,
        ws: WorkstationState | None,
        t: int,
        limit: int,
        use_caps: bool = True,
    ) -> int | None:
        """Earliest common start >= t on the examiner, workstation and pools, ending by ``limit``.

        Each resource answers "earliest start >= s that suits me"; iterating them to a fixed point
        gives the earliest start that suits all of them at once.
        """
        wid = ws.workstation.id if ws is not None else None
        duration = job.duration_on(wid)
        occupancy = workstation_occupancy(job, wid)
        pools = [self.pools[p] for p in job.pools]
        s: int | None = t
        while s is not None:
            if s + duration > limit:
                return None
            s0 = s
            if ex is not None:
                s = self.earliest_examiner(ex, job, s, use_caps)
                if s is None:
                    return None
            if ws is not None:
                s = ws.lanes.earliest(s, occupancy)
                if s is None:
                    return None
            for pool in pools:
                s = pool.earliest(s, duration)
                if s is None:
                    return None
            if s == s0:
                return s
        return None

    def problem(self, job: Job, examiner: str | None, workstation: str | None, start: int) -> str:
        """Why a given placement breaks a hard rule right now ("" if it does not).

        Used for pins and frozen assignments, which must be kept exactly or not at all; the
        precedence rule is checked separately, once the predecessors are placed.
        """
        by_workstation = job.machine_by_workstation
        if (
            workstation is not None
            and by_workstation is not None
            and workstation not in by_workstation
        ):
            return f"{workstation} is not one of the job's workstations"
        end = start + job.duration_on(workstation)
        if start < job.release:
            return f"starts at {clock(start)}, before its release at {clock(job.release)}"
        if start < 0 or end > self.snapshot.horizon:
            return "runs outside the horizon"
        if job.needs_examiner:
            st = self.examiners.get(examiner) if examiner is not None else None
            if st is None:
                return "needs an examiner but none (or an unknown one) is given"
            e = st.examiner
            if not job.skills <= e.skills:
                return f"{e.id} lacks skills {'+'.join(sorted(job.skills - e.skills))}"
            if job.examiners is not None and e.id not in job.examiners:
                return f"{e.id} is not on the job's examiner list"
            if not st.free.fits(start, job.attended):
                return f"{e.id} is not available or already busy then"
            if job.exposure > 0:
                if job.severity > e.exposure.max_severity:
                    return f"severity {job.severity} is above {e.id}'s limit"
                if not st.exposure_windows.fits(start, job.attended):
                    return f"outside {e.id}'s exposure window"
                if self.exposure_block(st, job, start, listed_only=False) is not None:
                    return f"{e.id}'s exposure caps would be exceeded"
        elif examiner is not None:
            return "has no attended part but an examiner is given"
        if job.needs_workstation:
            ws = self.workstations.get(workstation) if workstation is not None else None
            if ws is None:
                return "needs a workstation but none (or an unknown one) is given"
            if not workstation_can_take(job, ws.workstation):
                return f"{ws.workstation.id} cannot run it"
            occupancy = workstation_occupancy(job, workstation)
            if ws.lanes.earliest(start, occupancy) != start:
                return f"{ws.workstation.id} is not available or at capacity then"
        elif workstation is not None:
            return "has no machine part but a workstation is given"
        for p in job.pools:
            pool = self.pools.get(p)
            if pool is None or pool.earliest(start, end - start) != start:
                return f"licence pool {p} is at capacity then"
        return ""

    def reserve(self, job: Job, examiner: str | None, workstation: str | None, start: int) -> None:
        """Commit a placement (already checked by ``fit`` or ``problem``)."""
        end = start + job.duration_on(workstation)
        if examiner is not None and job.needs_examiner:
            st = self.examiners[examiner]
            st.free.reserve(start, start + job.attended)
            if job.exposure > 0:
                self._charge_exposure(st, job, start)
        if workstation is not None and job.needs_workstation:
            occupancy = workstation_occupancy(job, workstation)
            self.workstations[workstation].lanes.reserve(start, start + occupancy)
        for p in job.pools:
            self.pools[p].reserve(start, end)

    def _charge_exposure(self, st: ExaminerState, job: Job, start: int) -> None:
        self.exposure.take(job, st.examiner, self.days.index(start), self.weeks.index(start))
        st.exposure_planned += job.exposure


# (earliest start, latest end, size, exposure caps were the only obstacle) of a failed search
_Failure = tuple[int, int, tuple[int, ...], bool]


def _family(job: Job) -> tuple[object, ...]:
    """Jobs that compete for exactly the same resources under the same rules."""
    mbw = tuple(sorted(job.machine_by_workstation)) if job.machine_by_workstation else None
    return (
        job.skills,
        job.capabilities,
        job.pools,
        job.examiners,
        job.severity,
        job.exposure > 0,
        job.needs_examiner,
        job.needs_workstation,
        mbw,
    )


def _size(job: Job) -> tuple[int, ...]:
    """Attended, exposure and machine minutes (per workstation when they differ)."""
    if job.machine_by_workstation:
        machine = tuple(job.machine_by_workstation[w] for w in sorted(job.machine_by_workstation))
    else:
        machine = (job.machine,)
    return (job.attended, job.exposure, *machine)


def _dominates(failure: _Failure, t0: int, limit: int, size: tuple[int, ...]) -> bool:
    f_t0, f_limit, f_size, _ = failure
    return (
        f_t0 <= t0
        and f_limit >= limit
        and len(f_size) == len(size)
        and all(a <= b for a, b in zip(f_size, size, strict=True))
    )


class _Dispatcher:
    def __init__(
        self,
        snapshot: Snapshot,
        key: PolicyKey,
        keep_published: bool = False,
        hold_levels: bool = False,
    ) -> None:
        self.snapshot = snapshot
        self.key = key
        self.keep_published = keep_published or hold_levels
        self.hold_levels = hold_levels
        self.held: dict[str, Assignment] = {}  # published placements reserved level by level
        self.held_weights: set[int] = set()
        self.board = Board(snapshot)
        self.jobs = snapshot.jobs_by_id
        self.order = {j.id: i for i, j in enumerate(snapshot.jobs)}
        self.preds: dict[str, list[str]] = {}
        self.succs: dict[str, list[str]] = {j.id: [] for j in snapshot.jobs}
        for j in snapshot.jobs:
            ps = list(dict.fromkeys(p for p in j.after if p in self.jobs and p != j.id))
            self.preds[j.id] = ps
            for p in ps:
                self.succs[p].append(j.id)
        self.assigned: dict[str, Assignment] = {}
        self.unscheduled: dict[str, Unscheduled] = {}
        self.fixed: dict[str, Assignment] = {}
        self.set_aside: dict[str, tuple[str | None, str | None, int]] = {}
        self.dropped: dict[str, str] = {}  # kept placements given up during the run
        self.clashes = 0  # kept placements refused because they clash with another
        self.case_examiners: dict[str, set[str]] = {}
        self.previous = {p.job: p for p in snapshot.previous}
        # searches that found no room, per job family: free time only shrinks during a dispatch,
        # so a job of the same family that is no smaller, no earlier and no less constrained in
        # time cannot fit either (it would cost a full, fruitless search again)
        self._failed: dict[tuple[object, ...], list[_Failure]] = {}

    # -- set-up -----------------------------------------------------------------------------

    def place_fixed(self, set_aside: Mapping[str, str]) -> None:
        """Reserve pins, then frozen assignments, exactly; one that breaks a rule is left out
        with reason ``pin_conflict`` rather than published broken.

        ``set_aside`` are kept placements an earlier pass had to drop (a predecessor could not
        finish in time); they reserve nothing, so they cannot crowd out other kept placements.
        """
        for job_id, k in self.snapshot.kept.items():
            ex, ws, start, source = k.examiner, k.workstation, k.start, k.kind
            job = self.jobs[job_id]
            if job_id in set_aside:
                self._skip(job, PIN_CONFLICT, set_aside[job_id])
                self.set_aside[job_id] = (ex, ws, start)
                continue
            problem = self.board.problem(job, ex, ws, start)
            if problem:
                what = "pinned" if source == PIN else "frozen"
                self._skip(job, PIN_CONFLICT, f"cannot keep the {what} placement: {problem}")
                logger.warning("%s placement of %s not kept: %s", source, job_id, problem)
                self.clashes += 1
                continue
            self.board.reserve(job, ex, ws, start)
            end = start + job.duration_on(ws)
            self.fixed[job_id] = Assignment(job_id, ex, ws, start, end)

    def deadlines(self) -> dict[str, tuple[int, str]]:
        """Latest end for jobs that must finish before a fixed successor starts, and that job."""
        out: dict[str, tuple[int, str]] = {}
        for job_id in reversed(self._topological()):
            best: tuple[int, str] | None = None
            for s in self.succs[job_id]:
                if s in self.fixed:
                    cand = (self.fixed[s].start, s)
                elif s in out:
                    cand = (out[s][0] - self.jobs[s].min_duration, out[s][1])
                else:
                    continue
                if best is None or cand < best:
                    best = cand
            if best is not None:
                out[job_id] = best
        return out

    def _topological(self) -> list[str]:
        indeg = {j: len(ps) for j, ps in self.preds.items()}
        stack = [j.id for j in reversed(self.snapshot.jobs) if indeg[j.id] == 0]
        out: list[str] = []
        while stack:
            j = stack.pop()
            out.append(j)
            for s in self.succs[j]:
                indeg[s] -= 1
                if indeg[s] == 0:
                    stack.append(s)
        return out

    # -- main loop --------------------------------------------------------------------------

    def run(self, deadline: float | None = None) -> None:
        """Serve the ready list in policy order until every job is placed or left out.

        Fixed jobs are reserved up front but only released to their successors once their own
        predecessors are known to finish in time; otherwise they too become ``pin_conflict``.
        Past ``deadline`` (``time.monotonic()``) the jobs still to search are left out.
        """
        deadlines = self.deadlines()
        waiting = {j: len(ps) for j, ps in self.preds.items()}
        heap: list[tuple[tuple[float, ...], str]] = []

        def key(job_id: str) -> tuple[float, ...]:
            job = self.jobs[job_id]
            if job_id in self.fixed:
                return (0, self.fixed[job_id].start, self.order[job_id])
            queued = max(
                [job.release]
                + [self.assigned[p].end for p in self.preds[job_id] if p in self.assigned]
            )
            policy = self.key(job, self.order[job_id], queued)
            if job_id in deadlines:
                return (1, deadlines[job_id][0], *policy)
            if self.hold_levels:
                return (2, -job.weight, *policy)
            return (2, 0, *policy)

        def push_ready(job_id: str) -> None:
            if job_id not in self.unscheduled:
                heapq.heappush(heap, (key(job_id), job_id))

        for job in self.snapshot.jobs:
            if waiting[job.id] == 0:
                push_ready(job.id)
        for job_id in list(self.unscheduled):  # fixed placements already left out
            self._release_successors(job_id, waiting, push_ready)

        while heap:
            _, job_id = heapq.heappop(heap)
            job = self.jobs[job_id]
            late = self._late_predecessor(job)
            if job_id in self.fixed:
                if late:
                    detail = f"cannot keep the kept placement: {late}"
                    self._skip(job, PIN_CONFLICT, detail)
                    self.dropped[job_id] = detail
                else:
                    self._record(job, self.fixed[job_id])
            elif late:
                self._skip(job, PREDECESSOR_UNSCHEDULED, late)
            else:
                # the work a kept placement waits for (``deadlines``) goes first, before any
                # published work takes its room
                if (
                    self.hold_levels
                    and job.weight not in self.held_weights
                    and job_id not in deadlines
                ):
                    self._hold_level(job.weight, deadlines)
                if job_id in self.held:
                    self._record(job, self.held[job_id])
                elif deadline is not None and time.monotonic() >= deadline:
                    self._skip(job, HORIZON_FULL, NOT_DISPATCHED)
                else:
                    self._dispatch_one(job, deadlines.get(job_id))
            self._release_successors(job_id, waiting, push_ready)

        for job in self.snapshot.jobs:
            if job.id not in self.assigned and job.id not in self.unscheduled:
                self._skip(job, PREDECESSOR_UNSCHEDULED, "its predecessors form a cycle")

    def _hold_level(self, weight: int, deadlines: Mapping[str, tuple[int, str]]) -> None:
        """Reserve at once every published placement of this weight's jobs that still keeps
        every rule, in order of start, each only after its predecessors (placed, kept or held)
        end: the level's other work then fills the room left instead of taking a published slot
        and pushing its holder into the next one."""
        self.held_weights.add(weight)
        level = [
            p
            for p in self.previous.values()
            if p.job in self.jobs
            and self.jobs[p.job].weight == weight
            and p.job not in self.fixed
            and p.job not in self.assigned
            and p.job not in self.unscheduled
        ]
        horizon = self.snapshot.horizon
        for prev in sorted(level, key=lambda p: (p.start, self.order[p.job])):
            job = self.jobs[prev.job]
            t0 = max(job.release, 0)
            for p in self.preds[job.id]:
                placed = self.assigned.get(p) or self.held.get(p) or self.fixed.get(p)
                if placed is None:
                    break
                t0 = max(t0, placed.end)
            else:
                limit = min(horizon, deadlines[job.id][0]) if job.id in deadlines else horizon
                kept = self._published_placement(job, t0, limit)
                if kept is not None:
                    ex, ws, start = kept
                    self.board.reserve(job, ex, ws, start)
                    end = start + job.duration_on(ws)
                    self.held[job.id] = Assignment(job.id, ex, ws, start, end)

    def settle(self) -> None:
        """Put back set-aside kept placements that fit after all (predecessors in time, room)."""
        for job_id in self._topological():
            if job_id not in self.set_aside:
                continue
            ex, ws, start = self.set_aside[job_id]
            job = self.jobs[job_id]
            preds_ok = all(
                p in self.assigned and self.assigned[p].end <= start for p in self.preds[job_id]
            )
            if preds_ok and not self.board.problem(job, ex, ws, start):
                self.board.reserve(job, ex, ws, start)
                del self.unscheduled[job_id]
                self._record(job, Assignment(job_id, ex, ws, start, start + job.duration_on(ws)))

    def _release_successors(
        self, job_id: str, waiting: dict[str, int], push_ready: Callable[[str], None]
    ) -> None:
        for s in self.succs[job_id]:
            waiting[s] -= 1
            if waiting[s] == 0:
                push_ready(s)

    def _late_predecessor(self, job: Job) -> str:
        """Why the job cannot follow its predecessors ("" if every one is placed in time)."""
        start = self.fixed[job.id].start if job.id in self.fixed else None
        for p in self.preds[job.id]:
            if p in self.unscheduled:
                return f"waits for {p}, which is not scheduled ({self.unscheduled[p].reason})"
            if start is not None and self.assigned[p].end > start:
                return f"predecessor {p} ends at {clock(self.assigned[p].end)}, after its start"
        return ""

    def _dispatch_one(self, job: Job, deadline: tuple[int, str] | None) -> None:
        snap = self.snapshot
        horizon = snap.horizon
        if job.release >= horizon:
            self._skip(job, RELEASED_AFTER_HORIZON, f"released at {clock(job.release)}")
            return
        t0 = max(job.release, 0)
        for p in self.preds[job.id]:
            t0 = max(t0, self.assigned[p].end)
        examiners: list[ExaminerState | None] = [None]
        if job.needs_examiner:
            skilled = [
                st for st in self.board.examiners.values() if examiner_can_take(job, st.examiner)
            ]
            if not skilled:
                self._skip(job, NO_ELIGIBLE_EXAMINER, self._no_examiner_detail(job))
                return
            capped = [st for st in skilled if caps_allow(job, st.examiner)]
            if not capped:
                self._skip(
                    job,
                    EXPOSURE_CAPS,
                    f"{job.exposure} exposure minutes exceed the caps of every examiner "
                    "who could take it",
                )
                return
            examiners = list(capped)
        stations: list[WorkstationState | None] = [None]
        if job.needs_workstation:
            able = [
                ws
                for ws in self.board.workstations.values()
                if workstation_can_take(job, ws.workstation)
            ]
            if not able:
                caps = "+".join(sorted(job.capabilities)) or "the listed workstations"
                self._skip(job, NO_ELIGIBLE_WORKSTATION, f"no workstation offers {caps}")
                return
            stations = list(able)
        limit = horizon if deadline is None else min(horizon, deadline[0])
        kept = self._published_placement(job, t0, limit) if self.keep_published else None
        if kept is not None:
            self._place(job, *kept)
            return

        family, size = _family(job), _size(job)
        failed = self._failed.get(family, [])
        known = next((f for f in failed if _dominates(f, t0, limit, size)), None)
        found = None
        if known is None:
            found = self._search(job, examiners, stations, t0, limit, True)
        if found is None and limit < horizon:
            # It cannot finish before the kept successor starts: place it anyway (the successor's
            # placement then gives way, reported as pin_conflict) rather than lose both.
            found = self._search(job, examiners, stations, t0, horizon, True)
            limit = horizon
        if found is None:
            caps_only = False
            if job.exposure > 0 and (known is None or known[3]):
                caps_only = self._search(job, examiners, stations, t0, limit, False) is not None
            if caps_only:
                self._skip(
                    job,
                    EXPOSURE_CAPS,
                    "every eligible examiner has reached an exposure cap on the days with room",
                )
            else:
                self._skip(job, HORIZON_FULL, self._horizon_detail(job, t0))
            if known is None:
                failed.append((t0, limit, size, caps_only))
                self._failed[family] = failed[-16:]
            return
        self._place(job, *found)

    def _place(self, job: Job, ex: str | None, ws: str | None, start: int) -> None:
        self.board.reserve(job, ex, ws, start)
        self._record(job, Assignment(job.id, ex, ws, start, start + job.duration_on(ws)))

    def _published_placement(
        self, job: Job, t0: int, limit: int
    ) -> tuple[str | None, str | None, int] | None:
        """The job's published placement, if it still keeps every rule where the job stands now
        (after its predecessors, inside ``limit``), else None."""
        prev = self.previous.get(job.id)
        if prev is None or prev.start < t0:
            return None
        # the rules first: a workstation the job can no longer use has no duration
        if self.board.problem(job, prev.examiner, prev.workstation, prev.start):
            return None
        if prev.start + job.duration_on(prev.workstation) > limit:
            return None
        return prev.examiner, prev.workstation, prev.start

    def _search(
        self,
        job: Job,
        examiners: Sequence[ExaminerState | None],
        stations: Sequence[WorkstationState | None],
        t0: int,
        limit: int,
        use_caps: bool,
    ) -> tuple[str | None, str | None, int] | None:
        """Best (earliest end, then earliest start, then preferred resource) placement, or None.

        Each resource's own earliest start is a lower bound for any pair that uses it, so pairs are
        tried in order of that bound and the search stops once no pair can beat the best end, or
        after ``SEARCH_TRIES`` more placements than the first it found.
        """
        board = self.board
        # a full licence pool rules out every pair at once: move the start past it first
        shortest = min(job.duration_on(ws.workstation.id if ws else None) for ws in stations)
        for p in job.pools:
            s_pool = board.pools[p].earliest(t0, shortest)
            if s_pool is None or s_pool + shortest > limit:
                return None
            t0 = max(t0, s_pool)
        prev = self.previous.get(job.id)
        on_case = self.case_examiners.get(job.case, set())
        ex_opts: list[tuple[int, tuple[int, ...], ExaminerState | None]] = []
        for st in examiners:
            if st is None:
                ex_opts.append((t0, (), None))
                continue
            s = board.earliest_examiner(st, job, t0, use_caps)
            if s is None or s + shortest > limit:
                continue
            pref = (
                0 if prev is not None and prev.examiner == st.examiner.id else 1,
                0 if st.examiner.id in on_case else 1,
                st.exposure_planned if job.exposure > 0 else 0,
                st.index,
            )
            ex_opts.append((s, pref, st))
        if not ex_opts:
            return None
        ex_opts.sort(key=lambda o: (o[0], o[1]))
        ws_opts: list[tuple[int, int, int, WorkstationState | None]] = []
        for ws in stations:
            if ws is None:
                ws_opts.append((t0 + job.duration_on(None), 0, 0, None))
                continue
            wid = ws.workstation.id
            s = ws.lanes.earliest(t0, workstation_occupancy(job, wid))
            if s is None:
                continue
            duration = job.duration_on(wid)
            if s + duration > limit:
                continue
            ws_pref = 0 if prev is not None and prev.workstation == wid else 1
            ws_opts.append((s + duration, ws_pref, ws.index, ws))
        if not ws_opts:
            return None
        ws_opts.sort(key=lambda o: (o[0], o[1], o[2]))
        min_duration = min(job.duration_on(o[3].workstation.id if o[3] else None) for o in ws_opts)

        # rank: earliest end, then the preferred examiner; for one examiner the first workstation
        # (by its own earliest end, the published one first) that reaches that end is taken
        best_rank: tuple[int, tuple[int, ...]] | None = None
        best: tuple[int, ExaminerState | None, WorkstationState | None] | None = None
        tries = 0  # placements worked out since the first one found
        for s_e, ex_pref, st in ex_opts:
            if tries >= SEARCH_TRIES:
                break
            if best_rank is not None and (s_e + min_duration, ex_pref) >= best_rank:
                if s_e + min_duration > best_rank[0]:
                    break
                continue
            for ws_end, _, _, ws in ws_opts:
                if best_rank is not None and ws_end > best_rank[0]:
                    break
                duration = job.duration_on(ws.workstation.id if ws else None)
                if best_rank is not None and (max(s_e + duration, ws_end), ex_pref) >= best_rank:
                    continue
                if best is not None:
                    tries += 1
                    if tries > SEARCH_TRIES:
                        break
                s = board.fit(job, st, ws, s_e, limit, use_caps)
                if s is None:
                    continue
                rank = (s + duration, ex_pref)
                if best_rank is None or rank < best_rank:
                    best_rank, best = rank, (s, st, ws)
        if best is None:
            return None
        start, st, ws = best
        return (
            st.examiner.id if st is not None else None,
            ws.workstation.id if ws is not None else None,
            start,
        )

    # -- results ----------------------------------------------------------------------------

    def _record(self, job: Job, assignment: Assignment) -> None:
        self.assigned[job.id] = assignment
        if assignment.examiner is not None and job.needs_examiner:
            self.case_examiners.setdefault(job.case, set()).add(assignment.examiner)

    def _skip(self, job: Job, reason: str, detail: str) -> None:
        self.unscheduled[job.id] = Unscheduled(job.id, reason, detail)

    def _no_examiner_detail(self, job: Job) -> str:
        parts = []
        if job.skills:
            parts.append("skills " + "+".join(sorted(job.skills)))
        if job.examiners is not None:
            parts.append("the allow-list " + ", ".join(job.examiners))
        if job.severity:
            parts.append(f"severity {job.severity}")
        return "no examiner combines " + (" and ".join(parts) or "what the job needs")

    def _horizon_detail(self, job: Job, t0: int) -> str:
        what = []
        if job.skills:
            what.append("+".join(sorted(job.skills)) + " examiner")
        if job.needs_workstation:
            what.append(("+".join(sorted(job.capabilities)) or "any") + " workstation")
        need = " and ".join(what) or "its resources"
        return (
            f"no free {need} for {job.min_duration} min between {clock(t0)} "
            "and the end of the horizon"
        )

    def plan(self, seconds: float) -> Plan:
        order = self.order
        assignments = tuple(sorted(self.assigned.values(), key=lambda a: order[a.job]))
        unscheduled = tuple(sorted(self.unscheduled.values(), key=lambda u: order[u.job]))
        objective, terms = plan_objective(self.snapshot, assignments, unscheduled)
        return Plan(
            status=FEASIBLE,
            objective=objective,
            bound=None,
            solve_seconds=seconds,
            assignments=assignments,
            unscheduled=unscheduled,
            terms=terms,
        )


def dispatch(
    snapshot: Snapshot,
    policy: str,
    deadline: float | None = None,
    keep_published: bool = False,
    hold_levels: bool = False,
) -> Plan:
    """A valid plan from one list-scheduling policy: ``"fifo"``, ``"priority"`` or ``"wsjf"``.

    With ``keep_published`` (the optimizer's warm start, never a baseline) each job, when its
    turn comes, keeps its published placement if that still keeps every rule; only what no longer
    fits, or what the jobs before it took, is placed again. The search then trades a change only
    for a real gain (moving one job at its turn for lateness would crowd out the next ones and
    re-shuffle the schedule). With ``hold_levels`` (implies ``keep_published``) jobs take their
    turns by weight, heaviest first, and the first turn of a weight reserves every published
    placement of that weight that still fits: heavier work may displace lighter, but work of the
    same weight only fills the room its published work leaves.

    The plan always passes the verifier, so its status is "feasible"; a pin or frozen assignment
    that cannot be kept (it breaks a rule or clashes with another) is left out with reason
    ``pin_conflict`` and a detail naming the rule. Jobs not reached by ``deadline``
    (``time.monotonic()``) are left out with the detail ``NOT_DISPATCHED``.
    """
    if policy not in POLICY_KEYS:
        raise ValueError(f"unknown dispatch policy {policy!r}; expected one of {POLICIES}")
    started = time.perf_counter()
    set_aside: dict[str, str] = {}
    for _ in range(3):
        d = _Dispatcher(snapshot, POLICY_KEYS[policy], keep_published, hold_levels)
        d.place_fixed(set_aside)
        d.run(deadline)
        # a kept placement refused for clashing with one that was later dropped would be a
        # false conflict: run again without the dropped ones (while there is time)
        if not (d.dropped and d.clashes):
            break
        if deadline is not None and time.monotonic() >= deadline:
            break
        set_aside.update(d.dropped)
    d.settle()
    plan = d.plan(time.perf_counter() - started)
    logger.debug(
        "dispatch %s: %d assigned, %d unscheduled, objective %s in %.3f s",
        policy,
        len(plan.assignments),
        len(plan.unscheduled),
        plan.objective,
        plan.solve_seconds,
    )
    return plan


def redispatch(
    snapshot: Snapshot,
    placements: Mapping[str, Assignment | None],
    order: Sequence[str],
    *,
    leave_out: bool = False,
) -> dict[str, Assignment | None] | None:
    """Take the jobs of ``order`` out of a valid plan and place them again one at a time, in that
    order, each where a dispatch turn puts it (the earliest end every hard rule allows, with every
    other placement of the plan held), after its predecessors and ending before its placed
    successors start: the cheap relocation and swap moves of the neighbourhood search
    (docs/architecture.md §5.4).

    ``placements`` holds every job of ``snapshot`` (``None``: left out) and ``order`` lists
    predecessors before successors. Returns the new placements of ``order``'s jobs (``None``: a
    job that was left out and still finds no room), or ``None`` if a placed job finds none, unless
    ``leave_out`` lets it be left out when none of its successors stays placed.
    """
    moving = set(order)
    d = _Dispatcher(snapshot, _priority_key)
    for job_id, a in placements.items():
        if a is not None and job_id not in moving:
            job = d.jobs[job_id]
            d.board.reserve(job, a.examiner, a.workstation, a.start)
            d._record(job, a)
    moved: dict[str, Assignment | None] = {}
    for job_id in order:
        job = d.jobs[job_id]
        was = placements[job_id]
        if any(p not in d.assigned for p in d.preds[job_id]):
            if was is not None and (not leave_out or any(s in d.assigned for s in d.succs[job_id])):
                return None
            moved[job_id] = None
            continue
        deadline: tuple[int, str] | None = None
        for s in d.succs[job_id]:
            b = d.assigned.get(s)
            if b is not None and (deadline is None or b.start < deadline[0]):
                deadline = (b.start, s)
        d._dispatch_one(job, deadline)
        got = d.assigned.get(job_id)
        if got is not None and deadline is not None and got.end > deadline[0]:
            return None  # placed past a successor's start: the turn's fallback, not a move
        if got is None and was is not None:
            if not leave_out or any(s in d.assigned for s in d.succs[job_id]):
                return None
            d.unscheduled.pop(job_id, None)
        moved[job_id] = got
    return moved


def best_dispatch(
    snapshot: Snapshot, deadline: float | None = None, cutoff: float | None = None
) -> tuple[str, Plan]:
    """Run every policy (in ``TRY_ORDER``) and return the one with the lowest weighted objective
    (first on ties).

    A further policy is tried only if it can finish by ``deadline`` (``time.monotonic()``) at the
    pace of the first: the first always runs, so there is always a valid plan, and a large lab
    keeps time for the search. ``cutoff`` is the first policy's own deadline (see ``dispatch``).
    """
    best: tuple[str, Plan] | None = None
    for policy in TRY_ORDER:
        # a further policy is tried only if it can be expected to finish (as long as the first)
        if best is not None and deadline is not None:
            if time.monotonic() + best[1].solve_seconds >= deadline:
                logger.info("dispatch: time share spent, %s is the best baseline tried", best[0])
                break
        plan = dispatch(snapshot, policy, cutoff if best is None else deadline)
        if best is None or _rank(plan) < _rank(best[1]):
            best = (policy, plan)
    assert best is not None
    return best


def _rank(plan: Plan) -> tuple[int, int]:
    pin_conflicts = sum(1 for u in plan.unscheduled if u.reason == PIN_CONFLICT)
    return (pin_conflicts, plan.objective or 0)
