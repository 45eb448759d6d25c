"""Why a job is not in the plan: reason codes and details a supervisor can act on.

Two kinds of explanation (docs/architecture.md §5.6):

- :func:`unscheduled_reasons` gives every job left out of a valid plan one reason code
  (``plan.py``) and a short detail: nobody may take it, a predecessor is not scheduled, the
  exposure caps leave no room, it is released too late, or the horizon is simply full.
- :func:`pin_conflicts` explains pinned or frozen placements that cannot all be kept. It builds a
  small CP-SAT model over the kept placements in which every placement and every rule instance is
  an assumption literal; CP-SAT's ``SufficientAssumptionsForInfeasibility`` then names the
  placements and rules that clash (shrunk to a minimal set by deletion).
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence

from ortools.sat.python import cp_model

from scheduler.core.cpsat.solver import make_solver
from scheduler.core.eligibility import caps_allow, eligible_examiners, eligible_workstations
from scheduler.core.plan import (
    EXPOSURE_CAPS,
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
from scheduler.core.rules import exposure, names
from scheduler.core.rules.exposure import ExposureLedger, counted_in
from scheduler.core.snapshot import Job, KeptPlacement, Snapshot
from scheduler.core.verify import verify

log = logging.getLogger(__name__)


# -- reasons for jobs left out of a valid plan ----------------------------------------------------


def _caps_block(snapshot: Snapshot, job: Job, planned: ExposureLedger) -> bool:
    """True if every eligible examiner's caps are full on every day they could do the work."""
    capped = False  # some day had a window but a full cap
    for e in eligible_examiners(snapshot, job):
        if not caps_allow(job, e):
            continue
        policy = e.exposure
        for d, (a, b) in enumerate(snapshot.days):
            if b <= job.release or a >= snapshot.horizon:
                continue
            if not any(
                min(b, w1) - max(a, w0, job.release) >= job.attended for w0, w1 in policy.windows
            ):
                continue  # no exposure window that day: not the caps' doing
            capped = True
            if planned.exceeded(job, e, d, snapshot.week_of(a)) is None:
                return False
    return capped


#: The detail of a left-out job whose reason the time limit left no time to work out.
NOT_EXPLAINED = "not explained: the solve's time limit ran out before this job was analysed"


def unscheduled_reasons(
    snapshot: Snapshot,
    assignments: Sequence[Assignment],
    left_out: Iterable[str],
    known: Mapping[str, Unscheduled] | None = None,
    deadline: float | None = None,
) -> tuple[Unscheduled, ...]:
    """A reason and a detail for every job of ``left_out``, in snapshot order.

    ``known`` reasons (candidate selection, pin conflicts) are kept as given. Jobs not reached
    by ``deadline`` (``time.monotonic()``) are ``horizon_full`` with the note ``NOT_EXPLAINED``.
    """
    known = dict(known or {})
    jobs = snapshot.jobs_by_id
    placed = {a.job for a in assignments}
    wanted = set(left_out)
    planned = ExposureLedger(snapshot).take_all(assignments)
    reasons: dict[str, Unscheduled] = {}

    def reason(job_id: str) -> Unscheduled:
        if job_id in reasons:
            return reasons[job_id]
        if job_id in known:
            reasons[job_id] = known[job_id]
            return known[job_id]
        job = jobs[job_id]
        if deadline is not None and time.monotonic() >= deadline:
            reasons[job_id] = Unscheduled(job_id, HORIZON_FULL, NOT_EXPLAINED)
            return reasons[job_id]
        reasons[job_id] = Unscheduled(job_id, HORIZON_FULL, "")  # guards against cycles
        reasons[job_id] = _reason(snapshot, job, placed, planned, jobs, reason)
        return reasons[job_id]

    return tuple(reason(j.id) for j in snapshot.jobs if j.id in wanted and j.id not in placed)


def _reason(
    snapshot: Snapshot,
    job: Job,
    placed: set[str],
    planned: ExposureLedger,
    jobs: Mapping[str, Job],
    reason_of: object,
) -> Unscheduled:
    if job.release >= snapshot.horizon or job.release + job.min_duration > snapshot.horizon:
        return Unscheduled(
            job.id,
            RELEASED_AFTER_HORIZON,
            f"released at {clock(job.release)}; {job.min_duration} min do not fit before the "
            f"horizon ends at {clock(snapshot.horizon)}",
        )
    if job.needs_examiner and not [
        e for e in eligible_examiners(snapshot, job) if caps_allow(job, e)
    ]:
        need = "+".join(sorted(job.skills)) or "any"
        extra = f", severity {job.severity}" if job.severity else ""
        return Unscheduled(
            job.id,
            NO_ELIGIBLE_EXAMINER,
            f"no examiner holds skills {need}{extra} within the job's allow-list and caps",
        )
    if job.needs_workstation and not eligible_workstations(snapshot, job):
        need = "+".join(sorted(job.capabilities)) or "any"
        return Unscheduled(
            job.id, NO_ELIGIBLE_WORKSTATION, f"no workstation offers capabilities {need}"
        )
    for pred in job.after:
        if pred in jobs and pred not in placed:
            assert callable(reason_of)
            why = reason_of(pred)
            return Unscheduled(
                job.id,
                PREDECESSOR_UNSCHEDULED,
                f"waits for {pred}, which is not scheduled ({why.reason})",
            )
    if job.exposure > 0 and job.needs_examiner and _caps_block(snapshot, job, planned):
        return Unscheduled(
            job.id,
            EXPOSURE_CAPS,
            f"{job.exposure} exposure minutes: every eligible examiner's daily, severe or weekly "
            "cap is full on the days left in the horizon",
        )
    who = "+".join(sorted(job.skills)) if job.needs_examiner else ""
    what = "+".join(sorted(job.capabilities)) if job.needs_workstation else ""
    need = " and ".join(
        x for x in (f"{who} examiner" if who else "", f"{what} workstation" if what else "") if x
    )
    return Unscheduled(
        job.id,
        HORIZON_FULL,
        f"no {job.min_duration}-minute slot left for {need or 'its resources'} between "
        f"{clock(job.release)} and the end of the horizon; more urgent work fills it",
    )


# -- pinned and frozen placements that cannot all be kept -----------------------------------------


def kept_placements(snapshot: Snapshot) -> Mapping[str, KeptPlacement]:
    """Pins and published assignments starting before ``frozen_until`` (`Snapshot.kept`)."""
    return snapshot.kept


def _own_violations(snapshot: Snapshot, job: Job, k: KeptPlacement) -> list[str]:
    """Rules the placement breaks on its own (skills, windows, caps...), from the verifier."""
    a = Assignment(job.id, k.examiner, k.workstation, k.start, k.start + kept_duration(job, k))
    trial = Plan("unknown", None, None, 0.0, (a,))
    return sorted(
        {
            f"{v.rule} ({v.detail})"
            for v in verify(snapshot, trial)
            if v.job == job.id and v.rule not in names.NOT_ITS_OWN
        }
    )


def kept_duration(job: Job, k: KeptPlacement) -> int:
    """Minutes a kept placement runs (a box the job cannot use runs it at its default)."""
    if k.workstation is not None and job.machine_by_workstation is not None:
        if k.workstation not in job.machine_by_workstation:
            return max(job.attended, job.machine)
    return job.duration_on(k.workstation)


class _ConflictModel:
    """Kept placements as assumption literals, every rule instance as another assumption."""

    def __init__(self, snapshot: Snapshot, placements: Mapping[str, KeptPlacement]) -> None:
        self.snapshot = snapshot
        self.model = cp_model.CpModel()
        self.jobs = snapshot.jobs_by_id
        self.keep = {j: self.model.new_bool_var(f"keep[j={j}]") for j in placements}
        self.rules: dict[str, cp_model.IntVar] = {}
        self.names: dict[int, str] = {}
        for j, lit in self.keep.items():
            self.names[lit.index] = f"job:{j}"
        self.placements = placements
        self._add_rules()

    def rule(self, name: str) -> cp_model.IntVar:
        lit = self.rules.get(name)
        if lit is None:
            lit = self.model.new_bool_var(name)
            self.rules[name] = lit
            self.names[lit.index] = f"rule:{name}"
        return lit

    def _spans(self) -> dict[str, tuple[int, int, int, int]]:
        """Per job: start, attended end, machine end, end."""
        out = {}
        for j, k in self.placements.items():
            job = self.jobs[j]
            m = job.machine_on(k.workstation) if k.workstation is not None else job.machine
            if job.machine_by_workstation is not None and k.workstation not in (
                job.machine_by_workstation
            ):
                m = job.machine
            out[j] = (k.start, k.start + job.attended, k.start + m, k.start + kept_duration(job, k))
        return out

    def _capacity(self, rule: str, items: list[tuple[int, int, str]], capacity: int) -> None:
        """At every start, the placements running then fit ``capacity`` (if the rule holds)."""
        for s, _, _ in items:
            active = [j for a, b, j in items if a <= s < b]
            if len(active) > capacity:
                self.model.add(sum(self.keep[j] for j in active) <= capacity).only_enforce_if(
                    self.rule(rule)
                )

    def _add_rules(self) -> None:
        snap = self.snapshot
        spans = self._spans()
        by_examiner: dict[str, list[tuple[int, int, str]]] = defaultdict(list)
        by_ws: dict[str, list[tuple[int, int, str]]] = defaultdict(list)
        by_pool: dict[str, list[tuple[int, int, str]]] = defaultdict(list)
        for j, k in self.placements.items():
            job = self.jobs[j]
            s, att_end, m_end, end = spans[j]
            if k.examiner is not None and job.attended > 0:
                by_examiner[k.examiner].append((s, att_end, j))
            if k.workstation is not None and m_end > s:
                by_ws[k.workstation].append((s, m_end, j))
            for p in job.pools:
                if end > s:
                    by_pool[p].append((s, end, j))
        for e, items in by_examiner.items():
            self._capacity(f"{names.EXAMINER_OVERLAP}[e={e}]", items, 1)
        ws_capacity = {w.id: w.capacity for w in snap.workstations}
        for w, items in by_ws.items():
            self._capacity(f"{names.WORKSTATION_CAPACITY}[w={w}]", items, ws_capacity.get(w, 1))
        pool_capacity = {p.id: p.capacity for p in snap.pools}
        for p, items in by_pool.items():
            self._capacity(f"{names.POOL_CAPACITY}[p={p}]", items, pool_capacity.get(p, 0))
        # Precedence among kept placements.
        for j in self.placements:
            for pred in self.jobs[j].after:
                if pred not in self.jobs:
                    continue
                lit = self.rule(f"{names.PRECEDENCE}[j={j}]")
                if pred not in self.placements:
                    continue  # a free predecessor: the solver places it (or reports it)
                if spans[pred][3] > spans[j][0]:
                    self.model.add_bool_or([self.keep[pred].Not(), self.keep[j].Not(), lit.Not()])
                self.model.add_bool_or([self.keep[j].Not(), self.keep[pred], lit.Not()])
        # Exposure caps: the room the logged minutes leave, per cap (rules/exposure.py); the
        # daily caps of each examiner and day first, then the weekly caps.
        examiners = snap.examiners_by_id
        logged = ExposureLedger(snap)
        day: dict[tuple[str, int], list[str]] = defaultdict(list)
        week: dict[tuple[str, int], list[str]] = defaultdict(list)
        for j, k in self.placements.items():
            job = self.jobs[j]
            if k.examiner is None or job.exposure <= 0 or k.examiner not in examiners:
                continue
            d, wk = counted_in(snap, k.start)
            if d is not None:
                day[k.examiner, d].append(j)
            if wk is not None:
                week[k.examiner, wk].append(j)
        for caps, by_period in (
            ((exposure.DAILY, exposure.SEVERE_DAILY), day),
            ((exposure.WEEKLY,), week),
        ):
            for (eid, period), ids in by_period.items():
                for cap in caps:
                    room = logged.room(cap, examiners[eid], period)
                    if room is not None:
                        counts = [j for j in ids if cap.counts(self.jobs[j])]
                        self._cap(f"{cap.rule}[e={eid},{cap.period[0]}={period}]", counts, room)

    def _cap(self, rule: str, items: list[str], room: int) -> None:
        if items and sum(self.jobs[j].exposure for j in items) > room:
            self.model.add(
                sum(self.jobs[j].exposure * self.keep[j] for j in items) <= max(room, 0)
            ).only_enforce_if(self.rule(rule))

    def feasible(self, assumptions: Sequence[cp_model.IntVar]) -> tuple[bool, list[str]]:
        """Solve under ``assumptions``; on infeasibility also the names of a sufficient core."""
        self.model.clear_assumptions()
        self.model.add_assumptions(assumptions)
        solver = make_solver(workers=1, seconds=5.0, deterministic=False)
        status = solver.solve(self.model)
        if status != cp_model.INFEASIBLE:
            return True, []
        core = solver.sufficient_assumptions_for_infeasibility()
        return False, [self.names[i] for i in core if i in self.names]


def pin_conflicts(
    snapshot: Snapshot, kept: Iterable[str], dropped: Iterable[str]
) -> dict[str, str]:
    """A detail for every dropped pinned/frozen job naming what it clashes with and which rules.

    ``kept`` are the pinned/frozen jobs the plan keeps; each dropped one is tried on top of them.
    """
    targets = kept_placements(snapshot)
    jobs = snapshot.jobs_by_id
    kept_ids = [j for j in kept if j in targets]
    out: dict[str, str] = {}
    for job_id in dropped:
        k = targets.get(job_id)
        if k is None:
            continue
        job = jobs[job_id]
        where = f"{k.kind} at {clock(k.start)} (examiner {k.examiner}, workstation {k.workstation})"
        own = _own_violations(snapshot, job, k)
        if own:
            out[job_id] = f"{where} breaks {'; '.join(own)}"
            continue
        model = _ConflictModel(snapshot, {j: targets[j] for j in [*kept_ids, job_id]})
        assumptions = [*model.keep.values(), *model.rules.values()]
        ok, core = model.feasible(assumptions)
        if ok:
            preds = [p for p in job.after if p in jobs and p not in targets]
            out[job_id] = (
                f"{where} cannot be kept: predecessor {', '.join(preds)} cannot end before it"
                if preds
                else f"{where} cannot be kept with the other kept placements"
            )
            continue
        core = _minimise(model, core)
        others = sorted(n[4:] for n in core if n.startswith("job:") and n[4:] != job_id)
        rules = sorted(n[5:] for n in core if n.startswith("rule:"))
        out[job_id] = (
            f"{where} clashes with kept {', '.join(others) or 'placements'} "
            f"under {', '.join(rules) or 'the hard rules'}"
        )
    return out


def _minimise(model: _ConflictModel, core: list[str], limit: int = 40) -> list[str]:
    """Shrink a sufficient core by deletion to a minimal one (small sets only)."""
    if len(core) > limit:
        return core
    by_name = {
        **{f"job:{j}": lit for j, lit in model.keep.items()},
        **{f"rule:{r}": lit for r, lit in model.rules.items()},
    }
    current = list(core)
    for name in list(current):
        trial = [n for n in current if n != name]
        ok, _ = model.feasible([by_name[n] for n in trial])
        if not ok:
            current = trial
    return current


__all__ = [
    "KeptPlacement",
    "PIN_CONFLICT",
    "kept_duration",
    "kept_placements",
    "pin_conflicts",
    "unscheduled_reasons",
]
