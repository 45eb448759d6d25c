"""The labq.plan/1 reader and writer: round trips, and malformed plans rejected by field."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scheduler.core.plan import (
    Assignment,
    Forecast,
    Plan,
    PlanError,
    PlanWarning,
    Unscheduled,
    load_plan,
    plan_from_json,
    plan_to_json,
)

DATA = Path(__file__).parent / "data"


def tiny() -> dict[str, Any]:
    data: dict[str, Any] = json.loads((DATA / "tiny_lab_plan.json").read_text())
    return data


def test_reads_the_tiny_plan() -> None:
    plan = plan_from_json(tiny())
    assert plan.status == "feasible" and plan.objective == 0 and plan.bound == 0
    assert plan.assignments[0] == Assignment("j1", "e1", "w1", 0, 480)
    assert plan.assignments[1].workstation is None
    assert plan.unscheduled == (Unscheduled("j5", "released_after_horizon", "arrives at 3000"),)
    assert plan.forecast == (Forecast("j5", 3000, 3030),)
    assert plan.terms == {"tardiness": 0, "change": 0, "balance": 0, "continuity": 0}


def test_optional_fields_default() -> None:
    plan = plan_from_json({"format": "labq.plan/1", "status": "infeasible", "assignments": []})
    assert plan == Plan("infeasible", None, None, 0.0, ())


def test_round_trip_tiny_plan() -> None:
    plan = plan_from_json(tiny())
    assert plan_from_json(json.loads(json.dumps(plan_to_json(plan)))) == plan


def test_warnings_round_trip_and_a_plan_without_any_is_written_as_before() -> None:
    plain = plan_from_json(tiny())
    assert "warnings" not in plan_to_json(plain)  # readers of the earlier contract still read it
    warned = Plan(
        "feasible",
        0,
        0,
        0.0,
        (),
        warnings=(PlanWarning("skill_unavailable", "jobs[j1].skills", "no examiner has 'x'"),),
    )
    document = plan_to_json(warned)
    assert document["warnings"] == [
        {"code": "skill_unavailable", "field": "jobs[j1].skills", "detail": "no examiner has 'x'"}
    ]
    assert plan_from_json(json.loads(json.dumps(document))) == warned
    document["warnings"] = [{"code": "skill_unavailable"}]
    with pytest.raises(PlanError, match=r"warnings\[0\]\.detail"):
        plan_from_json(document)


def test_load_plan(tmp_path: Path) -> None:
    assert load_plan(DATA / "tiny_lab_plan.json") == plan_from_json(tiny())
    bad = tmp_path / "bad.json"
    bad.write_text('{"format": "labq.plan/1", "status": ', encoding="utf-8")
    with pytest.raises(PlanError, match="invalid JSON"):
        load_plan(bad)
    with pytest.raises(PlanError, match="cannot read"):
        load_plan(tmp_path / "absent.json")


_ids = st.sampled_from(["j1", "j2", "j3", "job 4"])
_opt_ids = st.none() | st.sampled_from(["e1", "w1"])
_minutes = st.integers(-(10**9), 10**9)


@st.composite
def _plans(draw: st.DrawFn) -> Plan:
    return Plan(
        status=draw(st.sampled_from(["optimal", "feasible", "infeasible", "unknown"])),
        objective=draw(st.none() | st.integers(0, 2**62)),
        bound=draw(st.none() | st.integers(0, 2**62)),
        solve_seconds=draw(st.floats(0, 1e6, allow_nan=False)),
        assignments=tuple(
            draw(st.lists(st.builds(Assignment, _ids, _opt_ids, _opt_ids, _minutes, _minutes)))
        ),
        unscheduled=tuple(
            draw(
                st.lists(st.builds(Unscheduled, _ids, st.sampled_from(["horizon_full"]), st.text()))
            )
        ),
        forecast=tuple(
            draw(
                st.lists(
                    st.builds(Forecast, _ids, st.integers(0, 10**6), st.integers(0, 10**6)).filter(
                        lambda f: f.end >= f.start
                    )
                )
            )
        ),
        terms=draw(
            st.dictionaries(st.sampled_from(["tardiness", "change"]), st.integers(0, 10**12))
        ),
    )


@settings(max_examples=100, deadline=None)
@given(_plans())
def test_round_trip_random_plans(plan: Plan) -> None:
    assert plan_from_json(json.loads(json.dumps(plan_to_json(plan)))) == plan


Edit = Callable[[dict[str, Any]], None]


def _set(*path: Any, value: Any) -> Edit:
    def edit(data: dict[str, Any]) -> None:
        node: Any = data
        for key in path[:-1]:
            node = node[key]
        node[path[-1]] = value

    return edit


def _delete(*path: Any) -> Edit:
    def edit(data: dict[str, Any]) -> None:
        node: Any = data
        for key in path[:-1]:
            node = node[key]
        del node[path[-1]]

    return edit


REJECTIONS: list[tuple[str, Edit, str, str]] = [
    ("format missing", _delete("format"), "format", "expected 'labq.plan/1'"),
    ("format wrong", _set("format", value="labq.snapshot/1"), "format", "expected"),
    ("status unknown", _set("status", value="great"), "status", "expected one of"),
    ("status missing", _delete("status"), "status", "missing"),
    ("assignments missing", _delete("assignments"), "assignments", "missing"),
    ("unknown field", _set("kpis", value={}), "kpis", "unknown field"),
    ("objective string", _set("objective", value="12"), "objective", "integer"),
    ("bound boolean", _set("bound", value=True), "bound", "boolean"),
    ("objective huge", _set("objective", value=2**64), "objective", "outside"),
    ("seconds string", _set("solve_seconds", value="4.2"), "solve_seconds", "number"),
    ("seconds negative", _set("solve_seconds", value=-1), "solve_seconds", "non-negative"),
    ("seconds infinite", _set("solve_seconds", value=float("inf")), "solve_seconds", "non-neg"),
    ("assignments object", _set("assignments", value={}), "assignments", "array"),
    ("assignment string", _set("assignments", 0, value="j1"), "assignments[0]", "object"),
    (
        "assignment start missing",
        _delete("assignments", 0, "start"),
        "assignments[j1].start",
        "missing",
    ),
    (
        "assignment end float",
        _set("assignments", 0, "end", value=480.5),
        "assignments[j1].end",
        "integer",
    ),
    (
        "assignment examiner number",
        _set("assignments", 0, "examiner", value=1),
        "assignments[j1].examiner",
        "string",
    ),
    (
        "assignment job missing",
        _delete("assignments", 0, "job"),
        "assignments[0].job",
        "missing",
    ),
    (
        "assignment extra field",
        _set("assignments", 0, "room", value="2"),
        "assignments[j1].room",
        "unknown field",
    ),
    (
        "assignment start huge",
        _set("assignments", 0, "start", value=10**12),
        "assignments[j1].start",
        "outside",
    ),
    (
        "unscheduled reason missing",
        _delete("unscheduled", 0, "reason"),
        "unscheduled[j5].reason",
        "missing",
    ),
    (
        "unscheduled reason empty",
        _set("unscheduled", 0, "reason", value=""),
        "unscheduled[j5].reason",
        "empty",
    ),
    (
        "unscheduled detail number",
        _set("unscheduled", 0, "detail", value=3),
        "unscheduled[j5].detail",
        "string",
    ),
    ("forecast reversed", _set("forecast", 0, "end", value=10), "forecast[j5]", "before start"),
    ("terms list", _set("terms", value=[1]), "terms", "object"),
    ("term float", _set("terms", "balance", value=0.5), "terms.balance", "integer"),
]


@pytest.mark.parametrize(
    ("edit", "field", "fragment"),
    [case[1:] for case in REJECTIONS],
    ids=[case[0] for case in REJECTIONS],
)
def test_rejects_malformed_plan(edit: Edit, field: str, fragment: str) -> None:
    data = tiny()
    edit(data)
    with pytest.raises(PlanError) as info:
        plan_from_json(data)
    assert info.value.field == field
    assert fragment in str(info.value)


@pytest.mark.parametrize("data", [None, [], "plan", 1, False])
def test_rejects_non_object_plan(data: object) -> None:
    with pytest.raises(PlanError, match="expected a JSON object"):
        plan_from_json(data)
