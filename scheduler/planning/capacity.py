"""The capacity analysis of a schedule version, in the lab's words (docs/architecture.md §5.10).

`capacity_figures` is computed when a version is stored (``kpis.capacity``), from the snapshot and
plan the version was made of, so the API, the console and ``labq demo`` read the same figures.
`bottleneck_sentence` names the bottleneck in one sentence, with hours and shares.
"""

from __future__ import annotations

from typing import Any

from scheduler.core.capacity import analyse, capacity_to_json
from scheduler.core.plan import Plan
from scheduler.core.snapshot import Snapshot
from scheduler.planning.loading.idmap import IdMap

STAGE_PLURALS = {
    "unlock": "unlocks",
    "acquire": "acquisitions",
    "process": "processing",
    "review": "reviews",
    "report": "reports",
}


def capacity_figures(snapshot: Snapshot, plan: Plan, idmap: IdMap) -> dict[str, Any]:
    figures = capacity_to_json(analyse(snapshot, plan, idmap.job_stage))
    figures["sentence"] = bottleneck_sentence(figures)
    return figures


def hours(minutes: int | None) -> str:
    """Minutes as whole hours with a thousands separator: ``2,058 h``."""
    return f"{round((minutes or 0) / 60):,} h"


def percent(share: float | None) -> str:
    return "-" if share is None else f"{round(share * 100)} %"


def resource_name(kind: str, ident: str, units: int) -> str:
    """How a supervisor names a resource group: "AXIOM licences (2)", "processing workstations"."""
    if kind == "pool":
        return f"{ident.upper()} licences ({units})"
    if kind == "capability":
        return f"{ident} workstations ({units})"
    if kind == "skill":
        return f"{ident} examiners ({units})"
    return "examiners"


def _find(figures: dict[str, Any], kind: str, ident: str) -> dict[str, Any] | None:
    group = {"pool": "by_pool", "capability": "by_capability", "skill": "by_skill"}.get(kind)
    for load in figures.get(group or "", []):
        if load["id"] == ident:
            return dict(load)
    return None


def bottleneck_sentence(figures: dict[str, Any]) -> str:
    """The bottleneck in one sentence, e.g. "AXIOM licences (2) are 89 % busy in shift hours
    (936 h needed for 652 h over the horizon); examiners 39 % busy (2,058 h of attended work for
    736 h of shifts); 425 reviews (and 27 other jobs) wait for processing." """
    examiners = figures["examiners"]
    staff = (
        f"examiners {percent(examiners['share'])} busy "
        f"({hours(examiners['demand_minutes'])} of attended work for "
        f"{hours(examiners['available_minutes'])} of shifts)"
    )
    b = figures.get("bottleneck")
    if b is None:
        left = figures.get("unscheduled_jobs", 0)
        if not left:
            return f"No bottleneck: every open job is planned within the horizon; {staff}."
        return (
            f"No resource is short: {left} jobs wait for other reasons (see each one's); {staff}."
        )
    load = _find(figures, b["kind"], b["id"]) or {}
    name = resource_name(b["kind"], b["id"], int(load.get("units", 0)))
    parts = [
        f"{name} are {percent(b['shift_share'])} busy in shift hours "
        f"({hours(load.get('demand_minutes'))} needed for "
        f"{hours(load.get('available_minutes'))} over the horizon)",
        staff,
    ]
    if b["waiting_behind"]:
        stages = b.get("waiting_by_stage") or {}
        top, count = next(iter(stages.items()), ("job", b["waiting_behind"]))
        what = STAGE_PLURALS.get(top, f"{top} jobs") if count != 1 else f"{top} job"
        via = STAGE_PLURALS.get(b.get("blocked_stage") or "", "it")
        more = b["waiting_behind"] - count
        tail = f" (and {more} other jobs)" if more else ""
        verb = "waits" if b["waiting_behind"] == 1 else "wait"
        parts.append(f"{count:,} {what}{tail} {verb} for {via}")
    elif b.get("blocked"):
        parts.append(f"{b['blocked']:,} jobs wait for it")
    text = "; ".join(parts)
    return text[0].upper() + text[1:] + "."
