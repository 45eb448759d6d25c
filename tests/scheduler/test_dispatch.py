"""Dispatch baselines: exact placements on tiny labs, one hard rule at a time, and validity."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from strategies import random_snapshots
from tiny_labs import DAY, examiner, job, lab, shifts, small_labs, workstation

from scheduler.core.dispatch import POLICIES, best_dispatch, dispatch
from scheduler.core.plan import (
    EXPOSURE_CAPS,
    FEASIBLE,
    HORIZON_FULL,
    NO_ELIGIBLE_EXAMINER,
    NO_ELIGIBLE_WORKSTATION,
    PIN_CONFLICT,
    PREDECESSOR_UNSCHEDULED,
    RELEASED_AFTER_HORIZON,
    Plan,
)
from scheduler.core.snapshot import Pool, PreviousAssignment, Snapshot
from scheduler.core.verify import verify


def solved(snapshot: Snapshot, policy: str = "fifo") -> Plan:
    plan = dispatch(snapshot, policy)
    assert verify(snapshot, plan) == []
    assert plan.status == FEASIBLE
    return plan


def starts(plan: Plan) -> dict[str, tuple[str | None, str | None, int]]:
    return {a.job: (a.examiner, a.workstation, a.start) for a in plan.assignments}


def reasons(plan: Plan) -> dict[str, str]:
    return {u.job: u.reason for u in plan.unscheduled}


# -- the three policies ---------------------------------------------------------------------------

THREE = lab(
    [examiner("e1")],
    [
        job("a", weight=1, attended=120, due=60),
        job("b", weight=10, attended=60, due=60),
        job("c", weight=5, attended=20, due=60),
    ],
    horizon=DAY,
)


@pytest.mark.parametrize(
    ("policy", "expected", "objective"),
    [
        # received order: a 0-120, b 120-180, c 180-200 -> 60*1 + 120*10 + 140*5
        ("fifo", {"a": 0, "b": 120, "c": 180}, 1960),
        # weight first: b 0-60, c 60-80, a 80-200 -> 0 + 20*5 + 140*1
        ("priority", {"b": 0, "c": 60, "a": 80}, 240),
        # weight / duration: c (0.25), b (0.17), a (0.008) -> 0 + 20*10 + 140*1
        ("wsjf", {"c": 0, "b": 20, "a": 80}, 340),
    ],
)
def test_policy_orders_the_queue(policy: str, expected: dict[str, int], objective: int) -> None:
    plan = solved(THREE, policy)
    assert {j: s for j, (_, _, s) in starts(plan).items()} == expected
    assert plan.objective == objective
    assert plan.terms == {"tardiness": objective, "change": 0, "balance": 0, "continuity": 0}


def test_fifo_uses_release_before_received_order() -> None:
    snap = lab(
        [examiner("e1")],
        [job("late", release=100, attended=30), job("early", release=10, attended=30)],
        horizon=DAY,
    )
    assert starts(solved(snap)) == {"early": ("e1", None, 10), "late": ("e1", None, 100)}


def test_best_dispatch_returns_the_cheapest_policy() -> None:
    name, plan = best_dispatch(THREE)
    assert (name, plan.objective) == ("priority", 240)
    assert verify(THREE, plan) == []


def test_unknown_policy_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown dispatch policy"):
        dispatch(THREE, "random")


# -- examiners ------------------------------------------------------------------------------------


def test_job_waits_for_a_window_long_enough() -> None:
    """A 300-minute job does not fit the 200 minutes left today: it starts tomorrow morning."""
    snap = lab(
        [examiner("e1", available=shifts(2))],
        [job("a", attended=280), job("b", attended=300)],
        horizon=2 * DAY,
    )
    assert starts(solved(snap)) == {"a": ("e1", None, 0), "b": ("e1", None, DAY)}


def test_back_to_back_windows_are_not_one_window() -> None:
    snap = lab([examiner("e1", available=[(0, 60), (60, 120)])], [job("a", attended=90)])
    plan = solved(snap)
    assert reasons(plan) == {"a": HORIZON_FULL}


def test_skills_and_allow_list_choose_the_examiner() -> None:
    snap = lab(
        [examiner("e1", skills=["mobile"]), examiner("e2", skills=["mobile", "computer"])],
        [
            job("pc", skills=["computer"]),
            job("phone", skills=["mobile"], examiners=["e2"], attended=30),
        ],
        horizon=DAY,
    )
    assert starts(solved(snap)) == {"pc": ("e2", None, 0), "phone": ("e2", None, 60)}


def test_earliest_end_across_examiners() -> None:
    """e1 is busy until 100; e2 starts at 50: the job goes to e2."""
    snap = lab(
        [examiner("e1", available=[(0, 480)]), examiner("e2", available=[(50, 480)])],
        [job("busy", attended=100, examiners=["e1"]), job("a", attended=60)],
        horizon=DAY,
    )
    assert starts(solved(snap))["a"] == ("e2", None, 50)


def test_case_examiner_is_preferred_on_ties() -> None:
    snap = lab(
        [examiner("e1"), examiner("e2")],
        [
            job("x", case="c2", attended=60, examiners=["e2"]),
            job("y", case="c2", attended=60, release=100),
        ],
        horizon=DAY,
    )
    plan = solved(snap)
    assert starts(plan)["y"] == ("e2", None, 100)
    assert plan.terms["continuity"] == 0


# -- workstations and pools -----------------------------------------------------------------------


def test_workstation_capacity_two() -> None:
    snap = lab(
        [examiner("e1"), examiner("e2"), examiner("e3")],
        [job(f"j{i}", attended=10, machine=100, capabilities=["graykey"]) for i in range(3)],
        [workstation("gk", capabilities=["graykey"], capacity=2)],
        horizon=DAY,
    )
    assert starts(solved(snap)) == {
        "j0": ("e1", "gk", 0),
        "j1": ("e2", "gk", 0),
        "j2": ("e1", "gk", 100),
    }


def test_machine_part_runs_overnight_unattended() -> None:
    """15 attended minutes in the shift, 600 machine minutes on a 24 h box."""
    snap = lab(
        [examiner("e1", available=shifts(2))],
        [job("proc", attended=15, machine=600, capabilities=["axiom"]), job("next", attended=60)],
        [workstation("srv", capabilities=["axiom"])],
        horizon=2 * DAY,
    )
    plan = solved(snap)
    assert starts(plan) == {"proc": ("e1", "srv", 0), "next": ("e1", None, 15)}
    assert {a.job: a.end for a in plan.assignments}["proc"] == 600


def test_faster_box_wins_on_earliest_end() -> None:
    snap = lab(
        [examiner("e1")],
        [job("img", attended=30, machine_by_workstation={"slow": 300, "fast": 120})],
        [workstation("slow", capabilities=()), workstation("fast", capabilities=())],
        horizon=DAY,
    )
    plan = solved(snap)
    assert starts(plan) == {"img": ("e1", "fast", 0)}
    assert plan.assignments[0].end == 120


def test_workstation_maintenance_window() -> None:
    snap = lab(
        [examiner("e1", available=[(0, DAY)])],
        [job("a", attended=10, machine=120, capabilities=["ufed"])],
        [workstation("w1", available=[(0, 100), (300, DAY)])],
        horizon=DAY,
    )
    assert starts(solved(snap)) == {"a": ("e1", "w1", 300)}


def test_licence_pool_is_held_for_the_whole_job() -> None:
    snap = lab(
        [examiner("e1", available=[(0, DAY)]), examiner("e2", available=[(0, DAY)])],
        [
            job("p1", attended=15, machine=200, capabilities=["srv"], pools=["axiom"]),
            job("p2", attended=15, machine=200, capabilities=["srv"], pools=["axiom"]),
        ],
        [workstation("s1", capabilities=["srv"]), workstation("s2", capabilities=["srv"])],
        [Pool("axiom", 1)],
        horizon=DAY,
    )
    plan = solved(snap)
    assert sorted(a.start for a in plan.assignments) == [0, 200]


# -- time -----------------------------------------------------------------------------------------


def test_chain_waits_for_predecessors_and_release() -> None:
    snap = lab(
        [examiner("e1"), examiner("e2")],
        [
            job("acquire", attended=100, release=20),
            job("review", attended=60, after=["acquire", "gone"]),
            job("report", attended=30, after=["review"]),
        ],
        horizon=DAY,
    )
    assert starts(solved(snap)) == {
        "acquire": ("e1", None, 20),
        "review": ("e1", None, 120),
        "report": ("e1", None, 180),
    }


def test_successor_of_an_unscheduled_job_is_left_out() -> None:
    snap = lab(
        [examiner("e1", skills=["mobile"])],
        [job("unlock", skills=["unlock"]), job("acquire", after=["unlock"])],
        horizon=DAY,
    )
    plan = solved(snap)
    assert reasons(plan) == {"unlock": NO_ELIGIBLE_EXAMINER, "acquire": PREDECESSOR_UNSCHEDULED}
    assert "unlock" in {u.job: u.detail for u in plan.unscheduled}["acquire"]


@pytest.mark.parametrize(
    ("jobs", "workstations", "expected"),
    [
        ([job("a", skills=["cloud"])], [], NO_ELIGIBLE_EXAMINER),
        (
            [job("a", machine=60, capabilities=["graykey"])],
            [workstation("w")],
            NO_ELIGIBLE_WORKSTATION,
        ),
        ([job("a", release=DAY)], [], RELEASED_AFTER_HORIZON),
        ([job("a", attended=600)], [], HORIZON_FULL),
        ([job("a", exposure=300, severity=1)], [], EXPOSURE_CAPS),
    ],
)
def test_reason_for_a_job_left_out(jobs: list, workstations: list, expected: str) -> None:  # type: ignore[type-arg]
    snap = lab([examiner("e1", daily_cap=240)], jobs, workstations, horizon=DAY)
    plan = solved(snap)
    assert reasons(plan) == {"a": expected}
    assert plan.unscheduled[0].detail


def test_unscheduled_jobs_are_charged_at_horizon_plus_duration() -> None:
    snap = lab([examiner("e1")], [job("a", attended=600, due=100, weight=3)], horizon=DAY)
    plan = solved(snap)
    assert plan.terms["tardiness"] == 3 * (DAY + 600 - 100)


# -- exposure -------------------------------------------------------------------------------------


def test_daily_cap_moves_exposure_to_the_next_day() -> None:
    snap = lab(
        [examiner("e1", ["review"], shifts(2), daily_cap=120)],
        [job(f"r{i}", skills=["review"], attended=60, exposure=60, severity=1) for i in range(3)],
        horizon=2 * DAY,
    )
    assert starts(solved(snap)) == {
        "r0": ("e1", None, 0),
        "r1": ("e1", None, 60),
        "r2": ("e1", None, DAY),
    }


def test_logged_minutes_count_against_the_day() -> None:
    snap = lab(
        [examiner("e1", ["review"], shifts(2), daily_cap=120, used_by_day={0: 90})],
        [job("r", skills=["review"], attended=60, exposure=60, severity=1)],
        horizon=2 * DAY,
    )
    assert starts(solved(snap)) == {"r": ("e1", None, DAY)}


def test_severe_cap_counts_only_severity_three() -> None:
    snap = lab(
        [examiner("e1", ["review"], shifts(2), daily_cap=240, severe_daily_cap=60)],
        [
            job("a1", skills=["review"], attended=60, exposure=60, severity=3),
            job("a2", skills=["review"], attended=60, exposure=60, severity=3),
            job("c1", skills=["review"], attended=60, exposure=60, severity=1),
        ],
        horizon=2 * DAY,
    )
    assert starts(solved(snap)) == {
        "a1": ("e1", None, 0),
        "a2": ("e1", None, DAY),
        "c1": ("e1", None, 60),
    }


def test_weekly_cap_with_minutes_used_this_week() -> None:
    snap = lab(
        [examiner("e1", ["review"], shifts(2), weekly_cap=150, used_this_week=100)],
        [job(f"r{i}", skills=["review"], attended=50, exposure=50, severity=1) for i in range(2)],
        horizon=2 * DAY,
    )
    plan = solved(snap)
    assert starts(plan) == {"r0": ("e1", None, 0)}
    assert reasons(plan) == {"r1": EXPOSURE_CAPS}


def test_exposure_window_is_the_cut_off() -> None:
    """Exposure work must end by the cut-off (window 0-420 in a 0-480 shift)."""
    snap = lab(
        [examiner("e1", ["review"], [(0, 480)], windows=[(0, 420)])],
        [
            job("paper", skills=["review"], attended=400),
            job("look", skills=["review"], attended=60, exposure=60, severity=1, weight=10),
        ],
        horizon=DAY,
    )
    # received order: after the paperwork (0-400) there is no time before the cut-off
    assert reasons(solved(snap, "fifo")) == {"look": HORIZON_FULL}
    assert starts(solved(snap, "priority")) == {
        "look": ("e1", None, 0),
        "paper": ("e1", None, 60),
    }


def test_opted_out_examiner_gets_no_severe_material() -> None:
    snap = lab(
        [examiner("e1", ["review"], max_severity=2), examiner("e2", ["review"], [(100, 480)])],
        [job("a", skills=["review"], attended=60, exposure=60, severity=3)],
        horizon=DAY,
    )
    assert starts(solved(snap)) == {"a": ("e2", None, 100)}


def test_exposure_is_spread_over_examiners_on_ties() -> None:
    snap = lab(
        [examiner("e1", ["review"]), examiner("e2", ["review"])],
        [
            job("r1", skills=["review"], attended=60, exposure=60, severity=1, case="c1"),
            job("r2", skills=["review"], attended=60, exposure=60, severity=1, case="c2"),
        ],
        horizon=DAY,
    )
    plan = solved(snap)
    assert {a.examiner for a in plan.assignments} == {"e1", "e2"}
    assert plan.terms["balance"] == 0


# -- pins and the published schedule --------------------------------------------------------------


def test_pin_is_kept_and_others_work_around_it() -> None:
    snap = lab(
        [examiner("e1")],
        [job("free", attended=60), job("pinned", attended=60, pin=("e1", None, 30))],
        horizon=DAY,
    )
    assert starts(solved(snap)) == {"pinned": ("e1", None, 30), "free": ("e1", None, 90)}


def test_clashing_pins_leave_the_second_out_with_pin_conflict() -> None:
    snap = lab(
        [examiner("e1")],
        [job("p1", attended=60, pin=("e1", None, 0)), job("p2", attended=60, pin=("e1", None, 30))],
        horizon=DAY,
    )
    plan = solved(snap)
    assert starts(plan) == {"p1": ("e1", None, 0)}
    assert reasons(plan) == {"p2": PIN_CONFLICT}


def test_predecessor_of_a_pin_is_placed_before_it() -> None:
    snap = lab(
        [examiner("e1"), examiner("e2")],
        [
            job("other", attended=100, weight=100),
            job("acquire", attended=60),
            job("review", attended=60, after=["acquire"], pin=("e2", None, 60)),
        ],
        horizon=DAY,
    )
    plan = solved(snap, "priority")
    assert starts(plan)["acquire"][2] == 0
    assert starts(plan)["review"] == ("e2", None, 60)


def test_pin_after_an_impossible_predecessor_is_a_conflict() -> None:
    snap = lab(
        [examiner("e1")],
        [
            job("acquire", attended=60),
            job("review", attended=60, after=["acquire"], pin=("e1", None, 30)),
        ],
        horizon=DAY,
    )
    plan = solved(snap)
    assert starts(plan) == {"acquire": ("e1", None, 90)}
    assert reasons(plan) == {"review": PIN_CONFLICT}


def test_frozen_assignment_is_kept_and_later_ones_may_move() -> None:
    snap = lab(
        [examiner("e1"), examiner("e2")],
        [job("a", attended=60), job("b", attended=60)],
        previous=[
            PreviousAssignment("a", "e2", None, 120),
            PreviousAssignment("b", "e2", None, DAY + 10),
        ],
        frozen_until=480,
        horizon=2 * DAY,
    )
    plan = solved(snap)
    assert starts(plan)["a"] == ("e2", None, 120)
    assert starts(plan)["b"][0] == "e2"  # the published examiner is preferred on ties


def test_keep_published_keeps_a_later_published_placement_that_still_fits() -> None:
    # "b" could start at 0 on e1, but its published placement (e2, mid-morning) still keeps
    # every rule: the warm start keeps it, and the search alone may trade it for the gain.
    snap = lab(
        [examiner("e1"), examiner("e2")],
        [job("a", attended=60), job("b", attended=60)],
        previous=[PreviousAssignment("b", "e2", None, 300)],
        horizon=2 * DAY,
    )
    assert starts(solved(snap))["b"][2] == 0
    kept = dispatch(snap, "fifo", keep_published=True)
    assert verify(snap, kept) == []
    assert starts(kept)["b"] == ("e2", None, 300)


def test_keep_published_moves_only_what_no_longer_fits() -> None:
    # e2 is gone from the morning ("b"'s published slot), so "b" moves; "c" keeps its slot.
    snap = lab(
        [examiner("e1"), examiner("e2", available=[(600, DAY)])],
        [job("b", attended=60), job("c", attended=60)],
        previous=[
            PreviousAssignment("b", "e2", None, 120),
            PreviousAssignment("c", "e1", None, 400),
        ],
        horizon=2 * DAY,
    )
    plan = dispatch(snap, "priority", keep_published=True)
    assert verify(snap, plan) == []
    assert starts(plan)["c"] == ("e1", None, 400)
    assert starts(plan)["b"] != ("e2", None, 120)


def test_held_levels_let_heavier_work_displace_lighter_and_the_rest_fill_the_room() -> None:
    # e1 has three slots (60, 120, 180). "same" (weight 10) and "light" (weight 1) hold the
    # first two; "peer" (weight 10, new, first in the queue) would take "same"'s slot in its
    # turn and push "same" into "light"'s. With each weight's published work held at once,
    # "peer" fills the room after "same" and only the lighter "light" moves.
    snap = lab(
        [examiner("e1", available=[(60, 240)])],
        [
            job("peer", attended=60, weight=10, case="c1"),
            job("same", attended=60, weight=10, case="c2"),
            job("light", attended=60, weight=1, case="c3"),
        ],
        previous=[
            PreviousAssignment("same", "e1", None, 60),
            PreviousAssignment("light", "e1", None, 120),
        ],
        horizon=DAY,
    )
    in_turn = starts(dispatch(snap, "fifo", keep_published=True))
    assert (in_turn["peer"][2], in_turn["same"][2], in_turn["light"][2]) == (60, 120, 180)
    plan = dispatch(snap, "fifo", hold_levels=True)
    assert verify(snap, plan) == []
    held = starts(plan)
    assert (held["same"][2], held["peer"][2], held["light"][2]) == (60, 120, 180)


def test_held_levels_leave_room_for_the_work_a_kept_placement_waits_for() -> None:
    # "k" is pinned at 120 after "p" (new). Holding "q" and "r" (same weight, published over
    # 0-120) first would leave "p" no room before the pin and make the pin a conflict: the work a
    # kept placement waits for is dispatched before any published work is held.
    snap = lab(
        [examiner("e1")],
        [
            job("p", attended=60, weight=10, case="c1"),
            job("k", attended=60, weight=10, case="c1", after=["p"], pin=("e1", None, 120)),
            job("q", attended=60, weight=10, case="c2"),
            job("r", attended=60, weight=10, case="c3"),
        ],
        previous=[PreviousAssignment("q", "e1", None, 0), PreviousAssignment("r", "e1", None, 60)],
        horizon=DAY,
    )
    plan = dispatch(snap, "fifo", hold_levels=True)
    assert verify(snap, plan) == []
    assert reasons(plan) == {}
    assert starts(plan)["k"] == ("e1", None, 120)
    assert starts(plan)["p"][2] + 60 <= 120


# -- every plan passes the verifier ---------------------------------------------------------------


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(small_labs(), st.sampled_from(POLICIES))
def test_every_dispatch_plan_passes_the_verifier(snapshot: Snapshot, policy: str) -> None:
    plan = dispatch(snapshot, policy)
    assert verify(snapshot, plan) == []
    assert plan.status == FEASIBLE
    assert len(plan.assignments) + len(plan.unscheduled) == len(snapshot.jobs)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(random_snapshots(), st.sampled_from(POLICIES), st.booleans())
def test_every_warm_start_keeping_the_published_schedule_passes_the_verifier(
    snapshot: Snapshot, policy: str, hold_levels: bool
) -> None:
    plan = dispatch(snapshot, policy, keep_published=True, hold_levels=hold_levels)
    assert verify(snapshot, plan) == []
    assert len(plan.assignments) + len(plan.unscheduled) == len(snapshot.jobs)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(random_snapshots(), st.sampled_from(POLICIES))
def test_dispatch_plans_on_shared_random_labs_pass_the_verifier(
    snapshot: Snapshot, policy: str
) -> None:
    plan = dispatch(snapshot, policy)
    assert verify(snapshot, plan) == []
    assert plan.status == FEASIBLE
    assert len(plan.assignments) + len(plan.unscheduled) == len(snapshot.jobs)


def test_generated_small_lab_dispatch_plans_are_valid() -> None:
    from scheduler.generate import generate_lab

    snapshot = generate_lab("small", 3)
    for policy in POLICIES:
        plan = dispatch(snapshot, policy)
        assert verify(snapshot, plan) == []
        assert plan.assignments


@pytest.mark.parametrize("policy", POLICIES)
def test_more_resource_pairs_than_one_search_tries_still_dispatch_every_job(policy: str) -> None:
    """20 x 20 = 400 examiner/workstation pairs per job, more than ``SEARCH_TRIES``: the search
    takes the best it has worked out, which is still a valid placement for every job."""
    from scheduler.core.dispatch import SEARCH_TRIES

    examiners = [examiner(f"e{i}", available=[(i * 30, i * 30 + 600)]) for i in range(20)]
    boxes = [workstation(f"w{i}", available=[(i * 45, 2 * DAY)]) for i in range(20)]
    jobs = [job(f"j{i}", attended=90, machine=120, capabilities=("ufed",)) for i in range(60)]
    snapshot = lab(examiners, jobs, boxes)
    assert len(examiners) * len(boxes) > SEARCH_TRIES
    plan = dispatch(snapshot, policy)
    assert verify(snapshot, plan) == []
    assert len(plan.assignments) == len(jobs)
