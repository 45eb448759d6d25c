"""The life of a solve run on a real database: stale runs end without any worker, each attempt is
kept with why it ended, a worker that lost its run says so and writes nothing, cancel reaches the
solve, and the queue holds one waiting run per lab and mode."""

from __future__ import annotations

import logging
import threading
from datetime import timedelta

import pytest
from lab_builders import MONDAY, small_lab
from sqlalchemy import func, select, update

from models import AuditEvent, ScheduleVersion, SolveRun, SolveRunAttempt
from models.base import utcnow
from scheduler import worker
from scheduler.core.stopping import SolveStopped
from scheduler.db import session_scope
from scheduler.errors import Invalid
from scheduler.planning.runs import cancel_run, get_run, queue_run, request_repair
from scheduler.services.labs import get_lab, update_lab
from scheduler.settings import get_settings
from scheduler.worker import claim_next, execute, requeue_stale

pytestmark = pytest.mark.usefixtures("fast_heartbeat")


def _lab(engine, code, cases=3):
    with session_scope(engine) as session:
        small_lab(session, code, cases=cases)


def _queue(engine, code, **options):
    options.setdefault("time_limit_seconds", 2)
    with session_scope(engine) as session:
        return queue_run(session, get_lab(session, code), actor="sup", **options).run.id


def _run(engine, run_id) -> SolveRun:
    with session_scope(engine) as session:
        run = session.get(SolveRun, run_id)
        session.expunge(run)
        return run


def _history(engine, run_id) -> list[tuple[int, str, str | None, str | None]]:
    with session_scope(engine) as session:
        return [
            (a.attempt, a.worker_id, a.outcome, a.reason)
            for a in session.scalars(
                select(SolveRunAttempt)
                .where(SolveRunAttempt.solve_run_id == run_id)
                .order_by(SolveRunAttempt.attempt)
            )
        ]


def _count(engine, model, *where) -> int:
    with session_scope(engine) as session:
        return session.scalar(select(func.count()).select_from(model).where(*where))


def _after_stale():
    """A moment at which every heartbeat written now is stale."""
    return utcnow() + timedelta(seconds=get_settings().worker_stale_after_seconds + 1)


def test_with_no_worker_the_sweep_requeues_then_fails_the_run_with_its_reason(
    shared_engine, lab_code
):
    _lab(shared_engine, lab_code, cases=1)
    run_id = _queue(shared_engine, lab_code)
    assert claim_next(shared_engine, "w-dies-1", run_id=run_id) is not None
    assert run_id not in requeue_stale(shared_engine, now=utcnow())  # still beating
    assert run_id in requeue_stale(shared_engine, now=_after_stale())
    run = _run(shared_engine, run_id)
    assert (run.status, run.worker_id, run.attempts) == ("queued", None, 1)

    # LABQ_MAX_RUN_ATTEMPTS=2: the second attempt is the last.
    assert claim_next(shared_engine, "w-dies-2", run_id=run_id) is not None
    assert run_id in requeue_stale(shared_engine, now=_after_stale())
    run = _run(shared_engine, run_id)
    assert run.status == "failed" and run.finished_at is not None
    assert "w-dies-2 stopped responding; gave up after 2 attempt(s)" in run.error
    assert _history(shared_engine, run_id) == [
        (1, "w-dies-1", "stale", "worker w-dies-1 stopped responding"),
        (2, "w-dies-2", "stale", "worker w-dies-2 stopped responding"),
    ]
    # The end of the run is announced once, as every end is (`runs.run_ended`).
    ended = _count(
        shared_engine,
        AuditEvent,
        AuditEvent.entity_type == "solve_run",
        AuditEvent.entity_id == str(run_id),
        AuditEvent.action == "solve_run.failed",
    )
    assert ended == 1
    assert run_id not in requeue_stale(shared_engine, now=_after_stale())  # it has ended


def test_a_reclaimed_run_keeps_each_attempt_and_why_it_ended(shared_engine, lab_code):
    _lab(shared_engine, lab_code)
    run_id = _queue(shared_engine, lab_code, auto_publish=True)
    assert claim_next(shared_engine, "w-dead", run_id=run_id) is not None
    assert run_id in requeue_stale(shared_engine, now=_after_stale())
    live = claim_next(shared_engine, "w-live", run_id=run_id)
    assert execute(shared_engine, live, policy="fifo", now=MONDAY) == "succeeded"
    run = _run(shared_engine, run_id)
    assert (run.status, run.attempts, run.error) == ("succeeded", 2, None)
    assert _history(shared_engine, run_id) == [
        (1, "w-dead", "stale", "worker w-dead stopped responding"),
        (2, "w-live", "succeeded", None),
    ]


def test_a_worker_that_lost_its_run_logs_it_and_writes_nothing(shared_engine, lab_code, caplog):
    _lab(shared_engine, lab_code)
    run_id = _queue(shared_engine, lab_code, auto_publish=True)
    # The worker is stopped (SIGSTOP) right after its claim and resumed (SIGCONT) much later.
    stopped = claim_next(shared_engine, "w-stopped", run_id=run_id)
    assert stopped is not None
    assert run_id in requeue_stale(shared_engine, now=_after_stale())
    taker = claim_next(shared_engine, "w-taker", run_id=run_id)
    assert taker is not None and taker.attempt == 2
    events = _count(shared_engine, AuditEvent)
    versions = _count(shared_engine, ScheduleVersion)
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="scheduler.worker"):
        assert execute(shared_engine, stopped, policy="fifo", now=MONDAY) == "lost"
    (lost,) = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert f"solve run {run_id} is no longer held by worker w-stopped" in lost.getMessage()
    assert _count(shared_engine, AuditEvent) == events
    assert _count(shared_engine, ScheduleVersion) == versions
    run = _run(shared_engine, run_id)
    assert (run.status, run.worker_id, run.attempts) == ("running", "w-taker", 2)
    assert _history(shared_engine, run_id)[1] == (2, "w-taker", None, None)
    assert execute(shared_engine, taker, policy="fifo", now=MONDAY) == "succeeded"


def test_cancelling_a_running_solve_stops_the_solve_itself(shared_engine, lab_code, monkeypatch):
    _lab(shared_engine, lab_code, cases=8)
    run_id = _queue(shared_engine, lab_code, time_limit_seconds=60, auto_publish=True)
    claim = claim_next(shared_engine, "w-cpsat", run_id=run_id)
    assert claim is not None
    observed: list[str] = []
    real_solve = worker.solve_snapshot

    def solve_while_cancelled(snapshot, *, progress, stop, **options):
        """The real solve; the cancel arrives while it runs, and we note how the solve ended."""

        def report(fraction: float, objective: int) -> None:
            if not observed:
                observed.append("started")
                with session_scope(shared_engine) as session:
                    cancel_run(
                        session, get_run(session, get_lab(session, lab_code), run_id), actor="sup"
                    )
                stop.wait(60)  # the heartbeat's poll sees the request and sets the stop event
            progress(fraction, objective)

        try:
            plan = real_solve(snapshot, progress=report, stop=stop, **options)
        except (SolveStopped, worker.RunCancelled) as exc:
            observed.append(type(exc).__name__)
            raise
        observed.append("finished")
        return plan

    monkeypatch.setattr(worker, "solve_snapshot", solve_while_cancelled)
    assert execute(shared_engine, claim, policy="cpsat", now=MONDAY) == "cancelled"
    assert observed[0] == "started" and observed[1] in ("SolveStopped", "RunCancelled")
    run = _run(shared_engine, run_id)
    assert run.status == "cancelled" and run.finished_at is not None
    assert _history(shared_engine, run_id) == [(1, "w-cpsat", "cancelled", None)]
    assert _count(shared_engine, ScheduleVersion, ScheduleVersion.solve_run_id == run_id) == 0


def test_the_cancel_poll_tells_a_running_solve_to_stop(shared_engine, lab_code):
    _lab(shared_engine, lab_code, cases=1)
    run_id = _queue(shared_engine, lab_code)
    claim = claim_next(shared_engine, "w1", run_id=run_id)
    beat = worker.Heartbeat(shared_engine, claim, interval=60)
    beat.poll_cancel()
    assert not beat.stop_event.is_set()
    with session_scope(shared_engine) as session:
        session.execute(update(SolveRun).where(SolveRun.id == run_id).values(cancel_requested=True))
    beat.poll_cancel()
    assert beat.cancelled.is_set() and beat.stop_event.is_set() and not beat.lost.is_set()


def test_a_second_request_joins_the_waiting_run_of_its_mode(shared_engine, lab_code):
    _lab(shared_engine, lab_code)
    with session_scope(shared_engine) as session:
        lab = get_lab(session, lab_code)
        first = queue_run(session, lab, actor="a", time_limit_seconds=5)
        again = queue_run(session, lab, actor="b", time_limit_seconds=20, auto_publish=True)
        preview = queue_run(session, lab, actor="c", mode="preview")
        repair = request_repair(session, lab, actor="d", reason="absence")
        repair_again = request_repair(session, lab, actor="e", reason="escalation")
        assert not first.joined and again.joined and again.run.id == first.run.id
        assert again.run.auto_publish is True and again.run.time_limit_seconds == 20
        assert not preview.joined and preview.run.id != first.run.id
        assert repair_again.id == repair.id != first.run.id
    # Once the full run is solving, a new request queues a new run behind it.
    claim = claim_next(shared_engine, "w1", run_id=first.run.id)
    assert claim is not None
    assert _queue(shared_engine, lab_code) not in (first.run.id, preview.run.id)


def test_a_time_limit_above_the_labs_cap_is_refused(shared_engine, lab_code):
    _lab(shared_engine, lab_code)
    with session_scope(shared_engine) as session:
        lab = get_lab(session, lab_code)
        update_lab(
            session, lab, actor="admin", max_time_limit_seconds=30, solve_time_limit_seconds=20
        )
        with pytest.raises(Invalid, match="cap of 30") as refused:
            queue_run(session, lab, actor="sup", time_limit_seconds=31)
        assert refused.value.extra["field"] == "time_limit_seconds"
        assert queue_run(session, lab, actor="sup", time_limit_seconds=30).run.time_limit_seconds
        with pytest.raises(Invalid, match="max_time_limit_seconds"):
            update_lab(session, lab, actor="admin", solve_time_limit_seconds=31)


def test_the_sweeper_thread_ends_runs_of_dead_workers(shared_engine, lab_code, monkeypatch):
    _lab(shared_engine, lab_code, cases=1)
    run_id = _queue(shared_engine, lab_code)
    assert claim_next(shared_engine, "w-gone", run_id=run_id) is not None
    with session_scope(shared_engine) as session:
        session.execute(
            update(SolveRun)
            .where(SolveRun.id == run_id)
            .values(heartbeat_at=utcnow() - timedelta(hours=1))
        )
    swept = threading.Event()
    real = worker.requeue_stale

    def noted(engine, now=None):
        handled = real(engine, now)
        if run_id in handled:
            swept.set()
        return handled

    monkeypatch.setattr(worker, "requeue_stale", noted)
    stop = worker.start_stale_sweeper(shared_engine, 0.05)
    try:
        assert swept.wait(60)
    finally:
        stop()
    assert _run(shared_engine, run_id).status == "queued"
