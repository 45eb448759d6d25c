"""The snapshot contract's limits, messages for people, and solves that degrade within a deadline.

No test here measures time: the degradations are driven by deadlines already past, and the
long-horizon solve only has to return a plan the verifier accepts.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from scheduler.core import explain
from scheduler.core.bounds import critical_path_bound, lower_bound
from scheduler.core.dispatch import NOT_DISPATCHED, TRY_ORDER, best_dispatch, dispatch
from scheduler.core.fields import FieldError, read_int
from scheduler.core.forecast import forecast
from scheduler.core.plan import HORIZON_FULL, PREDECESSOR_UNSCHEDULED, PlanError, load_plan
from scheduler.core.snapshot import (
    MAX_DAYS,
    MAX_EXAMINERS,
    MAX_HORIZON,
    MAX_JOBS,
    MAX_POOLS,
    MAX_WINDOWS,
    MAX_WORKSTATIONS,
    Pin,
    SnapshotError,
    load_snapshot,
    snapshot_from_json,
)
from scheduler.core.solve import SolveConfig, allowance, solve
from scheduler.core.verify import verify
from scheduler.generate import generate_lab

DATA = Path(__file__).parent / "data"


def tiny() -> dict[str, Any]:
    data: dict[str, Any] = json.loads((DATA / "tiny_lab.json").read_text())
    return data


def _examiners(n: int) -> Callable[[dict[str, Any]], None]:
    def grow(d: dict[str, Any]) -> None:
        d["examiners"] += [{"id": f"x{i}", "available": []} for i in range(n)]

    return grow


def _workstations(n: int) -> Callable[[dict[str, Any]], None]:
    def grow(d: dict[str, Any]) -> None:
        d["workstations"] += [{"id": f"x{i}"} for i in range(n)]

    return grow


def _pools(n: int) -> Callable[[dict[str, Any]], None]:
    def grow(d: dict[str, Any]) -> None:
        d["pools"] = d.get("pools", []) + [{"id": f"x{i}", "capacity": 1} for i in range(n)]

    return grow


def _jobs(n: int) -> Callable[[dict[str, Any]], None]:
    def grow(d: dict[str, Any]) -> None:
        d["jobs"] += [
            {"id": f"x{i}", "case": "x", "weight": 1, "release": 0, "attended": 0, "machine": 0}
            for i in range(n)
        ]

    return grow


def _days(n: int) -> Callable[[dict[str, Any]], None]:
    def grow(d: dict[str, Any]) -> None:
        d["horizon"] = max(d["horizon"], n)
        d["days"] = [[i, i + 1] for i in range(n)]

    return grow


def _windows(n: int) -> Callable[[dict[str, Any]], None]:
    def grow(d: dict[str, Any]) -> None:
        d["horizon"] = max(d["horizon"], 2 * n)
        d["examiners"][0]["available"] = [[2 * i, 2 * i + 1] for i in range(n)]

    return grow


def _horizon(n: int) -> Callable[[dict[str, Any]], None]:
    def grow(d: dict[str, Any]) -> None:
        d["horizon"] = n

    return grow


# (name, how to go past the limit, the field named, the limit quoted)
PAST_THE_LIMIT = [
    ("examiners", lambda d: _examiners(MAX_EXAMINERS + 1 - len(d["examiners"]))(d), "examiners",
     MAX_EXAMINERS),
    ("workstations", lambda d: _workstations(MAX_WORKSTATIONS + 1 - len(d["workstations"]))(d),
     "workstations", MAX_WORKSTATIONS),
    ("pools", lambda d: _pools(MAX_POOLS + 1 - len(d.get("pools", [])))(d), "pools", MAX_POOLS),
    ("jobs", lambda d: _jobs(MAX_JOBS + 1 - len(d["jobs"]))(d), "jobs", MAX_JOBS),
    ("days", _days(MAX_DAYS + 1), "days", MAX_DAYS),
    ("windows", _windows(MAX_WINDOWS + 1), "examiners[e1].available", MAX_WINDOWS),
    ("horizon", _horizon(MAX_HORIZON + 1), "horizon", MAX_HORIZON),
]  # fmt: skip


@pytest.mark.parametrize(
    ("grow", "field", "limit"),
    [case[1:] for case in PAST_THE_LIMIT],
    ids=[case[0] for case in PAST_THE_LIMIT],
)
def test_one_past_each_limit_is_refused_naming_the_limit_and_field(
    grow: Callable[[dict[str, Any]], None], field: str, limit: int
) -> None:
    data = tiny()
    grow(data)
    with pytest.raises(SnapshotError) as caught:
        snapshot_from_json(data)
    assert caught.value.field == field
    assert f"limit of {limit:,}" in caught.value.message


@pytest.mark.parametrize(
    "grow",
    [
        lambda d: _pools(MAX_POOLS - len(d.get("pools", [])))(d),
        _days(MAX_DAYS),
        _windows(MAX_WINDOWS),
        _horizon(MAX_HORIZON),
    ],
    ids=["pools", "days", "windows", "horizon"],
)
def test_a_snapshot_at_a_limit_is_accepted(grow: Callable[[dict[str, Any]], None]) -> None:
    data = tiny()
    grow(data)
    snapshot = snapshot_from_json(data)
    assert snapshot.horizon <= MAX_HORIZON


def test_the_generated_labs_of_the_limits_benchmark_fit_the_contract() -> None:
    # The scenarios of `labq bench limits` are built at the limits, not past them.
    from scheduler.benchmarks.limits import MAX_HORIZON_DAYS, at_limits
    from scheduler.core.snapshot import snapshot_to_json

    lab = generate_lab("small", 1, scale=2, horizon_days=MAX_HORIZON_DAYS)
    padded = at_limits(lab)
    back = snapshot_from_json(snapshot_to_json(padded))
    assert len(back.examiners) == MAX_EXAMINERS
    assert len(back.workstations) == MAX_WORKSTATIONS
    assert back.horizon == MAX_HORIZON_DAYS * 1440 <= MAX_HORIZON


# -- messages for people ------------------------------------------------------------------------

INTERPRETER_ADVICE = ("sys.", "set_int_max_str_digits", "Exceeds the limit")


def test_a_huge_integer_literal_in_a_snapshot_file_reads_as_too_long(tmp_path: Path) -> None:
    data = tiny()
    text = json.dumps(data).replace('"horizon": 2880', '"horizon": 1' + "0" * 5000)
    path = tmp_path / "huge.json"
    path.write_text(text)
    with pytest.raises(SnapshotError) as caught:
        load_snapshot(path)
    message = str(caught.value)
    assert "5,001 digits" in message and "too long" in message
    assert not any(advice in message for advice in INTERPRETER_ADVICE)


def test_a_huge_integer_literal_in_a_plan_file_reads_as_too_long(tmp_path: Path) -> None:
    path = tmp_path / "plan.json"
    path.write_text('{"format": "labq.plan/1", "objective": -' + "9" * 4400 + "}")
    with pytest.raises(PlanError) as caught:
        load_plan(path)
    assert "too long" in str(caught.value)
    assert not any(advice in str(caught.value) for advice in INTERPRETER_ADVICE)


def test_an_enormous_integer_already_decoded_is_refused_without_printing_it() -> None:
    with pytest.raises(FieldError) as caught:
        read_int(10**5000, "jobs[j1].due", 0, 10**9)
    assert caught.value.field == "jobs[j1].due"
    assert "far outside [0, 1000000000]" in caught.value.message


# -- one deadline for the whole solve --------------------------------------------------------------


@pytest.fixture(scope="module")
def small_lab() -> Any:
    return generate_lab("small", 1)


def test_past_its_deadline_the_bound_is_the_critical_path(small_lab: Any) -> None:
    full = lower_bound(small_lab)
    weak = lower_bound(small_lab, deadline=0.0)
    assert weak == critical_path_bound(small_lab)
    assert weak <= full


def test_past_its_deadline_dispatch_still_returns_one_valid_baseline(small_lab: Any) -> None:
    policy, plan = best_dispatch(small_lab, deadline=0.0)
    assert policy == TRY_ORDER[0] == "priority"
    assert plan.objective is not None
    assert verify(small_lab, plan) == []


def test_a_dispatch_cut_short_leaves_the_jobs_it_did_not_reach_with_a_reason(
    small_lab: Any,
) -> None:
    whole = dispatch(small_lab, "priority")
    cut = dispatch(small_lab, "priority", deadline=0.0)
    assert verify(small_lab, cut) == []
    assert whole.assignments and not cut.assignments  # the demo lab has no pins or frozen work
    reasons = {u.job: (u.reason, u.detail) for u in cut.unscheduled}
    assert set(reasons) == {j.id for j in small_lab.jobs}
    not_reached = {j for j, (r, d) in reasons.items() if d == NOT_DISPATCHED}
    assert not_reached and all(reasons[j][0] == HORIZON_FULL for j in not_reached)
    waiting = set(reasons) - not_reached
    assert all(reasons[j][0] == PREDECESSOR_UNSCHEDULED for j in waiting)


def test_a_cut_short_dispatch_still_keeps_pins(small_lab: Any) -> None:
    whole = dispatch(small_lab, "priority")
    heads = {j.id for j in small_lab.jobs if not j.after}
    first = next(a for a in whole.assignments if a.job in heads)
    pinned = replace(
        small_lab,
        jobs=tuple(
            replace(j, pin=Pin(first.examiner, first.workstation, first.start))
            if j.id == first.job
            else j
            for j in small_lab.jobs
        ),
    )
    cut = dispatch(pinned, "priority", deadline=0.0)
    assert verify(pinned, cut) == []
    assert [a.job for a in cut.assignments] == [first.job]


def test_best_dispatch_cut_short_is_still_the_first_policy_and_valid(small_lab: Any) -> None:
    policy, plan = best_dispatch(small_lab, deadline=0.0, cutoff=0.0)
    assert policy == "priority"
    assert verify(small_lab, plan) == []
    assert {u.detail for u in plan.unscheduled} >= {NOT_DISPATCHED}


def test_past_its_deadline_explanations_are_cut_short_with_a_note(small_lab: Any) -> None:
    _, plan = best_dispatch(small_lab)
    placed = {a.job for a in plan.assignments}
    left = [j.id for j in small_lab.jobs if j.id not in placed]
    assert left
    cut = explain.unscheduled_reasons(small_lab, plan.assignments, left, deadline=0.0)
    assert {(u.reason, u.detail) for u in cut} == {(HORIZON_FULL, explain.NOT_EXPLAINED)}
    assert len(cut) == len(left)


def test_past_its_deadline_the_forecast_covers_fewer_jobs(small_lab: Any) -> None:
    _, plan = best_dispatch(small_lab)
    whole = forecast(small_lab, plan)
    cut = forecast(small_lab, plan, deadline=0.0)
    assert len(whole) > 64
    assert len(cut) < len(whole)
    assert set(cut) <= set(whole)  # the jobs it reached are forecast as they would be


def test_a_solve_on_a_long_horizon_returns_a_verified_plan() -> None:
    from scheduler.benchmarks.limits import MAX_HORIZON_DAYS

    lab = generate_lab("small", 1, horizon_days=MAX_HORIZON_DAYS)
    assert lab.horizon == MAX_HORIZON_DAYS * 1440
    plan = solve(lab, SolveConfig(time_limit=2, workers=1))
    assert verify(lab, plan) == []
    assert plan.objective is not None and plan.bound is not None
    assert 0 <= plan.bound <= plan.objective


def test_the_allowance_is_two_seconds_or_a_tenth() -> None:
    assert allowance(5) == 2.0
    assert allowance(60) == 6.0
