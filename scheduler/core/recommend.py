"""Where else could this job go? The best examiner/slot options for one job, with their cost.

A supervisor asks "who could take this case's review sooner, and what would it cost?". With every
other job held where the plan has it, the CP-SAT model's start domains for the one free job are
exact: availability and exposure windows, the time other jobs already take, full workstations and
licence pools, release, predecessors and scheduled successors are all in them. What the domains do
not cover — the exposure caps of the day and week a start falls in — is checked here. Each option
is the earliest start per examiner, workstation and day, priced exactly as ``objective.py`` would
price the whole plan with the job moved there.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass, replace

from scheduler.core.cpsat import build_model
from scheduler.core.cpsat.context import Interval
from scheduler.core.cpsat.intervals import intersect_closed
from scheduler.core.eligibility import exposure_examiners
from scheduler.core.explain import kept_placements
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
from scheduler.core.plan import Assignment, Plan, Unscheduled
from scheduler.core.snapshot import Job, Snapshot
from scheduler.core.verify import verify

log = logging.getLogger(__name__)

SEVERE = 3


@dataclass(frozen=True)
class Option:
    """One place the job could go, and how much the plan's objective would change (+ = worse)."""

    examiner: str | None
    workstation: str | None
    start: int
    end: int
    cost_delta: int


def recommend(snapshot: Snapshot, plan: Plan, job_id: str, limit: int = 5) -> list[Option]:
    """Up to ``limit`` placements for ``job_id`` other than its current one, cheapest first.

    Every other job stays where ``plan`` has it, so each option is a valid plan on its own. A
    pinned or frozen job has no options (it must stay where it is); neither has a job whose
    predecessor is not scheduled. Raises ``KeyError`` for a job not in the snapshot.
    """
    jobs = {j.id: j for j in snapshot.jobs}
    job = jobs[job_id]
    if job_id in kept_placements(snapshot) or limit <= 0:
        return []
    placed = {a.job: a for a in plan.assignments if a.job in jobs}
    current = placed.get(job_id)
    others = {j: a for j, a in placed.items() if j != job_id}
    fixed: dict[str, Assignment | None] = {j.id: others.get(j.id) for j in snapshot.jobs}
    del fixed[job_id]
    ctx = build_model(snapshot, [job_id], fixed)
    jv = ctx.vars[job_id]
    if not jv.start_domain:
        return []

    base_terms = objective_terms(snapshot, placed.values())
    base = weighted_objective(snapshot, base_terms)
    pricer = _Pricer(snapshot, job, others, current, base_terms)
    caps = _Caps(snapshot, job, others)

    examiners: list[str | None] = list(jv.examiners) if job.needs_examiner else [None]
    stations: list[str | None] = list(jv.workstations) if job.needs_workstation else [None]
    domains: dict[str, list[Interval]] = {}
    for key, var in jv.option_starts.items():
        flat = list(ctx.model.proto.variables[var.index].domain)
        domains[key] = [(flat[i], flat[i + 1]) for i in range(0, len(flat), 2)]

    candidates: list[Option] = []
    for e in examiners:
        for w in stations:
            dom = jv.start_domain
            if e is not None:
                dom = intersect_closed(dom, domains.get(f"e:{e}", jv.start_domain))
            if w is not None:
                dom = intersect_closed(dom, domains.get(f"w:{w}", jv.start_domain))
            for start in _earliest_per_day(snapshot, dom, e, caps):
                end = start + job.duration_on(w)
                if current is not None and (e, w, start) == (
                    current.examiner,
                    current.workstation,
                    current.start,
                ):
                    continue
                a = Assignment(job_id, e, w, start, end)
                candidates.append(Option(e, w, start, end, pricer.objective(a) - base))
    candidates.sort(key=lambda o: (o.cost_delta, o.start, o.examiner or "", o.workstation or ""))

    left = tuple(
        Unscheduled(j.id, "horizon_full", "")
        for j in snapshot.jobs
        if j.id not in placed and j.id != job_id
    )
    # What the plan breaks already without this job (a pin placed or a start missed since it was
    # made can leave an unrelated job in breach): an option is refused only for what it breaks.
    without = Plan(
        "feasible", None, None, 0.0, tuple(others.values()), (*left, Unscheduled(job_id, "", ""))
    )
    already = {(v.rule, v.job) for v in verify(snapshot, without)}

    out: list[Option] = []
    for option in candidates:
        if len(out) >= limit:
            break
        moved = Assignment(job_id, option.examiner, option.workstation, option.start, option.end)
        trial = [*others.values(), moved]
        exact = weighted_objective(snapshot, objective_terms(snapshot, trial)) - base
        if exact != option.cost_delta:
            log.warning("recommend: priced %s at %d, exact %d", moved, option.cost_delta, exact)
            option = replace(option, cost_delta=exact)
        problems = verify(snapshot, Plan("feasible", None, None, 0.0, tuple(trial), left))
        problems = [
            v
            for v in problems
            if v.rule not in ("pin", "frozen") and (v.rule, v.job) not in already
        ]
        if problems:
            log.warning("recommend: option %s breaks %s; skipped", moved, problems[0])
            continue
        out.append(option)
    out.sort(key=lambda o: (o.cost_delta, o.start, o.examiner or "", o.workstation or ""))
    return out


def _earliest_per_day(
    snapshot: Snapshot, domain: list[Interval], examiner: str | None, caps: _Caps
) -> list[int]:
    """The earliest start in ``domain`` on each lab-local day (and before/after all days)."""
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
        self.snapshot = snapshot
        self.job = job
        self.examiners = {e.id: e for e in snapshot.examiners}
        jobs = {j.id: j for j in snapshot.jobs}
        self.day: dict[tuple[str, int], int] = defaultdict(int)
        self.severe: dict[tuple[str, int], int] = defaultdict(int)
        self.week: dict[tuple[str, int], int] = defaultdict(int)
        for a in others.values():
            other = jobs[a.job]
            if a.examiner is None or other.exposure <= 0:
                continue
            d = snapshot.day_of(a.start)
            k = snapshot.week_of(a.start)
            if d is not None:
                self.day[a.examiner, d] += other.exposure
                if other.severity >= SEVERE:
                    self.severe[a.examiner, d] += other.exposure
            if k is not None:
                self.week[a.examiner, k] += other.exposure

    def allow(self, examiner: str | None, start: int) -> bool:
        job = self.job
        if examiner is None or job.exposure <= 0:
            return True
        e = self.examiners[examiner]
        policy = e.exposure
        d = self.snapshot.day_of(start)
        k = self.snapshot.week_of(start)
        if d is not None:
            if policy.daily_cap is not None:
                logged = self.snapshot.logged_day_exposure(e).get(d, 0)
                if logged + self.day[examiner, d] + job.exposure > policy.daily_cap:
                    return False
            if policy.severe_daily_cap is not None and job.severity >= SEVERE:
                if self.severe[examiner, d] + job.exposure > policy.severe_daily_cap:
                    return False
        if k is not None and policy.weekly_cap is not None:
            logged = self.snapshot.logged_week_exposure(e).get(k, 0)
            if logged + self.week[examiner, k] + job.exposure > policy.weekly_cap:
                return False
        return True


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
        jobs = {j.id: j for j in snapshot.jobs}
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
            return 1
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
