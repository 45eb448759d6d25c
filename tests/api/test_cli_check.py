"""`labq verify` and `labq replay`: exit codes, every violation listed whole, differences."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import typer
from typer.testing import CliRunner

from api import cli_check

SCHEDULER_TESTS = Path(__file__).resolve().parents[1] / "scheduler"
DATA = SCHEDULER_TESTS / "data"
GOLDEN = SCHEDULER_TESTS / "golden"

app = typer.Typer()
cli_check.register(app)
runner = CliRunner()


def _plan() -> dict[str, Any]:
    data: dict[str, Any] = json.loads((DATA / "tiny_lab_plan.json").read_text())
    return data


def _write(tmp_path: Path, data: object, name: str = "plan.json") -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(data))
    return path


def test_verify_accepts_a_valid_plan() -> None:
    result = runner.invoke(
        app, ["verify", str(DATA / "tiny_lab.json"), str(DATA / "tiny_lab_plan.json")]
    )
    assert result.exit_code == 0, result.output
    assert "valid: every hard rule holds (5 assignments, 1 unscheduled" in result.stdout


def test_verify_lists_every_broken_rule_in_full_when_piped(tmp_path: Path) -> None:
    plan = _plan()
    plan["assignments"][0]["examiner"] = "e9"  # no such examiner
    plan["assignments"][3]["start"] = 1000  # j4 moved out of e2's shift, end left as it was
    result = runner.invoke(
        app, ["verify", str(DATA / "tiny_lab.json"), str(_write(tmp_path, plan))]
    )
    assert result.exit_code == 1, result.output
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["rule", "job", "detail"]
    rules = {line.split()[0] for line in lines[1:]}
    assert {"examiner_unknown", "end"} <= rules
    # Nothing is cut to 80 columns: the longest detail is printed whole on its own line.
    assert any("end is 30, expected 1030" in line for line in lines)
    assert f"breaks {len(lines) - 1} rule(s)" in result.stderr


def test_verify_as_json_and_csv(tmp_path: Path) -> None:
    plan = _plan()
    plan["assignments"][0]["examiner"] = "e9"
    path = str(_write(tmp_path, plan))
    result = runner.invoke(app, ["verify", str(DATA / "tiny_lab.json"), path, "--format", "json"])
    assert result.exit_code == 1
    document = json.loads(result.stdout)
    assert document["valid"] is False
    assert {"rule": "examiner_unknown", "job": "j1"}.items() <= document["violations"][0].items()
    csv = runner.invoke(app, ["verify", str(DATA / "tiny_lab.json"), path, "--format", "csv"])
    assert csv.exit_code == 1
    assert csv.stdout.splitlines()[0] == "rule,job,detail"


def test_verify_checks_the_stated_objective(tmp_path: Path) -> None:
    plan = _plan()
    plan["objective"] = 12345
    result = runner.invoke(
        app, ["verify", str(DATA / "tiny_lab.json"), str(_write(tmp_path, plan))]
    )
    assert result.exit_code == 1
    assert "the plan states 12,345; it costs" in result.stdout


def test_verify_names_the_field_of_a_malformed_file(tmp_path: Path) -> None:
    plan = _plan()
    plan["assignments"][0]["start"] = "soon"
    result = runner.invoke(
        app, ["verify", str(DATA / "tiny_lab.json"), str(_write(tmp_path, plan))]
    )
    assert result.exit_code == 2
    assert "malformed plan: assignments[j1].start" in result.stderr
    snapshot = json.loads((DATA / "tiny_lab.json").read_text())
    snapshot["epoch"] = "2026-11-30T08:00:00"
    bad = _write(tmp_path, snapshot, "snapshot.json")
    result = runner.invoke(app, ["verify", str(bad), str(DATA / "tiny_lab_plan.json")])
    assert result.exit_code == 2
    assert "malformed snapshot: epoch" in result.stderr


def test_verify_reports_a_skill_nobody_has_as_a_warning(tmp_path: Path) -> None:
    snapshot = json.loads((DATA / "tiny_lab.json").read_text())
    snapshot["jobs"][-1]["skills"] = ["drone"]
    path = _write(tmp_path, snapshot, "snapshot.json")
    result = runner.invoke(app, ["verify", str(path), str(DATA / "tiny_lab_plan.json")])
    assert "no examiner has skill 'drone'" in result.stdout


def _golden(tmp_path: Path) -> Path:
    folder = tmp_path / "incidents"
    shutil.copytree(GOLDEN, folder)
    return folder


def test_replay_of_the_golden_files_matches_their_records(tmp_path: Path) -> None:
    result = runner.invoke(app, ["replay", str(_golden(tmp_path)), "--time-limit", "2"])
    assert result.exit_code == 0, result.output
    for name in ("clashing_pins", "review_queue", "tiny_shop"):
        assert f"{name}: " in result.stdout
        assert f"same figures as {name}.expected.json" in result.stdout
    assert "differences" not in result.stdout


def test_replay_lists_each_figure_that_differs_and_exits_1(tmp_path: Path) -> None:
    folder = _golden(tmp_path)
    expected = folder / "tiny_shop.expected.json"
    record = json.loads(expected.read_text())
    record["objective"] = 7  # one less than the optimum: a replay can never match it
    expected.write_text(json.dumps(record))
    result = runner.invoke(app, ["replay", str(folder), "--time-limit", "2", "--format", "csv"])
    assert result.exit_code == 1, result.output
    assert result.stdout.splitlines() == [
        "snapshot,figure,recorded,replayed,change",
        "tiny_shop,objective,7,8,+1",
    ]


def test_replay_records_a_plan_where_none_is_and_then_compares_with_it(tmp_path: Path) -> None:
    folder = tmp_path / "incidents"
    folder.mkdir()
    shutil.copy(DATA / "tiny_lab.json", folder / "tiny.snapshot.json")
    first = runner.invoke(app, ["replay", str(folder), "--time-limit", "2", "--record"])
    assert first.exit_code == 0, first.output
    assert "recorded tiny.plan.json" in first.stdout
    assert json.loads((folder / "tiny.plan.json").read_text())["format"] == "labq.plan/1"
    again = runner.invoke(app, ["replay", str(folder), "--time-limit", "2"])
    assert again.exit_code == 0, again.output
    assert "same figures as tiny.plan.json" in again.stdout


def test_replay_refuses_a_folder_without_snapshots(tmp_path: Path) -> None:
    result = runner.invoke(app, ["replay", str(tmp_path)])
    assert result.exit_code == 2
    assert "no *.snapshot.json" in result.stderr
