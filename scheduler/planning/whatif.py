"""What-if previews as a service: create one, run it in a worker, compare it with the published
schedule (docs/architecture.md §5.11).

A what-if is a ``what_if`` row with the changes a supervisor asked for and a ``preview`` solve run
of its own. The worker applies the changes to the snapshot it loaded (`scheduler.core.whatif`),
solves, verifies and stores only the comparison on the row: no schedule version is written, so a
what-if is never published nor served as the current schedule.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, time
from typing import Any

from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from models import Examiner, Lab, LicencePool, ScheduleVersion, SolveRun, WhatIf, Workstation
from scheduler.core.plan import Plan
from scheduler.core.snapshot import Snapshot
from scheduler.core.verify import verify
from scheduler.core.whatif import (
    AddExaminers,
    AddWorkstations,
    Changes,
    WeekendCover,
    WhatIfError,
    apply_changes,
)
from scheduler.errors import DomainError, Invalid, NotFound
from scheduler.planning import views
from scheduler.planning.kpis import compute_kpis
from scheduler.planning.loading.idmap import IdMap
from scheduler.planning.runs import queue_run
from scheduler.services import audit
from scheduler.services.integrity import flush
from scheduler.services.vocabulary import require_known, uses_of

MAX_COUNT = 50


# ---- creating ---------------------------------------------------------------------------------


def _refs(session: Session, model: Any, column: Any, lab: Lab, active: bool = True) -> set[str]:
    query = select(column).where(model.lab_id == lab.id)
    if active:
        query = query.where(model.active.is_(True))
    return set(session.scalars(query))


def check_changes(session: Session, lab: Lab, changes: dict[str, Any]) -> None:
    """Refuse (422, every problem listed) changes that name what the lab does not have."""
    uses = []
    for i, add in enumerate(changes.get("add_examiners", [])):
        uses += uses_of(f"add_examiners[{i}].skills", "skill", add["skills"])
    for i, add in enumerate(changes.get("add_workstations", [])):
        uses += uses_of(f"add_workstations[{i}].capabilities", "capability", add["capabilities"])
    if uses:
        require_known(session, lab, uses)
    examiners = _refs(session, Examiner, Examiner.external_ref, lab)
    workstations = _refs(session, Workstation, Workstation.external_ref, lab)
    pools = _refs(session, LicencePool, LicencePool.name, lab, active=False)
    levels = {level.code for level in lab.priority_levels}
    problems: list[dict[str, str]] = []

    def known(path: str, ref: str | None, names: set[str], what: str) -> None:
        if ref is not None and ref not in names:
            problems.append(
                {
                    "field": path,
                    "message": f"{what} {ref!r} is not an active {what} of lab {lab.code!r}",
                }
            )

    for i, add in enumerate(changes.get("add_examiners", [])):
        known(f"add_examiners[{i}].like", add.get("like"), examiners, "examiner")
    for i, ref in enumerate(changes.get("remove_examiners", [])):
        known(f"remove_examiners[{i}]", ref, examiners, "examiner")
    for i, ref in enumerate(changes.get("remove_workstations", [])):
        known(f"remove_workstations[{i}]", ref, workstations, "workstation")
    for i, item in enumerate(changes.get("licences", [])):
        if item["pool"] not in pools:
            problems.append(
                {
                    "field": f"licences[{i}].pool",
                    "message": f"licence pool {item['pool']!r} is not a pool of lab {lab.code!r}",
                }
            )
    for key in ("overtime", "weekend"):
        for i, ref in enumerate((changes.get(key) or {}).get("examiners") or []):
            known(f"{key}.examiners[{i}]", ref, examiners, "examiner")
    for i, item in enumerate(changes.get("targets", [])):
        if item["level"] not in levels:
            problems.append(
                {
                    "field": f"targets[{i}].level",
                    "message": f"{item['level']!r} is not a priority level of lab {lab.code!r} "
                    f"({', '.join(sorted(levels))})",
                }
            )
    if not any(changes.get(key) for key in CHANGE_KEYS):
        problems.append({"field": "", "message": "a what-if needs at least one change"})
    if problems:
        raise Invalid.listing(problems)


CHANGE_KEYS = (
    "add_examiners",
    "remove_examiners",
    "add_workstations",
    "remove_workstations",
    "licences",
    "overtime",
    "weekend",
    "targets",
)


def create_what_if(
    session: Session,
    lab: Lab,
    *,
    actor: str,
    changes: dict[str, Any],
    time_limit_seconds: int | None = None,
) -> WhatIf:
    """Record a what-if and queue its preview run (its own: a what-if never joins another run)."""
    check_changes(session, lab, changes)
    run = queue_run(
        session,
        lab,
        actor=actor,
        mode="preview",
        time_limit_seconds=time_limit_seconds,
        reason="what-if",
        join=False,
    ).run
    current = session.scalar(_current(lab))
    what_if = WhatIf(
        lab_id=lab.id,
        solve_run_id=run.id,
        requested_by=actor[:64],
        changes=changes,
        baseline_version_id=current.id if current is not None else None,
    )
    session.add(what_if)
    flush(session)
    audit.record(
        session,
        actor=actor,
        action="what_if.create",
        entity_type="what_if",
        entity_id=what_if.id,
        lab_id=lab.id,
        after={"solve_run": run.id, "changes": changes},
    )
    return what_if


def _current(lab: Lab) -> Select[ScheduleVersion]:
    return select(ScheduleVersion).where(
        ScheduleVersion.lab_id == lab.id, ScheduleVersion.is_current.is_(True)
    )


def get_what_if(session: Session, lab: Lab, what_if_id: int) -> WhatIf:
    found = session.get(WhatIf, what_if_id)
    if found is None or found.lab_id != lab.id:
        raise NotFound(f"what-if {what_if_id} does not exist in lab {lab.code!r}")
    return found


def list_what_ifs(session: Session, lab: Lab, limit: int = 20) -> list[WhatIf]:
    return list(
        session.scalars(
            select(WhatIf).where(WhatIf.lab_id == lab.id).order_by(WhatIf.id.desc()).limit(limit)
        )
    )


def what_if_of_run(session: Session, run_id: int) -> WhatIf | None:
    return session.scalar(select(WhatIf).where(WhatIf.solve_run_id == run_id))


# ---- running ----------------------------------------------------------------------------------


def _clock(text: str) -> int:
    parsed = time.fromisoformat(text)
    return parsed.hour * 60 + parsed.minute


def core_changes(changes: dict[str, Any], snapshot: Snapshot, idmap: IdMap) -> Changes:
    """The stored changes in the engine's terms: a level's new target becomes due times."""
    overtime = changes.get("overtime") or {}
    weekend = changes.get("weekend")
    due: dict[str, int] = {}
    targets = {item["level"]: item["target_start_hours"] for item in changes.get("targets", [])}
    if targets:
        for job in snapshot.jobs:
            level = idmap.job_level.get(job.id)
            if level not in targets or job.id not in idmap.job_target_due:
                continue
            new = idmap.job_target_due[job.id] + 60 * (targets[level] - _level_target(idmap, job))
            if job.id in idmap.job_deadline:
                new = min(new, idmap.job_deadline[job.id])
            due[job.id] = max(0, new)
    return Changes(
        add_examiners=tuple(
            AddExaminers(
                count=add["count"],
                skills=frozenset(add["skills"]),
                like=add.get("like"),
                max_severity=add.get("max_severity"),
            )
            for add in changes.get("add_examiners", [])
        ),
        remove_examiners=tuple(changes.get("remove_examiners", [])),
        add_workstations=tuple(
            AddWorkstations(
                count=add["count"],
                capabilities=frozenset(add["capabilities"]),
                capacity=add.get("capacity", 1),
            )
            for add in changes.get("add_workstations", [])
        ),
        remove_workstations=tuple(changes.get("remove_workstations", [])),
        licences={item["pool"]: item["capacity"] for item in changes.get("licences", [])},
        overtime_minutes=overtime.get("minutes_per_day", 0),
        overtime_examiners=(
            tuple(overtime["examiners"]) if overtime.get("examiners") is not None else None
        ),
        weekend_cover=(
            WeekendCover(
                examiners=tuple(weekend["examiners"]),
                start=_clock(weekend.get("start", "08:00")),
                minutes=weekend["minutes"],
            )
            if weekend
            else None
        ),
        due=due,
    )


def _level_target(idmap: IdMap, job: Any) -> int:
    return idmap.level_target_hours.get(idmap.job_level.get(job.id, ""), 0)


@dataclass
class Prepared:
    """A what-if ready to solve: the changed snapshot, its id map and the baseline figures."""

    what_if_id: int
    snapshot: Snapshot
    idmap: IdMap
    baseline: dict[str, Any] | None


def prepare(
    session: Session, lab: Lab, run_id: int, snapshot: Snapshot, idmap: IdMap, now: datetime
) -> Prepared | None:
    """The what-if of preview run ``run_id``, applied to the loaded snapshot (None: not one)."""
    what_if = what_if_of_run(session, run_id)
    if what_if is None:
        return None
    try:
        changed = apply_changes(snapshot, core_changes(what_if.changes, snapshot, idmap))
    except WhatIfError as exc:
        raise DomainError(f"the what-if cannot be applied: {exc}") from None
    targets = {
        item["level"]: item["target_start_hours"] for item in what_if.changes.get("targets", [])
    }
    changed_idmap = idmap
    if targets:
        moved = dict(idmap.case_target_start)
        for case, level in idmap.case_level.items():
            if level in targets and case in moved:
                moved[case] += 60 * (targets[level] - idmap.level_target_hours.get(level, 0))
        changed_idmap = replace(idmap, case_target_start=moved)
    current = session.scalar(_current(lab))
    baseline = None
    if current is not None:
        backlog = views.backlog_report(session, lab, current, now)
        baseline = figures_of_kpis(
            current.kpis,
            {
                level["priority"]: _iso(level["expected_finish_latest"])
                for level in backlog["levels"]
                if level["cases"]
            },
        )
        baseline["version"] = current.id
        baseline["epoch"] = current.epoch.isoformat()
    return Prepared(what_if.id, changed, changed_idmap, baseline)


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def compare(prepared: Prepared, plan: Plan) -> dict[str, Any]:
    """The comparison stored on the what-if: the published schedule beside the preview."""
    violations = verify(prepared.snapshot, plan)
    if violations:  # solve never returns such a plan; never store figures of one
        raise DomainError(f"the preview plan breaks a hard rule: {violations[0]}")
    kpis = compute_kpis(prepared.snapshot, plan, prepared.idmap)
    preview = figures_of_kpis(kpis, cleared_by(prepared.snapshot, plan, prepared.idmap))
    preview["status"] = plan.status
    preview["solve_seconds"] = round(plan.solve_seconds, 3)
    preview["examiners"] = len(prepared.snapshot.examiners)
    return {"baseline": prepared.baseline, "preview": preview}


def cleared_by(snapshot: Snapshot, plan: Plan, idmap: IdMap) -> dict[str, str | None]:
    """Per level, when its last open job ends (planned or forecast); None if some has no date."""
    ends: dict[str, int | None] = {}
    placed = {a.job: a.end for a in plan.assignments}
    placed.update({f.job: f.end for f in plan.forecast})
    for job in snapshot.jobs:
        level = idmap.job_level.get(job.id, "?")
        end = placed.get(job.id)
        if level in ends and ends[level] is None:
            continue
        ends[level] = None if end is None else max(end, ends.get(level) or 0)
    return {
        level: idmap.timeline.at(end).isoformat() if end is not None else None
        for level, end in sorted(ends.items(), key=lambda item: idmap.level_rank.get(item[0], 99))
    }


def figures_of_kpis(kpis: dict[str, Any], cleared: dict[str, str | None]) -> dict[str, Any]:
    """What the comparison shows of one plan, from its key figures."""
    exposure = kpis.get("exposure", {})
    breaches = 0
    worst_share = 0.0
    for e in exposure.values():
        cap = e.get("daily_cap")
        if cap is not None:
            breaches += sum(1 for d in e.get("days", []) if d["planned"] + d["logged"] > cap)
        worst_share = max(worst_share, e.get("max_day_share") or 0.0)
    capacity = kpis.get("capacity") or {}
    return {
        "scheduled": kpis.get("scheduled"),
        "unscheduled": kpis.get("unscheduled"),
        "on_target": {
            code: {"cases": f["cases"], "on_time": f["on_time"], "rate": f["rate"]}
            for code, f in kpis.get("start_on_time_by_level", {}).items()
        },
        "cleared_by": cleared,
        "examiner_share": (kpis.get("utilization") or {}).get("examiner_share"),
        "exposure": {
            "planned_minutes": sum(e.get("planned_total", 0) for e in exposure.values()),
            "worst_day_share": round(worst_share, 4),
            "breaches": breaches,
        },
        "bottleneck": capacity.get("sentence"),
    }


def store_result(session: Session, what_if_id: int, result: dict[str, Any]) -> None:
    what_if = session.get(WhatIf, what_if_id)
    if what_if is None:
        raise DomainError(f"what-if {what_if_id} no longer exists")
    what_if.result = result
    flush(session)


def state_of(session: Session, what_if: WhatIf) -> dict[str, Any]:
    """A what-if as the API shows it: changes, its run's state, the comparison once done."""
    run = session.get(SolveRun, what_if.solve_run_id)
    assert run is not None
    return {
        "id": what_if.id,
        "lab": what_if.lab_id,
        "created_at": what_if.created_at,
        "requested_by": what_if.requested_by,
        "changes": what_if.changes,
        "solve_run": run.id,
        "status": run.status,
        "progress": run.progress,
        "error": run.error,
        "baseline_version": what_if.baseline_version_id,
        "comparison": what_if.result,
    }


def change_lines(changes: dict[str, Any]) -> list[str]:
    """The changes in plain words, one line each (the console and the comparison show them)."""
    lines = []
    for add in changes.get("add_examiners", []):
        like = f", shifts like {add['like']}" if add.get("like") else ""
        lines.append(f"add {add['count']} examiner(s) with {', '.join(add['skills'])}{like}")
    for ref in changes.get("remove_examiners", []):
        lines.append(f"remove examiner {ref}")
    for add in changes.get("add_workstations", []):
        lines.append(
            f"add {add['count']} workstation(s) with {', '.join(add['capabilities'])}"
            f" (capacity {add.get('capacity', 1)})"
        )
    for ref in changes.get("remove_workstations", []):
        lines.append(f"remove workstation {ref}")
    for item in changes.get("licences", []):
        lines.append(f"{item['pool']} licences: {item['capacity']}")
    overtime = changes.get("overtime")
    if overtime:
        who = ", ".join(overtime.get("examiners") or []) or "every examiner"
        lines.append(f"overtime {overtime['minutes_per_day']} min after each shift ({who})")
    weekend = changes.get("weekend")
    if weekend:
        lines.append(
            f"weekend cover {weekend.get('start', '08:00')} for {weekend['minutes']} min by "
            f"{', '.join(weekend['examiners'])}"
        )
    for item in changes.get("targets", []):
        lines.append(f"{item['level']} target start {item['target_start_hours']} h")
    return lines
