"""Interval helpers shared by the dispatch baselines, the bounds and the forecast.

Times are integer minutes from the snapshot's epoch and intervals are half-open ``[start, end)``,
as in the snapshot contract. The helpers work on sorted interval lists with binary search so that a
two-week horizon never turns into a per-minute (or per-slot) array.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterable, Sequence

Interval = tuple[int, int]


def index_of(intervals: Sequence[Interval], t: int) -> int | None:
    """Index of the interval containing ``t`` in a sorted, disjoint list, or None."""
    i = bisect_right([a for a, _ in intervals], t) - 1
    if i >= 0 and t < intervals[i][1]:
        return i
    return None


class Calendar:
    """Sorted disjoint intervals with O(log n) lookup of the one containing a time.

    Used for the lab-local ``days`` and ``weeks`` of a snapshot: a job counts against the exposure
    caps of the day and week in which it starts.
    """

    __slots__ = ("intervals", "_starts")

    def __init__(self, intervals: Sequence[Interval]) -> None:
        self.intervals = tuple(sorted(intervals))
        self._starts = [a for a, _ in self.intervals]

    def index(self, t: int) -> int | None:
        i = bisect_right(self._starts, t) - 1
        if i >= 0 and t < self.intervals[i][1]:
            return i
        return None

    def next_start(self, t: int) -> int | None:
        """Start of the first interval beginning after ``t``, or None."""
        i = bisect_right(self._starts, t)
        return self._starts[i] if i < len(self._starts) else None


class FreeList:
    """The free time of one resource lane: sorted, disjoint, half-open segments.

    A placement must lie inside one segment, so segments start as the resource's availability
    windows and are cut as work is reserved; they never merge, which keeps "inside one window"
    exact. ``longest`` keeps a suffix maximum of segment lengths so a search that cannot succeed
    (a full examiner late in the backlog) returns at once instead of scanning the whole horizon.
    """

    __slots__ = ("starts", "ends", "_suffix")

    def __init__(self, segments: Iterable[Interval]) -> None:
        segs = sorted((a, b) for a, b in segments if a < b)
        self.starts = [a for a, _ in segs]
        self.ends = [b for _, b in segs]
        self._suffix: list[int] = []
        self._rebuild()

    def _rebuild(self) -> None:
        n = len(self.starts)
        suffix = [0] * (n + 1)
        for k in range(n - 1, -1, -1):
            length = self.ends[k] - self.starts[k]
            suffix[k] = length if length > suffix[k + 1] else suffix[k + 1]
        self._suffix = suffix

    def earliest(self, t: int, length: int) -> int | None:
        """Earliest start >= t of ``[s, s + length)`` inside one free segment, or None."""
        k = bisect_right(self.ends, t)
        starts, ends, suffix = self.starts, self.ends, self._suffix
        n = len(starts)
        while k < n:
            if suffix[k] < length:
                return None
            a = starts[k] if starts[k] > t else t
            if a + length <= ends[k]:
                return a
            k += 1
        return None

    def fits(self, start: int, length: int) -> bool:
        """Whether ``[start, start + length)`` lies inside one free segment."""
        k = bisect_right(self.starts, start) - 1
        if k < 0:
            return False
        if length == 0:
            return start <= self.ends[k]
        return start + length <= self.ends[k]

    def reserve(self, start: int, end: int) -> bool:
        """Remove ``[start, end)`` from the free time; False if it was not wholly free.

        A forced reservation (a pin that conflicts with another) still removes whatever part
        overlaps, so later placements never pile onto it.
        """
        if end <= start:
            return True
        k = bisect_right(self.starts, start) - 1
        inside = k >= 0 and end <= self.ends[k]
        first = max(k, 0)
        # segments overlapping [start, end)
        last = first
        while last < len(self.starts) and self.starts[last] < end:
            last += 1
        pieces: list[Interval] = []
        for i in range(first, last):
            a, b = self.starts[i], self.ends[i]
            if b <= start:
                pieces.append((a, b))
                continue
            if a < start:
                pieces.append((a, start))
            if end < b:
                pieces.append((end, b))
        self.starts[first:last] = [a for a, _ in pieces]
        self.ends[first:last] = [b for _, b in pieces]
        self._rebuild()
        return inside

    def free_minutes(self, lo: int, hi: int) -> int:
        """Free minutes inside ``[lo, hi)``."""
        total = 0
        for a, b in zip(self.starts, self.ends, strict=True):
            a2, b2 = max(a, lo), min(b, hi)
            if a2 < b2:
                total += b2 - a2
        return total


class Lanes:
    """A resource that runs ``capacity`` jobs at once, as that many single-job lanes.

    Any set of intervals with at most ``capacity`` overlapping can be laid out on that many lanes
    (interval graphs are perfect), so a lane layout is an exact, simple stand-in for a capacity
    profile; the greedy lane choice only costs a little packing quality.
    """

    __slots__ = ("lanes",)

    def __init__(self, capacity: int, segments: Sequence[Interval]) -> None:
        self.lanes = [FreeList(segments) for _ in range(max(capacity, 1))]

    def earliest(self, t: int, length: int) -> int | None:
        best: int | None = None
        for lane in self.lanes:
            s = lane.earliest(t, length)
            if s is not None and (best is None or s < best):
                best = s
                if s == t:
                    break
        return best

    def reserve(self, start: int, end: int) -> bool:
        """Reserve on the first lane where it fits; force it onto the first lane otherwise."""
        for lane in self.lanes:
            if lane.fits(start, end - start):
                lane.reserve(start, end)
                return True
        self.lanes[0].reserve(start, end)
        return False
