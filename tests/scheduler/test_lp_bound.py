"""The time-indexed LP bound: exact values on tiny labs, never above any valid plan."""

from __future__ import annotations

from dataclasses import replace

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from strategies import random_snapshots
from tiny_labs import DAY, coupled_chains, examiner, job, lab, shifts, small_labs

from scheduler.core.bounds import critical_path_bound, lower_bound
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
