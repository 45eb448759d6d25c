"""A review that overruns has reviewed all its exposure on the day it started, through the real
API on a manual clock (docs/architecture.md §7.9): extended by its estimate to the next day, it
still leaves the examiner no room under today's cap for another review.

One examiner, daily exposure cap 240 minutes; review A (240 attended, 200 exposure) and review B
(60 attended, 60 exposure): both never fit one day. The clock starts on a Monday at 07:00, far
from today.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from api_support import WEEKDAYS, make_lab, ok

from models import clock
from scheduler.worker import run_once

LAB = "overrunexp"
L = f"/labs/{LAB}"
MONDAY_7 = datetime(2031, 3, 31, 7, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def manual(app):
    with clock.use(clock.ManualClock(MONDAY_7)) as set_clock:
        yield set_clock


@pytest.fixture(scope="module")
def sup(manual, client, admin, keymaker):
    make_lab(client, admin, LAB, frozen_working_days=0)
    sup = keymaker.headers("supervisor", LAB)
    body = {"skills": ["review"], "shifts": WEEKDAYS, "daily_cap_minutes": 240}
    body |= {"weekly_cap_minutes": None, "severe_daily_cap_minutes": None}
    ok(client.put(f"{L}/examiners/E1", json=body, headers=sup), 201)
    for case, attended, exposure in (("A", 240, 200), ("B", 60, 60)):
        body = {"priority": "P2", "received_at": "2031-03-29T09:00:00+00:00"}
        ok(client.put(f"{L}/cases/{case}", json=body, headers=sup), 201)
        device = {"kind": "phone", "arrived_at": "2031-03-29T12:00:00+00:00"}
        ok(client.put(f"{L}/cases/{case}/devices/D1", json=device, headers=sup), 201)
        review = {"stage": "review", "attended_minutes": attended, "exposure_minutes": exposure}
        review |= {"severity": 1, "skills": ["review"]}
        ok(client.put(f"{L}/cases/{case}/devices/D1/jobs/review", json=review, headers=sup), 201)
    return sup


def solve(client, app, sup) -> dict[str, tuple[datetime, datetime]]:
    body = {"mode": "full", "auto_publish": True, "time_limit_seconds": 5}
    queued = client.post(f"{L}/solve-runs", json=body, headers=sup)
    assert queued.status_code == 202, queued.text
    while run_once(app.state.engine, "w-overrunexp", workers=1):
        pass
    assert ok(client.get(queued.headers["Location"], headers=sup))["status"] == "succeeded"
    out = {}
    for case in ("A", "B"):
        for a in ok(client.get(f"{L}/schedules/current/cases/{case}", headers=sup))["assignments"]:
            out[case] = (
                datetime.fromisoformat(a["starts_at"]),
                datetime.fromisoformat(a["ends_at"]),
            )
    return out


def test_an_overrunning_review_counts_all_its_exposure_against_its_day(manual, client, app, sup):
    first = solve(client, app, sup)
    assert first["A"][0] == MONDAY_7 + timedelta(hours=1)  # Monday 08:00
    assert first["B"][0].date() > MONDAY_7.date()  # the cap leaves no room for both
    manual.set(first["A"][0])
    ok(client.post(f"{L}/cases/A/devices/D1/jobs/review:start", headers=sup))
    # 13:00: an hour past its estimate; extended by it, A no longer fits today and goes to
    # Tuesday, but its 200 minutes were reviewed today
    manual.set(MONDAY_7 + timedelta(hours=6))
    again = solve(client, app, sup)
    assert again["B"][0].date() > MONDAY_7.date(), again
