"""Examiners, workstations and licence pools as the snapshot has them: availability is the weekly
shifts minus absences, exposure windows end at each day's cut-off, logged exposure counts against
its day and week; a workstation is available but for its maintenance (docs/architecture.md §7.3).
A resource that cannot become planning data is left out, named in the warnings.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import date, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from models import Examiner, ExposureLog, Lab, LicencePool, Workstation
from scheduler.core import snapshot as core
from scheduler.core.intervals import subtract
from scheduler.planning.loading.idmap import IdMap
from scheduler.planning.loading.timeline import Interval, Timeline, tidy
from scheduler.planning.plannable import Unplannable


@dataclass(frozen=True)
class ResourceRows:
    """The lab's active examiners and workstations, and its licence pools, as stored."""

    examiners: list[Examiner]
    workstations: list[Workstation]
    pools: list[LicencePool]


def read_resources(session: Session, lab: Lab) -> ResourceRows:
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
    return ResourceRows(examiners, workstations, pools)


@dataclass
class Resources:
    """The snapshot's examiners, workstations and pools, and the ones left out."""

    examiners: list[core.Examiner]
    workstations: list[core.Workstation]
    pools: list[core.Pool]
    left_out: LeftOut


def snapshot_resources(
    session: Session,
    rows: ResourceRows,
    timeline: Timeline,
    idmap: IdMap,
    unplannable: Unplannable,
) -> Resources:
    """The resources of ``rows``, leaving out the ones already found ``unplannable`` (and any
    whose stored data fails to convert)."""
    left_out = LeftOut()
    snap_examiners: list[core.Examiner] = []
    for ex in rows.examiners:
        why = unplannable.examiners.get(ex.external_ref)
        if why is None:
            try:
                snap_examiners.append(_examiner(session, ex, timeline, idmap))
                continue
            except (ArithmeticError, ValueError) as exc:
                why = f"{type(exc).__name__}: {exc}"
            idmap.examiners.pop(ex.external_ref, None)
        left_out.examiners[ex.id] = leave_out(idmap, f"examiner {ex.external_ref}", why)
    snap_workstations: list[core.Workstation] = []
    for ws in rows.workstations:
        why = unplannable.workstations.get(ws.external_ref)
        if why is None:
            try:
                snap_workstations.append(_workstation(ws, timeline, idmap))
                continue
            except (ArithmeticError, ValueError) as exc:
                why = f"{type(exc).__name__}: {exc}"
            idmap.workstations.pop(ws.external_ref, None)
        left_out.workstations[ws.id] = leave_out(idmap, f"workstation {ws.external_ref}", why)
    snap_pools = []
    for pool in rows.pools:
        if pool.name in unplannable.pools:
            what = f"licence pool {pool.name!r}"
            left_out.pools[pool.id] = leave_out(idmap, what, unplannable.pools[pool.name])
            continue
        idmap.pools[pool.name] = pool.id
        snap_pools.append(core.Pool(id=pool.name, capacity=pool.capacity))
    return Resources(snap_examiners, snap_workstations, snap_pools, left_out)


def with_exposure_done(
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
class LeftOut:
    """Resources left out as unplannable: database id -> the sentence that names it and why."""

    examiners: dict[int, str] = field(default_factory=dict)
    workstations: dict[int, str] = field(default_factory=dict)
    pools: dict[int, str] = field(default_factory=dict)


def leave_out(idmap: IdMap, what: str, why: str) -> str:
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
    available_t = tidy(available, horizon)
    windows_t = tidy(windows, horizon)
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
        available=tidy(subtract([(0, timeline.horizon)], busy), timeline.horizon),
    )
