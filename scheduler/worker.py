"""The solve-run worker: claims queued runs, solves them, stores (and maybe publishes) the result.

Claiming is race-free on both backends and never starts a second run for a lab that already has
one running:

- PostgreSQL: the lab row is locked with ``SELECT ... FOR UPDATE SKIP LOCKED`` (a worker that finds
  it locked tries another lab), then the run is switched by a compare-and-set ``UPDATE ... WHERE
  status = 'queued' AND NOT EXISTS (a running run of the lab)``. Under READ COMMITTED that
  statement sees every claim committed before the lock was granted.
- SQLite: the same compare-and-set ``UPDATE`` is the transaction's first statement, so it takes
  the database write lock and runs atomically.

While a run solves, a heartbeat thread writes ``heartbeat_at`` and the latest progress every
``worker_heartbeat_seconds`` in its own short transaction, and reads ``cancel_requested`` every
``CANCEL_POLL_SECONDS``. A cancel ends the run at once (``cancelled``) and sets the solve's stop
event, which ends CP-SAT's search and the neighbourhood loop (``scheduler.core.stopping``), so a
cancel takes effect within about a second.

A run whose heartbeat is older than ``worker_stale_after_seconds`` (at least three heartbeats,
see `scheduler.settings`) belonged to a worker that died or was stopped: any process that sees
the queue sweeps such runs (`requeue_stale`: the worker between runs, ``labq
reoptimize`` while it waits, ``labq serve`` every ``stale_sweep_seconds`` with or without its
embedded worker). A stale run is re-queued while ``attempts < max_run_attempts``, failed after
that; each attempt and how it ended is kept in ``solve_run_attempt``.

Every write a worker makes to a run it holds is a compare-and-set on (id, worker, attempt), so a
worker that lost its run (re-queued as stale, e.g. after the process was stopped and resumed) can
never overwrite another worker's result: it logs the loss at WARNING and writes nothing.

A failed run records its error and leaves the published schedule untouched: storing and
publishing happen in one transaction that rolls back as a whole.

On SQLite a long writer (a bulk import) may hold the write lock for a while: the worker's reads
never wait for it, and its own short write transactions (claim, finish, store) are retried with
backoff for up to ``worker_stale_after_seconds`` (``retry_locked``). The solve's progress
callback never touches the database: it hands progress to the heartbeat thread, so a held lock
delays a heartbeat, never the solve. The plan is verified and its rows prepared before the store
transaction begins, so that transaction holds the lock only to insert and publish.
"""

from __future__ import annotations

import contextvars
import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial

from sqlalchemy import ColumnElement, Engine, exists, or_, select, update
from sqlalchemy.orm import Session, aliased

from models import Lab, SolveRun
from models.base import utcnow
from scheduler.core.plan import Plan
from scheduler.core.snapshot import Snapshot
from scheduler.core.solve import limit_left
from scheduler.core.stopping import SolveStopped
from scheduler.db import is_lock_timeout, retry_locked, session_scope
from scheduler.errors import DomainError
from scheduler.logs import log_context
from scheduler.planning import repair, whatif
from scheduler.planning.engine import DEFAULT_WORKERS, solve_snapshot
from scheduler.planning.loader import IdMap, load_snapshot
from scheduler.planning.publish import publish, publish_blockers, warn
from scheduler.planning.runs import begin_attempt, end_attempt, rows_changed, run_ended
from scheduler.planning.store import PreparedVersion, prepare_version, store_plan
from scheduler.services import audit
from scheduler.services.labs import lock_lab
from scheduler.settings import get_settings

logger = logging.getLogger(__name__)

POLL_SECONDS = 1.0
PROGRESS_WRITE_SECONDS = 1.0
CANCEL_POLL_SECONDS = 0.5
"""How often a running solve reads ``cancel_requested`` (a one-row read): half the 1 s a cancel
may take, the other half being the solve's own reaction to its stop event."""
CANDIDATES = 20
MAX_ERROR = 4000


def default_worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


@dataclass(frozen=True)
class Claim:
    """A run this worker holds: every later write is conditional on (run, worker, attempt)."""

    run_id: int
    lab_id: int
    worker_id: str
    attempt: int
    mode: str
    time_limit_seconds: int
    auto_publish: bool
    requested_by: str
    lab_code: str = ""

    @property
    def log_fields(self) -> dict[str, object]:
        """What every line about this run carries (see `scheduler.logs`), as ``extra``."""
        return {"run_id": self.run_id, "lab": self.lab_code, "worker_id": self.worker_id}


class RunCancelled(Exception):
    """Raised from the progress callback to stop a solve whose run was cancelled or lost."""


class RunLost(Exception):
    """The run is no longer ours (re-queued as stale and claimed by another worker)."""


def _ours(claim: Claim) -> ColumnElement[bool]:
    return (
        (SolveRun.id == claim.run_id)
        & (SolveRun.status == "running")
        & (SolveRun.worker_id == claim.worker_id)
        & (SolveRun.attempts == claim.attempt)
    )


# ---- stale runs -----------------------------------------------------------------------------


STALE_SWEEP_ACTOR = "stale-run-sweep"


def requeue_stale(engine: Engine, now: datetime | None = None) -> list[int]:
    """Re-queue (or fail, after too many attempts) runs whose worker stopped beating.

    Safe to call from any number of processes at once: each change is a compare-and-set.
    """
    settings = get_settings()
    now = now or utcnow()
    cutoff = now - timedelta(seconds=settings.worker_stale_after_seconds)
    stale_clause = or_(
        SolveRun.heartbeat_at < cutoff,
        SolveRun.heartbeat_at.is_(None) & (SolveRun.started_at < cutoff),
    )
    with session_scope(engine, read_only=True) as session:
        stale = session.execute(
            select(SolveRun.id, SolveRun.attempts, SolveRun.cancel_requested, SolveRun.worker_id)
            .where(SolveRun.status == "running", stale_clause)
            .order_by(SolveRun.id)
        ).all()
    handled: list[int] = []
    for run_id, attempts, cancel_requested, worker in stale:
        if cancel_requested:
            status, error = "cancelled", f"cancelled; worker {worker} stopped responding"
        elif attempts < settings.max_run_attempts:
            status, error = "queued", f"re-queued: worker {worker} stopped responding"
        else:
            status = "failed"
            error = f"worker {worker} stopped responding; gave up after {attempts} attempt(s)"
        values: dict[str, object] = {"status": status, "error": error}
        if status == "queued":
            values.update(worker_id=None, heartbeat_at=None, started_at=None, progress=0.0)
        else:
            values.update(finished_at=now)

        def settle(
            run_id: int = run_id,
            values: dict[str, object] = values,
            attempts: int = attempts,
            worker: str | None = worker,
            status: str = status,
            error: str = error,
        ) -> bool:
            with session_scope(engine) as session:
                result = session.execute(
                    update(SolveRun)
                    .where(SolveRun.id == run_id, SolveRun.status == "running", stale_clause)
                    .values(**values)
                )
                if rows_changed(result) != 1:
                    return False
                lab_id = session.scalar(select(SolveRun.lab_id).where(SolveRun.id == run_id))
                assert lab_id is not None
                reason = f"worker {worker} stopped responding"
                end_attempt(session, run_id, attempts, "stale", reason, now)
                audit.record(
                    session,
                    actor=STALE_SWEEP_ACTOR,
                    action=f"solve_run.stale.{status}",
                    entity_type="solve_run",
                    entity_id=run_id,
                    lab_id=lab_id,
                    after={"status": status, "error": error},
                )
                if status != "queued":
                    run_ended(
                        session,
                        run_id=run_id,
                        lab_id=lab_id,
                        status=status,
                        actor=STALE_SWEEP_ACTOR,
                        error=error,
                    )
                return True

        if retry_locked(settle, what=f"re-queue solve run {run_id}", budget_seconds=_patience()):
            handled.append(run_id)
            logger.warning(
                "solve run %s: %s", run_id, error, extra={"run_id": run_id, "event": status}
            )
    return handled


def _patience() -> float:
    """How long the worker's own write transactions retry while another writer holds the lock."""
    return float(get_settings().worker_stale_after_seconds)


def start_stale_sweeper(engine: Engine, every_seconds: float) -> Callable[[], None]:
    """Sweep stale runs every ``every_seconds`` in a daemon thread (``labq serve``); returns its
    stop. A server sees the queue even when every worker is dead, so runs always end."""
    stop_event = threading.Event()

    def sweep() -> None:
        while not stop_event.wait(every_seconds):
            try:
                requeue_stale(engine)
            except Exception:  # the database may be briefly unavailable; sweep again later
                logger.exception("sweeping stale solve runs failed")

    thread = threading.Thread(target=sweep, name="labq-stale-sweeper", daemon=True)
    thread.start()

    def stop(timeout: float = 10.0) -> None:
        stop_event.set()
        thread.join(timeout=timeout)

    return stop


# ---- claiming -------------------------------------------------------------------------------


def claim_next(engine: Engine, worker_id: str, *, run_id: int | None = None) -> Claim | None:
    """Claim the oldest queued run (or run ``run_id``) of a lab with nothing running."""
    other = aliased(SolveRun)
    busy = exists().where(other.lab_id == SolveRun.lab_id, other.status == "running")
    query = select(SolveRun.id, SolveRun.lab_id).where(SolveRun.status == "queued", ~busy)
    if run_id is not None:
        query = query.where(SolveRun.id == run_id)
    with session_scope(engine, read_only=True) as session:
        candidates = session.execute(query.order_by(SolveRun.id).limit(CANDIDATES)).all()
    tried_labs: set[int] = set()
    for candidate_id, lab_id in candidates:
        if lab_id in tried_labs:
            continue
        claim = retry_locked(
            partial(_try_claim, engine, candidate_id, lab_id, worker_id),
            what=f"claim solve run {candidate_id}",
            budget_seconds=_patience(),
        )
        if claim is not None:
            return claim
        tried_labs.add(lab_id)
    return None


def _try_claim(engine: Engine, run_id: int, lab_id: int, worker_id: str) -> Claim | None:
    other = aliased(SolveRun)
    now = utcnow()
    with session_scope(engine) as session:
        if session.get_bind().dialect.name == "postgresql":
            locked = session.execute(
                select(Lab.id).where(Lab.id == lab_id).with_for_update(skip_locked=True)
            ).first()
            if locked is None:
                return None
        result = session.execute(
            update(SolveRun)
            .where(
                SolveRun.id == run_id,
                SolveRun.status == "queued",
                ~exists().where(other.lab_id == lab_id, other.status == "running"),
            )
            .values(
                status="running",
                worker_id=worker_id,
                started_at=now,
                heartbeat_at=now,
                progress=0.0,
                attempts=SolveRun.attempts + 1,
                error=None,
            )
        )
        if rows_changed(result) != 1:
            return None
        run = session.execute(
            select(
                SolveRun.attempts,
                SolveRun.mode,
                SolveRun.time_limit_seconds,
                SolveRun.auto_publish,
                SolveRun.requested_by,
                Lab.code,
            )
            .join(Lab, Lab.id == SolveRun.lab_id)
            .where(SolveRun.id == run_id)
        ).one()
        begin_attempt(session, run_id, run.attempts, worker_id, now)
        audit.record(
            session,
            actor=worker_id[:64],
            action="solve_run.claim",
            entity_type="solve_run",
            entity_id=run_id,
            lab_id=lab_id,
            after={"status": "running", "worker": worker_id, "attempt": run.attempts},
        )
    claim = Claim(
        run_id=run_id,
        lab_id=lab_id,
        worker_id=worker_id,
        attempt=run.attempts,
        mode=run.mode,
        time_limit_seconds=run.time_limit_seconds,
        auto_publish=run.auto_publish,
        requested_by=run.requested_by,
        lab_code=run.code,
    )
    logger.info(
        "worker %s claimed solve run %s of lab %s (attempt %s, mode %s, %d s)",
        worker_id,
        run_id,
        claim.lab_code,
        claim.attempt,
        claim.mode,
        claim.time_limit_seconds,
        extra={**claim.log_fields, "event": "claimed", "attempt": claim.attempt},
    )
    return claim


# ---- heartbeat ------------------------------------------------------------------------------


class Heartbeat:
    """Keeps a claimed run alive and carries progress and cancellation between threads.

    ``stop_event`` is set once the run is cancelled or lost; the solve watches it (``stop=`` of
    `solve_snapshot`) and ends its search at once. A cancel also ends the run here and now
    (``cancelled`` in the database, ``ended`` set), without waiting for the solve to reach its
    next check: phases such as the dispatch construction of a large lab take seconds, and
    whatever the solve still returns can no longer be stored (every write is conditional on
    the run still running under this claim).
    """

    def __init__(self, engine: Engine, claim: Claim, interval: float) -> None:
        self.engine = engine
        self.claim = claim
        self.interval = interval
        self.fraction = 0.0
        self.objective: int | None = None
        self.cancelled = threading.Event()
        self.lost = threading.Event()
        self.stop_event = threading.Event()
        self.ended = threading.Event()
        self._stop = threading.Event()
        self._due = threading.Event()  # the solve has progress to write
        self._lock = threading.Lock()
        self._last_write = 0.0
        self._milestone = 0  # quarters of the time limit already logged
        context = contextvars.copy_context()  # the worker's log context, in the beat's thread
        self._thread = threading.Thread(
            target=context.run,
            args=(self._loop,),
            name=f"heartbeat-run-{claim.run_id}",
            daemon=True,
        )

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._due.set()
        self._thread.join(timeout=10)

    def _loop(self) -> None:
        poll = min(CANCEL_POLL_SECONDS, self.interval)
        while not self._stop.is_set() and not self.stopping:
            # Woken early when the solve has progress to write; otherwise poll for a cancel.
            due = self._due.wait(poll)
            self._due.clear()
            if self._stop.is_set():
                return
            if due or time.monotonic() - self._last_write >= self.interval:
                self.beat()
            else:
                self.poll_cancel()

    def beat(self) -> None:
        """Write heartbeat and progress in a short transaction; learn of a cancel request."""
        if self.ended.is_set():  # cancelled and ended here: nothing more to write
            return
        with self._lock:
            try:
                with session_scope(self.engine) as session:
                    result = session.execute(
                        update(SolveRun)
                        .where(_ours(self.claim))
                        .values(heartbeat_at=utcnow(), progress=min(1.0, max(0.0, self.fraction)))
                    )
                    if rows_changed(result) != 1:
                        self._mark(self.lost)
                        return
                    cancel = session.scalar(
                        select(SolveRun.cancel_requested).where(SolveRun.id == self.claim.run_id)
                    )
                if cancel:
                    self._mark(self.cancelled)
                self._last_write = time.monotonic()
            except Exception as exc:  # the database may be busy or away; try again next beat
                if is_lock_timeout(exc):
                    logger.warning("heartbeat of solve run %s: database locked", self.claim.run_id)
                else:
                    logger.exception("heartbeat of solve run %s failed", self.claim.run_id)

    def poll_cancel(self) -> None:
        """Read whether the run was cancelled or taken from us (a read, no write)."""
        if self.ended.is_set():
            return
        try:
            with session_scope(self.engine, read_only=True) as session:
                held, cancel = session.execute(
                    select(_ours(self.claim), SolveRun.cancel_requested).where(
                        SolveRun.id == self.claim.run_id
                    )
                ).one_or_none() or (False, False)
        except Exception:  # try again at the next poll
            logger.exception("cancel poll of solve run %s failed", self.claim.run_id)
            return
        if not held:
            self._mark(self.lost)
        elif cancel:
            self._mark(self.cancelled)

    def _mark(self, event: threading.Event) -> None:
        first = not event.is_set()
        event.set()
        self.stop_event.set()
        if first and event is self.cancelled:
            try:
                if _finish(self.engine, self.claim, "cancelled"):
                    self.ended.set()
            except Exception:  # the solve's own end records the cancel instead
                logger.exception("ending cancelled solve run %s failed", self.claim.run_id)

    def report(self, fraction: float, objective: int) -> None:
        """The solve's progress callback: record, have it written now and then, stop if cancelled.

        It never waits for the database (a held write lock would stall the search): the heartbeat
        thread writes.
        """
        self.fraction, self.objective = fraction, objective
        quarter = min(4, int(fraction * 4 + 1e-9))
        if quarter > self._milestone:  # a line at each quarter of the time limit
            self._milestone = quarter
            logger.info(
                "solve run %s: %d %% of its time, best objective %s",
                self.claim.run_id,
                25 * quarter,
                objective,
                extra={
                    **self.claim.log_fields,
                    "event": "progress",
                    "progress": round(fraction, 3),
                    "objective": objective,
                },
            )
        if time.monotonic() - self._last_write >= PROGRESS_WRITE_SECONDS:
            self._due.set()
        if self.stopping:
            raise RunCancelled(f"solve run {self.claim.run_id} was cancelled")

    @property
    def stopping(self) -> bool:
        return self.stop_event.is_set()


# ---- executing ------------------------------------------------------------------------------


def _lost(claim: Claim) -> str:
    """The run was taken from us: say so, write nothing (every write would be refused anyway)."""
    logger.warning(
        "solve run %s is no longer held by worker %s (attempt %s): it was re-queued as stale "
        "and taken over; stopping it without writing anything",
        claim.run_id,
        claim.worker_id,
        claim.attempt,
    )
    return "lost"


def _finish(engine: Engine, claim: Claim, status: str, error: str | None = None) -> bool:
    return retry_locked(
        lambda: _finish_once(engine, claim, status, error),
        what=f"record solve run {claim.run_id} {status}",
        budget_seconds=_patience(),
    )


def _finish_once(engine: Engine, claim: Claim, status: str, error: str | None) -> bool:
    now = utcnow()
    with session_scope(engine) as session:
        result = session.execute(
            update(SolveRun)
            .where(_ours(claim))
            .values(status=status, finished_at=now, heartbeat_at=now, error=error)
        )
        if rows_changed(result) != 1:
            return False
        end_attempt(session, claim.run_id, claim.attempt, status, error, now)
        run_ended(
            session,
            run_id=claim.run_id,
            lab_id=claim.lab_id,
            status=status,
            actor=claim.worker_id,
            error=error,
        )
    return True


def execute(
    engine: Engine,
    claim: Claim,
    *,
    policy: str = "cpsat",
    workers: int | None = None,
    now: datetime | None = None,
) -> str:
    """Solve a claimed run and record the outcome; returns the run's final status.

    ``"lost"`` means the run was taken from this worker (see `_lost`): nothing was written.
    ``now`` fixes the planning time (tests, replays); by default it is the moment the solve starts.
    Every line logged meanwhile names the run, its lab and this worker.
    """
    with log_context(**claim.log_fields):
        return _execute(engine, claim, policy=policy, workers=workers, now=now)


def _execute(
    engine: Engine, claim: Claim, *, policy: str, workers: int | None, now: datetime | None
) -> str:
    fields = claim.log_fields
    settings = get_settings()
    heartbeat = Heartbeat(engine, claim, settings.worker_heartbeat_seconds)
    heartbeat.start()
    started = time.monotonic()
    try:
        at = now or utcnow()
        snapshot, idmap, what_if = _load(engine, claim, at)
        logger.info(
            "solve run %s: lab %s, %d jobs, %d examiners, mode %s, %d s",
            claim.run_id,
            snapshot.lab,
            len(snapshot.jobs),
            len(snapshot.examiners),
            claim.mode,
            claim.time_limit_seconds,
            extra={**fields, "event": "loaded", "jobs": len(snapshot.jobs)},
        )
        threads = workers or DEFAULT_WORKERS
        snapshot, idmap, plan = _solve(
            engine, claim, snapshot, idmap, at, heartbeat, policy, threads, started
        )
        if heartbeat.stopping:
            raise RunCancelled(f"solve run {claim.run_id} was cancelled")
        logger.info(
            "solve run %s solved (%s): objective %s, bound %s, %d assigned, %d unscheduled, %.1f s",
            claim.run_id,
            plan.status,
            plan.objective,
            plan.bound,
            len(plan.assignments),
            len(plan.unscheduled),
            plan.solve_seconds,
            extra={
                **fields,
                "event": "solved",
                "status": plan.status,
                "objective": plan.objective,
                "bound": plan.bound,
                "solve_seconds": round(plan.solve_seconds, 3),
            },
        )
        if what_if is not None:
            return _store_what_if(engine, claim, what_if, plan)
        prepared = prepare_version(snapshot, plan, idmap)  # refuses a plan that breaks a rule
        logger.info(
            "solve run %s: the plan passed the independent verifier (%d assignments)",
            claim.run_id,
            len(plan.assignments),
            extra={**fields, "event": "verified", "violations": 0},
        )

        version_id, unpublished = retry_locked(
            partial(_store_version, engine, claim, snapshot, plan, idmap, prepared),
            what=f"store solve run {claim.run_id}",
            budget_seconds=_patience(),
        )
        if unpublished is None:
            logger.info(
                "solve run %s succeeded: version %s published",
                claim.run_id,
                version_id,
                extra={**fields, "event": "published", "version": version_id},
            )
        else:
            logger.info(
                "solve run %s succeeded: version %s stored, not published: %s",
                claim.run_id,
                version_id,
                unpublished,
                extra={**fields, "event": "stored", "version": version_id},
            )
        return "succeeded"
    except (RunCancelled, SolveStopped):
        heartbeat.stop()
        if heartbeat.ended.is_set():
            return "cancelled"
        if heartbeat.lost.is_set():
            return _lost(claim)
        return "cancelled" if _finish(engine, claim, "cancelled") else _lost(claim)
    except RunLost:
        heartbeat.stop()
        return "cancelled" if heartbeat.ended.is_set() else _lost(claim)
    except Exception as exc:
        heartbeat.stop()
        if heartbeat.ended.is_set():
            return "cancelled"
        if heartbeat.lost.is_set():
            return _lost(claim)
        message = exc.detail if isinstance(exc, DomainError) else f"{type(exc).__name__}: {exc}"
        logger.exception("solve run %s failed", claim.run_id)
        return "failed" if _finish(engine, claim, "failed", message[:MAX_ERROR]) else _lost(claim)
    finally:
        heartbeat.stop()


def _load(
    engine: Engine, claim: Claim, at: datetime
) -> tuple[Snapshot, IdMap, whatif.Prepared | None]:
    """The run's snapshot, read in a read-only session: a repair's first, held try
    (planning/repair.py), a what-if's lab as changed on paper, or the lab as it is."""
    with session_scope(engine, read_only=True) as session:
        lab = session.get(Lab, claim.lab_id)
        if lab is None:
            raise DomainError(f"lab {claim.lab_id} no longer exists")
        local = claim.mode == "repair"
        snapshot, idmap = load_snapshot(session, lab, at, mode=claim.mode, hold_urgent=local)
        what_if = None
        if claim.mode == "preview":  # a what-if plans the lab as changed on paper
            what_if = whatif.prepare(session, lab, claim.run_id, snapshot, idmap, at)
            if what_if is not None:
                snapshot, idmap = what_if.snapshot, what_if.idmap
    return snapshot, idmap, what_if


def _solve(
    engine: Engine,
    claim: Claim,
    snapshot: Snapshot,
    idmap: IdMap,
    at: datetime,
    heartbeat: Heartbeat,
    policy: str,
    threads: int,
    started: float,
) -> tuple[Snapshot, IdMap, Plan]:
    """Solve within what is left of the run's limit; a repair tries held, then wide."""

    def solve(snapshot: Snapshot, seconds: float) -> Plan:
        return solve_snapshot(
            snapshot,
            time_limit=seconds,
            policy=policy,
            workers=threads,
            progress=heartbeat.report,
            stop=heartbeat.stop_event,
        )

    def wide() -> repair.Loaded:
        with session_scope(engine, read_only=True) as session:
            lab = session.get(Lab, claim.lab_id)
            if lab is None:
                raise DomainError(f"lab {claim.lab_id} no longer exists")
            return repair.Loaded(*load_snapshot(session, lab, at, mode=claim.mode))

    seconds = limit_left(claim.time_limit_seconds, started, threads)
    if claim.mode != "repair":
        return snapshot, idmap, solve(snapshot, seconds)
    chosen, plan = repair.local_repair(repair.Loaded(snapshot, idmap), wide, solve, seconds)
    return chosen.snapshot, chosen.idmap, plan


def _still_ours(session: Session, claim: Claim) -> SolveRun:
    """The run's row, touched as proof this worker still holds it and it is not cancelled."""
    held = session.execute(
        update(SolveRun).where(_ours(claim)).values(heartbeat_at=utcnow(), progress=1.0)
    )
    if rows_changed(held) != 1:
        raise RunLost(f"solve run {claim.run_id} is no longer held by {claim.worker_id}")
    run = session.get(SolveRun, claim.run_id)
    assert run is not None
    if run.cancel_requested:
        raise RunCancelled(f"solve run {claim.run_id} was cancelled")
    return run


def _succeeded(
    session: Session, claim: Claim, run: SolveRun, plan: Plan, version_id: int | None
) -> None:
    """End the run and its attempt as succeeded, with the plan's figures, and say so."""
    run.status, run.finished_at = "succeeded", utcnow()
    run.objective, run.bound = plan.objective, plan.bound
    end_attempt(session, run.id, claim.attempt, "succeeded", None, run.finished_at)
    run_ended(
        session,
        run_id=run.id,
        lab_id=claim.lab_id,
        status="succeeded",
        actor=claim.worker_id,
        version_id=version_id,
    )


def _store_version(
    engine: Engine,
    claim: Claim,
    snapshot: Snapshot,
    plan: Plan,
    idmap: IdMap,
    prepared: PreparedVersion,
) -> tuple[int, str | None]:
    """Store (and maybe publish) the version; its id and why it was not published."""
    with session_scope(engine) as session:
        # The lab's write lock before any row (publishing needs it, and a request that
        # holds it may be cancelling this run); then the run row, proof it is still ours.
        lab = session.get(Lab, claim.lab_id)
        assert lab is not None
        lock_lab(session, lab.code)
        run = _still_ours(session, claim)
        version = store_plan(session, lab, run, snapshot, plan, idmap, prepared)
        unpublished: str | None = None
        if run.mode == "preview":
            unpublished = "a preview is never published"
        elif not run.auto_publish:
            unpublished = "the run does not publish automatically"
        else:
            blockers = publish_blockers(session, version)
            if blockers:  # never published by a machine: a supervisor decides
                unpublished = blockers[0]
                logger.warning(
                    "solve run %s: version %s not published: %s",
                    claim.run_id,
                    version.id,
                    "; ".join(blockers),
                    extra=claim.log_fields,
                )
                warn(version, f"not published automatically: {blockers[0]}")
            else:
                publish(session, version, actor=run.requested_by)
        _succeeded(session, claim, run, plan, version.id)
    return version.id, unpublished


def _store_what_if(engine: Engine, claim: Claim, what_if: whatif.Prepared, plan: Plan) -> str:
    """Keep a what-if's comparison on its row and end its run: no schedule version is written."""
    result = whatif.compare(what_if, plan)  # verifies the plan against the changed snapshot

    def store() -> None:
        with session_scope(engine) as session:
            run = _still_ours(session, claim)
            whatif.store_result(session, what_if.what_if_id, result)
            _succeeded(session, claim, run, plan, None)

    retry_locked(store, what=f"store what-if run {claim.run_id}", budget_seconds=_patience())
    logger.info(
        "solve run %s succeeded: what-if %s compared, nothing published",
        claim.run_id,
        what_if.what_if_id,
        extra={**claim.log_fields, "event": "what_if", "what_if": what_if.what_if_id},
    )
    return "succeeded"


def run_to_completion(
    engine: Engine,
    run_id: int,
    worker_id: str,
    *,
    policy: str = "cpsat",
    workers: int | None = None,
    now: datetime | None = None,
    poll_seconds: float = 0.5,
    timeout_seconds: float = 24 * 3600,
) -> str:
    """Execute run ``run_id`` here, or wait while another worker does; returns its final status.

    Used by ``labq reoptimize`` and the demo: the run goes through the same claim as any other,
    so it waits while its lab has another run going.
    """
    deadline = time.monotonic() + timeout_seconds
    while time.monotonic() < deadline:
        requeue_stale(engine)
        claim = claim_next(engine, worker_id, run_id=run_id)
        if claim is not None:
            status = execute(engine, claim, policy=policy, workers=workers, now=now)
            if status != "lost":
                return status
        with session_scope(engine, read_only=True) as session:
            current = session.scalar(select(SolveRun.status).where(SolveRun.id == run_id))
        if current is None:
            raise DomainError(f"solve run {run_id} does not exist")
        if current in ("succeeded", "failed", "cancelled"):
            return current
        time.sleep(poll_seconds)
    return "timeout"


def run_once(
    engine: Engine,
    worker_id: str,
    *,
    policy: str = "cpsat",
    now: datetime | None = None,
    workers: int | None = None,
) -> bool:
    """Re-queue stale runs, then claim and execute one queued run. False if there was none.

    ``workers``: CP-SAT search threads per solve (default `DEFAULT_WORKERS`)."""
    requeue_stale(engine)
    claim = claim_next(engine, worker_id)
    if claim is None:
        return False
    execute(engine, claim, policy=policy, workers=workers, now=now)
    return True


def work(
    engine: Engine,
    worker_id: str,
    stop_event: threading.Event,
    *,
    policy: str = "cpsat",
    poll_seconds: float = POLL_SECONDS,
    workers: int | None = None,
) -> None:
    """Execute runs until ``stop_event`` is set; sleeps ``poll_seconds`` when the queue is empty."""
    with log_context(worker_id=worker_id):
        _work(
            engine, worker_id, stop_event, policy=policy, poll_seconds=poll_seconds, workers=workers
        )


def _work(
    engine: Engine,
    worker_id: str,
    stop_event: threading.Event,
    *,
    policy: str,
    poll_seconds: float,
    workers: int | None,
) -> None:
    logger.info("worker %s started", worker_id)
    while not stop_event.is_set():
        try:
            busy = run_once(engine, worker_id, policy=policy, workers=workers)
        except Exception:  # keep serving: a broken run is already marked failed
            logger.exception("worker %s: unexpected error", worker_id)
            busy = False
        if not busy:
            stop_event.wait(poll_seconds)
    logger.info("worker %s stopped", worker_id)


def start_embedded_worker(
    engine: Engine, *, worker_id: str | None = None, policy: str = "cpsat"
) -> Callable[[], None]:
    """Run a worker in a daemon thread of this process (``labq serve``); returns its stop."""
    stop_event = threading.Event()
    ident = worker_id or f"embedded:{default_worker_id()}"
    thread = threading.Thread(
        target=work,
        args=(engine, ident, stop_event),
        kwargs={"policy": policy},
        name="labq-embedded-worker",
        daemon=True,
    )
    thread.start()

    def stop(timeout: float = 30.0) -> None:
        stop_event.set()
        thread.join(timeout=timeout)

    return stop
