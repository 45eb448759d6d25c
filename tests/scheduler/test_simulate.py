"""`labq simulate`: a few days of a small lab through the real app, worker and clock.

The simulation drives the production app over HTTP (ASGI transport) and a worker thread on a
SQLite database, so these tests are the service's invariants under a living lab: no API error,
no exposure cap broken, every open job scheduled or left out with a reason every day, and the
same figures for the same seed (one CP-SAT worker).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from api.cli import app
from scheduler.simulate.driver import Placement, Published, SimConfig, SimJob, simulate
from scheduler.simulate.events import START, job_draws, scenario
from scheduler.simulate.metrics import Recorder, percentile, working_days_between

SHORT = SimConfig(size="small", days=4, seed=3, policy="cpsat", workers=1, time_limit=2)


@pytest.fixture(scope="module")
def short_run() -> dict[str, Any]:
    return simulate(SHORT)


def _figures(result: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in result.items() if k != "timings"}


def test_the_event_stream_depends_on_the_seed_alone() -> None:
    first, again, other = (
        scenario("small", 1, 20),
        scenario("small", 1, 20),
        scenario("small", 2, 20),
    )
    assert first.events == again.events and first.backlog == again.backlog
    assert first.events != other.events
    kinds = {e.kind for e in scenario("medium", 1, 30).events}
    assert {"arrival", "device", "absence"} <= kinds and kinds & {"flag", "link", "escalate"}
    assert all(e.at >= START.replace(hour=0) for e in first.events)
    assert job_draws(1, "c1/d1/acquire") == job_draws(1, "c1/d1/acquire")
    assert job_draws(1, "c1/d1/acquire") != job_draws(2, "c1/d1/acquire")


def test_escalations_only_raise_a_level_of_a_known_case() -> None:
    """Explicit escalations go only to a more urgent level, and only cases already received are
    escalated or linked, so the API refuses none."""
    levels = ("P1", "P2", "P3", "P4", "P5")
    s = scenario("medium", 2, 60)
    current = dict(s.levels)
    known = {c for c in s.levels if c.startswith("c")}  # the backlog
    for event in s.events:
        if event.kind == "arrival":
            known.add(event.case)
        elif event.kind in ("escalate", "flag", "link"):
            assert event.case in known and (not event.other or event.other in known), event
        if event.kind == "escalate":
            assert levels.index(event.level) < levels.index(current[event.case])
            current[event.case] = event.level
        elif event.kind == "flag":
            current[event.case] = levels[max(0, levels.index(current[event.case]) - 1)]
        elif event.kind == "link":
            top = min(levels.index(current[event.case]), levels.index(current[event.other]))
            current[event.case] = levels[top]


def test_working_days_and_percentiles() -> None:
    friday = datetime(2027, 1, 8, 10, tzinfo=UTC)
    monday = datetime(2027, 1, 11, 9, tzinfo=UTC)
    assert working_days_between(friday, monday) == 1
    assert working_days_between(monday, friday) == -1
    assert working_days_between(friday, friday) == 0
    assert percentile([], 0.9) is None
    assert percentile([1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 0.9) == 9
    assert percentile([4.0], 0.5) == 4.0


def test_a_short_simulation_keeps_the_invariants(short_run: dict[str, Any]) -> None:
    assert short_run["api"]["errors"] == 0, short_run["api"]["first_errors"]
    assert short_run["api"]["calls"] > 100  # the lab really worked: starts, dones, logs, reads
    assert short_run["runs"]["failed"] == 0, short_run["runs"]["first_failed"]
    assert short_run["exposure"]["breaches"] == 0, short_run["exposure"]["first_breaches"]
    invariants = short_run["invariants"]
    assert invariants["days_checked"] >= 3
    assert invariants["open_jobs_missing"] == 0, invariants["first"]
    assert invariants["left_out_without_reason"] == 0, invariants["first"]
    assert short_run["jobs_done"] > 0  # work got done (a case of many reviews takes longer)


def test_the_same_seed_gives_the_same_figures() -> None:
    """The event stream, the people's behaviour and the waits for each run are reproducible.
    Strict priority dispatch solves in a fraction of its generous limit, so no phase of a solve
    is cut by wall time even on a loaded machine (with CP-SAT and one worker a solve is the same
    too, unless the machine is so slow that a phase runs into three times its share of the
    limit: docs/architecture.md §5.9)."""
    config = SimConfig(size="small", days=4, seed=3, policy="priority", workers=1, time_limit=30)
    first = simulate(config)
    assert first["api"]["calls"] > 100
    assert _figures(simulate(config)) == _figures(first)


def test_the_command_compares_both_policies_and_writes_json(tmp_path: Path) -> None:
    out = tmp_path / "figures.json"
    result = CliRunner().invoke(
        app,
        ["simulate", "--compare", "--days", "2", "--seed", "2", "--time-limit", "2",
         "--out", str(out)],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "P1 SLA attainment" in result.output and "API errors" in result.output
    figures = json.loads(out.read_text())
    assert set(figures) == {"cpsat", "priority"}
    for policy, run in figures.items():
        assert run["config"]["policy"] == policy
        assert run["api"]["errors"] == 0
    # Both policies were given the same lab and the same events.
    assert figures["cpsat"]["config"] == {**figures["priority"]["config"], "policy": "cpsat"}


def _recorder() -> Recorder:
    recorder = Recorder(SHORT, scenario("small", 1, 1))
    recorder.caps = {"e1": (240, 120, 900, True), "e2": (240, 120, 900, True)}
    return recorder


def _job(job_id: int, exposure: int, severity: int = 2) -> SimJob:
    return SimJob(job_id, f"c1/d1/review{job_id}", "c1", 240, 0, exposure, severity, ())


def test_the_recorder_counts_a_planned_or_logged_exposure_breach() -> None:
    now = datetime(2027, 1, 5, 2, 30, tzinfo=UTC)
    day = datetime(2027, 1, 5, 8, tzinfo=UTC)
    jobs = {1: _job(1, 150, 3), 2: _job(2, 60), 3: _job(3, 100)}
    version = Published(
        1,
        "full",
        1.0,
        {
            1: Placement("e1", None, day, day + timedelta(hours=4)),
            2: Placement("e1", None, day + timedelta(hours=4), day + timedelta(hours=5)),
            3: Placement("e2", None, day, day + timedelta(hours=2)),
        },
        {},
    )
    recorder = _recorder()
    recorder.publication(now, version, None, jobs, {("e2", "2027-01-05"): 150}, nightly=True)
    # e1: 210 planned minutes are within 240, but 150 severe ones are over 120; e2: 150 logged
    # plus 100 planned are over 240.
    assert recorder.breaches == {
        ("severe_daily", "e1", "2027-01-05"),
        ("daily", "e2", "2027-01-05"),
    }
    assert recorder.weekly == [210, 250]


def test_the_recorder_measures_nightly_churn_over_three_working_days() -> None:
    friday = datetime(2027, 1, 8, 2, 30, tzinfo=UTC)
    jobs = {n: _job(n, 0, 0) for n in range(1, 5)}

    def at(days: int) -> Placement:
        start = friday + timedelta(days=days, hours=6)
        return Placement("e1", None, start, start + timedelta(hours=1))

    # Friday, Monday and Tuesday are the next three working days; Wednesday is outside.
    before = Published(1, "full", 1.0, {1: at(0), 2: at(3), 3: at(4), 4: at(5)}, {})
    after = Published(2, "full", 1.0, {1: at(0), 2: at(4), 4: at(6)}, {})
    recorder = _recorder()
    recorder.publication(friday, after, before, jobs, {}, nightly=True)
    assert recorder.churn == [
        {
            "night": "2027-01-08",
            "compared": 3,
            "changed": 2,
            "percent": 66.67,
            # job 2 moved from Monday to Tuesday, job 3 left the plan
            "by_kind": {"removed": 1, "resource": 0, "day": 1, "time": 0},
        }
    ]
