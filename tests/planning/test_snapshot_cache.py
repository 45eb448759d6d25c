"""The snapshot kept for advisory reads: reused while nothing changed, rebuilt after any change
to the lab's data or when the clock passes into the next slot."""

from __future__ import annotations

from datetime import date, timedelta

from lab_builders import MONDAY, make_examiner, make_lab

from scheduler.planning.snapshot_cache import forget, recent_snapshot
from scheduler.services import resources


def test_a_snapshot_is_reused_until_the_lab_changes_or_the_slot_passes(session):
    lab = make_lab(session, "t-cache", planning_horizon_days=3)
    examiner = make_examiner(session, lab, "E1")
    first, _ = recent_snapshot(session, lab, MONDAY)
    again, _ = recent_snapshot(session, lab, MONDAY + timedelta(minutes=1))
    assert again is first  # the same slot, nothing changed

    resources.log_exposure(session, examiner, actor="t", day=MONDAY.date(), minutes=60, severity=2)
    logged, _ = recent_snapshot(session, lab, MONDAY + timedelta(minutes=1))
    assert logged is not first
    assert dict(logged.examiners[0].exposure.used_by_day) == {0: 60}

    later, _ = recent_snapshot(session, lab, MONDAY + timedelta(hours=1))
    assert later is not logged and later.epoch != logged.epoch

    forget()
    assert recent_snapshot(session, lab, MONDAY + timedelta(hours=1))[0] is not later


def test_another_run_mode_has_its_own_snapshot(session):
    lab = make_lab(session, "t-cache-mode", planning_horizon_days=3)
    make_examiner(session, lab, "E1")
    full, _ = recent_snapshot(session, lab, MONDAY)
    repair, _ = recent_snapshot(session, lab, MONDAY, mode="repair")
    assert repair is not full
    assert recent_snapshot(session, lab, MONDAY)[0] is full
    assert date.fromisoformat(full.epoch[:10]) == MONDAY.date()
