"""The solve-run worker on a real database: exclusive claims, stale runs, cancel, failures."""

from __future__ import annotations

import threading
import time
from datetime import timedelta

import pytest
from lab_builders import MONDAY, small_lab
from sqlalchemy import func, select, update

from models import ScheduleVersion, SolveRun
from models.base import utcnow
from scheduler.db import session_scope
from scheduler.planning.publish import current_version
from scheduler.planning.runs import cancel_run, get_run, queue_run
from scheduler.services.labs import get_lab
from scheduler.worker import (
    Heartbeat,
    RunCancelled,
    claim_next,
    execute,
    requeue_stale,
    run_once,
    work,
)

pytestmark = pytest.mark.usefixtures("fast_heartbeat")


def _lab(engine, code, cases=3):
    with session_scope(engine) as session:
        small_lab(session, code, cases=cases)


MODES = ("full", "repair", "preview")


def _queue(engine, code, n=1, **options):
    """``n`` distinct queued runs (a lab holds one queued run per mode: up to three)."""
    options.setdefault("time_limit_seconds", 2)
    with session_scope(engine) as session:
        lab = get_lab(session, code)
        if n == 1:
            return [queue_run(session, lab, actor="sup", **options).run.id]
        return [
            queue_run(session, lab, actor="sup", mode=mode, **options).run.id for mode in MODES[:n]
        ]


def _run(engine, run_id) -> SolveRun:
    with session_scope(engine) as session:
        run = session.get(SolveRun, run_id)
        session.expunge(run)
        return run


def _current_id(engine, code):
    with session_scope(engine) as session:
        version = current_version(session, get_lab(session, code))
        return version.id if version is not None else None


def _version_count(engine, code):
    with session_scope(engine) as session:
        lab = get_lab(session, code)
        return session.scalar(
            select(func.count())
            .select_from(ScheduleVersion)
            .where(ScheduleVersion.lab_id == lab.id)
        )


def _age_heartbeat(engine, run_id, seconds=3600):
    with session_scope(engine) as session:
        session.execute(
            update(SolveRun)
            .where(SolveRun.id == run_id)
            .values(heartbeat_at=utcnow() - timedelta(seconds=seconds))
        )


def test_a_lab_with_a_running_solve_is_not_claimed_again(shared_engine, lab_code):
    other = f"{lab_code}-b"
    _lab(shared_engine, lab_code)
    _lab(shared_engine, other)
    first, _, _ = _queue(shared_engine, lab_code, 3)
    (b_run,) = _queue(shared_engine, other)
    one = claim_next(shared_engine, "w1")
    assert one is not None and one.run_id == first
    two = claim_next(shared_engine, "w2")
    assert two is not None and two.run_id == b_run  # the first lab is busy: the next lab's run
    assert claim_next(shared_engine, "w3") is None
    assert _run(shared_engine, first).worker_id == "w1"
    assert _run(shared_engine, first).attempts == 1


def test_simultaneous_claims_on_one_lab_give_exactly_one_run(shared_engine, lab_code):
    _lab(shared_engine, lab_code)
    _queue(shared_engine, lab_code, 3)

    def claim(name: str, barrier: threading.Barrier, claims: list) -> None:
        barrier.wait()
        claims.append(claim_next(shared_engine, name))

    for _round in range(3):
        barrier = threading.Barrier(6)
        claims: list = []
        threads = [
            threading.Thread(target=claim, args=(f"w{i}", barrier, claims)) for i in range(6)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        won = [c for c in claims if c is not None]
        assert len(won) == 1
        with session_scope(shared_engine) as session:
            lab = get_lab(session, lab_code)
            running = session.scalar(
                select(func.count())
                .select_from(SolveRun)
                .where(SolveRun.lab_id == lab.id, SolveRun.status == "running")
            )
        assert running == 1
        assert execute(shared_engine, won[0], policy="fifo", now=MONDAY) == "succeeded"


def test_two_workers_draining_one_lab_never_overlap(shared_engine, lab_code):
    _lab(shared_engine, lab_code)
    run_ids = _queue(shared_engine, lab_code, 3)
    stop = threading.Event()
    workers = [
        threading.Thread(
            target=work,
            args=(shared_engine, name, stop),
            kwargs={"policy": "fifo", "poll_seconds": 0.05},
        )
        for name in ("wa", "wb")
    ]
    for w in workers:
        w.start()
    try:
        deadline = time.monotonic() + 600  # a bound for a hung worker, not a speed limit
        while time.monotonic() < deadline:
            if all(_run(shared_engine, r).status == "succeeded" for r in run_ids):
                break
            threading.Event().wait(0.05)
    finally:
        stop.set()
        for w in workers:
            w.join(timeout=30)
    runs = sorted((_run(shared_engine, r) for r in run_ids), key=lambda r: r.started_at)
    assert [r.status for r in runs] == ["succeeded"] * 3
    for earlier, later in zip(runs, runs[1:], strict=False):
        assert earlier.finished_at <= later.started_at


def test_a_dead_workers_run_is_requeued_and_the_published_schedule_untouched(
    shared_engine, lab_code
):
    _lab(shared_engine, lab_code)
    (published_run,) = _queue(shared_engine, lab_code, auto_publish=True)
    assert run_once(shared_engine, "w-live", policy="fifo", now=MONDAY)
    published = _current_id(shared_engine, lab_code)
    assert _run(shared_engine, published_run).status == "succeeded" and published is not None

    (run_id,) = _queue(shared_engine, lab_code, auto_publish=True)
    dead = claim_next(shared_engine, "w-dead")
    assert dead is not None and dead.run_id == run_id
    _age_heartbeat(shared_engine, run_id)
    assert requeue_stale(shared_engine) == [run_id]
    run = _run(shared_engine, run_id)
    assert (run.status, run.worker_id, run.attempts) == ("queued", None, 1)
    assert "stopped responding" in run.error
    assert _current_id(shared_engine, lab_code) == published

    assert run_once(shared_engine, "w-live", policy="fifo", now=MONDAY)
    run = _run(shared_engine, run_id)
    assert (run.status, run.worker_id, run.attempts) == ("succeeded", "w-live", 2)
    assert _current_id(shared_engine, lab_code) not in (None, published)
    versions = _version_count(shared_engine, lab_code)
    # The dead worker wakes up: its claim is stale, nothing it does is stored.
    assert execute(shared_engine, dead, policy="fifo", now=MONDAY) == "lost"
    assert _version_count(shared_engine, lab_code) == versions


def test_a_run_that_keeps_losing_its_worker_fails_after_max_attempts(shared_engine, lab_code):
    _lab(shared_engine, lab_code, cases=1)
    (run_id,) = _queue(shared_engine, lab_code)
    for attempt in (1, 2):  # LABQ_MAX_RUN_ATTEMPTS=2
        claim = claim_next(shared_engine, f"w-dies-{attempt}")
        assert claim is not None and claim.attempt == attempt
        _age_heartbeat(shared_engine, run_id)
        assert requeue_stale(shared_engine) == [run_id]
    run = _run(shared_engine, run_id)
    assert run.status == "failed"
    assert "gave up after 2 attempt(s)" in run.error


def test_cancel_a_queued_run_and_a_running_one(shared_engine, lab_code):
    _lab(shared_engine, lab_code)
    queued, running = _queue(shared_engine, lab_code, 2)
    claim = claim_next(shared_engine, "w1")
    assert claim is not None and claim.run_id == queued
    with session_scope(shared_engine) as session:
        lab = get_lab(session, lab_code)
        cancel_run(session, get_run(session, lab, running), actor="sup")  # still queued
        cancel_run(session, get_run(session, lab, queued), actor="sup")  # running: asks to stop
    assert _run(shared_engine, running).status == "cancelled"
    assert _run(shared_engine, queued).cancel_requested is True
    assert execute(shared_engine, claim, policy="fifo", now=MONDAY) == "cancelled"
    assert _run(shared_engine, queued).status == "cancelled"
    assert _version_count(shared_engine, lab_code) == 0
    assert run_once(shared_engine, "w2", policy="fifo") is False  # nothing left to claim


def test_the_heartbeat_writes_progress_and_stops_the_solve_on_cancel(shared_engine, lab_code):
    _lab(shared_engine, lab_code, cases=1)
    (run_id,) = _queue(shared_engine, lab_code)
    claim = claim_next(shared_engine, "w1")
    _age_heartbeat(shared_engine, run_id, seconds=20)
    beat = Heartbeat(shared_engine, claim, interval=60)
    beat.report(0.25, 1000)  # the solve's callback only hands progress over: it never waits
    assert _run(shared_engine, run_id).progress == pytest.approx(0.0)
    beat.beat()  # the heartbeat thread's write (not started here)
    run = _run(shared_engine, run_id)
    assert run.progress == pytest.approx(0.25)
    assert utcnow() - run.heartbeat_at < timedelta(seconds=15)
    with session_scope(shared_engine) as session:
        session.execute(update(SolveRun).where(SolveRun.id == run_id).values(cancel_requested=True))
    beat.beat()
    with pytest.raises(RunCancelled):
        beat.report(0.5, 900)


def test_a_failing_run_records_the_error_and_keeps_the_published_schedule(shared_engine, lab_code):
    _lab(shared_engine, lab_code, cases=1)
    _queue(shared_engine, lab_code, auto_publish=True)
    assert run_once(shared_engine, "w1", policy="fifo", now=MONDAY)
    published = _current_id(shared_engine, lab_code)
    # Corrupt the lab itself behind the services' back (one bad record would only be left out).
    with session_scope(shared_engine) as session:
        lab = get_lab(session, lab_code)
        lab.timezone = "Nowhere/Atlantis"
    (run_id,) = _queue(shared_engine, lab_code, auto_publish=True)
    assert run_once(shared_engine, "w1", policy="fifo", now=MONDAY)
    run = _run(shared_engine, run_id)
    assert run.status == "failed"
    assert "Nowhere/Atlantis" in run.error
    assert _current_id(shared_engine, lab_code) == published


def test_without_auto_publish_the_version_waits_and_a_preview_is_never_published(
    shared_engine, lab_code
):
    _lab(shared_engine, lab_code)
    runs = _queue(shared_engine, lab_code) + _queue(shared_engine, lab_code, mode="preview")
    for run_id in runs:  # by id: other tests' runs may be claimable too
        claim = claim_next(shared_engine, "w1", run_id=run_id)
        assert execute(shared_engine, claim, policy="fifo", now=MONDAY) == "succeeded"
    assert _version_count(shared_engine, lab_code) == 2
    assert _current_id(shared_engine, lab_code) is None


def test_cancel_while_cp_sat_is_solving_stores_nothing(shared_engine, lab_code):
    _lab(shared_engine, lab_code, cases=4)
    (run_id,) = _queue(shared_engine, lab_code, time_limit_seconds=3, auto_publish=True)
    claim = claim_next(shared_engine, "w-cpsat", run_id=run_id)
    outcome: list[str] = []
    solving = threading.Thread(
        target=lambda: outcome.append(execute(shared_engine, claim, policy="cpsat", now=MONDAY))
    )
    solving.start()
    with session_scope(shared_engine) as session:
        lab = get_lab(session, lab_code)
        cancel_run(session, get_run(session, lab, run_id), actor="sup")
    solving.join(timeout=120)
    assert outcome == ["cancelled"]
    run = _run(shared_engine, run_id)
    assert run.status == "cancelled" and run.finished_at is not None
    assert _version_count(shared_engine, lab_code) == 0
    assert _current_id(shared_engine, lab_code) is None
