"""Rule 3.5's caps, defined once: daily, severe daily and weekly exposure minutes per examiner.

docs/architecture.md §3.5 states the rule, §3.7 who uses this module. In short:

- a job with exposure minutes counts against the caps of the lab-local day and the week in which
  it *starts* (`counted_in`); a start outside every listed day (week) counts against no daily
  (weekly) cap;
- per day, logged plus planned minutes stay within ``daily_cap``; planned minutes of severity-3
  jobs (`Job.is_severe`) within ``severe_daily_cap`` (logged minutes carry no severity, so none
  count there); per week, logged plus planned minutes within ``weekly_cap``; a cap of ``None``
  is no cap;
- `caps_allow` says whether a job's minutes fit an examiner's caps at all, before anything is
  counted (an examiner it never fits is not eligible for it);
- `ExposureLedger` keeps the count: minutes taken per cap, examiner and period, logged minutes
  included unless told otherwise, and answers how much ``room`` is left and which cap a job
  would pass (`ExposureLedger.exceeded`).

The verifier, the CP-SAT model (which turns the same counts into linear constraints), dispatch,
the explanations, recommendations, bounds, candidate selection and forecast all read the caps
here; none of them spells out a cap of its own.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Literal

from scheduler.core.plan import Assignment
from scheduler.core.rules.names import (
    EXPOSURE_DAILY_CAP,
    EXPOSURE_SEVERE_DAILY_CAP,
    EXPOSURE_WEEKLY_CAP,
)
from scheduler.core.snapshot import Examiner, ExposurePolicy, Job, Snapshot

Period = Literal["day", "week"]


def _logged_by_day(snapshot: Snapshot, examiner: Examiner) -> Mapping[int, int]:
    return snapshot.logged_day_exposure(examiner)


def _logged_by_week(snapshot: Snapshot, examiner: Examiner) -> Mapping[int, int]:
    return snapshot.logged_week_exposure(examiner)


def _nothing_logged(snapshot: Snapshot, examiner: Examiner) -> Mapping[int, int]:
    return {}


@dataclass(frozen=True)
class Cap:
    """One of the three caps: its rule name, its period, what it counts and its limit."""

    rule: str  #: the verifier's violation name (`names`)
    period: Period  #: the day or the week a job starts in
    words: str  #: how a supervisor reads it ("daily exposure cap")
    severe_only: bool  #: counts only severity-3 jobs (`Job.is_severe`)
    limit_of: Callable[[ExposurePolicy], int | None]
    logged_of: Callable[[Snapshot, Examiner], Mapping[int, int]]

    def limit(self, examiner: Examiner) -> int | None:
        """The examiner's cap in minutes (``None``: no cap)."""
        return self.limit_of(examiner.exposure)

    def counts(self, job: Job) -> bool:
        """Whether the job's minutes count against this cap (wherever it starts)."""
        return job.exposure > 0 and (job.is_severe or not self.severe_only)

    def logged(self, snapshot: Snapshot, examiner: Examiner) -> Mapping[int, int]:
        """Minutes already logged per period index that count against this cap."""
        return self.logged_of(snapshot, examiner)

    def period_of(self, snapshot: Snapshot, start: int) -> int | None:
        """Index of the day (week) a job starting at ``start`` counts in; ``None``: none."""
        return snapshot.day_of(start) if self.period == "day" else snapshot.week_of(start)


DAILY = Cap(
    EXPOSURE_DAILY_CAP, "day", "daily exposure cap", False, lambda p: p.daily_cap, _logged_by_day
)
SEVERE_DAILY = Cap(
    EXPOSURE_SEVERE_DAILY_CAP,
    "day",
    "severe daily exposure cap",
    True,
    lambda p: p.severe_daily_cap,
    _nothing_logged,
)
WEEKLY = Cap(
    EXPOSURE_WEEKLY_CAP,
    "week",
    "weekly exposure cap",
    False,
    lambda p: p.weekly_cap,
    _logged_by_week,
)
#: The caps in the order every user checks them (and the verifier reports them).
CAPS: tuple[Cap, ...] = (DAILY, SEVERE_DAILY, WEEKLY)
BY_RULE: Mapping[str, Cap] = {cap.rule: cap for cap in CAPS}


def counted_in(snapshot: Snapshot, start: int) -> tuple[int | None, int | None]:
    """(day, week) indexes a job starting at ``start`` counts against (``None``: no such one)."""
    return snapshot.day_of(start), snapshot.week_of(start)


def caps_allow(job: Job, examiner: Examiner) -> bool:
    """Whether the job's exposure minutes fit the examiner's caps at all (ignoring use so far)."""
    minutes = job.exposure
    if minutes <= 0:
        return True  # the common case, asked for every pair dispatch tries
    severe = job.is_severe
    for cap in CAPS:
        if cap.severe_only and not severe:
            continue
        limit = cap.limit(examiner)
        if limit is not None and minutes > limit:
            return False
    return True


class ExposureLedger:
    """Exposure minutes counted per cap, examiner and period, and the room the caps leave.

    Periods are indexes into ``snapshot.days`` / ``snapshot.weeks`` unless the caller numbers
    its own (the forecast counts days and weeks past the horizon, with ``logged=False``). With
    ``logged`` (the default) an examiner's logged minutes (`Cap.logged`) are counted on first use.
    """

    __slots__ = ("snapshot", "_logged", "_books")

    def __init__(self, snapshot: Snapshot, *, logged: bool = True) -> None:
        self.snapshot = snapshot
        self._logged = logged
        # per examiner, per cap in `CAPS` order: (cap, its limit, minutes counted per period);
        # dispatch asks for every start it tries, so the limits are read once per examiner
        self._books: dict[str, list[tuple[Cap, int | None, dict[int, int]]]] = {}

    def _book(self, examiner: Examiner) -> list[tuple[Cap, int | None, dict[int, int]]]:
        book = self._books.get(examiner.id)
        if book is None:
            book = [
                (cap, cap.limit(examiner), dict(cap.logged(self.snapshot, examiner)))
                if self._logged
                else (cap, cap.limit(examiner), {})
                for cap in CAPS
            ]
            self._books[examiner.id] = book
        return book

    def used(self, cap: Cap, examiner: Examiner, period: int) -> int:
        """Minutes counted against ``cap`` in ``period``: logged (if counted) plus taken."""
        counted = next(c for k, _, c in self._book(examiner) if k is cap)
        return counted.get(period, 0)

    def room(self, cap: Cap, examiner: Examiner, period: int) -> int | None:
        """Minutes ``cap`` still allows in ``period`` (never below 0); ``None``: no cap."""
        limit = cap.limit(examiner)
        if limit is None:
            return None
        return max(0, limit - self.used(cap, examiner, period))

    def exceeded(
        self, job: Job, examiner: Examiner, day: int | None, week: int | None
    ) -> Cap | None:
        """The first cap (in `CAPS` order) the job would pass counted in ``day`` and ``week``."""
        minutes = job.exposure
        if minutes <= 0:
            return None
        severe = job.is_severe
        for cap, limit, counted in self._book(examiner):
            if limit is None or (cap.severe_only and not severe):
                continue
            period = day if cap.period == "day" else week
            if period is not None and counted.get(period, 0) + minutes > limit:
                return cap
        return None

    def exceeded_at(self, job: Job, examiner: Examiner, start: int) -> Cap | None:
        """`exceeded` for a job starting at ``start`` (its day and week by `counted_in`)."""
        return self.exceeded(job, examiner, *counted_in(self.snapshot, start))

    def take(self, job: Job, examiner: Examiner, day: int | None, week: int | None) -> None:
        """Count the job's minutes in ``day`` and ``week`` against every cap they count for."""
        for cap, _, counted in self._book(examiner):
            period = day if cap.period == "day" else week
            if period is not None and cap.counts(job):
                counted[period] = counted.get(period, 0) + job.exposure

    def give_back(self, job: Job, examiner: Examiner, start: int) -> None:
        """Undo `take_at` of the same job, examiner and start."""
        day, week = counted_in(self.snapshot, start)
        for cap, _, counted in self._book(examiner):
            period = day if cap.period == "day" else week
            if period is not None and cap.counts(job):
                counted[period] -= job.exposure

    def copy(self) -> ExposureLedger:
        """An independent ledger with the same minutes counted."""
        other = ExposureLedger(self.snapshot, logged=self._logged)
        other._books = {
            e: [(cap, limit, dict(counted)) for cap, limit, counted in book]
            for e, book in self._books.items()
        }
        return other

    def take_at(self, job: Job, examiner: Examiner, start: int) -> None:
        """`take` for a job starting at ``start``."""
        self.take(job, examiner, *counted_in(self.snapshot, start))

    def take_all(self, assignments: Iterable[Assignment | None]) -> ExposureLedger:
        """Count every assignment of a known job to a known examiner (``None``: left out)."""
        jobs = self.snapshot.jobs_by_id
        examiners = self.snapshot.examiners_by_id
        for a in assignments:
            if a is None or a.examiner is None:
                continue
            job = jobs.get(a.job)
            examiner = examiners.get(a.examiner)
            if job is not None and examiner is not None and job.exposure > 0:
                self.take_at(job, examiner, a.start)
        return self
