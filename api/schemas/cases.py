"""Cases, devices, jobs and the bulk import of the three.

labq stores references, priorities and effort estimates, never content or identities: notes are
short and non-identifying.
"""

from __future__ import annotations

from typing import Annotated, Literal, NotRequired

from pydantic import ConfigDict, Field, with_config
from typing_extensions import TypedDict  # pydantic needs this one before Python 3.12

from api.deps import REF_PATTERN
from api.schemas.common import (
    VOCABULARY,
    Arrival,
    Body,
    Code,
    Flag,
    Instant,
    IntegerOnly,
    Minutes,
    Note,
    Omittable,
    Out,
    Planned,
    QueuedRun,
    Ref,
    Severity,
    Terms,
)
from scheduler.services.case_import import CASE_DEFAULTS, DEVICE_DEFAULTS, JOB_DEFAULTS

CaseStatus = Literal["open", "on_hold", "closed"]
DeviceKind = Literal["phone", "computer", "storage", "cloud_return", "other"]
Stage = Literal["unlock", "acquire", "process", "review", "report"]
LabStage = Annotated[Stage, Field(description=f"One of the stages labq plans, and {VOCABULARY}.")]
FlagKind = Literal["hash_match", "classifier", "linked_report", "manual"]
JobStatus = Literal["pending", "scheduled", "in_progress", "done", "on_hold", "cancelled"]
SizeGb = Annotated[int, Field(ge=0, le=10_000_000, description="Capacity in GB."), IntegerOnly]
JOB_PATH_PATTERN = REF_PATTERN.removesuffix("$") + r"(/[A-Za-z0-9][A-Za-z0-9._-]*)?$"
JobPath = Annotated[
    str,
    Field(
        min_length=1,
        max_length=129,
        pattern=JOB_PATH_PATTERN,
        description='A job of the same case: "D1/acquire" (device/job) or "acquire" (same device).',
    ),
]
Labels = Terms
Refs = Annotated[list[Ref], Field(max_length=64)]


# --- cases ---------------------------------------------------------------------------------------


class CaseIn(Body):
    priority: Code = Field(description="A priority level code of the lab, e.g. P2.")
    received_at: Arrival
    legal_deadline_at: Planned | None = Field(
        default=CASE_DEFAULTS["legal_deadline_at"], description="A court or legal deadline."
    )
    status: CaseStatus = CASE_DEFAULTS["status"]
    note: Note | None = CASE_DEFAULTS["note"]


class CasePatch(Body):
    """Only the fields given change. Raise the priority with ``:escalate``."""

    received_at: Omittable[Arrival] = None
    legal_deadline_at: Planned | None = Field(default=None, description="null clears it.")
    status: Omittable[CaseStatus] = None
    note: Note | None = None


class FlagIn(Body):
    kind: FlagKind
    note: Note | None = None


class FlagOut(Out):
    id: int
    kind: str
    note: str | None
    created_at: Instant


class LinkIn(Body):
    case: Ref = Field(description="The other case's reference (same lab).")
    reason: Note | None = None


class LinkOut(Out):
    case: str
    reason: str | None
    created_at: Instant


class EscalateIn(Body):
    priority: Code = Field(description="The new, more urgent level.")
    reason: Note | None = None


class CaseSummary(Out):
    external_ref: str
    priority: str
    received_at: Instant
    legal_deadline_at: Instant | None
    status: str


class CaseOut(CaseSummary):
    note: str | None
    devices: list[str]
    flags: list[FlagOut]
    links: list[LinkOut]
    created_at: Instant
    updated_at: Instant


class CaseChanged(CaseOut):
    """A case after a change, with the repair run the change queued (a raised level)."""

    run: QueuedRun = None


class FlagAdded(FlagOut):
    run: QueuedRun = None


class LinkAdded(LinkOut):
    run: QueuedRun = None


# --- devices and jobs ----------------------------------------------------------------------------


class DeviceIn(Body):
    kind: DeviceKind
    arrived_at: Arrival
    size_gb: SizeGb | None = DEVICE_DEFAULTS["size_gb"]
    locked: Flag = DEVICE_DEFAULTS["locked"]


class JobIn(Body):
    stage: LabStage
    attended_minutes: Minutes = Field(
        default=JOB_DEFAULTS["attended_minutes"], description="Needs an examiner from the start."
    )
    machine_minutes: Minutes = Field(
        default=JOB_DEFAULTS["machine_minutes"], description="Occupies a workstation."
    )
    exposure_minutes: Minutes = JOB_DEFAULTS["exposure_minutes"]
    severity: Severity = JOB_DEFAULTS["severity"]
    skills: Labels = []
    capabilities: Labels = []
    pools: Refs = Field(default=[], description="Licence pools held while the job runs.")
    after: Annotated[list[JobPath], Field(max_length=200)] = Field(
        default=[], description="Jobs of the same case that finish before this one starts."
    )
    allowed_examiners: Refs = Field(default=[], description="If given, only these examiners.")
    workstation_minutes: Annotated[dict[Ref, Minutes], Field(max_length=64)] = Field(
        default={}, description="Machine minutes per workstation; if given, only these."
    )


class PinOut(Out):
    examiner: str | None
    workstation: str | None
    start: Instant


class JobOut(Out):
    id: int
    external_ref: str
    case: str
    device: str
    stage: str
    status: str
    attended_minutes: int
    machine_minutes: int
    exposure_minutes: int
    severity: int
    skills: list[str]
    capabilities: list[str]
    pools: list[str]
    after: list[str]
    allowed_examiners: list[str]
    workstation_minutes: dict[str, int]
    pin: PinOut | None
    started_at: Instant | None = Field(description="When :start was reported.")
    finished_at: Instant | None = Field(description="When :done was reported.")
    overdue: bool = Field(
        description="Its published start passed with no :start, beyond its planned end plus the "
        "lab's grace period (listed in reports/overdue)."
    )
    updated_at: Instant


class DeviceOut(Out):
    external_ref: str
    case: str
    kind: str
    arrived_at: Instant
    size_gb: int | None
    locked: bool
    jobs: list[JobOut]
    updated_at: Instant


class PinIn(Body):
    start: Planned
    examiner: Ref | None = Field(default=None, description="Needed if the job is attended.")
    workstation: Ref | None = Field(default=None, description="Needed if it uses a machine.")


# --- import --------------------------------------------------------------------------------------
# TypedDicts rather than models: validation yields plain dicts, about four times faster than
# building and dumping 50,000 model objects for a 10,000-case import. Omitted fields take the
# same defaults as the single-resource bodies above, filled in by the import service from
# CASE_DEFAULTS, DEVICE_DEFAULTS and JOB_DEFAULTS (minutes 0, status open, no skills, ...).

FORBID = ConfigDict(extra="forbid")


@with_config(FORBID)
class ImportJob(TypedDict):
    external_ref: Ref
    stage: LabStage
    attended_minutes: NotRequired[Minutes]
    machine_minutes: NotRequired[Minutes]
    exposure_minutes: NotRequired[Minutes]
    severity: NotRequired[Severity]
    skills: NotRequired[Labels]
    capabilities: NotRequired[Labels]
    pools: NotRequired[Refs]
    after: NotRequired[Annotated[list[JobPath], Field(max_length=200)]]
    allowed_examiners: NotRequired[Refs]
    workstation_minutes: NotRequired[Annotated[dict[Ref, Minutes], Field(max_length=64)]]


@with_config(FORBID)
class ImportDevice(TypedDict):
    external_ref: Ref
    kind: DeviceKind
    arrived_at: Arrival
    size_gb: NotRequired[SizeGb | None]
    locked: NotRequired[Flag]
    jobs: NotRequired[Annotated[list[ImportJob], Field(max_length=200)]]


@with_config(FORBID)
class ImportCase(TypedDict):
    external_ref: Ref
    priority: Code
    received_at: Arrival
    legal_deadline_at: NotRequired[Planned | None]
    status: NotRequired[CaseStatus]
    note: NotRequired[Note | None]
    devices: NotRequired[Annotated[list[ImportDevice], Field(max_length=200)]]


@with_config(FORBID)
class ImportIn(TypedDict):
    cases: Annotated[list[ImportCase], Field(min_length=1, max_length=10_000)]


class ImportOut(Out):
    created: int = Field(description="Cases that did not exist.")
    updated: int = Field(description="Cases where anything (case, device or job) changed.")
    unchanged: int = Field(description="Cases the payload left exactly as they were.")
    run: QueuedRun = None
