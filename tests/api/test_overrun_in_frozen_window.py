"""Work that overruns inside the frozen window: the schedule stays feasible and published.

One examiner and one workstation; A (08:00-09:00) then B (09:00-10:00), both frozen. A starts on
time and is still in progress at 09:30: it is extended by its estimate, to 10:30. B's start has
passed with no ``:start``, but its examiner is still on A, so B cannot have started: it waits,
is re-planned after A, and is not overdue. Nothing is left infeasible or held back.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from api_support import WEEKDAYS, make_lab, ok

from models import clock
from scheduler.worker import run_once

LAB = "overrun"
L = f"/labs/{LAB}"
MONDAY_7 = datetime(2031, 3, 3, 7, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def manual(app):
    with clock.use(clock.ManualClock(MONDAY_7)) as set_clock:
        yield set_clock


@pytest.fixture(scope="module")
def sup(manual, client, admin, keymaker):
    make_lab(client, admin, LAB, frozen_working_days=1)
    sup = keymaker.headers("supervisor", LAB)
    body = {"skills": ["mobile"], "shifts": WEEKDAYS}
    ok(client.put(f"{L}/examiners/E1", json=body, headers=sup), 201)
    ok(client.put(f"{L}/workstations/U1", json={"capabilities": ["ufed"]}, headers=sup), 201)
    for case, received in (("A", "2031-03-01T09:00:00+00:00"), ("B", "2031-03-01T10:00:00+00:00")):
        ok(
            client.put(
                f"{L}/cases/{case}", json={"priority": "P2", "received_at": received}, headers=sup
            ),
            201,
        )
        device = {"kind": "phone", "arrived_at": received}
        ok(client.put(f"{L}/cases/{case}/devices/D1", json=device, headers=sup), 201)
        job = {"stage": "acquire", "attended_minutes": 60, "machine_minutes": 60}
        job |= {"skills": ["mobile"], "capabilities": ["ufed"]}
        ok(client.put(f"{L}/cases/{case}/devices/D1/jobs/acquire", json=job, headers=sup), 201)
    return sup


def solve(client, app, sup) -> dict:
    body = {"mode": "full", "auto_publish": True, "time_limit_seconds": 5}
    queued = client.post(f"{L}/solve-runs", json=body, headers=sup)
    assert queued.status_code == 202, queued.text
    while run_once(app.state.engine, "w-overrun", workers=1):
        pass
    run = ok(client.get(queued.headers["Location"], headers=sup))
    assert run["status"] == "succeeded", run
    version = ok(client.get(f"{L}/schedules/{run['schedule_version']}", headers=sup))
    assert version["status"] in ("optimal", "feasible"), version
    current = ok(client.get(f"{L}/schedules/current", headers=sup))
    assert current["id"] == version["id"], "the version was held back"
    return {
        case: ok(client.get(f"{L}/schedules/current/cases/{case}", headers=sup))["assignments"][0]
        for case in ("A", "B")
    }


def at(a: dict, key: str) -> datetime:
    return datetime.fromisoformat(a[key])


def test_an_overrun_in_the_frozen_window_keeps_the_lab_published(manual, client, app, sup):
    first = solve(client, app, sup)
    assert at(first["A"], "starts_at") == MONDAY_7 + timedelta(hours=1)
    assert at(first["B"], "starts_at") == MONDAY_7 + timedelta(hours=2)
    manual.set(MONDAY_7 + timedelta(hours=1))
    ok(client.post(f"{L}/cases/A/devices/D1/jobs/acquire:start", headers=sup))
    manual.set(MONDAY_7 + timedelta(hours=2, minutes=30))  # 09:30: A overran, B not started

    report = ok(client.get(f"{L}/reports/overdue", headers=sup))
    assert [item["case"] for item in report["overrunning"]] == ["A"]
    assert report["overdue"] == []

    plan = solve(client, app, sup)
    assert at(plan["A"], "starts_at") == MONDAY_7 + timedelta(hours=1)  # its real start
    assert at(plan["A"], "ends_at") == MONDAY_7 + timedelta(hours=3, minutes=30)  # +60 from now
    assert at(plan["B"], "starts_at") >= at(plan["A"], "ends_at")  # waits for E1 and U1

    manual.set(MONDAY_7 + timedelta(hours=5))  # 12:00, long past B's planned end and grace
    assert ok(client.get(f"{L}/reports/overdue", headers=sup))["overdue"] == []
