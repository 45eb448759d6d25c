"""What-if changes as pure functions over a snapshot (docs/architecture.md §5.11)."""

from __future__ import annotations

import pytest
from tiny_labs import DAY, examiner, job, lab, shifts, workstation

from scheduler.core.snapshot import Pool, PreviousAssignment
from scheduler.core.solve import SolveConfig, solve
from scheduler.core.verify import verify
from scheduler.core.whatif import (
    AddExaminers,
    AddWorkstations,
    Changes,
    WeekendCover,
    WhatIfError,
    apply_changes,
    closed_days,
    extend,
)


def base():
    return lab(
        [examiner("e1", ("review",), shifts(5)), examiner("e2", ("review",), shifts(5))],
        [
            job(
                "p",
                attended=15,
                machine=720,
                skills=(),
                capabilities=("processing",),
                pools=("axiom",),
                machine_by_workstation={"s1": 720},
            ),
            job("r", attended=120, skills=("review",), after=("p",), pin=("e2", None, DAY)),
            job("q", attended=60, skills=("review",), examiners=("e1", "e2")),
        ],
        [workstation("s1", ("processing",), horizon=7 * DAY)],
        [Pool("axiom", 1)],
        horizon=7 * DAY,
        previous=[PreviousAssignment("q", "e2", None, 0)],
    )


def test_nothing_changed_is_the_same_lab():
    assert apply_changes(base(), Changes()) == base()


def test_removing_an_examiner_takes_their_pins_allow_list_places_and_published_work():
    changed = apply_changes(base(), Changes(remove_examiners=("e2",)))
    assert [e.id for e in changed.examiners] == ["e1"]
    jobs = {j.id: j for j in changed.jobs}
    assert jobs["r"].pin is None and jobs["q"].examiners == ("e1",)
    assert changed.previous == ()


def test_added_examiners_copy_shifts_and_caps_but_not_logged_exposure():
    snapshot = lab(
        [examiner("e1", ("review",), shifts(2), daily_cap=200, used_by_day={0: 50})],
        [],
        horizon=2 * DAY,
    )
    changed = apply_changes(
        snapshot, Changes(add_examiners=(AddExaminers(2, frozenset({"mobile"}), "e1", 2),))
    )
    added = changed.examiners[1:]
    assert [e.id for e in added] == ["whatif-examiner-1", "whatif-examiner-2"]
    assert all(e.available == shifts(2) and e.skills == {"mobile"} for e in added)
    assert all(e.exposure.daily_cap == 200 and e.exposure.max_severity == 2 for e in added)
    assert all(not e.exposure.used_by_day for e in added)


def test_a_new_workstation_takes_jobs_with_minutes_per_workstation():
    changed = apply_changes(
        base(), Changes(add_workstations=(AddWorkstations(1, frozenset({"processing"})),))
    )
    p = next(j for j in changed.jobs if j.id == "p")
    assert p.machine_by_workstation == {"s1": 720, "whatif-workstation-1": 720}


def test_licences_overtime_weekend_and_due_times():
    changed = apply_changes(
        base(),
        Changes(
            licences={"axiom": 3},
            overtime_minutes=60,
            overtime_examiners=("e1",),
            weekend_cover=WeekendCover(("e2",), start=480, minutes=120),
            due={"q": 600},
        ),
    )
    assert changed.pools == (Pool("axiom", 3),)
    e1, e2 = changed.examiners
    assert e1.available == tuple((a, b + 60) for a, b in shifts(5))
    assert e1.exposure.windows == shifts(5)  # no exposure work in overtime
    assert e2.available == (
        *shifts(5),
        (5 * DAY + 480, 5 * DAY + 600),
        (6 * DAY + 480, 6 * DAY + 600),
    )
    assert next(j for j in changed.jobs if j.id == "q").due == 600


def test_overtime_never_runs_into_the_next_window_nor_past_the_horizon():
    assert extend(((0, 100), (150, 200)), 80, 230) == ((0, 150), (150, 230))
    assert closed_days(base()) == [(5 * DAY, 6 * DAY), (6 * DAY, 7 * DAY)]


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        (Changes(remove_examiners=("x",)), "remove_examiners[0]"),
        (Changes(remove_workstations=("x",)), "remove_workstations[0]"),
        (Changes(licences={"x": 2}), "licences[0]"),
        (Changes(overtime_minutes=5, overtime_examiners=("x",)), "overtime.examiners[0]"),
        (Changes(weekend_cover=WeekendCover(("x",), 0, 60)), "weekend.examiners[0]"),
        (Changes(add_examiners=(AddExaminers(1, frozenset(), "x"),)), "add_examiners[0].like"),
        (Changes(due={"x": 5}), "due[0]"),
    ],
)
def test_unknown_references_are_refused_naming_the_field(changes, field):
    with pytest.raises(WhatIfError) as error:
        apply_changes(base(), changes)
    assert error.value.field == field


def test_a_changed_lab_is_solved_and_verified_like_any_other():
    changed = apply_changes(base(), Changes(remove_examiners=("e1",), licences={"axiom": 2}))
    plan = solve(changed, SolveConfig(time_limit=5, workers=1))
    assert verify(changed, plan) == []
    assert {a.examiner for a in plan.assignments if a.examiner} <= {"e2"}
