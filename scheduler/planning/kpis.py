"""Key figures of a plan, stored with its schedule version and shown to supervisors.

Computed from the snapshot the plan was solved on, so they describe exactly what was decided:

- ``scheduled`` / ``unscheduled`` (by reason) / ``jobs``;
- ``start_on_time_by_level``: per priority level, the cases not started yet whose first planned
  (or forecast) start meets the level's target start (``received_at + target_start_hours``, the
  SLA); ``late_cases_by_level`` names the others (up to 20 a level: reference, target start and
  expected start, null when there is none); ``p1_on_time`` / ``p2_on_time`` are these rates for
  the two most urgent levels (``None`` when the level has no such case); ``already_late`` counts
  cases past their target at the epoch;
- ``jobs_on_time_by_level``: per level, jobs whose planned (or forecast) end meets their due time;
- ``weighted_tardiness`` (the plan's tardiness term), ``objective``, ``bound`` and the relative
  ``gap`` between them;
- ``exposure``: per examiner, planned and logged exposure per lab-local day and week against the
  daily, severe and weekly caps;
- ``utilization``: attended minutes over available minutes per examiner, machine minutes over
  available capacity per workstation;
- ``warnings`` from the loader, and ``unplannable``: every stored record left out because it
  cannot be planned, each named with its field (its jobs are also listed as unscheduled with
  reason ``unplannable_record``).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from typing import Any

from scheduler.core.plan import PIN_CONFLICT, Assignment, Plan
from scheduler.core.snapshot import Snapshot
from scheduler.planning.capacity import capacity_figures
from scheduler.planning.delays import urgent_delays
from scheduler.planning.loading.idmap import IdMap
from scheduler.planning.words import in_lab_terms

MAX_WARNINGS = 50
MAX_LATE_CASES = 20
SHOWN_MINUTES = 10**7  # about 19 years either side of the epoch: any real target


def _length(intervals: tuple[tuple[int, int], ...]) -> int:
    return sum(b - a for a, b in intervals)


def _rate(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def compute_kpis(snapshot: Snapshot, plan: Plan, idmap: IdMap) -> dict[str, Any]:
    tl = idmap.timeline
    assigned: dict[str, Assignment] = {a.job: a for a in plan.assignments}
    forecast = {f.job: f for f in plan.forecast}
    reasons = Counter(u.reason for u in plan.unscheduled)
    reasons.update(e.reason for e in idmap.excluded)

    levels: dict[str, dict[str, int]] = defaultdict(
        lambda: {"jobs": 0, "scheduled": 0, "on_time": 0}
    )
    for job in snapshot.jobs:
        level = levels[idmap.job_level.get(job.id, "?")]
        level["jobs"] += 1
        end: int | None = None
        if job.id in assigned:
            level["scheduled"] += 1
            end = assigned[job.id].end
        elif job.id in forecast:
            end = forecast[job.id].end
        if end is not None and (job.due is None or end <= job.due):
            level["on_time"] += 1

    def rank(item: tuple[str, Any]) -> int:
        return idmap.level_rank.get(item[0], 99)

    jobs_on_time = {
        code: {**figures, "rate": _rate(figures["on_time"], figures["jobs"])}
        for code, figures in sorted(levels.items(), key=rank)
    }
    first_start: dict[str, int] = {}
    for job in snapshot.jobs:
        placed = assigned.get(job.id) or forecast.get(job.id)
        if placed is not None:
            first_start[job.case] = min(first_start.get(job.case, placed.start), placed.start)
    cases: dict[str, dict[str, int]] = defaultdict(
        lambda: {"cases": 0, "on_time": 0, "already_late": 0}
    )
    late: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for case, code in idmap.case_level.items():
        if case in idmap.cases_started:
            continue
        figures = cases[code]
        figures["cases"] += 1
        if idmap.case_target_start.get(case, 0) < 0:
            figures["already_late"] += 1  # past its target start before this plan began
        start = first_start.get(case)
        if start is not None and start <= idmap.case_target_start.get(case, start):
            figures["on_time"] += 1
        elif len(late[code]) < MAX_LATE_CASES:
            target = idmap.case_target_start.get(case)
            late[code].append(
                {
                    "case": case,
                    "target_start": tl.at(target).isoformat()
                    if target is not None and abs(target) < SHOWN_MINUTES
                    else None,
                    "expected_start": tl.at(start).isoformat() if start is not None else None,
                }
            )
    start_on_time = {
        code: {**figures, "rate": _rate(figures["on_time"], figures["cases"])}
        for code, figures in sorted(cases.items(), key=rank)
    }
    by_rank = {r: code for code, r in idmap.level_rank.items()}

    def level_rate(level_rank: int) -> float | None:
        code = by_rank.get(level_rank)
        return start_on_time[code]["rate"] if code in start_on_time else None

    objective, bound = plan.objective, plan.bound
    gap = None
    if objective is not None and bound is not None:
        gap = round((objective - bound) / objective, 4) if objective > 0 else 0.0
    return {
        "epoch": tl.epoch.isoformat(),
        "horizon_end": tl.at(tl.horizon).isoformat(),
        "frozen_until": tl.at(tl.frozen_until).isoformat(),
        "jobs": len(snapshot.jobs) + len(idmap.excluded),
        "scheduled": len(plan.assignments),
        "unscheduled": len(plan.unscheduled) + len(idmap.excluded),
        "unscheduled_by_reason": dict(sorted(reasons.items())),
        "weighted_tardiness": plan.terms.get("tardiness"),
        "objective": objective,
        "bound": bound,
        "gap": gap,
        "solve_seconds": round(plan.solve_seconds, 3),
        "start_on_time_by_level": start_on_time,
        "jobs_on_time_by_level": jobs_on_time,
        "late_cases_by_level": {code: late[code] for code in start_on_time if late.get(code)},
        "p1_on_time": level_rate(1),
        "p2_on_time": level_rate(2),
        "exposure": exposure_figures(snapshot, plan, idmap),
        "utilization": utilization(snapshot, plan),
        "capacity": capacity_figures(snapshot, plan, idmap),
        "warnings": [
            *urgent_delays(snapshot, plan, idmap),
            *(
                f"pin conflict: {u.job}: {in_lab_terms(u.detail, tl)}"
                for u in plan.unscheduled
                if u.reason == PIN_CONFLICT
            ),
            *idmap.warnings,
        ][:MAX_WARNINGS],
        "unplannable": idmap.unplannable[:MAX_WARNINGS],
        "mode": idmap.mode,
    }


def exposure_figures(snapshot: Snapshot, plan: Plan, idmap: IdMap) -> dict[str, Any]:
    """Per examiner: planned + logged exposure per day and week against the caps."""
    tl = idmap.timeline
    jobs = snapshot.jobs_by_id
    planned: dict[str, dict[int, int]] = defaultdict(lambda: defaultdict(int))
    severe: dict[str, dict[int, int]] = defaultdict(lambda: defaultdict(int))
    for a in plan.assignments:
        job = jobs.get(a.job)
        if job is None or a.examiner is None or job.exposure <= 0:
            continue
        day_index = snapshot.day_of(a.start)
        if day_index is None:
            continue
        planned[a.examiner][day_index] += job.exposure
        if job.is_severe:
            severe[a.examiner][day_index] += job.exposure
    out: dict[str, Any] = {}
    for examiner in snapshot.examiners:
        policy = examiner.exposure
        days: list[dict[str, Any]] = []
        max_day = 0
        for index, day in enumerate(tl.day_dates):
            p = planned[examiner.id].get(index, 0)
            logged = policy.used_by_day.get(index, 0)
            max_day = max(max_day, p + logged)
            if p or logged:
                days.append(
                    {
                        "day": day.isoformat(),
                        "planned": p,
                        "severe": severe[examiner.id].get(index, 0),
                        "logged": logged,
                    }
                )
        weeks = []
        logged_weeks = snapshot.logged_week_exposure(examiner)
        for w, (start, end) in enumerate(snapshot.weeks):
            p = sum(
                minutes
                for index, minutes in planned[examiner.id].items()
                if start <= snapshot.days[index][0] < end
            )
            weeks.append(
                {
                    "week_of": tl.at(start).astimezone(tl.tz).date().isoformat(),
                    "planned": p,
                    "logged": logged_weeks.get(w, 0),
                    "cap": policy.weekly_cap,
                }
            )
        out[examiner.id] = {
            "daily_cap": policy.daily_cap,
            "severe_daily_cap": policy.severe_daily_cap,
            "weekly_cap": policy.weekly_cap,
            "max_severity": policy.max_severity,
            "planned_total": sum(planned[examiner.id].values()),
            "max_day": max_day,
            "max_day_share": _rate(max_day, policy.daily_cap) if policy.daily_cap else None,
            "days": days,
            "weeks": weeks,
        }
    return out


def utilization(snapshot: Snapshot, plan: Plan) -> dict[str, Any]:
    """Attended minutes / available minutes per examiner; machine load per workstation."""
    jobs = snapshot.jobs_by_id
    attended: dict[str, int] = defaultdict(int)
    machine: dict[str, int] = defaultdict(int)
    for a in plan.assignments:
        job = jobs.get(a.job)
        if job is None:
            continue
        if a.examiner is not None:
            attended[a.examiner] += job.attended
        if a.workstation is not None:
            machine[a.workstation] += job.machine_on(a.workstation)
    examiners = {
        e.id: {
            "available": _length(e.available),
            "attended": attended[e.id],
            "share": _rate(attended[e.id], _length(e.available)),
        }
        for e in snapshot.examiners
    }
    workstations = {
        w.id: {
            "available": _length(w.available) * w.capacity,
            "machine": machine[w.id],
            "share": _rate(machine[w.id], _length(w.available) * w.capacity),
        }
        for w in snapshot.workstations
    }
    total_available = sum(_length(e.available) for e in snapshot.examiners)
    return {
        "examiners": examiners,
        "workstations": workstations,
        "examiner_share": _rate(sum(attended.values()), total_available),
    }
