"""Work under way, through the real API on a manual clock: the exposure it has already reviewed
counts against its day's cap, and a repair run never pins published work where work under way
now runs (docs/architecture.md §7.9).

The lab works 08:00-16:00 UTC on weekdays; the clock starts on a Monday at 07:00, far from today so
wall time can never stand in for it.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from api_support import WEEKDAYS, make_lab, ok

from models import clock
from scheduler.worker import run_once

LAB = "underway"
L = f"/labs/{LAB}"
MONDAY_7 = datetime(2031, 3, 10, 7, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def manual(app):
    with clock.use(clock.ManualClock(MONDAY_7)) as set_clock:
        yield set_clock


def job_url(case: str, device: str, stage: str) -> str:
    return f"{L}/cases/{case}/devices/{device}/jobs/{stage}"


@pytest.fixture(scope="module")
def sup(manual, client, admin, keymaker):
    make_lab(client, admin, LAB, frozen_working_days=0, start_grace_minutes=60)
    sup = keymaker.headers("supervisor", LAB)
    body = {"skills": ["review"], "shifts": WEEKDAYS, "daily_cap_minutes": 240}
    body |= {"weekly_cap_minutes": None, "severe_daily_cap_minutes": None}
    ok(client.put(f"{L}/examiners/E1", json=body, headers=sup), 201)
    ok(client.put(f"{L}/workstations/W1", json={"capabilities": ["processing"]}, headers=sup), 201)
    for case in ("C1", "C2"):
        body = {"priority": "P2", "received_at": "2031-03-08T09:00:00+00:00"}
        ok(client.put(f"{L}/cases/{case}", json=body, headers=sup), 201)
        device = {"kind": "phone", "arrived_at": "2031-03-08T12:00:00+00:00"}
        ok(client.put(f"{L}/cases/{case}/devices/D1", json=device, headers=sup), 201)
        review = {"stage": "review", "attended_minutes": 180, "exposure_minutes": 150}
        review |= {"severity": 1, "skills": ["review"]}
        ok(client.put(job_url(case, "D1", "review"), json=review, headers=sup), 201)
    # two machine-only jobs on one workstation: a long processing job, then a short one
    for case, minutes in (("C3", 7200), ("C4", 600)):
        body = {"priority": "P4", "received_at": "2031-03-08T09:00:00+00:00"}
        ok(client.put(f"{L}/cases/{case}", json=body, headers=sup), 201)
        device = {"kind": "computer", "arrived_at": "2031-03-08T12:00:00+00:00"}
        ok(client.put(f"{L}/cases/{case}/devices/D1", json=device, headers=sup), 201)
        process = {"stage": "process", "machine_minutes": minutes, "capabilities": ["processing"]}
        ok(client.put(job_url(case, "D1", "process"), json=process, headers=sup), 201)
    return sup


def run(client, app, sup, mode: str) -> dict:
    body = {"mode": mode, "auto_publish": True, "time_limit_seconds": 5}
    queued = client.post(f"{L}/solve-runs", json=body, headers=sup)
    assert queued.status_code == 202, queued.text
    while run_once(app.state.engine, "w-underway", workers=1):
        pass
    return ok(client.get(queued.headers["Location"], headers=sup))


def current(client, sup) -> dict[str, dict]:
    out = {}
    for case in ("C1", "C2", "C3", "C4"):
        body = ok(client.get(f"{L}/schedules/current/cases/{case}", headers=sup))
        for a in body["assignments"]:
            out[case] = a
    return out


def at(a: dict, key: str) -> datetime:
    return datetime.fromisoformat(a[key])


@pytest.fixture(scope="module")
def first(manual, client, app, sup):
    """The first schedule: one review on Monday (the cap leaves no room for two), C3 processing
    from Monday 07:00 for five days and C4 on the same workstation after it."""
    assert run(client, app, sup, "full")["status"] == "succeeded"
    plan = current(client, sup)
    reviews = sorted(("C1", "C2"), key=lambda c: plan[c]["starts_at"])
    assert at(plan[reviews[0]], "starts_at").date() == MONDAY_7.date()
    assert at(plan[reviews[1]], "starts_at").date() > MONDAY_7.date()
    assert at(plan["C4"], "starts_at") >= at(plan["C3"], "ends_at")
    return plan, reviews


def test_exposure_reviewed_so_far_counts_against_the_day(manual, client, app, sup, first):
    plan, (today, later) = first
    manual.set(at(plan[today], "starts_at"))
    ok(client.post(f"{job_url(today, 'D1', 'review')}:start", headers=sup))
    # two hours in: 30 of its 150 exposure minutes are left; the 120 reviewed count today, so
    # the other review (150) still does not fit under the 240-minute cap today
    manual.set(at(plan[today], "starts_at") + timedelta(hours=2))
    assert run(client, app, sup, "full")["status"] == "succeeded"
    again = current(client, sup)
    assert at(again[today], "ends_at") == at(plan[today], "ends_at")
    assert at(again[later], "starts_at").date() > MONDAY_7.date(), again[later]


def test_a_repair_never_pins_work_where_work_under_way_now_runs(manual, client, app, sup, first):
    plan, _ = first
    # C3 is started three and a half hours late (10:30, after the test above): its five days of
    # processing now end as much later, over C4's published start, which lies beyond the repair
    # window (Monday + 2 working days)
    started = at(plan["C3"], "starts_at") + timedelta(hours=3, minutes=30)
    manual.set(started)
    ok(client.post(f"{job_url('C3', 'D1', 'process')}:start", headers=sup))
    repair = run(client, app, sup, "repair")
    assert repair["status"] == "succeeded", repair
    version = ok(client.get(f"{L}/schedules/current", headers=sup))
    assert version["id"] == repair["schedule_version"], "the repair was held back"
    assert version["kpis"]["warnings"] == [], version["kpis"]["warnings"]
    again = current(client, sup)
    assert at(again["C3"], "ends_at") == started + timedelta(minutes=7200)
    assert at(again["C4"], "starts_at") >= at(again["C3"], "ends_at")
