"""Reads of schedule versions the API pages through or looks up beside them: the lab's versions,
the jobs a version leaves out, their forecast, and the version each run made
(docs/architecture.md §7.3, §7.5)."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import select
from sqlalchemy.orm import Session

from models import ForecastEntry, Lab, ScheduleVersion, UnscheduledJob
from scheduler.services.listing import Listing, by_id


def versions_of(lab: Lab) -> Listing:
    """Every schedule version of the lab (published or not), oldest first."""
    return by_id(select(ScheduleVersion).where(ScheduleVersion.lab_id == lab.id))


def unscheduled_of(version: ScheduleVersion, *, reason: str | None = None) -> Listing:
    """The jobs ``version`` leaves out in job id order, of one reason when given."""
    stmt = select(UnscheduledJob).where(UnscheduledJob.schedule_version_id == version.id)
    if reason is not None:
        stmt = stmt.where(UnscheduledJob.reason == reason)
    return Listing(stmt, UnscheduledJob.job_id)


def unscheduled_among(
    session: Session, version: ScheduleVersion, job_ids: Iterable[int]
) -> list[UnscheduledJob]:
    """Which of the jobs ``job_ids`` ``version`` leaves out."""
    return list(
        session.scalars(
            select(UnscheduledJob).where(
                UnscheduledJob.schedule_version_id == version.id,
                UnscheduledJob.job_id.in_(list(job_ids)),
            )
        )
    )


def forecast_of(
    session: Session, version: ScheduleVersion, job_ids: Iterable[int]
) -> dict[int, ForecastEntry]:
    """``version``'s forecast of the jobs ``job_ids`` (those it has one for), by job id."""
    return {
        f.job_id: f
        for f in session.scalars(
            select(ForecastEntry).where(
                ForecastEntry.schedule_version_id == version.id,
                ForecastEntry.job_id.in_(list(job_ids)),
            )
        )
    }


def versions_made_by(session: Session, run_ids: list[int]) -> dict[int, int]:
    """The schedule version each of the runs ``run_ids`` made (those that made one), by run."""
    if not run_ids:
        return {}
    return {
        run_id: version_id
        for version_id, run_id in session.execute(
            select(ScheduleVersion.id, ScheduleVersion.solve_run_id).where(
                ScheduleVersion.solve_run_id.in_(run_ids)
            )
        )
        if run_id is not None
    }
