"""Database -> `Snapshot`: one lab's planning problem, as the engine reads it.

The contract it fills, and its place among the layers: docs/architecture.md §6, §7.3.

Times
    The epoch is ``now`` rounded up to the lab's slot (in lab-local wall-clock time). The horizon
    runs to the end (local midnight) of the lab's ``planning_horizon_days``-th *working day*; a
    working day is a weekday on which some active examiner has a shift (Monday to Friday if no one
    has any), and today counts only while a shift is still running. ``days`` are lab-local days
    (the first one starts at the epoch; DST days are 23 or 25 hours long) and ``weeks`` start on
    local Mondays. All arithmetic is done on UTC instants, so a DST change never shifts a shift.

Examiners
    Availability is the weekly shift pattern minus absences; exposure windows are the available
    time before the examiner's cut-off on each day. Logged exposure of earlier days this week is
    ``used_this_week``, logged exposure on a day of the horizon is ``used_by_day``.

Jobs
    Pending, scheduled and in-progress jobs of open cases. ``weight`` is the case's priority
    weight; ``release`` the device's arrival (clamped to 0); ``due`` the earlier of
    ``received_at + target_start_hours + STAGE_ALLOWANCE_HOURS x position`` and the legal deadline,
    where ``position`` is the number of stages before the job on the longest predecessor chain
    (done ones included, so a due time does not move as work finishes). Done and cancelled
    predecessors are omitted (absent = done). A job waiting for one that is not planned (on hold,
    case closed) is left out of the snapshot and reported as ``predecessor_unscheduled``.

Unplannable records
    A stored record that cannot become planning data (an instant out of range, a reference that
    no longer resolves, a number past the contract's bounds; `scheduler.planning.plannable`) is
    left out, named with its field: its jobs as ``unplannable_record``, an examiner, workstation
    or pool in the warnings (a pin on one is dropped). The rest of the lab is planned.

Pins
    A pinned job keeps its pin; an in-progress job without one is pinned to its published
    placement. A placement in the past is moved to the earliest time from the epoch where its
    remaining work fits the pinned examiner's and workstation's windows (an in-progress job keeps
    only the minutes not yet elapsed); if none does the pin is dropped and a warning recorded.

Published schedule
    ``previous`` is the current published version. A frozen assignment (starting before
    ``frozen_until``, the end of the ``frozen_working_days``-th working day after today) that no
    longer fits (absence, skills, maintenance) is dropped with a warning, so it is re-planned rather
    than reported as a conflict. In ``repair`` mode, every assignment that starts after the repair
    window (two working days past the frozen horizon), whose job and case have not changed since
    publication and that still fits is pinned, so only the window and the changed jobs are
    re-solved.
"""

from __future__ import annotations

import logging
import math
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session, aliased, selectinload

from models import Assignment as PublishedAssignment
from models import (
    Case,
    Device,
    Examiner,
    ExposureLog,
    Job,
    JobPredecessor,
    Lab,
    LicencePool,
    PriorityLevel,
    ScheduleVersion,
    Workstation,
)
from models.lab import target_start_minute
from models.schedule import RUN_MODES
from scheduler.core import snapshot as core
from scheduler.core.eligibility import examiner_can_take, workstation_can_take
from scheduler.core.intervals import merge_overlapping, subtract
from scheduler.core.plan import (
    NOT_A_CANDIDATE,
    PIN_CONFLICT,
    PREDECESSOR_UNSCHEDULED,
    UNPLANNABLE_RECORD,
)
from scheduler.core.snapshot import (
    SnapshotError,
    snapshot_from_json,
    snapshot_to_json,
    snapshot_warnings,
)
from scheduler.errors import Invalid
from scheduler.planning.plannable import InstantRange, Unplannable, record_problems
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
from scheduler.services import job_store

Interval = tuple[int, int]
logger = logging.getLogger(__name__)

STAGE_ALLOWANCE_HOURS = 4
"""Hours added to a job's due time per stage before it on its chain (acquire 0, process 4, ...)."""

ACTIVE_JOB_STATUSES = ("pending", "scheduled", "in_progress")
DEFAULT_WORKING_WEEKDAYS = frozenset(range(5))
REPAIR_WINDOW_WORKING_DAYS = 2
URGENT_RANKS = 2  # P1 and P2 in the default scheme: the levels whose repairs publish themselves
_MAX_SCAN_DAYS = 400
_MAX_REBUILDS = 20
"""Snapshot builds after the contract check named records to leave out (each build names all of
the lab's bad records at once; more builds are needed only for problems between records, such as
a cycle of predecessors)."""


# ---- time -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Timeline:
    """The snapshot's clock: minutes from ``epoch`` (UTC) and the lab-local days of the horizon."""

    epoch: datetime
    tz: ZoneInfo
    horizon: int
    day_dates: tuple[date, ...]
    days: tuple[Interval, ...]
    weeks: tuple[Interval, ...]
    frozen_until: int
    working: Mapping[int, time] = field(default_factory=dict)

    def exact(self, instant: datetime) -> float:
        return (instant.astimezone(UTC) - self.epoch).total_seconds() / 60

    def floor(self, instant: datetime) -> int:
        return math.floor(self.exact(instant))

    def ceil(self, instant: datetime) -> int:
        return math.ceil(self.exact(instant))

    def at(self, minute: int) -> datetime:
        """The UTC instant ``minute`` minutes after the epoch."""
        return self.epoch + timedelta(minutes=minute)

    def local(self, day: date, clock: time) -> datetime:
        """The UTC instant of wall-clock ``clock`` on lab-local ``day``."""
        return datetime.combine(day, clock, tzinfo=self.tz).astimezone(UTC)

    def end_of_working_day(self, after: date, n: int) -> int:
        """Minutes to the end of the ``n``-th working day after ``after``, within the horizon."""
        day = _nth_working_day(after + timedelta(days=1), n, dict(self.working), today=None)
        end = local_midnight(day + timedelta(days=1), self.tz)
        return min(self.horizon, round((end - self.epoch).total_seconds() / 60))

    def day_index(self, minute: int) -> int | None:
        for index, (start, end) in enumerate(self.days):
            if start <= minute < end:
                return index
        return None


def local_midnight(day: date, tz: ZoneInfo) -> datetime:
    return datetime.combine(day, time(0), tzinfo=tz).astimezone(UTC)


def round_up_to_slot(now: datetime, tz: ZoneInfo, slot_minutes: int) -> datetime:
    """``now`` rounded up to the next multiple of the slot, counted from local midnight."""
    offset = now.astimezone(tz).utcoffset() or timedelta(0)
    wall = now.astimezone(UTC).replace(tzinfo=None) + offset
    midnight = wall.replace(hour=0, minute=0, second=0, microsecond=0)
    step = slot_minutes * 60
    seconds = math.ceil((wall - midnight).total_seconds() / step) * step
    return (midnight + timedelta(seconds=seconds) - offset).replace(tzinfo=UTC)


def _working_calendar(examiners: Sequence[Examiner]) -> dict[int, time]:
    """Weekday -> the latest shift end that day, over active examiners (Mon-Fri if no shifts)."""
    latest: dict[int, time] = {}
    for examiner in examiners:
        for shift in examiner.shifts:
            if shift.weekday not in latest or shift.ends > latest[shift.weekday]:
                latest[shift.weekday] = shift.ends
    if not latest:
        latest = {weekday: time(23, 59) for weekday in DEFAULT_WORKING_WEEKDAYS}
    return latest


def _nth_working_day(start: date, n: int, working: dict[int, time], *, today: time | None) -> date:
    """The date of the ``n``-th working day counting from ``start`` (``n`` >= 1).

    ``today``, when given, is the wall-clock time on ``start``: that day counts only if a shift
    still runs after it.
    """
    day, count = start, 0
    for _ in range(_MAX_SCAN_DAYS):
        latest = working.get(day.weekday())
        if latest is not None and (today is None or day != start or today < latest):
            count += 1
            if count >= n:
                return day
        day += timedelta(days=1)
    return day


def build_timeline(lab: Lab, now: datetime, examiners: Sequence[Examiner]) -> Timeline:
    if now.tzinfo is None or now.utcoffset() is None:
        raise Invalid("the planning time must be timezone-aware")
    tz = ZoneInfo(lab.timezone)
    epoch = round_up_to_slot(now, tz, lab.slot_minutes)
    epoch_local = epoch.astimezone(tz)
    today = epoch_local.date()
    working = _working_calendar(examiners)
    last_day = _nth_working_day(today, lab.planning_horizon_days, working, today=epoch_local.time())

    def minutes(instant: datetime) -> int:
        return round((instant - epoch).total_seconds() / 60)

    horizon = minutes(local_midnight(last_day + timedelta(days=1), tz))
    day_dates: list[date] = []
    days: list[Interval] = []
    weeks: list[Interval] = []
    day, day_start, week_start = today, 0, 0
    while day_start < horizon:
        day_end = min(horizon, minutes(local_midnight(day + timedelta(days=1), tz)))
        if day_end > day_start:
            day_dates.append(day)
            days.append((day_start, day_end))
        next_day = day + timedelta(days=1)
        if next_day.weekday() == 0 or day_end >= horizon:
            weeks.append((week_start, day_end))
            week_start = day_end
        day, day_start = next_day, day_end

    timeline = Timeline(
        epoch=epoch,
        tz=tz,
        horizon=horizon,
        day_dates=tuple(day_dates),
        days=tuple(days),
        weeks=tuple(weeks),
        frozen_until=0,
        working=working,
    )
    if lab.frozen_working_days > 0:
        frozen = timeline.end_of_working_day(today, lab.frozen_working_days)
        timeline = replace(timeline, frozen_until=frozen)
    return timeline


# ---- intervals ------------------------------------------------------------------------------


def _deepest(intervals: Sequence[Interval], start: int, end: int) -> int:
    """How many of ``intervals`` overlap at once at the busiest moment of ``[start, end)``."""
    events = sorted(
        (point, step)
        for a, b in intervals
        if a < end and start < b
        for point, step in ((max(a, start), 1), (min(b, end), -1))
    )
    depth = deepest = 0
    for _, step in events:  # ends (-1) sort before starts at the same minute: touching is free
        depth += step
        deepest = max(deepest, depth)
    return deepest


class _Held:
    """What pinned and kept work holds: examiners, workstations up to their capacity, licence
    pools up to their size. Used to keep only those published placements that still fit beside
    work under way (a placement that does not would make the version infeasible)."""

    def __init__(
        self, workstations: Mapping[str, core.Workstation], pool_capacity: Mapping[str, int]
    ) -> None:
        self.workstations = workstations
        self.pool_capacity = pool_capacity
        self.used: dict[tuple[str, str], list[Interval]] = defaultdict(list)

    @property
    def empty(self) -> bool:
        return not self.used

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

    def full(
        self, job: core.Job, examiner: str | None, workstation: str | None, start: int
    ) -> str | None:
        """The resource the placement would overfill, in words, or None when it fits."""
        for (kind, name), capacity, a, b in self._needs(job, examiner, workstation, start):
            if _deepest(self.used[(kind, name)], a, b) + 1 > capacity:
                return f"the {name} licences" if kind == "pool" else f"{kind} {name}"
        return None


def _tidy(intervals: Iterable[Interval], horizon: int) -> tuple[Interval, ...]:
    """Clipped to [0, horizon], empty ones dropped, sorted, overlapping ones merged."""
    return tuple(merge_overlapping(intervals, 0, horizon))


def _inside_one(start: int, end: int, windows: Sequence[Interval]) -> bool:
    return any(a <= start and end <= b for a, b in windows)


# ---- id map ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Excluded:
    """A planned-for job the loader left out of the snapshot, reported in the version."""

    job_id: int
    reason: str
    detail: str


@dataclass(frozen=True)
class Begun:
    """Work already under way: where and when it began (and, if only taken as started, where
    its published placement ended). The stored version keeps this span rather than the part
    still to do, so a missed start's grace runs from its planned end however often the lab is
    re-planned, and a job in progress shows its real start (progress.py)."""

    start: datetime
    end: datetime | None
    examiner_id: int | None
    workstation_id: int | None


@dataclass
class IdMap:
    """Snapshot ids (readable strings) <-> database ids, plus what the loader had to report.

    Examiners and workstations are known by their external references, pools by name, cases by
    their reference and jobs by ``case/device/job`` references.
    """

    timeline: Timeline
    mode: str = "full"
    examiners: dict[str, int] = field(default_factory=dict)
    workstations: dict[str, int] = field(default_factory=dict)
    pools: dict[str, int] = field(default_factory=dict)
    cases: dict[str, int] = field(default_factory=dict)
    jobs: dict[str, int] = field(default_factory=dict)
    job_level: dict[str, str] = field(default_factory=dict)
    job_stage: dict[str, str] = field(default_factory=dict)
    job_target_due: dict[str, int] = field(default_factory=dict)  # before the legal deadline
    job_deadline: dict[str, int] = field(default_factory=dict)  # jobs of cases with one
    case_level: dict[str, str] = field(default_factory=dict)
    case_target_start: dict[str, int] = field(default_factory=dict)  # minutes, may be < 0
    cases_started: set[str] = field(default_factory=set)
    job_case: dict[int, int] = field(default_factory=dict)
    level_rank: dict[str, int] = field(default_factory=dict)
    level_target_hours: dict[str, int] = field(default_factory=dict)
    excluded: list[Excluded] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    unplannable: list[str] = field(default_factory=list)  # every record left out as unplannable
    overdue: list[str] = field(default_factory=list)  # published jobs past start, end and grace
    begun: dict[str, Begun] = field(default_factory=dict)  # job sid -> work under way
    # repair mode: jobs new, dropped or changed (or whose case changed) since the current version
    # was published, what a repair's trigger touched (`scheduler/planning/repair.py`)
    triggered: set[str] = field(default_factory=set)
    current_version_id: int | None = None

    def job_sid(self, job_id: int) -> str:
        return self._reverse("jobs")[job_id]

    def examiner_sid(self, examiner_id: int) -> str:
        return self._reverse("examiners")[examiner_id]

    def workstation_sid(self, workstation_id: int) -> str:
        return self._reverse("workstations")[workstation_id]

    def _reverse(self, name: str) -> dict[int, str]:
        cache: dict[str, dict[int, str]] = self.__dict__.setdefault("_reverse_cache", {})
        forward: dict[str, int] = getattr(self, name)
        if name not in cache or len(cache[name]) != len(forward):
            cache[name] = {db_id: sid for sid, db_id in forward.items()}
        return cache[name]


# ---- the loader -----------------------------------------------------------------------------


@dataclass
class _JobData:
    """The columns of a job the loader reads (plain rows: far cheaper than ORM objects)."""

    id: int
    external_ref: str
    status: str
    attended_minutes: int
    machine_minutes: int
    exposure_minutes: int
    severity: int
    pin_examiner_id: int | None
    pin_workstation_id: int | None
    pin_start_at: datetime | None
    updated_at: datetime
    started_at: datetime | None = None  # when ``:start`` was reported
    skills: list[str] = field(default_factory=list)
    capabilities: list[str] = field(default_factory=list)
    pool_ids: list[int] = field(default_factory=list)
    allowed_examiner_ids: list[int] = field(default_factory=list)
    workstation_minutes: dict[int, int] = field(default_factory=dict)


@dataclass(frozen=True)
class _DeviceData:
    external_ref: str
    arrived_at: datetime


@dataclass(frozen=True)
class _CaseData:
    id: int
    external_ref: str
    received_at: datetime
    legal_deadline_at: datetime | None
    updated_at: datetime


@dataclass(frozen=True)
class _LevelData:
    code: str
    weight: int
    target_start_hours: int


@dataclass
class _Row:
    job: _JobData
    device: _DeviceData
    case: _CaseData
    level: _LevelData
    sid: str


def load_snapshot(
    session: Session, lab: Lab, now: datetime, *, mode: str = "full", hold_urgent: bool = False
) -> tuple[core.Snapshot, IdMap]:
    """Build the lab's snapshot at ``now`` and the map back to database ids.

    The snapshot has passed `snapshot_from_json(snapshot_to_json(...))`. A record that would
    break it is left out as unplannable (see `scheduler.planning.plannable`) and the snapshot is
    built again without it; only a lab whose problem names no record raises `Invalid`.
    ``hold_urgent`` (repair mode) also pins the unchanged published work of P1/P2 cases inside
    the repair window: the first, tightest try of a local repair (`scheduler/planning/repair.py`).
    """
    if mode not in RUN_MODES:
        raise Invalid(f"unknown run mode {mode!r}; expected one of {', '.join(RUN_MODES)}")
    unplannable = Unplannable()
    for _ in range(_MAX_REBUILDS):
        snapshot, idmap = _build(session, lab, now, mode, unplannable, hold_urgent)
        try:
            checked = snapshot_from_json(snapshot_to_json(snapshot))
        except SnapshotError as exc:
            error = exc
        else:
            for record in idmap.unplannable:
                logger.warning("lab %s: left out of planning: %s", lab.code, record)
            # Legal but unschedulable (a skill of the vocabulary no examiner has): said with
            # the version's figures, so a supervisor sees why those jobs wait.
            idmap.warnings.extend(
                f"{warning.field}: {warning.detail}" for warning in snapshot_warnings(checked)
            )
            return checked, idmap
        found = record_problems(snapshot)
        if not found and not unplannable.add_named_by(snapshot, error):
            break
        for table in ("examiners", "workstations", "pools", "jobs"):
            getattr(unplannable, table).update(getattr(found, table))
    raise Invalid(
        f"lab {lab.code!r} does not make a valid snapshot: {error}", field=error.field
    ) from None


def _build(
    session: Session,
    lab: Lab,
    now: datetime,
    mode: str,
    unplannable: Unplannable,
    hold_urgent: bool = False,
) -> tuple[core.Snapshot, IdMap]:
    """The lab's snapshot, leaving out the records already found ``unplannable``."""
    examiners = list(
        session.scalars(
            select(Examiner)
            .where(Examiner.lab_id == lab.id, Examiner.active.is_(True))
            .order_by(Examiner.external_ref)
            .options(
                selectinload(Examiner.skills),
                selectinload(Examiner.shifts),
                selectinload(Examiner.absences),
            )
        )
    )
    workstations = list(
        session.scalars(
            select(Workstation)
            .where(Workstation.lab_id == lab.id, Workstation.active.is_(True))
            .order_by(Workstation.external_ref)
            .options(selectinload(Workstation.capabilities), selectinload(Workstation.maintenance))
        )
    )
    pools = list(
        session.scalars(
            select(LicencePool).where(LicencePool.lab_id == lab.id).order_by(LicencePool.name)
        )
    )
    timeline = build_timeline(lab, now, examiners)
    idmap = IdMap(timeline=timeline, mode=mode)
    idmap.level_rank = {level.code: level.rank for level in lab.priority_levels}
    idmap.level_target_hours = {
        level.code: level.target_start_hours for level in lab.priority_levels
    }

    left_out = _LeftOut()
    snap_examiners: list[core.Examiner] = []
    for ex in examiners:
        why = unplannable.examiners.get(ex.external_ref)
        if why is None:
            try:
                snap_examiners.append(_examiner(session, ex, timeline, idmap))
                continue
            except (ArithmeticError, ValueError) as exc:
                why = f"{type(exc).__name__}: {exc}"
            idmap.examiners.pop(ex.external_ref, None)
        left_out.examiners[ex.id] = _leave_out(idmap, f"examiner {ex.external_ref}", why)
    snap_workstations: list[core.Workstation] = []
    for ws in workstations:
        why = unplannable.workstations.get(ws.external_ref)
        if why is None:
            try:
                snap_workstations.append(_workstation(ws, timeline, idmap))
                continue
            except (ArithmeticError, ValueError) as exc:
                why = f"{type(exc).__name__}: {exc}"
            idmap.workstations.pop(ws.external_ref, None)
        left_out.workstations[ws.id] = _leave_out(idmap, f"workstation {ws.external_ref}", why)
    snap_pools = []
    for pool in pools:
        if pool.name in unplannable.pools:
            what = f"licence pool {pool.name!r}"
            left_out.pools[pool.id] = _leave_out(idmap, what, unplannable.pools[pool.name])
            continue
        idmap.pools[pool.name] = pool.id
        snap_pools.append(core.Pool(id=pool.name, capacity=pool.capacity))

    current = session.scalar(
        select(ScheduleVersion)
        .where(ScheduleVersion.lab_id == lab.id, ScheduleVersion.is_current.is_(True))
        .options(selectinload(ScheduleVersion.assignments))
    )
    idmap.current_version_id = current.id if current is not None else None
    published = {a.job_id: a for a in current.assignments} if current is not None else {}

    builder = _JobBuilder(
        session,
        lab,
        timeline,
        idmap,
        {e.id: e for e in snap_examiners},
        {w.id: w for w in snap_workstations},
        published,
        left_out,
        unplannable.jobs,
    )
    jobs = builder.build()
    snap_examiners = _with_exposure_done(snap_examiners, builder.exposure_done, timeline)
    pool_capacity = {p.id: p.capacity for p in snap_pools}
    previous = builder.previous(jobs, pool_capacity)
    if mode == "repair" and current is not None:
        jobs = builder.repair_pins(jobs, previous, current, pool_capacity, hold_urgent)

    snapshot = core.Snapshot(
        lab=lab.code,
        epoch=timeline.epoch.isoformat(),
        horizon=timeline.horizon,
        objective="weighted_tardiness",
        days=timeline.days,
        weeks=timeline.weeks,
        examiners=tuple(snap_examiners),
        workstations=tuple(snap_workstations),
        pools=tuple(snap_pools),
        jobs=tuple(jobs),
        previous=tuple(previous),
        frozen_until=timeline.frozen_until,
        weights=core.Weights(
            tardiness=lab.weight_tardiness,
            change=lab.weight_change,
            balance=lab.weight_balance,
            continuity=lab.weight_continuity,
        ),
    )
    return snapshot, idmap


def _with_exposure_done(
    examiners: list[core.Examiner], done: Sequence[tuple[str, date, int]], timeline: Timeline
) -> list[core.Examiner]:
    """Examiners with the exposure of their work under way counted as logged on its day."""
    if not done or not timeline.day_dates:
        return examiners
    first = timeline.day_dates[0]
    monday = first - timedelta(days=first.weekday())
    index_of = {day: i for i, day in enumerate(timeline.day_dates)}
    by_examiner: dict[str, list[tuple[date, int]]] = defaultdict(list)
    for ref, day, minutes in done:
        by_examiner[ref].append((day, minutes))
    out = []
    for ex in examiners:
        if ex.id not in by_examiner:
            out.append(ex)
            continue
        by_day = dict(ex.exposure.used_by_day)
        this_week = ex.exposure.used_this_week
        for day, minutes in by_examiner[ex.id]:
            if day in index_of:
                by_day[index_of[day]] = by_day.get(index_of[day], 0) + minutes
            elif monday <= day < first:
                this_week += minutes
        policy = replace(ex.exposure, used_by_day=by_day, used_this_week=this_week)
        out.append(replace(ex, exposure=policy))
    return out


@dataclass
class _LeftOut:
    """Resources left out as unplannable: database id -> the sentence that names it and why."""

    examiners: dict[int, str] = field(default_factory=dict)
    workstations: dict[int, str] = field(default_factory=dict)
    pools: dict[int, str] = field(default_factory=dict)


def _leave_out(idmap: IdMap, what: str, why: str) -> str:
    """Report an examiner, workstation or pool that cannot be planned (a version warning)."""
    sentence = f"{what} is left out of planning as an unplannable record: {why}"
    idmap.warnings.append(sentence)
    idmap.unplannable.append(sentence)
    return f"{what}, which cannot be planned ({why})"


def _examiner(
    session: Session, examiner: Examiner, timeline: Timeline, idmap: IdMap
) -> core.Examiner:
    horizon = timeline.horizon
    absences = [(timeline.floor(a.starts_at), timeline.ceil(a.ends_at)) for a in examiner.absences]
    available: list[Interval] = []
    windows: list[Interval] = []
    for index, day in enumerate(timeline.day_dates):
        blocks = [s for s in examiner.shifts if s.weekday == day.weekday()]
        if not blocks:
            continue
        cutoff = None
        if examiner.exposure_cutoff is not None:
            cutoff = timeline.floor(timeline.local(day, examiner.exposure_cutoff))
        day_start, day_end = timeline.days[index]
        for shift in blocks:
            start = max(day_start, timeline.ceil(timeline.local(day, shift.starts)))
            end = min(day_end, timeline.floor(timeline.local(day, shift.ends)))
            for a, b in subtract([(start, end)], absences):
                available.append((a, b))
                b_exposed = b if cutoff is None else min(b, cutoff)
                if a < b_exposed:
                    windows.append((a, b_exposed))
    available_t = _tidy(available, horizon)
    windows_t = _tidy(windows, horizon)
    if available_t and not windows_t:
        # An empty window list would default to the availability; an empty interval says "none".
        windows_t = ((0, 0),)

    used_by_day: dict[int, int] = defaultdict(int)
    used_this_week = 0
    if timeline.day_dates:
        first = timeline.day_dates[0]
        monday = first - timedelta(days=first.weekday())
        index_of = {day: i for i, day in enumerate(timeline.day_dates)}
        logs = session.scalars(
            select(ExposureLog).where(
                ExposureLog.examiner_id == examiner.id,
                ExposureLog.day >= monday,
                ExposureLog.day <= timeline.day_dates[-1],
            )
        )
        for log in logs:
            if log.day < first:
                used_this_week += log.minutes
            elif log.day in index_of:
                used_by_day[index_of[log.day]] += log.minutes

    idmap.examiners[examiner.external_ref] = examiner.id
    return core.Examiner(
        id=examiner.external_ref,
        skills=frozenset(examiner.skill_names),
        available=available_t,
        exposure=core.ExposurePolicy(
            daily_cap=examiner.daily_cap_minutes,
            severe_daily_cap=examiner.severe_daily_cap_minutes,
            weekly_cap=examiner.weekly_cap_minutes,
            windows=windows_t,
            max_severity=examiner.max_severity,
            used_by_day=dict(used_by_day),
            used_this_week=used_this_week,
        ),
    )


def _workstation(ws: Workstation, timeline: Timeline, idmap: IdMap) -> core.Workstation:
    busy = [(timeline.floor(m.starts_at), timeline.ceil(m.ends_at)) for m in ws.maintenance]
    idmap.workstations[ws.external_ref] = ws.id
    return core.Workstation(
        id=ws.external_ref,
        capabilities=frozenset(ws.capability_names),
        capacity=ws.capacity,
        available=_tidy(subtract([(0, timeline.horizon)], busy), timeline.horizon),
    )


class _JobBuilder:
    """Turns the lab's open work into snapshot jobs, pins and the published ``previous``."""

    def __init__(
        self,
        session: Session,
        lab: Lab,
        timeline: Timeline,
        idmap: IdMap,
        examiners: dict[str, core.Examiner],
        workstations: dict[str, core.Workstation],
        published: Mapping[int, PublishedAssignment],
        left_out: _LeftOut,
        unplannable_jobs: Mapping[str, str],
    ) -> None:
        self.session = session
        self.lab = lab
        self.timeline = timeline
        self.idmap = idmap
        self.examiners = examiners
        self.workstations = workstations
        self.published = published  # job id -> assignment of the current version
        self.rows: dict[int, _Row] = {}
        self.preds: dict[int, list[tuple[int, str]]] = defaultdict(list)
        self.changed_since: dict[int, datetime] = {}
        self.case_changed: dict[int, datetime] = {}  # job id -> when its case last changed
        self.elapsed: dict[int, int] = {}  # in-progress job -> minutes of work already done
        self.assumed: set[int] = set()  # published jobs past their start, taken as started
        self.start_states: dict[int, StartState | None] = {}  # progress.missed_start per job
        self.start_rule: StartStates | None = None  # progress.StartStates, built on first use
        self.dropped: set[str] = set()  # jobs whose published placement was dropped
        self.left_out = left_out
        self.unplannable_jobs = unplannable_jobs  # job sid -> why the contract refuses it
        self.unreadable: dict[int, str] = {}  # job id -> the stored instant it cannot plan
        self.stages: dict[int, str] = {}  # job id -> its stage
        self.pinned_on: dict[int, tuple[int | None, datetime]] = {}  # started: examiner, start
        # examiner ref -> (day it started, exposure minutes) already reviewed by work under way
        self.exposure_done: list[tuple[str, date, int]] = []

    # -- loading --

    def _load(self) -> None:
        planned = (
            Job.lab_id == self.lab.id,
            Case.status == "open",
            Job.status.in_(ACTIVE_JOB_STATUSES),
        )
        plannable = InstantRange.around(self.timeline.epoch)
        dialect = self.session.get_bind().dialect.name
        pin_start, pin_start_text = plannable.guarded(Job.pin_start_at, dialect)
        arrived, arrived_text = plannable.guarded(Device.arrived_at, dialect)
        received, received_text = plannable.guarded(Case.received_at, dialect)
        deadline, deadline_text = plannable.guarded(Case.legal_deadline_at, dialect)
        rows: Sequence[Any] = self.session.execute(
            select(
                Job.id,
                Job.external_ref,
                Job.status,
                Job.attended_minutes,
                Job.machine_minutes,
                Job.exposure_minutes,
                Job.severity,
                Job.pin_examiner_id,
                Job.pin_workstation_id,
                pin_start,
                Job.updated_at,
                Device.external_ref,
                arrived,
                Case.id,
                Case.external_ref,
                received,
                deadline,
                Case.updated_at,
                PriorityLevel.code,
                PriorityLevel.weight,
                PriorityLevel.target_start_hours,
                received_text,
                deadline_text,
                arrived_text,
                pin_start_text,
                Job.stage,
                Job.started_at,
            )
            .join(Device, Job.device_id == Device.id)
            .join(Case, Device.case_id == Case.id)
            .join(PriorityLevel, Case.priority_level_id == PriorityLevel.id)
            .where(*planned)
            .order_by(Case.received_at, Case.id, Device.id, Job.id)
        ).all()
        epoch = self.timeline.epoch
        for r in rows:
            job = _JobData(*r[0:11])
            job.started_at = r[26]
            device = _DeviceData(r[11], r[12] or epoch)
            case = _CaseData(r[13], r[14], r[15] or epoch, r[16], r[17])
            level = _LevelData(*r[18:21])
            sid = f"{case.external_ref}/{device.external_ref}/{job.external_ref}"
            self.rows[job.id] = _Row(job, device, case, level, sid)
            self.stages[job.id] = r[25]
            for text, what, name in (
                (r[21], f"case {case.external_ref}", "received_at"),
                (r[22], f"case {case.external_ref}", "legal_deadline_at"),
                (r[23], f"device {case.external_ref}/{device.external_ref}", "arrived_at"),
                (r[24], f"{r[25]} job {sid}", "pin_start_at"),
            ):
                if text is not None:
                    self.unreadable.setdefault(job.id, plannable.problem(what, name, text))
            self.changed_since[job.id] = max(job.updated_at, case.updated_at)
            self.case_changed[job.id] = case.updated_at
        ids = (
            select(Job.id)
            .join(Device, Job.device_id == Device.id)
            .join(Case, Device.case_id == Case.id)
            .where(*planned)
        )
        for job_id, sets in job_store.read(self.session, ids, tables=job_store.RESOURCES).items():
            job = self.rows[job_id].job
            job.skills += sets.skills
            job.capabilities += sets.capabilities
            job.pool_ids += sets.pool_ids
            job.allowed_examiner_ids += sets.examiner_ids
            job.workstation_minutes.update(sets.workstation_minutes)
        pred_job = aliased(Job)
        open_jobs = (
            select(Job.id)
            .join(Device, Job.device_id == Device.id)
            .join(Case, Device.case_id == Case.id)
            .where(Job.lab_id == self.lab.id, Case.status == "open")
        )
        edges = self.session.execute(
            select(JobPredecessor.job_id, JobPredecessor.predecessor_id, pred_job.status)
            .join(pred_job, pred_job.id == JobPredecessor.predecessor_id)
            .where(JobPredecessor.job_id.in_(open_jobs))
        ).all()
        for job_id, pred_id, status in edges:
            self.preds[job_id].append((pred_id, status))

    def _describe_outside(self) -> dict[int, str]:
        """Predecessors that are neither done nor planned: on hold, or in a case not open."""
        missing = {
            pred_id
            for edges in self.preds.values()
            for pred_id, status in edges
            if status not in DONE_STATUSES and pred_id not in self.rows
        }
        if not missing:
            return {}
        rows = self.session.execute(  # references only: no stored instant is read here
            select(
                Job.id,
                Job.external_ref,
                Job.status,
                Device.external_ref,
                Case.external_ref,
                Case.status,
            )
            .join(Device, Job.device_id == Device.id)
            .join(Case, Device.case_id == Case.id)
            .where(Job.id.in_(missing))
        ).all()
        out = {}
        for job_id, job_external, status, device_ref, case_ref, case_status in rows:
            state = f"case {case_status}" if case_status != "open" else status
            ref = f"{case_ref}/{device_ref}/{job_external}"
            out[job_id] = f"job {ref}, which is {state.replace('_', ' ')}"
        return out

    def _depth(self) -> dict[int, int]:
        """Stages before each job on its longest predecessor chain (done ones included)."""
        depth: dict[int, int] = {}
        visiting: set[int] = set()  # on the current path: a cycle (bad data) is cut there
        for root in self.preds:
            stack = [(root, False)]
            while stack:
                node, expanded = stack.pop()
                if node in depth:
                    continue
                parents = [p for p, _ in self.preds.get(node, ())]
                if expanded or not parents:
                    visiting.discard(node)
                    depth[node] = 1 + max((depth.get(p, -1) for p in parents), default=-1)
                    continue
                visiting.add(node)
                stack.append((node, True))
                stack.extend((p, False) for p in parents if p not in depth and p not in visiting)
        return depth

    # -- jobs --

    def build(self) -> list[core.Job]:
        self._load()
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
        outside = self._describe_outside()
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

        depth = self._depth()
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
        return jobs

    def _unplannable(self, row: _Row) -> str | None:
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
        self, row: _Row, depth: int, pin: core.Pin | None, excluded: dict[int, Excluded]
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

    def _pin_source(self, row: _Row) -> tuple[int | None, int | None, datetime, str] | None:
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

    def _missed_start(self, row: _Row) -> bool:
        """A published job whose start has passed with no ``:start``: taken as started as planned
        (its remaining work pinned where it is) until its planned end plus the lab's
        ``start_grace_minutes``, so a missing click never re-plans its chain. After that it is
        overdue: named in the warnings and re-planned on its own. One whose predecessor has not
        finished is waiting, not started (progress.py)."""
        return self._start_state(row) == "assumed_started"

    def _start_state(self, row: _Row) -> StartState | None:
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
                    row.job.status, a.starts_at, a.ends_at, a.examiner_id, a.workstation_id
                )
                for job_id, a in self.published.items()
                if (row := self.rows.get(job_id)) is not None
            }
            one_at_a_time = {
                self.idmap.workstations[ref]
                for ref, ws in self.workstations.items()
                if ws.capacity == 1 and ref in self.idmap.workstations
            }
            work = [
                UnderWay(
                    row.job.started_at or where.starts_at,
                    row.job.attended_minutes,
                    row.job.machine_minutes,
                    where.examiner_id,
                    where.workstation_id,
                )
                for row in self.rows.values()
                if row.job.status == "in_progress"
                and row.job.pin_start_at is None
                and (where := self.published.get(row.job.id)) is not None
            ]
            held = held_now(work, one_at_a_time, self.timeline.epoch)
            grace = self.lab.start_grace_minutes
            self.start_rule = StartStates(placed, self.preds, held, grace, self.timeline.epoch)
        return self.start_rule

    def _started(self, job: _JobData) -> bool:
        """In progress, or taken as started (``_missed_start``)."""
        return job.status == "in_progress" or job.id in self.assumed

    def _pin(self, row: _Row) -> core.Pin | Excluded | None:
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

    def _count_exposure_done(self, row: _Row, minutes: int) -> None:
        """Exposure already reviewed by work under way counts against the day it started on, as
        a log would (docs/architecture.md §7.9): without it the caps would see only the minutes
        still to do, and a second review could be planned beside the first over the cap."""
        examiner_id, start_at = self.pinned_on.get(row.job.id, (None, None))
        if minutes <= 0 or examiner_id is None or start_at is None:
            return
        ref = next((r for r, db_id in self.idmap.examiners.items() if db_id == examiner_id), None)
        if ref is not None:
            self.exposure_done.append((ref, start_at.astimezone(self.timeline.tz).date(), minutes))

    def _without_pin(self, row: _Row, what: str, resource: str) -> None:
        self.idmap.warnings.append(
            f"job {row.sid}: its {what} placement names {resource}; planned without the pin"
        )

    def _remaining(
        self,
        row: _Row,
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
            return left_attended, left_machine, min(exposure, left_attended), by_left
        if elapsed is None:
            elapsed = self.elapsed.get(job.id, 0)
        if elapsed <= 0 or not self._started(job):
            return attended, job.machine_minutes, exposure, by_ws
        left_attended = max(0, attended - elapsed)
        left_machine = max(0, machine - elapsed)
        if left_attended == 0 and left_machine == 0 and job.status == "in_progress":
            # overrunning: past its estimate and not done, it is extended by its estimate (the part
            # that ends it runs that long again; progress.py); a job only taken as started
            # (``_missed_start``) ends as planned
            longest = estimate_minutes(attended, machine)
            left_attended = attended if attended == longest else 0
            left_machine = machine if machine == longest else 0
        left_exposure = min(exposure, left_attended)
        new_by_ws = None
        if by_ws is not None and pin.workstation is not None:
            new_by_ws = {pin.workstation: left_machine}
        elif by_ws is not None:
            new_by_ws = by_ws
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
            if ex is not None and attended > 0 and not _inside_one(t, t + attended, ex_windows):
                continue
            if ws is not None and machine > 0 and not _inside_one(t, t + machine, ws_windows):
                continue
            return t
        return None

    # -- the published schedule --

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
        self._drop_stranded(by_sid, kept)
        return sorted(kept.values(), key=lambda p: (p.start, p.job))

    def _drop_clashing_with_pins(
        self,
        by_sid: dict[str, core.Job],
        kept: dict[str, core.PreviousAssignment],
        pool_capacity: Mapping[str, int],
    ) -> None:
        """Drop frozen assignments that no longer fit beside pinned work: work in progress that
        overran and is extended by its estimate, or started late, or a missed start taken as
        started (progress.py) may now hold the examiner, the workstation (up to its capacity) or
        a licence pool (up to its size) when a frozen placement needs it. Keeping those would
        make the version infeasible; re-planned, each moves only as far as it must. Frozen
        placements are taken in order of start, each kept if it still fits."""
        held = _Held(self.workstations, pool_capacity)
        for job in by_sid.values():
            if job.pin is not None:
                held.take(job, job.pin.examiner, job.pin.workstation, job.pin.start)
        if held.empty:
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
            if not _inside_one(prev.start, end_attended, windows):
                return False
        elif ex is not None:
            return False
        if job.needs_workstation:
            if ws is None or not workstation_can_take(job, ws):
                return False
            end_machine = prev.start + job.machine_on(ws.id)
            if job.machine_on(ws.id) > 0 and not _inside_one(prev.start, end_machine, ws.available):
                return False
        elif ws is not None:
            return False
        if prev.start < job.release:
            return False
        return prev.start + job.duration_on(prev.workstation) <= self.timeline.horizon

    def _urgent_on_time(self, job: core.Job, placed: core.PreviousAssignment) -> bool:
        """A P1/P2 job whose published placement ends by its due time."""
        idmap = self.idmap
        rank = idmap.level_rank.get(idmap.case_level.get(job.case, ""), URGENT_RANKS + 1)
        if rank > URGENT_RANKS:
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
        held = _Held(self.workstations, pool_capacity)
        for job in jobs:
            if job.pin is not None:
                held.take(job, job.pin.examiner, job.pin.workstation, job.pin.start)
        for prev in previous:
            if prev.start < tl.frozen_until and prev.job not in self.dropped:
                held.take(by_sid[prev.job], prev.examiner, prev.workstation, prev.start)
        for sid, prev in sorted(keep.items(), key=lambda kv: (kv[1].start, kv[0])):
            job = by_sid[sid]
            if held.full(job, prev.examiner, prev.workstation, prev.start) is None:
                held.take(job, prev.examiner, prev.workstation, prev.start)
            else:
                del keep[sid]
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
        out = []
        for job in jobs:
            kept = keep.get(job.id)
            if kept is None:
                out.append(job)
                continue
            pin = core.Pin(examiner=kept.examiner, workstation=kept.workstation, start=kept.start)
            out.append(replace(job, pin=pin, release=min(job.release, kept.start)))
        return out
