"""Snapshot jobs from the open jobs' rows: weights, release and due times (docs/architecture.md
§2.5), what a job waits for, and the pins of work under way (§7.9): a pinned job keeps its pin,
an in-progress job without one is pinned to its published placement, a published job past its
start with no ``:start`` is taken as started, and a placement in the past moves to the earliest
time from the epoch where its remaining work fits.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import date, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from models import Assignment as PublishedAssignment
from models import Case, Device, Job, Lab
from models.lab import target_start_minute
from scheduler.core import snapshot as core
from scheduler.core.plan import (
    NOT_A_CANDIDATE,
    PIN_CONFLICT,
    PREDECESSOR_UNSCHEDULED,
    UNPLANNABLE_RECORD,
)
from scheduler.planning.loading.idmap import Begun, Excluded, IdMap
from scheduler.planning.loading.resources import LeftOut
from scheduler.planning.loading.rows import JobData, JobRows, Row
from scheduler.planning.loading.timeline import Interval, Timeline, deepest, inside_one
from scheduler.planning.progress import (
    DONE_STATUSES,
    Placed,
    StartState,
    StartStates,
    UnderWay,
    estimate_minutes,
    held_now,
)
from scheduler.planning.words import at_local

STAGE_ALLOWANCE_HOURS = 4
"""Hours added to a job's due time per stage before it on its chain (acquire 0, process 4, ...)."""


class JobBuilder:
    """Turns the lab's open work into snapshot jobs and their pins."""

    def __init__(
        self,
        session: Session,
        lab: Lab,
        timeline: Timeline,
        idmap: IdMap,
        examiners: dict[str, core.Examiner],
        workstations: dict[str, core.Workstation],
        pool_capacity: Mapping[str, int],
        published: Mapping[int, PublishedAssignment],
        left_out: LeftOut,
        unplannable_jobs: Mapping[str, str],
        job_rows: JobRows,
    ) -> None:
        self.session = session
        self.lab = lab
        self.timeline = timeline
        self.idmap = idmap
        self.examiners = examiners
        self.workstations = workstations
        self.pool_capacity = pool_capacity  # licence pool -> its licences
        self.published = published  # job id -> assignment of the current version
        self.job_rows = job_rows
        self.rows: dict[int, Row] = job_rows.rows
        self.preds: dict[int, list[tuple[int, str]]] = job_rows.preds
        self.stages: dict[int, str] = job_rows.stages  # job id -> its stage
        self.unreadable: dict[int, str] = job_rows.unreadable  # job id -> instant it cannot plan
        self.elapsed: dict[int, int] = {}  # in-progress job -> minutes of work already done
        self.assumed: set[int] = set()  # published jobs past their start, taken as started
        self.start_states: dict[int, StartState | None] = {}  # progress.missed_start per job
        self.start_rule: StartStates | None = None  # progress.StartStates, built on first use
        self.left_out = left_out
        self.unplannable_jobs = unplannable_jobs  # job sid -> why the contract refuses it
        self.pinned_on: dict[int, tuple[int | None, datetime]] = {}  # started: examiner, start
        # examiner ref -> (day it started, exposure minutes) already reviewed by work under way
        self.exposure_done: list[tuple[str, date, int]] = []

    # -- jobs --

    def build(self) -> list[core.Job]:
        idmap = self.idmap
        pins: dict[int, core.Pin] = {}
        excluded: dict[int, Excluded] = {}
        jobs_per_problem: dict[str, int] = defaultdict(int)
        for job_id, row in self.rows.items():
            why = self._unplannable(row)
            if why is not None:
                excluded[job_id] = Excluded(job_id, UNPLANNABLE_RECORD, why)
                jobs_per_problem[why] += 1
        for why, count in jobs_per_problem.items():
            idmap.unplannable.append(why if count == 1 else f"{why} ({count} jobs)")
        for job_id, row in self.rows.items():
            if job_id in excluded:
                continue
            result = self._pin(row)
            if isinstance(result, Excluded):
                excluded[job_id] = result
            elif result is not None:
                pins[job_id] = result
        # A job waiting for one that is not planned for stays out (absent would mean done).
        outside = self.job_rows.describe_outside()
        changed = True
        while changed:
            changed = False
            for job_id, row in self.rows.items():
                if job_id in excluded or self._started(row.job):
                    continue
                for pred_id, status in self.preds.get(job_id, ()):
                    if status in DONE_STATUSES:
                        continue
                    if pred_id in self.rows and pred_id not in excluded:
                        continue
                    if pred_id in self.rows:
                        why = f"job {self.rows[pred_id].sid}, which is left out"
                    else:
                        why = outside.get(pred_id, f"job #{pred_id}, which is not planned")
                    excluded[job_id] = Excluded(job_id, PREDECESSOR_UNSCHEDULED, f"waits for {why}")
                    changed = True
                    break
        idmap.excluded.extend(excluded.values())

        depth = self.job_rows.depth()
        jobs: list[core.Job] = []
        for job_id, row in self.rows.items():
            if job_id in excluded:
                continue
            jobs.append(self._job(row, depth.get(job_id, 0), pins.get(job_id), excluded))
            idmap.jobs[row.sid] = job_id
            idmap.cases[row.case.external_ref] = row.case.id
            idmap.job_level[row.sid] = row.level.code
            idmap.job_stage[row.sid] = self.stages[job_id]
            idmap.case_level[row.case.external_ref] = row.level.code
            received = self.timeline.floor(row.case.received_at)
            target = target_start_minute(received, row.level.target_start_hours)
            idmap.case_target_start[row.case.external_ref] = target
            idmap.job_case[job_id] = row.case.id
            if self._started(row.job):
                idmap.cases_started.add(row.case.external_ref)
        started = self.session.scalars(
            select(Case.external_ref)
            .join(Device, Device.case_id == Case.id)
            .join(Job, Job.device_id == Device.id)
            .where(Case.lab_id == self.lab.id, Case.status == "open", Job.status == "done")
            .distinct()
        )
        idmap.cases_started.update(ref for ref in started if ref in idmap.case_level)
        return self._within_licences(jobs)

    def _within_licences(self, jobs: list[core.Job]) -> list[core.Job]:
        """Work in progress beyond a licence pool's size keeps running in the plan without a
        licence, named in the warnings: what the lab reports as under way never makes a version
        infeasible. Taken from the latest ``:start`` back, since a start just reported surely
        holds a licence and the oldest is most likely done with no ``:done`` yet."""
        under_way = sorted(
            (
                job
                for job in jobs
                if job.pin is not None
                and job.pools
                and self.rows[self.idmap.jobs[job.id]].job.status == "in_progress"
            ),
            key=lambda job: (self.pinned_on[self.idmap.jobs[job.id]][1], job.id),
            reverse=True,
        )
        taken: dict[str, list[Interval]] = defaultdict(list)
        without: dict[str, str] = {}  # job -> the pool it runs beyond
        for job in under_way:
            assert job.pin is not None
            span = (job.pin.start, job.pin.start + job.duration_on(job.pin.workstation))
            full = next(
                (
                    p
                    for p in job.pools
                    if deepest(taken[p], *span) + 1 > self.pool_capacity.get(p, 1)
                ),
                None,
            )
            if full is not None:
                without[job.id] = full
                continue
            for pool in job.pools:
                taken[pool].append(span)
        tz = self.timeline.tz
        out = []
        for job in jobs:
            beyond = without.get(job.id)
            if beyond is None:
                out.append(job)
                continue
            started = self.pinned_on[self.idmap.jobs[job.id]][1]
            self.idmap.warnings.append(
                f"job {job.id}: in progress since {at_local(started, tz)} while every {beyond} "
                f"licence is held by work started since; planned without a licence (report "
                ":done if it has finished)"
            )
            out.append(replace(job, pools=tuple(p for p in job.pools if p != beyond)))
        return out

    def _unplannable(self, row: Row) -> str | None:
        """Why the job cannot be planned at all, naming the record and field; None if it can."""
        job = row.job
        if job.id in self.unreadable:
            return self.unreadable[job.id]
        if row.sid in self.unplannable_jobs:
            return f"job {row.sid}: {self.unplannable_jobs[row.sid]}"
        pools = set(self.idmap.pools.values())
        for pool_id in job.pool_ids:
            if pool_id in self.left_out.pools:
                return f"job {row.sid}: its licence pool is {self.left_out.pools[pool_id]}"
            if pool_id not in pools:
                return (
                    f"job {row.sid}: licence pool #{pool_id} is not a pool of lab "
                    f"{self.lab.code!r} (licence pools)"
                )
        return None

    def _job(
        self, row: Row, depth: int, pin: core.Pin | None, excluded: dict[int, Excluded]
    ) -> core.Job:
        job, tl = row.job, self.timeline
        level, case = row.level, row.case
        # In minutes, not datetimes: a target past year 9999 is only late, never an overflow.
        hours = level.target_start_hours + STAGE_ALLOWANCE_HOURS * depth
        target = target_start_minute(tl.floor(case.received_at), hours)
        self.idmap.job_target_due[row.sid] = target
        if case.legal_deadline_at is not None:
            self.idmap.job_deadline[row.sid] = tl.floor(case.legal_deadline_at)
            target = min(target, tl.floor(case.legal_deadline_at))
        due = min(core.MAX_MINUTES, max(0, target))
        release = min(core.MAX_MINUTES, max(0, tl.ceil(row.device.arrived_at)))

        attended, machine, exposure = (
            job.attended_minutes,
            job.machine_minutes,
            job.exposure_minutes,
        )
        by_ws: dict[str, int] | None = None
        if job.workstation_minutes:
            ids = job.workstation_minutes
            by_ws = {
                ref: ids[db_id] for ref, db_id in self.idmap.workstations.items() if db_id in ids
            }
        if exposure > attended:
            self.idmap.warnings.append(
                f"job {row.sid}: exposure {exposure} min exceeds attended {attended} min; "
                "planned with exposure = attended"
            )
            exposure = attended
        allowed: tuple[str, ...] | None = None
        if job.allowed_examiner_ids:
            allowed_ids = set(job.allowed_examiner_ids)
            allowed = tuple(
                ref for ref, db_id in self.idmap.examiners.items() if db_id in allowed_ids
            )
        after: list[str] = []
        if not self._started(job):  # a started job no longer waits for anything
            for pred_id, status in self.preds.get(job.id, ()):
                if status not in DONE_STATUSES and pred_id in self.rows:
                    after.append(self.rows[pred_id].sid)
        if pin is not None:
            release = min(release, pin.start)
            full_exposure = exposure
            attended, machine, exposure, by_ws = self._remaining(row, pin, by_ws)
            self._count_exposure_done(row, full_exposure - exposure)
        pool_names = {db_id: name for name, db_id in self.idmap.pools.items()}
        return core.Job(
            id=row.sid,
            case=case.external_ref,
            weight=level.weight,
            release=release,
            due=due,
            attended=attended,
            machine=machine,
            machine_by_workstation=by_ws,
            skills=frozenset(job.skills),
            capabilities=frozenset(job.capabilities),
            pools=tuple(sorted(pool_names[p] for p in job.pool_ids)),
            examiners=allowed,
            exposure=exposure,
            severity=job.severity,
            after=tuple(sorted(after)),
            pin=pin,
        )

    # -- pins --

    def _pin_source(self, row: Row) -> tuple[int | None, int | None, datetime, str] | None:
        job = row.job
        if job.pin_start_at is not None:
            return job.pin_examiner_id, job.pin_workstation_id, job.pin_start_at, "pinned"
        if self._missed_start(row):
            assumed = self.published[job.id]
            self.idmap.begun[row.sid] = Begun(
                assumed.starts_at, assumed.ends_at, assumed.examiner_id, assumed.workstation_id
            )
            return assumed.examiner_id, assumed.workstation_id, assumed.starts_at, "assumed started"
        if job.status == "in_progress":
            placed = self.published.get(job.id)
            if placed is None:
                self.idmap.warnings.append(
                    f"job {row.sid} is in progress without a pin or a published placement; "
                    "planned like a pending job"
                )
                return None
            # planned from its real start where ``:start`` recorded one (progress.py)
            started = job.started_at or placed.starts_at
            self.idmap.begun[row.sid] = Begun(
                started, None, placed.examiner_id, placed.workstation_id
            )
            return placed.examiner_id, placed.workstation_id, started, "in progress"
        return None

    def _missed_start(self, row: Row) -> bool:
        """A published job whose start has passed with no ``:start``: taken as started as planned
        (its remaining work pinned where it is) until its planned end plus the lab's
        ``start_grace_minutes``, so a missing click never re-plans its chain. After that it is
        overdue: named in the warnings and re-planned on its own. One whose predecessor has not
        finished is waiting, not started (progress.py)."""
        return self._start_state(row) == "assumed_started"

    def _start_state(self, row: Row) -> StartState | None:
        job, tl = row.job, self.timeline
        if job.id in self.start_states:
            return self.start_states[job.id]
        state = self._start_rule().of(job.id)
        self.start_states[job.id] = state
        if state == "assumed_started":
            self.assumed.add(job.id)
        elif state == "overdue":
            placed = self.published[job.id]
            self.idmap.warnings.append(
                f"job {row.sid} is overdue: its published start "
                f"{at_local(placed.starts_at, tl.tz)} passed with no :start and its planned end "
                f"plus {self.lab.start_grace_minutes} min too; re-planned"
            )
            self.idmap.overdue.append(row.sid)
        return state

    def _start_rule(self) -> StartStates:
        """progress.StartStates over the published jobs still open, built once."""
        if self.start_rule is None:
            placed = {
                job_id: Placed(
                    row.job.status,
                    a.starts_at,
                    a.ends_at,
                    a.examiner_id,
                    a.workstation_id,
                    row.job.attended_minutes,
                    row.job.machine_minutes,
                    tuple(sorted(row.job.pool_ids)),
                )
                for job_id, a in self.published.items()
                if (row := self.rows.get(job_id)) is not None
            }
            capacity = {
                self.idmap.workstations[ref]: ws.capacity
                for ref, ws in self.workstations.items()
                if ref in self.idmap.workstations
            }
            work = [
                UnderWay(
                    row.job.started_at or where.starts_at,
                    row.job.attended_minutes,
                    row.job.machine_minutes,
                    where.examiner_id,
                    where.workstation_id,
                    tuple(sorted(row.job.pool_ids)),
                )
                for row in self.rows.values()
                if row.job.status == "in_progress"
                and row.job.pin_start_at is None
                and (where := self.published.get(row.job.id)) is not None
            ]
            held = held_now(work, self.timeline.epoch)
            grace = self.lab.start_grace_minutes
            licences = {
                self.idmap.pools[name]: size
                for name, size in self.pool_capacity.items()
                if name in self.idmap.pools
            }
            self.start_rule = StartStates(
                placed, self.preds, held, grace, self.timeline.epoch, capacity, licences
            )
        return self.start_rule

    def _started(self, job: JobData) -> bool:
        """In progress, or taken as started (``_missed_start``)."""
        return job.status == "in_progress" or job.id in self.assumed

    def _pin(self, row: Row) -> core.Pin | Excluded | None:
        source = self._pin_source(row)
        if source is None:
            return None
        examiner_id, ws_id, start_at, what = source
        idmap, tl = self.idmap, self.timeline
        self.pinned_on[row.job.id] = (examiner_id, start_at)
        examiner = workstation = None
        if examiner_id is not None:
            refs = {db_id: ref for ref, db_id in idmap.examiners.items()}
            if examiner_id in self.left_out.examiners:
                self._without_pin(row, what, self.left_out.examiners[examiner_id])
                return None
            if examiner_id not in refs:
                return Excluded(
                    row.job.id, PIN_CONFLICT, f"{what} with an examiner who is not active"
                )
            examiner = refs[examiner_id]
        if ws_id is not None:
            refs = {db_id: ref for ref, db_id in idmap.workstations.items()}
            if ws_id in self.left_out.workstations:
                self._without_pin(row, what, self.left_out.workstations[ws_id])
                return None
            if ws_id not in refs:
                return Excluded(
                    row.job.id, PIN_CONFLICT, f"{what} on a workstation that is not active"
                )
            workstation = refs[ws_id]
        start = tl.floor(start_at)
        if start >= tl.horizon:
            local = start_at.astimezone(tl.tz).strftime("%Y-%m-%d %H:%M")
            return Excluded(
                row.job.id, NOT_A_CANDIDATE, f"{what} to start {local}, after the planning horizon"
            )
        if start >= 0:
            return core.Pin(examiner=examiner, workstation=workstation, start=start)
        pin = core.Pin(examiner=examiner, workstation=workstation, start=0)
        attended, machine, exposure, _ = self._remaining(row, pin, None, elapsed=-start)
        moved = self._earliest_fit(examiner, workstation, attended, machine, exposure)
        if moved is None:
            idmap.warnings.append(
                f"job {row.sid}: {what} placement is in the past and its remaining work fits "
                "nowhere on the pinned examiner/workstation; planned without the pin"
            )
            return None
        if self._started(row.job):
            self.elapsed[row.job.id] = -start
        # a part already done needs its resource no longer (the examiner, once attended is over)
        return core.Pin(
            examiner=examiner if attended > 0 else None,
            workstation=workstation if machine > 0 else None,
            start=moved,
        )

    def _count_exposure_done(self, row: Row, minutes: int) -> None:
        """Exposure already reviewed by work under way counts against the day it started on, as
        a log would (docs/architecture.md §7.9): without it the caps would see only the minutes
        still to do, and a second review could be planned beside the first over the cap."""
        examiner_id, start_at = self.pinned_on.get(row.job.id, (None, None))
        if minutes <= 0 or examiner_id is None or start_at is None:
            return
        ref = next((r for r, db_id in self.idmap.examiners.items() if db_id == examiner_id), None)
        if ref is not None:
            self.exposure_done.append((ref, start_at.astimezone(self.timeline.tz).date(), minutes))

    def _without_pin(self, row: Row, what: str, resource: str) -> None:
        self.idmap.warnings.append(
            f"job {row.sid}: its {what} placement names {resource}; planned without the pin"
        )

    def _remaining(
        self,
        row: Row,
        pin: core.Pin,
        by_ws: dict[str, int] | None,
        *,
        elapsed: int | None = None,
    ) -> tuple[int, int, int, dict[str, int] | None]:
        """Attended, machine and exposure minutes still to do, and the workstation restriction.

        Only an in-progress job whose start lies in the past has done part of its work; one that
        overran keeps a slot of each part it has.
        """
        job = row.job
        machine = job.machine_minutes
        if pin.workstation is not None and job.workstation_minutes:
            ws_id = self.idmap.workstations[pin.workstation]
            machine = job.workstation_minutes.get(ws_id, machine)
        attended, exposure = job.attended_minutes, min(job.exposure_minutes, job.attended_minutes)
        if job.id in self.assumed:
            # Taken as started as planned: each part ends where the published placement has it
            # (that placement may itself be what was left of the work at an earlier run).
            placed, tl = self.published[job.id], self.timeline
            start, end = tl.floor(placed.starts_at), tl.floor(placed.ends_at)
            left_attended = max(0, start + min(attended, end - start))
            left_machine = max(0, start + min(machine, end - start))
            by_left = by_ws
            if by_ws is not None and pin.workstation is not None:
                by_left = {pin.workstation: left_machine}
            if left_machine == 0:
                by_left = None  # the machine part is over: no workstation is needed any more
            return left_attended, left_machine, min(exposure, left_attended), by_left
        if elapsed is None:
            elapsed = self.elapsed.get(job.id, 0)
        if elapsed <= 0 or not self._started(job):
            return attended, job.machine_minutes, exposure, by_ws
        left_attended = max(0, attended - elapsed)
        left_machine = max(0, machine - elapsed)
        left_exposure = min(exposure, left_attended)
        if left_attended == 0 and left_machine == 0 and job.status == "in_progress":
            # overrunning: past its estimate and not done, it is extended by its estimate (the part
            # that ends it runs that long again; progress.py); a job only taken as started
            # (``_missed_start``) ends as planned. Its exposure is reviewed and counted on the
            # day it started, so the extension plans none.
            longest = estimate_minutes(attended, machine)
            left_attended = attended if attended == longest else 0
            left_machine = machine if machine == longest else 0
        new_by_ws = None
        if by_ws is not None and pin.workstation is not None:
            new_by_ws = {pin.workstation: left_machine}
        elif by_ws is not None:
            new_by_ws = by_ws
        if left_machine == 0:
            new_by_ws = None  # the machine part is over: no workstation is needed any more
        return left_attended, left_machine, left_exposure, new_by_ws

    def _earliest_fit(
        self,
        examiner: str | None,
        workstation: str | None,
        attended: int,
        machine: int,
        exposure: int,
    ) -> int | None:
        ex = self.examiners.get(examiner) if examiner is not None else None
        ws = self.workstations.get(workstation) if workstation is not None else None
        ex_windows: Sequence[Interval] = ()
        if ex is not None:
            ex_windows = ex.exposure.windows if exposure > 0 else ex.available
        ws_windows: Sequence[Interval] = ws.available if ws is not None else ()
        candidates = sorted({0, *(a for a, _ in ex_windows), *(a for a, _ in ws_windows)})
        horizon = self.timeline.horizon
        for t in candidates:
            if t + max(attended, machine) > horizon:
                break
            if ex is not None and attended > 0 and not inside_one(t, t + attended, ex_windows):
                continue
            if ws is not None and machine > 0 and not inside_one(t, t + machine, ws_windows):
                continue
            return t
        return None
