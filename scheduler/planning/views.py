"""Read models of schedules: what the API views, the exports, the reports and the demo show.

Everything here reads; nothing writes. Jobs are named by references only (``case/device/job``,
stage, priority): labq holds no case content, and an examiner's view shows nothing more.
"""

from __future__ import annotations

import csv
import io
import threading
from collections import Counter, OrderedDict, defaultdict
from collections.abc import Hashable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from functools import cache
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import and_, bindparam, func, or_, select
from sqlalchemy.orm import Session, defer

from models import (
    Assignment,
    Case,
    Device,
    Examiner,
    ExposureLog,
    ForecastEntry,
    Job,
    JobPredecessor,
    Lab,
    PriorityLevel,
    ScheduleVersion,
    UnscheduledJob,
    Workstation,
)
from models.base import utcnow
from models.lab import target_start
from scheduler.errors import NotFound
from scheduler.planning.loader import ACTIVE_JOB_STATUSES, STAGE_ALLOWANCE_HOURS

AGE_BUCKETS: tuple[tuple[str, int | None], ...] = (
    ("0-7d", 7),
    ("8-30d", 30),
    ("31-90d", 90),
    ("91-180d", 180),
    ("over 180d", None),
)


# ---- versions -------------------------------------------------------------------------------


# The diff and KPIs of a large lab are big JSON documents: load them only when a view reads them.
_LAZY_JSON = (
    defer(ScheduleVersion.diff),
    defer(ScheduleVersion.kpis),
    defer(ScheduleVersion.terms),
)


# Statements built once: composing a select costs more than running it on a short read.
_VERSION_BY_ID = (
    select(ScheduleVersion)
    .where(ScheduleVersion.id == bindparam("version_id"))
    .options(*_LAZY_JSON)
)
_CURRENT_VERSION = (
    select(ScheduleVersion)
    .where(ScheduleVersion.lab_id == bindparam("lab_id"), ScheduleVersion.is_current.is_(True))
    .options(*_LAZY_JSON)
)


def get_version(session: Session, lab: Lab, version_id: int) -> ScheduleVersion:
    version = session.scalar(_VERSION_BY_ID, {"version_id": version_id})
    if version is None or version.lab_id != lab.id:
        raise NotFound(f"schedule version {version_id} does not exist in lab {lab.code!r}")
    return version


def current_or_404(session: Session, lab: Lab) -> ScheduleVersion:
    version = session.scalar(_CURRENT_VERSION, {"lab_id": lab.id})
    if version is None:
        raise NotFound(f"lab {lab.code!r} has no published schedule yet; queue a solve run")
    return version


class ReadCache:
    """A bounded, thread-safe map of rendered reads, least recently used dropped first.

    Only for what a key fully determines: a schedule version's stored content (its summary,
    KPIs) never changes once stored, so entries are keyed by version id plus whatever the read
    also shows that can change (``is_current``, ``published_at``). What joins live rows (job,
    case, examiner references) is keyed by those rows themselves, never by the version alone.
    """

    def __init__(self, entries: int) -> None:
        self.entries = entries
        self._data: OrderedDict[Hashable, Any] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: Hashable) -> Any | None:
        with self._lock:
            value = self._data.get(key)
            if value is not None:
                self._data.move_to_end(key)
            return value

    def put(self, key: Hashable, value: Any) -> None:
        if self.entries <= 0:
            return
        with self._lock:
            self._data[key] = value
            self._data.move_to_end(key)
            while len(self._data) > self.entries:
                self._data.popitem(last=False)

    def __len__(self) -> int:
        return len(self._data)


# ---- placed jobs ----------------------------------------------------------------------------


@dataclass(frozen=True)
class PlacedJob:
    """One assignment with the references a person reads."""

    job_id: int
    job: str  # case/device/job
    case: str
    case_id: int
    device: str
    stage: str
    priority: str
    examiner_id: int | None
    examiner: str | None
    examiner_name: str | None
    workstation_id: int | None
    workstation: str | None
    starts_at: datetime
    ends_at: datetime
    attended_minutes: int
    machine_minutes: int
    exposure_minutes: int
    severity: int


_PLACED_FILTERS: dict[str, Any] = {
    "examiner_id": Assignment.examiner_id == bindparam("examiner_id"),
    "workstation_id": Assignment.workstation_id == bindparam("workstation_id"),
    "case_id": Case.id == bindparam("case_id"),
    "starts_before": Assignment.starts_at < bindparam("starts_before"),
    "ends_after": Assignment.ends_at > bindparam("ends_after"),
    # keyset: after the row (after_start, after_job) in (starts_at, job_id) order
    "after": or_(
        Assignment.starts_at > bindparam("after_start"),
        and_(
            Assignment.starts_at == bindparam("after_start"),
            Assignment.job_id > bindparam("after_job"),
        ),
    ),
}


@cache
def _placed_query(filters: frozenset[str]):  # type: ignore[no-untyped-def]
    """The placed-jobs select with these filters, built once per combination.

    Plain columns, not the Assignment entity: no identity map or instance state per row, which
    was most of the cost of a schedule read.
    """
    query = (
        select(
            Assignment.job_id,
            Job.external_ref,
            Case.external_ref,
            Case.id,
            Device.external_ref,
            Job.stage,
            PriorityLevel.code,
            Assignment.examiner_id,
            Examiner.external_ref,
            Examiner.display_name,
            Assignment.workstation_id,
            Workstation.external_ref,
            Assignment.starts_at,
            Assignment.ends_at,
            Job.attended_minutes,
            Job.machine_minutes,
            Job.exposure_minutes,
            Job.severity,
        )
        .join(Job, Assignment.job_id == Job.id)
        .join(Device, Job.device_id == Device.id)
        .join(Case, Device.case_id == Case.id)
        .join(PriorityLevel, Case.priority_level_id == PriorityLevel.id)
        .outerjoin(Examiner, Assignment.examiner_id == Examiner.id)
        .outerjoin(Workstation, Assignment.workstation_id == Workstation.id)
        .where(
            Assignment.schedule_version_id == bindparam("version_id"),
            *(_PLACED_FILTERS[name] for name in sorted(filters - {"limit"})),
        )
        .order_by(Assignment.starts_at, Assignment.job_id)
    )
    return query.limit(bindparam("limit")) if "limit" in filters else query


def placed_jobs(
    session: Session,
    version: ScheduleVersion,
    *,
    examiner_id: int | None = None,
    workstation_id: int | None = None,
    case_id: int | None = None,
    starts_before: datetime | None = None,
    ends_after: datetime | None = None,
    after: tuple[datetime, int] | None = None,
    limit: int | None = None,
) -> list[PlacedJob]:
    """The version's assignments in (start, job id) order; ``after`` and ``limit`` page them."""
    params: dict[str, Any] = {
        name: value
        for name, value in (
            ("examiner_id", examiner_id),
            ("workstation_id", workstation_id),
            ("case_id", case_id),
            ("starts_before", starts_before),
            ("ends_after", ends_after),
            ("after", after),
            ("limit", limit),
        )
        if value is not None
    }
    query = _placed_query(frozenset(params))
    if after is not None:
        params["after_start"], params["after_job"] = params.pop("after")
    params["version_id"] = version.id
    # Rows come as (job id, job ref, then PlacedJob's fields from ``case`` on).
    return [
        PlacedJob(job_id, f"{rest[0]}/{rest[2]}/{job}", *rest)
        for job_id, job, *rest in session.execute(query, params)
    ]


def job_refs(session: Session, job_ids: Iterable[int]) -> dict[int, str]:
    """``case/device/job`` references of jobs."""
    ids = sorted(set(job_ids))
    out: dict[int, str] = {}
    for chunk in (ids[i : i + 5000] for i in range(0, len(ids), 5000)):
        for job_id, job, device, case in session.execute(
            select(Job.id, Job.external_ref, Device.external_ref, Case.external_ref)
            .join(Device, Job.device_id == Device.id)
            .join(Case, Device.case_id == Case.id)
            .where(Job.id.in_(chunk))
        ):
            out[job_id] = f"{case}/{device}/{job}"
    return out


def resource_refs(session: Session, lab: Lab) -> tuple[dict[int, str], dict[int, str]]:
    examiners: dict[int, str] = {
        row.id: row.external_ref
        for row in session.execute(
            select(Examiner.id, Examiner.external_ref).where(Examiner.lab_id == lab.id)
        )
    }
    workstations: dict[int, str] = {
        row.id: row.external_ref
        for row in session.execute(
            select(Workstation.id, Workstation.external_ref).where(Workstation.lab_id == lab.id)
        )
    }
    return examiners, workstations


def readable_diff(session: Session, lab: Lab, stored: dict[str, Any] | None) -> dict[str, Any]:
    """A stored diff with job, examiner and workstation references added."""
    if not stored:
        return {"from_version": None, "to_version": None, "counts": {}, "moved": []}
    examiners, workstations = resource_refs(session, lab)
    items = [*stored.get("moved", []), *stored.get("added", []), *stored.get("removed", [])]
    refs = job_refs(session, (item["job_id"] for item in items))

    def place(p: dict[str, Any] | None) -> dict[str, Any] | None:
        if p is None:
            return None
        return {
            "examiner": examiners.get(p["examiner_id"]) if p["examiner_id"] else None,
            "workstation": workstations.get(p["workstation_id"]) if p["workstation_id"] else None,
            "starts_at": p["starts_at"],
            "ends_at": p["ends_at"],
        }

    def item(entry: dict[str, Any]) -> dict[str, Any]:
        return {
            "job_id": entry["job_id"],
            "job": refs.get(entry["job_id"], f"#{entry['job_id']}"),
            "changes": entry.get("changes", []),
            "from": place(entry.get("from")),
            "to": place(entry.get("to")),
        }

    return {
        "from_version": stored.get("from_version"),
        "to_version": stored.get("to_version"),
        "counts": stored.get("counts", {}),
        "moved": [item(e) for e in stored.get("moved", [])],
        "added": [item(e) for e in stored.get("added", [])],
        "removed": [item(e) for e in stored.get("removed", [])],
    }


# ---- exports --------------------------------------------------------------------------------

CSV_COLUMNS = (
    "job",
    "case",
    "device",
    "stage",
    "priority",
    "examiner",
    "workstation",
    "starts_at",
    "ends_at",
    "attended_minutes",
    "machine_minutes",
    "exposure_minutes",
    "severity",
)


def _csv_safe(value: object) -> object:
    """Neutralise spreadsheet formulas in text cells (CSV injection)."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


def schedule_csv(rows: Sequence[PlacedJob], tz: ZoneInfo) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    for r in rows:
        writer.writerow(
            [
                _csv_safe(v)
                for v in (
                    r.job,
                    r.case,
                    r.device,
                    r.stage,
                    r.priority,
                    r.examiner or "",
                    r.workstation or "",
                    r.starts_at.astimezone(tz).isoformat(),
                    r.ends_at.astimezone(tz).isoformat(),
                    r.attended_minutes,
                    r.machine_minutes,
                    r.exposure_minutes,
                    r.severity,
                )
            ]
        )
    return buffer.getvalue()


@dataclass(frozen=True)
class Revision:
    """How often a job's placement changed across published versions, and when it last did."""

    sequence: int
    last_modified: datetime


def placement_revisions(session: Session, lab: Lab, job_ids: Sequence[int]) -> dict[int, Revision]:
    """Per job, its placement's revision over the lab's published versions, oldest first.

    A calendar app updates an event only when its SEQUENCE grows: the sequence counts the
    publications that changed the job's examiner, workstation, start or end, and LAST-MODIFIED
    is the publication that made the latest change.
    """
    if not job_ids:
        return {}
    rows = session.execute(
        select(
            Assignment.job_id,
            Assignment.examiner_id,
            Assignment.workstation_id,
            Assignment.starts_at,
            Assignment.ends_at,
            ScheduleVersion.published_at,
        )
        .join(ScheduleVersion, Assignment.schedule_version_id == ScheduleVersion.id)
        .where(
            ScheduleVersion.lab_id == lab.id,
            ScheduleVersion.published_at.is_not(None),
            Assignment.job_id.in_(list(job_ids)),
        )
        .order_by(ScheduleVersion.published_at, ScheduleVersion.id)
    ).all()
    seen: dict[int, tuple[object, ...]] = {}
    revisions: dict[int, Revision] = {}
    for job_id, examiner_id, workstation_id, starts_at, ends_at, published_at in rows:
        assert published_at is not None  # the query reads published versions only
        placement = (examiner_id, workstation_id, starts_at, ends_at)
        last = seen.get(job_id)
        if last is None:
            revisions[job_id] = Revision(0, published_at)
        elif last != placement:
            revisions[job_id] = Revision(revisions[job_id].sequence + 1, published_at)
        seen[job_id] = placement
    return revisions


def examiner_ical(
    lab: Lab,
    examiner: Examiner,
    rows: Sequence[PlacedJob],
    version_id: int,
    revisions: dict[int, Revision] | None = None,
) -> bytes:
    """An iCalendar feed of one examiner's published assignments (references only)."""
    from icalendar import Calendar, Event

    calendar = Calendar()
    calendar.add("prodid", "-//labq//forensic lab schedule//EN")
    calendar.add("version", "2.0")
    calendar.add("calscale", "GREGORIAN")
    calendar.add("x-wr-calname", f"labq {lab.code} - {examiner.external_ref}")
    calendar.add("x-wr-timezone", lab.timezone)
    stamp = utcnow()
    for r in rows:
        attended_end = r.starts_at + timedelta(minutes=r.attended_minutes)
        event = Event()
        event.add("uid", f"labq-{lab.code}-job-{r.job_id}@labq")
        event.add("dtstamp", stamp)
        event.add("dtstart", r.starts_at)
        event.add("dtend", attended_end if r.attended_minutes else r.ends_at)
        revision = (revisions or {}).get(r.job_id)
        if revision is not None:
            event.add("sequence", revision.sequence)
            event.add("last-modified", revision.last_modified)
        event.add("summary", f"{r.stage} {r.case}/{r.device} ({r.priority})")
        details = [f"job {r.job}", f"schedule version {version_id}"]
        if r.workstation:
            details.append(f"workstation {r.workstation}")
        if r.exposure_minutes:
            details.append(f"exposure {r.exposure_minutes} min, severity {r.severity}")
        event.add("description", "\n".join(details))
        event.add("categories", [r.stage, r.priority])
        calendar.add_component(event)
    feed: bytes = calendar.to_ical()
    return feed


def case_job_ids(session: Session, case: Case) -> list[int]:
    return list(
        session.scalars(
            select(Job.id).join(Device, Job.device_id == Device.id).where(Device.case_id == case.id)
        )
    )


# ---- forecasts ------------------------------------------------------------------------------


@dataclass
class JobOutlook:
    job_id: int
    job: str
    stage: str
    status: str
    expected_start: datetime | None = None
    expected_end: datetime | None = None
    source: str = "none"  # schedule | forecast | done | none
    examiner: str | None = None
    workstation: str | None = None
    reason: str | None = None
    detail: str | None = None
    due_at: datetime | None = None
    waits_for: list[str] = field(default_factory=list)


def case_forecast(
    session: Session, lab: Lab, case: Case, version: ScheduleVersion | None
) -> dict[str, Any]:
    """When a case's work will be examined and finished, and why not sooner."""
    level = session.get(PriorityLevel, case.priority_level_id)
    assert level is not None
    jobs = list(
        session.scalars(
            select(Job)
            .join(Device, Job.device_id == Device.id)
            .where(Device.case_id == case.id)
            .order_by(Device.id, Job.id)
        )
    )
    refs = job_refs(session, (j.id for j in jobs))
    ids = [j.id for j in jobs]
    preds: dict[int, list[int]] = defaultdict(list)
    if ids:
        for job_id, pred_id in session.execute(
            select(JobPredecessor.job_id, JobPredecessor.predecessor_id).where(
                JobPredecessor.job_id.in_(ids)
            )
        ):
            preds[job_id].append(pred_id)
    outlooks: dict[int, JobOutlook] = {
        j.id: JobOutlook(j.id, refs[j.id], j.stage, j.status) for j in jobs
    }
    status_of = {j.id: j.status for j in jobs}
    if version is not None and ids:
        for placed in placed_jobs(session, version, case_id=case.id):
            o = outlooks[placed.job_id]
            o.expected_start, o.expected_end, o.source = (
                placed.starts_at,
                placed.ends_at,
                "schedule",
            )
            o.examiner, o.workstation = placed.examiner, placed.workstation
        for entry in session.scalars(
            select(ForecastEntry).where(
                ForecastEntry.schedule_version_id == version.id, ForecastEntry.job_id.in_(ids)
            )
        ):
            o = outlooks[entry.job_id]
            o.expected_start, o.expected_end, o.source = entry.starts_at, entry.ends_at, "forecast"
        for left in session.scalars(
            select(UnscheduledJob).where(
                UnscheduledJob.schedule_version_id == version.id, UnscheduledJob.job_id.in_(ids)
            )
        ):
            o = outlooks[left.job_id]
            o.reason, o.detail = left.reason, left.detail
    for job in jobs:
        o = outlooks[job.id]
        if job.status == "done":
            o.source = "done"
        o.waits_for = [
            refs.get(p, f"#{p}") for p in preds.get(job.id, []) if status_of.get(p) != "done"
        ]
    sla_start = target_start(case.received_at, level.target_start_hours)
    open_jobs = [o for o in outlooks.values() if o.status in ACTIVE_JOB_STATUSES]
    starts = [o.expected_start for o in open_jobs if o.expected_start is not None]
    ends = [o.expected_end for o in open_jobs if o.expected_end is not None]
    unknown = [o for o in open_jobs if o.expected_end is None]
    examined_from = min(starts) if starts else None
    finished_by = max(ends) if ends and not unknown else None
    why: list[str] = []
    for o in open_jobs:
        if o.reason is not None:
            why.append(
                f"{o.job}: {o.reason.replace('_', ' ')}" + (f" ({o.detail})" if o.detail else "")
            )
    if version is None:
        why.append("no schedule has been published for this lab yet")
    elif examined_from is not None and examined_from > sla_start:
        why.append(
            f"first work starts after the {level.code} target start "
            f"({level.target_start_hours} h after receipt): higher-priority or older work "
            "fills the capacity before it"
        )
    if case.status != "open":
        why.append(f"the case is {case.status.replace('_', ' ')}; its work is not planned")
    late = case.legal_deadline_at is not None and (
        finished_by is None or finished_by > case.legal_deadline_at
    )
    return {
        "case": case.external_ref,
        "status": case.status,
        "priority": level.code,
        "received_at": case.received_at,
        "target_start_at": sla_start,
        "legal_deadline_at": case.legal_deadline_at,
        "schedule_version": version.id if version is not None else None,
        "expected_examination_start": examined_from,
        "expected_finish": finished_by,
        "meets_target_start": None if examined_from is None else examined_from <= sla_start,
        "misses_legal_deadline": late if case.legal_deadline_at is not None else None,
        "jobs_open": len(open_jobs),
        "jobs_done": sum(1 for o in outlooks.values() if o.status == "done"),
        "why_not_sooner": why,
        "jobs": list(outlooks.values()),
        "stage_allowance_hours": STAGE_ALLOWANCE_HOURS,
    }


# ---- reports --------------------------------------------------------------------------------


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


def _open_cases(session: Session, lab: Lab) -> list[tuple[Case, PriorityLevel, int]]:
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
    for case, level, open_jobs in _open_cases(session, lab):
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
    for case, level, _ in _open_cases(session, lab):
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


# ---- recommendations ------------------------------------------------------------------------


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
