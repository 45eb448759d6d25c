"""Recommendations on the demo lab after a pin: ``labq bench recommend``.

Where the benchmarks live and what they measure: docs/architecture.md §10.

A fresh embedded database gets the demo lab, solved and published as ``labq demo`` does. One
scheduled job is then pinned elsewhere (its best recommendation) through the same service as
``:pin``, so the published version no longer matches the lab exactly, as after any pin or missed
start. Then, through the real app over in-process HTTP with a supervisor key, every job the
published version schedules (and that is not done, running or pinned) is asked for its
recommendations. Printed: how many are kept (pinned or frozen: they stay where they are), how
many of the others got at least one option (and how many of those only by pushing successors
later), how many answers leave something unexplained (a kept job without its reason, a job
with neither options nor reasons, a refusal without words), and the latency of the call (p50,
p95, max): once as a supervisor meets it (calls in a row reuse the lab's snapshot while nothing
changed, `scheduler/planning/snapshot_cache.py`) and once cold (the snapshot dropped before each
call, so each one loads the lab). Figures are printed, never asserted.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from fastapi.testclient import TestClient
from sqlalchemy import select

from models import Assignment, Job
from scheduler.db import make_engine, session_scope


@dataclass(frozen=True)
class RecommendResult:
    jobs: int  # jobs asked
    kept: int  # pinned or frozen: they stay where they are, so have no options by design
    with_options: int
    pushed_only: int  # jobs whose every option moves successors too
    unexplained: int  # answers with a kept job, an eligible pair or the job itself unexplained
    p50_ms: float
    p95_ms: float
    max_ms: float
    cold_p50_ms: float
    cold_p95_ms: float
    pinned: str  # the job pinned before asking, as case/device/stage


def _percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def run_recommend(time_limit: int = 10) -> RecommendResult:
    from api.app import create_app
    from scheduler.benchmarks.api_reads import _publish_demo
    from scheduler.migrate import upgrade
    from scheduler.planning import snapshot_cache
    from scheduler.planning.publish import current_version
    from scheduler.services import keys
    from scheduler.services.labs import get_lab
    from scheduler.settings import Settings

    with tempfile.TemporaryDirectory(prefix="labq-recommend-") as directory:
        url = f"sqlite:///{Path(directory) / 'bench.db'}"
        upgrade(url)
        engine = make_engine(url)
        code = _publish_demo(engine, time_limit)
        with session_scope(engine) as session:
            lab = get_lab(session, code)
            token = keys.create_key(
                session, actor="bench", role="supervisor", name="bench", lab=lab
            ).token
            version = current_version(session, lab)
            assert version is not None
            asked = list(
                session.scalars(
                    select(Job.id)
                    .join(Assignment, Assignment.job_id == Job.id)
                    .where(
                        Assignment.schedule_version_id == version.id,
                        Job.status.in_(("pending", "scheduled")),
                        Job.pin_start_at.is_(None),
                    )
                    .order_by(Assignment.starts_at, Job.id)
                )
            )
        headers = {"X-API-Key": token}
        app = create_app(Settings(database_url=url, embedded_worker=False), engine=engine)
        with TestClient(app) as client:
            pinned = ""
            for job_id in asked:  # pin the first job that has somewhere else to go
                got = client.get(f"/labs/{code}/jobs/{job_id}/recommendations", headers=headers)
                options = got.json().get("options", []) if got.status_code == 200 else []
                if not options:
                    continue
                best = options[0]
                body = {"start": best["starts_at"], "examiner": best.get("examiner")}
                if best.get("workstation"):
                    body["workstation"] = best["workstation"]
                answer = client.post(f"/labs/{code}/jobs/{job_id}:pin", json=body, headers=headers)
                if answer.status_code == 200:
                    out = answer.json()
                    pinned = f"{out['case']}/{out['device']}/{out['external_ref']}"
                    asked.remove(job_id)
                    break
            seconds: list[float] = []
            with_options = kept = pushed_only = unexplained = 0
            for job_id in asked:
                started = time.perf_counter()
                got = client.get(f"/labs/{code}/jobs/{job_id}/recommendations", headers=headers)
                seconds.append(time.perf_counter() - started)
                body = got.json() if got.status_code == 200 else {}
                options, refused = body.get("options", []), body.get("refused", [])
                kept += bool(body.get("kept"))
                with_options += bool(options)
                pushed_only += bool(options) and all(o.get("moves") for o in options)
                unexplained += (
                    (bool(body.get("kept")) and not body.get("kept_reason"))
                    or (not body.get("kept") and not options and not refused)
                    or any(not r.get("reason") for r in refused)
                )
            cold: list[float] = []
            for job_id in asked:
                snapshot_cache.forget()
                started = time.perf_counter()
                client.get(f"/labs/{code}/jobs/{job_id}/recommendations", headers=headers)
                cold.append(time.perf_counter() - started)
        engine.dispose()
    ms = [s * 1000 for s in seconds] or [0.0]
    cold_ms = [s * 1000 for s in cold] or [0.0]
    return RecommendResult(
        jobs=len(asked),
        kept=kept,
        with_options=with_options,
        pushed_only=pushed_only,
        unexplained=unexplained,
        p50_ms=statistics.median(ms),
        p95_ms=_percentile(ms, 0.95),
        max_ms=max(ms),
        cold_p50_ms=statistics.median(cold_ms),
        cold_p95_ms=_percentile(cold_ms, 0.95),
        pinned=pinned,
    )
