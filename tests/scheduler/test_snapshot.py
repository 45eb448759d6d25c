"""The labq.snapshot/1 parser: defaults, round trips, and one rejection per malformed field."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from strategies import random_snapshots

from scheduler.core.plan import PlanWarning
from scheduler.core.snapshot import (
    CAPABILITY_UNAVAILABLE,
    SKILL_UNAVAILABLE,
    Snapshot,
    SnapshotError,
    load_snapshot,
    snapshot_from_json,
    snapshot_to_json,
    snapshot_warnings,
)
from scheduler.generate import generate_lab

DATA = Path(__file__).parent / "data"


def tiny() -> dict[str, Any]:
    data: dict[str, Any] = json.loads((DATA / "tiny_lab.json").read_text())
    return data


def job(data: dict[str, Any], ident: str) -> dict[str, Any]:
    found: dict[str, Any] = next(j for j in data["jobs"] if j["id"] == ident)
    return found


def examiner(data: dict[str, Any], ident: str) -> dict[str, Any]:
    found: dict[str, Any] = next(e for e in data["examiners"] if e["id"] == ident)
    return found


def test_tiny_lab_parses_with_defaults() -> None:
    lab = snapshot_from_json(tiny())
    e1, e2 = lab.examiners
    w1, w2 = lab.workstations
    assert e1.exposure.used_by_day == {0: 60}
    assert e2.exposure.windows == e2.available  # windows default to availability
    assert e2.exposure.daily_cap is None  # missing cap = no cap
    assert w2.available == ((0, 2880),)  # whole horizon
    assert w2.capacity == 2
    jobs = {j.id: j for j in lab.jobs}
    assert jobs["j4"].due is None
    assert jobs["j1"].after == ("j0",)  # absent predecessor listed in `done`: already done
    assert jobs["j1"].machine_by_workstation == {"w1": 480, "w2": 600}
    assert jobs["j1"].needs_workstation and not jobs["j4"].needs_workstation
    assert jobs["j6"].pin is not None and jobs["j6"].pin.start == 60
    assert lab.frozen_until == 1440


def test_optional_sections_default() -> None:
    data = tiny()
    for key in ("pools", "previous", "frozen_until", "weights", "objective"):
        data.pop(key)
    job(data, "j1")["pools"] = []
    lab = snapshot_from_json(data)
    assert lab.pools == () and lab.previous == () and lab.frozen_until == 0
    assert lab.objective == "weighted_tardiness"
    assert lab.weights.tardiness == 1 and lab.weights.change == 50


def test_minimal_job_and_examiner() -> None:
    data = tiny()
    data["examiners"].append({"id": "e3", "available": []})
    data["jobs"].append(
        {"id": "j7", "case": "c", "weight": 1, "release": 0, "attended": 0, "machine": 0}
    )
    lab = snapshot_from_json(data)
    assert lab.examiners[-1].skills == frozenset()
    assert lab.jobs[-1].examiners is None and lab.jobs[-1].pin is None


def test_makespan_objective() -> None:
    data = tiny()
    data["objective"] = "makespan"
    assert snapshot_from_json(data).objective == "makespan"


def test_round_trip_tiny_lab() -> None:
    lab = snapshot_from_json(tiny())
    document = snapshot_to_json(lab)
    assert snapshot_from_json(document) == lab
    assert snapshot_from_json(json.loads(json.dumps(document))) == lab


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(random_snapshots())
def test_round_trip_random_snapshots(lab: Snapshot) -> None:
    document = json.loads(json.dumps(snapshot_to_json(lab)))
    assert snapshot_from_json(document) == lab


def test_load_snapshot_reads_a_file(tmp_path: Path) -> None:
    assert load_snapshot(DATA / "tiny_lab.json") == snapshot_from_json(tiny())


@pytest.mark.parametrize(
    "text",
    ["{", "", "[1, 2", '{"format": NaN}', "\ufeff{}", '{"a": 1e999999}'],
)
def test_load_snapshot_invalid_json(tmp_path: Path, text: str) -> None:
    path = tmp_path / "bad.json"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(SnapshotError):
        load_snapshot(path)


def test_load_snapshot_missing_file(tmp_path: Path) -> None:
    with pytest.raises(SnapshotError, match="cannot read"):
        load_snapshot(tmp_path / "absent.json")


def test_load_snapshot_deep_nesting(tmp_path: Path) -> None:
    path = tmp_path / "deep.json"
    path.write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(SnapshotError):
        load_snapshot(path)


Edit = Callable[[dict[str, Any]], object]


def _set(*path: Any, value: Any) -> Edit:
    """An edit that sets data[path...] = value (str keys and list indexes, or ("job", id))."""

    def edit(data: dict[str, Any]) -> None:
        node: Any = data
        for key in path[:-1]:
            if isinstance(key, tuple):
                kind, ident = key
                node = next(x for x in node[kind] if x["id"] == ident)
            else:
                node = node[key]
        node[path[-1]] = value

    return edit


def _delete(*path: Any) -> Edit:
    def edit(data: dict[str, Any]) -> None:
        node: Any = data
        for key in path[:-1]:
            if isinstance(key, tuple):
                kind, ident = key
                node = next(x for x in node[kind] if x["id"] == ident)
            else:
                node = node[key]
        del node[path[-1]]

    return edit


def _append(kind: str, item: dict[str, Any]) -> Edit:
    return lambda data: data[kind].append(item)


J1 = ("jobs", "j1")
E1 = ("examiners", "e1")
W1 = ("workstations", "w1")

# (name, edit, field path the error must name, a fragment of the message)
REJECTIONS: list[tuple[str, Edit, str, str]] = [
    ("format missing", _delete("format"), "format", "missing"),
    ("format wrong", _set("format", value="labq.snapshot/2"), "format", "expected"),
    ("lab missing", _delete("lab"), "lab", "missing"),
    ("jobs missing", _delete("jobs"), "jobs", "missing"),
    ("unknown top field", _set("extra", value=1), "extra", "unknown field"),
    ("lab empty", _set("lab", value=""), "lab", "empty"),
    ("epoch not a date", _set("epoch", value="monday"), "epoch", "ISO 8601"),
    ("epoch naive", _set("epoch", value="2026-11-30T08:00:00"), "epoch", "UTC offset"),
    (
        "after an unknown job",
        _set(J1, "after", value=["j0", "nope"]),
        "jobs[j1].after[1]",
        "unknown job 'nope'",
    ),
    ("after a done job not listed", _delete("done"), "jobs[j1].after[0]", "unknown job 'j0'"),
    ("done a present job", _set("done", value=["j0", "j3"]), "done[1]", "among the jobs"),
    ("done not a list", _set("done", value="j0"), "done", "array"),
    ("horizon string", _set("horizon", value="2880"), "horizon", "integer"),
    ("horizon boolean", _set("horizon", value=True), "horizon", "boolean"),
    ("horizon float", _set("horizon", value=2880.0), "horizon", "integer"),
    ("horizon huge", _set("horizon", value=10**10), "horizon", "outside"),
    ("horizon zero", _set("horizon", value=0), "horizon", "outside"),
    ("objective unknown", _set("objective", value="profit"), "objective", "expected one of"),
    ("days string", _set("days", value="all"), "days", "array"),
    ("day not a pair", _set("days", 0, value=[0]), "days[0]", "[start, end]"),
    ("day reversed", _set("days", 0, value=[100, 0]), "days[0]", "before start"),
    ("day outside", _set("days", 1, value=[1440, 3000]), "days[1]", "outside"),
    ("day empty", _set("days", 0, value=[0, 0]), "days[0]", "empty"),
    ("days overlap", _set("days", 1, value=[1000, 2880]), "days[1]", "overlaps"),
    ("day boolean", _set("days", 0, value=[False, 1440]), "days[0][0]", "boolean"),
    ("weeks malformed", _set("weeks", value=[[0, 2880, 1]]), "weeks[0]", "[start, end]"),
    ("examiners null", _set("examiners", value=None), "examiners", "array"),
    ("examiner not object", _set("examiners", 0, value="e1"), "examiners[0]", "object"),
    ("examiner id missing", _delete("examiners", 0, "id"), "examiners[0].id", "missing"),
    ("examiner id number", _set("examiners", 0, "id", value=7), "examiners[0].id", "string"),
    (
        "duplicate examiner",
        _set("examiners", 1, "id", value="e1"),
        "examiners[1].id",
        "duplicate examiner id 'e1'",
    ),
    ("examiner available missing", _delete(E1, "available"), "examiners[e1].available", "missing"),
    (
        "examiner window reversed",
        _set(E1, "available", 1, value=[1950, 1440]),
        "examiners[e1].available[1]",
        "before start",
    ),
    (
        "examiner window beyond horizon",
        _set(E1, "available", 1, value=[1440, 99999]),
        "examiners[e1].available[1]",
        "outside [0, horizon=2880]",
    ),
    (
        "examiner window negative",
        _set(E1, "available", 0, value=[-10, 510]),
        "examiners[e1].available[0]",
        "outside",
    ),
    (
        "examiner windows unordered",
        _set(E1, "available", value=[[1440, 1950], [0, 510]]),
        "examiners[e1].available[1]",
        "time order",
    ),
    ("skills string", _set(E1, "skills", value="mobile"), "examiners[e1].skills", "array"),
    ("skill number", _set(E1, "skills", value=[1]), "examiners[e1].skills[0]", "string"),
    (
        "daily cap negative",
        _set(E1, "exposure", "daily_cap", value=-1),
        "examiners[e1].exposure.daily_cap",
        "outside",
    ),
    (
        "weekly cap boolean",
        _set(E1, "exposure", "weekly_cap", value=False),
        "examiners[e1].exposure.weekly_cap",
        "boolean",
    ),
    (
        "max severity 4",
        _set(E1, "exposure", "max_severity", value=4),
        "examiners[e1].exposure.max_severity",
        "outside [0, 3]",
    ),
    (
        "exposure window reversed",
        _set(E1, "exposure", "windows", value=[[480, 0]]),
        "examiners[e1].exposure.windows[0]",
        "before start",
    ),
    (
        "used_by_day out of range",
        _set(E1, "exposure", "used_by_day", value={"2": 30}),
        "examiners[e1].exposure.used_by_day[2]",
        "out of range",
    ),
    (
        "used_by_day key not an index",
        _set(E1, "exposure", "used_by_day", value={"monday": 30}),
        "examiners[e1].exposure.used_by_day[monday]",
        "day indexes",
    ),
    (
        "used_by_day negative minutes",
        _set(E1, "exposure", "used_by_day", value={"0": -5}),
        "examiners[e1].exposure.used_by_day[0]",
        "outside",
    ),
    (
        "used_by_day a list",
        _set(E1, "exposure", "used_by_day", value=[60]),
        "examiners[e1].exposure.used_by_day",
        "object",
    ),
    (
        "exposure unknown field",
        _set(E1, "exposure", "cutoff", value=960),
        "examiners[e1].exposure.cutoff",
        "unknown field",
    ),
    (
        "duplicate workstation",
        _set("workstations", 1, "id", value="w1"),
        "workstations[1].id",
        "duplicate workstation id 'w1'",
    ),
    ("capacity zero", _set(W1, "capacity", value=0), "workstations[w1].capacity", "outside"),
    ("capacity huge", _set(W1, "capacity", value=10**9), "workstations[w1].capacity", "outside"),
    (
        "workstation window outside",
        _set(W1, "available", value=[[0, 5000]]),
        "workstations[w1].available[0]",
        "outside",
    ),
    (
        "duplicate pool",
        _append("pools", {"id": "axiom", "capacity": 1}),
        "pools[1].id",
        "duplicate pool id 'axiom'",
    ),
    (
        "pool capacity zero",
        _set("pools", 0, "capacity", value=0),
        "pools[axiom].capacity",
        "outside",
    ),
    ("pool capacity missing", _delete("pools", 0, "capacity"), "pools[axiom].capacity", "missing"),
    ("jobs an object", _set("jobs", value={}), "jobs", "array"),
    ("job a string", _set("jobs", 0, value="j1"), "jobs[0]", "object"),
    (
        "duplicate job",
        _set("jobs", 1, "id", value="j1"),
        "jobs[1].id",
        "duplicate job id 'j1'",
    ),
    ("job attended missing", _delete(J1, "attended"), "jobs[j1].attended", "missing"),
    ("job unknown field", _set(J1, "priority", value="P1"), "jobs[j1].priority", "unknown field"),
    ("attended negative", _set(J1, "attended", value=-1), "jobs[j1].attended", "outside"),
    ("machine negative", _set(J1, "machine", value=-600), "jobs[j1].machine", "outside"),
    ("machine huge", _set(J1, "machine", value=10**9 + 1), "jobs[j1].machine", "outside"),
    ("machine boolean", _set(J1, "machine", value=True), "jobs[j1].machine", "boolean"),
    ("weight negative", _set(J1, "weight", value=-1), "jobs[j1].weight", "outside"),
    ("weight huge", _set(J1, "weight", value=10**6 + 1), "jobs[j1].weight", "outside"),
    ("due a string", _set(J1, "due", value="tomorrow"), "jobs[j1].due", "integer"),
    ("severity 4", _set(J1, "severity", value=4), "jobs[j1].severity", "outside [0, 3]"),
    ("severity negative", _set(J1, "severity", value=-1), "jobs[j1].severity", "outside"),
    ("exposure negative", _set(J1, "exposure", value=-1), "jobs[j1].exposure", "outside"),
    (
        "exposure beyond attended",
        _set(J1, "exposure", value=61),
        "jobs[j1].exposure",
        "exceeds attended",
    ),
    (
        "unknown workstation in machine_by_workstation",
        _set(J1, "machine_by_workstation", value={"w1": 480, "w7": 300}),
        "jobs[j1].machine_by_workstation[w7]",
        "unknown workstation 'w7'",
    ),
    (
        "machine_by_workstation negative",
        _set(J1, "machine_by_workstation", value={"w1": -1}),
        "jobs[j1].machine_by_workstation[w1]",
        "outside",
    ),
    (
        "machine_by_workstation a list",
        _set(J1, "machine_by_workstation", value=["w1"]),
        "jobs[j1].machine_by_workstation",
        "object",
    ),
    ("unknown pool", _set(J1, "pools", value=["encase"]), "jobs[j1].pools[0]", "unknown pool"),
    (
        "pool twice",
        _set(J1, "pools", value=["axiom", "axiom"]),
        "jobs[j1].pools[1]",
        "listed twice",
    ),
    ("skills a string", _set(J1, "skills", value="mobile"), "jobs[j1].skills", "array"),
    (
        "unknown examiner in allow-list",
        _set(J1, "examiners", value=["e1", "e8"]),
        "jobs[j1].examiners[1]",
        "unknown examiner 'e8'",
    ),
    ("allow-list a string", _set(J1, "examiners", value="e1"), "jobs[j1].examiners", "array"),
    ("after a string", _set(J1, "after", value="j0"), "jobs[j1].after", "array"),
    ("after self", _set(J1, "after", value=["j1"]), "jobs[j1].after", "j1 -> j1"),
    (
        "cycle in after",
        _set(J1, "after", value=["j3"]),
        "jobs[j1].after",
        "cycle in predecessors: j1 -> j3 -> j1",
    ),
    (
        "pin unknown examiner",
        _set(J1, "pin", value={"examiner": "e9", "workstation": "w1", "start": 0}),
        "jobs[j1].pin.examiner",
        "unknown examiner 'e9'",
    ),
    (
        "pin unknown workstation",
        _set(J1, "pin", value={"examiner": "e1", "workstation": "w9", "start": 0}),
        "jobs[j1].pin.workstation",
        "unknown workstation 'w9'",
    ),
    (
        "pin without start",
        _set(J1, "pin", value={"examiner": "e1"}),
        "jobs[j1].pin.start",
        "missing",
    ),
    (
        "pin beyond horizon",
        _set(J1, "pin", value={"examiner": "e1", "start": 5000}),
        "jobs[j1].pin.start",
        "outside",
    ),
    ("pin a list", _set(J1, "pin", value=[0]), "jobs[j1].pin", "object"),
    (
        "previous unknown examiner",
        _set("previous", 0, "examiner", value="e5"),
        "previous[0].examiner",
        "unknown examiner 'e5'",
    ),
    (
        "previous unknown workstation",
        _set("previous", 0, "workstation", value="w5"),
        "previous[0].workstation",
        "unknown workstation 'w5'",
    ),
    ("previous without job", _delete("previous", 0, "job"), "previous[0].job", "missing"),
    (
        "previous twice for one job",
        _set("previous", 1, "job", value="j4"),
        "previous[1].job",
        "two previous assignments",
    ),
    (
        "previous negative start",
        _set("previous", 0, "start", value=-1),
        "previous[0].start",
        "outside",
    ),
    (
        "previous counting no change",
        _set("previous", 0, "changes", value=0),
        "previous[0].changes",
        "outside",
    ),
    (
        "previous changes not a number",
        _set("previous", 0, "changes", value="ten"),
        "previous[0].changes",
        "integer",
    ),
    (
        "previous frozen not a boolean",
        _set("previous", 0, "frozen", value=0),
        "previous[0].frozen",
        "true or false",
    ),
    ("frozen_until negative", _set("frozen_until", value=-1), "frozen_until", "outside"),
    ("weights a list", _set("weights", value=[1, 2]), "weights", "object"),
    ("weight term negative", _set("weights", "change", value=-50), "weights.change", "outside"),
    ("weight term huge", _set("weights", "tardiness", value=10**7), "weights.tardiness", "outside"),
    ("weight term unknown", _set("weights", "fairness", value=1), "weights.fairness", "unknown"),
]


@pytest.mark.parametrize(
    ("edit", "field", "fragment"),
    [case[1:] for case in REJECTIONS],
    ids=[case[0] for case in REJECTIONS],
)
def test_rejects_malformed_snapshot(edit: Edit, field: str, fragment: str) -> None:
    data = tiny()
    edit(data)
    with pytest.raises(SnapshotError) as info:
        snapshot_from_json(data)
    assert info.value.field == field
    assert str(info.value).startswith(f"{field}: ")
    assert fragment in str(info.value)


@pytest.mark.parametrize("data", [None, [], "labq.snapshot/1", 3, True, 2.5])
def test_rejects_non_object_top_level(data: object) -> None:
    with pytest.raises(SnapshotError, match="expected a JSON object"):
        snapshot_from_json(data)


def test_rejection_does_not_modify_the_input() -> None:
    data = tiny()
    job(data, "j1")["after"] = ["j3"]
    before = copy.deepcopy(data)
    with pytest.raises(SnapshotError):
        snapshot_from_json(data)
    assert data == before


def test_snapshot_error_is_a_value_error() -> None:
    assert issubclass(SnapshotError, ValueError)


_json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=True)
    | st.text(max_size=5)
    | st.sampled_from(["e0", "w0", "j0", "p0", "0", ""]),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner, max_size=3)
    ),
    max_leaves=6,
)


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix]
    if isinstance(node, dict):
        for key, value in node.items():
            found += _paths(value, (*prefix, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            found += _paths(value, (*prefix, index))
    return found


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(random_snapshots(), st.data())
def test_any_mutation_is_accepted_or_a_snapshot_error(lab: Snapshot, data: st.DataObject) -> None:
    """Never a traceback: whatever one field becomes, the parser answers or names the field."""
    document: Any = json.loads(json.dumps(snapshot_to_json(lab)))
    path = data.draw(st.sampled_from(_paths(document)[1:]))
    parent = document
    for key in path[:-1]:
        parent = parent[key]
    if isinstance(parent, dict) and data.draw(st.booleans()):
        del parent[path[-1]]
    else:
        parent[path[-1]] = data.draw(_json_values)
    try:
        snapshot_from_json(document)
    except SnapshotError as error:
        assert error.field is not None


def test_a_snapshot_written_lists_its_done_predecessors_and_reads_back() -> None:
    lab = generate_lab("small", 2)
    present = {j.id for j in lab.jobs}
    absent = {p for j in lab.jobs for p in j.after if p not in present}
    assert absent  # generated devices have finished earlier stages
    data = snapshot_to_json(lab)
    assert data["done"] == sorted(absent)
    assert snapshot_from_json(data) == lab


def test_an_offset_epoch_in_any_zone_is_accepted() -> None:
    for epoch in ("2026-11-30T08:00:00Z", "2026-11-30T09:00:00+01:00"):
        data = tiny()
        data["epoch"] = epoch
        assert snapshot_from_json(data).epoch == epoch


def test_a_skill_or_capability_nobody_has_is_accepted_with_a_warning() -> None:
    data = tiny()
    job(data, "j1")["skills"] = ["mobile", "drone"]
    job(data, "j3")["skills"] = ["drone"]
    job(data, "j3")["capabilities"] = ["chip_off"]
    lab = snapshot_from_json(data)
    assert snapshot_warnings(lab) == (
        PlanWarning(
            SKILL_UNAVAILABLE,
            "jobs[j1].skills",
            "no examiner has skill 'drone': 2 jobs needing it cannot be scheduled",
        ),
        PlanWarning(
            CAPABILITY_UNAVAILABLE,
            "jobs[j3].capabilities",
            "no workstation has capability 'chip_off': 1 job needing it cannot be scheduled",
        ),
    )
    assert snapshot_warnings(snapshot_from_json(tiny())) == ()


def test_a_frozen_placement_given_up_is_not_kept_and_reads_back() -> None:
    data = tiny()  # j4 is published at minute 0, inside the frozen window
    assert snapshot_from_json(data).kept["j4"].kind == "frozen"
    data["previous"][0]["frozen"] = False
    lab = snapshot_from_json(data)
    assert "j4" not in lab.kept and lab.kept["j6"].kind == "pin"
    written = snapshot_to_json(lab)
    assert written["previous"][0]["frozen"] is False and "frozen" not in written["previous"][1]
    assert snapshot_from_json(written) == lab
