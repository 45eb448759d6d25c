"""Reports over the published schedule: the backlog by priority and age, SLA breaches, exposure
against the caps, utilisation (docs/architecture.md §7.3).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Sequence
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from models import (
    Assignment,
    Case,
    Device,
    Examiner,
    ExposureLog,
    ForecastEntry,
    Job,
    Lab,
    PriorityLevel,
    ScheduleVersion,
)
from models.base import utcnow
from models.lab import target_start
from scheduler.planning.loading.rows import ACTIVE_JOB_STATUSES
from scheduler.planning.views.placed import placed_jobs, resource_refs

AGE_BUCKETS: tuple[tuple[str, int | None], ...] = (
    ("0-7d", 7),
    ("8-30d", 30),
    ("31-90d", 90),
    ("91-180d", 180),
    ("over 180d", None),
)


def _bucket(age_days: float) -> str:
    for label, limit in AGE_BUCKETS:
        if limit is None or age_days <= limit:
            return label
    return AGE_BUCKETS[-1][0]


def case_expectations(
    session: Session, version: ScheduleVersion | None, case_ids: Sequence[int] | None = None
) -> tuple[dict[int, datetime], dict[int, datetime]]:
    """Per case: the earliest expected start and the latest expected end of its open work."""
    first: dict[int, datetime] = {}
    last: dict[int, datetime] = {}
    if version is None or (case_ids is not None and not case_ids):
        return first, last
    for table, start_col, end_col, version_col, job_col in (
        (
            Assignment,
            Assignment.starts_at,
            Assignment.ends_at,
            Assignment.schedule_version_id,
            Assignment.job_id,
        ),
        (
            ForecastEntry,
            ForecastEntry.starts_at,
            ForecastEntry.ends_at,
            ForecastEntry.schedule_version_id,
            ForecastEntry.job_id,
        ),
    ):
        query = (
            select(Device.case_id, func.min(start_col), func.max(end_col))
            .select_from(table)
            .join(Job, job_col == Job.id)
            .join(Device, Job.device_id == Device.id)
            .where(version_col == version.id, Job.status.in_(ACTIVE_JOB_STATUSES))
            .group_by(Device.case_id)
        )
        if case_ids is not None:
            query = query.where(Device.case_id.in_(case_ids))
        rows = session.execute(query)
        for case_id, start, end in rows:
            start = _aware(start)
            end = _aware(end)
            if case_id not in first or start < first[case_id]:
                first[case_id] = start
            if case_id not in last or end > last[case_id]:
                last[case_id] = end
    return first, last


def _aware(value: datetime) -> datetime:
    """Aggregates bypass the column type on SQLite: re-attach UTC to a naive result."""
    from datetime import UTC

    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def open_cases(session: Session, lab: Lab) -> list[tuple[Case, PriorityLevel, int]]:
    """Open cases with work left, their level and the number of open jobs."""
    counts = (
        select(Device.case_id, func.count(Job.id).label("open_jobs"))
        .join(Job, Job.device_id == Device.id)
        .where(Job.status.in_(ACTIVE_JOB_STATUSES))
        .group_by(Device.case_id)
        .subquery()
    )
    rows = session.execute(
        select(Case, PriorityLevel, counts.c.open_jobs)
        .join(PriorityLevel, Case.priority_level_id == PriorityLevel.id)
        .join(counts, counts.c.case_id == Case.id)
        .where(Case.lab_id == lab.id, Case.status == "open")
        .order_by(PriorityLevel.rank, Case.received_at)
    )
    return [(case, level, n) for case, level, n in rows]


def backlog_report(
    session: Session, lab: Lab, version: ScheduleVersion | None, now: datetime
) -> dict[str, Any]:
    """Open cases by priority and age, with the schedule's expected dates."""
    first, last = case_expectations(session, version)
    levels: dict[str, dict[str, Any]] = {}
    for level in lab.priority_levels:
        levels[level.code] = {
            "priority": level.code,
            "name": level.name,
            "cases": 0,
            "open_jobs": 0,
            "by_age": dict.fromkeys((label for label, _ in AGE_BUCKETS), 0),
            "oldest_received_at": None,
            "cases_started_in_horizon": 0,
            "expected_finish_median": None,
            "expected_finish_latest": None,
            "cases_without_expected_date": 0,
        }
    finishes: dict[str, list[datetime]] = defaultdict(list)
    horizon_end = None
    if version is not None and version.kpis.get("horizon_end"):
        horizon_end = datetime.fromisoformat(version.kpis["horizon_end"])
    for case, level, open_jobs in open_cases(session, lab):
        entry = levels[level.code]
        entry["cases"] += 1
        entry["open_jobs"] += open_jobs
        age = (now - case.received_at).total_seconds() / 86400
        entry["by_age"][_bucket(age)] += 1
        if entry["oldest_received_at"] is None or case.received_at < entry["oldest_received_at"]:
            entry["oldest_received_at"] = case.received_at
        if case.id in first and (horizon_end is None or first[case.id] < horizon_end):
            entry["cases_started_in_horizon"] += 1
        if case.id in last:
            finishes[level.code].append(last[case.id])
        else:
            entry["cases_without_expected_date"] += 1
    for code, ends in finishes.items():
        ordered = sorted(ends)
        levels[code]["expected_finish_median"] = ordered[len(ordered) // 2]
        levels[code]["expected_finish_latest"] = ordered[-1]
    return {
        "lab": lab.code,
        "as_of": now,
        "schedule_version": version.id if version is not None else None,
        "levels": list(levels.values()),
        "total_cases": sum(v["cases"] for v in levels.values()),
        "total_open_jobs": sum(v["open_jobs"] for v in levels.values()),
    }


def sla_breaches(
    session: Session, lab: Lab, version: ScheduleVersion | None, now: datetime
) -> dict[str, Any]:
    """Open cases that miss (or already missed) their target start or their legal deadline."""
    first, last = case_expectations(session, version)
    started = {
        case_id
        for (case_id,) in session.execute(
            select(Device.case_id)
            .join(Job, Job.device_id == Device.id)
            .where(Job.status.in_(("in_progress", "done")), Job.lab_id == lab.id)
            .distinct()
        )
    }
    breaches = []
    for case, level, _ in open_cases(session, lab):
        target = target_start(case.received_at, level.target_start_hours)
        expected_start = first.get(case.id)
        kinds = []
        if case.id not in started:
            if now > target:
                kinds.append("target_start_passed")
            elif expected_start is None or expected_start > target:
                kinds.append("target_start_will_be_missed")
        deadline = case.legal_deadline_at
        finish = last.get(case.id)
        if deadline is not None and (finish is None or finish > deadline):
            kinds.append("legal_deadline_passed" if now > deadline else "legal_deadline_at_risk")
        if kinds:
            breaches.append(
                {
                    "case": case.external_ref,
                    "priority": level.code,
                    "received_at": case.received_at,
                    "target_start_at": target,
                    "legal_deadline_at": deadline,
                    "expected_start": expected_start,
                    "expected_finish": finish,
                    "breaches": kinds,
                    "overdue_hours": round(max(0.0, (now - target).total_seconds() / 3600), 1)
                    if case.id not in started
                    else 0.0,
                }
            )
    by_level = Counter(b["priority"] for b in breaches)
    return {
        "lab": lab.code,
        "as_of": now,
        "schedule_version": version.id if version is not None else None,
        "count": len(breaches),
        "by_priority": dict(by_level),
        "cases": breaches,
    }


def exposure_report(
    session: Session, lab: Lab, version: ScheduleVersion | None, *, weeks: int = 2
) -> dict[str, Any]:
    """Per examiner and lab-local week: planned exposure vs the weekly cap vs exposure logged."""
    tz = ZoneInfo(lab.timezone)
    today = utcnow().astimezone(tz).date()
    first_monday = today - timedelta(days=today.weekday())
    mondays = [first_monday + timedelta(weeks=w) for w in range(-1, weeks)]
    examiners = list(
        session.scalars(
            select(Examiner).where(Examiner.lab_id == lab.id).order_by(Examiner.external_ref)
        )
    )
    planned: dict[tuple[int, date], int] = defaultdict(int)
    planned_days: dict[tuple[int, date], int] = defaultdict(int)
    if version is not None:
        for r in placed_jobs(session, version):
            if r.examiner_id is None or not r.exposure_minutes:
                continue
            day = r.starts_at.astimezone(tz).date()
            planned[(r.examiner_id, day - timedelta(days=day.weekday()))] += r.exposure_minutes
            planned_days[(r.examiner_id, day)] += r.exposure_minutes
    logged: dict[tuple[int, date], int] = defaultdict(int)
    logged_days: dict[tuple[int, date], int] = defaultdict(int)
    start, end = mondays[0], mondays[-1] + timedelta(days=7)
    for log in session.scalars(
        select(ExposureLog)
        .join(Examiner, ExposureLog.examiner_id == Examiner.id)
        .where(Examiner.lab_id == lab.id, ExposureLog.day >= start, ExposureLog.day < end)
    ):
        logged[(log.examiner_id, log.day - timedelta(days=log.day.weekday()))] += log.minutes
        logged_days[(log.examiner_id, log.day)] += log.minutes
    rows = []
    for e in examiners:
        per_week = []
        for monday in mondays:
            p, lg = planned[(e.id, monday)], logged[(e.id, monday)]
            days = [monday + timedelta(days=d) for d in range(7)]
            worst = max(planned_days[(e.id, d)] + logged_days[(e.id, d)] for d in days)
            per_week.append(
                {
                    "week_of": monday,
                    "planned": p,
                    "logged": lg,
                    "weekly_cap": e.weekly_cap_minutes,
                    "over_weekly_cap": e.weekly_cap_minutes is not None
                    and p + lg > e.weekly_cap_minutes,
                    "max_day": worst,
                    "daily_cap": e.daily_cap_minutes,
                    "over_daily_cap": e.daily_cap_minutes is not None
                    and worst > e.daily_cap_minutes,
                }
            )
        rows.append(
            {
                "examiner": e.external_ref,
                "active": e.active,
                "max_severity": e.max_severity,
                "weeks": per_week,
            }
        )
    return {
        "lab": lab.code,
        "schedule_version": version.id if version is not None else None,
        "examiners": rows,
    }


def utilization_report(session: Session, lab: Lab, version: ScheduleVersion) -> dict[str, Any]:
    """Planned attended time vs availability per examiner, machine load per workstation."""
    examiners, workstations = resource_refs(session, lab)
    stored = version.kpis.get("utilization", {})
    return {
        "lab": lab.code,
        "schedule_version": version.id,
        "horizon_start": version.kpis.get("epoch"),
        "horizon_end": version.kpis.get("horizon_end"),
        "examiner_share": stored.get("examiner_share"),
        "examiners": [
            {"examiner": ref, **figures}
            for ref, figures in sorted(stored.get("examiners", {}).items())
        ],
        "workstations": [
            {"workstation": ref, **figures}
            for ref, figures in sorted(stored.get("workstations", {}).items())
        ],
        "known_examiners": len(examiners),
        "known_workstations": len(workstations),
    }
