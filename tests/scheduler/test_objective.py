"""The soft terms on hand-built plans: each term alone, then the weighted sum."""

from __future__ import annotations

from tiny_labs import DAY, examiner, job, lab, workstation

from scheduler.core.objective import objective_terms, plan_objective, weighted_objective
from scheduler.core.plan import HORIZON_FULL, Assignment, Unscheduled
from scheduler.core.snapshot import PreviousAssignment, Weights


def test_tardiness_weighs_minutes_late() -> None:
    snap = lab(
        [examiner("e1")],
        [job("a", weight=10, due=50), job("b", weight=3, due=200), job("c", due=None)],
        horizon=DAY,
    )
    plan = [
        Assignment("a", "e1", None, 0, 60),  # 10 late x 10
        Assignment("b", "e1", None, 60, 120),  # on time
        Assignment("c", "e1", None, 120, 180),  # no due time
    ]
    assert objective_terms(snap, plan)["tardiness"] == 100


def test_unscheduled_job_ends_at_horizon_plus_its_shortest_duration() -> None:
    snap = lab(
        [examiner("e1")],
        [job("a", weight=2, due=100, attended=30, machine_by_workstation={"w1": 90, "w2": 50})],
        [workstation("w1", ()), workstation("w2", ())],
        horizon=DAY,
    )
    terms = objective_terms(snap, [], [Unscheduled("a", HORIZON_FULL)])
    assert terms["tardiness"] == 2 * (DAY + 50 - 100)
    # a job missing from both lists is charged the same way
    assert objective_terms(snap, []) == terms


def test_makespan_replaces_tardiness() -> None:
    snap = lab(
        [examiner("e1")],
        [job("a", due=0), job("b", due=0)],
        objective="makespan",
        horizon=DAY,
    )
    terms = objective_terms(snap, [Assignment("a", "e1", None, 0, 60)])
    assert terms == {"makespan": DAY + 60, "change": 0, "balance": 0, "continuity": 0}
    terms = objective_terms(
        snap, [Assignment("a", "e1", None, 0, 60), Assignment("b", "e1", None, 60, 120)]
    )
    assert terms["makespan"] == 120


def test_change_counts_jobs_moved_against_the_published_schedule() -> None:
    snap = lab(
        [examiner("e1"), examiner("e2")],
        [
            job("same", attended=10),
            job("same_day", attended=10),
            job("other_examiner", attended=10),
            job("other_day", attended=10),
            job("other_box", attended=10, machine=10, capabilities=["ufed"]),
            job("dropped", attended=10),
            job("new", attended=10),
        ],
        [workstation("w1"), workstation("w2")],
        previous=[
            PreviousAssignment("same", "e1", None, 0),
            PreviousAssignment("same_day", "e1", None, 10),
            PreviousAssignment("other_examiner", "e1", None, 20),
            PreviousAssignment("other_day", "e1", None, 30),
            PreviousAssignment("other_box", "e1", "w1", 40),
            PreviousAssignment("dropped", "e1", None, 50),
            PreviousAssignment("gone_from_snapshot", "e1", None, 60),
        ],
        horizon=2 * DAY,
    )
    plan = [
        Assignment("same", "e1", None, 0, 10),
        Assignment("same_day", "e1", None, 400, 410),
        Assignment("other_examiner", "e2", None, 20, 30),
        Assignment("other_day", "e1", None, DAY, DAY + 10),
        Assignment("other_box", "e1", "w2", 40, 50),
        Assignment("new", "e2", None, 0, 10),
    ]
    assert objective_terms(snap, plan)["change"] == 4


def test_a_published_assignment_counts_its_changes() -> None:
    # Tomorrow's published work counts ten changes when it moves, next week's one.
    snap = lab(
        [examiner("e1"), examiner("e2")],
        [job("soon", attended=10), job("later", attended=10), job("kept", attended=10)],
        previous=[
            PreviousAssignment("soon", "e1", None, 0, changes=10),
            PreviousAssignment("later", "e1", None, DAY, changes=1),
            PreviousAssignment("kept", "e1", None, 20, changes=10),
        ],
        horizon=2 * DAY,
    )
    plan = [
        Assignment("soon", "e2", None, 0, 10),
        Assignment("later", "e2", None, DAY, DAY + 10),
        Assignment("kept", "e1", None, 20, 30),
    ]
    assert objective_terms(snap, plan)["change"] == 11
    assert objective_terms(snap, plan[2:])["change"] == 11  # left out counts the same


def test_balance_is_the_spread_over_examiners_who_can_take_exposure() -> None:
    snap = lab(
        [
            examiner("e1", ["review"]),
            examiner("e2", ["review"]),
            examiner("e3", ["review"]),
            examiner("phones", ["mobile"]),  # cannot take review work: out of scope
        ],
        [
            job("r1", skills=["review"], exposure=60, severity=1),
            job("r2", skills=["review"], exposure=30, severity=1, case="c2"),
            job("r3", skills=["review"], exposure=45, severity=1, case="c3"),
        ],
        horizon=DAY,
    )
    plan = [
        Assignment("r1", "e1", None, 0, 60),
        Assignment("r2", "e1", None, 60, 120),
        Assignment("r3", "e2", None, 0, 60),
    ]
    # e1 90, e2 45, e3 0 -> spread 90
    assert objective_terms(snap, plan)["balance"] == 90


def test_balance_needs_two_examiners_in_scope() -> None:
    snap = lab(
        [examiner("e1", ["review"]), examiner("e2", ["mobile"])],
        [job("r1", skills=["review"], exposure=60, severity=1)],
        horizon=DAY,
    )
    assert objective_terms(snap, [Assignment("r1", "e1", None, 0, 60)])["balance"] == 0


def test_continuity_counts_extra_examiners_per_case() -> None:
    snap = lab(
        [examiner("e1"), examiner("e2"), examiner("e3")],
        [
            job("a1", case="A"),
            job("a2", case="A"),
            job("a3", case="A"),
            job("b1", case="B"),
            job("b2", case="B"),
            job("m", case="B", attended=0, machine=60, skills=(), capabilities=["ufed"]),
        ],
        [workstation("w1")],
        horizon=DAY,
    )
    plan = [
        Assignment("a1", "e1", None, 0, 60),
        Assignment("a2", "e2", None, 0, 60),
        Assignment("a3", "e3", None, 0, 60),
        Assignment("b1", "e1", None, 60, 120),
        Assignment("b2", "e1", None, 120, 180),
        Assignment("m", None, "w1", 0, 60),
    ]
    assert objective_terms(snap, plan)["continuity"] == 2


def test_weighted_objective_multiplies_each_term_by_its_weight() -> None:
    snap = lab(
        [examiner("e1")],
        [job("a")],
        weights=Weights(tardiness=2, change=50, balance=5, continuity=3),
        horizon=DAY,
    )
    terms = {"tardiness": 10, "change": 1, "balance": 4, "continuity": 2}
    assert weighted_objective(snap, terms) == 2 * 10 + 50 + 5 * 4 + 3 * 2
    value, computed = plan_objective(snap, [Assignment("a", "e1", None, 0, 60)])
    assert (value, computed) == (0, {"tardiness": 0, "change": 0, "balance": 0, "continuity": 0})
