"""Read models of the web console's backlog and exposure pages (docs/architecture.md §7.8).

Everything here reads. Expected dates come from the published version: its assignments inside
the horizon and its forecast past it (``views.case_expectations``).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from models import Device, Examiner, ExposureLog, Job, Lab, ScheduleVersion
from models.lab import target_start
from scheduler.core.snapshot import SEVERE
from scheduler.planning import views
from scheduler.planning.board import DayExposure

SLA_STATES = ("started", "on_track", "at_risk", "missed")
SLA_WORDS = {
    "started": "started",
    "on_track": "on track",
    "at_risk": "will start late",
    "missed": "target start passed",
}


@dataclass(frozen=True)
class BacklogCase:
    case: str
    priority: str
    rank: int
    received_at: datetime
    age_days: float
    open_jobs: int
    target_start_at: datetime
    expected_start: datetime | None
    expected_finish: datetime | None
    legal_deadline_at: datetime | None
    sla: str  # one of SLA_STATES
    deadline_at_risk: bool

    @property
    def sla_words(self) -> str:
        return SLA_WORDS[self.sla]


@dataclass
class BacklogChart:
    """Open cases per level at the start of each coming week, from the expected finishes."""

    weeks: list[date]
    levels: list[str]
    counts: dict[str, list[int]] = field(default_factory=dict)
    without_date: dict[str, int] = field(default_factory=dict)


def backlog_cases(
    session: Session, lab: Lab, version: ScheduleVersion | None, now: datetime
) -> list[BacklogCase]:
    """Every open case with work left, most urgent level first, oldest first within it."""
    open_cases = views.open_cases(session, lab)
    first, last = views.case_expectations(session, version)
    started = {
        case_id
        for (case_id,) in session.execute(
            select(Device.case_id)
            .join(Job, Job.device_id == Device.id)
            .where(Job.lab_id == lab.id, Job.status.in_(("in_progress", "done")))
            .distinct()
        )
    }
    out = []
    for case, level, open_jobs in open_cases:
        target = target_start(case.received_at, level.target_start_hours)
        expected_start, finish = first.get(case.id), last.get(case.id)
        if case.id in started:
            sla = "started"
        elif now > target:
            sla = "missed"
        elif expected_start is None or expected_start > target:
            sla = "at_risk"
        else:
            sla = "on_track"
        deadline = case.legal_deadline_at
        out.append(
            BacklogCase(
                case=case.external_ref,
                priority=level.code,
                rank=level.rank,
                received_at=case.received_at,
                age_days=(now - case.received_at).total_seconds() / 86400,
                open_jobs=open_jobs,
                target_start_at=target,
                expected_start=expected_start,
                expected_finish=finish,
                legal_deadline_at=deadline,
                sla=sla,
                deadline_at_risk=deadline is not None and (finish is None or finish > deadline),
            )
        )
    return out


def backlog_chart(
    lab: Lab, cases: list[BacklogCase], now: datetime, weeks: int = 16
) -> BacklogChart:
    """How many cases of each level are still open at the start of each of the next ``weeks``
    weeks (lab-local Mondays), by their expected finish; a case without one stays open."""
    tz = ZoneInfo(lab.timezone)
    today = now.astimezone(tz).date()
    monday = today - timedelta(days=today.weekday())
    starts = [today] + [monday + timedelta(weeks=w) for w in range(1, weeks + 1)]
    levels = [level.code for level in sorted(lab.priority_levels, key=lambda lv: lv.rank)]
    chart = BacklogChart(weeks=starts, levels=levels)
    for code in levels:
        mine = [c for c in cases if c.priority == code]
        counts = []
        for day in starts:
            at = datetime.combine(day, datetime.min.time(), tz)
            counts.append(
                sum(1 for c in mine if c.expected_finish is None or c.expected_finish > at)
            )
        chart.counts[code] = counts
        chart.without_date[code] = sum(1 for c in mine if c.expected_finish is None)
    return chart


# ---- exposure -------------------------------------------------------------------------------


@dataclass(frozen=True)
class ExposureDay:
    day: date
    planned: int
    severe: int  # planned severity-3 minutes
    logged: int
    cap: int | None
    severe_cap: int | None

    @property
    def total(self) -> int:
        return self.planned + self.logged

    @property
    def over(self) -> bool:
        over_daily = self.cap is not None and self.total > self.cap
        return over_daily or (self.severe_cap is not None and self.severe > self.severe_cap)

    @property
    def heat(self) -> int:
        """0 nothing, 1 up to half the cap, 2 up to 80 %, 3 up to the cap, 4 over it."""
        if self.over:
            return 4
        if self.total == 0:
            return 0
        if self.cap is None or self.cap == 0:
            return 1
        share = self.total / self.cap
        return 1 if share <= 0.5 else 2 if share <= 0.8 else 3


@dataclass(frozen=True)
class ExposureWeek(DayExposure):
    """A week's planned and logged exposure against the weekly cap."""

    week_of: date


@dataclass
class ExposureRow:
    examiner: str
    name: str
    active: bool
    max_severity: int
    daily_cap: int | None
    severe_daily_cap: int | None
    weekly_cap: int | None
    days: list[ExposureDay]
    weeks: list[ExposureWeek]

    @property
    def breaches(self) -> int:
        return sum(d.over for d in self.days) + sum(w.over for w in self.weeks)

    @property
    def opts_out(self) -> bool:
        return self.max_severity < 3


def exposure_grid(
    session: Session,
    lab: Lab,
    version: ScheduleVersion | None,
    now: datetime,
    *,
    weeks: int = 2,
    examiner_id: int | None = None,
) -> tuple[list[date], list[ExposureRow]]:
    """Per examiner and lab-local day of this and the next weeks: planned exposure (by the day
    its job starts, as the caps count it), planned severity-3 minutes, logged minutes and the
    caps; per week the same against the weekly cap."""
    tz = ZoneInfo(lab.timezone)
    today = now.astimezone(tz).date()
    monday = today - timedelta(days=today.weekday())
    days = [monday + timedelta(days=d) for d in range(7 * weeks)]
    query = select(Examiner).where(Examiner.lab_id == lab.id)
    if examiner_id is not None:
        query = query.where(Examiner.id == examiner_id)
    examiners = list(session.scalars(query.order_by(Examiner.external_ref)))
    planned: dict[tuple[int, date], int] = defaultdict(int)
    severe: dict[tuple[int, date], int] = defaultdict(int)
    if version is not None:
        start = datetime.combine(days[0], datetime.min.time(), tz)
        end = datetime.combine(days[-1] + timedelta(days=1), datetime.min.time(), tz)
        for r in views.placed_jobs(
            session, version, examiner_id=examiner_id, starts_before=end, ends_after=start
        ):
            if r.examiner_id is None or not r.exposure_minutes:
                continue
            day = r.starts_at.astimezone(tz).date()
            planned[(r.examiner_id, day)] += r.exposure_minutes
            if r.severity >= SEVERE:
                severe[(r.examiner_id, day)] += r.exposure_minutes
    logged: dict[tuple[int, date], int] = defaultdict(int)
    ids = [e.id for e in examiners]
    if ids:
        for examiner, day, amount in session.execute(
            select(ExposureLog.examiner_id, ExposureLog.day, ExposureLog.minutes).where(
                ExposureLog.examiner_id.in_(ids),
                ExposureLog.day >= days[0],
                ExposureLog.day <= days[-1],
            )
        ):
            logged[(examiner, day)] += amount
    rows = []
    for e in examiners:
        per_day = [
            ExposureDay(
                d,
                planned[(e.id, d)],
                severe[(e.id, d)],
                logged[(e.id, d)],
                e.daily_cap_minutes,
                e.severe_daily_cap_minutes,
            )
            for d in days
        ]
        per_week = [
            ExposureWeek(
                planned=sum(x.planned for x in per_day[7 * w : 7 * w + 7]),
                logged=sum(x.logged for x in per_day[7 * w : 7 * w + 7]),
                cap=e.weekly_cap_minutes,
                week_of=days[7 * w],
            )
            for w in range(weeks)
        ]
        rows.append(
            ExposureRow(
                examiner=e.external_ref,
                name=e.display_name,
                active=e.active,
                max_severity=e.max_severity,
                daily_cap=e.daily_cap_minutes,
                severe_daily_cap=e.severe_daily_cap_minutes,
                weekly_cap=e.weekly_cap_minutes,
                days=per_day,
                weeks=per_week,
            )
        )
    return days, rows


# ---- the diff of two versions, by examiner --------------------------------------------------


@dataclass
class ExaminerChanges:
    examiner: str
    moved_in: list[dict[str, Any]] = field(default_factory=list)  # moved to or within this lane
    moved_out: list[dict[str, Any]] = field(default_factory=list)  # moved to another examiner
    added: list[dict[str, Any]] = field(default_factory=list)
    removed: list[dict[str, Any]] = field(default_factory=list)

    @property
    def total(self) -> int:
        return len(self.moved_in) + len(self.moved_out) + len(self.added) + len(self.removed)


NO_EXAMINER = "(machine work)"


def diff_by_examiner(session: Session, lab: Lab, from_id: int, to_id: int) -> dict[str, Any]:
    """What moved, was added or removed going from version ``from_id`` to ``to_id``, per
    examiner (a job moved between examiners appears under both)."""
    from scheduler.planning.publish import diff

    old = views.get_version(session, lab, from_id)
    new = views.get_version(session, lab, to_id)
    readable = views.readable_diff(session, lab, diff(old, new))
    lanes: dict[str, ExaminerChanges] = {}

    def lane(place: dict[str, Any] | None) -> ExaminerChanges:
        name = (place or {}).get("examiner") or NO_EXAMINER
        return lanes.setdefault(name, ExaminerChanges(name))

    for item in readable["moved"]:
        lane(item["to"]).moved_in.append(item)
        before = (item["from"] or {}).get("examiner")
        if before != (item["to"] or {}).get("examiner"):
            lane(item["from"]).moved_out.append(item)
    for item in readable["added"]:
        lane(item["to"]).added.append(item)
    for item in readable["removed"]:
        lane(item["from"]).removed.append(item)
    return {
        "from_version": from_id,
        "to_version": to_id,
        "counts": readable["counts"],
        "examiners": sorted(lanes.values(), key=lambda c: (c.examiner == NO_EXAMINER, c.examiner)),
    }
