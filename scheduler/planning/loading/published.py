"""The published schedule as the snapshot's ``previous``, and the pins of a repair
(docs/architecture.md §2.4, §7.3, §7.7).

``previous`` is the current published version's placements still ahead. A frozen one that no
longer fits (absence, skills, maintenance, work under way that now holds its resource, a
predecessor that is re-planned) is dropped with a warning, so it is re-planned rather than
reported as a conflict. In ``repair`` mode every unchanged placement past the repair window that
still fits is pinned, so only the window and the changed jobs are re-solved.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import datetime

from models import ScheduleVersion
from scheduler.core import snapshot as core
from scheduler.core.eligibility import examiner_can_take, workstation_can_take
from scheduler.core.rules.exposure import ExposureLedger
from scheduler.planning.loading.jobs import JobBuilder
from scheduler.planning.loading.timeline import NEAR_CHANGES, Interval, deepest, inside_one
from scheduler.planning.words import local_time

REPAIR_WINDOW_WORKING_DAYS = 2

#: Steps in which `PublishedSchedule._room_before` looks for a start (the slot granularity).
ROOM_STEP_MINUTES = 15


class Held:
    """What pinned and kept work holds: examiners, workstations up to their capacity, licence
    pools up to their size. Used to keep only those published placements that still fit beside
    work under way (a placement that does not would make the version infeasible)."""

    def __init__(
        self,
        workstations: Mapping[str, core.Workstation],
        pool_capacity: Mapping[str, int],
        draft: core.Snapshot | None = None,
    ) -> None:
        self.workstations = workstations
        self.pool_capacity = pool_capacity
        self.used: dict[tuple[str, str], list[Interval]] = defaultdict(list)
        # exposure caps too, when the snapshot's examiners and days are known (logged minutes
        # and those already reviewed by work under way count first: rules/exposure.py)
        self.draft = draft
        self.exposure = ExposureLedger(draft) if draft is not None else None
        self.exposed = False

    @property
    def empty(self) -> bool:
        return not self.used and not self.exposed

    def _needs(
        self, job: core.Job, examiner: str | None, workstation: str | None, start: int
    ) -> list[tuple[tuple[str, str], int, int, int]]:
        out = []
        if examiner is not None and job.attended > 0:
            out.append((("examiner", examiner), 1, start, start + job.attended))
        if workstation is not None and job.machine_on(workstation) > 0:
            ws = self.workstations.get(workstation)
            end = start + job.machine_on(workstation)
            out.append((("workstation", workstation), ws.capacity if ws else 1, start, end))
        for pool in job.pools:
            end = start + job.duration_on(workstation)
            out.append((("pool", pool), self.pool_capacity.get(pool, 1), start, end))
        return out

    def take(
        self, job: core.Job, examiner: str | None, workstation: str | None, start: int
    ) -> None:
        for key, _, a, b in self._needs(job, examiner, workstation, start):
            self.used[key].append((a, b))
        reviewer = self._examiner(job, examiner)
        if reviewer is not None and self.exposure is not None:
            self.exposure.take_at(job, reviewer, start)
            self.exposed = True

    def _examiner(self, job: core.Job, examiner: str | None) -> core.Examiner | None:
        if examiner is None or job.exposure <= 0 or self.draft is None:
            return None
        return self.draft.examiners_by_id.get(examiner)

    def full(
        self, job: core.Job, examiner: str | None, workstation: str | None, start: int
    ) -> str | None:
        """The resource the placement would overfill, in words, or None when it fits."""
        for (kind, name), capacity, a, b in self._needs(job, examiner, workstation, start):
            if deepest(self.used[(kind, name)], a, b) + 1 > capacity:
                return f"the {name} licences" if kind == "pool" else f"{kind} {name}"
        reviewer = self._examiner(job, examiner)
        if reviewer is not None and self.exposure is not None:
            cap = self.exposure.exceeded_at(job, reviewer, start)
            if cap is not None:
                return f"the {cap.rule} of examiner {reviewer.id}"
        return None


class PublishedSchedule:
    """The current version's placements beside the jobs a `JobBuilder` built."""

    def __init__(self, builder: JobBuilder) -> None:
        self.lab = builder.lab
        self.timeline = builder.timeline
        self.idmap = builder.idmap
        self.examiners = builder.examiners
        self.workstations = builder.workstations
        self.published = builder.published  # job id -> assignment of the current version
        self.rows = builder.rows
        self.changed_since = builder.job_rows.changed_since
        self.case_changed = builder.job_rows.case_changed  # job id -> when its case last changed
        self.dropped: set[str] = set()  # jobs whose published placement was dropped
        # the snapshot as built so far (examiners, days, weeks), for the exposure caps
        self.draft: core.Snapshot | None = None

    def previous(
        self, jobs: Sequence[core.Job], pool_capacity: Mapping[str, int]
    ) -> list[core.PreviousAssignment]:
        """The published assignments still ahead, minus frozen ones that can no longer be kept.

        A pinned job is left out (its pin governs). A frozen assignment is dropped, and so
        re-planned, when it no longer fits (absence, skills, workstation) or when a predecessor is
        not itself kept in time (dropped, re-planned, or pinned where it cannot run): keeping it
        would only turn it into a pin conflict.
        """
        tl, idmap = self.timeline, self.idmap
        examiner_refs = {db_id: ref for ref, db_id in idmap.examiners.items()}
        ws_refs = {db_id: ref for ref, db_id in idmap.workstations.items()}
        by_sid = {job.id: job for job in jobs}
        kept: dict[str, core.PreviousAssignment] = {}
        for job_id, placed in self.published.items():
            row = self.rows.get(job_id)
            if row is None or row.sid not in by_sid or by_sid[row.sid].pin is not None:
                continue
            start = tl.floor(placed.starts_at)
            if start < 0:
                continue  # in the past: re-planned (or pinned if it started)
            ex_id, ws_id = placed.examiner_id, placed.workstation_id
            if (ex_id is not None and ex_id not in examiner_refs) or (
                ws_id is not None and ws_id not in ws_refs
            ):
                self.dropped.add(row.sid)
                continue
            prev = core.PreviousAssignment(
                job=row.sid,
                examiner=examiner_refs.get(ex_id) if ex_id is not None else None,
                workstation=ws_refs.get(ws_id) if ws_id is not None else None,
                start=start,
                changes=NEAR_CHANGES if start < tl.near_until else 1,
            )
            job = by_sid[row.sid]
            if start < tl.frozen_until and not self._still_fits(job, prev):
                self.dropped.add(row.sid)
                idmap.warnings.append(
                    f"job {row.sid}: its published placement no longer fits "
                    "(availability, skills or workstation changed); re-planned"
                )
                continue
            kept[row.sid] = prev
        self._drop_clashing_with_pins(by_sid, kept, pool_capacity)
        self._yield_to_urgent(by_sid, kept, pool_capacity)
        self._drop_stranded(by_sid, kept)
        return sorted(kept.values(), key=lambda p: (p.start, p.job))

    def _yield_to_urgent(
        self,
        by_sid: dict[str, core.Job],
        kept: dict[str, core.PreviousAssignment],
        pool_capacity: Mapping[str, int],
    ) -> None:
        """Give up the frozen room lighter work holds to P1/P2 work that has none before its
        case's target start (or, already late, before the frozen window ends): the frozen window
        must not make a child-at-risk case wait for a possession referral's unlock. Only an
        urgent case not started yet asks, for a job that waits for nothing, and only the room it
        could use (the workstations and licences it needs, or else the examiners who may take
        it). What gives way is still published work: it moves only where the search finds that
        worth its changes, and the warnings name it. Nothing gives way when that room would not
        let the job start in time either."""
        tl, idmap = self.timeline, self.idmap
        frozen = {sid: p for sid, p in kept.items() if p.start < tl.frozen_until}
        if not frozen:
            return
        held = self._held(by_sid, frozen, pool_capacity)
        for job in sorted(by_sid.values(), key=lambda j: (-j.weight, j.id)):
            target = idmap.case_target_start.get(job.case)
            if (
                target is None
                or target >= tl.frozen_until
                or not idmap.is_urgent(job.case)
                or job.case in idmap.cases_started
                or job.pin is not None
                or job.id in frozen
                or any(p in by_sid for p in job.after)
            ):
                continue
            by = target if target >= 0 else tl.frozen_until
            if job.release > by or self._room_before(job, held, by):
                continue
            giving = [
                sid
                for sid, prev in frozen.items()
                if prev.frozen
                and by_sid[sid].weight < job.weight
                and self._in_the_way(job, by_sid[sid], prev)
            ]
            staying = {sid: p for sid, p in frozen.items() if sid not in giving}
            if not self._room_before(job, self._held(by_sid, staying, pool_capacity), by):
                continue  # that room would not let it start in time either (a closed weekend)
            for sid in giving:
                kept[sid] = replace(kept[sid], frozen=False)
            if giving:
                idmap.warnings.append(
                    f"{len(giving)} frozen placement(s) of less urgent work may give way to job "
                    f"{job.id}, which has no room before {local_time(tl, max(by, 0))} otherwise: "
                    + ", ".join(sorted(giving))
                )

    def _held(
        self,
        by_sid: Mapping[str, core.Job],
        frozen: Mapping[str, core.PreviousAssignment],
        pool_capacity: Mapping[str, int],
    ) -> Held:
        """What pinned work and the ``frozen`` placements hold, taken in order of start."""
        held = Held(self.workstations, pool_capacity, self.draft)
        for job in by_sid.values():
            if job.pin is not None:
                held.take(job, job.pin.examiner, job.pin.workstation, job.pin.start)
        for sid, prev in sorted(frozen.items(), key=lambda kv: (kv[1].start, kv[0])):
            held.take(by_sid[sid], prev.examiner, prev.workstation, prev.start)
        return held

    def _room_before(self, job: core.Job, held: Held, by: int) -> bool:
        """Whether the job could start by ``by`` beside pinned and frozen work (windows, skills,
        capacity and licences; the exposure caps are left to the solve)."""
        examiners: list[str | None] = [None]
        if job.needs_examiner:
            examiners = [e for e, ex in self.examiners.items() if examiner_can_take(job, ex)]
        stations: list[str | None] = [None]
        if job.needs_workstation:
            stations = [w for w, ws in self.workstations.items() if workstation_can_take(job, ws)]
        for start in range(max(job.release, 0), by + 1, ROOM_STEP_MINUTES):
            for ws in stations:
                for ex in examiners:
                    prev = core.PreviousAssignment(job.id, ex, ws, start)
                    if self._still_fits(job, prev) and held.full(job, ex, ws, start) is None:
                        return True
        return False

    def _in_the_way(self, job: core.Job, other: core.Job, placed: core.PreviousAssignment) -> bool:
        """Whether ``placed`` holds room ``job`` could use from its release: a workstation it may
        run on or a licence pool it needs (or, for work with no workstation, an examiner who may
        take it)."""
        if placed.start + other.duration_on(placed.workstation) <= job.release:
            return False
        if job.needs_workstation:
            ws = self.workstations.get(placed.workstation) if placed.workstation else None
            on_station = ws is not None and workstation_can_take(job, ws)
            return on_station or bool(set(job.pools) & set(other.pools))
        ex = self.examiners.get(placed.examiner) if placed.examiner else None
        return ex is not None and other.attended > 0 and examiner_can_take(job, ex)

    def _drop_clashing_with_pins(
        self,
        by_sid: dict[str, core.Job],
        kept: dict[str, core.PreviousAssignment],
        pool_capacity: Mapping[str, int],
    ) -> None:
        """Drop frozen assignments that no longer fit beside pinned work: work in progress that
        overran and is extended by its estimate, or started late, or a missed start taken as
        started (progress.py) may now hold the examiner, the workstation (up to its capacity) or
        a licence pool (up to its size) when a frozen placement needs it, or leave no room under
        an examiner's exposure caps (logged minutes count too). Keeping those would
        make the version infeasible; re-planned, each moves only as far as it must. Frozen
        placements are taken in order of start, each kept if it still fits."""
        held = self._held(by_sid, {}, pool_capacity)
        if held.empty and self.draft is None:
            return
        frozen_until = self.timeline.frozen_until
        for sid, prev in sorted(kept.items(), key=lambda kv: (kv[1].start, kv[0])):
            if prev.start >= frozen_until:
                continue
            job = by_sid[sid]
            full = held.full(job, prev.examiner, prev.workstation, prev.start)
            if full is None:
                held.take(job, prev.examiner, prev.workstation, prev.start)
                continue
            del kept[sid]
            self.dropped.add(sid)
            self.idmap.warnings.append(
                f"job {sid}: its published placement no longer fits beside work under way on "
                f"{full}; re-planned"
            )

    def _drop_stranded(
        self, by_sid: dict[str, core.Job], kept: dict[str, core.PreviousAssignment]
    ) -> None:
        """Drop frozen assignments whose predecessors are not kept to end before them."""
        frozen_until = self.timeline.frozen_until
        pin_fits = {
            job.id: self._still_fits(
                job,
                core.PreviousAssignment(
                    job.id, job.pin.examiner, job.pin.workstation, job.pin.start
                ),
            )
            for job in by_sid.values()
            if job.pin is not None
        }

        def ends_in_time(pred: core.Job, start: int) -> bool:
            if pred.pin is not None:
                end = pred.pin.start + pred.duration_on(pred.pin.workstation)
                return pin_fits[pred.id] and end <= start
            placed = kept.get(pred.id)
            if placed is None or placed.start >= frozen_until:
                return False
            return placed.start + pred.duration_on(placed.workstation) <= start

        changed = True
        while changed:
            changed = False
            for sid, prev in sorted(kept.items(), key=lambda kv: kv[1].start):
                if prev.start >= frozen_until:
                    continue
                waits = [p for p in by_sid[sid].after if p in by_sid]
                late = next((p for p in waits if not ends_in_time(by_sid[p], prev.start)), None)
                if late is None:
                    continue
                del kept[sid]
                self.dropped.add(sid)
                self.idmap.warnings.append(
                    f"job {sid}: its published placement waits for {late}, which is re-planned; "
                    "re-planned too"
                )
                changed = True

    def _still_fits(self, job: core.Job, prev: core.PreviousAssignment) -> bool:
        end_attended = prev.start + job.attended
        ex = self.examiners.get(prev.examiner) if prev.examiner is not None else None
        ws = self.workstations.get(prev.workstation) if prev.workstation is not None else None
        if job.needs_examiner:
            if ex is None or not examiner_can_take(job, ex):
                return False
            windows = ex.exposure.windows if job.exposure > 0 else ex.available
            if not inside_one(prev.start, end_attended, windows):
                return False
        elif ex is not None:
            return False
        if job.needs_workstation:
            if ws is None or not workstation_can_take(job, ws):
                return False
            end_machine = prev.start + job.machine_on(ws.id)
            if job.machine_on(ws.id) > 0 and not inside_one(prev.start, end_machine, ws.available):
                return False
        elif ws is not None:
            return False
        if prev.start < job.release:
            return False
        return prev.start + job.duration_on(prev.workstation) <= self.timeline.horizon

    def _urgent_on_time(self, job: core.Job, placed: core.PreviousAssignment) -> bool:
        """A P1/P2 job whose published placement ends by its due time."""
        if not self.idmap.is_urgent(job.case):
            return False
        return job.due is None or placed.start + job.duration_on(placed.workstation) <= job.due

    def repair_pins(
        self,
        jobs: list[core.Job],
        previous: Sequence[core.PreviousAssignment],
        current: ScheduleVersion,
        pool_capacity: Mapping[str, int],
        hold_urgent: bool = False,
    ) -> list[core.Job]:
        """Pin unchanged published work beyond the repair window; re-solve the rest. With
        ``hold_urgent``, unchanged work of P1/P2 cases that is on time where it is published is
        pinned from the frozen window on (an escalated case's work is late where it was put as
        a less urgent case, so it stays free).

        Only what still fits is pinned: beside work under way (an overrun extended by its
        estimate holds its examiner, workstation and licences longer), beside the frozen
        placements, and after each predecessor's pinned end. What no longer fits is re-planned,
        not turned into a pin conflict that would hold the whole repair back."""
        tl = self.timeline
        window_end = tl.horizon
        if tl.day_dates:
            window_end = tl.end_of_working_day(
                tl.day_dates[0], self.lab.frozen_working_days + REPAIR_WINDOW_WORKING_DAYS
            )
        published_at = current.published_at or current.created_at
        keep: dict[str, core.PreviousAssignment] = {}
        by_sid = {job.id: job for job in jobs}
        idmap = self.idmap
        self._mark_triggered(jobs, previous, published_at)
        for prev in previous:
            job_id = idmap.jobs[prev.job]
            held_from = window_end
            if hold_urgent and self._urgent_on_time(by_sid[prev.job], prev):
                held_from = tl.frozen_until
            if prev.start < held_from or prev.job in self.dropped:
                continue
            if self.changed_since.get(job_id, published_at) > published_at:
                continue
            if by_sid[prev.job].pin is not None:
                continue
            if not self._still_fits(by_sid[prev.job], prev):
                continue  # e.g. the examiner is now absent then: re-planned, not a pin conflict
            keep[prev.job] = prev
        self._keep_beside_held(jobs, previous, keep, pool_capacity)
        self._keep_chains(jobs, previous, keep)
        out = []
        for job in jobs:
            kept = keep.get(job.id)
            if kept is None:
                out.append(job)
                continue
            pin = core.Pin(examiner=kept.examiner, workstation=kept.workstation, start=kept.start)
            out.append(replace(job, pin=pin, release=min(job.release, kept.start)))
        return out

    def _mark_triggered(
        self,
        jobs: Sequence[core.Job],
        previous: Sequence[core.PreviousAssignment],
        published_at: datetime,
    ) -> None:
        """Name in ``idmap.triggered`` the jobs new, dropped or changed since publication."""
        idmap = self.idmap
        published_jobs = {p.job for p in previous}
        for job in jobs:
            db_id = idmap.jobs[job.id]
            if (
                job.id not in published_jobs
                or job.id in self.dropped
                or self.changed_since.get(db_id, published_at) > published_at
                # a case changed in the very instant of publication (a clock that stands still)
                # counts as changed: this only chooses what a repair compares, never what it pins
                or self.case_changed.get(db_id, published_at) >= published_at
            ):
                idmap.triggered.add(job.id)

    def _keep_beside_held(
        self,
        jobs: Sequence[core.Job],
        previous: Sequence[core.PreviousAssignment],
        keep: dict[str, core.PreviousAssignment],
        pool_capacity: Mapping[str, int],
    ) -> None:
        """Let go of the placements in ``keep`` that no longer fit beside pinned and frozen work,
        taken in order of start."""
        tl = self.timeline
        by_sid = {job.id: job for job in jobs}
        frozen = {
            p.job: p
            for p in previous
            if p.frozen and p.start < tl.frozen_until and p.job not in self.dropped
        }
        held = self._held(by_sid, frozen, pool_capacity)
        for sid, prev in sorted(keep.items(), key=lambda kv: (kv[1].start, kv[0])):
            job = by_sid[sid]
            if held.full(job, prev.examiner, prev.workstation, prev.start) is None:
                held.take(job, prev.examiner, prev.workstation, prev.start)
            else:
                del keep[sid]

    def _keep_chains(
        self,
        jobs: Sequence[core.Job],
        previous: Sequence[core.PreviousAssignment],
        keep: dict[str, core.PreviousAssignment],
    ) -> None:
        """Let go of the placements in ``keep`` whose predecessors are not kept to end first."""
        by_sid = {job.id: job for job in jobs}
        tl = self.timeline
        # A successor is kept only if each present predecessor is kept too (pinned, kept here,
        # or a frozen placement, which stays exactly where it is), and ends before it starts.
        frozen = {
            p.job: p for p in previous if p.start < tl.frozen_until and p.job not in self.dropped
        }

        def ends_by(pred: str, start: int) -> bool:
            job = by_sid[pred]
            placed = job.pin or keep.get(pred) or frozen.get(pred)
            if placed is None:
                return False
            return placed.start + job.duration_on(placed.workstation) <= start

        changed = True
        while changed:
            changed = False
            for sid in list(keep):
                waits = [p for p in by_sid[sid].after if p in by_sid]
                if not all(ends_by(p, keep[sid].start) for p in waits):
                    del keep[sid]
                    changed = True
