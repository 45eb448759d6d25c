"""A repair is local: an escalation re-plans what it forces and takes room from less urgent work
first; it does not re-order other P1/P2 work that has nothing to do with it, even where that
work could be improved (docs/architecture.md §7.7, scheduler/planning/repair.py).

The published schedule comes from strict priority dispatch, which puts P2 case A (arrived first)
before P2 case C on the only phone examiner, though C has a legal deadline at 10:00: a full
re-optimisation would swap them. Then P4 case B, reviewed by the only reviewer, is escalated to
P1. The repair places B and leaves A and C where they are published.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from api_support import WEEKDAYS, make_lab, ok

from models import clock
from scheduler.worker import run_once

LAB = "local"
L = f"/labs/{LAB}"
MONDAY_7 = datetime(2031, 3, 10, 7, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def manual(app):
    with clock.use(clock.ManualClock(MONDAY_7)) as set_clock:
        yield set_clock


@pytest.fixture(scope="module")
def sup(manual, client, admin, keymaker):
    make_lab(client, admin, LAB, frozen_working_days=0)
    sup = keymaker.headers("supervisor", LAB)
    for ref, skill in (("E1", "mobile"), ("E2", "review")):
        body = {"skills": [skill], "shifts": WEEKDAYS}
        ok(client.put(f"{L}/examiners/{ref}", json=body, headers=sup), 201)
    cases = (
        ("A", "P2", "2031-03-08T09:00:00+00:00", None, "mobile", 240),
        ("C", "P2", "2031-03-08T10:00:00+00:00", "2031-03-10T10:00:00+00:00", "mobile", 60),
        ("B", "P4", "2031-03-10T06:00:00+00:00", None, "review", 120),
    )
    for case, level, received, deadline, skill, minutes in cases:
        body = {"priority": level, "received_at": received, "legal_deadline_at": deadline}
        ok(client.put(f"{L}/cases/{case}", json=body, headers=sup), 201)
        device = {"kind": "phone", "arrived_at": received}
        ok(client.put(f"{L}/cases/{case}/devices/D1", json=device, headers=sup), 201)
        job = {"stage": "acquire", "attended_minutes": minutes, "skills": [skill]}
        ok(client.put(f"{L}/cases/{case}/devices/D1/jobs/acquire", json=job, headers=sup), 201)
    return sup


def placed(client, sup) -> dict[str, tuple[str, str, str]]:
    out = {}
    for case in ("A", "B", "C"):
        for a in ok(client.get(f"{L}/schedules/current/cases/{case}", headers=sup))["assignments"]:
            out[case] = (a["examiner"], a["starts_at"], a["ends_at"])
    return out


def test_an_escalation_leaves_unrelated_urgent_work_where_it_is(manual, client, app, sup):
    manual.set(MONDAY_7.replace(second=30))  # the cases were written before the first run
    body = {"mode": "full", "auto_publish": True, "time_limit_seconds": 5}
    ok(client.post(f"{L}/solve-runs", json=body, headers=sup), 202)
    while run_once(app.state.engine, "w-local", workers=1, policy="priority"):
        pass
    before = placed(client, sup)
    assert before["A"][1] < before["C"][1]  # dispatch: A first, C past its deadline
    version_before = ok(client.get(f"{L}/schedules/current", headers=sup))["id"]

    manual.set(MONDAY_7.replace(minute=1))
    ok(client.post(f"{L}/cases/B:escalate", json={"priority": "P1"}, headers=sup))
    while run_once(app.state.engine, "w-local", workers=1):  # the repair (P1: published)
        pass
    version = ok(client.get(f"{L}/schedules/current", headers=sup))
    assert version["id"] != version_before and version["mode"] == "repair"
    after = placed(client, sup)
    assert after["A"] == before["A"] and after["C"] == before["C"]
    assert after["B"][0] == "E2"
    assert not [w for w in version["kpis"]["warnings"] if "now finishes" in w]
