"""Continuous planning: the changes that cannot wait for the nightly run queue a *repair* run.

A repair run (``mode="repair"``) re-solves the affected window only: the loader pins every
published assignment that starts after the window (the frozen horizon plus two working days) and
whose job and case have not changed since publication, keeps the frozen ones that still fit, and
lets the solver move the rest (see `scheduler.planning.loading.published`).

Triggers (all announced by the domain services, `scheduler.services.events`, and acted on here
once `install` has been called, so the HTTP routes and the CLI get them for free):

Escalation
    A case's level rises directly (``escalate_case``, a ``PUT`` with a more urgent priority, or a
    bulk import that raises it: one run for the batch, see `after_imported_levels`), through a
    new link to a case of a more urgent level (the less urgent case rises to the other's
    level; the more urgent one is untouched), or through a triage flag (the policy is
    `scheduler.services.escalation`).
    Due times are not stored: the loader derives them from the level at load time, so the repair
    run plans the case against its new target. The run is auto-published when the new level says
    so (``PriorityLevel.auto_publish_repair``; by default P1 and P2). Escalating a case that is not
    open (on hold, closed) queues nothing: none of its work is planned.

New urgent cases
    A bulk import that creates open cases at a level with ``auto_publish_repair`` (new P1/P2
    work) queues one auto-published repair run for the batch, so the new case is in a published
    schedule within seconds instead of waiting for the nightly run.

Absence
    A new absence of an active examiner that overlaps the period from now to the end of tomorrow
    (lab-local) or of the frozen horizon, whichever is later, queues an auto-published repair
    run: the examiner's frozen assignments no longer fit, so the loader drops them and the solver
    reassigns the work. Absences further ahead wait for the nightly run.

Nothing published, nothing to repair
    A lab without a published schedule gets no repair run from any trigger: its first schedule
    comes from a full run (``labq reoptimize`` or ``POST /solve-runs``), which plans the change
    anyway.

One queue per lab
    `scheduler.planning.runs.request_repair` reuses a repair run that is still queued for the lab
    (it will load the latest data when a worker claims it) instead of queueing a second one; if the
    new trigger asks for auto-publication, the waiting run is switched to auto-publish. A run that
    is already solving loaded its data before the change, so a new run is queued behind it (the
    worker never runs two solves of one lab at once). Every queued or upgraded run is audited.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from models import (
    Absence,
    Case,
    Examiner,
    Lab,
    PriorityLevel,
    ScheduleVersion,
    SolveRun,
)
from models.base import utcnow
from scheduler.planning.loading.timeline import build_timeline, local_midnight
from scheduler.planning.pins import check_pin
from scheduler.planning.runs import request_repair
from scheduler.services import events
from scheduler.services.escalation import levels_of


def install() -> None:
    """Listen to what the services announce: queue repair runs, check pins (idempotent)."""
    events.listen(
        events.CaseEscalated,
        lambda session, e: after_escalation(
            session, e.lab, e.case, e.level, actor=e.actor, reason=e.reason
        ),
    )
    events.listen(events.CasesImported, _after_import)
    events.listen(
        events.AbsenceRecorded,
        lambda session, e: after_absence(session, e.examiner, e.absence, actor=e.actor),
    )
    events.listen(events.PinPlaced, lambda session, e: check_pin(session, e.lab, e.job, e.now))


def _after_import(session: Session, event: events.CasesImported) -> None:
    after_new_cases(session, event.lab, event.new_cases, actor=event.actor)
    after_imported_levels(session, event.lab, event.raised, actor=event.actor)


def _published(session: Session, lab: Lab) -> bool:
    return (
        session.scalar(
            select(ScheduleVersion.id)
            .where(ScheduleVersion.lab_id == lab.id, ScheduleVersion.is_current.is_(True))
            .limit(1)
        )
        is not None
    )


def after_escalation(
    session: Session,
    lab: Lab,
    case: Case,
    level: PriorityLevel,
    *,
    actor: str,
    reason: str | None = None,
) -> SolveRun | None:
    """Queue (or reuse) a repair run after ``case`` rose to ``level``; ``None`` if not open."""
    if case.status != "open" or not _published(session, lab):
        return None
    why = f"escalation of case {case.external_ref} to {level.code}"
    if reason:
        why = f"{why}: {reason}"
    return request_repair(session, lab, actor=actor, reason=why[:200], level=level)


def absence_is_urgent(
    session: Session, lab: Lab, absence: Absence, *, now: datetime | None = None
) -> bool:
    """Whether ``absence`` overlaps now .. end of tomorrow (lab-local) or the frozen horizon."""
    now = now or utcnow()
    if absence.ends_at <= now:
        return False
    tz = ZoneInfo(lab.timezone)
    today = now.astimezone(tz).date()
    until = local_midnight(today + timedelta(days=2), tz)
    if lab.frozen_working_days > 0:
        examiners = list(
            session.scalars(
                select(Examiner)
                .where(Examiner.lab_id == lab.id, Examiner.active.is_(True))
                .options(selectinload(Examiner.shifts))
            )
        )
        timeline = build_timeline(lab, now, examiners)
        until = max(until, timeline.at(timeline.frozen_until))
    return absence.starts_at < until


def after_absence(
    session: Session,
    examiner: Examiner,
    absence: Absence,
    *,
    actor: str,
    now: datetime | None = None,
) -> SolveRun | None:
    """Queue (or reuse) an auto-published repair run if the absence hits the frozen horizon."""
    lab = session.get(Lab, examiner.lab_id)
    assert lab is not None
    if not examiner.active or not _published(session, lab):
        return None
    if not absence_is_urgent(session, lab, absence, now=now):
        return None
    return request_repair(
        session,
        lab,
        actor=actor,
        reason=f"absence of examiner {examiner.external_ref}"[:200],
        auto_publish=True,
    )


def after_new_cases(
    session: Session, lab: Lab, cases: Sequence[tuple[str, str]], *, actor: str
) -> SolveRun | None:
    """Queue (or reuse) one auto-published repair run if ``cases`` (new cases' level codes and
    statuses) hold an open case whose level auto-publishes repairs; ``None`` otherwise."""
    codes = {code for code, status in cases if status == "open"}
    if not codes or not _published(session, lab):
        return None
    levels = levels_of(session, lab.id)
    urgent = [lv for lv in levels if lv.code in codes and lv.auto_publish_repair]
    if not urgent:
        return None
    return request_repair(
        session,
        lab,
        actor=actor,
        reason=f"new {urgent[0].code} case(s)",
        level=urgent[0],
    )


def after_imported_levels(
    session: Session,
    lab: Lab,
    changes: Sequence[tuple[str, str, str, str]],
    *,
    actor: str,
) -> SolveRun | None:
    """Queue (or reuse) one repair run if a bulk import raised an open case's level.

    ``changes`` are (case reference, level code before, level code after, status) of the
    imported cases whose level changed; a level lowered is no escalation. The most urgent
    escalation decides whether the repair is auto-published.
    """
    if not changes or not _published(session, lab):
        return None
    levels = {lv.code: lv for lv in levels_of(session, lab.id)}
    raised = [
        (levels[after].rank, ref, levels[after])
        for ref, before, after, status in changes
        if status == "open"
        and before in levels
        and after in levels
        and levels[after].rank < levels[before].rank
    ]
    if not raised:
        return None
    _, ref, level = min(raised)
    why = f"escalation of case {ref} to {level.code} (import)"
    if len(raised) > 1:
        why = f"{why} and {len(raised) - 1} more"
    return request_repair(session, lab, actor=actor, reason=why[:200], level=level)
