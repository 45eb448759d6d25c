"""A worker's log with LABQ_LOG_FORMAT=json, as `labq worker` writes it in a process of its own:
one JSON object a line, each line about the run naming the run, its lab and the worker, and the
run's course told in order: claimed, loaded, progress, solved (objective and bound), verified,
published."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from lab_builders import small_lab

from scheduler.db import session_scope
from scheduler.planning.runs import queue_run

WORKER = "w-logs"


def test_a_worker_logs_each_step_of_a_run_as_json_lines(shared_engine, lab_code):
    with session_scope(shared_engine) as session:
        lab = small_lab(session, lab_code, cases=3)
        run_id = queue_run(
            session, lab, actor="sup", auto_publish=True, time_limit_seconds=2
        ).run.id
    env = {k: v for k, v in os.environ.items() if not k.startswith("LABQ_")}
    env.update(
        LABQ_DATABASE_URL=shared_engine.url.render_as_string(hide_password=False),
        LABQ_LOG_FORMAT="json",
        LABQ_LOG_LEVEL="INFO",
        PYTHONPATH=os.pathsep.join(filter(None, [os.getcwd(), env.get("PYTHONPATH")])),
    )
    command = [sys.executable, "-c", "from api.cli import main; main()", "worker", "--once"]
    done = subprocess.run(
        [*command, "--id", WORKER, "--no-webhooks"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    text = [line for line in done.stderr.splitlines() if line.strip()]
    assert text[-1] == "executed one run"  # the command's own word to its user, not a log line
    lines = [json.loads(line) for line in text[:-1]]  # every log line parses
    for line in lines:
        assert {"time", "level", "logger", "message"} <= line.keys()
    about_run = [line for line in lines if line.get("run_id") == run_id]
    for line in about_run:
        assert (line["lab"], line["worker_id"]) == (lab_code, WORKER), line
    events = [line["event"] for line in about_run if "event" in line]
    assert events[:2] == ["claimed", "loaded"]
    assert "progress" in events
    assert events[-3:] == ["solved", "verified", "published"]
    assert events.index("progress") < events.index("solved")
    solved = next(line for line in about_run if line.get("event") == "solved")
    assert isinstance(solved["objective"], int) and "bound" in solved
    published = about_run[-1]
    assert published["level"] == "INFO" and isinstance(published["version"], int)
