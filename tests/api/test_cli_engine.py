"""The engine commands of the CLI: exit codes, files written, figures printed."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from api import cli_engine
from scheduler.core.plan import plan_from_json
from scheduler.core.snapshot import load_snapshot
from scheduler.core.verify import verify

BENCH = Path(__file__).resolve().parents[2].parent / "shared" / "bench"

app = typer.Typer()
cli_engine.register(app)
runner = CliRunner()


def tiny_snapshot() -> dict[str, Any]:
    """One examiner, one imager: acquire then review, both fit on day one."""
    return {
        "format": "labq.snapshot/1",
        "lab": "tiny",
        "epoch": "2026-11-30T08:00:00+00:00",
        "horizon": 2880,
        "days": [[0, 1440], [1440, 2880]],
        "weeks": [[0, 2880]],
        "examiners": [
            {"id": "e1", "skills": ["computer", "review"], "available": [[0, 510], [1440, 1950]]}
        ],
        "workstations": [{"id": "w1", "capabilities": ["imager"], "capacity": 1}],
        "jobs": [
            {
                "id": "j1",
                "case": "c1",
                "weight": 100,
                "release": 0,
                "due": 600,
                "attended": 30,
                "machine": 120,
                "skills": ["computer"],
                "capabilities": ["imager"],
            },
            {
                "id": "j2",
                "case": "c1",
                "weight": 100,
                "release": 0,
                "due": 480,
                "attended": 60,
                "machine": 0,
                "skills": ["review"],
                "after": ["j1"],
            },
        ],
    }


def write(tmp_path: Path, data: object, name: str = "snapshot.json") -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(data))
    return path


@pytest.mark.parametrize("policy", ["cpsat", "fifo", "wsjf"])
def test_solve_writes_a_verified_plan(tmp_path: Path, policy: str) -> None:
    source = write(tmp_path, tiny_snapshot())
    out = tmp_path / "plan.json"
    result = runner.invoke(
        app,
        ["solve", str(source), "-o", str(out), "--policy", policy, "--time-limit", "5"]
        + ["--workers", "1"],
    )
    assert result.exit_code == 0, result.output
    plan = plan_from_json(json.loads(out.read_text()))
    assert verify(load_snapshot(source), plan) == []
    ends = {a.job: a.end for a in plan.assignments}
    assert ends == {"j1": 120, "j2": 180}
    assert plan.terms["tardiness"] == 0
    for label in ("status", "objective", "bound", "gap", "scheduled   2", "unscheduled 0", "time"):
        assert label in result.stdout
    assert "verified    every hard rule holds (2 assignments and 0 left out" in result.stdout
    assert "warning" not in result.stdout and "warnings" not in json.loads(out.read_text())


def test_solve_reports_a_skill_nobody_has_in_its_output_and_the_plan(tmp_path: Path) -> None:
    data = tiny_snapshot()
    data["jobs"][1]["skills"] = ["drone"]
    out = tmp_path / "plan.json"
    result = runner.invoke(
        app, ["solve", str(write(tmp_path, data)), "-o", str(out), "--workers", "1"]
    )
    assert result.exit_code == 0, result.output
    said = " ".join(result.stdout.split())
    assert "warning jobs[j2].skills: no examiner has skill 'drone'" in said
    (warning,) = json.loads(out.read_text())["warnings"]
    assert warning["code"] == "skill_unavailable" and warning["field"] == "jobs[j2].skills"


@pytest.mark.parametrize(
    ("field", "value", "named"),
    [
        ("after", ["nope"], "jobs[j2].after[0]: unknown job 'nope'"),
        ("epoch", "2026-11-30T08:00:00", "epoch: needs a UTC offset"),
        ("priority", "P1", "jobs[j2].priority: unknown field"),
    ],
)
def test_solve_refuses_what_the_contract_does_not_allow(
    tmp_path: Path, field: str, value: object, named: str
) -> None:
    data = tiny_snapshot()
    if field == "epoch":
        data["epoch"] = value
    else:
        data["jobs"][1][field] = value
    result = runner.invoke(app, ["solve", str(write(tmp_path, data))])
    assert result.exit_code == 2
    assert named in " ".join(result.stderr.split())


def test_solve_malformed_snapshot_names_the_field(tmp_path: Path) -> None:
    data = tiny_snapshot()
    data["jobs"][0]["machine_by_workstation"] = {"w9": 60}
    result = runner.invoke(app, ["solve", str(write(tmp_path, data))])
    assert result.exit_code == 2
    assert "jobs[j1].machine_by_workstation" in result.stderr
    assert "Traceback" not in result.output


@pytest.mark.parametrize("text", ["{not json", "[]", '{"format": "labq.snapshot/1"}'])
def test_solve_refuses_what_is_not_a_snapshot(tmp_path: Path, text: str) -> None:
    path = tmp_path / "bad.json"
    path.write_text(text)
    result = runner.invoke(app, ["solve", str(path)])
    assert result.exit_code == 2
    assert "malformed snapshot" in result.stderr


def test_solve_missing_file(tmp_path: Path) -> None:
    result = runner.invoke(app, ["solve", str(tmp_path / "absent.json")])
    assert result.exit_code == 2
    assert "absent.json" in result.stderr


def test_solve_internal_failure_exits_1(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*_: object, **__: object) -> None:
        raise RuntimeError("solver exploded")

    monkeypatch.setattr("scheduler.benchmarks.runner.solve_snapshot", broken)
    result = runner.invoke(app, ["solve", str(write(tmp_path, tiny_snapshot()))])
    assert result.exit_code == 1
    assert "solver exploded" in result.stderr
    assert "Traceback" not in result.output


def test_solve_refuses_to_write_an_invalid_plan(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from scheduler.benchmarks import runner as engine
    from scheduler.core.plan import Plan

    monkeypatch.setattr(
        engine,
        "solve_snapshot",
        lambda *_, **__: engine.Timed(Plan("feasible", 0, 0, 0.0, ()), 0.0, None),
    )
    out = tmp_path / "plan.json"
    result = runner.invoke(app, ["solve", str(write(tmp_path, tiny_snapshot())), "-o", str(out)])
    assert result.exit_code == 1
    assert "breaks" in result.stderr
    assert not out.exists()


def test_generate_writes_a_valid_snapshot(tmp_path: Path) -> None:
    out = tmp_path / "lab.json"
    result = runner.invoke(app, ["generate", "--size", "small", "--seed", "3", "-o", str(out)])
    assert result.exit_code == 0, result.output
    snapshot = load_snapshot(out)
    assert snapshot.lab == "synthetic-small-3"
    assert f"{len(snapshot.jobs)} jobs" in result.stdout


def test_generate_refuses_unknown_size(tmp_path: Path) -> None:
    result = runner.invoke(app, ["generate", "--size", "huge", "-o", str(tmp_path / "x.json")])
    assert result.exit_code == 2


def test_bench_fjsp_on_a_tiny_instance(tmp_path: Path) -> None:
    (tmp_path / "tiny.fjs").write_text("2 2 1.5\n2 2 1 3 2 5 1 2 4\n1 1 1 2\n")
    (tmp_path / "bks.json").write_text(
        json.dumps({"instances": {"tiny": {"lower_bound": 7, "upper_bound": 7}}})
    )
    # One worker: the makespan is then found by counted work, however loaded the machine.
    result = runner.invoke(
        app, ["bench", "fjsp", str(tmp_path), "--time-limit", "2", "--workers", "1"]
    )
    assert result.exit_code == 0, result.output
    assert "tiny: makespan 7 (best known 7, gap 0.0 %)" in result.stdout
    assert "mean gap to best known: labq 0.0 %" in result.stdout
    assert "ortools" in result.stdout


def test_bench_fjsp_unknown_instance(tmp_path: Path) -> None:
    result = runner.invoke(app, ["bench", "fjsp", str(tmp_path), "--instances", "mk99"])
    assert result.exit_code == 2
    assert "mk99" in result.stderr


@pytest.mark.skipif(not BENCH.exists(), reason="shared benchmark data not present")
def test_bench_jssp_ft06() -> None:
    result = runner.invoke(
        app, ["bench", "jssp", str(BENCH / "jssp"), "--instances", "ft06", "--time-limit", "5"]
    )
    assert result.exit_code == 0, result.output
    assert "ft06: makespan" in result.stdout
    assert "best known 55" in result.stdout


def test_bench_lab_small() -> None:
    result = runner.invoke(
        app, ["bench", "lab", "--sizes", "small", "--seeds", "1", "--time-limit", "2"]
    )
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "small seed 1: 8 examiners" in out
    for label in ("fifo", "priority", "wsjf", "optimizer", "avoidable", "ratio", "bound", "gap"):
        assert label in out
    assert "first plan" in out and "peak RSS" in out and "ortools" in out


def test_bench_lab_prints_the_anytime_profile_of_one_solve() -> None:
    args = ["bench", "lab", "--seeds", "1", "--time-limit", "1", "--workers", "1"]
    result = runner.invoke(app, [*args, "--profile", "1,2"])
    assert result.exit_code == 0, result.output
    line = next(x for x in result.stdout.splitlines() if x.strip().startswith("anytime"))
    values = [int(v.replace(",", "")) for v in re.findall(r"s ([\d,]+) \(gap", line)]
    assert len(values) == 2 and values[1] <= values[0]  # the best known never gets worse
    assert "time limit 2 s" in result.stdout  # one solve, run to the last checkpoint
    # where the neighbourhood search's time went: model building against solving, per kind
    search = next(x for x in result.stdout.splitlines() if x.strip().startswith("search"))
    assert "neighbourhoods" in search and "build" in search and "solve" in search
    kinds = next(x for x in result.stdout.splitlines() if x.strip().startswith("by kind"))
    assert "ms solve" in kinds


def test_bench_lab_reports_the_cheap_moves_it_was_asked_for() -> None:
    args = ["bench", "lab", "--seeds", "1", "--time-limit", "3", "--workers", "1"]
    without = runner.invoke(app, args)
    assert without.exit_code == 0, without.output
    assert not any(x.strip().startswith("moves") for x in without.stdout.splitlines())
    result = runner.invoke(app, [*args, "--moves", "0.2"])
    assert result.exit_code == 0, result.output
    line = next(x for x in result.stdout.splitlines() if x.strip().startswith("moves"))
    tried, accepted = (int(v) for v in re.findall(r"(\d+) (?:tried|accepted)", line))
    assert tried > 0 and 0 <= accepted <= tried
    assert "a minute of its clock" in line


@pytest.mark.parametrize(("option", "value"), [("--sizes", "huge"), ("--seeds", "one")])
def test_bench_lab_refuses_bad_lists(option: str, value: str) -> None:
    result = runner.invoke(app, ["bench", "lab", option, value])
    assert result.exit_code == 2
    assert value in result.stderr
