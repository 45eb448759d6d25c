"""Lower bounds: exact values on tiny labs, and never above any valid plan's objective."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from strategies import random_snapshots
from tiny_labs import DAY, examiner, job, lab, shifts, small_labs, workstation

from scheduler.core.bounds import critical_path_bound, lower_bound
from scheduler.core.dispatch import POLICIES, dispatch
from scheduler.core.lp_bound import lp_bound
from scheduler.core.plan import FEASIBLE, Assignment, Plan
from scheduler.core.snapshot import Snapshot, Weights
from scheduler.core.verify import verify


def test_critical_path_follows_release_chain_and_windows() -> None:
    """acquire 20-120, review cannot start before the next shift (120 + 400 > 480)."""
    snap = lab(
        [examiner("e1", available=shifts(2))],
        [
            job("acquire", release=20, attended=100, due=0),
            job("review", attended=400, due=DAY, weight=2, after=["acquire"]),
        ],
        horizon=2 * DAY,
    )
    # acquire ends at 120 (120 late); review ends at DAY + 400 (400 late, weight 2)
    assert critical_path_bound(snap) == 120 + 2 * 400
    assert lower_bound(snap) == 920
    plan = dispatch(snap, "fifo")
    assert verify(snap, plan) == [] and plan.objective == 920


def test_job_nobody_can_take_is_charged_as_unscheduled() -> None:
    snap = lab([examiner("e1")], [job("a", skills=["cloud"], due=0, attended=60)], horizon=DAY)
    assert critical_path_bound(snap) == DAY + 60


def test_bound_scales_with_the_tardiness_weight() -> None:
    snap = lab(
        [examiner("e1")], [job("a", due=0, attended=60)], weights=Weights(tardiness=3), horizon=DAY
    )
    assert lower_bound(snap) == critical_path_bound(snap) == 180


def test_capacity_forces_some_work_out_of_the_horizon() -> None:
    """Three 200-minute jobs, one 480-minute shift: at least 120 minutes must go.

    Cheapest per minute is c (weight 1): dropping 120 of its 200 minutes costs 120/200 of its
    extra charge, (DAY + 200) * 1, on top of the critical path (each ends at 200 at the earliest).
    """
    snap = lab(
        [examiner("e1", available=[(0, 480)])],
        [
            job("a", weight=10, due=0, attended=200),
            job("b", weight=10, due=0, attended=200),
            job("c", weight=1, due=0, attended=200),
        ],
        horizon=DAY,
    )
    critical = 200 * 21
    assert critical_path_bound(snap) == critical
    extra = (DAY + 200) * 1 - 200 * 1
    knapsack = critical + extra * 120 // 200  # 5064
    # The fluid bound is higher still: a and b fill the first 400 minutes, c gets the last 80
    # and leaves 120 out (16x scaled per-minute costs, rounded down, see the next test).
    assert lower_bound(snap) == 5682 > knapsack
    plan = dispatch(snap, "priority")
    assert verify(snap, plan) == [] and lower_bound(snap) <= (plan.objective or 0)


def test_queueing_behind_other_work_is_charged() -> None:
    """Two 240-minute jobs on one 480-minute shift: one of them ends at 480, not at 240.

    The critical path charges both as ending at 240 (4800). The fluid bound cuts the shift into
    two-hour blocks; a job's minutes in a block end no earlier than the block's start nor its
    critical-path end: 360 minutes at 240 (10 per minute x 240 / 240) and 120 at 360 (15 per
    minute), 5400. The best plan costs 2400 + 4800 = 7200.
    """
    snap = lab(
        [examiner("e1", available=[(0, 480)])],
        [job("a", weight=10, due=0, attended=240), job("b", weight=10, due=0, attended=240)],
        horizon=DAY,
    )
    assert critical_path_bound(snap) == 4800
    assert lower_bound(snap) == 5400
    plan = dispatch(snap, "fifo")
    assert verify(snap, plan) == [] and plan.objective == 7200


def test_a_scarce_workstation_queues_its_jobs() -> None:
    """Four 300-minute unlocks on one GrayKey, plenty of examiners: the GrayKey group's fluid
    bound charges the queue even though examiner time is no constraint."""
    snap = lab(
        [examiner(f"e{i}", available=[(0, DAY)]) for i in range(4)],
        [
            job(f"u{i}", weight=1, due=0, attended=10, machine=300, capabilities=["graykey"])
            for i in range(4)
        ],
        [workstation("g1", ["graykey"])],
        horizon=DAY,
    )
    cp = critical_path_bound(snap)
    assert cp == 4 * 300
    bound = lower_bound(snap)
    plan = dispatch(snap, "fifo")
    assert verify(snap, plan) == []
    assert plan.objective == 300 + 600 + 900 + 1200
    # 1200 GrayKey minutes fill the two-hour blocks from 0 to 1200; a minute in the block
    # starting at s costs max(s, 300) / 300: 360 minutes at 1, then 120 each at 1.2 ... 3.6
    # (per-minute costs scaled by 16 and rounded down).
    expected = 360 * 16 + sum(120 * (16 * s // 300) for s in range(360, 1200, 120))
    assert bound == expected // 16 == 2355
    assert cp < bound <= plan.objective


def test_exposure_beyond_attended_time_takes_no_more_window_than_the_job() -> None:
    """A job may log more exposure than its attended minutes; the windows hold only its attended
    time, so its exposure must not be counted against them (found by the property test below)."""
    snap = lab(
        [examiner("e1", available=[(100, 240)])],
        [job("j0", due=0, attended=15, exposure=30, severity=1)],
        horizon=DAY,
    )
    plan = dispatch(snap, "fifo")
    assert verify(snap, plan) == [] and plan.objective == 115
    assert lower_bound(snap) == 115


def test_exposure_caps_limit_the_work_in_the_horizon() -> None:
    snap = lab(
        [examiner("e1", ["review"], shifts(1), daily_cap=60)],
        [
            job("r1", skills=["review"], attended=60, exposure=60, severity=1, due=0),
            job("r2", skills=["review"], attended=60, exposure=60, severity=1, due=0),
        ],
        horizon=DAY,
    )
    # one of them must be left out: (DAY + 60) instead of 60 for it
    assert lower_bound(snap) == 60 + (DAY + 60)
    plan = dispatch(snap, "fifo")
    assert plan.objective == lower_bound(snap)


def test_a_start_outside_every_listed_day_escapes_the_daily_cap() -> None:
    """The verifier counts exposure only in listed days and weeks: where they do not cover the
    horizon, a job whose exposure exceeds a cap can still run, so the bound must not charge it as
    left out."""
    snap = replace(
        lab(
            [examiner("e1", ["review"], [(DAY, DAY + 480)], daily_cap=60)],
            [job("r1", skills=["review"], attended=120, exposure=120, severity=1, due=0)],
            horizon=2 * DAY,
        ),
        days=((0, DAY),),
        weeks=((0, DAY),),
    )
    plan = Plan(FEASIBLE, None, None, 0.0, (Assignment("r1", "e1", None, DAY, DAY + 120),), ())
    assert verify(snap, plan) == []
    assert critical_path_bound(snap) == DAY + 120
    assert lower_bound(snap) <= DAY + 120


def test_a_zero_minute_machine_part_needs_no_room_on_the_workstation() -> None:
    """The verifier accepts a zero-minute part at a window's end: the box's window [0, 600)
    does not keep a job from starting at 600 (found by an audit of the LP bound)."""
    snap = lab(
        [examiner("e1", available=[(600, 900)])],
        [job("j1", weight=10, due=660, machine_by_workstation={"w1": 0})],
        [workstation("w1", available=[(0, 600)], horizon=DAY)],
        horizon=DAY,
    )
    plan = Plan(FEASIBLE, None, None, 0.0, (Assignment("j1", "e1", "w1", 600, 660),), ())
    assert verify(snap, plan) == []
    assert critical_path_bound(snap) == lower_bound(snap) == lp_bound(snap) == 0


def test_a_pin_on_a_box_the_job_cannot_use_is_charged_as_left_out() -> None:
    snap = lab(
        [examiner("e1", available=[(0, 480)])],
        [
            job(
                "j1",
                due=0,
                attended=30,
                machine=60,
                machine_by_workstation={"w1": 60},
                pin=("e1", "w2", 0),
            )
        ],
        [workstation("w1", horizon=DAY), workstation("w2", horizon=DAY)],
        horizon=DAY,
    )
    left_out = DAY + 60
    assert critical_path_bound(snap) == lower_bound(snap) == lp_bound(snap) == left_out
    assert dispatch(snap, "fifo").objective == left_out


def test_makespan_bound_from_machine_load() -> None:
    snap = lab(
        [],
        [
            job(f"o{i}", attended=0, skills=(), machine_by_workstation={"m1": 10, "m2": 10})
            for i in range(5)
        ],
        [workstation("m1", ()), workstation("m2", ())],
        objective="makespan",
        horizon=DAY,
    )
    assert critical_path_bound(snap) == 10
    assert lower_bound(snap) == 25  # 50 machine minutes on two machines
    plan = dispatch(snap, "fifo")
    assert verify(snap, plan) == [] and plan.terms["makespan"] == 30


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(small_labs(), st.sampled_from(POLICIES))
def test_bound_never_exceeds_a_dispatch_plan(snapshot: Snapshot, policy: str) -> None:
    plan = dispatch(snapshot, policy)
    assert verify(snapshot, plan) == []
    bound = lower_bound(snapshot)
    assert critical_path_bound(snapshot) <= bound <= (plan.objective or 0)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(random_snapshots(), st.sampled_from(POLICIES))
def test_bound_never_exceeds_a_plan_on_shared_random_labs(snapshot: Snapshot, policy: str) -> None:
    plan = dispatch(snapshot, policy)
    assert verify(snapshot, plan) == []
    assert lower_bound(snapshot) <= (plan.objective or 0)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(random_snapshots())
def test_makespan_bound_never_exceeds_a_plan(snapshot: Snapshot) -> None:
    snapshot = replace(snapshot, objective="makespan")
    plan = dispatch(snapshot, "fifo")
    assert lower_bound(snapshot) <= (plan.objective or 0)


FJSP = Path(__file__).resolve().parents[2].parent / "shared" / "bench" / "fjsp"


@pytest.mark.skipif(not FJSP.exists(), reason="shared benchmark data not present")
def test_fjsp_bounds_stay_below_the_best_known() -> None:
    from scheduler.benchmarks.fjsp import read_fjs

    bks = json.loads((FJSP / "bks.json").read_text())["instances"]
    for name in ("mk01", "mk03", "mk08"):
        assert lower_bound(read_fjs(FJSP / f"{name}.fjs")) <= bks[name]["lower_bound"]


_windows = st.lists(
    st.tuples(st.integers(0, 500), st.integers(1, 120)).map(lambda w: (w[0], w[0] + w[1])),
    max_size=6,
)


@settings(max_examples=300, deadline=None)
@given(st.lists(_windows, min_size=1, max_size=5), st.integers(0, 600), st.integers(1, 150))
def test_any_of_several_examiners_is_the_earliest_of_each(
    lists: list[list[tuple[int, int]]], t: int, length: int
) -> None:
    """The relaxation asks all eligible examiners at once; it must answer as asking each would."""
    from scheduler.core.bounds import _AnyOf
    from scheduler.core.calendar import FreeList

    frees = []
    for windows in lists:  # one examiner's windows are disjoint, as keep_touching leaves them
        disjoint: list[tuple[int, int]] = []
        for a, b in sorted(windows):
            if not disjoint or a >= disjoint[-1][1]:
                disjoint.append((a, b))
        frees.append(FreeList(disjoint))
    each = [s for f in frees if (s := f.earliest(t, length)) is not None]
    assert _AnyOf(frees).earliest(t, length) == min(each, default=None)
