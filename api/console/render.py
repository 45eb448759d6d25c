"""Templates, the palette and the formatting helpers of the console (docs/architecture.md §7.8)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, PackageLoader, select_autoescape

# Text and background pairs the console draws labels in: (foreground, background). Every pair
# keeps a contrast of at least 4.5:1 (WCAG AA for text), asserted by the console's tests.
PALETTE: dict[str, tuple[str, str]] = {
    "text": ("#1f2328", "#ffffff"),
    "muted": ("#57606a", "#ffffff"),
    "muted-on-panel": ("#4f5760", "#f3f5f7"),
    "link": ("#0a58ca", "#ffffff"),
    "nav": ("#ffffff", "#24324a"),
    "nav-current": ("#24324a", "#ffffff"),
    "button": ("#ffffff", "#0a58ca"),
    "danger": ("#ffffff", "#b3261e"),
    "ok": ("#0f5132", "#d1e7dd"),
    "warn": ("#664d03", "#fff3cd"),
    "bad": ("#842029", "#f8d7da"),
    "P1": ("#ffffff", "#b71c1c"),
    "P2": ("#1a1a1a", "#f57c00"),
    "P3": ("#1a1a1a", "#fbc02d"),
    "P4": ("#ffffff", "#2e7d32"),
    "P5": ("#ffffff", "#1565c0"),
    "other": ("#ffffff", "#6a1b9a"),
    "machine": ("#1a1a1a", "#cfd8dc"),
    "heat-0": ("#1f2328", "#f6f8fa"),
    "heat-1": ("#1f2328", "#d8f0dc"),
    "heat-2": ("#1f2328", "#fff1b8"),
    "heat-3": ("#1f2328", "#ffc98a"),
    "heat-4": ("#ffffff", "#b3261e"),
}
PRIORITY_CLASSES = ("P1", "P2", "P3", "P4", "P5")


def _luminance(colour: str) -> float:
    channels = [int(colour[i : i + 2], 16) / 255 for i in (1, 3, 5)]
    linear = [c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def contrast(foreground: str, background: str) -> float:
    """The WCAG 2 contrast ratio of two ``#rrggbb`` colours."""
    a, b = sorted((_luminance(foreground), _luminance(background)), reverse=True)
    return (a + 0.05) / (b + 0.05)


def palette_css() -> str:
    """The palette as CSS classes ``.c-<name>`` and variables, served at /ui/palette.css."""
    lines = [":root{"]
    lines += [f"--{name}-fg:{fg};--{name}-bg:{bg};" for name, (fg, bg) in PALETTE.items()]
    lines.append("}")
    lines += [f".c-{name}{{color:{fg};background:{bg}}}" for name, (fg, bg) in PALETTE.items()]
    return "\n".join(lines) + "\n"


def priority_class(code: str | None) -> str:
    return f"c-{code}" if code in PRIORITY_CLASSES else "c-other"


def local(value: datetime | None, tz: str, fmt: str = "%a %d %b %H:%M") -> str:
    if value is None:
        return "-"
    return value.astimezone(ZoneInfo(tz)).strftime(fmt)


def day_label(value: date) -> str:
    return value.strftime("%a %d %b")


def minutes(value: int | float | None) -> str:
    """Minutes as a person reads them: ``45 min``, ``2 h 30``."""
    if value is None:
        return "-"
    value = int(round(value))
    if value < 60:
        return f"{value} min"
    hours, rest = divmod(value, 60)
    return f"{hours} h {rest:02d}" if rest else f"{hours} h"


def percent(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.0f} %"


def words(code: str | None) -> str:
    return "" if not code else code.replace("_", " ")


environment = Environment(
    loader=PackageLoader("api.console", "templates"),
    autoescape=select_autoescape(default=True),
    trim_blocks=True,
    lstrip_blocks=True,
)
environment.filters.update(
    local=local,
    day=day_label,
    minutes=minutes,
    percent=percent,
    words=words,
    priority_class=priority_class,
)


def render(request: Request, template: str, status_code: int = 200, **values: Any) -> HTMLResponse:
    """A page: ``template`` with ``values``, the request and the console's navigation."""
    from api.console.app import nav_for

    viewer = values.get("viewer")
    lab = values.get("lab")
    values.setdefault("nav", nav_for(viewer, lab))
    values.setdefault("current", "")
    body = environment.get_template(template).render(request=request, root="/ui", **values)
    return HTMLResponse(body, status_code=status_code)
