"""Read models of schedules: what the API views, the exports, the reports and the demo show.

Everything here reads; nothing writes. Jobs are named by references only (``case/device/job``,
stage, priority): labq holds no case content, and an examiner's view shows nothing more.

One module per subject (docs/architecture.md §7.3), their names gathered here for the routers:
`versions` (a version by id, the current one, the read cache), `placed` (a version's placed jobs,
references, the readable diff), `exports` (CSV, iCalendar), `forecasts` (a case's outlook),
`reports` (backlog, SLA breaches, exposure, utilisation) and `advice` (recommendations).
"""

from __future__ import annotations

from scheduler.planning.views.advice import recommendations
from scheduler.planning.views.exports import (
    CSV_COLUMNS,
    Revision,
    examiner_ical,
    placement_revisions,
    schedule_csv,
)
from scheduler.planning.views.forecasts import JobOutlook, case_forecast
from scheduler.planning.views.placed import (
    PlacedJob,
    case_job_ids,
    job_refs,
    placed_jobs,
    readable_diff,
    resource_refs,
)
from scheduler.planning.views.reports import (
    AGE_BUCKETS,
    backlog_report,
    case_expectations,
    exposure_report,
    open_cases,
    sla_breaches,
    utilization_report,
)
from scheduler.planning.views.versions import ReadCache, current_or_404, get_version

__all__ = [
    "AGE_BUCKETS",
    "CSV_COLUMNS",
    "JobOutlook",
    "PlacedJob",
    "ReadCache",
    "Revision",
    "backlog_report",
    "case_expectations",
    "case_forecast",
    "case_job_ids",
    "current_or_404",
    "examiner_ical",
    "exposure_report",
    "get_version",
    "job_refs",
    "open_cases",
    "placed_jobs",
    "placement_revisions",
    "readable_diff",
    "recommendations",
    "resource_refs",
    "schedule_csv",
    "sla_breaches",
    "utilization_report",
]
