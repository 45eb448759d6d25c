"""An escalation that takes an urgent case's room says so: the repaired version names the case
that now finishes later, by how much, and whose work took the licence it waited for.

One licence, two processing jobs: a P2 case goes first; a P4 case escalated to P1 (already past
its target) takes the licence, and the P2 case finishes four hours later. The clock is a Monday
07:00 far from today; the lab freezes nothing, so the repair may move today's work.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from api_support import WEEKDAYS, make_lab, ok

from models import clock
from scheduler.worker import run_once

LAB = "saysso"
L = f"/labs/{LAB}"
MONDAY_7 = datetime(2031, 3, 3, 7, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def manual(app):
    with clock.use(clock.ManualClock(MONDAY_7)) as set_clock:
        yield set_clock


@pytest.fixture(scope="module")
def sup(manual, client, admin, keymaker):
    make_lab(client, admin, LAB, frozen_working_days=0)
    sup = keymaker.headers("supervisor", LAB)
    ok(
        client.put(
            f"{L}/examiners/E1", json={"skills": ["mobile"], "shifts": WEEKDAYS}, headers=sup
        ),
        201,
    )
    for ref in ("W1", "W2"):
        body = {"capabilities": ["processing"]}  # machines run round the clock
        ok(client.put(f"{L}/workstations/{ref}", json=body, headers=sup), 201)
    ok(client.put(f"{L}/licence-pools/axiom", json={"capacity": 1}, headers=sup))
    for case, level, received in (("A", "P2", "2031-03-01"), ("B", "P4", "2031-02-01")):
        body = {"priority": level, "received_at": f"{received}T09:00:00+00:00"}
        ok(client.put(f"{L}/cases/{case}", json=body, headers=sup), 201)
        device = {"kind": "phone", "arrived_at": f"{received}T12:00:00+00:00"}
        ok(client.put(f"{L}/cases/{case}/devices/D1", json=device, headers=sup), 201)
        job = {"stage": "process", "machine_minutes": 240, "capabilities": ["processing"]}
        job["pools"] = ["axiom"]
        ok(client.put(f"{L}/cases/{case}/devices/D1/jobs/process", json=job, headers=sup), 201)
    return sup


def drain(app) -> None:
    while run_once(app.state.engine, "w-says", workers=1):
        pass


def starts(client, sup) -> dict[str, datetime]:
    out = {}
    for case in ("A", "B"):
        for a in ok(client.get(f"{L}/schedules/current/cases/{case}", headers=sup))["assignments"]:
            out[case] = datetime.fromisoformat(a["starts_at"])
    return out


def test_the_repair_names_the_urgent_case_it_delays(manual, client, app, sup):
    body = {"mode": "full", "auto_publish": True, "time_limit_seconds": 5}
    ok(client.post(f"{L}/solve-runs", json=body, headers=sup), 202)
    drain(app)
    first = starts(client, sup)
    assert first["A"] < first["B"]  # the P2 case has the licence first
    before = ok(client.get(f"{L}/schedules/current", headers=sup))["id"]

    ok(client.post(f"{L}/cases/B:escalate", json={"priority": "P1"}, headers=sup))
    drain(app)  # the repair run the escalation queued (P1 repairs publish themselves)
    version = ok(client.get(f"{L}/schedules/current", headers=sup))
    assert version["id"] != before
    now = starts(client, sup)
    assert now["B"] < now["A"]
    said = [w for w in version["kpis"]["warnings"] if w.startswith("A (P2) now finishes")]
    assert len(said) == 1, version["kpis"]["warnings"]
    assert "4.0 h later than in the published schedule" in said[0]
    assert "A D1 process waits for the axiom licences, now given to B D1 process" in said[0]
    assert "Mon 3 Mar 15:00" in said[0]  # 07:00-11:00 B, then A
