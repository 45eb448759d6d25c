"""The engine's verdict on one pin: on its own, against other kept work, against predecessors."""

from __future__ import annotations

from tiny_labs import examiner, job, lab, workstation

from scheduler.core.pins import pin_problems


def test_a_pin_that_fits_has_no_problem() -> None:
    snap = lab([examiner("e1")], [job("a", pin=("e1", None, 60))])
    assert pin_problems(snap, "a") == []


def test_a_pin_outside_the_shift_breaks_its_own_rule() -> None:
    snap = lab([examiner("e1", available=[(0, 480)])], [job("a", pin=("e1", None, 450))])
    [problem] = pin_problems(snap, "a")
    assert (problem.rule, problem.other, problem.clash) == ("examiner_availability", None, False)


def test_two_pins_on_one_examiner_at_once_clash_and_the_other_is_named() -> None:
    snap = lab([examiner("e1")], [job("a", pin=("e1", None, 60)), job("b", pin=("e1", None, 90))])
    [problem] = pin_problems(snap, "b")
    assert (problem.rule, problem.other, problem.at, problem.clash) == (
        "examiner_overlap",
        "a",
        90,
        True,
    )


def test_three_pins_on_a_box_of_two_clash_though_no_pair_does() -> None:
    boxes = [workstation("w1", capacity=2)]
    jobs = [
        job(n, attended=0, machine=120, skills=(), capabilities=("ufed",), pin=(None, "w1", 0))
        for n in ("a", "b", "c")
    ]
    [problem] = pin_problems(lab([examiner("e1")], jobs, boxes), "c")
    assert (problem.rule, problem.other, problem.clash) == ("workstation_capacity", None, True)


def test_a_pin_before_its_predecessor_can_end_names_the_predecessor_and_when() -> None:
    snap = lab(
        [examiner("e1", available=[(0, 480)])],
        [job("a", attended=120), job("b", after=("a",), pin=("e1", None, 60))],
    )
    [problem] = pin_problems(snap, "b")
    assert (problem.rule, problem.other, problem.at, problem.clash) == (
        "precedence",
        "a",
        120,
        False,
    )
