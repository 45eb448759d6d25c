"""Licences held by work under way, through the real API on a manual clock: a missed start with
no licence free has not started (it waits, re-planned after the work that holds it), and work
reported under way beyond a pool's size never makes a version infeasible (docs/architecture.md
§7.9).

One licence of ``axiom`` and three machine-only jobs, each on a server of its own, that each need
the licence: they run one after another. The clock starts on a Monday at 07:00, far from today so
wall time can never stand in for it.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from api_support import make_lab, ok

from models import clock
from scheduler.worker import run_once

LAB = "licences"
L = f"/labs/{LAB}"
MONDAY_7 = datetime(2031, 3, 17, 7, 0, tzinfo=UTC)
CASES = ("C1", "C2", "C3")


@pytest.fixture(scope="module")
def manual(app):
    with clock.use(clock.ManualClock(MONDAY_7)) as set_clock:
        yield set_clock


def job_url(case: str) -> str:
    return f"{L}/cases/{case}/devices/D1/jobs/process"


@pytest.fixture(scope="module")
def sup(manual, client, admin, keymaker):
    make_lab(client, admin, LAB, frozen_working_days=0, start_grace_minutes=60)
    sup = keymaker.headers("supervisor", LAB)
    ok(client.put(f"{L}/licence-pools/axiom", json={"capacity": 1}, headers=sup))
    for n, case in enumerate(CASES, 1):  # a server of its own for each case's job
        capability = f"processing-{case.lower()}"
        client.put(f"{L}/vocabulary/capabilities/{capability}", headers=sup).raise_for_status()
        body = {"capabilities": [capability]}
        ok(client.put(f"{L}/workstations/S{n}", json=body, headers=sup), 201)
        body = {"priority": "P3", "received_at": "2031-03-15T09:00:00+00:00"}
        ok(client.put(f"{L}/cases/{case}", json=body, headers=sup), 201)
        device = {"kind": "computer", "arrived_at": "2031-03-15T12:00:00+00:00"}
        ok(client.put(f"{L}/cases/{case}/devices/D1", json=device, headers=sup), 201)
        process = {"stage": "process", "machine_minutes": 120}
        process["capabilities"] = [capability]
        process["pools"] = ["axiom"]
        ok(client.put(job_url(case), json=process, headers=sup), 201)
    return sup


def solve(client, app, sup) -> dict:
    """A full run with auto-publish, executed by a real worker: the version it made."""
    body = {"mode": "full", "auto_publish": True, "time_limit_seconds": 5}
    queued = client.post(f"{L}/solve-runs", json=body, headers=sup)
    assert queued.status_code == 202, queued.text
    while run_once(app.state.engine, "w-licences", workers=1):
        pass
    run = ok(client.get(queued.headers["Location"], headers=sup))
    assert run["status"] == "succeeded", run
    return ok(client.get(f"{L}/schedules/{run['schedule_version']}", headers=sup))


def placed(client, sup) -> dict[str, tuple[datetime, datetime]]:
    """The current schedule's process job per case: (start, end)."""
    out = {}
    for case in CASES:
        body = ok(client.get(f"{L}/schedules/current/cases/{case}", headers=sup))
        for a in body["assignments"]:
            out[case] = (
                datetime.fromisoformat(a["starts_at"]),
                datetime.fromisoformat(a["ends_at"]),
            )
    return out


@pytest.fixture(scope="module")
def order(manual, client, app, sup) -> list[str]:
    """The first schedule: the three jobs one after another from now (a server runs day and
    night), one licence."""
    solve(client, app, sup)
    first = placed(client, sup)
    order = sorted(first, key=lambda case: first[case][0])
    assert [first[case][0] for case in order] == [MONDAY_7 + timedelta(hours=h) for h in (0, 2, 4)]
    return order


def test_a_missed_start_with_no_licence_free_waits(manual, client, app, sup, order):
    first, second, third = order
    ok(client.post(f"{job_url(first)}:start", headers=sup))  # 07:00: the first starts
    # 09:30: the first overran its 120 minutes and still holds the licence; the second was to
    # start at 09:00 and nobody pressed :start, so it cannot have started
    manual.set(MONDAY_7 + timedelta(hours=2, minutes=30))
    version = solve(client, app, sup)
    assert version["status"] in ("optimal", "feasible"), version
    assert version["published_at"] is not None
    now = placed(client, sup)
    assert now[first][1] == manual.now() + timedelta(minutes=120)  # extended by its estimate
    assert now[second][0] >= now[first][1]  # waits for the licence: re-planned after it
    assert now[third][0] >= now[second][1]
    assert ok(client.get(job_url(second), headers=sup))["overdue"] is False
    report = ok(client.get(f"{L}/reports/overdue", headers=sup))
    assert report["overdue"] == []
    assert [item["case"] for item in report["overrunning"]] == [first]


def test_work_under_way_beyond_the_licences_never_holds_the_schedule_back(
    manual, client, app, sup, order
):
    first, second, third = order
    # 09:45: the second is reported started while the first has no :done: two under way on one
    # licence (the first most likely finished with nobody pressing :done)
    manual.set(MONDAY_7 + timedelta(hours=2, minutes=45))
    ok(client.post(f"{job_url(second)}:start", headers=sup))
    version = solve(client, app, sup)
    assert version["status"] in ("optimal", "feasible"), version
    assert version["published_at"] is not None
    said = [w for w in version["kpis"]["warnings"] if "planned without a licence" in w]
    assert len(said) == 1, version["kpis"]["warnings"]
    assert f"{first}/D1/process" in said[0] and "Mon 17 Mar 07:00" in said[0]
    now = placed(client, sup)
    assert now[second] == (manual.now(), manual.now() + timedelta(minutes=120))
    assert now[third][0] >= now[second][1]  # the licence the second holds is still respected
