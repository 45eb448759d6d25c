"""Which jobs the optimizer plans this time: the horizon is bounded by capacity, not by backlog.

A lab with an 18-month backlog cannot and need not plan it all in a two-week horizon. Before a
solve we keep (docs/architecture.md §5.3):

1. pinned and frozen (in-progress or published-and-imminent) jobs, which must be kept;
2. every job a valid plan (by default the "priority" dispatch) fits into the horizon: it honours
   every rule, so it knows what really fits, exposure caps and long review chains included;
3. then more jobs by urgency (weight, then due time, then release: oldest first, then received
   order), each with its present predecessors, up to ``factor - 1`` (0.3 by default) times the
   horizon's capacity, so the optimizer has work to choose from. Capacity is counted per day for
   attended minutes (per skill and overall), machine minutes (per capability and overall) and
   exposure minutes, from the earliest day each job could start.

Jobs that cannot end inside the horizon even on idle resources are left out; jobs that nobody
may take are kept (they cost the solver nothing) so they are reported with their true reason.
Everything else comes back as ``Unscheduled(horizon_full)`` (or ``released_after_horizon``) for
the forecast.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterable, Sequence
from dataclasses import replace

from .bounds import Relaxation, exposure_budget, may_run, may_take, relax
from .dispatch import dispatch
from .plan import HORIZON_FULL, RELEASED_AFTER_HORIZON, Plan, Unscheduled
from .rules.exposure import DAILY, ExposureLedger
from .snapshot import Job, Snapshot


def _per_day(windows: Iterable[tuple[int, int]], days: list[tuple[int, int]]) -> list[int]:
    """Minutes of ``windows`` inside each of ``days`` (in time order, disjoint), visiting only
    the days each window touches (a year's horizon has hundreds of days and windows each)."""
    ends = [b for _, b in days]
    out = [0] * len(days)
    for a, b in windows:
        d = bisect_right(ends, a)
        while d < len(days) and days[d][0] < b:
            out[d] += max(0, min(b, days[d][1]) - max(a, days[d][0]))
            d += 1
    return out


class _Budgets:
    """Capacity left per resource key and per day of the horizon, shared out as jobs are chosen.

    A job's minutes are taken from the earliest days with room at or after the earliest time it
    could start (release and predecessors), so work that can only begin late in the horizon does
    not count against capacity early in it. A fluid relaxation: minutes may spread over days.
    """

    def __init__(self, snapshot: Snapshot, factor: float) -> None:
        h = snapshot.horizon
        days = [(a, min(b, h)) for a, b in snapshot.days if a < h] or [(0, h)]
        self.starts = [a for a, _ in days]
        n = len(days)
        cap: dict[str, list[float]] = {"attended": [0.0] * n, "machine": [0.0] * n}
        exposure = [0.0] * n
        exposure_limited = True
        known: dict[tuple[tuple[int, int], ...], list[int]] = {}  # resources on the same shifts

        def per_day(windows: Sequence[tuple[int, int]]) -> list[int]:
            key = tuple(windows)
            if key not in known:
                known[key] = _per_day(key, days)
            return known[key]

        logged = ExposureLedger(snapshot)  # the daily cap's room before anything is planned
        for e in snapshot.examiners:
            minutes = per_day(e.available)
            keys = ["attended", *(f"skill:{s}" for s in e.skills)]
            for key in keys:
                row = cap.setdefault(key, [0.0] * n)
                for d in range(n):
                    row[d] += minutes[d]
            total = exposure_budget(snapshot, e, severe=False)
            if total is None:
                exposure_limited = False
                continue
            rooms = per_day(e.exposure.windows or e.available)
            for d, room in enumerate(rooms):
                left = logged.room(DAILY, e, d)
                exposure[d] += room if left is None else min(room, left)
        if exposure_limited:
            cap["exposure"] = exposure
        for w in snapshot.workstations:
            minutes = [w.capacity * m for m in per_day(w.available)]
            for key in ["machine", *(f"capability:{c}" for c in w.capabilities)]:
                row = cap.setdefault(key, [0.0] * n)
                for d in range(n):
                    row[d] += minutes[d]
        self.left = {k: [v * factor for v in row] for k, row in cap.items()}

    @staticmethod
    def demand(
        snapshot: Snapshot, job: Job, seen: dict[tuple[object, ...], object] | None = None
    ) -> dict[str, int]:
        """Minutes the job asks of each budget (empty if nobody may take it at all).

        ``seen`` keeps who may take each kind of job across calls: a lab at the contract's
        limits has 20,000 jobs and 500 examiners, but only a few hundred kinds of job.
        """
        seen = {} if seen is None else seen
        out: dict[str, int] = {}
        if job.needs_examiner:
            kind = ("examiner", job.skills, job.examiners, job.severity, job.exposure)
            if kind not in seen:
                seen[kind] = any(may_take(job, e) for e in snapshot.examiners)
            if not seen[kind]:
                return {}
            out["attended"] = job.attended
            for s in job.skills:
                out[f"skill:{s}"] = job.attended
            if job.exposure > 0:
                out["exposure"] = job.exposure
        if job.needs_workstation:
            mbw = job.machine_by_workstation
            box = ("workstation", job.capabilities, None if mbw is None else frozenset(mbw))
            if box not in seen:
                seen[box] = [w.id for w in snapshot.workstations if may_run(job, w)]
            stations = seen[box]
            assert isinstance(stations, list)
            if not stations:
                return {}
            machine = job.machine if mbw is None else min(job.machine_on(w) for w in stations)
            out["machine"] = machine
            for c in job.capabilities:
                out[f"capability:{c}"] = machine
        return out

    def take(self, items: list[tuple[int, dict[str, int]]], force: bool = False) -> str | None:
        """Take each (earliest start, demand); on a shortfall undo all and name the budget.

        With ``force`` (kept placements) the minutes are taken as far as they go, never refused.
        """
        undo: list[tuple[list[float], int, float]] = []
        for earliest, demand in items:
            first = max(0, bisect_right(self.starts, earliest) - 1)
            for key, minutes in demand.items():
                row = self.left.get(key)
                if row is None or minutes <= 0:
                    continue
                need = float(minutes)
                for d in range(first, len(row)):
                    if row[d] <= 0:
                        continue
                    got = min(row[d], need)
                    undo.append((row, d, got))
                    row[d] -= got
                    need -= got
                    if need <= 0:
                        break
                if need > 0 and not force:
                    for r, d, got in reversed(undo):
                        r[d] += got
                    return key
        return None


def _describe(key: str) -> str:
    kind, _, name = key.partition(":")
    return {
        "skill": f"{name} examiner time",
        "capability": f"{name} workstation time",
        "attended": "examiner time",
        "machine": "workstation time",
        "exposure": "exposure capacity",
    }[kind]


def select_candidates(
    snapshot: Snapshot,
    factor: float = 1.3,
    plan: Plan | None = None,
    relaxed: Relaxation | None = None,
) -> tuple[Snapshot, tuple[Unscheduled, ...]]:
    """The snapshot restricted to the jobs worth planning now, and the rest as unscheduled.

    ``plan`` is a valid plan of ``snapshot`` that shows what certainly fits (by default the
    "priority" dispatch, which honours every rule, exposure caps and chains included); its jobs
    are kept, and more jobs by urgency on top, up to ``factor - 1`` times the horizon's capacity.
    The kept set is closed under predecessors. When everything fits, the snapshot itself is
    returned with no unscheduled jobs. ``relaxed`` is ``relax(snapshot)`` if the caller has it.
    """
    if plan is None:
        plan = dispatch(snapshot, "priority")
    jobs = snapshot.jobs_by_id
    order = {j.id: i for i, j in enumerate(snapshot.jobs)}
    budgets = _Budgets(snapshot, max(0.0, factor - 1.0))
    chosen: set[str] = set()
    left: dict[str, Unscheduled] = {}

    def closure(job_id: str) -> list[str]:
        """The job and its not-yet-chosen present ancestors, predecessors first."""
        out: list[str] = []
        seen: set[str] = set()
        stack = [(job_id, False)]
        while stack:
            j, expanded = stack.pop()
            if expanded:
                out.append(j)
                continue
            if j in seen or j in chosen:
                continue
            seen.add(j)
            stack.append((j, True))
            for p in jobs[j].after:
                if p in jobs and p not in seen and p not in chosen:
                    stack.append((p, False))
        return out

    fixed = snapshot.kept
    # a job that cannot end inside the horizon even with every resource free (its chain is too
    # long) would only take budget from work that can be done
    if relaxed is None:
        relaxed = relax(snapshot)
    earliest: dict[str, int] = {}

    def earliest_start(job_id: str) -> int:
        """Release and predecessors' earliest ends, everything else relaxed."""
        if job_id not in earliest:
            job = jobs[job_id]
            t = max(job.release, 0)
            for p in job.after:
                if p in jobs and p != job_id:
                    end = relaxed[p].earliest_end
                    t = max(t, end if end is not None else snapshot.horizon)
            earliest[job_id] = fixed[job_id].start if job_id in fixed else t
        return earliest[job_id]

    seen: dict[tuple[object, ...], object] = {}
    demands: dict[str, dict[str, int]] = {}

    def demand(job_id: str) -> dict[str, int]:
        if job_id not in demands:
            demands[job_id] = _Budgets.demand(snapshot, jobs[job_id], seen)
        return demands[job_id]

    def items(ids: list[str]) -> list[tuple[int, dict[str, int]]]:
        return [(earliest_start(j), demand(j)) for j in ids]

    for job_id in fixed:
        chosen.update(closure(job_id))
    for a in plan.assignments:  # what the plan fits, with its predecessors
        if a.job in jobs:
            chosen.update(closure(a.job))

    def urgency(job: Job) -> tuple[int, int, int, int]:
        due = job.due if job.due is not None else 2**62
        return (-job.weight, due, job.release, order[job.id])

    for job in sorted(snapshot.jobs, key=urgency):
        if job.id in chosen or job.id in left:
            continue
        ids = closure(job.id)
        blocked = next((left[j] for j in ids if j in left), None)
        if blocked is not None:
            left[job.id] = Unscheduled(
                job.id, HORIZON_FULL, f"waits for {blocked.job}, which is not in this horizon"
            )
            continue
        if not demand(job.id):
            chosen.update(ids)  # nobody may take it: reported with its true reason
            continue
        if job.release >= snapshot.horizon:
            left[job.id] = Unscheduled(
                job.id, RELEASED_AFTER_HORIZON, "released after the end of the planning horizon"
            )
            continue
        if relaxed[job.id].earliest_end is None:
            left[job.id] = Unscheduled(
                job.id,
                HORIZON_FULL,
                "cannot be finished inside this horizon even on idle resources "
                "(release, predecessors and shifts)",
            )
            continue
        spent = budgets.take(items(ids))
        if spent is not None:
            left[job.id] = Unscheduled(
                job.id,
                HORIZON_FULL,
                f"not planned in this horizon: its {_describe(spent)} is taken by more urgent work",
            )
            continue
        chosen.update(ids)

    if not left:
        return snapshot, ()
    kept = tuple(j for j in snapshot.jobs if j.id in chosen)
    reduced = replace(
        snapshot,
        jobs=kept,
        previous=tuple(p for p in snapshot.previous if p.job in chosen),
    )
    unscheduled = tuple(left[j.id] for j in snapshot.jobs if j.id in left)
    return reduced, unscheduled
