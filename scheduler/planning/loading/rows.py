"""The open jobs' stored rows, read once per snapshot: their columns, their device's, case's and
priority level's, their child tables and their predecessor edges (docs/architecture.md §7.3).

Plain rows, not ORM objects (far cheaper). A stored instant outside the range the snapshot's
minutes can express is read back as text and named (`scheduler.planning.plannable`).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, aliased

from models import (
    Case,
    Device,
    Job,
    JobPredecessor,
    PriorityLevel,
)
from scheduler.planning.loading.timeline import Timeline
from scheduler.planning.plannable import InstantRange
from scheduler.planning.progress import DONE_STATUSES
from scheduler.services import job_store

ACTIVE_JOB_STATUSES = ("pending", "scheduled", "in_progress")


@dataclass
class JobData:
    """The columns of a job the loader reads (plain rows: far cheaper than ORM objects)."""

    id: int
    external_ref: str
    status: str
    attended_minutes: int
    machine_minutes: int
    exposure_minutes: int
    severity: int
    pin_examiner_id: int | None
    pin_workstation_id: int | None
    pin_start_at: datetime | None
    updated_at: datetime
    started_at: datetime | None = None  # when ``:start`` was reported
    skills: list[str] = field(default_factory=list)
    capabilities: list[str] = field(default_factory=list)
    pool_ids: list[int] = field(default_factory=list)
    allowed_examiner_ids: list[int] = field(default_factory=list)
    workstation_minutes: dict[int, int] = field(default_factory=dict)


@dataclass(frozen=True)
class DeviceData:
    external_ref: str
    arrived_at: datetime


@dataclass(frozen=True)
class CaseData:
    id: int
    external_ref: str
    received_at: datetime
    legal_deadline_at: datetime | None
    updated_at: datetime


@dataclass(frozen=True)
class LevelData:
    code: str
    weight: int
    target_start_hours: int


@dataclass
class Row:
    job: JobData
    device: DeviceData
    case: CaseData
    level: LevelData
    sid: str


class JobRows:
    """The lab's planned-for jobs (pending, scheduled and in progress, in open cases) by id."""

    def __init__(self, session: Session, lab_id: int, timeline: Timeline) -> None:
        self.session = session
        self.lab_id = lab_id
        self.timeline = timeline
        self.rows: dict[int, Row] = {}
        self.preds: dict[int, list[tuple[int, str]]] = defaultdict(list)
        self.changed_since: dict[int, datetime] = {}
        self.case_changed: dict[int, datetime] = {}  # job id -> when its case last changed
        self.unreadable: dict[int, str] = {}  # job id -> the stored instant it cannot plan
        self.stages: dict[int, str] = {}  # job id -> its stage
        planned = (
            Job.lab_id == lab_id,
            Case.status == "open",
            Job.status.in_(ACTIVE_JOB_STATUSES),
        )
        self._read_jobs(planned)
        self._read_children(planned)
        self._read_predecessors()

    def _read_jobs(self, planned: tuple[Any, ...]) -> None:
        """The open jobs' own columns, their device's, case's and priority level's."""
        plannable = InstantRange.around(self.timeline.epoch)
        dialect = self.session.get_bind().dialect.name
        pin_start, pin_start_text = plannable.guarded(Job.pin_start_at, dialect)
        arrived, arrived_text = plannable.guarded(Device.arrived_at, dialect)
        received, received_text = plannable.guarded(Case.received_at, dialect)
        deadline, deadline_text = plannable.guarded(Case.legal_deadline_at, dialect)
        rows: Sequence[Any] = self.session.execute(
            select(
                Job.id,
                Job.external_ref,
                Job.status,
                Job.attended_minutes,
                Job.machine_minutes,
                Job.exposure_minutes,
                Job.severity,
                Job.pin_examiner_id,
                Job.pin_workstation_id,
                pin_start,
                Job.updated_at,
                Device.external_ref,
                arrived,
                Case.id,
                Case.external_ref,
                received,
                deadline,
                Case.updated_at,
                PriorityLevel.code,
                PriorityLevel.weight,
                PriorityLevel.target_start_hours,
                received_text,
                deadline_text,
                arrived_text,
                pin_start_text,
                Job.stage,
                Job.started_at,
            )
            .join(Device, Job.device_id == Device.id)
            .join(Case, Device.case_id == Case.id)
            .join(PriorityLevel, Case.priority_level_id == PriorityLevel.id)
            .where(*planned)
            .order_by(Case.received_at, Case.id, Device.id, Job.id)
        ).all()
        epoch = self.timeline.epoch
        for r in rows:
            job = JobData(*r[0:11])
            job.started_at = r[26]
            device = DeviceData(r[11], r[12] or epoch)
            case = CaseData(r[13], r[14], r[15] or epoch, r[16], r[17])
            level = LevelData(*r[18:21])
            sid = f"{case.external_ref}/{device.external_ref}/{job.external_ref}"
            self.rows[job.id] = Row(job, device, case, level, sid)
            self.stages[job.id] = r[25]
            for text, what, name in (
                (r[21], f"case {case.external_ref}", "received_at"),
                (r[22], f"case {case.external_ref}", "legal_deadline_at"),
                (r[23], f"device {case.external_ref}/{device.external_ref}", "arrived_at"),
                (r[24], f"{r[25]} job {sid}", "pin_start_at"),
            ):
                if text is not None:
                    self.unreadable.setdefault(job.id, plannable.problem(what, name, text))
            self.changed_since[job.id] = max(job.updated_at, case.updated_at)
            self.case_changed[job.id] = case.updated_at

    def _read_children(self, planned: tuple[Any, ...]) -> None:
        """Skills, capabilities, licence pools, allowed examiners and minutes per workstation."""
        ids = (
            select(Job.id)
            .join(Device, Job.device_id == Device.id)
            .join(Case, Device.case_id == Case.id)
            .where(*planned)
        )
        for job_id, sets in job_store.read(self.session, ids, tables=job_store.RESOURCES).items():
            job = self.rows[job_id].job
            job.skills += sets.skills
            job.capabilities += sets.capabilities
            job.pool_ids += sets.pool_ids
            job.allowed_examiner_ids += sets.examiner_ids
            job.workstation_minutes.update(sets.workstation_minutes)

    def _read_predecessors(self) -> None:
        """Every predecessor edge of an open case's job, with the predecessor's status."""
        pred_job = aliased(Job)
        open_jobs = (
            select(Job.id)
            .join(Device, Job.device_id == Device.id)
            .join(Case, Device.case_id == Case.id)
            .where(Job.lab_id == self.lab_id, Case.status == "open")
        )
        edges = self.session.execute(
            select(JobPredecessor.job_id, JobPredecessor.predecessor_id, pred_job.status)
            .join(pred_job, pred_job.id == JobPredecessor.predecessor_id)
            .where(JobPredecessor.job_id.in_(open_jobs))
        ).all()
        for job_id, pred_id, status in edges:
            self.preds[job_id].append((pred_id, status))

    def describe_outside(self) -> dict[int, str]:
        """Predecessors that are neither done nor planned: on hold, or in a case not open."""
        missing = {
            pred_id
            for edges in self.preds.values()
            for pred_id, status in edges
            if status not in DONE_STATUSES and pred_id not in self.rows
        }
        if not missing:
            return {}
        rows = self.session.execute(  # references only: no stored instant is read here
            select(
                Job.id,
                Job.external_ref,
                Job.status,
                Device.external_ref,
                Case.external_ref,
                Case.status,
            )
            .join(Device, Job.device_id == Device.id)
            .join(Case, Device.case_id == Case.id)
            .where(Job.id.in_(missing))
        ).all()
        out = {}
        for job_id, job_external, status, device_ref, case_ref, case_status in rows:
            state = f"case {case_status}" if case_status != "open" else status
            ref = f"{case_ref}/{device_ref}/{job_external}"
            out[job_id] = f"job {ref}, which is {state.replace('_', ' ')}"
        return out

    def depth(self) -> dict[int, int]:
        """Stages before each job on its longest predecessor chain (done ones included)."""
        depth: dict[int, int] = {}
        visiting: set[int] = set()  # on the current path: a cycle (bad data) is cut there
        for root in self.preds:
            stack = [(root, False)]
            while stack:
                node, expanded = stack.pop()
                if node in depth:
                    continue
                parents = [p for p, _ in self.preds.get(node, ())]
                if expanded or not parents:
                    visiting.discard(node)
                    depth[node] = 1 + max((depth.get(p, -1) for p in parents), default=-1)
                    continue
                visiting.add(node)
                stack.append((node, True))
                stack.extend((p, False) for p in parents if p not in depth and p not in visiting)
        return depth
