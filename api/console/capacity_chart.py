"""The Capacity page's chart, drawn on the server as SVG (docs/architecture.md §5.10, §7.8).

One row per resource group (licence pools, workstation capabilities, examiner skills and all
examiners): a dark bar for how busy it is in shift hours and a light one for what the open work
needs against what it offers over the horizon; the bottleneck's row is marked.
"""

from __future__ import annotations

from html import escape
from typing import Any

from api.console.render import PALETTE
from scheduler.planning.capacity import hours, percent, resource_name

BUSY = PALETTE["link"][0]  # dark blue on white
NEED = "#9cb8d9"  # light: a bar, not text
TEXT = PALETTE["text"][0]
MARK = PALETTE["bad"][0]
SCALE_MAX = 4.0  # needed/available is drawn up to 400 %; more is written, not drawn


def rows(figures: dict[str, Any]) -> list[dict[str, Any]]:
    """The chart's rows: every pool and capability, the skills jobs need, all examiners."""
    out = []
    bottleneck = figures.get("bottleneck") or {}
    for key in ("by_pool", "by_capability", "by_skill"):
        for load in figures.get(key, []):
            if not load["demand_minutes"] and not load["planned_minutes"]:
                continue
            out.append(
                {
                    **load,
                    "label": resource_name(load["kind"], load["id"], load["units"]),
                    "bottleneck": (load["kind"], load["id"])
                    == (bottleneck.get("kind"), bottleneck.get("id")),
                }
            )
    examiners = figures["examiners"]
    out.append({**examiners, "label": f"all examiners ({examiners['units']})", "bottleneck": False})
    return out


def capacity_svg(figures: dict[str, Any], width: int = 1100) -> str:
    items = rows(figures)
    left, right, top, row_h = 260, 150, 34, 40
    inner_w = width - left - right
    height = top + row_h * len(items) + 40
    peak = min(SCALE_MAX, max([1.0, *((i["pressure"] or 0.0) for i in items)]))
    step = 0.5 if peak <= 2 else 1.0
    ticks = [step * n for n in range(int(peak / step) + 1)]
    scale = ticks[-1] if ticks[-1] >= peak else ticks[-1] + step
    if scale not in ticks:
        ticks.append(scale)

    def x(share: float) -> float:
        return left + inner_w * min(share, scale) / scale

    out = [
        f'<svg class="chart" role="img" viewBox="0 0 {width} {height}" width="{width}" '
        f'height="{height}" aria-labelledby="capacity-title capacity-desc">',
        '<title id="capacity-title">How busy each resource is, and what the open work needs'
        "</title>",
        f'<desc id="capacity-desc">{escape(figures.get("sentence", ""))}</desc>',
        f'<rect x="{left}" y="6" width="14" height="12" fill="{BUSY}"/>'
        f'<text x="{left + 20}" y="16" fill="{TEXT}">busy in shift hours (planned)</text>'
        f'<rect x="{left + 260}" y="6" width="14" height="12" fill="{NEED}"/>'
        f'<text x="{left + 280}" y="16" fill="{TEXT}">needed / available over the horizon</text>',
    ]
    bottom = top + row_h * len(items)
    for tick in ticks:
        tx = x(tick)
        out.append(
            f'<line x1="{tx:.1f}" x2="{tx:.1f}" y1="{top - 4}" y2="{bottom}" '
            f'stroke="{"#57606a" if tick == 1 else "#d0d7de"}" stroke-width="1"/>'
            f'<text x="{tx:.1f}" y="{bottom + 16}" text-anchor="middle" fill="{TEXT}">'
            f"{round(tick * 100)} %</text>"
        )
    for n, item in enumerate(items):
        y = top + n * row_h
        busy = item["shift_share"] or 0.0
        need = item["pressure"] or 0.0
        label = escape(item["label"])
        weight = ' font-weight="bold"' if item["bottleneck"] else ""
        out.append(
            f'<text x="{left - 8}" y="{y + 16}" text-anchor="end" fill="{TEXT}"{weight}>'
            f"{label}</text>"
        )
        if item["bottleneck"]:
            out.append(
                f'<text x="{left - 8}" y="{y + 31}" text-anchor="end" fill="{MARK}" '
                f'font-weight="bold">bottleneck</text>'
            )
        out.append(
            f'<rect x="{left}" y="{y + 4}" width="{x(busy) - left:.1f}" height="14" '
            f'fill="{BUSY}"><title>{label}: {percent(busy)} busy in shift hours</title></rect>'
            f'<rect x="{left}" y="{y + 20}" width="{x(need) - left:.1f}" height="10" '
            f'fill="{NEED}"><title>{label}: {hours(item["demand_minutes"])} needed for '
            f"{hours(item['available_minutes'])}</title></rect>"
        )
        out.append(
            f'<text x="{left + inner_w + 8}" y="{y + 16}" fill="{TEXT}">{percent(busy)} busy'
            f'</text><text x="{left + inner_w + 8}" y="{y + 31}" fill="{TEXT}">'
            f"{percent(need)} needed</text>"
        )
    out.append("</svg>")
    return "".join(out)
