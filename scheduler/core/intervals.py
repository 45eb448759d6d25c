"""Interval arithmetic, in one place: half-open ``[start, end)`` windows and closed ranges.

Names say what happens to intervals that touch: ``merge_touching`` joins them (busy time, start
domains), ``keep_touching`` keeps them apart (availability: a job must lie inside *one* window,
so two back-to-back shifts are not one long shift), ``merge_overlapping`` joins only those that
overlap. Start domains are where much of the CP-SAT model's strength comes from: an examiner's
availability minus the time already taken by fixed jobs, cut to the attended length, tells
CP-SAT where a job may start without any extra constraint.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from ortools.sat.python import cp_model

Interval = tuple[int, int]


def keep_touching(intervals: Iterable[Interval], lo: int, hi: int) -> list[Interval]:
    """Sorted, clipped to ``[lo, hi)``, empty intervals dropped; touching intervals stay apart."""
    out = [(max(a, lo), min(b, hi)) for a, b in intervals]
    return sorted((a, b) for a, b in out if a < b)


def merge_overlapping(intervals: Iterable[Interval], lo: int, hi: int) -> list[Interval]:
    """Clipped to ``[lo, hi]``, empty ones dropped, sorted, overlapping ones merged; touching ones
    stay apart."""
    merged: list[Interval] = []
    for a, b in sorted((max(lo, a), min(hi, b)) for a, b in intervals):
        if a >= b:
            continue
        if merged and a < merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], b))
        else:
            merged.append((a, b))
    return merged


def merge_touching(intervals: Iterable[Interval]) -> list[Interval]:
    """Sort, drop empty intervals and merge overlapping or touching ones."""
    out: list[Interval] = []
    for a, b in sorted(i for i in intervals if i[1] > i[0]):
        if out and a <= out[-1][1]:
            if b > out[-1][1]:
                out[-1] = (out[-1][0], b)
        else:
            out.append((a, b))
    return out


def intersect(xs: Sequence[Interval], ys: Sequence[Interval]) -> list[Interval]:
    """Pairwise intersections of two interval lists (each taken as given, not merged).

    Windows are kept separate on purpose: "inside one window" means inside one of them, so two
    touching windows must not be merged.
    """
    out: list[Interval] = []
    for a, b in xs:
        for c, d in ys:
            lo, hi = max(a, c), min(b, d)
            if hi > lo:
                out.append((lo, hi))
    return sorted(out)


def intersect_sorted(xs: Sequence[Interval], ys: Sequence[Interval]) -> list[Interval]:
    """`intersect` for two sorted lists of disjoint windows, in one pass."""
    out = []
    i = j = 0
    while i < len(xs) and j < len(ys):
        lo, hi = max(xs[i][0], ys[j][0]), min(xs[i][1], ys[j][1])
        if lo < hi:
            out.append((lo, hi))
        if xs[i][1] < ys[j][1]:
            i += 1
        else:
            j += 1
    return out


def subtract(windows: Sequence[Interval], busy: Sequence[Interval]) -> list[Interval]:
    """Parts of each window not covered by ``busy`` (each window split separately)."""
    merged = merge_touching(busy)
    out: list[Interval] = []
    for a, b in windows:
        cur = a
        for c, d in merged:
            if d <= cur:
                continue
            if c >= b:
                break
            if c > cur:
                out.append((cur, c))
            cur = max(cur, d)
            if cur >= b:
                break
        if cur < b:
            out.append((cur, b))
    return out


def starts_fitting(windows: Iterable[Interval], length: int) -> list[Interval]:
    """Closed ranges ``[lo, hi]`` of starts s such that ``[s, s+length)`` lies inside one window."""
    return [(a, b - length) for a, b in windows if b - a >= length]


def domain(ranges: Iterable[Interval]) -> cp_model.Domain:
    """A CP-SAT domain from closed ranges (possibly overlapping)."""
    flat: list[int] = []
    for lo, hi in merge_closed(ranges):
        flat.extend((lo, hi))
    return cp_model.Domain.from_flat_intervals(flat)


def merge_closed(ranges: Iterable[Interval]) -> list[Interval]:
    """Merge closed ranges ``[lo, hi]`` that overlap or are adjacent."""
    out: list[Interval] = []
    for a, b in sorted(r for r in ranges if r[1] >= r[0]):
        if out and a <= out[-1][1] + 1:
            if b > out[-1][1]:
                out[-1] = (out[-1][0], b)
        else:
            out.append((a, b))
    return out


def clip_closed(ranges: Iterable[Interval], lo: int, hi: int) -> list[Interval]:
    """Closed ranges cut to ``[lo, hi]``."""
    return [(max(a, lo), min(b, hi)) for a, b in ranges if min(b, hi) >= max(a, lo)]


def intersect_closed(xs: Sequence[Interval], ys: Sequence[Interval]) -> list[Interval]:
    """Intersection of two merged (`merge_closed`) closed-range lists."""
    out: list[Interval] = []
    i = j = 0
    while i < len(xs) and j < len(ys):
        lo = max(xs[i][0], ys[j][0])
        hi = min(xs[i][1], ys[j][1])
        if hi >= lo:
            out.append((lo, hi))
        if xs[i][1] < ys[j][1]:
            i += 1
        else:
            j += 1
    return out


def overloaded(intervals: Iterable[Interval], capacity: int) -> list[Interval]:
    """Time ranges where at least ``capacity`` of the given intervals run at once."""
    events: list[tuple[int, int]] = []
    for a, b in intervals:
        if b > a:
            events.append((a, 1))
            events.append((b, -1))
    events.sort()
    out: list[Interval] = []
    level = 0
    since = 0
    for t, delta in events:
        before = level
        level += delta
        if before < capacity <= level:
            since = t
        elif before >= capacity > level and t > since:
            out.append((since, t))
    return merge_touching(out)
