"""Best examiner/slot options for one job against the published schedule (docs/architecture.md
§5.6, §7.3).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from models import Job, Lab


def recommendations(
    session: Session, lab: Lab, job: Job, *, limit: int, now: datetime
) -> dict[str, Any]:
    """Best examiner/slot options for one job against the published schedule, cheapest first.

    The published assignments still ahead are the plan every option is priced against (each
    option moves only this job), with kept work (pins, work in progress or assumed started,
    the frozen window) where it is kept; ``cost_delta`` is the change of the lab's weighted
    objective. Every other eligible examiner/workstation pair is listed under ``refused`` with
    its reason, and a kept job says why it is kept, all in the lab's own terms.
    """
    from scheduler.core.explain import kept_placements
    from scheduler.core.plan import Assignment as PlanAssignment
    from scheduler.core.plan import Plan, Unscheduled
    from scheduler.core.recommend import advise
    from scheduler.core.recommend import kept_reason as kept_reason_words
    from scheduler.errors import Conflict
    from scheduler.planning.snapshot_cache import recent_snapshot
    from scheduler.planning.words import in_lab_terms, job_name

    snapshot, idmap = recent_snapshot(session, lab, now)
    sid = next((s for s, db_id in idmap.jobs.items() if db_id == job.id), None)
    if sid is None:
        excluded = next((e for e in idmap.excluded if e.job_id == job.id), None)
        why = f": {excluded.detail}" if excluded is not None else f" (status {job.status})"
        raise Conflict(f"job {job.id} is not planned{why}")
    jobs = snapshot.jobs_by_id
    placed = tuple(
        PlanAssignment(
            p.job,
            p.examiner,
            p.workstation,
            p.start,
            p.start + jobs[p.job].duration_on(p.workstation),
        )
        for p in snapshot.previous
        if p.job in jobs
    )
    placed_ids = {a.job for a in placed}
    plan = Plan(
        status="feasible",
        objective=None,
        bound=None,
        solve_seconds=0.0,
        assignments=placed,
        unscheduled=tuple(
            Unscheduled(j.id, "horizon_full") for j in snapshot.jobs if j.id not in placed_ids
        ),
    )
    tl = idmap.timeline
    advice = advise(snapshot, plan, sid, limit, name=job_name)
    pin = jobs[sid].pin
    current: PlanAssignment | None = next((a for a in placed if a.job == sid), None)
    if pin is not None:  # where the job is kept, not where the stored version had it
        end = pin.start + jobs[sid].duration_on(pin.workstation)
        current = PlanAssignment(sid, pin.examiner, pin.workstation, pin.start, end)
    kept_reason = advice.kept
    if kept_reason is not None and pin is not None and job.pin_start_at is None:
        # Pinned by the loader, not by a person: work under way, or a start nobody reported.
        what = "in progress" if job.status == "in_progress" else "taken as started (none reported)"
        kept_reason = kept_reason_words(snapshot, kept_placements(snapshot)[sid], what)
    return {
        "job_id": job.id,
        "job": sid,
        "schedule_version": idmap.current_version_id,
        "current": None
        if current is None
        else {
            "examiner": current.examiner,
            "workstation": current.workstation,
            "starts_at": tl.at(current.start),
            "ends_at": tl.at(current.end),
        },
        "kept": kept_reason is not None,
        "kept_reason": None if kept_reason is None else in_lab_terms(kept_reason, tl),
        "options": [
            {
                "examiner": o.examiner,
                "workstation": o.workstation,
                "starts_at": tl.at(o.start),
                "ends_at": tl.at(o.end),
                "cost_delta": o.cost_delta,
                "moves": [
                    {
                        "job_id": idmap.jobs[m.job],
                        "job": m.job,
                        "examiner": m.examiner,
                        "workstation": m.workstation,
                        "starts_at": tl.at(m.start),
                        "ends_at": tl.at(m.end),
                    }
                    for m in o.moves
                ],
            }
            for o in advice.options
        ],
        "refused": [
            {
                "examiner": r.examiner,
                "workstation": r.workstation,
                "reason": in_lab_terms(r.reason, tl),
            }
            for r in advice.refused
        ],
    }
