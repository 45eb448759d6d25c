"""Forecasts past the horizon: exact dates on tiny labs, and every left-out job gets one."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from strategies import random_snapshots
from tiny_labs import DAY, WEEK, examiner, job, lab, shifts, workstation

from scheduler.core.dispatch import dispatch
from scheduler.core.forecast import forecast
from scheduler.core.plan import Forecast, Plan
from scheduler.core.snapshot import Snapshot
from scheduler.core.verify import verify


def planned(snapshot: Snapshot) -> Plan:
    plan = dispatch(snapshot, "priority")
    assert verify(snapshot, plan) == []
    return plan


def by_job(forecasts: tuple[Forecast, ...]) -> dict[str, tuple[int, int]]:
    return {f.job: (f.start, f.end) for f in forecasts}


def test_left_out_jobs_follow_the_repeated_week() -> None:
    """Horizon: one week of 8-hour days; a full week of work leaves two jobs for next week."""
    snap = lab(
        [examiner("e1", available=shifts(7))],
        [job(f"d{i}", attended=480, weight=10) for i in range(7)]
        + [job("b", attended=300, weight=5), job("c", attended=300, weight=1)],
        horizon=WEEK,
    )
    plan = planned(snap)
    assert {u.job for u in plan.unscheduled} == {"b", "c"}
    # b first (heavier): 300 minutes on day 7; c takes the rest of day 7 and runs into day 8
    assert by_job(forecast(snap, plan)) == {
        "b": (WEEK, WEEK + 300),
        "c": (WEEK + 300, WEEK + DAY + 120),
    }


def test_chain_is_forecast_after_its_predecessor() -> None:
    snap = lab(
        [examiner("e1", available=shifts(7)), examiner("e2", available=shifts(7))],
        [
            job("busy1", attended=480, examiners=["e1"], weight=100),
            job("acquire", attended=600, weight=1),
            job("review", attended=60, weight=1000, after=["acquire"]),
        ],
        horizon=DAY,
    )
    plan = planned(snap)
    f = by_job(forecast(snap, plan))
    assert f["acquire"][0] >= DAY
    assert f["review"][0] >= f["acquire"][1]


def test_exposure_caps_hold_past_the_horizon() -> None:
    snap = lab(
        [examiner("e1", ["review"], shifts(7), daily_cap=60)],
        [job(f"r{i}", skills=["review"], attended=30, exposure=60, severity=1) for i in range(3)],
        horizon=DAY,
    )
    plan = planned(snap)
    assert len(plan.assignments) == 1
    f = by_job(forecast(snap, plan))
    # horizon of one day: the pattern repeats daily; one exposure job per day
    assert sorted(start for start, _ in f.values()) == [DAY, 2 * DAY]


def test_typical_week_skips_a_week_of_leave() -> None:
    """On leave in the horizon's second week: the forecast uses the first week's shifts."""
    snap = lab(
        [examiner("e1", available=shifts(5))],
        [job("a", attended=600)],
        horizon=2 * WEEK,
    )
    plan = planned(snap)
    assert by_job(forecast(snap, plan)) == {"a": (2 * WEEK, 2 * WEEK + DAY + 120)}


def test_machine_only_work_queues_on_workstation_lanes() -> None:
    snap = lab(
        [],
        [
            job(
                f"m{i}", attended=0, skills=(), machine=DAY + 60, capabilities=["srv"], weight=9 - i
            )
            for i in range(3)
        ],
        [workstation("s1", ["srv"], capacity=2, horizon=DAY)],
        horizon=DAY,
    )
    plan = planned(snap)
    assert len(plan.unscheduled) == 3
    assert by_job(forecast(snap, plan)) == {
        "m0": (DAY, 2 * DAY + 60),
        "m1": (DAY, 2 * DAY + 60),
        "m2": (2 * DAY + 60, 3 * DAY + 120),
    }


def test_impossible_jobs_and_their_successors_get_no_forecast() -> None:
    snap = lab(
        [examiner("e1")],
        [job("cloud", skills=["cloud"]), job("report", after=["cloud"])],
        horizon=DAY,
    )
    assert forecast(snap, planned(snap)) == ()


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(random_snapshots())
def test_forecasts_start_after_the_horizon_and_follow_chains(snapshot: Snapshot) -> None:
    plan = planned(snapshot)
    forecasts = forecast(snapshot, plan)
    assert forecast(snapshot, plan) == forecasts  # deterministic
    unscheduled = {u.job for u in plan.unscheduled}
    ends = {a.job: a.end for a in plan.assignments} | {f.job: f.end for f in forecasts}
    jobs = {j.id: j for j in snapshot.jobs}
    for f in forecasts:
        assert f.job in unscheduled
        assert snapshot.horizon <= f.start <= f.end
        assert f.start >= jobs[f.job].release
        for p in jobs[f.job].after:
            if p in jobs:
                assert ends[p] <= f.start
