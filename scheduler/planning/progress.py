"""Time passing, by rule: what a published assignment means once its start has passed.

Examiners forget to press start; work overruns; work finishes early. The rules, in one place
(docs/architecture.md, §7.9):

- a published job whose start has passed with no ``:start`` is **assumed started** as planned
  until its planned end plus the lab's ``start_grace_minutes``; after that it is **overdue**:
  listed for the supervisor (``GET /labs/{lab}/reports/overdue``, ``overdue`` on the job) and
  re-planned on its own. A job whose predecessor has not finished (nor is itself taken as started)
  cannot have started: it is **waiting**, re-planned after its predecessor, and not overdue; so
  is one whose examiner, workstation (up to its capacity) or licence pool (up to its licences)
  is still held by work in progress;
- work in progress is planned from its real start (``started_at``, when ``:start`` was reported);
  once it has run past its estimate it is **overrunning** and extended by its estimate;
- work done (early or not) leaves the plan, so its capacity is free for the next run.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session, aliased

from models import (
    Assignment,
    Case,
    Device,
    Examiner,
    Job,
    JobLicencePool,
    JobPredecessor,
    Lab,
    LicencePool,
    ScheduleVersion,
    Workstation,
)
from scheduler.planning.words import at_local

StartState = Literal["ahead", "waiting", "assumed_started", "overdue"]
DONE_STATUSES = ("done", "cancelled")


def missed_start(
    planned_start: datetime,
    planned_end: datetime,
    grace_minutes: int,
    now: datetime,
    *,
    predecessors_clear: bool = True,
) -> StartState:
    """Where a published, not started job stands at ``now``. ``predecessors_clear``: every
    predecessor is done or itself taken as started."""
    if planned_start >= now:
        return "ahead"
    if not predecessors_clear:
        return "waiting"
    if planned_end + timedelta(minutes=grace_minutes) > now:
        return "assumed_started"
    return "overdue"


def still_holds(
    started_at: datetime, minutes: int, attended: int, machine: int, now: datetime
) -> bool:
    """Whether work in progress since ``started_at`` still holds the resource of its part that
    runs ``minutes`` (attended: the examiner; machine: the workstation) at ``now``: the part has
    not run its estimate yet, or the job overran and this part is the one extended."""
    elapsed = (now - started_at).total_seconds() / 60
    if minutes <= 0:
        return False
    if elapsed < minutes:
        return True
    longest = estimate_minutes(attended, machine)
    return elapsed >= longest and minutes == longest


def estimate_minutes(attended: int, machine: int) -> int:
    """How long a job runs by its estimate: its longer part (both parts start together)."""
    return max(attended, machine)


def overdue_report(
    session: Session, lab: Lab, version: ScheduleVersion | None, now: datetime
) -> dict[str, Any]:
    """Jobs of the published schedule past their start with no ``:start`` reported beyond the grace
    period (overdue), and work in progress past its estimated end (overrunning)."""
    tz = ZoneInfo(lab.timezone)
    rows = _published_rows(session, version, statuses=("scheduled", "in_progress"))
    state = _stored_start_states(session, lab, version, now)
    overdue, overrunning = [], []
    for job, case_ref, device_ref, placed, examiner, workstation in rows:
        item = {
            "job_id": job.id,
            "case": case_ref,
            "device": device_ref,
            "stage": job.stage,
            "status": job.status,
            "examiner": examiner,
            "workstation": workstation,
            "planned_start": placed.starts_at,
            "planned_end": placed.ends_at,
        }
        name = f"{case_ref} {device_ref} {job.stage}"
        if job.status == "scheduled":
            if state.of(job.id) != "overdue":
                continue
            since = placed.ends_at + timedelta(minutes=lab.start_grace_minutes)
            overdue.append(
                item
                | {
                    "since": since,
                    "detail": f"{name}: planned to start {at_local(placed.starts_at, tz)}, no "
                    f"start reported; overdue since {at_local(since, tz)}; re-planned on its own",
                }
            )
        else:
            started = job.started_at or placed.starts_at
            due_end = started + timedelta(
                minutes=estimate_minutes(job.attended_minutes, job.machine_minutes)
            )
            if due_end >= now:
                continue
            overrunning.append(
                item
                | {
                    "started_at": started,
                    "since": due_end,
                    "detail": f"{name}: started {at_local(started, tz)}, estimated to end "
                    f"{at_local(due_end, tz)}; still in progress, planned to run its estimate "
                    "again",
                }
            )
    return {
        "lab": lab.code,
        "as_of": now,
        "schedule_version": version.id if version is not None else None,
        "grace_minutes": lab.start_grace_minutes,
        "overdue": sorted(overdue, key=lambda i: i["since"]),
        "overrunning": sorted(overrunning, key=lambda i: i["since"]),
    }


def overdue_job_ids(
    session: Session,
    lab: Lab,
    version: ScheduleVersion | None,
    job_ids: Iterable[int],
    now: datetime,
) -> set[int]:
    """Which of ``job_ids`` are overdue (the flag on the job)."""
    ids = list(job_ids)
    if version is None or not ids:
        return set()
    state = _stored_start_states(session, lab, version, now)
    return {job_id for job_id in ids if state.of(job_id) == "overdue"}


@dataclass(frozen=True)
class Placed:
    """A job of the published schedule as the start rule reads it."""

    status: str
    start: datetime
    end: datetime
    examiner_id: int | None
    workstation_id: int | None
    attended: int = 0  # minutes the examiner is needed from the start
    machine: int = 0  # minutes the workstation is needed from the start
    pools: tuple[int, ...] = ()  # licence pools it holds a licence of from start to end


@dataclass(frozen=True)
class UnderWay:
    """Work in progress as `held_now` reads it."""

    began: datetime
    attended: int
    machine: int
    examiner_id: int | None
    workstation_id: int | None
    pools: tuple[int, ...] = ()


def held_now(work: Iterable[UnderWay], now: datetime) -> Counter[tuple[str, int]]:
    """How many pieces of work in progress still hold each examiner ("e", id), workstation
    ("w", id) and licence pool ("p", id) at ``now`` (`still_holds`; a licence is held until the
    work is done)."""
    held: Counter[tuple[str, int]] = Counter()
    for w in work:
        for pool in w.pools:
            held["p", pool] += 1
        if w.examiner_id is not None and still_holds(
            w.began, w.attended, w.attended, w.machine, now
        ):
            held["e", w.examiner_id] += 1
        if w.workstation_id is not None and still_holds(
            w.began, w.machine, w.attended, w.machine, now
        ):
            held["w", w.workstation_id] += 1
    return held


class StartStates:
    """`missed_start` for every published job, predecessors and held resources included: the one
    traversal the loader and the overdue report share. ``preds``: job id -> (predecessor id,
    its status); ``held``: `held_now`; ``capacity``: workstation id -> parallel jobs (an
    examiner does one at a time); ``licences``: licence pool id -> its size.

    A job can only be taken as started where its examiner, workstation and licence pools had
    room: work in progress, and the jobs taken as started before it (in order of planned start),
    fill them. One that had no room is *waiting*: a GrayKey of two running two unlocks has not
    started a third, nor a sixth processing job when five hold the lab's five licences."""

    def __init__(
        self,
        placed: Mapping[int, Placed],
        preds: Mapping[int, Sequence[tuple[int, str]]],
        held: Counter[tuple[str, int]],
        grace_minutes: int,
        now: datetime,
        capacity: Mapping[int, int] | None = None,
        licences: Mapping[int, int] | None = None,
    ) -> None:
        self.placed, self.preds = placed, preds
        self.grace_minutes, self.now = grace_minutes, now
        self.capacity = capacity or {}
        self.licences = licences or {}
        self.used: Counter[tuple[str, int]] = Counter(held)
        self.states: dict[int, StartState | None] = {}
        for job_id in sorted(placed, key=lambda j: (placed[j].start, j)):
            self.of(job_id)

    def _room(self, placed: Placed) -> bool:
        if placed.examiner_id is not None and self.used["e", placed.examiner_id] >= 1:
            return False
        if any(self.used["p", pool] >= self.licences.get(pool, 1) for pool in placed.pools):
            return False
        ws = placed.workstation_id
        return ws is None or self.used["w", ws] < self.capacity.get(ws, 1)

    def _take(self, placed: Placed) -> None:
        """An assumed start holds what it would still be using now."""
        elapsed = (self.now - placed.start).total_seconds() / 60
        whole = (placed.end - placed.start).total_seconds() / 60
        if placed.examiner_id is not None and elapsed < (placed.attended or whole):
            self.used["e", placed.examiner_id] += 1
        if placed.workstation_id is not None and elapsed < (placed.machine or whole):
            self.used["w", placed.workstation_id] += 1
        if elapsed < whole:
            for pool in placed.pools:
                self.used["p", pool] += 1

    def of(self, job_id: int) -> StartState | None:
        if job_id in self.states:
            return self.states[job_id]
        self.states[job_id] = None  # a cycle in hostile data reads as "not started"
        placed = self.placed.get(job_id)
        if placed is None or placed.status != "scheduled":
            return None
        clear = all(
            status in DONE_STATUSES or self.of(pred_id) == "assumed_started"
            for pred_id, status in self.preds.get(job_id, ())
        )
        state = missed_start(
            placed.start, placed.end, self.grace_minutes, self.now, predecessors_clear=clear
        )
        if state in ("assumed_started", "overdue") and not self._room(placed):
            state = "waiting"  # what it needs is held: it cannot have started
        if state == "assumed_started":
            self._take(placed)
        self.states[job_id] = state
        return state


def _stored_start_states(
    session: Session, lab: Lab, version: ScheduleVersion | None, now: datetime
) -> StartStates:
    """`StartStates` over a stored version (the loader builds its own from its rows)."""
    if version is None:
        return StartStates({}, {}, Counter(), lab.start_grace_minutes, now)
    rows = session.execute(
        select(
            Job.id,
            Job.status,
            Assignment.starts_at,
            Assignment.ends_at,
            Assignment.examiner_id,
            Assignment.workstation_id,
            Job.started_at,
            Job.attended_minutes,
            Job.machine_minutes,
        )
        .join(Assignment, Assignment.job_id == Job.id)
        .where(Assignment.schedule_version_id == version.id)
    ).all()
    pools: dict[int, list[int]] = {}
    for job_id, pool_id in session.execute(
        select(JobLicencePool.job_id, JobLicencePool.pool_id).where(
            JobLicencePool.job_id.in_([r[0] for r in rows])
        )
    ):
        pools.setdefault(job_id, []).append(pool_id)
    placed = {
        r[0]: Placed(r[1], r[2], r[3], r[4], r[5], r[7], r[8], tuple(sorted(pools.get(r[0], ()))))
        for r in rows
    }
    capacity = dict(
        session.execute(
            select(Workstation.id, Workstation.capacity).where(Workstation.lab_id == lab.id)
        ).all()
    )
    work = [
        UnderWay(started or start, attended, machine, examiner, workstation, placed[job_id].pools)
        for job_id, status, start, _, examiner, workstation, started, attended, machine in rows
        if status == "in_progress"
    ]
    preds: dict[int, list[tuple[int, str]]] = {}
    pred = aliased(Job)
    for job_id, pred_id, status in session.execute(
        select(JobPredecessor.job_id, JobPredecessor.predecessor_id, pred.status)
        .join(pred, JobPredecessor.predecessor_id == pred.id)
        .where(JobPredecessor.job_id.in_(list(placed)))
    ):
        preds.setdefault(job_id, []).append((pred_id, status))
    held = held_now(work, now)
    return StartStates(
        placed, preds, held, lab.start_grace_minutes, now, capacity, _licence_sizes(session, lab)
    )


def _licence_sizes(session: Session, lab: Lab) -> dict[int, int]:
    """Licence pool id -> how many licences it has."""
    query = select(LicencePool.id, LicencePool.capacity).where(LicencePool.lab_id == lab.id)
    return {row.id: row.capacity for row in session.execute(query)}


def _published_rows(
    session: Session, version: ScheduleVersion | None, *, statuses: tuple[str, ...]
) -> list[tuple[Job, str, str, Assignment, str | None, str | None]]:
    if version is None:
        return []
    rows = session.execute(
        select(
            Job,
            Case.external_ref,
            Device.external_ref,
            Assignment,
            Examiner.external_ref,
            Workstation.external_ref,
        )
        .join(Assignment, Assignment.job_id == Job.id)
        .join(Device, Job.device_id == Device.id)
        .join(Case, Device.case_id == Case.id)
        .outerjoin(Examiner, Assignment.examiner_id == Examiner.id)
        .outerjoin(Workstation, Assignment.workstation_id == Workstation.id)
        .where(
            Assignment.schedule_version_id == version.id,
            Job.status.in_(statuses),
            Case.status == "open",
        )
        .order_by(Assignment.starts_at, Job.id)
    )
    return [tuple(r) for r in rows]  # type: ignore[misc]
