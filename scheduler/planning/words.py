"""Reasons, warnings and explanations in the lab's own terms.

The engine writes times as ``day 3 09:30`` (``scheduler.core.plan.clock``) and windows as
``[4320, 4500)``, minutes from the snapshot's epoch, and a rule instance as
``exposure_daily_cap[e=E1,d=0]``; a supervisor reads ``Thu 3 Dec 10:30`` in the lab's time zone
and ``exposure_daily_cap (E1 on Thu 3 Dec)``. Everything stored for people passes through
``in_lab_terms``.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from scheduler.core.plan import CLOCK_PATTERN

if TYPE_CHECKING:  # the loader writes its warnings with `at_local`
    from scheduler.planning.loading.timeline import Timeline

_CLOCK = re.compile(CLOCK_PATTERN)
_WINDOW = re.compile(r"\[(-?\d+), (-?\d+)\)")
# A rule instance as the engine names it: ``exposure_daily_cap[e=E1,d=0]``, ``pool_capacity[p=x]``
_QUALIFIED = re.compile(r"\[(e|w|p|j)=([^,\]]+)(?:,(d|w)=(\d+))?\]")


def at_local(instant: datetime, tz: ZoneInfo) -> str:
    """``Thu 3 Dec 10:30``: an instant as the lab reads it."""
    local = instant.astimezone(tz)
    return f"{local:%a} {local.day} {local:%b %H:%M}"


def local_time(timeline: Timeline, minute: int) -> str:
    """A time of the snapshot as the lab reads it: ``Thu 3 Dec 10:30``."""
    return at_local(timeline.at(minute), timeline.tz)


def local_window(timeline: Timeline, start: int, end: int) -> str:
    """``Thu 3 Dec 10:30-12:00``, or both ends in full when the window spans days."""
    first, last = (timeline.at(m).astimezone(timeline.tz) for m in (start, end))
    if first.date() == last.date():
        return f"{local_time(timeline, start)}-{last:%H:%M}"
    return f"{local_time(timeline, start)} to {local_time(timeline, end)}"


def in_lab_terms(text: str, timeline: Timeline) -> str:
    """``text`` with every engine time and window rewritten in the lab's time zone."""

    def clock(match: re.Match[str]) -> str:
        day, hour, minute = (int(g) for g in match.groups())
        return local_time(timeline, day * 1440 + hour * 60 + minute)

    def window(match: re.Match[str]) -> str:
        return local_window(timeline, int(match.group(1)), int(match.group(2)))

    def qualified(match: re.Match[str]) -> str:
        kind, name, period, index = match.groups()
        what = {"e": name, "w": f"workstation {name}", "p": f"the {name} licences"}.get(
            kind, job_name(name)
        )
        if period == "d" and int(index) < len(timeline.day_dates):
            day = timeline.day_dates[int(index)]
            return f" ({what} on {day:%a} {day.day} {day:%b})"
        if period == "w" and int(index) < len(timeline.weeks):
            start = timeline.at(timeline.weeks[int(index)][0]).astimezone(timeline.tz)
            return f" ({what}, the week of {start:%a} {start.day} {start:%b})"
        return f" ({what})"

    return _QUALIFIED.sub(qualified, _WINDOW.sub(window, _CLOCK.sub(clock, text)))


def job_name(sid: str) -> str:
    """A snapshot job id (``case/device/stage``) as a supervisor names the job."""
    case, _, rest = sid.partition("/")
    device, _, stage = rest.rpartition("/")
    return " ".join(part for part in (case, device, stage) if part) if rest else sid
