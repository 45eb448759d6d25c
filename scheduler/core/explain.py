"""Why a job is not in the plan: reason codes and details a supervisor can act on.

Two kinds of explanation (docs/architecture.md §5.6):

- :func:`unscheduled_reasons` gives every job left out of a valid plan one reason code
  (``plan.py``) and a short detail: nobody may take it, a predecessor is not scheduled, the
  exposure caps leave no room, it is released too late, or the horizon is simply full.
- :func:`pin_conflicts` explains pinned or frozen placements that cannot all be kept. It builds
  the lab's own CP-SAT model (`cpsat.model.build_model`, the same rule modules as every solve)
  over the kept placements, each held to its kept examiner, workstation and start and present
  only under an assumption literal; CP-SAT's ``SufficientAssumptionsForInfeasibility`` names the
  placements that clash (shrunk to a minimal set by deletion) and the verifier names the rules
  they break together.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace

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
    """The lab's own CP-SAT model (`cpsat.model.build_model`, every rule module) over the kept
    placements, each job free but held to exactly its kept examiner, workstation and start, and
    present only if its ``keep`` literal (an assumption) says so. A set of kept placements that
    cannot all be present is a conflict; the verifier then names the rules it breaks."""

    def __init__(self, snapshot: Snapshot, placements: Mapping[str, KeptPlacement]) -> None:
        from scheduler.core.cpsat.model import build_model

        jobs = snapshot.jobs_by_id
        kept = set(placements)
        # Only the kept jobs, unpinned and with no published placement of their own (the windows
        # below hold them), waiting only for kept predecessors: a free predecessor is placed by
        # the solver (or reported), so it constrains nothing here.
        sub = replace(
            snapshot,
            jobs=tuple(
                replace(jobs[j], pin=None, after=tuple(p for p in jobs[j].after if p in kept))
                for j in placements
            ),
            previous=(),
        )
        self.snapshot = sub
        self.placements = placements
        allowed = {
            j: frozenset(
                ([f"e:{k.examiner}"] if k.examiner is not None else [])
                + ([f"w:{k.workstation}"] if k.workstation is not None else [])
            )
            for j, k in placements.items()
        }
        windows = {j: (k.start, k.start) for j, k in placements.items()}
        ctx = build_model(sub, list(placements), {}, start_windows=windows, allowed=allowed)
        self.model = ctx.model
        self.model.clear_objective()  # type: ignore[no-untyped-call]  # feasibility only
        self.keep = {j: ctx.vars[j].present for j in placements if j in ctx.vars}
        self.names = {lit.index: j for j, lit in self.keep.items()}

    def feasible(self, keep: Sequence[str]) -> tuple[bool, list[str]]:
        """Can the ``keep`` placements all be present? If not, a sufficient set of them."""
        self.model.clear_assumptions()
        self.model.add_assumptions([self.keep[j] for j in keep if j in self.keep])
        solver = make_solver(workers=1, seconds=5.0, deterministic=False)
        status = solver.solve(self.model)
        if status != cp_model.INFEASIBLE:
            return True, []
        core = solver.sufficient_assumptions_for_infeasibility()
        return False, [self.names[i] for i in core if i in self.names]

    def rules(self, core: Sequence[str]) -> list[str]:
        """The rules the ``core`` placements break together, as the verifier names them, each
        with the resource, day or week it is broken on (``examiner_overlap[e=E1]``)."""
        jobs = self.snapshot.jobs_by_id
        placed = {}
        for j in core:
            k, job = self.placements[j], jobs[j]
            end = k.start + kept_duration(job, k)
            placed[j] = Assignment(j, k.examiner, k.workstation, k.start, end)
        trial = Plan("unknown", None, None, 0.0, tuple(placed.values()))
        # only the core's jobs, waiting only for each other: a kept predecessor outside the core
        # is not what clashes
        inner = replace(
            self.snapshot,
            jobs=tuple(
                replace(jobs[j], after=tuple(p for p in jobs[j].after if p in placed))
                for j in core
            ),
        )
        out = set()
        for v in verify(inner, trial):
            if v.rule in (names.COVERAGE, *names.KEPT):
                continue
            out.add(self._qualified(v.rule, v.detail, placed.get(v.job or "")))
        return sorted(out)

    def _qualified(self, rule: str, detail: str, a: Assignment | None) -> str:
        if a is None:
            return rule
        if rule == names.EXAMINER_OVERLAP:
            return f"{rule}[e={a.examiner}]"
        if rule == names.WORKSTATION_CAPACITY:
            return f"{rule}[w={a.workstation}]"
        if rule == names.POOL_CAPACITY:
            pool = detail.split(" ", 2)[1] if detail.startswith("pool ") else "?"
            return f"{rule}[p={pool}]"
        if rule == names.PRECEDENCE:
            return f"{rule}[j={a.job}]"
        cap = exposure.BY_RULE.get(rule)
        if cap is not None:
            day, week = counted_in(self.snapshot, a.start)
            period = day if cap.period[0] == "d" else week
            return f"{rule}[e={a.examiner},{cap.period[0]}={period}]"
        return rule


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
        trying = [*kept_ids, job_id]
        model = _ConflictModel(snapshot, {j: targets[j] for j in trying})
        ok, core = model.feasible(trying)
        if ok:
            preds = [p for p in job.after if p in jobs and p not in targets]
            out[job_id] = (
                f"{where} cannot be kept: predecessor {', '.join(preds)} cannot end before it"
                if preds
                else f"{where} cannot be kept with the other kept placements"
            )
            continue
        if job_id not in core:
            core = [*core, job_id]
        core = _minimise(model, core, job_id)
        others = sorted(j for j in core if j != job_id)
        rules = model.rules(core)
        out[job_id] = (
            f"{where} clashes with kept {', '.join(others) or 'placements'} "
            f"under {', '.join(rules) or 'the hard rules'}"
        )
    return out


def _minimise(model: _ConflictModel, core: list[str], job_id: str, limit: int = 40) -> list[str]:
    """Shrink a sufficient set of kept placements by deletion to a minimal one that still
    includes ``job_id`` (small sets only)."""
    if len(core) > limit:
        return core
    current = list(core)
    for name in list(current):
        if name == job_id:
            continue
        trial = [n for n in current if n != name]
        ok, _ = model.feasible(trial)
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
