"""Plan -> `ScheduleVersion`: a verified plan, with everything a supervisor asks about it.

A plan that fails the independent verifier is never stored (docs/architecture.md §8: every plan
passes the verifier before it is stored or published). The version keeps the assignments, every
job left out with its reason (including the jobs the loader could not put in the snapshot), the
forecast beyond the horizon, the objective's terms and the KPIs, all written in one flush. The
verification and the rows are prepared before the write transaction (``prepare_version``), which
then only inserts.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from models import Assignment, ForecastEntry, Lab, ScheduleVersion, SolveRun, UnscheduledJob
from scheduler.core.plan import Assignment as Placement
from scheduler.core.plan import Plan
from scheduler.core.snapshot import Snapshot
from scheduler.core.verify import Violation, verify
from scheduler.errors import Invalid
from scheduler.planning.kpis import compute_kpis
from scheduler.planning.loading.idmap import IdMap
from scheduler.planning.words import in_lab_terms
from scheduler.services import audit
from scheduler.services.integrity import flush, integrity_error

MAX_DETAIL = 500
MAX_REASON = 64
# Forecasts far beyond any realistic backlog are clamped (datetimes stop at year 9999).
MAX_FORECAST_MINUTES = 20 * 366 * 24 * 60
MAX_REPORTED_VIOLATIONS = 20


class PlanRejected(Invalid):
    """The plan breaks a hard rule; ``extra["violations"]`` lists the first few."""

    type = "https://labq.dev/problems/plan-rejected"
    title = "Plan rejected by the verifier"


def _violation(v: Violation) -> dict[str, Any]:
    return {"rule": v.rule, "job": v.job, "detail": v.detail}


@dataclass(frozen=True)
class PreparedVersion:
    """A verified plan's version, computed outside any transaction: the KPIs and the rows of
    assignments, unscheduled jobs and forecast (without their version id, not known yet)."""

    kpis: dict[str, Any]
    assignments: list[dict[str, Any]]
    unscheduled: list[dict[str, Any]]
    forecast: list[dict[str, Any]]


def prepare_version(snapshot: Snapshot, plan: Plan, idmap: IdMap) -> PreparedVersion:
    """Verify ``plan`` and compute everything its version stores.

    The slow part of storing, done before the write transaction so it holds the lock briefly.
    """
    violations = verify(snapshot, plan)
    if violations:
        first = violations[0]
        raise PlanRejected(
            f"the plan breaks {len(violations)} hard rule(s) and is not stored; first: "
            f"{first.rule} (job {first.job}): {first.detail}",
            violations=[_violation(v) for v in violations[:MAX_REPORTED_VIOLATIONS]],
        )
    tl = idmap.timeline

    def ref(table: dict[str, int], sid: str | None) -> int | None:
        return None if sid is None else table[sid]

    def clamp(minute: int) -> int:
        return max(0, min(MAX_FORECAST_MINUTES, minute))

    def placed(a: Placement) -> dict[str, Any]:
        starts_at, ends_at = tl.at(a.start), tl.at(a.end)
        examiner_id = ref(idmap.examiners, a.examiner)
        workstation_id = ref(idmap.workstations, a.workstation)
        begun = idmap.begun.get(a.job)
        if begun is not None:  # work under way keeps where and when it began (loading.idmap.Begun)
            starts_at = min(begun.start, starts_at)
            if begun.end is not None and a.end <= a.start:  # nothing left: it ended as planned
                ends_at = max(begun.end, starts_at)
            examiner_id = examiner_id or begun.examiner_id
            workstation_id = workstation_id or begun.workstation_id
        return {
            "job_id": idmap.jobs[a.job],
            "examiner_id": examiner_id,
            "workstation_id": workstation_id,
            "starts_at": starts_at,
            "ends_at": ends_at,
        }

    assignments = [placed(a) for a in plan.assignments]
    unscheduled = [
        {
            "job_id": idmap.jobs[u.job],
            "reason": u.reason[:MAX_REASON],
            "detail": in_lab_terms(u.detail, tl)[:MAX_DETAIL],
        }
        for u in plan.unscheduled
    ]
    unscheduled.extend(
        {
            "job_id": e.job_id,
            "reason": e.reason[:MAX_REASON],
            "detail": in_lab_terms(e.detail, tl)[:MAX_DETAIL],
        }
        for e in idmap.excluded
    )
    forecast = [
        {
            "job_id": idmap.jobs[f.job],
            "starts_at": tl.at(clamp(f.start)),
            "ends_at": tl.at(clamp(max(f.start, f.end))),
        }
        for f in plan.forecast
        if f.job in idmap.jobs
    ]
    return PreparedVersion(
        kpis=compute_kpis(snapshot, plan, idmap),
        assignments=assignments,
        unscheduled=unscheduled,
        forecast=forecast,
    )


def store_plan(
    session: Session,
    lab: Lab,
    run: SolveRun | None,
    snapshot: Snapshot,
    plan: Plan,
    idmap: IdMap,
    prepared: PreparedVersion | None = None,
) -> ScheduleVersion:
    """Store ``plan`` (solved on ``snapshot``) as a new, unpublished version of ``lab``.

    ``prepared``: ``prepare_version``'s result, computed before the transaction began.
    """
    if snapshot.lab != lab.code:
        raise Invalid(f"the snapshot is of lab {snapshot.lab!r}, not {lab.code!r}")
    prepared = prepared or prepare_version(snapshot, plan, idmap)
    version = ScheduleVersion(
        lab_id=lab.id,
        solve_run_id=run.id if run is not None else None,
        epoch=idmap.timeline.epoch,
        status=plan.status,
        objective=plan.objective,
        bound=plan.bound,
        is_current=False,
        terms=dict(plan.terms),
        kpis=prepared.kpis,
        diff=None,
    )
    session.add(version)
    flush(session)
    for model, rows in (
        (Assignment, prepared.assignments),
        (UnscheduledJob, prepared.unscheduled),
        (ForecastEntry, prepared.forecast),
    ):
        if rows:
            try:
                session.execute(
                    insert(model), [{**row, "schedule_version_id": version.id} for row in rows]
                )
            except IntegrityError as exc:
                raise integrity_error(exc) from None
    session.expire(version, ["assignments", "unscheduled", "forecast"])
    audit.record(
        session,
        actor=run.requested_by if run is not None else "planning",
        action="schedule_version.create",
        entity_type="schedule_version",
        entity_id=version.id,
        lab_id=lab.id,
        after={
            "id": version.id,
            "run": version.solve_run_id,
            "status": version.status,
            "objective": version.objective,
            "assignments": len(prepared.assignments),
            "unscheduled": len(prepared.unscheduled),
        },
    )
    return version
