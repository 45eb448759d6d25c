"""Slowing down guessed API keys: repeated failed authentication from one client gets 429.

Each client (its network address, as the server sees it: run uvicorn with ``--proxy-headers``
behind a reverse proxy) has a bucket of ``auth_failure_burst`` failures that refills at
``auth_failures_per_minute``. A failure spends one; with none left, the client's requests are
refused with 429 and ``Retry-After`` before any key is checked. The limit is per client, not per
key, so someone guessing at a key cannot lock its owner out; and a key verified before (in the
key cache) still passes from a throttled address. Buckets live per process: with N server
processes a client gets up to N bursts.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from scheduler.errors import DomainError

MAX_TRACKED_CLIENTS = 10_000


class TooManyFailures(DomainError):
    status = 429
    title = "Too many failed authentications"
    type = "https://labq.dev/problems/too-many-requests"

    def __init__(self, retry_after: int) -> None:
        super().__init__(
            f"too many requests with a missing or invalid API key from this client; "
            f"retry after {retry_after} s",
            retry_after=retry_after,
        )
        self.headers = {"Retry-After": str(retry_after)}


@dataclass
class _Bucket:
    tokens: float
    at: float


class FailureThrottle:
    """Token buckets of failed authentications, one per client address."""

    def __init__(
        self, burst: int, per_minute: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.burst = burst
        self.rate = per_minute / 60.0
        self._now = clock
        self._buckets: dict[str, _Bucket] = {}
        self._lock = threading.Lock()

    def _refilled(self, client: str, now: float) -> _Bucket:
        bucket = self._buckets.get(client)
        if bucket is None:
            return _Bucket(float(self.burst), now)
        tokens = min(float(self.burst), bucket.tokens + (now - bucket.at) * self.rate)
        return _Bucket(tokens, now)

    def check(self, client: str) -> None:
        """Raise 429 if ``client`` has spent its failures; otherwise do nothing."""
        if self.burst <= 0:
            return
        with self._lock:
            bucket = self._refilled(client, self._now())
        if bucket.tokens < 1.0:
            wait = (1.0 - bucket.tokens) / self.rate if self.rate > 0 else 60.0
            raise TooManyFailures(max(1, math.ceil(wait)))

    def failed(self, client: str) -> None:
        """Spend one failure of ``client``'s bucket."""
        if self.burst <= 0:
            return
        with self._lock:
            now = self._now()
            bucket = self._refilled(client, now)
            bucket.tokens = max(0.0, bucket.tokens - 1.0)
            if client not in self._buckets and len(self._buckets) >= MAX_TRACKED_CLIENTS:
                self._forget_full(now)
            self._buckets[client] = bucket

    def _forget_full(self, now: float) -> None:
        """Drop buckets that have refilled (they hold no state worth keeping)."""
        full = [c for c in self._buckets if self._refilled(c, now).tokens >= self.burst]
        for client in full:
            del self._buckets[client]
        if len(self._buckets) >= MAX_TRACKED_CLIENTS:  # all are throttled: forget the oldest
            oldest = min(self._buckets, key=lambda c: self._buckets[c].at)
            del self._buckets[oldest]
