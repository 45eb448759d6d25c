"""The snapshot's clock: the epoch, lab-local days and weeks, working days, the horizon and the
frozen window (docs/architecture.md §7.3, §7.9).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from models import Examiner, Lab
from scheduler.core.intervals import merge_overlapping
from scheduler.errors import Invalid

Interval = tuple[int, int]

DEFAULT_WORKING_WEEKDAYS = frozenset(range(5))
_MAX_SCAN_DAYS = 400


#: The next working days whose published work examiners already plan around (the stability
#: target's "next three days"): moving one of those assignments counts ``NEAR_CHANGES`` changes
#: against one for later work, so a nightly run re-shuffles next week to win lateness, not the
#: days an examiner has prepared for (docs/architecture.md §4).
NEAR_WORKING_DAYS = 3
NEAR_CHANGES = 10


@dataclass(frozen=True)
class Timeline:
    """The snapshot's clock: minutes from ``epoch`` (UTC) and the lab-local days of the horizon."""

    epoch: datetime
    tz: ZoneInfo
    horizon: int
    day_dates: tuple[date, ...]
    days: tuple[Interval, ...]
    weeks: tuple[Interval, ...]
    frozen_until: int
    working: Mapping[int, time] = field(default_factory=dict)
    #: End of the next ``NEAR_WORKING_DAYS`` working days: the published work examiners plan
    #: around, whose moves count ``NEAR_CHANGES`` changes each.
    near_until: int = 0

    def exact(self, instant: datetime) -> float:
        return (instant.astimezone(UTC) - self.epoch).total_seconds() / 60

    def floor(self, instant: datetime) -> int:
        return math.floor(self.exact(instant))

    def ceil(self, instant: datetime) -> int:
        return math.ceil(self.exact(instant))

    def at(self, minute: int) -> datetime:
        """The UTC instant ``minute`` minutes after the epoch."""
        return self.epoch + timedelta(minutes=minute)

    def local(self, day: date, clock: time) -> datetime:
        """The UTC instant of wall-clock ``clock`` on lab-local ``day``."""
        return datetime.combine(day, clock, tzinfo=self.tz).astimezone(UTC)

    def end_of_working_day(self, after: date, n: int) -> int:
        """Minutes to the end of the ``n``-th working day after ``after``, within the horizon."""
        day = _nth_working_day(after + timedelta(days=1), n, dict(self.working), today=None)
        end = local_midnight(day + timedelta(days=1), self.tz)
        return min(self.horizon, round((end - self.epoch).total_seconds() / 60))

    def day_index(self, minute: int) -> int | None:
        for index, (start, end) in enumerate(self.days):
            if start <= minute < end:
                return index
        return None


def local_midnight(day: date, tz: ZoneInfo) -> datetime:
    return datetime.combine(day, time(0), tzinfo=tz).astimezone(UTC)


def round_up_to_slot(now: datetime, tz: ZoneInfo, slot_minutes: int) -> datetime:
    """``now`` rounded up to the next multiple of the slot, counted from local midnight."""
    offset = now.astimezone(tz).utcoffset() or timedelta(0)
    wall = now.astimezone(UTC).replace(tzinfo=None) + offset
    midnight = wall.replace(hour=0, minute=0, second=0, microsecond=0)
    step = slot_minutes * 60
    seconds = math.ceil((wall - midnight).total_seconds() / step) * step
    return (midnight + timedelta(seconds=seconds) - offset).replace(tzinfo=UTC)


def _working_calendar(examiners: Sequence[Examiner]) -> dict[int, time]:
    """Weekday -> the latest shift end that day, over active examiners (Mon-Fri if no shifts)."""
    latest: dict[int, time] = {}
    for examiner in examiners:
        for shift in examiner.shifts:
            if shift.weekday not in latest or shift.ends > latest[shift.weekday]:
                latest[shift.weekday] = shift.ends
    if not latest:
        latest = {weekday: time(23, 59) for weekday in DEFAULT_WORKING_WEEKDAYS}
    return latest


def _nth_working_day(start: date, n: int, working: dict[int, time], *, today: time | None) -> date:
    """The date of the ``n``-th working day counting from ``start`` (``n`` >= 1).

    ``today``, when given, is the wall-clock time on ``start``: that day counts only if a shift
    still runs after it.
    """
    day, count = start, 0
    for _ in range(_MAX_SCAN_DAYS):
        latest = working.get(day.weekday())
        if latest is not None and (today is None or day != start or today < latest):
            count += 1
            if count >= n:
                return day
        day += timedelta(days=1)
    return day


def build_timeline(lab: Lab, now: datetime, examiners: Sequence[Examiner]) -> Timeline:
    if now.tzinfo is None or now.utcoffset() is None:
        raise Invalid("the planning time must be timezone-aware")
    tz = ZoneInfo(lab.timezone)
    epoch = round_up_to_slot(now, tz, lab.slot_minutes)
    epoch_local = epoch.astimezone(tz)
    today = epoch_local.date()
    working = _working_calendar(examiners)
    last_day = _nth_working_day(today, lab.planning_horizon_days, working, today=epoch_local.time())

    def minutes(instant: datetime) -> int:
        return round((instant - epoch).total_seconds() / 60)

    horizon = minutes(local_midnight(last_day + timedelta(days=1), tz))
    day_dates: list[date] = []
    days: list[Interval] = []
    weeks: list[Interval] = []
    day, day_start, week_start = today, 0, 0
    while day_start < horizon:
        day_end = min(horizon, minutes(local_midnight(day + timedelta(days=1), tz)))
        if day_end > day_start:
            day_dates.append(day)
            days.append((day_start, day_end))
        next_day = day + timedelta(days=1)
        if next_day.weekday() == 0 or day_end >= horizon:
            weeks.append((week_start, day_end))
            week_start = day_end
        day, day_start = next_day, day_end

    timeline = Timeline(
        epoch=epoch,
        tz=tz,
        horizon=horizon,
        day_dates=tuple(day_dates),
        days=tuple(days),
        weeks=tuple(weeks),
        frozen_until=0,
        working=working,
    )
    if lab.frozen_working_days > 0:
        frozen = timeline.end_of_working_day(today, lab.frozen_working_days)
        timeline = replace(timeline, frozen_until=frozen)
    near = timeline.end_of_working_day(today, NEAR_WORKING_DAYS)
    return replace(timeline, near_until=max(near, timeline.frozen_until))


def tidy(intervals: Iterable[Interval], horizon: int) -> tuple[Interval, ...]:
    """Clipped to [0, horizon], empty ones dropped, sorted, overlapping ones merged."""
    return tuple(merge_overlapping(intervals, 0, horizon))


def inside_one(start: int, end: int, windows: Sequence[Interval]) -> bool:
    """``[start, end)`` lies inside one of ``windows``."""
    return any(a <= start and end <= b for a, b in windows)


def deepest(intervals: Sequence[Interval], start: int, end: int) -> int:
    """How many of ``intervals`` overlap at once at the busiest moment of ``[start, end)``."""
    events = sorted(
        (point, step)
        for a, b in intervals
        if a < end and start < b
        for point, step in ((max(a, start), 1), (min(b, end), -1))
    )
    depth = busiest = 0
    for _, step in events:  # ends (-1) sort before starts at the same minute: touching is free
        depth += step
        busiest = max(busiest, depth)
    return busiest
