"""Time passing, by rule, through the real API on a manual clock: a missed start keeps its chain,
an overdue job is listed and re-planned on its own, work in progress is planned from its real start
and extended by its estimate when it overruns, and work done early frees its capacity.

The lab works 08:00-16:00 UTC on weekdays; the clock starts on a Monday at 07:00, before the shift,
far from today so wall time can never stand in for it.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from api_support import WEEKDAYS, make_lab, ok

from models import clock
from scheduler.worker import run_once

LAB = "timepass"
L = f"/labs/{LAB}"
MONDAY_7 = datetime(2031, 3, 3, 7, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def manual(app):
    """One clock per backend's run of the module (``app`` is made per backend)."""
    with clock.use(clock.ManualClock(MONDAY_7)) as set_clock:
        yield set_clock


@pytest.fixture(scope="module")
def sup(manual, client, admin, keymaker):
    make_lab(client, admin, LAB, frozen_working_days=0, start_grace_minutes=60)
    sup = keymaker.headers("supervisor", LAB)
    for ref in ("E1", "E2", "E3", "E4", "E5"):
        body = {"skills": ["mobile"], "shifts": WEEKDAYS}
        ok(client.put(f"{L}/examiners/{ref}", json=body, headers=sup), 201)
    for ref in ("U1", "U2", "U3", "U4"):
        ok(client.put(f"{L}/workstations/{ref}", json={"capabilities": ["ufed"]}, headers=sup), 201)
    for case in ("C1", "C2", "C3", "C4"):
        body = {"priority": "P2", "received_at": "2031-03-01T09:00:00+00:00"}
        ok(client.put(f"{L}/cases/{case}", json=body, headers=sup), 201)
        device = {"kind": "phone", "arrived_at": "2031-03-01T12:00:00+00:00"}
        ok(client.put(f"{L}/cases/{case}/devices/D1", json=device, headers=sup), 201)
        acquire = {"stage": "acquire", "attended_minutes": 120, "machine_minutes": 120}
        acquire |= {"skills": ["mobile"], "capabilities": ["ufed"]}
        ok(client.put(job_url(case, "acquire"), json=acquire, headers=sup), 201)
        review = {"stage": "review", "attended_minutes": 60, "skills": ["mobile"]}
        review["after"] = ["D1/acquire"]
        ok(client.put(job_url(case, "review"), json=review, headers=sup), 201)
    return sup


def job_url(case: str, stage: str) -> str:
    return f"{L}/cases/{case}/devices/D1/jobs/{stage}"


def solve(client, app, sup) -> dict[tuple[str, str], dict]:
    """A full run, published, executed by a real worker; the current schedule by (case, stage)."""
    body = {"mode": "full", "auto_publish": True, "time_limit_seconds": 5}
    queued = client.post(f"{L}/solve-runs", json=body, headers=sup)
    assert queued.status_code == 202, queued.text
    while run_once(app.state.engine, "w-time", workers=1):  # a repair run may be queued too
        pass
    run = ok(client.get(queued.headers["Location"], headers=sup))
    assert run["status"] == "succeeded", run
    return placements(client, sup)


def placements(client, sup, cases=("C1", "C2", "C3", "C4")) -> dict[tuple[str, str], dict]:
    out = {}
    for case in cases:
        body = ok(client.get(f"{L}/schedules/current/cases/{case}", headers=sup))
        for a in body["assignments"]:
            out[(case, a["device"], a["stage"]) if case == "C5" else (case, a["stage"])] = a
    return out


def at(a: dict, key: str) -> datetime:
    return datetime.fromisoformat(a[key])


@pytest.fixture(scope="module")
def first(manual, client, app, sup):
    """The first published schedule: every case's acquire on Monday from 08:00, reviews after."""
    plan = solve(client, app, sup)
    for case in ("C1", "C2", "C3", "C4"):
        assert at(plan[(case, "acquire")], "starts_at") == MONDAY_7 + timedelta(hours=1)
    return plan


def test_a_missed_start_keeps_its_place_and_its_chain(manual, client, app, sup, first):
    manual.set(MONDAY_7 + timedelta(hours=1, minutes=30))  # 08:30, nobody pressed :start on C1
    for case in ("C2", "C3", "C4"):
        ok(client.post(f"{job_url(case, 'acquire')}:start", headers=sup))
    plan = solve(client, app, sup)
    before, after = first[("C1", "acquire")], plan[("C1", "acquire")]
    assert (after["examiner"], after["workstation"]) == (before["examiner"], before["workstation"])
    assert at(after, "ends_at") == at(before, "ends_at")  # assumed started as planned
    assert at(plan[("C1", "review")], "starts_at") <= at(first[("C1", "review")], "starts_at")
    assert ok(client.get(job_url("C1", "acquire"), headers=sup))["overdue"] is False


def test_work_started_late_is_planned_from_its_real_start(manual, client, app, sup, first):
    manual.set(MONDAY_7 + timedelta(hours=3))  # 10:00: C1 still not started (grace runs to 11:00)
    plan = solve(client, app, sup)
    # C2-C4 were started at 08:30, half an hour after their planned start: they end at 10:30
    for case in ("C2", "C3", "C4"):
        assert at(plan[(case, "acquire")], "ends_at") == MONDAY_7 + timedelta(hours=3, minutes=30)
        started = ok(client.get(job_url(case, "acquire"), headers=sup))["started_at"]
        assert datetime.fromisoformat(started) == MONDAY_7 + timedelta(hours=1, minutes=30)


def test_work_done_early_frees_its_capacity(manual, client, app, sup, first):
    manual.set(MONDAY_7 + timedelta(hours=3, minutes=15))  # 10:15: C4's acquire finished early
    ok(client.post(f"{job_url('C4', 'acquire')}:done", headers=sup))
    # an urgent case arrives with two phones; U2 and U3 are busy to 10:30 with C2's and C3's
    # acquires, U1 is free since C1's assumed end at 10:00, and U4 only because C4 finished early
    # (E1 is on C1's review, taken as started at 10:00; E4 and E5 are free)
    urgent = {"priority": "P1", "received_at": "2031-03-02T06:00:00+00:00"}  # already late
    ok(client.put(f"{L}/cases/C5", json=urgent, headers=sup), 201)
    for device in ("D1", "D2"):
        body = {"kind": "phone", "arrived_at": "2031-03-03T10:00:00+00:00"}
        ok(client.put(f"{L}/cases/C5/devices/{device}", json=body, headers=sup), 201)
        acquire = {"stage": "acquire", "attended_minutes": 120, "machine_minutes": 120}
        acquire |= {"skills": ["mobile"], "capabilities": ["ufed"]}
        url = f"{L}/cases/C5/devices/{device}/jobs/acquire"
        ok(client.put(url, json=acquire, headers=sup), 201)
    plan = solve(client, app, sup)
    assert ("C4", "acquire") not in plan
    urgent_now = list(placements(client, sup, ("C5",)).values())
    assert len(urgent_now) == 2
    assert {at(a, "starts_at") for a in urgent_now} == {MONDAY_7 + timedelta(hours=3, minutes=15)}
    assert {a["workstation"] for a in urgent_now} == {"U1", "U4"}
    assert ("C4", "review") in plan


def test_an_overdue_job_is_listed_flagged_and_replanned_on_its_own(manual, client, app, sup):
    # C1's acquire was planned 08:00-10:00; with an hour's grace it is overdue from 11:00
    manual.set(MONDAY_7 + timedelta(hours=4, minutes=15))  # 11:15
    report = ok(client.get(f"{L}/reports/overdue", headers=sup))
    (late,) = report["overdue"]
    assert (late["case"], late["stage"]) == ("C1", "acquire")
    assert datetime.fromisoformat(late["since"]) == MONDAY_7 + timedelta(hours=4)
    assert "Mon 3 Mar 08:00" in late["detail"] and "overdue since Mon 3 Mar 11:00" in late["detail"]
    assert ok(client.get(job_url("C1", "acquire"), headers=sup))["overdue"] is True
    plan = solve(client, app, sup)
    acquire, review = plan[("C1", "acquire")], plan[("C1", "review")]
    assert at(acquire, "starts_at") >= MONDAY_7 + timedelta(hours=4, minutes=15)  # ahead of now
    assert at(acquire, "ends_at") - at(acquire, "starts_at") == timedelta(minutes=120)  # all of it
    assert at(review, "starts_at") >= at(acquire, "ends_at")
    assert ok(client.get(job_url("C1", "acquire"), headers=sup))["overdue"] is False  # re-planned


def test_overrunning_work_is_listed_and_extended_by_its_estimate(manual, client, app, sup):
    # C2 and C3 started 08:30 with a 120-minute estimate: from 10:30 they overrun
    manual.set(MONDAY_7 + timedelta(hours=4, minutes=30))  # 11:30
    now = manual.now()
    report = ok(client.get(f"{L}/reports/overdue", headers=sup))
    assert sorted(item["case"] for item in report["overrunning"]) == ["C2", "C3"]
    assert all("still in progress" in item["detail"] for item in report["overrunning"])
    plan = solve(client, app, sup)
    for case in ("C2", "C3"):
        acquire = plan[(case, "acquire")]
        assert at(acquire, "ends_at") == now + timedelta(minutes=120)  # its estimate again
        assert at(plan[(case, "review")], "starts_at") >= at(acquire, "ends_at")
