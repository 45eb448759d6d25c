"""A job cannot have started where work under way fills its workstation: with a GrayKey of two
running two unlocks that started late, a third unlock whose planned start has passed is
*waiting*, re-planned after them, not taken as started on top of them (which would make the
next version infeasible and hold it back). Through the real API on a manual clock
(docs/architecture.md §7.9)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from api_support import WEEKDAYS, make_lab, ok

from models import clock
from scheduler.worker import run_once

LAB = "graykey"
L = f"/labs/{LAB}"
MONDAY_7 = datetime(2031, 3, 17, 7, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def manual(app):
    with clock.use(clock.ManualClock(MONDAY_7)) as set_clock:
        yield set_clock


def url(case: str) -> str:
    return f"{L}/cases/{case}/devices/D1/jobs/unlock"


@pytest.fixture(scope="module")
def sup(manual, client, admin, keymaker):
    make_lab(client, admin, LAB, frozen_working_days=0, start_grace_minutes=60)
    sup = keymaker.headers("supervisor", LAB)
    for ref in ("E1", "E2", "E3"):
        body = {"skills": ["mobile"], "shifts": WEEKDAYS}
        ok(client.put(f"{L}/examiners/{ref}", json=body, headers=sup), 201)
    body = {"capabilities": ["graykey"], "capacity": 2}
    ok(client.put(f"{L}/workstations/G1", json=body, headers=sup), 201)
    for case in ("A", "B", "C"):
        body = {"priority": "P3", "received_at": "2031-03-15T09:00:00+00:00"}
        ok(client.put(f"{L}/cases/{case}", json=body, headers=sup), 201)
        device = {"kind": "phone", "arrived_at": "2031-03-15T12:00:00+00:00"}
        ok(client.put(f"{L}/cases/{case}/devices/D1", json=device, headers=sup), 201)
        unlock = {"stage": "unlock", "attended_minutes": 15, "machine_minutes": 240}
        unlock |= {"skills": ["mobile"], "capabilities": ["graykey"]}
        ok(client.put(url(case), json=unlock, headers=sup), 201)
    return sup


def full_run(client, app, sup) -> dict:
    body = {"mode": "full", "auto_publish": True, "time_limit_seconds": 5}
    queued = client.post(f"{L}/solve-runs", json=body, headers=sup)
    assert queued.status_code == 202, queued.text
    while run_once(app.state.engine, "w-graykey", workers=1):
        pass
    return ok(client.get(queued.headers["Location"], headers=sup))


def starts(client, sup) -> dict[str, datetime]:
    out = {}
    for case in ("A", "B", "C"):
        for a in ok(client.get(f"{L}/schedules/current/cases/{case}", headers=sup))["assignments"]:
            out[case] = datetime.fromisoformat(a["starts_at"])
    return out


def test_a_full_workstation_keeps_a_missed_start_waiting(manual, client, app, sup):
    assert full_run(client, app, sup)["status"] == "succeeded"
    first = starts(client, sup)
    two, third = sorted(first, key=lambda c: (first[c], c))[:2], max(first, key=first.get)
    assert first[two[0]] == first[two[1]] < first[third]  # two at once, the third after them
    # the two start an hour late, so they hold the GrayKey an hour past the third's start
    manual.set(first[two[0]] + timedelta(hours=1))
    for case in two:
        ok(client.post(f"{url(case)}:start", headers=sup))
    manual.set(first[third] + timedelta(minutes=30))
    run = full_run(client, app, sup)
    assert run["status"] == "succeeded", run
    version = ok(client.get(f"{L}/schedules/current", headers=sup))
    assert version["id"] == run["schedule_version"], "the version was held back"
    assert version["kpis"]["unscheduled_by_reason"].get("pin_conflict", 0) == 0
    now = starts(client, sup)
    assert now[third] >= first[two[0]] + timedelta(hours=1, minutes=240)  # after the two end
    assert ok(client.get(url(third), headers=sup))["overdue"] is False
