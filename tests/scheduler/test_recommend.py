"""recommend(): other places for one job, priced exactly against the current plan."""

from __future__ import annotations

import re

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tiny_labs import DAY, examiner, job, lab

from scheduler.core.eligibility import caps_allow, eligible_examiners, eligible_workstations
from scheduler.core.explain import kept_placements
from scheduler.core.objective import objective_terms, weighted_objective
from scheduler.core.plan import Assignment, Plan
from scheduler.core.recommend import SLOT_MINUTES, Option, advise, recommend
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


def applied(plan: Plan, option: Option, job_id: str) -> Plan:
    """The plan with the option applied: the job moved, and the successors it pushes."""
    placed = {a.job: a for a in plan.assignments}
    placed[job_id] = Assignment(
        job_id, option.examiner, option.workstation, option.start, option.end
    )
    for m in option.moves:
        placed[m.job] = m
    return Plan("feasible", None, None, 0.0, tuple(placed.values()), plan.unscheduled)


def test_a_pin_placed_since_the_plan_holds_its_job_where_it_is_pinned() -> None:
    """The plan has a at 0 on e1; a has since been pinned at 120. b (after a) is priced with a
    at its pin: it may start once a ends there, and never on e1 while a runs."""
    snap = lab(
        [examiner("e1", available=[(0, 480)]), examiner("e2", available=[(0, 480)])],
        [job("a", pin=("e1", None, 120)), job("b", after=("a",))],
    )
    stale = Plan(
        "feasible",
        None,
        None,
        0.0,
        (Assignment("a", "e1", None, 0, 60), Assignment("b", "e1", None, 60, 120)),
    )
    advice = advise(snap, stale, "b")
    assert advice.options and all(o.start >= 180 for o in advice.options)
    assert {(o.examiner, o.start) for o in advice.options} >= {("e1", 180), ("e2", 180)}
    pinned = Assignment("a", "e1", None, 120, 180)
    for o in advice.options:
        plan = Plan("feasible", None, None, 0.0, (pinned, *applied(stale, o, "b").assignments[1:]))
        assert verify(snap, plan) == []


def test_the_current_examiners_day_offers_a_later_start() -> None:
    """One examiner, one day: the job's current start is the day's earliest, yet the day is
    not lost; the same examiner later that day is an option."""
    snap = lab([examiner("e1", available=[(0, 480)])], [job("j1")], horizon=DAY)
    plan = Plan("feasible", None, None, 0.0, (Assignment("j1", "e1", None, 0, 60),))
    options = recommend(snap, plan, "j1")
    assert [(o.examiner, o.start) for o in options] == [("e1", SLOT_MINUTES)]


def test_every_eligible_pair_is_an_option_or_says_why() -> None:
    snap = generate_lab("small", 5)
    plan = solve(snap, SolveConfig(time_limit=1, workers=1))
    kept = kept_placements(snap)
    asked = [a.job for a in plan.assignments if a.job not in kept][:12]
    assert asked
    jobs = {j.id: j for j in snap.jobs}
    for job_id in asked:
        j = jobs[job_id]
        advice = advise(snap, plan, job_id, limit=3)
        examiners = [e.id for e in eligible_examiners(snap, j) if caps_allow(j, e)] or [None]
        stations = [w.id for w in eligible_workstations(snap, j)] or [None]
        pairs = {(e, w) for e in examiners for w in stations}
        offered = [(o.examiner, o.workstation) for o in advice.options]
        refused = [(r.examiner, r.workstation) for r in advice.refused]
        assert set(offered) | set(refused) == pairs
        assert not set(offered) & set(refused) and len(set(refused)) == len(refused)
        assert all(r.reason and not re.search(r"\[\d+, \d+\)", r.reason) for r in advice.refused)
        for o in advice.options:
            assert verify(snap, applied(plan, o, job_id)) == []


def test_a_kept_job_says_why_it_stays() -> None:
    snap = lab(
        [examiner("e1", available=[(0, 480), (DAY, DAY + 480)])],
        [job("a", pin=("e1", None, DAY)), job("b", case="b")],
        previous=[PreviousAssignment("b", "e1", None, 0)],
        frozen_until=240,
    )
    plan = Plan(
        "feasible",
        None,
        None,
        0.0,
        (Assignment("a", "e1", None, DAY, DAY + 60), Assignment("b", "e1", None, 0, 60)),
    )
    pinned, frozen = advise(snap, plan, "a"), advise(snap, plan, "b")
    assert (
        pinned.options == [] and pinned.kept == "pinned at day 1 00:00 on e1: it stays where it is"
    )
    assert frozen.options == [] and frozen.kept is not None
    assert "frozen window (until day 0 04:00)" in frozen.kept


def test_a_job_between_its_chain_neighbours_moves_with_its_successors() -> None:
    """a, b, c back to back fill e1's first day; b alone has nowhere else to go, but b a slot
    later with c pushed after it is an option: c goes as far as it must (the first time e1 is
    free again after b, the next day), no further."""
    snap = lab(
        [examiner("e1", available=[(0, 180), (DAY, DAY + 480)])],
        [job("a"), job("b", after=("a",)), job("c", after=("b",))],
        horizon=2 * DAY,
    )
    plan = Plan(
        "feasible",
        None,
        None,
        0.0,
        (
            Assignment("a", "e1", None, 0, 60),
            Assignment("b", "e1", None, 60, 120),
            Assignment("c", "e1", None, 120, 180),
        ),
    )
    advice = advise(snap, plan, "b")
    assert len(advice.options) == 1
    (option,) = advice.options
    assert (option.examiner, option.start) == ("e1", 60 + SLOT_MINUTES)
    assert option.moves == (Assignment("c", "e1", None, DAY, DAY + 60),)
    after = applied(plan, option, "b")
    assert verify(snap, after) == []
    base = weighted_objective(snap, objective_terms(snap, plan.assignments))
    assert (
        option.cost_delta
        == weighted_objective(snap, objective_terms(snap, after.assignments)) - base
    )
    assert advice.refused == []


def test_a_job_with_no_room_anywhere_names_what_is_in_the_way() -> None:
    snap = lab(
        [examiner("e1", available=[(0, 120)]), examiner("e2", available=[(0, 120)], skills=["x"])],
        [job("a", case="a", attended=120), job("b", case="b", attended=60, skills=["x"])],
        horizon=DAY,
    )
    plan = Plan(
        "feasible",
        None,
        None,
        0.0,
        (Assignment("a", "e1", None, 0, 120), Assignment("b", "e2", None, 0, 60)),
    )
    advice = advise(snap, plan, "a", name=lambda sid: f"<{sid}>")
    assert advice.options == []
    assert [(r.examiner, r.reason) for r in advice.refused] == [
        ("e1", "its current start (day 0 00:00) is the only one that fits")
    ]


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 10_000))
def test_every_option_applied_is_accepted_by_the_verifier(seed: int) -> None:
    snap = generate_lab("small", seed)
    plan = solve(snap, SolveConfig(time_limit=0.5, workers=1, seed=seed))
    before = {(v.rule, v.job) for v in verify(snap, plan)}
    for a in plan.assignments[:: max(1, len(plan.assignments) // 6)]:
        for o in recommend(snap, plan, a.job, limit=3):
            after = {(v.rule, v.job) for v in verify(snap, applied(plan, o, a.job))}
            assert after <= before, (a.job, o, after - before)
