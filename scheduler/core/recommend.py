"""Where else could this job go? The best examiner/slot options for one job, with their cost.

A supervisor asks "who could take this case's review sooner, and what would it cost?". Every
other job is held where the plan has it, and kept work (pins, work under way or taken as
started, the frozen window) where it is kept, even if the plan predates it. With those fixed,
the model's start domains for the one free job are exact: availability and exposure windows,
the time other jobs already take, full workstations and licence pools, release, predecessors and
scheduled successors are all in them. What the domains do not cover (the exposure caps of the
day and week a start falls in) is checked here. Each option is the earliest start per
examiner, workstation and day (the current examiner's current day included, a slot away from
the current start), priced exactly as ``objective.py`` prices the whole plan with the job moved,
and verified applied. A job with no room on its own between its chain neighbours gets options
that push its successors later, as far as they must. Every eligible examiner/workstation pair
without an option carries a reason (docs/architecture.md §5.6).
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace

from scheduler.core import intervals as iv
from scheduler.core.cpsat.context import Interval, ModelContext
from scheduler.core.cpsat.eligibility import add_eligibility
from scheduler.core.cpsat.placement import add_placement
from scheduler.core.eligibility import (
    eligible_examiners,
    eligible_workstations,
    exposure_examiners,
)
from scheduler.core.explain import KeptPlacement, kept_duration, kept_placements
from scheduler.core.intervals import intersect_closed
from scheduler.core.objective import (
    BALANCE,
    CHANGE,
    CONTINUITY,
    job_tardiness,
    objective_terms,
    primary_term,
    unassigned_end,
    weighted_objective,
)
from scheduler.core.plan import HORIZON_FULL, Assignment, Plan, Unscheduled, clock
from scheduler.core.rules.exposure import ExposureLedger
from scheduler.core.rules.names import KEPT, PIN
from scheduler.core.snapshot import Job, Snapshot
from scheduler.core.verify import verify

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Option:
    """One place the job could go, and how much the plan's objective would change (+ = worse).

    ``moves`` are the job's successors that must start later for it (each on its own examiner
    and workstation, as early as it can): empty when the job moves alone.
    """

    examiner: str | None
    workstation: str | None
    start: int
    end: int
    cost_delta: int
    moves: tuple[Assignment, ...] = ()


@dataclass(frozen=True)
class Refusal:
    """A candidate examiner/workstation pair the job cannot move to, and why.

    ``reason`` speaks of jobs by their snapshot ids passed through the caller's ``name`` and of
    times as ``clock`` writes them (``day 3 09:30``), for the service to put in the lab's terms.
    """

    examiner: str | None
    workstation: str | None
    reason: str


@dataclass(frozen=True)
class Advice:
    """Everything ``advise`` found for one job.

    ``options`` are the cheapest moves (at most ``limit``, one per examiner/workstation pair);
    every other eligible pair is in ``refused`` with its reason; ``kept`` says why a pinned or
    frozen job stays where it is (then there are neither options nor refusals).
    """

    options: list[Option]
    refused: list[Refusal]
    kept: str | None = None


Namer = Callable[[str], str]


def recommend(snapshot: Snapshot, plan: Plan, job_id: str, limit: int = 5) -> list[Option]:
    """Up to ``limit`` placements for ``job_id`` other than its current one, cheapest first."""
    return advise(snapshot, plan, job_id, limit).options


def advise(
    snapshot: Snapshot,
    plan: Plan,
    job_id: str,
    limit: int = 5,
    *,
    name: Namer = str,
) -> Advice:
    """Options for ``job_id`` other than its current placement, and why the other pairs have none.

    Every other job stays where ``plan`` has it, except kept work, which stays where it is kept (a
    pin placed or a start missed since the plan was made moves it), so each option is a valid
    plan on its own. Each eligible examiner/workstation pair gives its earliest start per lab
    day, priced; the ``limit`` cheapest that the verifier accepts applied are the options, and
    every pair without one carries a reason. A pinned or frozen job has no options and says why.
    ``name`` writes a job id in reasons. Raises ``KeyError`` for a job not in the snapshot.
    """
    jobs = snapshot.jobs_by_id
    job = jobs[job_id]
    kept = kept_placements(snapshot)
    if job_id in kept:
        return Advice([], [], kept_reason(snapshot, kept[job_id]))
    if limit <= 0:
        return Advice([], [])
    placed = {a.job: a for a in plan.assignments if a.job in jobs}
    for other, k in kept.items():  # kept work is where it is kept, whatever the plan says
        placed[other] = Assignment(
            other, k.examiner, k.workstation, k.start, k.start + kept_duration(jobs[other], k)
        )
    current = placed.get(job_id)
    others = {j: a for j, a in placed.items() if j != job_id}
    fixed: dict[str, Assignment | None] = {j.id: others.get(j.id) for j in snapshot.jobs}
    del fixed[job_id]
    ctx = _domains(snapshot, [job_id], fixed)
    jv = ctx.vars[job_id]
    examiners: list[str | None] = (
        list(ctx.examiner_options[job_id]) if job.needs_examiner else [None]
    )
    stations: list[str | None] = (
        list(ctx.workstation_options[job_id]) if job.needs_workstation else [None]
    )
    pairs = [(e, w) for e in examiners for w in stations]
    why = _Why(snapshot, ctx, job, others, name)
    if not jv.start_domain:
        blocked = why.job_blocked()
        if blocked is not None:
            return Advice([], [Refusal(e, w, blocked) for e, w in pairs])

    base_terms = objective_terms(snapshot, placed.values())
    base = weighted_objective(snapshot, base_terms)
    pricer = _Pricer(snapshot, job, others, current, base_terms)
    caps = _Caps(snapshot, job, others)

    domains: dict[str, list[Interval]] = {}
    for key, var in jv.option_starts.items():
        flat = list(ctx.model.proto.variables[var.index].domain)
        domains[key] = [(flat[i], flat[i + 1]) for i in range(0, len(flat), 2)]

    refused: list[Refusal] = []
    candidates: dict[tuple[str | None, str | None], list[Option]] = {}
    for e, w in pairs:
        if (e is not None and e not in jv.examiners) or (
            w is not None and w not in jv.workstations
        ):
            refused.append(Refusal(e, w, why.pair(e, w)))
            continue
        dom = jv.start_domain
        if e is not None:
            dom = intersect_closed(dom, domains.get(f"e:{e}", jv.start_domain))
        if w is not None:
            dom = intersect_closed(dom, domains.get(f"w:{w}", jv.start_domain))
        skip = None
        if current is not None and (e, w) == (current.examiner, current.workstation):
            skip = current.start
        starts = _earliest_per_day(snapshot, dom, e, caps, skip)
        if not starts:
            refused.append(Refusal(e, w, why.no_start(e, w, dom, caps, skip)))
            continue
        found = []
        for start in starts:
            end = start + job.duration_on(w)
            a = Assignment(job_id, e, w, start, end)
            found.append(Option(e, w, start, end, pricer.objective(a) - base))
        found.sort(key=_order)
        candidates[e, w] = found

    left = tuple(
        Unscheduled(j.id, HORIZON_FULL, "")
        for j in snapshot.jobs
        if j.id not in placed and j.id != job_id
    )
    # What the plan breaks already without this job (a pin placed or a start missed since it was
    # made can leave an unrelated job in breach): an option is refused only for what it breaks.
    without = Plan(
        "feasible", None, None, 0.0, tuple(others.values()), (*left, Unscheduled(job_id, "", ""))
    )
    already = {(v.rule, v.job) for v in verify(snapshot, without)}

    def problems_of(option: Option) -> list[str]:
        moved = Assignment(job_id, option.examiner, option.workstation, option.start, option.end)
        trial = Plan("feasible", None, None, 0.0, (*others.values(), moved), left)
        return [
            f"{v.rule} ({v.detail})"
            for v in verify(snapshot, trial)
            if v.rule not in KEPT and (v.rule, v.job) not in already
        ]

    # The cheapest starts first, verified one by one until ``limit`` pass; a pair none of whose
    # starts is an option says why (broken rules, or dearer than the options given).
    ranked = sorted((o for found in candidates.values() for o in found), key=_order)
    out: list[Option] = []
    broken: dict[tuple[str | None, str | None], str] = {}
    tried: dict[tuple[str | None, str | None], int] = defaultdict(int)
    for option in ranked:
        if len(out) >= limit:
            break
        pair = (option.examiner, option.workstation)
        tried[pair] += 1
        exact = _exact(snapshot, others, job_id, option) - base
        if exact != option.cost_delta:
            log.warning("recommend: priced %s at %d, exact %d", option, option.cost_delta, exact)
            option = replace(option, cost_delta=exact)
        problems = problems_of(option)
        if problems:
            broken.setdefault(pair, problems[0])
            log.warning("recommend: option %s breaks %s; skipped", option, problems[0])
            continue
        out.append(option)
    given = {(o.examiner, o.workstation) for o in out}
    for pair, found in candidates.items():
        if pair in given:
            continue
        if tried[pair] == len(found):
            reason = f"every start found would break {broken[pair]}"
        else:
            best = found[tried[pair]]
            reason = (
                f"not among the {limit} cheapest options: at best {clock(best.start)}, "
                f"cost {best.cost_delta:+d}"
            )
        refused.append(Refusal(*pair, reason))
    if len(out) < limit:
        out, refused = _with_pushes(
            snapshot, ctx, job, current, others, kept, base, already, left, limit, out, refused
        )
    out.sort(key=_order)
    return Advice(out, refused)


def _domains(
    snapshot: Snapshot, free: list[str], fixed: Mapping[str, Assignment | None]
) -> ModelContext:
    """The model's start domains for ``free`` with every other job at ``fixed``.

    Only the rules that make the domains are applied (eligibility, then placement: windows,
    release, fixed neighbours, busy time, capacity, licences); the caps are checked per start
    here and the verifier checks every option, so the rest of the model is not built.
    """
    ctx = ModelContext(snapshot, free, fixed)
    add_eligibility(ctx)
    add_placement(ctx)
    return ctx


#: Starts tried per examiner/workstation pair when successors must make room.
PUSH_TRIES = 2


def _with_pushes(
    snapshot: Snapshot,
    ctx: ModelContext,
    job: Job,
    current: Assignment | None,
    others: dict[str, Assignment],
    kept: Mapping[str, KeptPlacement],
    base: int,
    already: set[tuple[str, str | None]],
    left: tuple[Unscheduled, ...],
    limit: int,
    out: list[Option],
    refused: list[Refusal],
) -> tuple[list[Option], list[Refusal]]:
    """Pairs with no option alone get one that pushes the job's successors later, if one fits.

    A job between two fixed neighbours of its own chain (review sittings back to back) has no
    room on its own; moved later, its successors follow, each as far as it must and no more
    (docs/architecture.md §5.6). The starts come from the model with the job and its scheduled
    successors free; every option is priced exactly and verified applied, moves and all.
    """
    order = _descendants(ctx, job.id, others)
    if not order or any(d in kept for d in order):
        return out, refused
    free = [job.id, *order]
    fixed = {j.id: others.get(j.id) for j in snapshot.jobs if j.id not in free}
    loose = _domains(snapshot, free, fixed)
    jv = loose.vars[job.id]
    if not jv.start_domain:
        return out, refused
    domains: dict[str, list[Interval]] = {}
    for key, var in jv.option_starts.items():
        flat = list(loose.model.proto.variables[var.index].domain)
        domains[key] = [(flat[i], flat[i + 1]) for i in range(0, len(flat), 2)]
    caps = _Caps(snapshot, job, {j: a for j, a in others.items() if j not in free})
    jobs = loose.jobs
    tries: list[tuple[int, int, Refusal]] = []
    for index, refusal in enumerate(refused):
        e, w = refusal.examiner, refusal.workstation
        if refusal.reason.startswith("not among"):
            continue
        if (e is not None and e not in jv.examiners) or (
            w is not None and w not in jv.workstations
        ):
            continue
        dom = jv.start_domain
        if e is not None:
            dom = intersect_closed(dom, domains.get(f"e:{e}", jv.start_domain))
        if w is not None:
            dom = intersect_closed(dom, domains.get(f"w:{w}", jv.start_domain))
        skip = None
        if current is not None and (e, w) == (current.examiner, current.workstation):
            skip = current.start
        for start in _earliest_per_day(snapshot, dom, e, caps, skip)[:PUSH_TRIES]:
            tries.append((start, index, refusal))
    # Earliest first (the cheapest, as a rule), one option per pair, until the options are full.
    found: dict[int, Option] = {}
    for start, index, refusal in sorted(tries, key=lambda t: (t[0], t[1])):
        if len(out) + len(found) >= limit:
            break
        if index in found:
            continue
        e, w = refusal.examiner, refusal.workstation
        moved = Assignment(job.id, e, w, start, start + job.duration_on(w))
        pushed = _push(snapshot, jobs, moved, others, order)
        if pushed is None:
            continue
        placed = dict(others)
        for a in (*pushed, moved):
            placed[a.job] = a
        rest = {j: a for j, a in placed.items() if j != job.id}
        if not _Caps(snapshot, job, rest).allow(e, start):
            continue  # a successor that stays where it is fills the day or week
        trial = Plan("feasible", None, None, 0.0, tuple(placed.values()), left)
        problems = [
            v
            for v in verify(snapshot, trial)
            if v.rule not in KEPT and (v.rule, v.job) not in already
        ]
        if problems:
            log.warning("recommend: push %s breaks %s; skipped", moved, problems[0])
            continue
        cost = weighted_objective(snapshot, objective_terms(snapshot, placed.values())) - base
        found[index] = Option(e, w, moved.start, moved.end, cost, tuple(pushed))
    return [*out, *found.values()], [r for i, r in enumerate(refused) if i not in found]


def _descendants(ctx: ModelContext, job_id: str, others: dict[str, Assignment]) -> list[str]:
    """Scheduled successors of the job, transitively, in an order that respects precedence."""
    seen: set[str] = set()
    stack = [job_id]
    while stack:
        for succ in ctx.successors.get(stack.pop(), []):
            if succ not in seen and succ in others:
                seen.add(succ)
                stack.append(succ)
    indegree = {d: sum(p in seen for p in ctx.jobs[d].after) for d in seen}
    ready = sorted((d for d, n in indegree.items() if n == 0), key=lambda d: others[d].start)
    order: list[str] = []
    while ready:
        d = ready.pop(0)
        order.append(d)
        for succ in ctx.successors.get(d, []):
            if succ in indegree:
                indegree[succ] -= 1
                if indegree[succ] == 0:
                    ready.append(succ)
    return order


def _push(
    snapshot: Snapshot,
    jobs: Mapping[str, Job],
    moved: Assignment,
    others: dict[str, Assignment],
    order: list[str],
) -> list[Assignment] | None:
    """The successors that must start later once ``moved`` is placed, each at its earliest start
    after its predecessors (on its own examiner/workstation unless another eligible pair starts
    it sooner); ``None`` if one finds no start at all."""
    placed = dict(others)
    placed[moved.job] = moved
    busy = _Busy(snapshot, jobs, placed)
    pushed: list[Assignment] = []
    for d in order:
        a, job = placed[d], jobs[d]
        earliest = max((placed[p].end for p in job.after if p in placed), default=0)
        if a.start >= earliest:
            continue
        del placed[d]
        busy.remove(a)
        caps = _Caps(snapshot, job, placed)
        pairs = [(a.examiner, a.workstation)]
        examiners: list[str | None] = [e.id for e in eligible_examiners(snapshot, job)]
        stations: list[str | None] = [w.id for w in eligible_workstations(snapshot, job)]
        examiners, stations = examiners or [None], stations or [None]
        pairs += [(e, w) for e in examiners for w in stations if (e, w) != pairs[0]]
        best: Assignment | None = None
        for e, w in pairs:
            start = busy.earliest_fit(job, e, w, earliest, caps)
            if start is not None and (best is None or start < best.start):
                best = Assignment(d, e, w, start, start + job.duration_on(w))
        if best is None:
            return None
        placed[d] = best
        busy.add(best)
        pushed.append(best)
    return pushed


class _Busy:
    """Time the placed jobs take per examiner, workstation and licence pool, kept up to date as
    successors are pushed."""

    def __init__(
        self, snapshot: Snapshot, jobs: Mapping[str, Job], placed: dict[str, Assignment]
    ) -> None:
        self.snapshot = snapshot
        self.jobs = jobs
        self.examiners = snapshot.examiners_by_id
        self.stations = snapshot.workstations_by_id
        self.capacity = {p.id: p.capacity for p in snapshot.pools}
        self.attended: dict[str, dict[str, Interval]] = defaultdict(dict)
        self.machine: dict[str, dict[str, Interval]] = defaultdict(dict)
        self.pool: dict[str, dict[str, Interval]] = defaultdict(dict)
        for a in placed.values():
            self.add(a)

    def add(self, a: Assignment) -> None:
        job = self.jobs[a.job]
        if a.examiner is not None and job.attended > 0:
            self.attended[a.examiner][a.job] = (a.start, a.start + job.attended)
        if a.workstation is not None:
            self.machine[a.workstation][a.job] = (a.start, a.start + job.machine_on(a.workstation))
        for pool in job.pools:
            self.pool[pool][a.job] = (a.start, a.end)

    def remove(self, a: Assignment) -> None:
        for table in (self.attended, self.machine, self.pool):
            for spans in table.values():
                spans.pop(a.job, None)

    def earliest_fit(
        self, job: Job, examiner: str | None, workstation: str | None, earliest: int, caps: _Caps
    ) -> int | None:
        """The earliest start from ``earliest`` where ``job`` fits on the given resources
        (windows, busy time, capacity, licences, exposure caps)."""
        horizon = self.snapshot.horizon
        duration = job.duration_on(workstation)
        dom: list[Interval] = [(earliest, horizon - duration)]
        if examiner is not None:
            e = self.examiners[examiner]
            wins = list(e.available)
            if job.exposure > 0:
                wins = iv.intersect(wins, list(e.exposure.windows))
            busy = list(self.attended[examiner].values())
            free = iv.starts_fitting(iv.subtract(wins, busy), job.attended)
            dom = intersect_closed(dom, iv.merge_closed(free))
        if workstation is not None and dom:
            ws = self.stations[workstation]
            available = list(ws.available) if ws.available else [(0, horizon)]
            full = iv.overloaded(self.machine[workstation].values(), ws.capacity)
            free = iv.starts_fitting(iv.subtract(available, full), job.machine_on(workstation))
            dom = intersect_closed(dom, iv.merge_closed(free))
        for pool in job.pools:
            if not dom:
                break
            capacity = self.capacity.get(pool, 0)
            full = iv.overloaded(self.pool[pool].values(), capacity)
            free = iv.starts_fitting(iv.subtract([(0, horizon)], full), duration)
            dom = intersect_closed(dom, iv.merge_closed(free) if capacity else [])
        if not dom:
            return None
        starts = _earliest_by_day(self.snapshot, dom, examiner, caps)
        return starts[0] if starts else None


def _order(o: Option) -> tuple[int, int, str, str]:
    return (o.cost_delta, o.start, o.examiner or "", o.workstation or "")


def _exact(snapshot: Snapshot, others: dict[str, Assignment], job_id: str, o: Option) -> int:
    moved = Assignment(job_id, o.examiner, o.workstation, o.start, o.end)
    return weighted_objective(snapshot, objective_terms(snapshot, [*others.values(), moved]))


def kept_reason(snapshot: Snapshot, k: KeptPlacement, pinned: str = "pinned") -> str:
    """Why kept work stays where it is; ``pinned`` says what a pin is (a person's, or work
    the service holds in place because it is under way)."""
    where = " on ".join(r for r in (k.examiner, k.workstation) if r)
    at = f"{clock(k.start)}" + (f" on {where}" if where else "")
    if k.kind == PIN:
        return f"{pinned} at {at}: it stays where it is"
    return (
        f"starts at {at}, inside the frozen window (until {clock(snapshot.frozen_until)}): "
        "published work there stays"
    )


#: Two starts of one pair this close are the same slot to a person; another option is offered
#: at least this far from the current start on the current examiner/workstation.
SLOT_MINUTES = 15


def _earliest_per_day(
    snapshot: Snapshot,
    domain: list[Interval],
    examiner: str | None,
    caps: _Caps,
    skip: int | None = None,
) -> list[int]:
    """The earliest start in ``domain`` on each lab-local day (and before/after all days).

    ``skip`` is the job's current start on these resources: not an option itself, it must not
    hide the rest of its day either, so that day offers the earliest start at least
    ``SLOT_MINUTES`` away from it (or any other start, if none is that far).
    """
    if skip is not None:
        near = [(skip - SLOT_MINUTES + 1, skip + SLOT_MINUTES - 1)]
        far = _minus(domain, near)
        rest = _minus(domain, [(skip, skip)])
        out = _earliest_by_day(snapshot, far, examiner, caps)
        day = snapshot.day_of(skip)
        if not any(snapshot.day_of(t) == day for t in out):
            extra = [
                t
                for t in _earliest_by_day(snapshot, rest, examiner, caps)
                if snapshot.day_of(t) == day
            ]
            out = sorted([*out, *extra])
        return out
    return _earliest_by_day(snapshot, domain, examiner, caps)


def _minus(domain: list[Interval], cut: list[Interval]) -> list[Interval]:
    """Closed ranges of ``domain`` outside the closed ranges of ``cut``."""
    out: list[Interval] = []
    for lo, hi in domain:
        pieces = [(lo, hi)]
        for a, b in cut:
            nxt: list[Interval] = []
            for x, y in pieces:
                if b < x or a > y:
                    nxt.append((x, y))
                    continue
                if x < a:
                    nxt.append((x, a - 1))
                if b < y:
                    nxt.append((b + 1, y))
            pieces = nxt
        out.extend(pieces)
    return out


def _earliest_by_day(
    snapshot: Snapshot, domain: list[Interval], examiner: str | None, caps: _Caps
) -> list[int]:
    out: dict[int | None, int] = {}
    days = snapshot.days
    for lo, hi in domain:
        t = lo
        while t <= hi:
            d = snapshot.day_of(t)
            if d is None:
                nxt = next((a for a, _ in days if a > t), hi + 1)
            else:
                nxt = days[d][1]
            if d not in out and caps.allow(examiner, t):
                out[d] = t
            t = max(t + 1, nxt)
    return sorted(out.values())


class _Caps:
    """Exposure already planned per examiner and day/week, without the job itself."""

    def __init__(self, snapshot: Snapshot, job: Job, others: dict[str, Assignment]) -> None:
        self.job = job
        self.examiners = snapshot.examiners_by_id
        self.ledger = ExposureLedger(snapshot).take_all(others.values())

    def allow(self, examiner: str | None, start: int) -> bool:
        return self.breach(examiner, start) is None

    def breach(self, examiner: str | None, start: int) -> str | None:
        """The cap the job would pass starting at ``start`` on ``examiner`` (``None``: none)."""
        job = self.job
        if examiner is None or job.exposure <= 0:
            return None
        e = self.examiners[examiner]
        cap = self.ledger.exceeded_at(job, e, start)
        return None if cap is None else f"{cap.words} ({cap.limit(e)} min)"


#: Jobs named in a "busy" reason; the rest are counted.
NAMED = 3


class _Why:
    """Reasons, in engine terms, for what the one-job model leaves out.

    The model folds everything into start domains; this recomputes the parts one resource at a
    time (the same interval arithmetic, the same fixed jobs) to say which one rules a pair out.
    """

    def __init__(
        self,
        snapshot: Snapshot,
        ctx: ModelContext,
        job: Job,
        others: dict[str, Assignment],
        name: Namer,
    ) -> None:
        self.snapshot = snapshot
        self.ctx = ctx
        self.job = job
        self.name = name
        self.missing: str | None = None
        self.lb, self.after = max(job.release, 0), None
        for pred in job.after:
            if pred not in ctx.jobs:
                continue
            a = others.get(pred)
            if a is None:
                self.missing = self.missing or pred
            elif a.end > self.lb:
                self.lb, self.after = a.end, pred
        self.ub, self.before = snapshot.horizon, None
        for succ in ctx.successors.get(job.id, []):
            a = others.get(succ)
            if a is not None and a.start < self.ub:
                self.ub, self.before = a.start, succ

    def _window(self) -> str:
        return f"between {clock(self.lb)} and {clock(self.ub)}"

    def job_blocked(self) -> str | None:
        """Why no start at all fits the job's own time window, if that is the reason."""
        job, name = self.job, self.name
        if self.missing is not None:
            return f"its predecessor {name(self.missing)} is not scheduled"
        if self.ub - self.lb >= job.min_duration:
            return None
        start = (
            f"start after {name(self.after)} ends at {clock(self.lb)}"
            if self.after is not None
            else f"start at {clock(self.lb)} or later"
        )
        end = (
            f"end before {name(self.before)} starts at {clock(self.ub)}"
            if self.before is not None
            else f"end by the horizon ({clock(self.ub)})"
        )
        return f"it must {start} and {end}: its {job.min_duration} minutes do not fit"

    def _busy(self, spans: list[tuple[str, Interval]], what: str) -> str:
        inside = sorted(
            (span, other) for other, span in spans if span[1] > self.lb and span[0] < self.ub
        )
        named = ", ".join(f"{self.name(o)} at {clock(a)}" for (a, _), o in inside[:NAMED])
        more = f" and {len(inside) - NAMED} more" if len(inside) > NAMED else ""
        return f"{what} {self._window()} ({named}{more})" if named else f"{what} {self._window()}"

    def _examiner_starts(self, e: str) -> tuple[list[Interval], list[Interval]]:
        """(starts inside the examiner's windows, those also free of fixed work), in the window."""
        ex = self.ctx.examiners[e]
        wins = list(ex.available)
        if self.job.exposure > 0:
            wins = iv.intersect(wins, list(ex.exposure.windows))
        busy = [span for _, span in self.ctx.fixed_attended.get(e, [])]
        hi = self.ub - self.job.min_duration
        fit = iv.merge_closed(iv.starts_fitting(wins, self.job.attended))
        free = iv.merge_closed(iv.starts_fitting(iv.subtract(wins, busy), self.job.attended))
        return iv.clip_closed(fit, self.lb, hi), iv.clip_closed(free, self.lb, hi)

    def _station_starts(self, w: str) -> tuple[list[Interval], list[Interval]]:
        ctx, job = self.ctx, self.job
        ws = ctx.workstations[w]
        available = list(ws.available) if ws.available else [(0, ctx.horizon)]
        full = iv.overloaded([s for _, s in ctx.fixed_machine.get(w, [])], ws.capacity)
        length = job.machine_on(w)
        hi = self.ub - job.duration_on(w)
        fit = iv.merge_closed(iv.starts_fitting(available, length))
        free = iv.merge_closed(iv.starts_fitting(iv.subtract(available, full), length))
        return iv.clip_closed(fit, self.lb, hi), iv.clip_closed(free, self.lb, hi)

    def _pool_starts(self, pool: str, length: int) -> list[Interval]:
        ctx = self.ctx
        capacity = ctx.pool_capacity.get(pool, 0)
        full = iv.overloaded([s for _, s in ctx.fixed_pool.get(pool, [])], capacity)
        free = iv.subtract([(0, ctx.horizon)], full) if capacity > 0 else []
        starts = iv.merge_closed(iv.starts_fitting(free, length))
        return iv.clip_closed(starts, self.lb, self.ub - length)

    def pair(self, e: str | None, w: str | None) -> str:
        """Why the pair has no start in the model at all."""
        blocked = self.job_blocked()
        if blocked is not None:
            return blocked
        job, ctx = self.job, self.ctx
        ex_free: list[Interval] = [(self.lb, self.ub)]
        if e is not None:
            fit, ex_free = self._examiner_starts(e)
            if not fit:
                windows = "exposure windows" if job.exposure > 0 else "shifts"
                return f"{e} has no {job.attended} minutes inside their {windows} {self._window()}"
            if not ex_free:
                return self._busy(ctx.fixed_attended.get(e, []), f"{e} is busy")
        ws_free: list[Interval] = [(self.lb, self.ub)]
        length = job.duration_on(w) if w is not None else job.attended
        if w is not None:
            fit, ws_free = self._station_starts(w)
            if not fit:
                return f"{w} is not available for {job.duration_on(w)} minutes {self._window()}"
            if not ws_free:
                return self._busy(ctx.fixed_machine.get(w, []), f"{w} is fully booked")
        for pool in job.pools:
            if not self._pool_starts(pool, length):
                spans = ctx.fixed_pool.get(pool, [])
                return self._busy(spans, f"every {pool} licence is in use")
        both = iv.intersect_closed(ex_free, ws_free)
        for pool in job.pools:
            both = iv.intersect_closed(both, self._pool_starts(pool, length))
        parts = [r for r in (e, w) if r] + [f"a {p} licence" for p in job.pools]
        if not both:
            return f"{' and '.join(parts)} are never free together {self._window()}"
        return f"{' and '.join(parts)} have no start that fits every rule {self._window()}"

    def no_start(
        self, e: str | None, w: str | None, dom: list[Interval], caps: _Caps, skip: int | None
    ) -> str:
        """Why a pair with starts in the model has none to offer."""
        if not dom:
            return self.pair(e, w)
        for lo, _ in dom:
            cap = caps.breach(e, lo)
            if cap is not None and lo != skip:
                return f"{e} would pass their {cap} on every day it could start (from {clock(lo)})"
        if skip is not None and dom == [(skip, skip)]:
            return f"its current start ({clock(skip)}) is the only one that fits"
        return f"no start fits {self._window()}"


class _Pricer:
    """The plan's weighted objective with the one job moved, updated term by term."""

    def __init__(
        self,
        snapshot: Snapshot,
        job: Job,
        others: dict[str, Assignment],
        current: Assignment | None,
        base_terms: dict[str, int],
    ) -> None:
        self.snapshot = snapshot
        self.job = job
        jobs = snapshot.jobs_by_id
        self.primary = primary_term(snapshot)
        # Main term without the job.
        if self.primary == "makespan":
            ends = [a.end for a in others.values()]
            ends += [
                unassigned_end(snapshot, j)
                for j in snapshot.jobs
                if j.id not in others and j.id != job.id
            ]
            self.rest = max(ends, default=0)
        else:
            rest = 0
            for j in snapshot.jobs:
                if j.id == job.id:
                    continue
                a = others.get(j.id)
                rest += job_tardiness(j, a.end if a is not None else unassigned_end(snapshot, j))
            self.rest = rest
        # Change term without the job's own entry (re-priced per option).
        self.previous = next((p for p in snapshot.previous if p.job == job.id), None)
        self.change_rest = base_terms.get(CHANGE, 0) - self._changed(current)
        # Balance: exposure per in-scope examiner without the job.
        scope = [e.id for e in exposure_examiners(snapshot)]
        self.loads = dict.fromkeys(scope, 0)
        for a in others.values():
            other = jobs[a.job]
            if other.exposure > 0 and a.examiner in self.loads:
                self.loads[a.examiner] += other.exposure
        # Continuity: examiners on the job's case without the job, and the other cases' total.
        self.case_examiners: set[str] = set()
        continuity_rest = 0
        by_case: dict[str, set[str]] = defaultdict(set)
        for a in others.values():
            other = jobs[a.job]
            if other.needs_examiner and a.examiner is not None:
                by_case[other.case].add(a.examiner)
        for case, names in by_case.items():
            if case == job.case:
                self.case_examiners = names
            else:
                continuity_rest += len(names) - 1
        self.continuity_rest = continuity_rest

    def _changed(self, a: Assignment | None) -> int:
        prev = self.previous
        if prev is None:
            return 0
        days = self.snapshot.day_of
        if (
            a is None
            or a.examiner != prev.examiner
            or a.workstation != prev.workstation
            or days(a.start) != days(prev.start)
        ):
            return prev.changes
        return 0

    def objective(self, a: Assignment) -> int:
        job = self.job
        if self.primary == "makespan":
            main = max(self.rest, a.end)
        else:
            main = self.rest + job_tardiness(job, a.end)
        terms = {self.primary: main}
        terms[CHANGE] = self.change_rest + self._changed(a)
        if len(self.loads) >= 2:
            loads = dict(self.loads)
            if job.exposure > 0 and a.examiner in loads:
                loads[a.examiner] += job.exposure
            terms[BALANCE] = max(loads.values()) - min(loads.values())
        else:
            terms[BALANCE] = 0
        names = set(self.case_examiners)
        if job.needs_examiner and a.examiner is not None:
            names.add(a.examiner)
        terms[CONTINUITY] = self.continuity_rest + (len(names) - 1 if names else 0)
        return weighted_objective(self.snapshot, terms)
