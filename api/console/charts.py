"""Charts drawn on the server as SVG (docs/architecture.md §7.8): no script, no external asset."""

from __future__ import annotations

from html import escape

from api.console.render import PALETTE
from scheduler.planning.console import BacklogChart


def backlog_svg(chart: BacklogChart, width: int = 1100, height: int = 320) -> str:
    """Open cases per level at the start of each coming week, stacked (most urgent at the
    bottom), with the count on each column and a legend."""
    left, right, top, bottom = 48, 120, 16, 46
    inner_w, inner_h = width - left - right, height - top - bottom
    totals = [sum(chart.counts[c][i] for c in chart.levels) for i in range(len(chart.weeks))]
    peak = max([*totals, 1])
    step = max(1, -(-peak // 5))
    scale_top = step * -(-peak // step)
    slot = inner_w / max(1, len(chart.weeks))
    bar_w = slot * 0.7
    out = [
        f'<svg class="chart" role="img" viewBox="0 0 {width} {height}" width="{width}" '
        f'height="{height}" '
        f'aria-labelledby="backlog-title backlog-desc">',
        '<title id="backlog-title">Open cases per priority level, by week (forecast)</title>',
        f'<desc id="backlog-desc">{escape(_describe(chart))}</desc>',
    ]
    for tick in range(0, scale_top + 1, step):
        y = top + inner_h - inner_h * tick / scale_top
        out.append(
            f'<line x1="{left}" x2="{left + inner_w}" y1="{y:.1f}" y2="{y:.1f}" '
            f'stroke="#d0d7de" stroke-width="1"/>'
            f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end">{tick}</text>'
        )
    for i, day in enumerate(chart.weeks):
        x = left + i * slot + (slot - bar_w) / 2
        y = top + inner_h
        for code in chart.levels:
            count = chart.counts[code][i]
            if not count:
                continue
            h = inner_h * count / scale_top
            y -= h
            colour = PALETTE.get(code, PALETTE["other"])[1]
            out.append(
                f'<rect x="{x:.1f}" y="{y:.1f}" width="{bar_w:.1f}" height="{h:.1f}" '
                f'fill="{colour}"><title>{escape(code)}: {count} open cases at '
                f"{day:%d %b}</title></rect>"
            )
        out.append(
            f'<text x="{x + bar_w / 2:.1f}" y="{y - 4:.1f}" text-anchor="middle">{totals[i]}</text>'
        )
        label = "now" if i == 0 else f"{day:%d %b}"
        out.append(
            f'<text x="{x + bar_w / 2:.1f}" y="{top + inner_h + 16}" text-anchor="middle">'
            f"{label}</text>"
        )
    out.append(
        f'<text x="{left + inner_w / 2}" y="{height - 8}" text-anchor="middle">'
        "week starting (lab time); a case counts until its expected finish</text>"
    )
    for n, code in enumerate(chart.levels):
        y = top + 8 + n * 22
        colour = PALETTE.get(code, PALETTE["other"])[1]
        out.append(
            f'<rect x="{left + inner_w + 16}" y="{y - 10}" width="14" height="14" '
            f'fill="{colour}"/><text x="{left + inner_w + 36}" y="{y + 2}">{escape(code)}</text>'
        )
    out.append("</svg>")
    return "".join(out)


def _describe(chart: BacklogChart) -> str:
    first = {c: chart.counts[c][0] for c in chart.levels}
    last = {c: chart.counts[c][-1] for c in chart.levels}
    now = ", ".join(f"{c} {n}" for c, n in first.items())
    later = ", ".join(f"{c} {n}" for c, n in last.items())
    return f"Now: {now}. Week of {chart.weeks[-1]:%d %b}: {later}."
