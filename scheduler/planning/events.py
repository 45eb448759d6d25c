"""What the lab's case systems are told: new schedules, changed forecasts, new breaches, failures.

Called inside the transaction of the change that causes them (a publication, a run failing), so
the events are in the outbox exactly when the change is committed. Forecasts and breaches are
compared with the version a publication replaces, using the rules of the forecast and SLA reports
(``views.case_expectations``, ``views.sla_breaches``); nothing is computed when no subscription of
the lab wants it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from models import Case, Lab, ScheduleVersion, SolveRun
from scheduler.planning import views
from scheduler.services import webhooks


def _z(value: datetime | None) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value is not None else None


def announce_publication(
    session: Session,
    lab: Lab,
    previous: ScheduleVersion | None,
    version: ScheduleVersion,
    now: datetime,
) -> None:
    """Queue ``schedule.published`` and, per case, ``case.forecast_changed`` and
    ``case.sla_breached`` (a case that breaches under ``version`` now and did not under
    ``previous`` when that was published; on a lab's first publication every breach is new)."""
    wanted = webhooks.subscribed_types(session, lab.id)
    if not wanted:
        return
    previous_id = previous.id if previous is not None else None
    if "schedule.published" in wanted:
        counts = (version.diff or {}).get("counts", {})
        webhooks.emit(
            session,
            lab,
            "schedule.published",
            {
                "version": version.id,
                "previous_version": previous_id,
                "published_at": _z(version.published_at),
                "changes": counts,
                "assignments": len(version.assignments),
                "unscheduled": len(version.unscheduled),
            },
            now=now,
        )
    if "case.forecast_changed" in wanted:
        _forecast_changes(session, lab, previous, version, now)
    if "case.sla_breached" in wanted:
        _new_breaches(session, lab, previous, version, now)


def _forecast_changes(
    session: Session,
    lab: Lab,
    previous: ScheduleVersion | None,
    version: ScheduleVersion,
    now: datetime,
) -> None:
    """One event per open case whose expected finish differs from the previous version's."""
    old_start, old_finish = views.case_expectations(session, previous)
    new_start, new_finish = views.case_expectations(session, version)
    changed = sorted(
        case_id
        for case_id in set(old_finish) | set(new_finish)
        if old_finish.get(case_id) != new_finish.get(case_id)
    )
    if not changed:
        return
    refs = dict(
        session.execute(
            select(Case.id, Case.external_ref).where(
                Case.id.in_(changed), Case.lab_id == lab.id, Case.status == "open"
            )
        ).all()
    )
    for case_id in changed:
        if case_id not in refs:
            continue
        data: dict[str, Any] = {
            "case": refs[case_id],
            "version": version.id,
            "previous_version": previous.id if previous is not None else None,
            "expected_examination_start": _z(new_start.get(case_id)),
            "expected_finish": _z(new_finish.get(case_id)),
            "previous_expected_examination_start": _z(old_start.get(case_id)),
            "previous_expected_finish": _z(old_finish.get(case_id)),
        }
        webhooks.emit(session, lab, "case.forecast_changed", data, now=now)


def _new_breaches(
    session: Session,
    lab: Lab,
    previous: ScheduleVersion | None,
    version: ScheduleVersion,
    now: datetime,
) -> None:
    # What the previous publication said, as of when it was published: a case whose target start
    # has passed since then is new too, though the schedule did not change it.
    before: set[str] = set()
    if previous is not None:
        as_of = previous.published_at or now
        before = {b["case"] for b in views.sla_breaches(session, lab, previous, as_of)["cases"]}
    for breach in views.sla_breaches(session, lab, version, now)["cases"]:
        if breach["case"] in before:
            continue
        data = {
            "case": breach["case"],
            "version": version.id,
            "priority": breach["priority"],
            "breaches": breach["breaches"],
            "target_start_at": _z(breach["target_start_at"]),
            "legal_deadline_at": _z(breach["legal_deadline_at"]),
            "expected_start": _z(breach["expected_start"]),
            "expected_finish": _z(breach["expected_finish"]),
        }
        webhooks.emit(session, lab, "case.sla_breached", data, now=now)


def announce_run_failed(session: Session, run_id: int) -> None:
    """Queue ``run.failed`` for a run that has just been marked failed (same transaction)."""
    run = session.get(SolveRun, run_id)
    if run is None:
        return
    lab = session.get(Lab, run.lab_id)
    if lab is None or "run.failed" not in webhooks.subscribed_types(session, lab.id):
        return
    data = {
        "run": run.id,
        "mode": run.mode,
        "attempts": run.attempts,
        "reason": run.reason,
        "error": run.error,
        "finished_at": _z(run.finished_at),
    }
    webhooks.emit(session, lab, "run.failed", data)
