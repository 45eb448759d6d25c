"""What an operator alerts on, read from the database at scrape time.

Solve runs are executed by any number of worker processes on any number of hosts, so counters
kept in one process would see only its own share: every figure here is read, in one short
read-only session, from the rows all processes share. Histograms are aggregated in SQL (one row
per family), so a scrape costs the same with ten runs or a hundred thousand.

Examiners appear by their lab's reference only (``E7``), never by name. A scrape that cannot read
the database still answers, with ``labq_state_up 0`` (and the HTTP families of the process).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime
from typing import Any

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector
from sqlalchemy import ColumnElement, Engine, Float, case, cast, func, select
from sqlalchemy.orm import Session

from models import Case, Lab, ScheduleVersion, SolveRun
from models.base import utcnow
from models.lab import PriorityLevel
from scheduler.db import session_scope
from scheduler.planning import views

logger = logging.getLogger(__name__)

FINISHED = ("succeeded", "failed", "cancelled")
DURATION_BUCKETS = (1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0)
GAP_BUCKETS = (0.0, 0.001, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0)
REPAIR_BUCKETS = (5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0)


def seconds_between(session: Session, start: Any, end: Any) -> ColumnElement[float]:
    """``end - start`` in seconds, in the dialect's own date arithmetic."""
    if session.get_bind().dialect.name == "postgresql":
        return cast(func.extract("epoch", end - start), Float)
    return (func.julianday(end) - func.julianday(start)) * 86400.0


class StateCollector(Collector):
    """The queue, the runs, publications, SLA breaches, exposure and heartbeats of every lab."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def describe(self) -> Iterable[Metric]:
        return []  # read at scrape time only: registering must not touch the database

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily("labq_state_up", "1 if this scrape could read labq's database.")
        try:
            with session_scope(self.engine, read_only=True) as session:
                families = list(self._families(session, utcnow()))
        except Exception:
            logger.exception("reading labq's state for /metrics failed")
            up.add_metric([], 0.0)
            yield up
            return
        up.add_metric([], 1.0)
        yield up
        yield from families

    def _families(self, session: Session, now: datetime) -> Iterator[Metric]:
        yield from self._runs(session, now)
        yield from self._publications(session)
        yield from self._cases(session, now)
        yield from self._exposure(session)

    # ---- solve runs -------------------------------------------------------------------------

    def _runs(self, session: Session, now: datetime) -> Iterator[Metric]:
        by_status = dict(
            session.execute(select(SolveRun.status, func.count()).group_by(SolveRun.status)).all()
        )
        queued = GaugeMetricFamily("labq_solve_runs_queued", "Solve runs waiting for a worker.")
        queued.add_metric([], float(by_status.get("queued", 0)))
        running = GaugeMetricFamily("labq_solve_runs_running", "Solve runs a worker holds now.")
        running.add_metric([], float(by_status.get("running", 0)))
        finished = CounterMetricFamily(
            "labq_solve_runs_finished", "Solve runs that ended, by how.", labels=["status"]
        )
        for status in FINISHED:
            finished.add_metric([status], float(by_status.get(status, 0)))
        yield from (queued, running, finished)

        oldest = session.scalar(
            select(func.min(SolveRun.created_at)).where(SolveRun.status == "queued")
        )
        age = GaugeMetricFamily(
            "labq_solve_queue_oldest_age_seconds",
            "How long the oldest queued solve run has waited (0: the queue is empty).",
        )
        age.add_metric([], max(0.0, (now - oldest).total_seconds()) if oldest else 0.0)
        yield age

        duration = HistogramMetricFamily(
            "labq_solve_run_duration_seconds",
            "From its last claim to its end, per finished solve run, by status.",
            labels=["status"],
        )
        elapsed = seconds_between(session, SolveRun.started_at, SolveRun.finished_at)
        for status in FINISHED:
            source = select(elapsed.label("value")).where(
                SolveRun.status == status,
                SolveRun.started_at.is_not(None),
                SolveRun.finished_at.is_not(None),
            )
            _histogram(session, duration, [status], source, DURATION_BUCKETS)
        yield duration

        gap = HistogramMetricFamily(
            "labq_solve_run_gap_ratio",
            "(objective - bound) / objective of each succeeded run with a bound (0: proven "
            "optimal).",
        )
        ratio = case(
            (
                SolveRun.objective > 0,
                cast(SolveRun.objective - SolveRun.bound, Float) / cast(SolveRun.objective, Float),
            ),
            else_=0.0,
        )
        inner = select(ratio.label("value")).where(
            SolveRun.status == "succeeded",
            SolveRun.objective.is_not(None),
            SolveRun.bound.is_not(None),
        )
        _histogram(session, gap, [], inner, GAP_BUCKETS)
        yield gap

        beats = GaugeMetricFamily(
            "labq_worker_heartbeat_age_seconds",
            "Seconds since the worker holding a running solve run last beat; past "
            "LABQ_WORKER_STALE_AFTER_SECONDS the run is re-queued.",
            labels=["lab", "worker"],
        )
        rows = session.execute(
            select(Lab.code, SolveRun.worker_id, SolveRun.heartbeat_at)
            .join(Lab, Lab.id == SolveRun.lab_id)
            .where(SolveRun.status == "running")
            .order_by(Lab.code)
        ).all()
        for lab_code, worker, beat in rows:
            seconds = max(0.0, (now - beat).total_seconds()) if beat else 0.0
            beats.add_metric([lab_code, worker or ""], seconds)
        yield beats

    # ---- publications -----------------------------------------------------------------------

    def _publications(self, session: Session) -> Iterator[Metric]:
        published = CounterMetricFamily(
            "labq_schedule_publications", "Schedule versions published, by lab.", labels=["lab"]
        )
        last = GaugeMetricFamily(
            "labq_schedule_last_published_timestamp_seconds",
            "When each lab's schedule was last published (Unix time).",
            labels=["lab"],
        )
        rows = session.execute(
            select(Lab.code, func.count(ScheduleVersion.id), func.max(ScheduleVersion.published_at))
            .join(ScheduleVersion, ScheduleVersion.lab_id == Lab.id)
            .where(ScheduleVersion.published_at.is_not(None))
            .group_by(Lab.code)
            .order_by(Lab.code)
        ).all()
        for lab_code, count, latest in rows:
            published.add_metric([lab_code], float(count))
            if latest is not None:
                last.add_metric([lab_code], _unix(latest))
        yield published
        yield last

        latency = HistogramMetricFamily(
            "labq_repair_publish_latency_seconds",
            "From the trigger that queued a repair run (an escalation, an absence) to the "
            "publication of its schedule.",
        )
        waited = seconds_between(session, SolveRun.created_at, ScheduleVersion.published_at)
        source = (
            select(waited.label("value"))
            .select_from(SolveRun)
            .join(ScheduleVersion, ScheduleVersion.solve_run_id == SolveRun.id)
            .where(SolveRun.mode == "repair", ScheduleVersion.published_at.is_not(None))
        )
        _histogram(session, latency, [], source, REPAIR_BUCKETS)
        yield latency

    # ---- cases ------------------------------------------------------------------------------

    def _cases(self, session: Session, now: datetime) -> Iterator[Metric]:
        open_cases = GaugeMetricFamily(
            "labq_open_cases", "Open cases, by lab and priority.", labels=["lab", "priority"]
        )
        rows = session.execute(
            select(Lab.code, PriorityLevel.code, func.count(Case.id))
            .join(Case, Case.lab_id == Lab.id)
            .join(PriorityLevel, PriorityLevel.id == Case.priority_level_id)
            .where(Case.status == "open")
            .group_by(Lab.code, PriorityLevel.code)
            .order_by(Lab.code, PriorityLevel.code)
        ).all()
        for lab_code, priority, count in rows:
            open_cases.add_metric([lab_code, priority], float(count))
        yield open_cases

        breaches = GaugeMetricFamily(
            "labq_sla_breaches",
            "Open cases that miss (or will miss, under the published schedule) their target "
            "start or legal deadline, by lab and priority.",
            labels=["lab", "priority"],
        )
        for lab in session.scalars(select(Lab).order_by(Lab.code)):
            version = session.scalar(
                select(ScheduleVersion).where(
                    ScheduleVersion.lab_id == lab.id, ScheduleVersion.is_current.is_(True)
                )
            )
            report = views.sla_breaches(session, lab, version, now)
            levels = session.scalars(
                select(PriorityLevel.code)
                .where(PriorityLevel.lab_id == lab.id)
                .order_by(PriorityLevel.rank)
            ).all()
            for level in levels:
                breaches.add_metric([lab.code, level], float(report["by_priority"].get(level, 0)))
        yield breaches

    # ---- exposure ---------------------------------------------------------------------------

    def _exposure(self, session: Session) -> Iterator[Metric]:
        """Each examiner's heaviest planned-plus-logged day and week in the published schedule,
        beside the caps (a cap of none is left out): alert on peak / cap."""
        labels = ["lab", "examiner"]
        day = GaugeMetricFamily(
            "labq_examiner_exposure_peak_day_minutes",
            "Exposure minutes on the examiner's heaviest day of the published schedule.",
            labels=labels,
        )
        day_cap = GaugeMetricFamily(
            "labq_examiner_exposure_daily_cap_minutes", "The examiner's daily cap.", labels=labels
        )
        week = GaugeMetricFamily(
            "labq_examiner_exposure_peak_week_minutes",
            "Exposure minutes in the examiner's heaviest week of the published schedule.",
            labels=labels,
        )
        week_cap = GaugeMetricFamily(
            "labq_examiner_exposure_weekly_cap_minutes", "The examiner's weekly cap.", labels=labels
        )
        rows = session.execute(
            select(Lab.code, ScheduleVersion.kpis)
            .join(ScheduleVersion, ScheduleVersion.lab_id == Lab.id)
            .where(ScheduleVersion.is_current.is_(True))
            .order_by(Lab.code)
        ).all()
        for lab_code, kpis in rows:
            exposure = (kpis or {}).get("exposure") or {}
            for ref in sorted(exposure):
                figures = exposure[ref]
                key = [lab_code, ref]
                day.add_metric(key, float(figures.get("max_day") or 0))
                weeks = figures.get("weeks") or []
                peak_week = max(
                    (int(w.get("planned") or 0) + int(w.get("logged") or 0) for w in weeks),
                    default=0,
                )
                week.add_metric(key, float(peak_week))
                if figures.get("daily_cap") is not None:
                    day_cap.add_metric(key, float(figures["daily_cap"]))
                if figures.get("weekly_cap") is not None:
                    week_cap.add_metric(key, float(figures["weekly_cap"]))
        yield from (day, day_cap, week, week_cap)


def _histogram(
    session: Session,
    family: HistogramMetricFamily,
    labels: Sequence[str],
    source: Any,
    buckets: Sequence[float],
) -> None:
    """Cumulative bucket counts and sum of the ``value`` column of ``source``, in one query."""
    sub = source.subquery()
    value = sub.c.value
    counts = [func.sum(case((value <= bound, 1), else_=0)) for bound in buckets]
    total, summed, *cumulative = session.execute(
        select(func.count(), func.coalesce(func.sum(value), 0.0), *counts).select_from(sub)
    ).one()
    pairs = [(repr(float(b)), float(n or 0)) for b, n in zip(buckets, cumulative, strict=True)]
    family.add_metric(list(labels), [*pairs, ("+Inf", float(total))], float(summed or 0.0))


def _unix(instant: datetime) -> float:
    return instant.timestamp()
