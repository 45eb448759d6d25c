"""Every job left out gets the reason a supervisor can act on; clashing pins name the rule."""

from __future__ import annotations

from collections.abc import Sequence

from tiny_labs import DAY, examiner, job, lab, workstation

from scheduler.core.explain import pin_conflicts, unscheduled_reasons
from scheduler.core.plan import (
    EXPOSURE_CAPS,
    HORIZON_FULL,
    NO_ELIGIBLE_EXAMINER,
    NO_ELIGIBLE_WORKSTATION,
    PREDECESSOR_UNSCHEDULED,
    RELEASED_AFTER_HORIZON,
    Assignment,
    Unscheduled,
)
from scheduler.core.snapshot import PreviousAssignment, Snapshot
from scheduler.core.solve import SolveConfig, solve
from scheduler.core.verify import verify


def reasons_of(
    snapshot: Snapshot, assignments: Sequence[Assignment] = ()
) -> dict[str, Unscheduled]:
    placed = {a.job for a in assignments}
    left = [j.id for j in snapshot.jobs if j.id not in placed]
    return {u.job: u for u in unscheduled_reasons(snapshot, list(assignments), left)}


def test_each_reason_code() -> None:
    horizon = 2 * DAY
    snap = lab(
        [examiner("e1", ["mobile"], available=[(0, 480)], daily_cap=60)],
        [
            job("nobody", skills=["computer"]),
            job("no_box", attended=0, skills=[], machine=60, capabilities=["graykey"]),
            job("late", release=horizon - 30, attended=60),
            job("waits", after=["nobody"]),
            job("capped", exposure=60),
            job("full", attended=60),
            job("done_first", exposure=60, attended=60),
        ],
        [workstation("w1", ["ufed"], horizon=horizon)],
        horizon=horizon,
    )
    # e1 is busy all day and has used its exposure cap.
    busy = [
        Assignment("done_first", "e1", None, 0, 60),
        Assignment("x", "e1", None, 60, 480),
    ]
    got = reasons_of(snap, busy)
    assert got["nobody"].reason == NO_ELIGIBLE_EXAMINER
    assert got["no_box"].reason == NO_ELIGIBLE_WORKSTATION
    assert got["late"].reason == RELEASED_AFTER_HORIZON
    assert got["waits"].reason == PREDECESSOR_UNSCHEDULED
    assert "nobody" in got["waits"].detail
    assert got["capped"].reason == EXPOSURE_CAPS
    assert got["full"].reason == HORIZON_FULL
    assert all(u.detail for u in got.values())


def test_pin_conflict_names_the_clashing_jobs_and_rules() -> None:
    snap = lab(
        [examiner("e1", daily_cap=60)],
        [
            job("a", case="a", exposure=60, pin=("e1", None, 0)),
            job("b", case="b", exposure=60, pin=("e1", None, 120)),
        ],
    )
    details = pin_conflicts(snap, kept=["a"], dropped=["b"])
    assert "a" in details["b"] and "exposure_daily_cap[e=e1,d=0]" in details["b"]
    assert "examiner_overlap" not in details["b"]  # a minimal set of rules


def test_a_pin_that_breaks_its_own_rules_says_which() -> None:
    snap = lab([examiner("e1", ["mobile"])], [job("a", skills=["computer"], pin=("e1", None, 0))])
    details = pin_conflicts(snap, kept=[], dropped=["a"])
    assert "skills" in details["a"]


def test_frozen_assignments_are_explained_like_pins() -> None:
    snap = lab(
        [examiner("e1")],
        [job("a", case="a", pin=("e1", None, 0)), job("b", case="b")],
        previous=[PreviousAssignment("b", "e1", None, 30)],
        frozen_until=DAY,
    )
    plan = solve(snap, SolveConfig(time_limit=1, workers=1))
    assert verify(snap, plan) == []
    conflict = next(u for u in plan.unscheduled if u.job == "b")
    assert conflict.reason == "pin_conflict"
    assert "frozen" in conflict.detail and "examiner_overlap[e=e1]" in conflict.detail
