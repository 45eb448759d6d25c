"""Exports of a schedule: CSV (spreadsheet formulas neutralised) and an examiner's iCalendar feed
with each placement's revision (docs/architecture.md §7.3).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from models import Assignment, Examiner, Lab, ScheduleVersion
from models.base import utcnow
from scheduler.planning.views.placed import PlacedJob

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
