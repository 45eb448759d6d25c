"""The independent verifier: the executable specification of the hard rules.

The rules and the contract they judge: docs/architecture.md §3, §6.

It imports no solver, so a plan from any engine (CP-SAT, dispatch, a hand edit, an external tool)
is judged by the same rules. Every plan is verified before it is stored or published; an empty
list means valid. Each check is one small function named after its rule, listed in ``_CHECKS``.

Decisions the design leaves open, fixed here so every solver builds to the same reading:

- A job's true end is ``start + max(attended, machine minutes on its workstation)``; the checks
  below use that, and the ``end`` rule reports a plan whose stated end differs.
- The attended part ``[start, start + attended)`` needs the examiner; the machine part
  ``[start, start + machine)`` occupies the workstation (machine minutes, not the whole job: an
  examiner may finish paperwork after the box is free). Zero-length parts occupy nothing.
  Licence pools are held for the whole job, ``[start, end)``.
- "Inside one window" means within a single listed interval ``[a, b)``: touching windows are not
  merged.
- Exposure counts in the day and week the job starts in (`Snapshot.day_of` / `week_of`); a start
  outside every listed day counts against no daily cap. Logged minutes come from
  `Snapshot.logged_day_exposure` / `logged_week_exposure`; the severe cap counts only planned
  severity-3 minutes. A cap is only reported when the plan adds exposure to that day or week.
- A pinned job, and a job with a ``previous`` assignment starting before ``frozen_until``, must
  be assigned exactly there, or be unscheduled with reason ``pin_conflict`` (a pinned set that
  cannot all be kept is reported, not silently broken). When a job has both, its pin governs.
  ``pin_conflict`` is accepted only when keeping the placement really breaks a rule: a present
  predecessor does not end by its start in this plan, or the placement clashes with the job's
  own requirements or with the other placements the plan keeps.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass

from scheduler.core.plan import PIN_CONFLICT, Assignment, Plan, Unscheduled
from scheduler.core.rules import exposure, names
from scheduler.core.rules.exposure import Cap
from scheduler.core.snapshot import Examiner, Interval, Job, Snapshot, Workstation


@dataclass(frozen=True)
class Violation:
    """One broken hard rule: ``rule`` is a stable name, ``job`` the job at fault (if one is)."""

    rule: str
    job: str | None
    detail: str


@dataclass(frozen=True)
class _Placed:
    """An assignment of a known job, with its parts computed from the snapshot."""

    job: Job
    assignment: Assignment
    examiner: Examiner | None  # None when none is assigned or the id is unknown
    workstation: Workstation | None

    @property
    def start(self) -> int:
        return self.assignment.start

    @property
    def machine(self) -> int:
        """Machine minutes on the assigned workstation (the job's default if it may not use it)."""
        by_ws = self.job.machine_by_workstation
        ws = self.assignment.workstation
        if by_ws is not None and ws is not None and ws in by_ws:
            return by_ws[ws]
        return self.job.machine

    @property
    def end(self) -> int:
        """The true end: start + the longer of the attended and machine parts."""
        return self.start + max(self.job.attended, self.machine)


class _Context:
    """Indexes shared by the checks, built once per verify call."""

    def __init__(self, snapshot: Snapshot, plan: Plan) -> None:
        self.snapshot = snapshot
        self.plan = plan
        self.jobs = snapshot.jobs_by_id
        self.examiners = snapshot.examiners_by_id
        self.workstations = snapshot.workstations_by_id
        self.pools = {p.id: p for p in snapshot.pools}
        self.placed: dict[str, _Placed] = {}
        for a in plan.assignments:
            job = self.jobs.get(a.job)
            if job is None or a.job in self.placed:
                continue  # reported by the coverage rule
            examiner = None if a.examiner is None else self.examiners.get(a.examiner)
            ws = None if a.workstation is None else self.workstations.get(a.workstation)
            self.placed[a.job] = _Placed(job, a, examiner, ws)
        self.unscheduled: dict[str, Unscheduled] = {}
        for u in plan.unscheduled:
            self.unscheduled.setdefault(u.job, u)

    def by_start(self) -> list[_Placed]:
        return sorted(self.placed.values(), key=lambda p: (p.start, p.job.id))


Check = Callable[[_Context], Iterable[Violation]]


def _inside_one(start: int, end: int, windows: Sequence[Interval]) -> bool:
    return any(a <= start and end <= b for a, b in windows)


def _show(windows: Sequence[Interval], limit: int = 4) -> str:
    shown = ", ".join(f"[{a}, {b})" for a, b in windows[:limit])
    more = f" and {len(windows) - limit} more" if len(windows) > limit else ""
    return f"{shown}{more}" if windows else "none"


# ---- coverage and time --------------------------------------------------------------------------


def _coverage(ctx: _Context) -> Iterator[Violation]:
    """Every snapshot job appears exactly once, in assignments or unscheduled; no unknown jobs."""
    counts: dict[str, int] = defaultdict(int)
    entries = [a.job for a in ctx.plan.assignments] + [u.job for u in ctx.plan.unscheduled]
    for job_id in entries:
        counts[job_id] += 1
    reported: set[str] = set()
    for job_id in entries:
        if job_id not in ctx.jobs and job_id not in reported:
            reported.add(job_id)
            yield Violation(names.COVERAGE, job_id, f"job {job_id} is not in the snapshot")
    for job in ctx.snapshot.jobs:
        n = counts.get(job.id, 0)
        if n == 0:
            yield Violation(names.COVERAGE, job.id, "job is neither assigned nor unscheduled")
        elif n > 1:
            yield Violation(names.COVERAGE, job.id, f"job appears {n} times in the plan")


def _horizon(ctx: _Context) -> Iterator[Violation]:
    """A scheduled job runs inside [0, horizon)."""
    for p in ctx.placed.values():
        if p.start < 0 or p.end > ctx.snapshot.horizon:
            yield Violation(
                names.HORIZON,
                p.job.id,
                f"runs [{p.start}, {p.end}) outside the horizon [0, {ctx.snapshot.horizon})",
            )


def _release(ctx: _Context) -> Iterator[Violation]:
    """Nothing starts before its release (device arrival)."""
    for p in ctx.placed.values():
        if p.start < p.job.release:
            yield Violation(
                names.RELEASE, p.job.id, f"starts at {p.start} before its release {p.job.release}"
            )


def _end(ctx: _Context) -> Iterator[Violation]:
    """end = start + max(attended, machine minutes on the chosen workstation)."""
    for p in ctx.placed.values():
        if p.assignment.end != p.end:
            yield Violation(
                names.END,
                p.job.id,
                f"end is {p.assignment.end}, expected {p.end} = {p.start} + "
                f"max(attended {p.job.attended}, machine {p.machine})",
            )


# ---- examiner -----------------------------------------------------------------------------------


def _examiner_unknown(ctx: _Context) -> Iterator[Violation]:
    """An assigned examiner exists in the snapshot."""
    for p in ctx.placed.values():
        if p.assignment.examiner is not None and p.examiner is None:
            yield Violation(
                names.EXAMINER_UNKNOWN,
                p.job.id,
                f"examiner {p.assignment.examiner} is not in the lab",
            )


def _examiner_needed(ctx: _Context) -> Iterator[Violation]:
    """A job with attended minutes has an examiner."""
    for p in ctx.placed.values():
        if p.job.needs_examiner and p.assignment.examiner is None:
            yield Violation(
                names.EXAMINER_NEEDED,
                p.job.id,
                f"{p.job.attended} attended minutes but no examiner",
            )


def _examiner_not_needed(ctx: _Context) -> Iterator[Violation]:
    """A job without attended minutes has no examiner (it would block nobody, but it lies)."""
    for p in ctx.placed.values():
        if not p.job.needs_examiner and p.assignment.examiner is not None:
            yield Violation(
                names.EXAMINER_NOT_NEEDED,
                p.job.id,
                f"no attended minutes but examiner {p.assignment.examiner} is assigned",
            )


def _skills(ctx: _Context) -> Iterator[Violation]:
    """The examiner holds all the job's skills."""
    for p in ctx.placed.values():
        if p.examiner is not None and p.job.needs_examiner:
            missing = p.job.skills - p.examiner.skills
            if missing:
                yield Violation(
                    names.SKILLS,
                    p.job.id,
                    f"examiner {p.examiner.id} lacks skills {', '.join(sorted(missing))}",
                )


def _examiner_allow_list(ctx: _Context) -> Iterator[Violation]:
    """When the job lists examiners, the assigned one is among them."""
    for p in ctx.placed.values():
        allowed = p.job.examiners
        ex = p.assignment.examiner
        if allowed is not None and ex is not None and ex not in allowed:
            yield Violation(
                names.EXAMINER_ALLOW_LIST,
                p.job.id,
                f"examiner {ex} is not in the job's list {', '.join(allowed) or '(empty)'}",
            )


def _examiner_availability(ctx: _Context) -> Iterator[Violation]:
    """The attended part lies inside one of the examiner's availability windows."""
    for p in ctx.placed.values():
        if p.examiner is None or not p.job.needs_examiner:
            continue
        end = p.start + p.job.attended
        if not _inside_one(p.start, end, p.examiner.available):
            yield Violation(
                names.EXAMINER_AVAILABILITY,
                p.job.id,
                f"attended [{p.start}, {end}) is not inside one availability window of "
                f"{p.examiner.id}: {_show(p.examiner.available)}",
            )


def _examiner_overlap(ctx: _Context) -> Iterator[Violation]:
    """An examiner's attended parts do not overlap."""
    by_examiner: dict[str, list[_Placed]] = defaultdict(list)
    for p in ctx.by_start():
        if p.examiner is not None and p.job.attended > 0:
            by_examiner[p.examiner.id].append(p)
    for examiner, placed in by_examiner.items():
        busy_until, holder = -(2**62), ""
        for p in placed:
            if p.start < busy_until:
                yield Violation(
                    names.EXAMINER_OVERLAP,
                    p.job.id,
                    f"{examiner} is attending {holder} until {busy_until}, "
                    f"but this job starts at {p.start}",
                )
            end = p.start + p.job.attended
            if end > busy_until:
                busy_until, holder = end, p.job.id


# ---- workstation and pools ----------------------------------------------------------------------


def _workstation_unknown(ctx: _Context) -> Iterator[Violation]:
    """An assigned workstation exists in the snapshot."""
    for p in ctx.placed.values():
        if p.assignment.workstation is not None and p.workstation is None:
            yield Violation(
                names.WORKSTATION_UNKNOWN,
                p.job.id,
                f"workstation {p.assignment.workstation} is not in the lab",
            )


def _workstation_needed(ctx: _Context) -> Iterator[Violation]:
    """A job with machine minutes (or a machine_by_workstation list) has a workstation."""
    for p in ctx.placed.values():
        if p.job.needs_workstation and p.assignment.workstation is None:
            yield Violation(names.WORKSTATION_NEEDED, p.job.id, "needs a workstation but has none")


def _workstation_not_needed(ctx: _Context) -> Iterator[Violation]:
    """A job without a machine part has no workstation."""
    for p in ctx.placed.values():
        if not p.job.needs_workstation and p.assignment.workstation is not None:
            yield Violation(
                names.WORKSTATION_NOT_NEEDED,
                p.job.id,
                f"no machine part but workstation {p.assignment.workstation} is assigned",
            )


def _capabilities(ctx: _Context) -> Iterator[Violation]:
    """The workstation holds all the job's capabilities."""
    for p in ctx.placed.values():
        if p.workstation is not None and p.job.needs_workstation:
            missing = p.job.capabilities - p.workstation.capabilities
            if missing:
                yield Violation(
                    names.CAPABILITIES,
                    p.job.id,
                    f"workstation {p.workstation.id} lacks {', '.join(sorted(missing))}",
                )


def _machine_by_workstation(ctx: _Context) -> Iterator[Violation]:
    """A job with machine_by_workstation runs on one of the workstations it lists."""
    for p in ctx.placed.values():
        by_ws = p.job.machine_by_workstation
        ws = p.assignment.workstation
        if by_ws is not None and ws is not None and ws not in by_ws:
            yield Violation(
                names.MACHINE_BY_WORKSTATION,
                p.job.id,
                f"workstation {ws} is not one of {', '.join(sorted(by_ws)) or '(none)'}",
            )


def _workstation_availability(ctx: _Context) -> Iterator[Violation]:
    """The machine part lies inside one of the workstation's availability windows."""
    for p in ctx.placed.values():
        if p.workstation is None or not p.job.needs_workstation:
            continue
        end = p.start + p.machine
        if not _inside_one(p.start, end, p.workstation.available):
            yield Violation(
                names.WORKSTATION_AVAILABILITY,
                p.job.id,
                f"machine part [{p.start}, {end}) is not inside one availability window of "
                f"{p.workstation.id}: {_show(p.workstation.available)}",
            )


def _over_capacity(
    intervals: Iterable[tuple[int, int, str]], capacity: int
) -> Iterator[tuple[str, int, list[str]]]:
    """Jobs whose start pushes concurrent use above ``capacity``: (job, time, holders)."""
    events: list[tuple[int, int, str]] = []
    for start, end, job in intervals:
        if end > start:
            events.append((start, 1, job))
            events.append((end, 0, job))  # 0 sorts first: a job ending at t frees its slot at t
    events.sort()
    holders: dict[str, None] = {}
    for time, is_start, job in events:
        if is_start:
            holders[job] = None
            if len(holders) > capacity:
                yield job, time, list(holders)
        else:
            holders.pop(job, None)


def _workstation_capacity(ctx: _Context) -> Iterator[Violation]:
    """At most ``capacity`` machine parts run on a workstation at once."""
    by_ws: dict[str, list[tuple[int, int, str]]] = defaultdict(list)
    for p in ctx.placed.values():
        if p.workstation is not None:
            by_ws[p.workstation.id].append((p.start, p.start + p.machine, p.job.id))
    for ws_id, intervals in by_ws.items():
        capacity = ctx.workstations[ws_id].capacity
        for job, time, holders in _over_capacity(intervals, capacity):
            yield Violation(
                names.WORKSTATION_CAPACITY,
                job,
                f"{ws_id} (capacity {capacity}) runs {len(holders)} jobs at {time}: "
                f"{', '.join(holders)}",
            )


def _pool_capacity(ctx: _Context) -> Iterator[Violation]:
    """At most ``capacity`` jobs hold a licence of a pool at once, each for [start, end)."""
    by_pool: dict[str, list[tuple[int, int, str]]] = defaultdict(list)
    for p in ctx.placed.values():
        for pool in p.job.pools:
            by_pool[pool].append((p.start, p.end, p.job.id))
    for pool_id, intervals in by_pool.items():
        known = ctx.pools.get(pool_id)
        capacity = known.capacity if known is not None else 0
        for job, time, holders in _over_capacity(intervals, capacity):
            yield Violation(
                names.POOL_CAPACITY,
                job,
                f"pool {pool_id} (capacity {capacity}) is held by {len(holders)} jobs at {time}: "
                f"{', '.join(holders)}",
            )


# ---- precedence ---------------------------------------------------------------------------------


def _precedence(ctx: _Context) -> Iterator[Violation]:
    """Present predecessors are scheduled and finish before the job starts."""
    for p in ctx.placed.values():
        for pred_id in p.job.after:
            if pred_id not in ctx.jobs:
                continue  # absent from the snapshot: already done
            pred = ctx.placed.get(pred_id)
            if pred is None:
                yield Violation(
                    names.PRECEDENCE,
                    p.job.id,
                    f"predecessor {pred_id} is not scheduled in this plan",
                )
            elif pred.end > p.start:
                yield Violation(
                    names.PRECEDENCE,
                    p.job.id,
                    f"starts at {p.start} before predecessor {pred_id} ends at {pred.end}",
                )


# ---- exposure -----------------------------------------------------------------------------------


def _exposed(ctx: _Context) -> list[_Placed]:
    return [p for p in ctx.by_start() if p.examiner is not None and p.job.exposure > 0]


def _max_severity(ctx: _Context) -> Iterator[Violation]:
    """Work with a severity goes only to an examiner whose max severity covers it, exposure
    minutes or not: an opted-out examiner is never handed such material (as
    `eligibility.examiner_can_take` says, which every solver uses)."""
    for p in ctx.by_start():
        if p.examiner is None:
            continue
        if p.job.severity > p.examiner.exposure.max_severity:
            yield Violation(
                names.MAX_SEVERITY,
                p.job.id,
                f"severity {p.job.severity} exceeds {p.examiner.id}'s max severity "
                f"{p.examiner.exposure.max_severity}",
            )


def _exposure_window(ctx: _Context) -> Iterator[Violation]:
    """Exposure work's attended part lies inside one exposure window (before the cut-off)."""
    for p in _exposed(ctx):
        assert p.examiner is not None
        end = p.start + p.job.attended
        windows = p.examiner.exposure.windows
        if not _inside_one(p.start, end, windows):
            yield Violation(
                names.EXPOSURE_WINDOW,
                p.job.id,
                f"attended [{p.start}, {end}) is not inside one exposure window of "
                f"{p.examiner.id}: {_show(windows)}",
            )


def _cap_check(ctx: _Context, cap: Cap) -> Iterator[Violation]:
    """Planned (+ logged) exposure minutes per examiner and period stay within ``cap``."""
    planned: dict[tuple[str, int], list[_Placed]] = defaultdict(list)
    for p in _exposed(ctx):
        assert p.examiner is not None
        period = cap.period_of(ctx.snapshot, p.start)
        if period is not None and cap.counts(p.job) and cap.limit(p.examiner) is not None:
            planned[(p.examiner.id, period)].append(p)
    for (examiner_id, period), placed in planned.items():
        examiner = ctx.examiners[examiner_id]
        limit = cap.limit(examiner)
        assert limit is not None
        logged = cap.logged(ctx.snapshot, examiner).get(period, 0)
        total = logged
        for p in placed:
            total += p.job.exposure
            if total > limit:
                yield Violation(
                    cap.rule,
                    p.job.id,
                    f"{examiner_id} {cap.period} {period}: {total} exposure minutes "
                    f"({logged} logged + {total - logged} planned up to this job) > cap {limit}; "
                    f"jobs {', '.join(q.job.id for q in placed)}",
                )
                break


def _exposure_daily_cap(ctx: _Context) -> Iterator[Violation]:
    """Per lab-local day, logged + planned exposure minutes <= the daily cap."""
    return _cap_check(ctx, exposure.DAILY)


def _exposure_severe_daily_cap(ctx: _Context) -> Iterator[Violation]:
    """Per lab-local day, planned severity-3 exposure minutes <= the severe daily cap."""
    return _cap_check(ctx, exposure.SEVERE_DAILY)


def _exposure_weekly_cap(ctx: _Context) -> Iterator[Violation]:
    """Per week, logged + planned exposure minutes <= the weekly cap."""
    return _cap_check(ctx, exposure.WEEKLY)


# ---- kept placements ----------------------------------------------------------------------------


def _conflict_is_real(
    ctx: _Context, job: Job, examiner: str | None, ws: str | None, start: int
) -> bool:
    """Whether keeping ``job`` at its kept placement really breaks a rule.

    It does if a present predecessor is not scheduled to end by ``start`` in this plan, or if the
    placement, added to the other placements the plan keeps, breaks a rule they do not already
    break on their own. Conflicts with freely placed jobs do not count: those could have moved.
    """
    for pred_id in job.after:
        if pred_id in ctx.jobs:
            pred = ctx.placed.get(pred_id)
            if pred is None or pred.end > start:
                return True
    targets = ctx.snapshot.kept
    kept = [
        p.assignment
        for job_id, p in ctx.placed.items()
        if job_id in targets
        and (targets[job_id].examiner, targets[job_id].workstation, targets[job_id].start)
        == (p.assignment.examiner, p.assignment.workstation, p.start)
    ]
    probe = _Placed(job, Assignment(job.id, examiner, ws, start, start), None, None)
    candidate = Assignment(job.id, examiner, ws, start, probe.end)

    def broken(assignments: list[Assignment]) -> set[tuple[str, str | None]]:
        trial = _Context(ctx.snapshot, Plan("unknown", None, None, 0.0, tuple(assignments)))
        return {
            (v.rule, v.job)
            for name, check in _CHECKS
            if name not in names.NOT_ITS_OWN  # a kept placement is tried against the rest
            for v in check(trial)
        }

    return bool(broken([*kept, candidate]) - broken(kept))


def _kept(
    ctx: _Context,
    rule: str,
    job: Job,
    examiner: str | None,
    workstation: str | None,
    start: int,
    what: str,
) -> Iterator[Violation]:
    placed = ctx.placed.get(job.id)
    if placed is None:
        left = ctx.unscheduled.get(job.id)
        if left is None:
            return  # reported by the coverage rule
        if left.reason != PIN_CONFLICT:
            yield Violation(
                rule,
                job.id,
                f"{what} job is unscheduled with reason {left.reason}; "
                f"only {PIN_CONFLICT} may leave it out",
            )
        elif not _conflict_is_real(ctx, job, examiner, workstation, start):
            yield Violation(
                rule,
                job.id,
                f"{what} job is left out as a {PIN_CONFLICT}, but its placement (examiner "
                f"{examiner}, workstation {workstation}, start {start}) fits with every other "
                "kept placement",
            )
        return
    a = placed.assignment
    if (a.examiner, a.workstation, a.start) != (examiner, workstation, start):
        yield Violation(
            rule,
            job.id,
            f"{what} at examiner {examiner}, workstation {workstation}, start {start}; "
            f"plan has {a.examiner}, {a.workstation}, {a.start}",
        )


def _pin(ctx: _Context) -> Iterator[Violation]:
    """A pinned (or in-progress) job keeps its examiner, workstation and start."""
    for job in ctx.snapshot.jobs:
        if job.pin is not None:
            pin = job.pin
            yield from _kept(
                ctx, names.PIN, job, pin.examiner, pin.workstation, pin.start, "pinned"
            )


def _frozen(ctx: _Context) -> Iterator[Violation]:
    """A published assignment starting before frozen_until is kept exactly."""
    for job_id, k in ctx.snapshot.kept.items():
        if k.kind == names.FROZEN:
            yield from _kept(
                ctx, names.FROZEN, ctx.jobs[job_id], k.examiner, k.workstation, k.start, "frozen"
            )


_CHECKS: tuple[tuple[str, Check], ...] = (
    (names.COVERAGE, _coverage),
    (names.HORIZON, _horizon),
    (names.RELEASE, _release),
    (names.END, _end),
    (names.EXAMINER_UNKNOWN, _examiner_unknown),
    (names.EXAMINER_NEEDED, _examiner_needed),
    (names.EXAMINER_NOT_NEEDED, _examiner_not_needed),
    (names.SKILLS, _skills),
    (names.EXAMINER_ALLOW_LIST, _examiner_allow_list),
    (names.EXAMINER_AVAILABILITY, _examiner_availability),
    (names.EXAMINER_OVERLAP, _examiner_overlap),
    (names.WORKSTATION_UNKNOWN, _workstation_unknown),
    (names.WORKSTATION_NEEDED, _workstation_needed),
    (names.WORKSTATION_NOT_NEEDED, _workstation_not_needed),
    (names.CAPABILITIES, _capabilities),
    (names.MACHINE_BY_WORKSTATION, _machine_by_workstation),
    (names.WORKSTATION_AVAILABILITY, _workstation_availability),
    (names.WORKSTATION_CAPACITY, _workstation_capacity),
    (names.POOL_CAPACITY, _pool_capacity),
    (names.PRECEDENCE, _precedence),
    (names.MAX_SEVERITY, _max_severity),
    (names.EXPOSURE_WINDOW, _exposure_window),
    (names.EXPOSURE_DAILY_CAP, _exposure_daily_cap),
    (names.EXPOSURE_SEVERE_DAILY_CAP, _exposure_severe_daily_cap),
    (names.EXPOSURE_WEEKLY_CAP, _exposure_weekly_cap),
    (names.PIN, _pin),
    (names.FROZEN, _frozen),
)

RULES: tuple[str, ...] = tuple(name for name, _ in _CHECKS)


def verify(snapshot: Snapshot, plan: Plan) -> list[Violation]:
    """Every hard rule ``plan`` breaks on ``snapshot``; an empty list means the plan is valid."""
    ctx = _Context(snapshot, plan)
    violations: list[Violation] = []
    for _, check in _CHECKS:
        violations.extend(check(ctx))
    return violations
