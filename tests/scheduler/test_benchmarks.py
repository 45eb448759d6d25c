"""Benchmark readers map the classic shop instances onto the snapshot contract."""

from __future__ import annotations

from pathlib import Path

import pytest

from scheduler.benchmarks.external import plan_makespan
from scheduler.benchmarks.fjsp import read_fjs
from scheduler.benchmarks.jssp import jssp_snapshot, load_instances, read_jssp, reference
from scheduler.benchmarks.lab import LabResult
from scheduler.benchmarks.runner import gap
from scheduler.core.plan import Assignment, Plan, Unscheduled
from scheduler.core.snapshot import Snapshot, snapshot_from_json, snapshot_to_json

# The shared benchmark data sits beside the repository checkout.
BENCH = Path(__file__).resolve().parents[2].parent / "shared" / "bench"
FJSP = BENCH / "fjsp"
JSSP = BENCH / "jssp" / "benchmark_instances.json"
needs_bench = pytest.mark.skipif(not FJSP.exists(), reason="shared benchmark data not present")

TINY_FJS = """2 3 1.5
2  2 1 4 2 6  1 3 5
1  3 1 2 2 2 3 9
"""


def _round_trips(snapshot: Snapshot) -> None:
    assert snapshot_from_json(snapshot_to_json(snapshot)) == snapshot


def test_tiny_fjs(tmp_path: Path) -> None:
    path = tmp_path / "tiny.fjs"
    path.write_text(TINY_FJS)
    shop = read_fjs(path)
    assert shop.lab == "tiny"
    assert shop.objective == "makespan"
    assert [w.id for w in shop.workstations] == ["m1", "m2", "m3"]
    assert all(w.capacity == 1 for w in shop.workstations)
    first, second, third = shop.jobs
    assert (first.id, first.case, first.machine_by_workstation) == (
        "j1-1",
        "j1",
        {"m1": 4, "m2": 6},
    )
    assert (second.after, second.machine_by_workstation) == (("j1-1",), {"m3": 5})
    assert (third.id, third.after) == ("j2-1", ())
    assert third.machine_by_workstation == {"m1": 2, "m2": 2, "m3": 9}
    assert all(j.attended == 0 and j.due is None and not j.needs_examiner for j in shop.jobs)
    assert shop.horizon == 6 + 5 + 9
    _round_trips(shop)


@pytest.mark.parametrize(
    "text",
    ["", "2 3\n2 2 1 4 2 6 1 3 5\n", "1 3\n1 2 1 4\n", "1 3\n1 1 1 4 7\n", "1 2\n1 1 3 4\n"],
)
def test_malformed_fjs_is_refused(tmp_path: Path, text: str) -> None:
    path = tmp_path / "bad.fjs"
    path.write_text(text)
    with pytest.raises(ValueError, match="bad.fjs"):
        read_fjs(path)


@needs_bench
def test_mk01() -> None:
    shop = read_fjs(FJSP / "mk01.fjs")
    assert (len(shop.jobs), len(shop.workstations)) == (55, 6)
    assert len({j.case for j in shop.jobs}) == 10
    first = shop.jobs[0]
    assert first.machine_by_workstation == {"m1": 5, "m3": 4}
    assert shop.jobs[1].after == ("j1-1",)
    _round_trips(shop)


@needs_bench
@pytest.mark.parametrize(
    ("name", "operations", "machines"),
    [("mk02", 58, 6), ("mk05", 106, 4), ("mk08", 225, 10), ("mk10", 240, 15)],
)
def test_brandimarte_counts(name: str, operations: int, machines: int) -> None:
    shop = read_fjs(FJSP / f"{name}.fjs")
    assert (len(shop.jobs), len(shop.workstations)) == (operations, machines)
    _round_trips(shop)


@needs_bench
def test_ft06() -> None:
    shop = read_jssp(JSSP, "ft06")
    assert (len(shop.jobs), len(shop.workstations)) == (36, 6)
    assert shop.jobs[0].machine_by_workstation == {"m3": 1}
    assert shop.jobs[5].after == ("j1-5",)
    assert shop.horizon == 197
    assert reference(JSSP, "ft06").optimum == 55
    _round_trips(shop)


@needs_bench
def test_every_jssp_instance_fits_the_contract() -> None:
    for name, instance in load_instances(JSSP).items():
        _round_trips(jssp_snapshot(name, instance))


@needs_bench
def test_taillard_bounds_prefer_the_newer_file() -> None:
    ta41 = reference(JSSP, "ta41")
    assert ta41.optimum is None and ta41.upper_bound == 2005 and ta41.lower_bound == 1926


@needs_bench
def test_unknown_jssp_instance() -> None:
    with pytest.raises(ValueError, match="nope"):
        read_jssp(JSSP, "nope")


def test_lab_result_compares_avoidable_tardiness() -> None:
    result = LabResult(
        size="small",
        seed=1,
        examiners=8,
        jobs=300,
        baselines={"fifo": 900, "priority": 500, "wsjf": 600},
        tardiness=300,
        critical_path=100,
        bound=200,
        status="feasible",
        scheduled=250,
        first_plan_seconds=0.2,
        seconds=3.0,
        peak_rss_mb=100.0,
        violations=0,
    )
    assert result.best_baseline == "priority"
    assert (result.avoidable, result.baseline_avoidable) == (200, 400)
    assert result.ratio == 0.5
    assert result.ratio_above_bound == pytest.approx(100 / 300)
    assert result.gap == pytest.approx(1 / 3)


def test_gap_and_makespan() -> None:
    assert gap(100, 90) == pytest.approx(0.1)
    assert gap(0, 0) == 0.0
    assert gap(None, 5) is None and gap(5, None) is None
    plan = Plan("feasible", 9, None, 0.0, (Assignment("a", None, "m1", 0, 9),))
    assert plan_makespan(plan) == 9
    incomplete = Plan("feasible", 9, None, 0.0, plan.assignments, (Unscheduled("b", "x"),))
    assert plan_makespan(incomplete) is None
