"""The last snapshot built for each lab, reused while nothing it was built from has changed.

A snapshot is a function of the lab's stored data, the epoch (``now`` rounded up to the lab's
slot) and the run mode (docs/architecture.md §7.9). Every change to a lab's data writes an audit
event in the same transaction (docs/architecture.md §9), so the number of the lab's audit events
and the latest one's id are its data revision (the count too, because on PostgreSQL an id taken
by a transaction that commits later can be lower than the latest): a reader that asks again
within the same slot, with no change in between, gets the snapshot already built instead of
loading it again. Advisory reads use it (recommendations); runs, pin
checks and stored versions always load afresh.

Both the snapshot and its id map are treated as read-only by every caller.
"""

from __future__ import annotations

import threading
from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from models import AuditEvent, Lab
from scheduler.core.snapshot import Snapshot
from scheduler.planning.loader import load_snapshot
from scheduler.planning.loading.idmap import IdMap
from scheduler.planning.loading.timeline import round_up_to_slot

_Key = tuple[str, datetime, str, datetime, tuple[int, int | None]]

_lock = threading.Lock()
_last: dict[tuple[int, str], tuple[_Key, Snapshot, IdMap]] = {}


def data_revision(session: Session, lab: Lab) -> tuple[int, int | None]:
    """How many audit events the lab has and the latest one's id: they move on every change."""
    row = session.execute(
        select(func.count(AuditEvent.id), func.max(AuditEvent.id)).where(
            AuditEvent.lab_id == lab.id
        )
    ).one()
    return int(row[0]), row[1]


def recent_snapshot(
    session: Session, lab: Lab, now: datetime, *, mode: str = "full"
) -> tuple[Snapshot, IdMap]:
    """``load_snapshot(session, lab, now, mode=mode)``, or the same snapshot built before."""
    epoch = round_up_to_slot(now, ZoneInfo(lab.timezone), lab.slot_minutes)
    database = str(session.get_bind().engine.url)  # tests make many databases with the same lab ids
    key: _Key = (database, lab.created_at, mode, epoch, data_revision(session, lab))
    with _lock:
        found = _last.get((lab.id, mode))
    if found is not None and found[0] == key:
        return found[1], found[2]
    snapshot, idmap = load_snapshot(session, lab, now, mode=mode)
    with _lock:
        _last[(lab.id, mode)] = (key, snapshot, idmap)
    return snapshot, idmap


def forget() -> None:
    """Drop every kept snapshot (tests that rebuild a database under the same lab ids)."""
    with _lock:
        _last.clear()
