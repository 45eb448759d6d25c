"""recommend(): other places for one job, priced exactly against the current plan."""

from __future__ import annotations

from tiny_labs import DAY, examiner, job, lab

from scheduler.core.objective import objective_terms, weighted_objective
from scheduler.core.plan import Assignment, Plan
from scheduler.core.recommend import Option, recommend
from scheduler.core.snapshot import PreviousAssignment, Snapshot
from scheduler.core.solve import SolveConfig, solve
from scheduler.core.verify import verify
from scheduler.generate import generate_lab


def moved(plan: Plan, option: Option, job_id: str) -> list[Assignment]:
    others = [a for a in plan.assignments if a.job != job_id]
    return [
        *others,
        Assignment(job_id, option.examiner, option.workstation, option.start, option.end),
    ]


def test_options_are_sorted_by_cost_and_priced_exactly() -> None:
    snap = lab(
        [
            examiner("e1", available=[(0, 480), (DAY, DAY + 480)]),
            examiner("e2", available=[(120, 480)]),
        ],
        [job("j1", case="a", weight=10, due=60), job("j2", case="b", weight=1, due=60)],
    )
    plan = solve(snap, SolveConfig(time_limit=2, workers=1))
    assert plan.objective == 60  # j1 first on e1; j2 after it (e2 only starts at 120)
    options = recommend(snap, plan, "j1")
    assert options
    assert [o.cost_delta for o in options] == sorted(o.cost_delta for o in options)
    base = weighted_objective(snap, objective_terms(snap, plan.assignments))
    for o in options:
        trial = moved(plan, o, "j1")
        assert o.cost_delta == weighted_objective(snap, objective_terms(snap, trial)) - base


def test_each_option_is_a_valid_plan_and_not_the_current_placement() -> None:
    snap = generate_lab("small", 5)
    plan = solve(snap, SolveConfig(time_limit=1, workers=1))
    target = next(a for a in plan.assignments if snap.jobs[0].id != a.job and a.examiner)
    options = recommend(snap, plan, target.job, limit=5)
    assert 0 < len(options) <= 5
    placed = {a.job for a in plan.assignments}
    for o in options:
        assert (o.examiner, o.workstation, o.start) != (
            target.examiner,
            target.workstation,
            target.start,
        )
        trial = moved(plan, o, target.job)
        left = tuple(u for u in plan.unscheduled)
        assert verify(snap, Plan("feasible", None, None, 0.0, tuple(trial), left)) == []
    assert target.job in placed


def test_an_unscheduled_job_gets_a_slot_with_its_saving() -> None:
    snap = lab([examiner("e1", available=[(0, 480), (DAY, DAY + 480)])], [job("j1", due=0)])
    empty = Plan("feasible", None, None, 0.0, ())
    options = recommend(snap, empty, "j1", limit=2)
    assert [(o.examiner, o.start) for o in options] == [("e1", 0), ("e1", DAY)]
    charge = snap.horizon + 60
    assert [o.cost_delta for o in options] == [60 - charge, DAY + 60 - charge]


def test_exposure_caps_rule_out_a_full_day() -> None:
    e1 = examiner("e1", available=[(0, 480), (DAY, DAY + 480)], daily_cap=60)
    snap = lab(
        [e1], [job("j1", case="a", exposure=60, due=0), job("j2", case="b", exposure=60, due=0)]
    )
    plan = Plan("feasible", None, None, 0.0, (Assignment("j1", "e1", None, 0, 60),))
    options = recommend(snap, plan, "j2")
    assert [o.start for o in options] == [DAY]


def test_pinned_jobs_and_unknown_predecessors_have_no_options() -> None:
    snap: Snapshot = lab(
        [examiner("e1")],
        [
            job("j1", pin=("e1", None, 0)),
            job("j2", case="b", skills=["computer"]),
            job("j3", case="c", after=["j2"]),
        ],
    )
    plan = solve(snap, SolveConfig(time_limit=1, workers=1))
    assert recommend(snap, plan, "j1") == []
    assert recommend(snap, plan, "j3") == []


def test_moving_a_published_job_prices_the_change() -> None:
    snap = lab(
        [examiner("e1", available=[(0, 480), (DAY, DAY + 480)])],
        [job("j1", due=None)],
        previous=[PreviousAssignment("j1", "e1", None, 0)],
    )
    plan = Plan("feasible", None, None, 0.0, (Assignment("j1", "e1", None, 0, 60),))
    options = recommend(snap, plan, "j1")
    by_start = {o.start: o.cost_delta for o in options}
    assert by_start[DAY] == 50  # another day: one change


def test_a_plan_broken_elsewhere_since_it_was_made_still_gives_options() -> None:
    """The published plan put b first; a, b's predecessor, has since been pinned later (so b
    now breaks precedence there). Options for c, which has nothing to do with either, still come:
    an option is refused only for what it breaks itself."""
    snap = lab(
        [examiner("e1", available=[(0, 480)]), examiner("e2", available=[(0, 480)])],
        [
            job("a", case="x", pin=("e1", None, 300)),
            job("b", case="x", after=("a",)),
            job("c", case="y"),
        ],
    )
    stale = Plan(
        "feasible",
        None,
        None,
        0.0,
        (
            Assignment("a", "e1", None, 300, 360),
            Assignment("b", "e1", None, 60, 120),
            Assignment("c", "e2", None, 0, 60),
        ),
    )
    assert any(v.rule == "precedence" and v.job == "b" for v in verify(snap, stale))
    options = recommend(snap, stale, "c")
    assert options and all(o.examiner in ("e1", "e2") for o in options)
    for o in options:  # each breaks nothing the stale plan did not already break
        before = {(v.rule, v.job) for v in verify(snap, stale)}
        after = {
            (v.rule, v.job)
            for v in verify(snap, Plan("feasible", None, None, 0.0, tuple(moved(stale, o, "c"))))
        }
        assert after <= before | {("coverage", "c")}
