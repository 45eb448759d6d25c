"""Database -> `Snapshot`: one lab's planning problem, as the engine reads it.

The contract it fills, and its place among the layers: docs/architecture.md §6, §7.3. Each subject
below lives in its own module of `scheduler.planning.loading`; this module puts them together.

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
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from models import Lab, ScheduleVersion
from models.schedule import RUN_MODES
from scheduler.core import snapshot as core
from scheduler.core.snapshot import SnapshotError, snapshot_warnings
from scheduler.errors import Invalid
from scheduler.planning.loading.idmap import URGENT_RANKS, Begun, Excluded, IdMap
from scheduler.planning.loading.jobs import STAGE_ALLOWANCE_HOURS, JobBuilder
from scheduler.planning.loading.published import (
    REPAIR_WINDOW_WORKING_DAYS,
    PublishedSchedule,
)
from scheduler.planning.loading.resources import (
    Resources,
    read_resources,
    snapshot_resources,
    with_exposure_done,
)
from scheduler.planning.loading.rows import ACTIVE_JOB_STATUSES, JobRows
from scheduler.planning.loading.timeline import (
    Timeline,
    build_timeline,
    local_midnight,
    round_up_to_slot,
)
from scheduler.planning.plannable import Unplannable, record_problems

__all__ = [
    "ACTIVE_JOB_STATUSES",
    "REPAIR_WINDOW_WORKING_DAYS",
    "STAGE_ALLOWANCE_HOURS",
    "URGENT_RANKS",
    "Begun",
    "Excluded",
    "IdMap",
    "Timeline",
    "build_timeline",
    "load_snapshot",
    "local_midnight",
    "round_up_to_slot",
]

logger = logging.getLogger(__name__)

_MAX_REBUILDS = 20
"""Snapshot builds after the contract check named records to leave out (each build names all of
the lab's bad records at once; more builds are needed only for problems between records, such as
a cycle of predecessors)."""


def load_snapshot(
    session: Session, lab: Lab, now: datetime, *, mode: str = "full", hold_urgent: bool = False
) -> tuple[core.Snapshot, IdMap]:
    """Build the lab's snapshot at ``now`` and the map back to database ids.

    The snapshot has passed the contract's check (`scheduler.core.snapshot_check`: what
    `snapshot_from_json` of it would refuse). A record that would break it is left out as
    unplannable (see `scheduler.planning.plannable`) and the snapshot is built again without it;
    only a lab whose problem names no record raises `Invalid`.
    ``hold_urgent`` (repair mode) also pins the unchanged published work of P1/P2 cases inside
    the repair window: the first, tightest try of a local repair (`scheduler/planning/repair.py`).
    """
    if mode not in RUN_MODES:
        raise Invalid(f"unknown run mode {mode!r}; expected one of {', '.join(RUN_MODES)}")
    unplannable = Unplannable()
    for _ in range(_MAX_REBUILDS):
        snapshot, idmap = _build(session, lab, now, mode, unplannable, hold_urgent)
        try:
            checked = snapshot.check()
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
    stored = read_resources(session, lab)
    timeline = build_timeline(lab, now, stored.examiners)
    idmap = IdMap(timeline=timeline, mode=mode)
    idmap.level_rank = {level.code: level.rank for level in lab.priority_levels}
    idmap.level_target_hours = {
        level.code: level.target_start_hours for level in lab.priority_levels
    }
    resources = snapshot_resources(session, stored, timeline, idmap, unplannable)

    current = session.scalar(
        select(ScheduleVersion)
        .where(ScheduleVersion.lab_id == lab.id, ScheduleVersion.is_current.is_(True))
        .options(selectinload(ScheduleVersion.assignments))
    )
    idmap.current_version_id = current.id if current is not None else None
    published = {a.job_id: a for a in current.assignments} if current is not None else {}

    pool_capacity = {p.id: p.capacity for p in resources.pools}
    builder = JobBuilder(
        session,
        lab,
        timeline,
        idmap,
        {e.id: e for e in resources.examiners},
        {w.id: w for w in resources.workstations},
        pool_capacity,
        published,
        resources.left_out,
        unplannable.jobs,
        JobRows(session, lab.id, timeline),
    )
    jobs = builder.build()
    examiners = with_exposure_done(resources.examiners, builder.exposure_done, timeline)
    schedule = PublishedSchedule(builder)
    schedule.draft = _snapshot(lab, timeline, examiners, resources, jobs, ())
    previous = schedule.previous(jobs, pool_capacity)
    if mode == "repair" and current is not None:
        jobs = schedule.repair_pins(jobs, previous, current, pool_capacity, hold_urgent)

    # checked by load_snapshot, which names the records a failure points to
    snapshot = _snapshot(lab, timeline, examiners, resources, jobs, previous)
    return snapshot, idmap


def _snapshot(
    lab: Lab,
    timeline: Timeline,
    examiners: Sequence[core.Examiner],
    resources: Resources,
    jobs: Sequence[core.Job],
    previous: Sequence[core.PreviousAssignment],
) -> core.Snapshot:
    return core.Snapshot(
        lab=lab.code,
        epoch=timeline.epoch.isoformat(),
        horizon=timeline.horizon,
        objective="weighted_tardiness",
        days=timeline.days,
        weeks=timeline.weeks,
        examiners=tuple(examiners),
        workstations=tuple(resources.workstations),
        pools=tuple(resources.pools),
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
