"""One lab's planning problem as plain, immutable data: the `labq.snapshot/1` contract.

All times are integer minutes from the snapshot's epoch; intervals are half-open ``[start, end)``.
The solver, the dispatch baselines and the verifier read only this; nothing here knows about the
database or HTTP, so a production snapshot can be replayed offline.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

SNAPSHOT_FORMAT = "labq.snapshot/1"

Interval = tuple[int, int]


@dataclass(frozen=True)
class ExposurePolicy:
    """Limits on an examiner's exposure to abuse material (DESIGN.md §3 rule 5).

    A cap of ``None`` means no cap. ``windows`` are the intervals in which exposure work may start
    and run (before the daily cut-off); they default to the examiner's availability.
    ``used_by_day`` maps an index into ``Snapshot.days`` to minutes already logged that day;
    ``used_this_week`` counts against the first week.
    """

    daily_cap: int | None = None
    severe_daily_cap: int | None = None
    weekly_cap: int | None = None
    windows: tuple[Interval, ...] = ()
    max_severity: int = 3
    used_by_day: Mapping[int, int] = field(default_factory=dict)
    used_this_week: int = 0


@dataclass(frozen=True)
class Examiner:
    id: str
    skills: frozenset[str]
    available: tuple[Interval, ...]
    exposure: ExposurePolicy


@dataclass(frozen=True)
class Workstation:
    id: str
    capabilities: frozenset[str]
    capacity: int
    available: tuple[Interval, ...]


@dataclass(frozen=True)
class Pool:
    """Floating licences shared by jobs; at most ``capacity`` jobs hold one at once."""

    id: str
    capacity: int


@dataclass(frozen=True)
class Pin:
    """A fixed placement a supervisor set (or an in-progress job): kept exactly."""

    examiner: str | None
    workstation: str | None
    start: int


@dataclass(frozen=True)
class Job:
    """One stage of work on one device.

    The job needs an examiner iff ``attended > 0`` and a workstation iff ``machine > 0`` or
    ``machine_by_workstation`` is given (which then restricts the workstation and sets its
    machine minutes). ``examiners``, when not ``None``, restricts the examiner.
    """

    id: str
    case: str
    weight: int
    release: int
    due: int | None
    attended: int
    machine: int
    machine_by_workstation: Mapping[str, int] | None = None
    skills: frozenset[str] = frozenset()
    capabilities: frozenset[str] = frozenset()
    pools: tuple[str, ...] = ()
    examiners: tuple[str, ...] | None = None
    exposure: int = 0
    severity: int = 0
    after: tuple[str, ...] = ()
    pin: Pin | None = None

    @property
    def needs_examiner(self) -> bool:
        return self.attended > 0

    @property
    def needs_workstation(self) -> bool:
        return self.machine > 0 or self.machine_by_workstation is not None

    def machine_on(self, workstation: str | None) -> int:
        """Machine minutes on ``workstation`` (a faster box may image faster)."""
        if workstation is not None and self.machine_by_workstation is not None:
            return self.machine_by_workstation[workstation]
        return self.machine

    def duration_on(self, workstation: str | None) -> int:
        """end - start when run on ``workstation``: the longer of the attended and machine parts."""
        return max(self.attended, self.machine_on(workstation))

    @property
    def min_duration(self) -> int:
        """Shortest possible duration over all workstations the job may use."""
        if self.machine_by_workstation:
            return max(self.attended, min(self.machine_by_workstation.values()))
        return max(self.attended, self.machine)


@dataclass(frozen=True)
class PreviousAssignment:
    """An assignment of the currently published schedule."""

    job: str
    examiner: str | None
    workstation: str | None
    start: int


@dataclass(frozen=True)
class Weights:
    """Soft-term weights (DESIGN.md §3), configurable per lab."""

    tardiness: int = 1
    change: int = 50
    balance: int = 5
    continuity: int = 2


@dataclass(frozen=True)
class Snapshot:
    lab: str
    epoch: str
    horizon: int
    objective: str  # "weighted_tardiness" or "makespan"
    days: tuple[Interval, ...]
    weeks: tuple[Interval, ...]
    examiners: tuple[Examiner, ...]
    workstations: tuple[Workstation, ...]
    pools: tuple[Pool, ...]
    jobs: tuple[Job, ...]
    previous: tuple[PreviousAssignment, ...] = ()
    frozen_until: int = 0
    weights: Weights = Weights()
