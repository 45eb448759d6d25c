"""The one store of a job's child tables (docs/architecture.md §7.4).

A job's skills, capabilities, licence pools, allowed examiners, per-workstation machine minutes
and predecessors live in six tables (``models/casework.py``). This module owns them: ``TABLES``
names each table and its columns, ``Sets`` is a job's content of all six by id, ``replace``
writes one job's sets (the single routes), ``rows`` gives a set's rows in column order for a bulk
writer (the import, the benchmark seed), ``read`` reads the sets of many jobs by id (the import's
comparison, the loader) and ``shown`` reads them as clients name them (the API's job views).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from models import (
    Case,
    Device,
    Examiner,
    Job,
    JobAllowedExaminer,
    JobCapability,
    JobLicencePool,
    JobPredecessor,
    JobSkill,
    JobWorkstationMinutes,
    LicencePool,
    Workstation,
)


@dataclass(frozen=True)
class Table:
    """One child table: the set's name in the API and the import, its model, its columns
    (``job_id`` first) and the columns that hold another job's id."""

    name: str
    model: Any
    columns: tuple[str, ...]
    job_columns: tuple[str, ...] = ("job_id",)


SKILLS = Table("skills", JobSkill, ("job_id", "skill"))
CAPABILITIES = Table("capabilities", JobCapability, ("job_id", "capability"))
POOLS = Table("pools", JobLicencePool, ("job_id", "pool_id"))
ALLOWED_EXAMINERS = Table("allowed_examiners", JobAllowedExaminer, ("job_id", "examiner_id"))
WORKSTATION_MINUTES = Table(
    "workstation_minutes",
    JobWorkstationMinutes,
    ("job_id", "workstation_id", "machine_minutes"),
)
PREDECESSORS = Table(
    "after", JobPredecessor, ("job_id", "predecessor_id"), ("job_id", "predecessor_id")
)
TABLES: tuple[Table, ...] = (
    SKILLS,
    CAPABILITIES,
    POOLS,
    ALLOWED_EXAMINERS,
    WORKSTATION_MINUTES,
    PREDECESSORS,
)
BY_NAME: dict[str, Table] = {t.name: t for t in TABLES}
#: what a job needs of the lab's resources: every table but the predecessors
RESOURCES: tuple[Table, ...] = tuple(t for t in TABLES if t is not PREDECESSORS)


@dataclass
class Sets:
    """A job's six sets by id (predecessors are job ids)."""

    skills: list[str] = field(default_factory=list)
    capabilities: list[str] = field(default_factory=list)
    pool_ids: list[int] = field(default_factory=list)
    examiner_ids: list[int] = field(default_factory=list)
    workstation_minutes: dict[int, int] = field(default_factory=dict)
    predecessor_ids: list[int] = field(default_factory=list)


def rows(table: Table, job_id: int, sets: Sets) -> Iterator[tuple[Any, ...]]:
    """The rows of one of a job's sets, in ``table.columns`` order (duplicates once each)."""
    if table is SKILLS:
        yield from ((job_id, s) for s in sorted(set(sets.skills)))
    elif table is CAPABILITIES:
        yield from ((job_id, c) for c in sorted(set(sets.capabilities)))
    elif table is POOLS:
        yield from ((job_id, p) for p in sorted(set(sets.pool_ids)))
    elif table is ALLOWED_EXAMINERS:
        yield from ((job_id, e) for e in sorted(set(sets.examiner_ids)))
    elif table is WORKSTATION_MINUTES:
        yield from ((job_id, ws, m) for ws, m in sorted(sets.workstation_minutes.items()))
    else:
        yield from ((job_id, p) for p in sorted(set(sets.predecessor_ids)))


def replace(job: Job, sets: Sets) -> None:
    """Replace all six of ``job``'s sets (through its relationships; the caller flushes)."""
    built = {
        t.name: [
            t.model(**dict(zip(t.columns[1:], row[1:], strict=True))) for row in rows(t, 0, sets)
        ]
        for t in TABLES
    }
    job.skills = built[SKILLS.name]
    job.capabilities = built[CAPABILITIES.name]
    job.pools = built[POOLS.name]
    job.allowed_examiners = built[ALLOWED_EXAMINERS.name]
    job.workstation_minutes = built[WORKSTATION_MINUTES.name]
    job.predecessors = built[PREDECESSORS.name]


def predecessor_ids(session: Session, job_id: int) -> list[int]:
    """The jobs that must finish before ``job_id`` starts."""
    return list(
        session.scalars(
            select(JobPredecessor.predecessor_id).where(JobPredecessor.job_id == job_id)
        )
    )


# the list of ``Sets`` each table but the minutes fills
_LISTS = {
    SKILLS.name: "skills",
    CAPABILITIES.name: "capabilities",
    POOLS.name: "pool_ids",
    ALLOWED_EXAMINERS.name: "examiner_ids",
    PREDECESSORS.name: "predecessor_ids",
}
Conditions = Callable[[Any], Iterable[Any]]


def read(
    session: Session,
    job_ids: Any,
    *,
    tables: Sequence[Table] = TABLES,
    where: Conditions | None = None,
) -> dict[int, Sets]:
    """The sets of the jobs ``job_ids`` (a list or a subquery of ids), by id; jobs without any
    row have none. ``where(column)`` gives the conditions to read in turn (one query each,
    e.g. chunks of a long list); by default ``column IN job_ids``."""
    conditions: Conditions = where or (lambda column: (column.in_(job_ids),))
    found: dict[int, Sets] = defaultdict(Sets)
    for table in tables:
        columns = [getattr(table.model, c) for c in table.columns]
        for condition in conditions(columns[0]):
            result = session.execute(select(*columns).where(condition))
            if table is WORKSTATION_MINUTES:
                for job_id, workstation_id, minutes in result:
                    found[job_id].workstation_minutes[workstation_id] = minutes
                continue
            attribute = _LISTS[table.name]
            for job_id, value in result:
                getattr(found[job_id], attribute).append(value)
    return dict(found)


@dataclass
class Shown:
    """A job as clients name its parts: where it is, its sets (sorted) and its pin's resources."""

    case: str
    device: str
    skills: list[str] = field(default_factory=list)
    capabilities: list[str] = field(default_factory=list)
    pools: list[str] = field(default_factory=list)
    after: list[str] = field(default_factory=list)  # "device/job" within the case
    allowed_examiners: list[str] = field(default_factory=list)
    workstation_minutes: dict[str, int] = field(default_factory=dict)
    pin_examiner: str | None = None
    pin_workstation: str | None = None


def shown(session: Session, jobs: Sequence[Job]) -> dict[int, Shown]:
    """``Shown`` of each job, by id, with a fixed number of queries whatever their number."""
    if not jobs:
        return {}
    ids = [j.id for j in jobs]
    out = {
        job_id: Shown(case=case_ref, device=device_ref)
        for job_id, case_ref, device_ref in session.execute(
            select(Job.id, Case.external_ref, Device.external_ref)
            .join(Device, Job.device_id == Device.id)
            .join(Case, Device.case_id == Case.id)
            .where(Job.id.in_(ids))
        )
    }
    found = read(session, ids)
    every = list(found.values())
    pools = _names(session, LicencePool.name, {p for s in every for p in s.pool_ids})
    examiners = _names(
        session,
        Examiner.external_ref,
        {e for s in every for e in s.examiner_ids}
        | {j.pin_examiner_id for j in jobs if j.pin_examiner_id},
    )
    workstations = _names(
        session,
        Workstation.external_ref,
        {w for s in every for w in s.workstation_minutes}
        | {j.pin_workstation_id for j in jobs if j.pin_workstation_id},
    )
    predecessors = {
        job_id: f"{device_ref}/{job_ref}"
        for job_id, device_ref, job_ref in session.execute(
            select(Job.id, Device.external_ref, Job.external_ref)
            .join(Device, Job.device_id == Device.id)
            .where(Job.id.in_({p for s in every for p in s.predecessor_ids}))
        )
    }
    for job_id, sets in found.items():
        view = out[job_id]
        view.skills = sorted(sets.skills)
        view.capabilities = sorted(sets.capabilities)
        view.pools = sorted(pools[p] for p in sets.pool_ids)
        view.allowed_examiners = sorted(examiners[e] for e in sets.examiner_ids)
        view.workstation_minutes = dict(
            sorted((workstations[w], m) for w, m in sets.workstation_minutes.items())
        )
        view.after = sorted(predecessors[p] for p in sets.predecessor_ids)
    for job in jobs:
        view = out[job.id]
        view.pin_examiner = examiners.get(job.pin_examiner_id or 0)
        view.pin_workstation = workstations.get(job.pin_workstation_id or 0)
    return out


def _names(session: Session, name: Any, ids: set[int]) -> dict[int, str]:
    """``name`` (a column of a resource table) of the rows ``ids``, by id."""
    if not ids:
        return {}
    id_column = name.class_.id
    return dict(session.execute(select(id_column, name).where(id_column.in_(ids))).all())
