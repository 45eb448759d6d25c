"""Snapshot ids (readable strings) <-> database ids, and what the loader reports beside the
snapshot: jobs left out, work under way, warnings (docs/architecture.md §7.3).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from scheduler.planning.loading.timeline import Timeline

URGENT_RANKS = 2  # P1 and P2 in the default scheme: the levels whose repairs publish themselves


@dataclass(frozen=True)
class Excluded:
    """A planned-for job the loader left out of the snapshot, reported in the version."""

    job_id: int
    reason: str
    detail: str


@dataclass(frozen=True)
class Begun:
    """Work already under way: where and when it began (and, if only taken as started, where
    its published placement ended). The stored version keeps this span rather than the part
    still to do, so a missed start's grace runs from its planned end however often the lab is
    re-planned, and a job in progress shows its real start (progress.py)."""

    start: datetime
    end: datetime | None
    examiner_id: int | None
    workstation_id: int | None


@dataclass
class IdMap:
    """Snapshot ids (readable strings) <-> database ids, plus what the loader had to report.

    Examiners and workstations are known by their external references, pools by name, cases by
    their reference and jobs by ``case/device/job`` references.
    """

    timeline: Timeline
    mode: str = "full"
    examiners: dict[str, int] = field(default_factory=dict)
    workstations: dict[str, int] = field(default_factory=dict)
    pools: dict[str, int] = field(default_factory=dict)
    cases: dict[str, int] = field(default_factory=dict)
    jobs: dict[str, int] = field(default_factory=dict)
    job_level: dict[str, str] = field(default_factory=dict)
    job_stage: dict[str, str] = field(default_factory=dict)
    job_target_due: dict[str, int] = field(default_factory=dict)  # before the legal deadline
    job_deadline: dict[str, int] = field(default_factory=dict)  # jobs of cases with one
    case_level: dict[str, str] = field(default_factory=dict)
    case_target_start: dict[str, int] = field(default_factory=dict)  # minutes, may be < 0
    cases_started: set[str] = field(default_factory=set)
    job_case: dict[int, int] = field(default_factory=dict)
    level_rank: dict[str, int] = field(default_factory=dict)
    level_target_hours: dict[str, int] = field(default_factory=dict)
    excluded: list[Excluded] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    unplannable: list[str] = field(default_factory=list)  # every record left out as unplannable
    overdue: list[str] = field(default_factory=list)  # published jobs past start, end and grace
    begun: dict[str, Begun] = field(default_factory=dict)  # job sid -> work under way
    # repair mode: jobs new, dropped or changed (or whose case changed) since the current version
    # was published, what a repair's trigger touched (`scheduler/planning/repair.py`)
    triggered: set[str] = field(default_factory=set)
    current_version_id: int | None = None

    def is_urgent(self, case: str) -> bool:
        """Whether the case's priority level is P1 or P2 (a rank within `URGENT_RANKS`)."""
        return self.level_rank.get(self.case_level.get(case, ""), URGENT_RANKS + 1) <= URGENT_RANKS

    def job_sid(self, job_id: int) -> str:
        return self._reverse("jobs")[job_id]

    def examiner_sid(self, examiner_id: int) -> str:
        return self._reverse("examiners")[examiner_id]

    def workstation_sid(self, workstation_id: int) -> str:
        return self._reverse("workstations")[workstation_id]

    def _reverse(self, name: str) -> dict[int, str]:
        cache: dict[str, dict[int, str]] = self.__dict__.setdefault("_reverse_cache", {})
        forward: dict[str, int] = getattr(self, name)
        if name not in cache or len(cache[name]) != len(forward):
            cache[name] = {db_id: sid for sid, db_id in forward.items()}
        return cache[name]
