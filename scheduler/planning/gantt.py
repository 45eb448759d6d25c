"""A self-contained Gantt page of a schedule: one HTML file, no scripts, no external assets.

Lanes are examiners (attended work) and workstations (machine work); bars are coloured by
priority and carry references only (case/device, stage). Times are shown in the lab's timezone.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from models import Examiner, Lab, ScheduleVersion, Workstation
from scheduler.planning import views
from scheduler.planning.views.placed import PlacedJob

COLOURS = {"P1": "#c62828", "P2": "#ef6c00", "P3": "#f9a825", "P4": "#2e7d32", "P5": "#1565c0"}
DEFAULT_COLOUR = "#6a1b9a"

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:16px;color:#222}
h1{font-size:20px;margin:0 0 4px}p.sub{margin:0 0 12px;color:#555;font-size:13px}
.legend span{display:inline-block;margin-right:12px;font-size:12px}
.legend i{display:inline-block;width:12px;height:12px;margin-right:4px;vertical-align:-2px}
.chart{position:relative;border:1px solid #ccc;margin-top:8px;overflow-x:auto}
.inner{position:relative;min-width:1200px}
.axis{position:relative;height:22px;border-bottom:1px solid #ccc;margin-left:160px}
.day{position:absolute;top:0;height:100%;border-left:1px solid #ddd;font-size:11px;
padding-left:3px;color:#555;white-space:nowrap;overflow:hidden}
.lane{position:relative;height:26px;border-bottom:1px solid #f0f0f0}
.lane.group{height:20px;background:#fafafa;font-weight:600;font-size:12px;line-height:20px;
padding-left:6px}
.label{position:absolute;left:0;width:154px;padding-left:6px;font-size:12px;line-height:26px;
white-space:nowrap;overflow:hidden;text-overflow:ellipsis}
.track{position:absolute;left:160px;right:0;top:0;bottom:0}
.grid{position:absolute;top:0;bottom:0;border-left:1px solid #f3f3f3}
.bar{position:absolute;top:4px;height:18px;border-radius:3px;color:#fff;font-size:10px;
line-height:18px;padding:0 3px;overflow:hidden;white-space:nowrap;box-sizing:border-box;
min-width:2px;opacity:.92}
.bar.machine{opacity:.6}
table{border-collapse:collapse;font-size:12px;margin-top:16px}
td,th{border:1px solid #ddd;padding:3px 6px;text-align:left}
"""


def _pct(t: datetime, start: datetime, span: float) -> float:
    return max(0.0, min(100.0, (t - start).total_seconds() / span * 100))


def render_gantt(
    *,
    title: str,
    subtitle: str,
    timezone: str,
    start: datetime,
    end: datetime,
    rows: Sequence[PlacedJob],
    examiners: Sequence[tuple[str, str]],
    workstations: Sequence[tuple[str, str]],
    summary: Sequence[tuple[str, str]] = (),
) -> str:
    """The page. ``examiners`` / ``workstations`` are ``(ref, display name)`` lanes in order."""
    tz = ZoneInfo(timezone)
    span = max(60.0, (end - start).total_seconds())
    esc = html.escape
    out: list[str] = [
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
        f"<title>{esc(title)}</title><style>{_CSS}</style></head><body>",
        f"<h1>{esc(title)}</h1><p class='sub'>{esc(subtitle)}</p>",
        "<div class='legend'>",
        *(f"<span><i style='background:{c}'></i>{esc(p)}</span>" for p, c in COLOURS.items()),
        "<span><i style='background:#999;opacity:.6'></i>machine time</span></div>",
        "<div class='chart'><div class='inner'><div class='axis'>",
    ]
    day = start.astimezone(tz).replace(hour=0, minute=0, second=0, microsecond=0)
    grid: list[float] = []
    while day.astimezone(tz) < end:
        left = _pct(day, start, span)
        next_day = (day + timedelta(days=1, hours=3)).replace(hour=0)  # DST-safe next midnight
        width = _pct(next_day, start, span) - left
        if width > 0:
            out.append(
                f"<div class='day' style='left:{left:.3f}%;width:{width:.3f}%'>"
                f"{esc(day.strftime('%a %d %b'))}</div>"
            )
            grid.append(left)
        day = next_day
    out.append("</div>")
    grid_html = "".join(f"<div class='grid' style='left:{g:.3f}%'></div>" for g in grid)

    def bar(r: PlacedJob, machine: bool) -> str:
        bar_start = r.starts_at
        minutes = r.machine_minutes if machine else r.attended_minutes
        bar_end = (r.starts_at + timedelta(minutes=minutes)) if minutes else r.ends_at
        if bar_end <= start or bar_start >= end:
            return ""
        left = _pct(bar_start, start, span)
        width = max(0.05, _pct(bar_end, start, span) - left)
        local = f"{bar_start.astimezone(tz):%a %H:%M}-{bar_end.astimezone(tz):%H:%M}"
        tip = f"{r.job} | {r.stage} | {r.priority} | {local}"
        if r.exposure_minutes:
            tip += f" | exposure {r.exposure_minutes} min (severity {r.severity})"
        colour = COLOURS.get(r.priority, DEFAULT_COLOUR)
        kind = "bar machine" if machine else "bar"
        return (
            f"<div class='{kind}' title='{esc(tip, quote=True)}' "
            f"style='left:{left:.3f}%;width:{width:.3f}%;background:{colour}'>"
            f"{esc(r.case)} {esc(r.stage)}</div>"
        )

    def lanes(group: str, refs: Sequence[tuple[str, str]], machine: bool) -> None:
        out.append(f"<div class='lane group'>{esc(group)}</div>")
        for ref, name in refs:
            mine = [r for r in rows if (r.workstation if machine else r.examiner) == ref]
            bars = "".join(bar(r, machine) for r in mine)
            label = f"{ref} {name}" if name and name != ref else ref
            out.append(
                f"<div class='lane'><div class='label' title='{esc(label, quote=True)}'>"
                f"{esc(label)}</div><div class='track'>{grid_html}{bars}</div></div>"
            )

    lanes("Examiners (attended work)", examiners, machine=False)
    lanes("Workstations (machine work)", workstations, machine=True)
    out.append("</div></div>")
    if summary:
        out.append("<table>")
        out.extend(f"<tr><th>{esc(k)}</th><td>{esc(v)}</td></tr>" for k, v in summary)
        out.append("</table>")
    out.append("</body></html>")
    return "".join(out)


def _percent(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.0f} %"


def gantt_summary(kpis: dict[str, Any]) -> list[tuple[str, str]]:
    by_reason = kpis.get("unscheduled_by_reason", {})
    return [
        ("scheduled jobs", str(kpis.get("scheduled"))),
        (
            "left for later",
            f"{kpis.get('unscheduled')} ("
            + ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in by_reason.items())
            + ")",
        ),
        ("P1 on time", _percent(kpis.get("p1_on_time"))),
        ("P2 on time", _percent(kpis.get("p2_on_time"))),
        ("gap to lower bound", _percent(kpis.get("gap"))),
        ("bottleneck", (kpis.get("capacity") or {}).get("sentence", "not analysed")),
    ]


def board_page(session: Session, lab: Lab, version: ScheduleVersion) -> str:
    """The Gantt page of one of the lab's versions, with the lab's active lanes."""
    rows = views.placed_jobs(session, version)
    examiners = session.execute(
        select(Examiner.external_ref, Examiner.display_name)
        .where(Examiner.lab_id == lab.id, Examiner.active.is_(True))
        .order_by(Examiner.external_ref)
    ).all()
    workstations = session.execute(
        select(Workstation.external_ref, Workstation.name)
        .where(Workstation.lab_id == lab.id, Workstation.active.is_(True))
        .order_by(Workstation.external_ref)
    ).all()
    kpis = version.kpis or {}
    end = datetime.fromisoformat(kpis["horizon_end"]) if kpis.get("horizon_end") else None
    if end is None:
        end = max((r.ends_at for r in rows), default=version.epoch)
    state = "published" if version.is_current else "not published"
    return render_gantt(
        title=f"labq - {lab.name} - schedule {version.id}",
        subtitle=f"{state}; times in {lab.timezone}; references only",
        timezone=lab.timezone,
        start=version.epoch,
        end=end,
        rows=rows,
        examiners=[(r, n) for r, n in examiners],
        workstations=[(r, n) for r, n in workstations],
        summary=gantt_summary(kpis),
    )
