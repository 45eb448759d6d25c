"""The time-indexed LP bound: exact values on tiny labs, never above any valid plan."""

from __future__ import annotations

from dataclasses import replace

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ortools.sat.python import cp_model
from strategies import random_snapshots
from tiny_labs import DAY, coupled_chains, examiner, job, lab, shifts, small_labs

from scheduler.core import lp_bound as lp_bound_module
from scheduler.core.bounds import critical_path_bound, lower_bound
from scheduler.core.cpsat import build_model, read_solution
from scheduler.core.dispatch import POLICIES, dispatch
from scheduler.core.lp_bound import lp_bound
from scheduler.core.objective import TARDINESS, objective_terms
from scheduler.core.snapshot import Snapshot, Weights
from scheduler.core.solve import SolveConfig, solve
from scheduler.core.verify import verify


def _tardiness(snapshot: Snapshot, policy: str) -> int:
    plan = dispatch(snapshot, policy)
    assert verify(snapshot, plan) == []
    return snapshot.weights.tardiness * objective_terms(snapshot, plan.assignments)[TARDINESS]


def test_daily_exposure_cap_spreads_reviews_over_days() -> None:
    """Cap 60 a day, three 60-minute reviews over two days: one ends at 60, one at DAY + 60,
    one is left out (2 DAY + 60). The fluid bound counts the second day's minutes from the
    start of the day (4440); the LP charges the whole job there and is tight."""
    snap = lab(
        [examiner("e1", ["review"], shifts(2), daily_cap=60)],
        [
            job(f"r{i}", skills=["review"], attended=60, exposure=60, severity=1, due=0)
            for i in range(3)
        ],
        horizon=2 * DAY,
    )
    expected = 60 + (DAY + 60) + (2 * DAY + 60)
    assert lp_bound(snap) == lp_bound(snap, pooled=False) == expected == 4500
    assert lower_bound(snap) == 4440
    assert _tardiness(snap, "fifo") == expected


def test_long_jobs_share_an_examiner_day() -> None:
    """Three 300-minute jobs, one 480-minute shift a day for two days. Jobs started on a day
    start in [0, 180] and run at most 300 minutes past 180: 480 minutes, 1.6 jobs by minutes
    alone, but two whole jobs need 600: one a day. Day 0 costs 300, day 1 1740, left out
    2880 + 300: the bound is tight."""
    snap = lab(
        [examiner("e1", available=shifts(2))],
        [job(f"j{i}", attended=300, due=0) for i in range(3)],
        horizon=2 * DAY,
    )
    expected = 300 + 1740 + 3180
    assert lp_bound(snap) == lp_bound(snap, pooled=False) == expected
    assert lower_bound(snap) < expected == _tardiness(snap, "fifo")


def test_processing_queue_and_chains_are_coupled() -> None:
    """The LP sees the server queue, the start windows and the chains at once; each relaxation
    of ``lower_bound`` sees only one of them (``tiny_labs.coupled_chains``)."""
    snap = coupled_chains()
    bound = lp_bound(snap)
    assert bound is not None
    assert lower_bound(snap) == 4545 < bound <= _tardiness(snap, "fifo") == 7215


def test_a_pinned_job_is_charged_where_it_is_pinned() -> None:
    """Pinned on day 1 though day 0 is free: it ends at DAY + 60 (or is left out)."""
    snap = lab(
        [examiner("e1", available=shifts(2))],
        [job("p", attended=60, due=0, pin=("e1", None, DAY))],
        horizon=2 * DAY,
    )
    assert lp_bound(snap) == DAY + 60 == _tardiness(snap, "fifo")


def test_the_tardiness_weight_scales_the_bound() -> None:
    snap = lab(
        [examiner("e1")],
        [job("a", due=0, attended=60)],
        weights=Weights(tardiness=3),
        horizon=DAY,
    )
    assert lp_bound(snap) == 180


def test_makespan_is_out_of_scope() -> None:
    snap = lab([examiner("e1")], [job("a", attended=60)], objective="makespan", horizon=DAY)
    assert lp_bound(snap) is None


def _check(snapshot: Snapshot, policy: str) -> None:
    bound = lp_bound(snapshot)
    if snapshot.objective == "makespan":
        assert bound is None
        return
    assert bound is not None
    # Every LP column costs at least the critical-path charge of its job: never weaker.
    assert critical_path_bound(snapshot) <= bound <= _tardiness(snapshot, policy)
    each = lp_bound(snapshot, pooled=False)
    assert each is not None and each <= _tardiness(snapshot, policy)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(small_labs(), st.sampled_from(POLICIES))
def test_bound_never_exceeds_a_dispatch_plan(snapshot: Snapshot, policy: str) -> None:
    _check(snapshot, policy)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(random_snapshots(), st.sampled_from(POLICIES))
def test_bound_never_exceeds_a_plan_on_shared_random_labs(snapshot: Snapshot, policy: str) -> None:
    _check(snapshot, policy)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(random_snapshots())
def test_bound_never_exceeds_an_optimized_plan(snapshot: Snapshot) -> None:
    """CP-SAT plans are often optimal on these labs: the sharpest check we can afford."""
    snapshot = replace(snapshot, objective="weighted_tardiness")
    plan = solve(snapshot, SolveConfig(time_limit=1.0, workers=1))
    assert verify(snapshot, plan) == []
    tardiness = objective_terms(snapshot, plan.assignments)[TARDINESS]
    bound = lp_bound(snapshot)
    assert bound is not None and bound <= snapshot.weights.tardiness * tardiness


def _optimum(snapshot: Snapshot) -> int:
    """Least weighted tardiness of any plan: the whole lab as one CP-SAT model, proven optimal
    (no pins here; ``solve`` may leave hopeless jobs out of its model and prove less)."""
    ctx = build_model(snapshot, [j.id for j in snapshot.jobs], {})
    solver = cp_model.CpSolver()
    solver.parameters.num_workers = 1
    solver.parameters.max_time_in_seconds = 30
    assert solver.solve(ctx.model) == cp_model.OPTIMAL
    placed = [a for a in read_solution(ctx, solver).values() if a is not None]
    return snapshot.weights.tardiness * objective_terms(snapshot, placed)[TARDINESS]


def test_whole_jobs_in_units_of_a_share_of_the_shift(monkeypatch: pytest.MonkeyPatch) -> None:
    """Two examiners, 510-minute shifts over two days, four 210-minute and two 150-minute jobs
    due at once. By minutes and counts alone day 0 takes both short jobs and 3.4 long ones
    (1,962); in units of 103 minutes (510 // 5 + 1) an examiner-day holds 4 and a long job 2,
    so day 0 takes at most three long jobs beside the short ones (2,580). The rest of the
    optimum (3,240) is the order within a day, which the LP does not see."""
    snap = lab(
        [examiner(f"e{i}", available=shifts(2, 0, 510)) for i in range(2)],
        [job(f"j{i}", attended=a, due=0) for i, a in enumerate([210] * 4 + [150] * 2)],
        horizon=2 * DAY,
        weights=Weights(1, 0, 0, 0),
    )
    optimum = _optimum(snap)
    assert lp_bound(snap) == 2580 <= optimum == 3240
    monkeypatch.setattr(lp_bound_module, "ROUNDED_ROWS", 0)
    assert lp_bound(snap) == 1962


@st.composite
def packing_labs(draw: st.DrawFn) -> Snapshot:
    """Tiny labs where whole jobs pack badly into shifts: long and short attended jobs, caps on
    exposure, one to three examiners over one or two days (``_Model._rounded``)."""
    days = draw(st.integers(1, 2))
    examiners = [
        examiner(
            f"e{i}",
            ["mobile"],
            shifts(days, 0, draw(st.sampled_from([300, 420, 480, 510, 600]))),
            daily_cap=draw(st.sampled_from([None, 120, 240])),
        )
        for i in range(draw(st.integers(1, 3)))
    ]
    jobs = []
    for i in range(draw(st.integers(2, 8))):
        attended = 15 * draw(st.integers(1, 20))
        exposure = draw(st.sampled_from([0, 0, attended // 2, attended]))
        jobs.append(
            job(
                f"j{i}",
                weight=draw(st.integers(1, 100)),
                due=draw(st.integers(-DAY, days * DAY)),
                attended=attended,
                exposure=exposure,
                severity=1 if exposure else 0,
                release=draw(st.sampled_from([0, 0, 60, DAY])),
            )
        )
    # tardiness alone: CP-SAT's optimum is then the least tardiness of any plan
    return lab(examiners, jobs, horizon=days * DAY, weights=Weights(1, 0, 0, 0))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(packing_labs())
def test_bound_never_exceeds_the_optimum_of_a_packing_lab(snapshot: Snapshot) -> None:
    bound = lp_bound(snapshot)
    assert bound is not None and bound <= _optimum(snapshot)
