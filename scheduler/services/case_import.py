"""Bulk, idempotent upsert of cases with their devices and jobs, keyed by external reference.

A case-management system pushes its view of some cases; the same payload pushed twice changes
nothing the second time. The whole batch is validated before anything is written, then written
with a handful of multi-row statements (tens of thousands of rows a second on either backend),
inside the caller's unit of work: a bad item raises a typed error naming it
(``cases[3].devices[0].jobs[1].after[0]``) and the caller's rollback leaves nothing stored.

Semantics: case, device and job fields in the payload replace the stored ones; a job's skills,
capabilities, pools, allowed examiners, workstation minutes and predecessors are replaced as a
whole. Devices and jobs that exist but are absent from the payload are left alone (use the single
routes to change them). New jobs start ``pending``; an existing job keeps its status and pin.
Predecessors name jobs of the same case: ``"D1/acquire"`` or, on the same device, ``"acquire"``.

Each created or changed case writes one audit event (``case.import``) whose digests cover the case
with all its devices and jobs.
"""

from __future__ import annotations

import copy
from collections import defaultdict, deque
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypedDict, TypeVar

from sqlalchemy import delete, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from models import (
    AuditEvent,
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
    Lab,
    LicencePool,
    PriorityLevel,
    Workstation,
)
from models.base import utcnow
from scheduler.errors import Invalid
from scheduler.services.audit import digest
from scheduler.services.integrity import integrity_error

CHUNK = 500
ACTION = "case.import"

T = TypeVar("T")


class JobItem(TypedDict):
    external_ref: str
    stage: str
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


class DeviceItem(TypedDict):
    external_ref: str
    kind: str
    arrived_at: datetime
    size_gb: int | None
    locked: bool
    jobs: list[JobItem]


class CaseItem(TypedDict):
    external_ref: str
    priority: str
    received_at: datetime
    legal_deadline_at: datetime | None
    status: str
    note: str | None
    devices: list[DeviceItem]


@dataclass(frozen=True)
class ImportResult:
    created: int
    updated: int
    unchanged: int


JOB_FIELDS = ("stage", "attended_minutes", "machine_minutes", "exposure_minutes", "severity")
JOB_SETS = ("skills", "capabilities", "pools", "allowed_examiners", "workstation_minutes", "after")
DEVICE_FIELDS = ("kind", "arrived_at", "size_gb", "locked")
CASE_FIELDS = ("priority", "received_at", "legal_deadline_at", "status", "note")


def _chunks(values: Sequence[T], size: int = CHUNK) -> Iterator[Sequence[T]]:
    for start in range(0, len(values), size):
        yield values[start : start + size]


def _instant(value: datetime | None) -> str | None:
    return None if value is None else value.astimezone(UTC).isoformat()


@dataclass
class _Lookups:
    """The lab's reference data, by name and by id."""

    levels: dict[str, int]
    level_codes: dict[int, str]
    pools: dict[str, int]
    pool_names: dict[int, str]
    examiners: dict[str, int]
    examiner_refs: dict[int, str]
    workstations: dict[str, int]
    workstation_refs: dict[int, str]

    @classmethod
    def load(cls, session: Session, lab: Lab) -> _Lookups:
        def pairs(stmt: Any) -> dict[Any, Any]:
            return dict(session.execute(stmt).all())

        levels = pairs(
            select(PriorityLevel.code, PriorityLevel.id).where(PriorityLevel.lab_id == lab.id)
        )
        pools = pairs(select(LicencePool.name, LicencePool.id).where(LicencePool.lab_id == lab.id))
        examiners = pairs(
            select(Examiner.external_ref, Examiner.id).where(Examiner.lab_id == lab.id)
        )
        workstations = pairs(
            select(Workstation.external_ref, Workstation.id).where(Workstation.lab_id == lab.id)
        )
        return cls(
            levels=levels,
            level_codes={v: k for k, v in levels.items()},
            pools=pools,
            pool_names={v: k for k, v in pools.items()},
            examiners=examiners,
            examiner_refs={v: k for k, v in examiners.items()},
            workstations=workstations,
            workstation_refs={v: k for k, v in workstations.items()},
        )


# --- validation of the payload on its own ---------------------------------------------------------


def _validate(items: Sequence[CaseItem], refs: _Lookups) -> None:
    seen_cases: dict[str, int] = {}
    for i, case in enumerate(items):
        at = f"cases[{i}]"
        ref = case["external_ref"]
        if ref in seen_cases:
            raise Invalid(
                f"{at}: case {ref!r} appears twice (also at cases[{seen_cases[ref]}])",
                field=f"{at}.external_ref",
                index=i,
            )
        seen_cases[ref] = i
        if case["priority"] not in refs.levels:
            raise Invalid(
                f"{at}: priority level {case['priority']!r} does not exist in this lab",
                field=f"{at}.priority",
                index=i,
            )
        seen_devices: set[str] = set()
        for j, device in enumerate(case["devices"]):
            d_at = f"{at}.devices[{j}]"
            if device["external_ref"] in seen_devices:
                raise Invalid(
                    f"{d_at}: device {device['external_ref']!r} appears twice in case {ref!r}",
                    field=f"{d_at}.external_ref",
                    index=i,
                )
            seen_devices.add(device["external_ref"])
            seen_jobs: set[str] = set()
            for k, job in enumerate(device["jobs"]):
                j_at = f"{d_at}.jobs[{k}]"
                if job["external_ref"] in seen_jobs:
                    raise Invalid(
                        f"{j_at}: job {job['external_ref']!r} appears twice on device "
                        f"{device['external_ref']!r}",
                        field=f"{j_at}.external_ref",
                        index=i,
                    )
                seen_jobs.add(job["external_ref"])
                for key, known, what in (
                    ("pools", refs.pools, "licence pool"),
                    ("allowed_examiners", refs.examiners, "examiner"),
                    ("workstation_minutes", refs.workstations, "workstation"),
                ):
                    values = job[key]  # type: ignore[literal-required]
                    for m, name in enumerate(values):
                        if name not in known:
                            where = f".{name}" if isinstance(values, dict) else f"[{m}]"
                            raise Invalid(
                                f"{j_at}: {what} {name!r} does not exist in this lab",
                                field=f"{j_at}.{key}{where}",
                                index=i,
                            )


# --- the stored state, canonically ---------------------------------------------------------------


@dataclass
class _Stored:
    """Existing rows of the cases named in the payload."""

    cases: dict[str, dict[str, Any]]  # ref -> case row
    case_trees: dict[str, dict[str, Any]]  # ref -> canonical tree
    device_ids: dict[tuple[int, str], int]  # (case id, device ref) -> id
    job_ids: dict[tuple[int, str, str], int]  # (case id, device ref, job ref) -> id


def _load(session: Session, lab: Lab, refs: Sequence[str], lookups: _Lookups) -> _Stored:
    cases: dict[str, dict[str, Any]] = {}
    for chunk in _chunks(refs):
        for row in session.execute(
            select(
                Case.id,
                Case.external_ref,
                Case.priority_level_id,
                Case.received_at,
                Case.legal_deadline_at,
                Case.status,
                Case.note,
            ).where(Case.lab_id == lab.id, Case.external_ref.in_(chunk))
        ).mappings():
            cases[row["external_ref"]] = dict(row)
    case_ref_by_id = {row["id"]: ref for ref, row in cases.items()}
    trees: dict[str, dict[str, Any]] = {
        ref: {
            "priority": lookups.level_codes.get(row["priority_level_id"], "?"),
            "received_at": _instant(row["received_at"]),
            "legal_deadline_at": _instant(row["legal_deadline_at"]),
            "status": row["status"],
            "note": row["note"],
            "devices": {},
        }
        for ref, row in cases.items()
    }
    devices: dict[int, tuple[str, str]] = {}  # device id -> (case ref, device ref)
    device_ids: dict[tuple[int, str], int] = {}
    for case_chunk in _chunks(list(case_ref_by_id)):
        for d in session.execute(
            select(
                Device.id,
                Device.case_id,
                Device.external_ref,
                Device.kind,
                Device.arrived_at,
                Device.size_gb,
                Device.locked,
            ).where(Device.case_id.in_(case_chunk))
        ).mappings():
            case_ref = case_ref_by_id[d["case_id"]]
            devices[d["id"]] = (case_ref, d["external_ref"])
            device_ids[(d["case_id"], d["external_ref"])] = d["id"]
            trees[case_ref]["devices"][d["external_ref"]] = {
                "kind": d["kind"],
                "arrived_at": _instant(d["arrived_at"]),
                "size_gb": d["size_gb"],
                "locked": bool(d["locked"]),
                "jobs": {},
            }
    jobs: dict[int, dict[str, Any]] = {}
    job_place: dict[int, tuple[str, str, str]] = {}  # job id -> (case ref, device ref, job ref)
    job_ids: dict[tuple[int, str, str], int] = {}
    for device_chunk in _chunks(list(devices)):
        for j in session.execute(
            select(
                Job.id,
                Job.device_id,
                Job.external_ref,
                Job.stage,
                Job.attended_minutes,
                Job.machine_minutes,
                Job.exposure_minutes,
                Job.severity,
            ).where(Job.device_id.in_(device_chunk))
        ).mappings():
            case_ref, device_ref = devices[j["device_id"]]
            job_place[j["id"]] = (case_ref, device_ref, j["external_ref"])
            job_ids[(cases[case_ref]["id"], device_ref, j["external_ref"])] = j["id"]
            node: dict[str, Any] = {f: j[f] for f in JOB_FIELDS}
            node.update({s: [] for s in JOB_SETS})
            node["workstation_minutes"] = {}
            jobs[j["id"]] = node
            trees[case_ref]["devices"][device_ref]["jobs"][j["external_ref"]] = node
    job_list = list(jobs)
    for job_chunk in _chunks(job_list):
        for job_id, skill in session.execute(
            select(JobSkill.job_id, JobSkill.skill).where(JobSkill.job_id.in_(job_chunk))
        ):
            jobs[job_id]["skills"].append(skill)
        for job_id, capability in session.execute(
            select(JobCapability.job_id, JobCapability.capability).where(
                JobCapability.job_id.in_(job_chunk)
            )
        ):
            jobs[job_id]["capabilities"].append(capability)
        for job_id, pool_id in session.execute(
            select(JobLicencePool.job_id, JobLicencePool.pool_id).where(
                JobLicencePool.job_id.in_(job_chunk)
            )
        ):
            jobs[job_id]["pools"].append(lookups.pool_names.get(pool_id, f"#{pool_id}"))
        for job_id, examiner_id in session.execute(
            select(JobAllowedExaminer.job_id, JobAllowedExaminer.examiner_id).where(
                JobAllowedExaminer.job_id.in_(job_chunk)
            )
        ):
            jobs[job_id]["allowed_examiners"].append(
                lookups.examiner_refs.get(examiner_id, f"#{examiner_id}")
            )
        for job_id, ws_id, minutes in session.execute(
            select(
                JobWorkstationMinutes.job_id,
                JobWorkstationMinutes.workstation_id,
                JobWorkstationMinutes.machine_minutes,
            ).where(JobWorkstationMinutes.job_id.in_(job_chunk))
        ):
            jobs[job_id]["workstation_minutes"][
                lookups.workstation_refs.get(ws_id, f"#{ws_id}")
            ] = minutes
    for job_chunk in _chunks(job_list):
        for job_id, pred_id in session.execute(
            select(JobPredecessor.job_id, JobPredecessor.predecessor_id).where(
                JobPredecessor.job_id.in_(job_chunk)
            )
        ):
            place = job_place.get(pred_id)
            if place is None or place[0] != job_place[job_id][0]:
                continue  # a link outside the case is not part of the comparison
            jobs[job_id]["after"].append(f"{place[1]}/{place[2]}")
    for node in jobs.values():
        for key in ("skills", "capabilities", "pools", "allowed_examiners", "after"):
            node[key] = sorted(node[key])
    return _Stored(
        cases=cases,
        case_trees=trees,
        device_ids=device_ids,
        job_ids=job_ids,
    )


def _desired_job(job: JobItem, device_ref: str) -> dict[str, Any]:
    node: dict[str, Any] = {f: job[f] for f in JOB_FIELDS}  # type: ignore[literal-required]
    node["skills"] = sorted(set(job["skills"]))
    node["capabilities"] = sorted(set(job["capabilities"]))
    node["pools"] = sorted(set(job["pools"]))
    node["allowed_examiners"] = sorted(set(job["allowed_examiners"]))
    node["workstation_minutes"] = dict(sorted(job["workstation_minutes"].items()))
    node["after"] = sorted({a if "/" in a else f"{device_ref}/{a}" for a in job["after"]})
    return node


def _merge(before: dict[str, Any] | None, case: CaseItem) -> dict[str, Any]:
    tree = copy.deepcopy(before) if before is not None else {"devices": {}}
    tree["priority"] = case["priority"]
    tree["received_at"] = _instant(case["received_at"])
    tree["legal_deadline_at"] = _instant(case["legal_deadline_at"])
    tree["status"] = case["status"]
    tree["note"] = case["note"]
    for device in case["devices"]:
        node = tree["devices"].setdefault(device["external_ref"], {"jobs": {}})
        node["kind"] = device["kind"]
        node["arrived_at"] = _instant(device["arrived_at"])
        node["size_gb"] = device["size_gb"]
        node["locked"] = bool(device["locked"])
        for job in device["jobs"]:
            node["jobs"][job["external_ref"]] = _desired_job(job, device["external_ref"])
    return tree


def _check_graph(index: int, case: CaseItem, tree: dict[str, Any]) -> None:
    """Every predecessor exists in the case and the chain has no cycle."""
    where: dict[str, str] = {}
    for j, device in enumerate(case["devices"]):
        for k, job in enumerate(device["jobs"]):
            where[f"{device['external_ref']}/{job['external_ref']}"] = (
                f"cases[{index}].devices[{j}].jobs[{k}]"
            )
            for m, ref in enumerate(job["after"]):
                full = ref if "/" in ref else f"{device['external_ref']}/{ref}"
                dev, _, name = full.partition("/")
                if name not in tree["devices"].get(dev, {}).get("jobs", {}):
                    at = f"cases[{index}].devices[{j}].jobs[{k}].after[{m}]"
                    raise Invalid(
                        f"{at}: {ref!r} is not a job of case {case['external_ref']!r}",
                        field=at,
                        index=index,
                    )
    successors: dict[str, list[str]] = defaultdict(list)
    indegree: dict[str, int] = {}
    for dev, node in tree["devices"].items():
        for name, job in node["jobs"].items():
            key = f"{dev}/{name}"
            indegree.setdefault(key, 0)
            for pred in job["after"]:
                successors[pred].append(key)
                indegree[key] = indegree.get(key, 0) + 1
    queue = deque(k for k, n in indegree.items() if n == 0)
    done = 0
    while queue:
        key = queue.popleft()
        done += 1
        for nxt in successors[key]:
            indegree[nxt] -= 1
            if indegree[nxt] == 0:
                queue.append(nxt)
    if done < len(indegree):
        stuck = sorted(k for k, n in indegree.items() if n > 0)
        named = next((where[k] for k in stuck if k in where), f"cases[{index}]")
        raise Invalid(
            f"{named}: predecessors form a cycle in case {case['external_ref']!r} "
            f"({', '.join(stuck[:5])})",
            field=f"{named}.after",
            index=index,
        )


# --- writing -------------------------------------------------------------------------------------


def _insert_returning(
    session: Session, model: Any, rows: list[dict[str, Any]], *key: Any
) -> dict[tuple[Any, ...], int]:
    """Insert rows in batches; map each row's natural key to its new id."""
    ids: dict[tuple[Any, ...], int] = {}
    if not rows:
        return ids
    for chunk in _chunks(rows, 1000):
        result = session.execute(insert(model).returning(model.id, *key), list(chunk))
        for row in result:
            ids[tuple(row[1:])] = row[0]
    return ids


def _insert(session: Session, model: Any, rows: list[dict[str, Any]]) -> None:
    for chunk in _chunks(rows, 1000):
        session.execute(insert(model), list(chunk))


def _delete_for_jobs(session: Session, model: Any, job_ids: Iterable[int]) -> None:
    ids = sorted(set(job_ids))
    for chunk in _chunks(ids):
        session.execute(delete(model).where(model.job_id.in_(chunk)))


_SET_MODELS: dict[str, Any] = {
    "skills": JobSkill,
    "capabilities": JobCapability,
    "pools": JobLicencePool,
    "allowed_examiners": JobAllowedExaminer,
    "workstation_minutes": JobWorkstationMinutes,
    "after": JobPredecessor,
}


def _set_rows(
    name: str,
    job_id: int,
    case_id: int,
    node: dict[str, Any],
    lookups: _Lookups,
    job_ids: Mapping[tuple[int, str, str], int],
) -> Iterator[dict[str, Any]]:
    """The rows of one of a job's sets (skills, pools, predecessors, ...)."""
    if name == "skills":
        yield from ({"job_id": job_id, "skill": s} for s in node["skills"])
    elif name == "capabilities":
        yield from ({"job_id": job_id, "capability": c} for c in node["capabilities"])
    elif name == "pools":
        yield from ({"job_id": job_id, "pool_id": lookups.pools[p]} for p in node["pools"])
    elif name == "allowed_examiners":
        for ref in node["allowed_examiners"]:
            yield {"job_id": job_id, "examiner_id": lookups.examiners[ref]}
    elif name == "workstation_minutes":
        for ref, minutes in node["workstation_minutes"].items():
            yield {
                "job_id": job_id,
                "workstation_id": lookups.workstations[ref],
                "machine_minutes": minutes,
            }
    else:
        for pred in node["after"]:
            dev, _, jref = pred.partition("/")
            yield {"job_id": job_id, "predecessor_id": job_ids[(case_id, dev, jref)]}


def import_cases(
    session: Session, lab: Lab, items: Sequence[CaseItem], *, actor: str
) -> ImportResult:
    """Upsert ``items`` (cases with devices and jobs) into ``lab``; see the module docstring."""
    lookups = _Lookups.load(session, lab)
    _validate(items, lookups)
    stored = _load(session, lab, [c["external_ref"] for c in items], lookups)
    created = updated = unchanged = 0
    plans: list[tuple[int, CaseItem, dict[str, Any] | None, dict[str, Any]]] = []
    for index, case in enumerate(items):
        before = stored.case_trees.get(case["external_ref"])
        after = _merge(before, case)
        _check_graph(index, case, after)
        if before is None:
            created += 1
        elif after != before:
            updated += 1
        else:
            unchanged += 1
            continue
        plans.append((index, case, before, after))
    if plans:
        try:
            _write(session, lab, lookups, stored, plans, actor)
        except IntegrityError as exc:
            raise integrity_error(exc) from None
    return ImportResult(created=created, updated=updated, unchanged=unchanged)


def _write(
    session: Session,
    lab: Lab,
    lookups: _Lookups,
    stored: _Stored,
    plans: list[tuple[int, CaseItem, dict[str, Any] | None, dict[str, Any]]],
    actor: str,
) -> None:
    now = utcnow()
    # Cases.
    new_cases = [
        {
            "lab_id": lab.id,
            "external_ref": case["external_ref"],
            "priority_level_id": lookups.levels[case["priority"]],
            "received_at": case["received_at"],
            "legal_deadline_at": case["legal_deadline_at"],
            "status": case["status"],
            "note": case["note"],
            "created_at": now,
            "updated_at": now,
        }
        for _, case, before, _ in plans
        if before is None
    ]
    case_ids = {
        ref: stored.cases[ref]["id"]
        for ref in (c["external_ref"] for _, c, _, _ in plans)
        if ref in stored.cases
    }
    for (ref,), new_id in _insert_returning(session, Case, new_cases, Case.external_ref).items():
        case_ids[ref] = new_id
    changed_cases = [
        {
            "id": case_ids[case["external_ref"]],
            "priority_level_id": lookups.levels[case["priority"]],
            "received_at": case["received_at"],
            "legal_deadline_at": case["legal_deadline_at"],
            "status": case["status"],
            "note": case["note"],
            "updated_at": now,
        }
        for _, case, before, after in plans
        if before is not None and any(before[f] != after[f] for f in CASE_FIELDS)
    ]
    for chunk in _chunks(changed_cases, 1000):
        session.execute(update(Case), list(chunk))

    # Devices.
    device_ids = dict(stored.device_ids)
    new_devices, changed_devices = [], []
    for _, case, before, after in plans:
        case_id = case_ids[case["external_ref"]]
        for device in case["devices"]:
            ref = device["external_ref"]
            values = {
                "kind": device["kind"],
                "arrived_at": device["arrived_at"],
                "size_gb": device["size_gb"],
                "locked": device["locked"],
                "updated_at": now,
            }
            old = before["devices"].get(ref) if before is not None else None
            if old is None:
                new_devices.append(
                    {"case_id": case_id, "external_ref": ref, "created_at": now, **values}
                )
            elif any(old[f] != after["devices"][ref][f] for f in DEVICE_FIELDS):
                changed_devices.append({"id": device_ids[(case_id, ref)], **values})
    for (case_id, ref), new_id in _insert_returning(
        session, Device, new_devices, Device.case_id, Device.external_ref
    ).items():
        device_ids[(case_id, ref)] = new_id
    for chunk in _chunks(changed_devices, 1000):
        session.execute(update(Device), list(chunk))

    # Jobs, and which of their sets must be rewritten.
    job_ids = dict(stored.job_ids)
    new_jobs, changed_jobs = [], []
    pending_sets: list[tuple[int, str, str, dict[str, Any], tuple[str, ...], bool]] = []
    for _, case, before, after in plans:
        case_id = case_ids[case["external_ref"]]
        for device in case["devices"]:
            dref = device["external_ref"]
            old_jobs = (before["devices"].get(dref) or {}).get("jobs", {}) if before else {}
            for job in device["jobs"]:
                jref = job["external_ref"]
                new = after["devices"][dref]["jobs"][jref]
                old = old_jobs.get(jref)
                values = {f: new[f] for f in JOB_FIELDS}
                if old is None:
                    new_jobs.append(
                        {
                            "lab_id": lab.id,
                            "device_id": device_ids[(case_id, dref)],
                            "external_ref": jref,
                            "status": "pending",
                            "created_at": now,
                            "updated_at": now,
                            **values,
                        }
                    )
                    pending_sets.append((case_id, dref, jref, new, JOB_SETS, False))
                    continue
                if old == new:
                    continue
                job_id = job_ids[(case_id, dref, jref)]
                changed_jobs.append({"id": job_id, "updated_at": now, **values})
                sets = tuple(s for s in JOB_SETS if old[s] != new[s])
                pending_sets.append((case_id, dref, jref, new, sets, True))
    device_place = {v: k for k, v in device_ids.items()}
    for (device_id, jref), new_id in _insert_returning(
        session, Job, new_jobs, Job.device_id, Job.external_ref
    ).items():
        case_id, dref = device_place[device_id]
        job_ids[(case_id, dref, jref)] = new_id
    for chunk in _chunks(changed_jobs, 1000):
        session.execute(update(Job), list(chunk))

    # Job sets: delete what changed on existing jobs, insert the new contents.
    for name, model in _SET_MODELS.items():
        targets = [
            (job_ids[(case_id, dref, jref)], case_id, node, existed)
            for case_id, dref, jref, node, sets, existed in pending_sets
            if name in sets
        ]
        _delete_for_jobs(session, model, (job_id for job_id, _, _, existed in targets if existed))
        rows: list[dict[str, Any]] = []
        for job_id, case_id, node, _ in targets:
            rows.extend(_set_rows(name, job_id, case_id, node, lookups, job_ids))
        _insert(session, model, rows)

    # One audit event per created or changed case.
    _insert(
        session,
        AuditEvent,
        [
            {
                "at": now,
                "actor": actor,
                "action": ACTION,
                "entity_type": "case",
                "entity_id": str(case_ids[case["external_ref"]]),
                "lab_id": lab.id,
                "before_digest": digest(before),
                "after_digest": digest(after),
            }
            for _, case, before, after in plans
        ],
    )
