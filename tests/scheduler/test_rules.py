"""Drift between the rules' users caught on generated labs (docs/architecture.md §3.7).

The verifier is the rules' executable specification; every other user of a rule is checked
against it here: the CP-SAT model is never stricter than the verifier (a plan the verifier
accepts is feasible in the model when fixed there), the forecast keeps every cap the verifier
checks, and what the explanations and recommendations say agrees with the verifier. The other
direction, that every model plan passes the verifier, is `test_solve.py`'s.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import replace

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ortools.sat.python import cp_model
from strategies import random_snapshots
from tiny_labs import examiner, job, lab

from scheduler.core.cpsat import add_hint, build_model
from scheduler.core.cpsat.solver import make_solver
from scheduler.core.dispatch import POLICIES, dispatch
from scheduler.core.eligibility import eligible_examiners, eligible_workstations
from scheduler.core.explain import unscheduled_reasons
from scheduler.core.forecast import DAY, WEEK, forecast_by_examiner
from scheduler.core.plan import (
    EXPOSURE_CAPS,
    HORIZON_FULL,
    NO_ELIGIBLE_EXAMINER,
    PIN_CONFLICT,
    Assignment,
    Plan,
    Unscheduled,
)
from scheduler.core.recommend import recommend
from scheduler.core.rules import names
from scheduler.core.snapshot import Job, Snapshot
from scheduler.core.verify import verify

CAP_RULES = {names.EXPOSURE_DAILY_CAP, names.EXPOSURE_SEVERE_DAILY_CAP, names.EXPOSURE_WEEKLY_CAP}
FEW = settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _with(plan: Plan, job: Job, placement: Assignment | None) -> Plan:
    """``plan`` with ``job`` placed at ``placement`` (``None``: left out as horizon_full)."""
    assignments = tuple(a for a in plan.assignments if a.job != job.id)
    left = tuple(u for u in plan.unscheduled if u.job != job.id)
    if placement is None:
        left += (Unscheduled(job.id, HORIZON_FULL),)
    else:
        assignments += (placement,)
    return Plan("feasible", None, None, 0.0, assignments, left)


@st.composite
def verified_plans(draw: st.DrawFn) -> tuple[Snapshot, Plan]:
    """A random lab and a plan the verifier accepts that no engine made: a dispatch plan whose
    jobs are moved at random (any eligible pair, any start in the horizon, or left out) while
    the verifier still accepts it; kept placements stay where the dispatch kept them."""
    snapshot = draw(random_snapshots())
    plan = dispatch(snapshot, draw(st.sampled_from(POLICIES)))
    assert verify(snapshot, plan) == []
    movable = [j for j in snapshot.jobs if j.id not in snapshot.kept]
    if not movable:
        return snapshot, plan
    for _ in range(draw(st.integers(0, 12))):
        job = draw(st.sampled_from(movable))
        if draw(st.integers(0, 5)) == 0:
            trial = _with(plan, job, None)
        else:
            examiners = [e.id for e in eligible_examiners(snapshot, job)] or [None]
            stations = [w.id for w in eligible_workstations(snapshot, job)] or [None]
            examiner = draw(st.sampled_from(examiners))
            station = draw(st.sampled_from(stations))
            # starts on a 15-minute grid: windows, days and releases are all on it
            start = 15 * draw(st.integers(0, snapshot.horizon // 15))
            end = start + job.duration_on(station)
            trial = _with(plan, job, Assignment(job.id, examiner, station, start, end))
        if verify(snapshot, trial) == []:
            plan = trial
    return snapshot, plan


def _fixed_model_status(snapshot: Snapshot, plan: Plan) -> tuple[int, list[str]]:
    """The full model's status with every free job fixed where ``plan`` has it, and what the
    model cannot even express (a placement outside its domains or option lists)."""
    placed = {a.job: a for a in plan.assignments}
    kept = snapshot.kept
    fixed: dict[str, Assignment | None] = {j: placed.get(j) for j in kept}
    free = [j.id for j in snapshot.jobs if j.id not in kept]
    ctx = build_model(snapshot, free, fixed)
    model = ctx.model
    missing: list[str] = []
    for job_id in free:
        jv = ctx.vars[job_id]
        a = placed.get(job_id)
        if a is None:
            model.add(jv.present == 0)
            continue
        if not any(lo <= a.start <= hi for lo, hi in jv.start_domain):
            missing.append(f"{job_id}: start {a.start} outside {jv.start_domain}")
        if a.examiner is not None and a.examiner not in jv.examiners:
            missing.append(f"{job_id}: examiner {a.examiner} not in {sorted(jv.examiners)}")
        if a.workstation is not None and a.workstation not in jv.workstations:
            missing.append(
                f"{job_id}: workstation {a.workstation} not in {sorted(jv.workstations)}"
            )
        if missing:
            continue
        model.add(jv.present == 1)
        model.add(jv.start == a.start)
        for e, lit in jv.examiners.items():
            model.add(lit == int(e == a.examiner))
        for w, lit in jv.workstations.items():
            model.add(lit == int(w == a.workstation))
    if missing:
        return cp_model.MODEL_INVALID, missing
    add_hint(ctx, {j: a for j, a in placed.items() if j in ctx.free_set})
    solver = make_solver(workers=1, seconds=20.0, deterministic=True)
    return solver.solve(model), []


@FEW
@given(verified_plans())
def test_every_plan_the_verifier_accepts_is_feasible_in_the_model(
    drawn: tuple[Snapshot, Plan],
) -> None:
    """The model is never stricter than the verifier: fixed to a valid plan, it is feasible."""
    snapshot, plan = drawn
    status, missing = _fixed_model_status(snapshot, plan)
    assert missing == []
    assert status in (cp_model.OPTIMAL, cp_model.FEASIBLE), status


def test_the_fixed_model_refuses_a_plan_the_verifier_refuses() -> None:
    """The check above can fail: a plan over the daily cap does not fit the fixed model."""
    snap = lab(
        [examiner("e1", daily_cap=60)],
        [job("a", attended=60, exposure=60), job("b", attended=60, exposure=60)],
    )
    plan = Plan(
        "feasible",
        None,
        None,
        0.0,
        (Assignment("a", "e1", None, 0, 60), Assignment("b", "e1", None, 60, 120)),
    )
    assert {v.rule for v in verify(snap, plan)} == {names.EXPOSURE_DAILY_CAP}
    assert _fixed_model_status(snap, plan)[0] == cp_model.INFEASIBLE


def _cap_breaches(snapshot: Snapshot, plan: Plan) -> list[str]:
    """The caps of docs/architecture.md §3.5 read straight from the policies, over the
    forecast's own days and weeks (counted from the last listed day and week)."""
    forecasts, examiner_of = forecast_by_examiner(snapshot, plan)
    jobs = snapshot.jobs_by_id
    day_origin, week_origin = snapshot.days[-1][0], snapshot.weeks[-1][0]
    day: dict[tuple[str, int], int] = defaultdict(int)
    severe: dict[tuple[str, int], int] = defaultdict(int)
    week: dict[tuple[str, int], int] = defaultdict(int)
    for f in forecasts:
        job, examiner = jobs[f.job], examiner_of[f.job]
        if examiner is None or job.exposure == 0:
            continue
        d, w = (f.start - day_origin) // DAY, (f.start - week_origin) // WEEK
        day[examiner, d] += job.exposure
        week[examiner, w] += job.exposure
        if job.severity >= 3:
            severe[examiner, d] += job.exposure
    out = []
    for counted, field in ((day, "daily_cap"), (severe, "severe_daily_cap"), (week, "weekly_cap")):
        for (examiner, period), minutes in counted.items():
            cap = getattr(snapshot.examiners_by_id[examiner].exposure, field)
            if cap is not None and minutes > cap:
                out.append(f"{examiner} {field} {period}: {minutes} > {cap}")
    return out


def _crowded(snapshot: Snapshot) -> Snapshot:
    """The lab with a horizon of one day, so most of its work is forecast."""
    horizon = min(snapshot.horizon, DAY)
    return replace(
        snapshot,
        horizon=horizon,
        days=snapshot.days[:1],
        weeks=((0, horizon),),
        jobs=tuple(replace(j, release=min(j.release, horizon), pin=None) for j in snapshot.jobs),
        previous=(),
        frozen_until=0,
    )


@FEW
@given(random_snapshots(), st.booleans())
def test_the_forecast_keeps_every_cap_the_verifier_checks(snapshot: Snapshot, crowd: bool) -> None:
    snapshot = _crowded(snapshot) if crowd else snapshot
    plan = dispatch(snapshot, "priority")
    assert verify(snapshot, plan) == []
    assert _cap_breaches(snapshot, plan) == []


def test_the_forecast_keeps_the_severe_daily_cap() -> None:
    """Two severe reviews of 60 minutes under a severe cap of 60 go on different days."""
    snap = lab(
        [examiner("e1", daily_cap=240, severe_daily_cap=60)],
        [job(f"r{i}", attended=60, exposure=60, severity=3, release=DAY) for i in range(2)],
        horizon=DAY,
    )
    plan = dispatch(snap, "priority")
    assert not plan.assignments
    assert _cap_breaches(snap, plan) == []
    forecasts, _ = forecast_by_examiner(snap, plan)
    assert len({f.start // DAY for f in forecasts}) == 2


@FEW
@given(random_snapshots())
def test_every_recommended_option_applied_passes_the_verifier(snapshot: Snapshot) -> None:
    """On random labs too (`test_recommend.py` checks generated ones): recommend agrees with the
    verifier on every option it gives."""
    plan = dispatch(snapshot, "priority")
    assert verify(snapshot, plan) == []
    for a in plan.assignments:
        for option in recommend(snapshot, plan, a.job, limit=3):
            placed = {b.job: b for b in plan.assignments}
            placed[a.job] = Assignment(
                a.job, option.examiner, option.workstation, option.start, option.end
            )
            for moved in option.moves:
                placed[moved.job] = moved
            trial = Plan("feasible", None, None, 0.0, tuple(placed.values()), plan.unscheduled)
            assert verify(snapshot, trial) == [], (a.job, option)


def _day_trials(snapshot: Snapshot, plan: Plan, job: Job) -> list[tuple[str, int, set[str]]]:
    """For every examiner and listed day on which one of its exposure windows holds the job's
    attended part after its release: the rules the verifier says the job breaks when placed
    there, at the first such minute of the day."""
    stations = eligible_workstations(snapshot, job)
    station = stations[0].id if stations else None
    out = []
    for e in snapshot.examiners:
        for a, b in snapshot.days:
            starts = [
                max(a, w0, job.release)
                for w0, w1 in e.exposure.windows
                if min(b, w1) - max(a, w0, job.release) >= job.attended
            ]
            if not starts or a >= snapshot.horizon:
                continue
            start = min(starts)
            end = start + job.duration_on(station)
            trial = _with(plan, job, Assignment(job.id, e.id, station, start, end))
            broken = {v.rule for v in verify(snapshot, trial) if v.job == job.id}
            out.append((e.id, start, broken))
    return out


@FEW
@given(random_snapshots())
def test_explanations_agree_with_the_verifier(snapshot: Snapshot) -> None:
    """A job left out for its caps breaks a cap on every examiner and day it could have; one
    left out for want of an eligible examiner breaks an eligibility or cap rule on every one."""
    plan = dispatch(snapshot, "priority")
    placed = list(plan.assignments)
    left = [u.job for u in plan.unscheduled if u.reason != PIN_CONFLICT]
    jobs = snapshot.jobs_by_id
    eligibility = {names.SKILLS, names.EXAMINER_ALLOW_LIST, names.MAX_SEVERITY} | CAP_RULES
    for u in unscheduled_reasons(snapshot, placed, left):
        job = jobs[u.job]
        if u.reason == EXPOSURE_CAPS:
            eligible = {e.id for e in eligible_examiners(snapshot, job)}
            for examiner, start, broken in _day_trials(snapshot, plan, job):
                if examiner in eligible:
                    assert broken & CAP_RULES, (u, examiner, start, broken)
        elif u.reason == NO_ELIGIBLE_EXAMINER:
            for examiner, start, broken in _day_trials(snapshot, plan, job):
                assert broken & eligibility, (u, examiner, start, broken)
