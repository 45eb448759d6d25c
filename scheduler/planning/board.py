"""The console's board: a schedule version over working hours only (docs/architecture.md §7.8).

Days are the lab-local days on which some active examiner has a shift; each shows the lab's
working window that day (earliest shift start to latest shift end), and nights and closed days
are folded out (a machine part running overnight is drawn up to the window's edge and marked as
running on). Bars carry the job, case reference, stage and priority, whether the job is pinned
or in progress and whether it lies in the frozen window; each examiner lane carries the day's
planned and logged exposure against the daily cap. Reads only.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from models import Examiner, ExposureLog, Job, Lab, ScheduleVersion, Shift, Workstation
from models.base import utcnow
from scheduler.planning import views
from scheduler.planning.views.placed import PlacedJob

MAX_DAYS = 10
LOOKAHEAD_DAYS = 28  # how far to look for the working days shown


@dataclass(frozen=True)
class BoardDay:
    day: date
    start: datetime  # the working window, aware
    end: datetime
    folded_before: tuple[date, ...] = ()  # closed days folded out just before this one
    frozen_share: float = 0.0  # the share of the window before the frozen window's end
    now_share: float | None = None  # where "now" falls in the window, if it does

    @property
    def minutes(self) -> float:
        return (self.end - self.start).total_seconds() / 60


@dataclass(frozen=True)
class BoardBar:
    job_id: int
    job: str
    case: str
    stage: str
    priority: str
    starts_at: datetime
    ends_at: datetime
    left: float  # percent of the day's window
    width: float
    machine: bool
    pinned: bool
    in_progress: bool
    frozen: bool
    runs_on: bool  # continues past the window (overnight or into the next day)
    continued: bool  # began before the window
    exposure_minutes: int
    severity: int
    examiner: str | None
    workstation: str | None


@dataclass(frozen=True)
class DayExposure:
    """Planned and logged exposure against a cap (a day's here; a week's in `console`)."""

    planned: int
    logged: int
    cap: int | None

    @property
    def over(self) -> bool:
        return self.cap is not None and self.planned + self.logged > self.cap


@dataclass
class BoardLane:
    kind: str  # examiner | workstation
    ref: str
    name: str
    cells: list[list[BoardBar]] = field(default_factory=list)
    exposure: list[DayExposure] = field(default_factory=list)
    planned_minutes: list[int] = field(default_factory=list)


@dataclass
class Board:
    lab: str
    timezone: str
    version_id: int
    published: bool
    frozen_until: datetime | None
    days: list[BoardDay]
    examiners: list[BoardLane]
    workstations: list[BoardLane]
    bars: int
    case_prefix: str = ""  # what every case reference on the board starts with (not repeated)

    def short(self, case: str) -> str:
        return case[len(self.case_prefix) :] if self.case_prefix else case


def working_days(
    session: Session, lab: Lab, start_day: date, count: int, examiner_id: int | None = None
) -> list[BoardDay]:
    """The next ``count`` lab-local days from ``start_day`` with a shift, each with its window."""
    tz = ZoneInfo(lab.timezone)
    query = (
        select(Shift.weekday, Shift.starts, Shift.ends)
        .join(Examiner, Shift.examiner_id == Examiner.id)
        .where(Examiner.lab_id == lab.id, Examiner.active.is_(True))
    )
    if examiner_id is not None:
        query = query.where(Examiner.id == examiner_id)
    by_weekday: dict[int, tuple[time, time]] = {}
    for weekday, starts, ends in session.execute(query):
        if ends <= starts:
            ends = time(23, 59)
        first, last = by_weekday.get(weekday, (starts, ends))
        by_weekday[weekday] = (min(first, starts), max(last, ends))
    days: list[BoardDay] = []
    folded: list[date] = []
    for offset in range(LOOKAHEAD_DAYS):
        if len(days) >= count:
            break
        day = start_day + timedelta(days=offset)
        window = by_weekday.get(day.weekday())
        if window is None:
            folded.append(day)
            continue
        start = datetime.combine(day, window[0], tz)
        end = datetime.combine(day, window[1], tz)
        days.append(BoardDay(day, start, end, tuple(folded)))
        folded = []
    return days


def _frozen_share(day: BoardDay, frozen_until: datetime | None) -> float:
    if frozen_until is None or frozen_until <= day.start:
        return 0.0
    if frozen_until >= day.end:
        return 100.0
    return 100 * (frozen_until - day.start).total_seconds() / 60 / day.minutes


def _pieces(
    row: PlacedJob,
    begin: datetime,
    end: datetime,
    days: list[BoardDay],
    machine: bool,
    flags: tuple[bool, bool],
    frozen_until: datetime | None,
) -> list[tuple[int, BoardBar]]:
    """The bar's pieces, one per day window it touches; a part wholly in a fold is drawn as a
    short mark at the end of the window before it."""
    out: list[tuple[int, BoardBar]] = []
    for index, day in enumerate(days):
        lo, hi = max(begin, day.start), min(end, day.end)
        overnight = False
        if lo >= hi:
            after = days[index + 1].start if index + 1 < len(days) else day.end + timedelta(days=1)
            if not (begin >= day.end and end <= after and begin < after):
                continue
            lo, hi, overnight = day.end - timedelta(minutes=day.minutes * 0.02), day.end, True
        left = 100 * (lo - day.start).total_seconds() / 60 / day.minutes
        width = max(0.6, 100 * (hi - lo).total_seconds() / 60 / day.minutes)
        out.append(
            (
                index,
                BoardBar(
                    job_id=row.job_id,
                    job=row.job,
                    case=row.case,
                    stage=row.stage,
                    priority=row.priority,
                    starts_at=begin,
                    ends_at=end,
                    left=round(left, 3),
                    width=round(min(width, 100 - left), 3),
                    machine=machine,
                    pinned=flags[0],
                    in_progress=flags[1],
                    frozen=frozen_until is not None and begin < frozen_until,
                    runs_on=overnight or end > day.end,
                    continued=begin < day.start,
                    exposure_minutes=0 if machine else row.exposure_minutes,
                    severity=row.severity,
                    examiner=row.examiner,
                    workstation=row.workstation,
                ),
            )
        )
    return out


def _common_prefix(refs: list[str]) -> str:
    """The part up to a separator that every reference shares (``CR-2026-``), so a bar can
    show what tells cases apart; empty if they share none."""
    if len(set(refs)) < 2:
        return ""
    first, last = min(refs), max(refs)
    shared = 0
    while shared < min(len(first), len(last)) and first[shared] == last[shared]:
        shared += 1
    cut = max(first.rfind(sep, 0, shared) for sep in "-/_. ") + 1
    return first[:cut]


def board(
    session: Session,
    lab: Lab,
    version: ScheduleVersion,
    start_day: date,
    days_wanted: int = 5,
    *,
    examiner_id: int | None = None,
) -> Board:
    """The board of ``version`` from ``start_day`` for ``days_wanted`` working days; with
    ``examiner_id``, that examiner's lane only (and no workstation lanes)."""
    days_wanted = max(1, min(MAX_DAYS, days_wanted))
    frozen_text = (version.kpis or {}).get("frozen_until")
    frozen_until = datetime.fromisoformat(frozen_text) if frozen_text else None
    days = working_days(session, lab, start_day, days_wanted, examiner_id)
    now = utcnow()
    days = [
        BoardDay(
            d.day,
            d.start,
            d.end,
            d.folded_before,
            _frozen_share(d, frozen_until),
            100 * (now - d.start).total_seconds() / 60 / d.minutes
            if d.start <= now < d.end
            else None,
        )
        for d in days
    ]
    examiners_q = select(Examiner).where(Examiner.lab_id == lab.id, Examiner.active.is_(True))
    if examiner_id is not None:
        examiners_q = select(Examiner).where(Examiner.id == examiner_id)
    examiners = list(session.scalars(examiners_q.order_by(Examiner.external_ref)))
    workstations = (
        []
        if examiner_id is not None
        else list(
            session.scalars(
                select(Workstation)
                .where(Workstation.lab_id == lab.id, Workstation.active.is_(True))
                .order_by(Workstation.external_ref)
            )
        )
    )
    rows: list[PlacedJob] = []
    if days:
        rows = views.placed_jobs(
            session,
            version,
            examiner_id=examiner_id,
            starts_before=days[-1].end,
            ends_after=days[0].start,
        )
    flags: dict[int, tuple[bool, bool]] = {}
    ids = [r.job_id for r in rows]
    for chunk in (ids[i : i + 5000] for i in range(0, len(ids), 5000)):
        for job_id, pin_start, status in session.execute(
            select(Job.id, Job.pin_start_at, Job.status).where(Job.id.in_(chunk))
        ):
            flags[job_id] = (pin_start is not None, status == "in_progress")
    tz = ZoneInfo(lab.timezone)
    index_of = {d.day: i for i, d in enumerate(days)}
    lanes_e = {
        e.id: BoardLane("examiner", e.external_ref, e.display_name, [[] for _ in days])
        for e in examiners
    }
    lanes_w = {
        w.id: BoardLane("workstation", w.external_ref, w.name, [[] for _ in days])
        for w in workstations
    }
    planned_exposure: dict[tuple[int, int], int] = defaultdict(int)
    planned_attended: dict[tuple[int, int], int] = defaultdict(int)
    bars = 0
    for r in rows:
        flag = flags.get(r.job_id, (False, False))
        if r.examiner_id in lanes_e and r.attended_minutes:
            end = r.starts_at + timedelta(minutes=r.attended_minutes)
            for index, piece in _pieces(r, r.starts_at, end, days, False, flag, frozen_until):
                lanes_e[r.examiner_id].cells[index].append(piece)
                bars += 1
            day_index = index_of.get(r.starts_at.astimezone(tz).date())
            if day_index is not None:
                planned_exposure[(r.examiner_id, day_index)] += r.exposure_minutes
                planned_attended[(r.examiner_id, day_index)] += r.attended_minutes
        if r.workstation_id in lanes_w:
            minutes = r.machine_minutes or int((r.ends_at - r.starts_at).total_seconds() // 60)
            end = r.starts_at + timedelta(minutes=minutes)
            for index, piece in _pieces(r, r.starts_at, end, days, True, flag, frozen_until):
                lanes_w[r.workstation_id].cells[index].append(piece)
                bars += 1
    logged: dict[tuple[int, date], int] = defaultdict(int)
    if days and examiners:
        for examiner, day, amount in session.execute(
            select(ExposureLog.examiner_id, ExposureLog.day, ExposureLog.minutes).where(
                ExposureLog.examiner_id.in_([e.id for e in examiners]),
                ExposureLog.day >= days[0].day,
                ExposureLog.day <= days[-1].day,
            )
        ):
            logged[(examiner, day)] += amount
    for e in examiners:
        lane = lanes_e[e.id]
        lane.exposure = [
            DayExposure(planned_exposure[(e.id, i)], logged[(e.id, d.day)], e.daily_cap_minutes)
            for i, d in enumerate(days)
        ]
        lane.planned_minutes = [planned_attended[(e.id, i)] for i in range(len(days))]
    return Board(
        case_prefix=_common_prefix([r.case for r in rows]),
        lab=lab.code,
        timezone=lab.timezone,
        version_id=version.id,
        published=version.is_current,
        frozen_until=frozen_until,
        days=days,
        examiners=list(lanes_e.values()),
        workstations=list(lanes_w.values()),
        bars=bars,
    )
