"""The Capacity and What-if pages of the console (docs/architecture.md §5.10, §5.11, §7.8).

Capacity reads the analysis stored with the published version. What-if posts the form through the
same validation (the API's ``WhatIfIn``) and service as ``POST /labs/{lab}/what-ifs``, so it is
checked and audited alike; its preview runs in a worker and the result page follows it live.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any
from urllib.parse import parse_qs
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Path, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import RedirectResponse, Response
from sqlalchemy import select

from api.console.auth import Page, page
from api.console.capacity_chart import capacity_svg
from api.console.render import minutes, percent, render
from api.deps import MANAGE, READ
from models import LicencePool
from scheduler.errors import Invalid
from scheduler.planning import views, whatif
from scheduler.planning.capacity import hours, resource_name
from scheduler.planning.publish import current_version
from scheduler.services import resources
from scheduler.services.vocabulary import vocabulary_of

router = APIRouter()
ReadPage = Annotated[Page, page(*READ)]
ManagePage = Annotated[Page, page(*MANAGE)]
GROUPS = (
    ("by_pool", "Licence pools"),
    ("by_capability", "Workstation capabilities"),
    ("by_skill", "Examiner skills"),
    ("by_examiner", "Examiners"),
)


@router.get("/labs/{lab}/capacity")
def capacity_page(
    request: Request, p: ReadPage, version: Annotated[int | None, Query(ge=1)] = None
) -> Response:
    session, lab = p.ctx.session, p.ctx.lab
    found = (
        views.get_version(session, lab, version)
        if version is not None
        else current_version(session, lab)
    )
    figures = (found.kpis or {}).get("capacity") if found is not None else None
    return render(
        request,
        "capacity.html",
        viewer=p.viewer,
        lab=lab,
        current="capacity",
        title="Capacity",
        version=found,
        figures=figures,
        chart=capacity_svg(figures) if figures else None,
        groups=[(title, figures.get(key, [])) for key, title in GROUPS] if figures else [],
        hours=hours,
        name=resource_name,
    )


# ---- what-if ------------------------------------------------------------------------------


def _form_values(p: Page) -> dict[str, Any]:
    session, lab = p.ctx.session, p.ctx.lab
    vocabulary = vocabulary_of(session, lab)
    return {
        "examiners": resources.active_examiners(session, lab),
        "workstations": resources.active_workstations(session, lab),
        "pools": list(
            session.scalars(
                select(LicencePool).where(LicencePool.lab_id == lab.id).order_by(LicencePool.name)
            )
        ),
        "levels": sorted(lab.priority_levels, key=lambda level: level.rank),
        "skills": vocabulary.of("skill"),
        "capabilities": vocabulary.of("capability"),
        "recent": [
            {**whatif.state_of(session, w), "described": whatif.change_lines(w.changes)}
            for w in whatif.list_what_ifs(session, lab, limit=10)
        ],
    }


@router.get("/labs/{lab}/what-if")
def what_if_page(request: Request, p: ManagePage) -> Response:
    return render(
        request,
        "whatif.html",
        viewer=p.viewer,
        lab=p.ctx.lab,
        current="what-if",
        title="What-if",
        **_form_values(p),
    )


def _whole(fields: dict[str, list[str]], name: str, default: int = 0) -> int:
    text = (fields.get(name) or [""])[0].strip()
    if not text:
        return default
    try:
        return int(text)
    except ValueError:
        raise Invalid(f"{name.replace('_', ' ')} must be a whole number, got {text!r}") from None


def changes_of_form(fields: dict[str, list[str]], p: Page) -> dict[str, Any]:
    """The form as the API's what-if body: only what differs from the lab as it is."""
    values = _form_values(p)
    body: dict[str, Any] = {}
    if count := _whole(fields, "add_examiners"):
        add: dict[str, Any] = {"count": count, "skills": fields.get("add_skill", [])}
        like = (fields.get("like") or [""])[0]
        if like:
            add["like"] = like
        body["add_examiners"] = [add]
    if removed := fields.get("remove_examiner"):
        body["remove_examiners"] = removed
    if count := _whole(fields, "add_workstations"):
        body["add_workstations"] = [
            {
                "count": count,
                "capabilities": fields.get("add_capability", []),
                "capacity": _whole(fields, "workstation_capacity", 1),
            }
        ]
    if removed := fields.get("remove_workstation"):
        body["remove_workstations"] = removed
    licences = []
    for pool in values["pools"]:
        wanted = _whole(fields, f"licences_{pool.name}", pool.capacity)
        if wanted != pool.capacity:
            licences.append({"pool": pool.name, "capacity": wanted})
    if licences:
        body["licences"] = licences
    if minutes := _whole(fields, "overtime_minutes"):
        body["overtime"] = {"minutes_per_day": minutes}
    if cover := fields.get("weekend_examiner"):
        body["weekend"] = {
            "examiners": cover,
            "start": (fields.get("weekend_start") or ["08:00"])[0] or "08:00",
            "minutes": _whole(fields, "weekend_minutes", 60),
        }
    targets = []
    for level in values["levels"]:
        wanted = _whole(fields, f"target_{level.code}", level.target_start_hours)
        if wanted != level.target_start_hours:
            targets.append({"level": level.code, "target_start_hours": wanted})
    if targets:
        body["targets"] = targets
    if limit := _whole(fields, "time_limit_seconds"):
        body["time_limit_seconds"] = limit
    return body


@router.post("/labs/{lab}/what-if")
async def create_what_if(request: Request, p: ManagePage) -> Response:
    from api.routers.capacity import WhatIfIn

    raw = await request.body()
    try:
        fields = parse_qs(raw.decode(), keep_blank_values=False, max_num_fields=400)
    except (UnicodeDecodeError, ValueError):
        raise Invalid("the form could not be read") from None

    def work() -> int:
        body = WhatIfIn.model_validate(changes_of_form(fields, p))
        created = whatif.create_what_if(
            p.ctx.session,
            p.ctx.lab,
            actor=p.actor,
            changes=body.model_dump(exclude={"time_limit_seconds"}, exclude_defaults=True),
            time_limit_seconds=body.time_limit_seconds,
        )
        return created.id

    what_if_id = await run_in_threadpool(work)
    return RedirectResponse(f"/ui/labs/{p.ctx.lab.code}/what-if/{what_if_id}", status_code=303)


def _result_values(p: Page, what_if_id: int) -> dict[str, Any]:
    found = whatif.get_what_if(p.ctx.session, p.ctx.lab, what_if_id)
    state = whatif.state_of(p.ctx.session, found)
    comparison = state["comparison"] or {}
    baseline, preview = comparison.get("baseline"), comparison.get("preview")
    levels = [level.code for level in sorted(p.ctx.lab.priority_levels, key=lambda lv: lv.rank)]
    return {
        "w": state,
        "described": whatif.change_lines(found.changes),
        "baseline": baseline,
        "preview": preview,
        "rows": comparison_rows(baseline, preview, levels, p.ctx.lab.timezone) if preview else [],
        "active": state["status"] in ("queued", "running"),
    }


def _day(value: str | None, tz: str) -> str:
    if value is None:
        return "no date"
    return f"{datetime.fromisoformat(value).astimezone(ZoneInfo(tz)):%a %d %b %Y}"


def _signed(value: float, unit: str = "") -> str:
    return "same" if not value else f"{value:+,.0f}{unit}"


def comparison_rows(
    baseline: dict[str, Any] | None, preview: dict[str, Any], levels: list[str], tz: str
) -> list[tuple[str, str, str, str]]:
    """(what, published, preview, change) for the side-by-side table, in words and units."""
    b = baseline or {}
    rows: list[tuple[str, str, str, str]] = []

    def count(label: str, key: str) -> None:
        was, now = b.get(key), preview.get(key)
        change = _signed(now - was) if was is not None and now is not None else "-"
        rows.append((label, "-" if was is None else f"{was:,}", f"{now:,}", change))

    count("Jobs scheduled in the horizon", "scheduled")
    count("Jobs left for later", "unscheduled")
    for code in levels:
        now = preview["on_target"].get(code)
        if now is None:
            continue
        was = (b.get("on_target") or {}).get(code)
        change = _signed(now["on_time"] - was["on_time"], " cases") if was else "-"
        rows.append(
            (
                f"{code}: waiting cases that start on target",
                f"{was['on_time']} of {was['cases']}" if was else "-",
                f"{now['on_time']} of {now['cases']}",
                change,
            )
        )
    for code in levels:
        if code not in preview["cleared_by"]:
            continue
        was, now = (b.get("cleared_by") or {}).get(code), preview["cleared_by"][code]
        change = "-"
        if was and now:
            days = (datetime.fromisoformat(now) - datetime.fromisoformat(was)).days
            when = "earlier" if days < 0 else "later"
            plural = "day" if abs(days) == 1 else "days"
            change = "same" if not days else f"{abs(days)} {plural} {when}"
        shown = _day(was, tz) if b else "-"
        rows.append((f"{code}: backlog cleared by", shown, _day(now, tz), change))
    was_share, now_share = b.get("examiner_share"), preview.get("examiner_share")
    rows.append(
        (
            "Examiners busy (attended time in their shifts)",
            percent(was_share),
            percent(now_share),
            _signed(100 * (now_share - was_share), " points")
            if was_share is not None and now_share is not None
            else "-",
        )
    )
    was_exp, now_exp = b.get("exposure") or {}, preview["exposure"]
    rows.append(
        (
            "Exposure planned",
            minutes(was_exp.get("planned_minutes")),
            minutes(now_exp["planned_minutes"]),
            _signed(now_exp["planned_minutes"] - was_exp.get("planned_minutes", 0), " min")
            if was_exp
            else "-",
        )
    )
    rows.append(
        (
            "Worst examiner day against its daily cap",
            percent(was_exp.get("worst_day_share")),
            percent(now_exp["worst_day_share"]),
            "-",
        )
    )
    rows.append(
        (
            "Exposure cap breaches (always none)",
            str(was_exp.get("breaches", "-")),
            str(now_exp["breaches"]),
            "-",
        )
    )
    return rows


@router.get("/labs/{lab}/what-if/{what_if_id}")
def what_if_result(
    request: Request, p: ManagePage, what_if_id: Annotated[int, Path(ge=1, le=2**31 - 1)]
) -> Response:
    return render(
        request,
        "whatif_result.html",
        viewer=p.viewer,
        lab=p.ctx.lab,
        current="what-if",
        title=f"What-if {what_if_id}",
        **_result_values(p, what_if_id),
    )


@router.get("/labs/{lab}/what-if/{what_if_id}/live")
def what_if_live(
    request: Request, p: ManagePage, what_if_id: Annotated[int, Path(ge=1, le=2**31 - 1)]
) -> Response:
    """The comparison alone, re-read by the page while the preview is queued or running."""
    return render(
        request,
        "_whatif_comparison.html",
        viewer=p.viewer,
        lab=p.ctx.lab,
        **_result_values(p, what_if_id),
    )
