"""Records the loader cannot plan, found without letting one of them stop the lab.

A lab's data arrives through the API and imports, and now and then by hand in the database. One
record that cannot become planning data — an instant the contract's minutes cannot express, a
reference that no longer resolves, a number past the contract's bounds — is left out with reason
``unplannable_record`` and a detail naming the record and the field; the rest of the lab is
planned.

Instants
    Snapshot times are integer minutes within ``MAX_MINUTES`` of the epoch, so an instant is
    plannable only inside that range (about 1,900 years either side of now). The range is checked
    in SQL, before a value reaches Python: PostgreSQL stores instants (``infinity``, year 10000)
    that the driver cannot turn into a ``datetime``, and a text value in SQLite may not parse, and
    either would fail the whole query. An out-of-range value is read back as text, for the detail.

The contract
    When the lab's snapshot breaks the contract, each examiner, workstation, pool and job is
    checked alone against it (the same check, on a snapshot of that one record), so every bad
    record is named in one pass and the others are kept.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Text, case, cast, func, literal, or_
from sqlalchemy.sql.elements import ColumnElement

from models.base import UtcDateTime
from scheduler.core import snapshot as core
from scheduler.core.snapshot import MAX_MINUTES, SnapshotError

MAX_SHOWN = 60
"""Characters of an unreadable stored value quoted in a detail."""


@dataclass(frozen=True)
class InstantRange:
    """The instants a snapshot with this epoch can express as minutes."""

    low: datetime
    high: datetime

    @classmethod
    def around(cls, epoch: datetime) -> InstantRange:
        span = timedelta(minutes=MAX_MINUTES)
        return cls(epoch - span, epoch + span)

    def guarded(self, column: Any, dialect: str) -> tuple[ColumnElement[Any], ColumnElement[Any]]:
        """``column`` where it is in range (else NULL), and its text where it is not."""
        inside = self._inside(column, dialect)
        value = case((inside, column), else_=None)
        text = case((or_(column.is_(None), inside), None), else_=cast(column, Text))
        return value, text

    def _inside(self, column: Any, dialect: str) -> ColumnElement[bool]:
        if dialect == "sqlite":
            # Stored as text: compare as dates (NULL for text that is no date, or year > 9999).
            def day(value: datetime) -> ColumnElement[Any]:
                return func.julianday(literal(value, UtcDateTime()))

            return func.julianday(column).between(day(self.low), day(self.high))
        return column.between(self.low, self.high)  # type: ignore[no-any-return]

    def problem(self, what: str, name: str, stored: str) -> str:
        shown = stored if len(stored) <= MAX_SHOWN else stored[:MAX_SHOWN] + "..."
        return (
            f"{what}: {name} {shown!r} cannot be planned; an instant between "
            f"{self.low.date().isoformat()} and {self.high.date().isoformat()} is needed"
        )


@dataclass
class Unplannable:
    """Records found unplannable, by snapshot id, with the detail that names each one."""

    examiners: dict[str, str] = field(default_factory=dict)
    workstations: dict[str, str] = field(default_factory=dict)
    pools: dict[str, str] = field(default_factory=dict)
    jobs: dict[str, str] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.examiners) + len(self.workstations) + len(self.pools) + len(self.jobs)

    def add_named_by(self, snapshot: core.Snapshot, error: SnapshotError) -> bool:
        """Mark the record ``error``'s field path points into; False if it names none."""
        records: tuple[tuple[str, dict[str, str], tuple[Any, ...]], ...] = (
            ("jobs", self.jobs, snapshot.jobs),
            ("examiners", self.examiners, snapshot.examiners),
            ("workstations", self.workstations, snapshot.workstations),
            ("pools", self.pools, snapshot.pools),
        )
        for prefix, table, items in records:
            for item in items:
                if error.field.startswith(f"{prefix}[{item.id}]"):
                    table[item.id] = str(error)
                    return True
        return False


def record_problems(snapshot: core.Snapshot) -> Unplannable:
    """Each examiner, workstation, pool and job of ``snapshot`` checked alone against the contract.

    A job is checked with stand-ins for the resources it names (their own checks are separate) and
    without its predecessors (an absent one counts as done), so only its own fields can fail.
    """
    found = Unplannable()
    alone = replace(snapshot, examiners=(), workstations=(), pools=(), jobs=(), previous=())

    def fails(**one: Any) -> str | None:
        try:
            replace(alone, **one).check()
        except SnapshotError as exc:
            return str(exc)
        return None

    for examiner in snapshot.examiners:
        if (why := fails(examiners=(examiner,))) is not None:
            found.examiners[examiner.id] = why
    for ws in snapshot.workstations:
        if (why := fails(workstations=(ws,))) is not None:
            found.workstations[ws.id] = why
    for pool in snapshot.pools:
        if (why := fails(pools=(pool,))) is not None:
            found.pools[pool.id] = why
    examiners = {e.id for e in snapshot.examiners}
    workstations = {w.id for w in snapshot.workstations}
    pools = {p.id for p in snapshot.pools}
    for job in snapshot.jobs:
        named_examiners = set(job.examiners or ())
        named_workstations = set(job.machine_by_workstation or ())
        if job.pin is not None:
            named_examiners.update([job.pin.examiner] if job.pin.examiner else [])
            named_workstations.update([job.pin.workstation] if job.pin.workstation else [])
        why = fails(
            examiners=tuple(
                core.Examiner(ref, frozenset(), (), core.ExposurePolicy())
                for ref in sorted(named_examiners & examiners)
            ),
            workstations=tuple(
                core.Workstation(ref, frozenset(), 1, ((0, snapshot.horizon),))
                for ref in sorted(named_workstations & workstations)
            ),
            pools=tuple(core.Pool(name, 1) for name in sorted(set(job.pools) & pools)),
            jobs=(replace(job, after=()),),
        )
        if why is not None:
            found.jobs[job.id] = why
    return found
