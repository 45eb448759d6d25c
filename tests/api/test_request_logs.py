"""With LABQ_LOG_FORMAT=json every line is one JSON object; a request's lines carry its request id
(the caller's X-Request-ID, or one made up and returned) and the lab of its path, and name the
route by its template, never by a raw path that may hold a credential."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Callable, Iterator

import pytest
from lab_builders import make_lab

from scheduler import logs
from scheduler.db import session_scope

LAB = "logged"


@pytest.fixture
def json_log() -> Iterator[Callable[[], list[dict]]]:
    """labq's JSON lines at INFO, as LABQ_LOG_FORMAT=json gives them (the CLI's whole set-up is
    exercised by the worker's test, in a process of its own); returns what was logged since the
    last call, each line parsed."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logs.JsonFormatter())
    root = logging.getLogger()
    names = ("api", "scheduler")
    levels = {name: logging.getLogger(name).level for name in names}
    root.addHandler(handler)
    for name in names:
        logging.getLogger(name).setLevel(logging.INFO)

    def lines() -> list[dict]:
        text = stream.getvalue()
        stream.seek(0)
        stream.truncate()
        return [json.loads(line) for line in text.splitlines() if line.strip()]

    yield lines
    root.removeHandler(handler)
    for name, level in levels.items():
        logging.getLogger(name).setLevel(level)


def test_a_requests_lines_carry_its_request_id_and_lab(app, client, admin, json_log):
    with session_scope(app.state.engine) as session:
        make_lab(session, LAB)
    json_log()  # only the request below
    response = client.get(f"/labs/{LAB}/examiners", headers={**admin, "X-Request-ID": "req-42.a"})
    assert response.status_code == 200
    assert response.headers["X-Request-ID"] == "req-42.a"
    lines = json_log()  # every line parses: json.loads raised otherwise
    access = [line for line in lines if line["logger"] == "api.access"]
    assert len(access) == 1
    line = access[0]
    assert {"time", "level", "logger", "message"} <= line.keys()
    assert line["time"].endswith("Z") and line["level"] == "INFO"
    assert (line["request_id"], line["lab"], line["status"]) == ("req-42.a", LAB, 200)
    assert line["message"].startswith("GET /labs/{lab}/examiners 200 ")
    assert "duration_ms" in line


def test_a_request_id_that_is_not_a_plain_token_is_replaced(client, json_log):
    json_log()
    response = client.get("/health", headers={"X-Request-ID": "two words\tand a tab"})
    made_up = response.headers["X-Request-ID"]
    assert made_up != "two words\tand a tab" and len(made_up) == 32
    (line,) = [line for line in json_log() if line["logger"] == "api.access"]
    assert line["request_id"] == made_up
    assert "lab" not in line  # /health names no lab


def test_a_feed_token_in_the_path_is_never_logged(client, json_log):
    json_log()
    secret = "feedtoken" + "x" * 30
    client.get(f"/feeds/{secret}/schedule.ics")
    lines = json_log()
    assert lines and all(secret not in json.dumps(line) for line in lines)


def test_text_on_a_terminal_json_otherwise():
    class Terminal:
        def isatty(self) -> bool:
            return True

    class Pipe:
        def isatty(self) -> bool:
            return False

    assert logs.resolve_format("auto", Terminal()) == "text"
    assert logs.resolve_format("auto", Pipe()) == "json"
    assert logs.resolve_format("json", Terminal()) == "json"
    record = logging.LogRecord("scheduler.worker", logging.INFO, "", 0, "claimed %s", ("7",), None)
    record.run_id = 7
    with logs.log_context(worker_id="w1"):
        text = logs.TextFormatter().format(record)
        line = json.loads(logs.JsonFormatter().format(record))
    assert text.endswith("INFO scheduler.worker: claimed 7 [worker_id=w1 run_id=7]")
    assert (line["message"], line["run_id"], line["worker_id"]) == ("claimed 7", 7, "w1")
