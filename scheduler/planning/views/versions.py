"""Schedule versions by id or the current one, and the bounded cache of rendered reads
(docs/architecture.md §7.3, §8).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Hashable
from typing import Any

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session, defer

from models import Lab, ScheduleVersion
from scheduler.errors import NotFound

# The diff and KPIs of a large lab are big JSON documents: load them only when a view reads them.
_LAZY_JSON = (
    defer(ScheduleVersion.diff),
    defer(ScheduleVersion.kpis),
    defer(ScheduleVersion.terms),
)


# Statements built once: composing a select costs more than running it on a short read.
_VERSION_BY_ID = (
    select(ScheduleVersion)
    .where(ScheduleVersion.id == bindparam("version_id"))
    .options(*_LAZY_JSON)
)
_CURRENT_VERSION = (
    select(ScheduleVersion)
    .where(ScheduleVersion.lab_id == bindparam("lab_id"), ScheduleVersion.is_current.is_(True))
    .options(*_LAZY_JSON)
)


def get_version(session: Session, lab: Lab, version_id: int) -> ScheduleVersion:
    version = session.scalar(_VERSION_BY_ID, {"version_id": version_id})
    if version is None or version.lab_id != lab.id:
        raise NotFound(f"schedule version {version_id} does not exist in lab {lab.code!r}")
    return version


def current_or_404(session: Session, lab: Lab) -> ScheduleVersion:
    version = session.scalar(_CURRENT_VERSION, {"lab_id": lab.id})
    if version is None:
        raise NotFound(f"lab {lab.code!r} has no published schedule yet; queue a solve run")
    return version


class ReadCache:
    """A bounded, thread-safe map of rendered reads, least recently used dropped first.

    Only for what a key fully determines: a schedule version's stored content (its summary,
    KPIs) never changes once stored, so entries are keyed by version id plus whatever the read
    also shows that can change (``is_current``, ``published_at``). What joins live rows (job,
    case, examiner references) is keyed by those rows themselves, never by the version alone.
    """

    def __init__(self, entries: int) -> None:
        self.entries = entries
        self._data: OrderedDict[Hashable, Any] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: Hashable) -> Any | None:
        with self._lock:
            value = self._data.get(key)
            if value is not None:
                self._data.move_to_end(key)
            return value

    def put(self, key: Hashable, value: Any) -> None:
        if self.entries <= 0:
            return
        with self._lock:
            self._data[key] = value
            self._data.move_to_end(key)
            while len(self._data) > self.entries:
                self._data.popitem(last=False)

    def __len__(self) -> int:
        return len(self._data)
