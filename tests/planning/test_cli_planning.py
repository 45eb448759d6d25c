"""`labq worker`, `labq reoptimize` and `labq demo` on real databases, through the real CLI."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from lab_builders import make_lab, small_lab
from sqlalchemy import select, update
from typer.testing import CliRunner

from api.cli import app
from models import Job, JobPredecessor, Lab, SolveRun
from scheduler import db
from scheduler.db import make_engine, session_scope
from scheduler.migrate import upgrade
from scheduler.planning.publish import current_version
from scheduler.planning.runs import queue_run
from scheduler.services.labs import get_lab
from scheduler.settings import get_settings


@pytest.fixture
def cli_url(backend, fresh_databases, monkeypatch) -> Iterator[str]:
    url = fresh_databases.url(backend)
    upgrade(url)
    monkeypatch.setenv("LABQ_DATABASE_URL", url)
    get_settings.cache_clear()
    db.get_engine.cache_clear()
    yield url
    db.get_engine().dispose()
    get_settings.cache_clear()
    db.get_engine.cache_clear()


def _labs(url: str, *codes: str) -> None:
    engine = make_engine(url)
    with session_scope(engine) as session:
        for code in codes:
            small_lab(session, code, cases=3)
    engine.dispose()


def _current(url: str, code: str) -> int | None:
    engine = make_engine(url)
    with session_scope(engine) as session:
        version = current_version(session, get_lab(session, code))
        found = version.id if version is not None else None
    engine.dispose()
    return found


def test_reoptimize_names_a_failed_lab_which_keeps_its_schedule(cli_url):
    _labs(cli_url, "east", "west")
    first = CliRunner().invoke(
        app, ["reoptimize", "--lab", "east", "--lab", "west", "--publish", "--policy", "fifo"]
    )
    assert first.exit_code == 0, first.output
    assert "re-optimization of 2 lab(s)" in first.output
    assert _current(cli_url, "east") is not None
    kept, east_before = _current(cli_url, "west"), _current(cli_url, "east")
    engine = make_engine(cli_url)
    with session_scope(engine) as session:  # corrupt west behind the services' back
        session.execute(update(Lab).where(Lab.code == "west").values(timezone="Nowhere/Atlantis"))
    engine.dispose()
    result = CliRunner().invoke(
        app, ["reoptimize", "--all-labs", "--publish", "--policy", "fifo", "--time-limit", "2"]
    )
    assert result.exit_code == 1
    assert "failed for lab(s): west" in " ".join(result.output.split())
    assert _current(cli_url, "west") == kept
    assert _current(cli_url, "east") not in (None, east_before)  # east was re-published


def test_reoptimize_summary_is_never_cut_when_piped_and_reads_as_json(cli_url):
    import json

    _labs(cli_url, "north-east-region")
    args = ["reoptimize", "--all-labs", "--publish", "--policy", "fifo"]
    piped = CliRunner().invoke(app, args)  # not a terminal, as under cron
    assert piped.exit_code == 0, piped.output
    lines = piped.stdout.splitlines()
    header = next(line for line in lines if line.startswith("lab "))
    row = next(line for line in lines if line.startswith("north-east-region "))
    assert header.split()[0] == "lab" and "weighted tardiness" in header
    assert header.rstrip().endswith("published")
    assert " succeeded " in row and "version " in row  # whole words, no "succe…"
    assert "…" not in piped.stdout and len(header) > 80
    as_json = CliRunner().invoke(app, [*args, "--format", "json"])
    assert as_json.exit_code == 0, as_json.output
    (summary,) = json.loads(as_json.stdout)
    assert summary["lab"] == "north-east-region" and summary["status"] == "succeeded"
    assert summary["published"].startswith("version ")


def test_reoptimize_lists_the_records_it_could_not_plan(cli_url):
    _labs(cli_url, "south")
    engine = make_engine(cli_url)
    with session_scope(engine) as session:  # a cycle of predecessors, behind the services' back
        lab = get_lab(session, "south")
        acquire, review = (
            session.scalar(select(Job.id).where(Job.lab_id == lab.id, Job.external_ref == ref))
            for ref in ("acquire", "review")
        )
        session.add(JobPredecessor(job_id=acquire, predecessor_id=review))
    engine.dispose()
    result = CliRunner().invoke(
        app, ["reoptimize", "--lab", "south", "--publish", "--policy", "fifo", "--time-limit", "2"]
    )
    assert result.exit_code == 0, result.output
    output = " ".join(result.output.split())
    assert "1 stored record(s) cannot be planned" in output
    assert "cycle in predecessors" in output
    assert _current(cli_url, "south") is not None


def test_reoptimize_skips_a_lab_with_nothing_to_plan_and_queues_no_run_for_it(cli_url):
    _labs(cli_url, "busy")
    engine = make_engine(cli_url)
    with session_scope(engine) as session:
        make_lab(session, "idle")
    result = CliRunner().invoke(app, ["reoptimize", "--all-labs", "--policy", "fifo"])
    assert result.exit_code == 0, result.output
    rows = {line.split()[0]: line for line in result.stdout.splitlines() if line.strip()}
    assert " skipped " in rows["idle"] and rows["idle"].rstrip().endswith("unchanged")
    assert " succeeded " in rows["busy"]
    with session_scope(engine) as session:
        queued = session.scalars(
            select(Lab.code).join(SolveRun, SolveRun.lab_id == Lab.id).order_by(Lab.code)
        ).all()
    engine.dispose()
    assert queued == ["busy"]


def test_reoptimize_needs_labs(cli_url):
    result = CliRunner().invoke(app, ["reoptimize"])
    assert result.exit_code == 2
    unknown = CliRunner().invoke(app, ["reoptimize", "--lab", "nowhere"])
    assert unknown.exit_code == 1
    assert "does not exist" in unknown.output


def test_worker_once_executes_a_queued_run(cli_url):
    _labs(cli_url, "solo")
    engine = make_engine(cli_url)
    with session_scope(engine) as session:
        run_id = queue_run(
            session, get_lab(session, "solo"), actor="t", auto_publish=True, time_limit_seconds=1
        ).run.id
    result = CliRunner().invoke(
        app, ["worker", "--once", "--policy", "fifo", "--id", "w-cli", "--solver-threads", "1"]
    )
    assert result.exit_code == 0, result.output
    with session_scope(engine) as session:
        run = session.get(SolveRun, run_id)
        assert (run.status, run.worker_id) == ("succeeded", "w-cli")
    engine.dispose()
    assert _current(cli_url, "solo") is not None


def test_demo_seeds_solves_publishes_and_writes_a_gantt_page(cli_url, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(app, ["demo", "--time-limit", "3"])
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    assert "published schedule version" in text
    assert "every hard rule holds" in text
    assert "Backlog by priority" in text and "Exposure per examiner" in text
    # Figures with units and names: the bottleneck, late urgent cases, a severity legend, the URL.
    assert "Bottleneck: AXIOM licences (2) are " in text and " busy in shift hours (" in text
    assert "weighted tardiness" not in text and "up to 3" not in text
    assert "Severity of the material in a review: 1 mild, 2 moderate, 3 most severe" in text
    assert text.endswith("labq serve, then http://127.0.0.1:8000/ui/")
    page = (tmp_path / "labq-gantt.html").read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>")
    assert "E01" in page and "GK1" in page and "<script" not in page
    assert _current(cli_url, "north") is not None


def test_the_demo_summary_names_late_urgent_cases_in_lab_time():
    from io import StringIO

    from rich.console import Console

    from api.cli_planning import show_demo
    from scheduler.planning.demo import DemoResult

    kpis = {
        "scheduled": 3,
        "unscheduled": 1,
        "start_on_time_by_level": {"P1": {"cases": 2, "on_time": 1, "already_late": 0}},
        "late_cases_by_level": {
            "P1": [
                {
                    "case": "CR-2026-0401",
                    "target_start": "2026-12-04T06:13:00+00:00",
                    "expected_start": "2026-12-04T13:00:00+00:00",
                }
            ]
        },
        "jobs_on_time_by_level": {"P1": {"jobs": 4, "scheduled": 3, "on_time": 3}},
        "gap": 0.25,
    }
    result = DemoResult("north", 1, "succeeded", None, 1.0, 1, kpis, timezone="America/New_York")
    out = StringIO()
    show_demo(result, Console(file=out, width=200))
    text = out.getvalue()
    assert (
        "P1: 1 of 2 waiting cases start on target; late: CR-2026-0401 "
        "(target Fri 04 Dec 01:13, expected Fri 04 Dec 08:00)"
    ) in text
    assert "1 of 4 open jobs are expected to end after their due time" in text
    assert "optimality gap 25 %" in text
