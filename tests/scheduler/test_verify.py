"""The verifier on a tiny lab: a valid plan passes; one hand-broken plan per rule is caught."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from strategies import random_snapshots

from scheduler.core.plan import (
    HORIZON_FULL,
    PIN_CONFLICT,
    Assignment,
    Plan,
    Unscheduled,
    load_plan,
)
from scheduler.core.snapshot import ExposurePolicy, Job, Snapshot, load_snapshot
from scheduler.core.verify import RULES, Violation, verify

DATA = Path(__file__).parent / "data"


@pytest.fixture(scope="module")
def lab() -> Snapshot:
    return load_snapshot(DATA / "tiny_lab.json")


@pytest.fixture(scope="module")
def plan() -> Plan:
    return load_plan(DATA / "tiny_lab_plan.json")


def moved(plan: Plan, job: str, **changes: Any) -> Plan:
    """``plan`` with one assignment changed (end follows start unless given)."""
    out = []
    for a in plan.assignments:
        if a.job == job:
            if "start" in changes and "end" not in changes:
                changes["end"] = changes["start"] + (a.end - a.start)
            a = replace(a, **changes)
        out.append(a)
    return replace(plan, assignments=tuple(out))


def with_job(lab: Snapshot, job: str, **changes: Any) -> Snapshot:
    return replace(lab, jobs=tuple(replace(j, **changes) if j.id == job else j for j in lab.jobs))


def with_examiner_policy(lab: Snapshot, examiner: str, **changes: Any) -> Snapshot:
    examiners = tuple(
        replace(e, exposure=replace(e.exposure, **changes)) if e.id == examiner else e
        for e in lab.examiners
    )
    return replace(lab, examiners=examiners)


def with_workstation(lab: Snapshot, ws: str, **changes: Any) -> Snapshot:
    return replace(
        lab,
        workstations=tuple(replace(w, **changes) if w.id == ws else w for w in lab.workstations),
    )


def unscheduled(plan: Plan, job: str, reason: str = HORIZON_FULL) -> Plan:
    return replace(
        plan,
        assignments=tuple(a for a in plan.assignments if a.job != job),
        unscheduled=(*plan.unscheduled, Unscheduled(job, reason, "")),
    )


def caught(violations: list[Violation]) -> set[tuple[str, str | None]]:
    return {(v.rule, v.job) for v in violations}


def test_valid_plan_passes(lab: Snapshot, plan: Plan) -> None:
    assert verify(lab, plan) == []


def test_every_rule_name_is_distinct() -> None:
    assert len(set(RULES)) == len(RULES)


def test_coverage_missing_job(lab: Snapshot, plan: Plan) -> None:
    broken = replace(plan, unscheduled=())
    assert verify(lab, broken) == [
        Violation("coverage", "j5", "job is neither assigned nor unscheduled")
    ]


def test_coverage_unknown_and_duplicate_jobs(lab: Snapshot, plan: Plan) -> None:
    broken = replace(
        plan,
        unscheduled=(*plan.unscheduled, Unscheduled("j4", HORIZON_FULL), Unscheduled("jX", "x")),
    )
    assert caught(verify(lab, broken)) == {("coverage", "j4"), ("coverage", "jX")}


# Each case: (rule, job expected to be named, how to break the lab or the plan). ``only`` marks
# breakages that break nothing else, so the test also proves the other checks stay quiet.
def _release(lab: Snapshot, plan: Plan) -> tuple[Snapshot, Plan]:
    plan = replace(
        plan,
        assignments=(*plan.assignments, Assignment("j5", "e2", None, 100, 130)),
        unscheduled=(),
    )
    return lab, plan


CASES: list[tuple[str, str, bool, Any]] = [
    ("horizon", "j2", False, lambda lab, p: (lab, moved(p, "j2", start=2800))),
    ("release", "j5", True, _release),
    ("end", "j1", True, lambda lab, p: (lab, moved(p, "j1", end=500))),
    ("examiner_unknown", "j4", False, lambda lab, p: (lab, moved(p, "j4", examiner="e9"))),
    ("examiner_needed", "j4", False, lambda lab, p: (lab, moved(p, "j4", examiner=None))),
    (
        "examiner_not_needed",
        "j3",
        True,
        lambda lab, p: (with_job(lab, "j3", attended=0), p),
    ),
    (
        "skills",
        "j1",
        True,
        lambda lab, p: (with_job(lab, "j1", skills=frozenset({"mobile", "chip_off"})), p),
    ),
    (
        "examiner_allow_list",
        "j4",
        True,
        lambda lab, p: (with_job(lab, "j4", examiners=("e1",)), p),
    ),
    ("examiner_availability", "j3", True, lambda lab, p: (lab, moved(p, "j3", start=500))),
    ("examiner_overlap", "j4", False, lambda lab, p: (lab, moved(p, "j4", start=70))),
    ("workstation_unknown", "j1", False, lambda lab, p: (lab, moved(p, "j1", workstation="w9"))),
    ("workstation_needed", "j3", False, lambda lab, p: (lab, moved(p, "j3", workstation=None))),
    (
        "workstation_not_needed",
        "j4",
        False,  # also moves a frozen assignment
        lambda lab, p: (lab, moved(p, "j4", workstation="w1")),
    ),
    ("capabilities", "j3", True, lambda lab, p: (lab, moved(p, "j3", workstation="w1"))),
    (
        "machine_by_workstation",
        "j1",
        False,
        lambda lab, p: (with_job(lab, "j1", machine_by_workstation={"w2": 480}), p),
    ),
    (
        "workstation_availability",
        "j1",
        True,
        lambda lab, p: (with_workstation(lab, "w1", available=((0, 300),)), p),
    ),
    (
        "workstation_capacity",
        "j6",
        True,
        lambda lab, p: (
            with_job(lab, "j6", pin=None),
            moved(p, "j6", workstation="w1"),
        ),
    ),
    (
        "pool_capacity",
        "j6",
        True,
        lambda lab, p: (with_job(lab, "j6", pools=("axiom",)), p),
    ),
    ("precedence", "j3", True, lambda lab, p: (lab, moved(p, "j3", start=400))),
    ("max_severity", "j2", True, lambda lab, p: (lab, moved(p, "j2", examiner="e2"))),
    (  # the opt-out holds for material with no exposure minutes too (as eligibility has it)
        "max_severity",
        "j2",
        True,
        lambda lab, p: (with_job(lab, "j2", exposure=0), moved(p, "j2", examiner="e2")),
    ),
    ("exposure_window", "j2", True, lambda lab, p: (lab, moved(p, "j2", start=1830))),
    (
        "exposure_daily_cap",
        "j2",
        True,
        lambda lab, p: (with_examiner_policy(lab, "e1", used_by_day={0: 60, 1: 200}), p),
    ),
    (
        "exposure_severe_daily_cap",
        "j2",
        True,
        lambda lab, p: (with_examiner_policy(lab, "e1", severe_daily_cap=60), p),
    ),
    (
        "exposure_weekly_cap",
        "j2",
        True,
        lambda lab, p: (with_examiner_policy(lab, "e1", used_this_week=800), p),
    ),
    ("pin", "j6", True, lambda lab, p: (lab, moved(p, "j6", start=70))),
    ("frozen", "j4", True, lambda lab, p: (lab, moved(p, "j4", start=100))),
]


@pytest.mark.parametrize(("rule", "job", "only", "breaker"), CASES, ids=[c[0] for c in CASES])
def test_broken_plan_is_caught(
    lab: Snapshot, plan: Plan, rule: str, job: str, only: bool, breaker: Any
) -> None:
    broken_lab, broken_plan = breaker(lab, plan)
    found = caught(verify(broken_lab, broken_plan))
    assert (rule, job) in found
    if only:
        assert found == {(rule, job)}


def test_every_rule_has_a_broken_plan_test() -> None:
    tested = {case[0] for case in CASES} | {"coverage"}
    assert tested == set(RULES)


def test_unscheduled_predecessor_keeps_successors_out(lab: Snapshot, plan: Plan) -> None:
    found = caught(verify(lab, unscheduled(plan, "j1")))
    assert found == {("precedence", "j2"), ("precedence", "j3")}


def test_successors_of_an_unscheduled_predecessor_may_be_unscheduled(
    lab: Snapshot, plan: Plan
) -> None:
    broken = unscheduled(unscheduled(unscheduled(plan, "j1"), "j2"), "j3")
    assert verify(lab, broken) == []


def test_pinned_job_may_only_be_left_out_as_a_pin_conflict(lab: Snapshot, plan: Plan) -> None:
    assert caught(verify(lab, unscheduled(plan, "j6", HORIZON_FULL))) == {("pin", "j6")}


def test_frozen_job_may_only_be_left_out_as_a_pin_conflict(lab: Snapshot, plan: Plan) -> None:
    assert caught(verify(lab, unscheduled(plan, "j4", HORIZON_FULL))) == {("frozen", "j4")}


def test_a_pin_conflict_must_be_real(lab: Snapshot, plan: Plan) -> None:
    """A placement that fits is kept: calling it a conflict is no way out of rule 6."""
    assert caught(verify(lab, unscheduled(plan, "j6", PIN_CONFLICT))) == {("pin", "j6")}
    assert caught(verify(lab, unscheduled(plan, "j4", PIN_CONFLICT))) == {("frozen", "j4")}


def test_an_absence_makes_kept_placements_real_conflicts(lab: Snapshot, plan: Plan) -> None:
    examiners = (lab.examiners[0], replace(lab.examiners[1], available=((100, 480),)))
    absent = replace(lab, examiners=examiners)
    left_out = unscheduled(unscheduled(plan, "j4", PIN_CONFLICT), "j6", PIN_CONFLICT)
    assert verify(absent, left_out) == []


def test_clashing_kept_placements_drop_only_what_they_must(lab: Snapshot, plan: Plan) -> None:
    """A pin overlapping a frozen job on one examiner: one of them goes, not both."""
    assert lab.jobs[5].pin is not None
    clash = with_job(lab, "j6", pin=replace(lab.jobs[5].pin, start=10))
    keep_pin = unscheduled(moved(plan, "j6", start=10), "j4", PIN_CONFLICT)
    assert verify(clash, keep_pin) == []
    both = unscheduled(keep_pin, "j6", PIN_CONFLICT)
    assert caught(verify(clash, both)) == {("pin", "j6"), ("frozen", "j4")}


def test_a_pin_before_its_predecessor_ends_is_a_real_conflict(lab: Snapshot, plan: Plan) -> None:
    waiting = with_job(lab, "j6", after=("j1",))
    assert caught(verify(waiting, plan)) == {("precedence", "j6")}
    assert verify(waiting, unscheduled(plan, "j6", PIN_CONFLICT)) == []


def test_previous_after_frozen_until_may_move(lab: Snapshot, plan: Plan) -> None:
    assert verify(replace(lab, frozen_until=0), moved(plan, "j4", start=100)) == []


def test_pin_governs_over_previous(lab: Snapshot, plan: Plan) -> None:
    from scheduler.core.snapshot import PreviousAssignment

    lab = replace(lab, previous=(*lab.previous, PreviousAssignment("j6", "e1", "w1", 0)))
    assert verify(lab, plan) == []


def test_machine_part_frees_the_workstation_before_the_job_ends(lab: Snapshot) -> None:
    """Occupancy is [start, start + machine): a long attended part does not hold the box."""
    short = Job("a", "c", 1, 0, None, attended=200, machine=50, capabilities=frozenset({"ufed"}))
    other = Job("b", "c", 1, 0, None, attended=0, machine=50, capabilities=frozenset({"ufed"}))
    tiny = replace(lab, jobs=(short, other), previous=(), pools=())
    ok = Plan(
        "feasible",
        None,
        None,
        0.0,
        (Assignment("a", "e1", "w1", 0, 200), Assignment("b", None, "w1", 50, 100)),
    )
    assert verify(tiny, ok) == []
    clash = replace(ok, assignments=(ok.assignments[0], Assignment("b", None, "w1", 49, 99)))
    assert caught(verify(tiny, clash)) == {("workstation_capacity", "b")}


def test_touching_windows_are_not_merged(lab: Snapshot) -> None:
    job = Job("a", "c", 1, 0, None, attended=60, machine=0)
    examiner = replace(lab.examiners[1], available=((0, 30), (30, 480)))
    tiny = replace(lab, jobs=(job,), examiners=(examiner,), previous=())
    plan = Plan("feasible", None, None, 0.0, (Assignment("a", "e2", None, 0, 60),))
    assert caught(verify(tiny, plan)) == {("examiner_availability", "a")}


def test_exposure_outside_every_listed_day_counts_against_no_daily_cap(lab: Snapshot) -> None:
    job = Job("a", "c", 1, 0, None, attended=100, machine=0, exposure=100)
    policy = ExposurePolicy(daily_cap=50, windows=((0, 480),))
    examiner = replace(lab.examiners[1], exposure=policy)
    plan = Plan("feasible", None, None, 0.0, (Assignment("a", "e2", None, 0, 100),))
    tiny = replace(lab, jobs=(job,), examiners=(examiner,), previous=())
    assert caught(verify(tiny, plan)) == {("exposure_daily_cap", "a")}
    assert verify(replace(tiny, days=((1440, 2880),)), plan) == []


def test_exposure_windows_default_to_availability(lab: Snapshot) -> None:
    examiner = replace(lab.examiners[1], exposure=ExposurePolicy())
    assert examiner.exposure.windows == examiner.available


def test_logged_minutes_count_against_their_week() -> None:
    lab = load_snapshot(DATA / "tiny_lab.json")
    e1 = lab.examiners[0]
    assert lab.logged_day_exposure(e1) == {0: 60}
    assert lab.logged_week_exposure(e1) == {0: 360}


def _kept_pins_only(lab: Snapshot) -> Plan:
    """The plan that keeps every pin and leaves everything else out."""
    assignments = []
    left = []
    for job in lab.jobs:
        if job.pin is not None:
            end = job.pin.start + job.duration_on(job.pin.workstation)
            assignments.append(
                Assignment(job.id, job.pin.examiner, job.pin.workstation, job.pin.start, end)
            )
        else:
            left.append(Unscheduled(job.id, HORIZON_FULL))
    return Plan("feasible", None, None, 0.0, tuple(assignments), tuple(left))


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(random_snapshots())
def test_random_labs_pins_are_individually_valid(lab: Snapshot) -> None:
    """The strategy's promise to property tests: keeping every pin is always a valid plan."""
    assert verify(lab, _kept_pins_only(lab)) == []


_times = st.integers(-100, 5000)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(random_snapshots(), st.data())
def test_verify_never_crashes_on_random_plans(lab: Snapshot, data: st.DataObject) -> None:
    job_ids = st.sampled_from([j.id for j in lab.jobs] + ["ghost"])
    examiners = st.none() | st.sampled_from([e.id for e in lab.examiners] + ["nobody"])
    workstations = st.none() | st.sampled_from([w.id for w in lab.workstations] + ["nothing"])
    assignments = data.draw(
        st.lists(st.builds(Assignment, job_ids, examiners, workstations, _times, _times))
    )
    left = data.draw(
        st.lists(st.builds(Unscheduled, job_ids, st.sampled_from([HORIZON_FULL, PIN_CONFLICT])))
    )
    plan = Plan("feasible", None, None, 0.0, tuple(assignments), tuple(left))
    for violation in verify(lab, plan):
        assert violation.rule in RULES


def test_design_example_and_its_plan() -> None:
    """The example snapshot and plan of docs/architecture.md §6 agree with each other."""
    lab = load_snapshot(DATA / "design_example.json")
    plan = load_plan(DATA / "design_example_plan.json")
    assert verify(lab, plan) == []
    assert caught(verify(lab, moved(plan, "j1", start=15))) == {("pin", "j1")}
