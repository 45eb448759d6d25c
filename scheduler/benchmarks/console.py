"""Server time of every console page on the demo lab: ``labq bench console`` (target: each
page <= 300 ms).

Where the benchmarks live and what they measure: docs/architecture.md §10.

A fresh SQLite database gets the demo lab, solved and published as ``labq demo`` does. A
supervisor and an examiner sign in through the console's form (real sessions), then each page
is requested ``rounds`` times through the real app over in-process HTTP, after one warm-up read.
The time is the server's own, as its access log records it (``duration_ms``: from the first byte
of the request to the last of the answer, the session and role checks included). Figures are
printed, never asserted.
"""

from __future__ import annotations

import logging
import re
import statistics
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Engine, func, select

from models import Case, Device, Job
from scheduler.db import make_engine, session_scope


@dataclass(frozen=True)
class PageTiming:
    page: str
    path: str
    status: int
    bytes: int
    p50_ms: float
    p95_ms: float
    max_ms: float


class _ServerTimes(logging.Handler):
    """Collects the access log's ``duration_ms`` of each request."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.durations: list[float] = []

    def emit(self, record: logging.LogRecord) -> None:
        duration = getattr(record, "duration_ms", None)
        if duration is not None:
            self.durations.append(float(duration))


def _percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def run_console(time_limit: int = 10, rounds: int = 20) -> tuple[str, list[PageTiming]]:
    """``(lab facts, timings)``: the demo lab's size and each page's server time."""
    from api.app import create_app
    from scheduler.benchmarks.api_reads import _publish_demo
    from scheduler.migrate import upgrade
    from scheduler.services import keys
    from scheduler.services.labs import get_lab
    from scheduler.services.resources import get_examiner
    from scheduler.settings import Settings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from fastapi.testclient import TestClient

    with tempfile.TemporaryDirectory(prefix="labq-console-") as directory:
        url = f"sqlite:///{Path(directory) / 'bench.db'}"
        upgrade(url)
        engine = make_engine(url)
        code = _publish_demo(engine, time_limit)
        with session_scope(engine) as session:
            lab = get_lab(session, code)
            supervisor = keys.create_key(
                session, actor="bench", role="supervisor", name="bench", lab=lab
            ).token
            examiner = keys.create_key(
                session,
                actor="bench",
                role="examiner",
                name="bench",
                lab=lab,
                examiner=get_examiner(session, lab, "E01"),
            ).token
            biggest = session.execute(
                select(Case.external_ref, func.count(Job.id))
                .join(Device, Device.case_id == Case.id)
                .join(Job, Job.device_id == Device.id)
                .where(Case.lab_id == lab.id)
                .group_by(Case.external_ref)
                .order_by(func.count(Job.id).desc())
                .limit(1)
            ).one()
            jobs = session.scalar(select(func.count(Job.id)).where(Job.lab_id == lab.id))
        facts = f"demo lab {code}: {jobs} jobs; case page of {biggest[0]} ({biggest[1]} jobs)"
        what_if_id = _what_if(engine, code, time_limit)
        app = create_app(Settings(database_url=url, embedded_worker=False), engine=engine)
        handler = _ServerTimes()
        access = logging.getLogger("api.access")
        level, propagate = access.level, access.propagate
        access.addHandler(handler)
        access.setLevel(logging.INFO)
        access.propagate = False
        pages = [
            ("board (3 days)", f"/ui/labs/{code}/board", supervisor),
            ("board (week)", f"/ui/labs/{code}/board?days=5", supervisor),
            ("board (2 weeks)", f"/ui/labs/{code}/board?days=10", supervisor),
            ("backlog", f"/ui/labs/{code}/backlog", supervisor),
            ("case", f"/ui/labs/{code}/cases/{biggest[0]}", supervisor),
            ("exposure", f"/ui/labs/{code}/exposure", supervisor),
            ("runs", f"/ui/labs/{code}/runs", supervisor),
            ("runs (live part)", f"/ui/labs/{code}/runs/live", supervisor),
            ("capacity", f"/ui/labs/{code}/capacity", supervisor),
            ("what-if form", f"/ui/labs/{code}/what-if", supervisor),
            ("what-if result", f"/ui/labs/{code}/what-if/{what_if_id}", supervisor),
            ("examiner view", f"/ui/labs/{code}/me", examiner),
        ]
        timings: list[PageTiming] = []
        try:
            with TestClient(app, follow_redirects=False) as client:
                signed_in: dict[str, str] = {}
                for token in {supervisor, examiner}:
                    client.cookies.clear()
                    form = client.get("/ui/sign-in").text
                    found = re.search(r'name="csrf" value="([^"]+)"', form)
                    assert found is not None
                    client.post("/ui/sign-in", data={"csrf": found.group(1), "key": token})
                    signed_in[token] = client.cookies["labq_console"]
                for name, path, token in pages:
                    client.cookies.clear()
                    client.cookies.set("labq_console", signed_in[token], path="/ui")
                    client.get(path)  # warm-up: templates compiled, caches filled
                    handler.durations.clear()
                    sizes: list[int] = []
                    status = 0
                    for _ in range(rounds):
                        answer = client.get(path)
                        status = answer.status_code
                        sizes.append(len(answer.content))
                    ms = handler.durations or [0.0]
                    timings.append(
                        PageTiming(
                            name,
                            path,
                            status,
                            int(statistics.median(sizes)),
                            statistics.median(ms),
                            _percentile(ms, 0.95),
                            max(ms),
                        )
                    )
        finally:
            access.removeHandler(handler)
            access.setLevel(level)
            access.propagate = propagate
            engine.dispose()
    return facts, timings


def _what_if(engine: Engine, code: str, time_limit: int) -> int:
    """A what-if (two more AXIOM licences) solved, so its result page has a comparison."""
    from scheduler.planning.whatif import create_what_if
    from scheduler.services.labs import get_lab
    from scheduler.worker import run_to_completion

    with session_scope(engine) as session:
        found = create_what_if(
            session,
            get_lab(session, code),
            actor="bench",
            changes={"licences": [{"pool": "axiom", "capacity": 4}]},
            time_limit_seconds=time_limit,
        )
        what_if_id, run_id = found.id, found.solve_run_id
    run_to_completion(engine, run_id, "bench-console")
    return what_if_id
