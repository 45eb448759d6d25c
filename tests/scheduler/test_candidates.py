"""Candidate selection: what fits is kept, with a margin by urgency, closed under predecessors."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from strategies import random_snapshots
from tiny_labs import DAY, examiner, job, lab

from scheduler.core.candidates import select_candidates
from scheduler.core.dispatch import dispatch
from scheduler.core.plan import HORIZON_FULL, RELEASED_AFTER_HORIZON, Plan
from scheduler.core.snapshot import PreviousAssignment, Snapshot
from scheduler.core.verify import verify


def kept(snapshot: Snapshot) -> set[str]:
    return {j.id for j in snapshot.jobs}


def test_everything_fits_returns_the_snapshot_itself() -> None:
    snap = lab([examiner("e1")], [job("a"), job("b")], horizon=DAY)
    reduced, left = select_candidates(snap)
    assert reduced is snap and left == ()


def test_backlog_beyond_the_margin_is_left_for_the_forecast() -> None:
    """One 480-minute shift, ten 120-minute jobs: 4 fit, the margin (0.3 x 480 = 144) adds 1."""
    snap = lab(
        [examiner("e1")],
        [job(f"j{i}", attended=120, weight=100 - i, due=0) for i in range(10)],
        horizon=DAY,
    )
    reduced, left = select_candidates(snap)
    assert kept(reduced) == {"j0", "j1", "j2", "j3", "j4"}
    assert [u.job for u in left] == ["j5", "j6", "j7", "j8", "j9"]
    assert {u.reason for u in left} == {HORIZON_FULL}
    assert all("examiner time" in u.detail for u in left)


def test_factor_one_keeps_only_what_fits() -> None:
    snap = lab(
        [examiner("e1")],
        [job(f"j{i}", attended=120, weight=100 - i) for i in range(10)],
        horizon=DAY,
    )
    reduced, _ = select_candidates(snap, factor=1.0)
    assert kept(reduced) == {"j0", "j1", "j2", "j3"}


def test_urgent_job_brings_its_predecessors() -> None:
    """The day is full of older work; the margin takes the urgent review with its acquisition."""
    snap = lab(
        [examiner("e1", skills=["mobile", "review"])],
        [job(f"old{i}", attended=120, weight=10) for i in range(4)]
        + [
            job("acquire", attended=60, weight=1),
            job("review", attended=60, weight=1000, skills=["review"], after=["acquire"]),
        ],
        horizon=DAY,
    )
    reduced, _ = select_candidates(snap)
    assert {"acquire", "review"} <= kept(reduced)


def test_pins_and_frozen_work_are_always_kept() -> None:
    snap = lab(
        [examiner("e1")],
        [
            job("big", attended=480, weight=1000),
            job("pinned", attended=60, weight=1, pin=("e1", None, 0)),
            job("frozen", attended=60, weight=1),
        ],
        previous=[PreviousAssignment("frozen", "e1", None, 60)],
        frozen_until=120,
        horizon=DAY,
    )
    reduced, _ = select_candidates(snap, factor=1.0)
    assert {"pinned", "frozen"} <= kept(reduced)
    assert [p.job for p in reduced.previous] == ["frozen"]


def test_released_after_horizon_and_impossible_jobs() -> None:
    snap = lab(
        [examiner("e1")],
        [
            job("later", release=DAY),
            job("cloud", skills=["cloud"]),  # nobody may take it: kept for its true reason
            *(job(f"j{i}", attended=240) for i in range(4)),
        ],
        horizon=DAY,
    )
    reduced, left = select_candidates(snap, factor=1.0)
    assert "cloud" in kept(reduced)
    assert {u.job: u.reason for u in left}["later"] == RELEASED_AFTER_HORIZON


def test_chain_that_cannot_finish_in_the_horizon_is_left_out() -> None:
    snap = lab(
        [examiner("e1", available=[(0, 480)])],
        [job("a", attended=400), job("b", attended=200, after=["a"], weight=1000)],
        horizon=DAY,
    )
    reduced, left = select_candidates(snap)
    assert kept(reduced) == {"a"}
    assert [u.job for u in left] == ["b"]


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(random_snapshots())
def test_selection_is_closed_and_complete_and_plans_stay_valid(snapshot: Snapshot) -> None:
    reduced, left = select_candidates(snapshot, factor=1.0)
    ids = kept(reduced)
    all_ids = {j.id for j in snapshot.jobs}
    assert ids | {u.job for u in left} == all_ids
    assert not ids & {u.job for u in left}
    for j in reduced.jobs:
        assert all(p in ids for p in j.after if p in all_ids)
        if j.pin is not None:
            assert j.id in ids
    # a plan of the reduced lab plus the left-out jobs is a valid plan of the whole lab
    plan = dispatch(reduced, "priority")
    whole = Plan(plan.status, None, None, 0.0, plan.assignments, plan.unscheduled + left, (), {})
    assert verify(snapshot, whole) == []
