"""What a simulation measures, recorded as it goes (docs/architecture.md §10.1).

- SLA attainment per priority level: of the cases whose target fell due during the simulation
  (arrived during it, or escalated during it), the share whose first job started within the
  target: ``received_at`` (or the last escalation) plus the level's ``target_start_hours``;
- the age of the cases still open at the end, and the cases finished, per level;
- exposure: every published version is checked against each examiner's caps (logged plus planned
  minutes per lab-local day and ISO week, planned severity-3 minutes per day) and so is what was
  logged; the weekly planned exposure of examiners who may review, at each nightly run;
- stability: the share of the published assignments of the next three working days (not yet
  started) whose examiner, workstation or start each nightly run changed or dropped;
- forecast error: a case's forecast start (its earliest assignment or forecast) at its first
  publication against its actual first start, in working days;
- invariants each day: every open job is scheduled or left out with a reason.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Any

from scheduler.simulate.events import LEVELS, Event, Scenario

if TYPE_CHECKING:
    from scheduler.simulate.driver import Published, SimConfig, SimJob

Caps = tuple[int | None, int | None, int | None, bool]  # daily, severe daily, weekly, may review


def percentile(values: list[float], q: float) -> float | None:
    """The nearest-rank ``q``-quantile, or None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, -(-int(q * 100) * len(ordered) // 100))
    return ordered[min(rank, len(ordered)) - 1]


def working_days_between(a: datetime, b: datetime) -> int:
    """Signed count of Monday-to-Friday days after ``a``'s date up to ``b``'s date."""
    first, last, sign = (a.date(), b.date(), 1) if a <= b else (b.date(), a.date(), -1)
    count, day = 0, first
    while day < last:
        day += timedelta(days=1)
        count += day.weekday() < 5
    return sign * count


def _week(day: date) -> str:
    year, week, _ = day.isocalendar()
    return f"{year}-W{week:02d}"


def _round(value: float | None, digits: int = 2) -> float | None:
    return None if value is None else round(value, digits)


class Recorder:
    def __init__(self, config: SimConfig, scenario: Scenario) -> None:
        self.config = config
        self.scenario = scenario
        self.caps: dict[str, Caps] = {}
        self.targets: dict[str, int] = {}
        self.case_jobs: dict[str, set[int]] = defaultdict(set)
        self.arrived: dict[str, datetime] = {}
        self.escalated: dict[str, datetime] = {}
        self.first_start: dict[str, datetime] = {}
        self.finished: dict[str, datetime] = {}
        self.forecast: dict[str, tuple[datetime, datetime]] = {}  # case -> (published, start)
        self.breaches: set[tuple[str, str, str]] = set()  # (rule, examiner, period)
        self.weekly: list[int] = []
        self.churn: list[dict[str, Any]] = []
        self.solve: dict[str, list[float]] = defaultdict(list)
        self.days_checked = 0
        self.missing: list[str] = []
        self.no_reason: list[str] = []
        self.end: datetime | None = None
        self.cases: list[dict[str, Any]] = []
        self._jobs_done: set[int] = set()

    # -- as it happens ---------------------------------------------------------------------------

    def job_added(self, case: str, job_id: int) -> None:
        self.case_jobs[case].add(job_id)

    def arrival(self, event: Event) -> None:
        self.arrived[event.case] = event.at

    def escalation(self, event: Event) -> None:
        self.escalated[event.case] = event.at

    def started(self, job: SimJob, now: datetime) -> None:
        self.first_start.setdefault(job.case, now)

    def done(self, job: SimJob, now: datetime) -> None:
        self._jobs_done.add(job.id)
        if self.case_jobs[job.case] <= self._jobs_done:
            self.finished[job.case] = now

    def publication(
        self,
        now: datetime,
        version: Published,
        before: Published | None,
        jobs: dict[int, SimJob],
        logged: dict[tuple[str, str], int],
        nightly: bool,
    ) -> None:
        if version.solve_seconds is not None:
            self.solve[version.mode or "unknown"].append(version.solve_seconds)
        starts: dict[str, datetime] = {}
        for job_id, place in version.assignments.items():
            case = jobs[job_id].case if job_id in jobs else None
            if case is not None and (case not in starts or place.start < starts[case]):
                starts[case] = place.start
        for job_id, (_, _, forecast) in version.unscheduled.items():
            case = jobs[job_id].case if job_id in jobs else None
            if case is not None and forecast is not None:
                if case not in starts or forecast < starts[case]:
                    starts[case] = forecast
        for case in self.arrived:
            if case not in self.forecast and case in starts and case not in self.first_start:
                self.forecast[case] = (now, starts[case])
        self._exposure(now, version, jobs, logged, nightly)
        if nightly and before is not None:
            self._churn(now, version, before, jobs)

    def _exposure(
        self,
        now: datetime,
        version: Published,
        jobs: dict[int, SimJob],
        logged: dict[tuple[str, str], int],
        nightly: bool,
    ) -> None:
        planned: dict[tuple[str, str], int] = defaultdict(int)
        severe: dict[tuple[str, str], int] = defaultdict(int)
        for job_id, place in version.assignments.items():
            job = jobs.get(job_id)
            if job is None or not job.exposure or place.examiner is None:
                continue
            day = place.start.date().isoformat()
            planned[(place.examiner, day)] += job.exposure
            if job.severity == 3:
                severe[(place.examiner, day)] += job.exposure
        today = now.date().isoformat()
        weekly: dict[tuple[str, str], int] = defaultdict(int)
        for (examiner, day), minutes in list(planned.items()) + list(logged.items()):
            weekly[(examiner, _week(date.fromisoformat(day)))] += minutes
        for (examiner, day), minutes in planned.items():
            daily, severe_cap, _, _ = self.caps.get(examiner, (None, None, None, False))
            if (
                day >= today
                and daily is not None
                and minutes + logged.get((examiner, day), 0) > daily
            ):
                self.breaches.add(("daily", examiner, day))
            cap = severe_cap
            if cap is not None and severe.get((examiner, day), 0) > cap:
                self.breaches.add(("severe_daily", examiner, day))
        for (examiner, week), minutes in weekly.items():
            cap = self.caps.get(examiner, (None, None, None, False))[2]
            if cap is not None and minutes > cap:
                self.breaches.add(("weekly", examiner, week))
        if nightly:
            this_week = _week(now.date())
            for examiner, (_, _, cap, reviews) in sorted(self.caps.items()):
                if reviews and cap:
                    self.weekly.append(weekly.get((examiner, this_week), 0))

    def _churn(
        self, now: datetime, after: Published, before: Published, jobs: dict[int, SimJob]
    ) -> None:
        day, seen = now.date(), 0
        while True:
            if day.weekday() < 5:
                seen += 1
                if seen == 3:
                    break
            day += timedelta(days=1)
        until = datetime(day.year, day.month, day.day, tzinfo=now.tzinfo) + timedelta(days=1)
        compared = changed = 0
        kinds: dict[str, int] = dict.fromkeys(("removed", "resource", "day", "time"), 0)
        for job_id, place in before.assignments.items():
            job = jobs.get(job_id)
            if not (now <= place.start < until) or job is None or job.status != "pending":
                continue
            compared += 1
            new = after.assignments.get(job_id)
            if new is None:
                kinds["removed"] += 1
            elif (new.examiner, new.workstation) != (place.examiner, place.workstation):
                kinds["resource"] += 1
            elif new.start.date() != place.start.date():
                kinds["day"] += 1
            elif new.start != place.start:
                kinds["time"] += 1
            else:
                continue
            changed += 1
        self.churn.append(
            {
                "night": now.date().isoformat(),
                "compared": compared,
                "changed": changed,
                "percent": _round(100 * changed / compared if compared else 0.0),
                # what changed: left out, another examiner or workstation, another day, or only
                # the time on the same day and resources
                "by_kind": kinds,
            }
        )

    def check_open(self, now: datetime, version: Published | None, jobs: dict[int, SimJob]) -> None:
        """Every open job is in the published schedule or left out with a reason."""
        self.days_checked += 1
        for job in jobs.values():
            if job.status == "done":
                continue
            if version is None or (
                job.id not in version.assignments and job.id not in version.unscheduled
            ):
                self.missing.append(f"{now.date()}: {job.path}")
            elif job.id in version.unscheduled and not all(version.unscheduled[job.id][:2]):
                self.no_reason.append(f"{now.date()}: {job.path}")

    def finish(self, end: datetime, jobs: dict[int, SimJob], cases: list[dict[str, Any]]) -> None:
        self.end = end
        self.cases = cases
        self._actual_exposure(jobs)

    def _actual_exposure(self, jobs: dict[int, SimJob]) -> None:
        daily: dict[tuple[str, str], int] = defaultdict(int)
        weekly: dict[tuple[str, str], int] = defaultdict(int)
        for job in jobs.values():
            if job.status == "done" and job.exposure and job.examiner and job.started:
                daily[(job.examiner, job.started.date().isoformat())] += job.exposure
                weekly[(job.examiner, _week(job.started.date()))] += job.exposure
        for (examiner, day), minutes in daily.items():
            cap = self.caps.get(examiner, (None, None, None, False))[0]
            if cap is not None and minutes > cap:
                self.breaches.add(("logged_daily", examiner, day))
        for (examiner, week), minutes in weekly.items():
            cap = self.caps.get(examiner, (None, None, None, False))[2]
            if cap is not None and minutes > cap:
                self.breaches.add(("logged_weekly", examiner, week))

    # -- the figures -----------------------------------------------------------------------------

    def solve_seconds(self) -> dict[str, dict[str, float | None]]:
        return {
            mode: {
                "count": len(v),
                "median": _round(statistics.median(v)),
                "p90": _round(percentile(v, 0.9)),
                "max": _round(max(v)),
            }
            for mode, v in sorted(self.solve.items())
        }

    def result(self) -> dict[str, Any]:
        assert self.end is not None
        end = self.end
        level_of = {c["external_ref"]: c["priority"] for c in self.cases}
        received = {c["external_ref"]: datetime.fromisoformat(c["received_at"]) for c in self.cases}
        sla: dict[str, dict[str, Any]] = {}
        ages: dict[str, dict[str, Any]] = {}
        finished: dict[str, int] = {}
        for level in LEVELS:
            decided = within = undecided = 0
            open_ages: list[float] = []
            for case, lv in sorted(level_of.items()):
                if lv != level:
                    continue
                if case in self.arrived or case in self.escalated:
                    base = max(received[case], self.escalated.get(case, received[case]))
                    target = base + timedelta(hours=self.targets.get(level, 0))
                    first = self.first_start.get(case)
                    if first is not None and first <= target:
                        decided += 1
                        within += 1
                    elif first is not None or target <= end:
                        decided += 1
                    else:
                        undecided += 1
                if case not in self.finished:
                    open_ages.append((end - received[case]).total_seconds() / 86400)
            sla[level] = {
                "cases": decided,
                "within_target": within,
                "attainment_percent": _round(100 * within / decided) if decided else None,
                "not_yet_due": undecided,
            }
            ages[level] = {
                "open": len(open_ages),
                "median_days": _round(statistics.median(open_ages), 1) if open_ages else None,
                "p90_days": _round(percentile(open_ages, 0.9), 1),
            }
            finished[level] = sum(1 for c in self.finished if level_of.get(c) == level)
        errors_30: list[float] = []
        errors_all: list[float] = []
        for case, (published, forecast) in sorted(self.forecast.items()):
            actual = self.first_start.get(case)
            if actual is None:
                continue
            error = abs(working_days_between(forecast, actual))
            errors_all.append(error)
            if actual - published <= timedelta(days=30):
                errors_30.append(error)
        nights = [c["percent"] for c in self.churn if c["compared"]]
        breaches = sorted(self.breaches)
        return {
            "config": {
                "size": self.config.size,
                "days": self.config.days,
                "seed": self.config.seed,
                "policy": self.config.policy,
                "workers": self.config.workers,
                "time_limit": self.config.time_limit,
                "arrivals": len(self.arrived),
                "backlog_cases": len({j.case for j in self.scenario.backlog.jobs}),
                "events": len(self.scenario.events),
            },
            "sla": sla,
            "open_age": ages,
            "finished": finished,
            "jobs_done": len(self._jobs_done),
            "exposure": {
                "breaches": len(breaches),
                "first_breaches": [list(b) for b in breaches[:10]],
                "weekly_planned_max": max(self.weekly, default=None),
                "weekly_planned_mean": _round(statistics.mean(self.weekly), 1)
                if self.weekly
                else None,
            },
            "stability": {
                "nights": len(nights),
                "mean_percent": _round(statistics.mean(nights)) if nights else None,
                "max_percent": max(nights, default=None),
                # every night's changes summed by kind (removed, resource, day, time)
                "by_kind": {
                    kind: sum(c["by_kind"][kind] for c in self.churn)
                    for kind in ("removed", "resource", "day", "time")
                },
                "per_night": self.churn,
            },
            "forecast_error": {
                "cases": len(errors_30),
                "median_working_days": _round(statistics.median(errors_30)) if errors_30 else None,
                "p90_working_days": _round(percentile(errors_30, 0.9)),
                "all_started": len(errors_all),
                "all_median_working_days": _round(statistics.median(errors_all))
                if errors_all
                else None,
            },
            "invariants": {
                "days_checked": self.days_checked,
                "open_jobs_missing": len(self.missing),
                "left_out_without_reason": len(self.no_reason),
                "first": (self.missing + self.no_reason)[:10],
            },
        }
