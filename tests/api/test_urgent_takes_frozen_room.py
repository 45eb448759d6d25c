"""Urgent work is not made to wait behind the frozen window, through the real API on a manual
clock (docs/architecture.md §7.9): a new P1 case whose only way to start by its target start is
room that frozen P4 work holds gets that room, and the version names what gave way; where it has
room of its own, the frozen work stays exactly where it is.

One examiner works 08:00-16:00 UTC on weekdays; each unlock needs them for its first 15 minutes
and a GrayKey for ten hours. The clock starts on a Monday at 07:00, far from today.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from api_support import WEEKDAYS, make_lab, ok

from models import clock
from scheduler.worker import run_once

MONDAY_7 = datetime(2031, 3, 24, 7, 0, tzinfo=UTC)
MONDAY_8 = MONDAY_7 + timedelta(hours=1)


@pytest.fixture(scope="module")
def manual(app):
    with clock.use(clock.ManualClock(MONDAY_7)) as set_clock:
        yield set_clock


def unlock(client, sup, lab: str, case: str, level: str, received: datetime) -> None:
    body = {"priority": level, "received_at": received.isoformat()}
    ok(client.put(f"/labs/{lab}/cases/{case}", json=body, headers=sup), 201)
    device = {"kind": "phone", "arrived_at": received.isoformat()}
    ok(client.put(f"/labs/{lab}/cases/{case}/devices/D1", json=device, headers=sup), 201)
    job = {"stage": "unlock", "attended_minutes": 15, "machine_minutes": 600}
    job |= {"skills": ["mobile"], "capabilities": ["ufed"]}
    ok(client.put(f"/labs/{lab}/cases/{case}/devices/D1/jobs/unlock", json=job, headers=sup), 201)


def run(client, app, sup, lab: str, mode: str) -> dict:
    """A run with auto-publish, executed by a real worker (with any run it queued): its version."""
    body = {"mode": mode, "auto_publish": True, "time_limit_seconds": 5}
    queued = client.post(f"/labs/{lab}/solve-runs", json=body, headers=sup)
    assert queued.status_code == 202, queued.text
    while run_once(app.state.engine, f"w-{lab}", workers=1):
        pass
    done = ok(client.get(queued.headers["Location"], headers=sup))
    assert done["status"] == "succeeded", done
    return ok(client.get(f"/labs/{lab}/schedules/{done['schedule_version']}", headers=sup))


def starts(client, sup, lab: str, cases=("P4CASE", "P1CASE")) -> dict[str, tuple[datetime, str]]:
    out = {}
    for case in cases:
        body = ok(client.get(f"/labs/{lab}/schedules/current/cases/{case}", headers=sup))
        for a in body["assignments"]:
            out[case] = (datetime.fromisoformat(a["starts_at"]), a["workstation"])
    return out


def lab_with(client, app, admin, keymaker, lab: str, graykeys: int) -> dict:
    """A lab freezing the next working day, its P4 unlock published (and so frozen) on G1 from
    Monday 08:00."""
    make_lab(client, admin, lab, frozen_working_days=1)
    sup = keymaker.headers("supervisor", lab)
    body = {"skills": ["mobile"], "shifts": WEEKDAYS}
    ok(client.put(f"/labs/{lab}/examiners/E1", json=body, headers=sup), 201)
    for n in range(1, graykeys + 1):
        body = {"capabilities": ["ufed"]}  # machines run round the clock
        ok(client.put(f"/labs/{lab}/workstations/G{n}", json=body, headers=sup), 201)
    unlock(client, sup, lab, "P4CASE", "P4", MONDAY_7 - timedelta(days=30))
    run(client, app, sup, lab, "full")
    assert starts(client, sup, lab, ("P4CASE",))["P4CASE"] == (MONDAY_8, "G1")
    return sup


def test_a_p1_case_with_no_room_before_its_target_takes_frozen_p4_room(
    manual, client, app, admin, keymaker
):
    lab = "urgentroom"
    sup = lab_with(client, app, admin, keymaker, lab, graykeys=1)
    manual.set(MONDAY_7 + timedelta(minutes=15))
    # due to start by Tue 07:15; behind the P4 unlock it could start Tue 08:00 at the earliest
    unlock(client, sup, lab, "P1CASE", "P1", manual.now())
    version = run(client, app, sup, lab, "repair")
    now = starts(client, sup, lab)
    assert now["P1CASE"] == (MONDAY_8, "G1")
    assert now["P4CASE"][0] >= MONDAY_8 + timedelta(hours=10)  # after the P1 unlock
    said = [w for w in version["kpis"]["warnings"] if "may give way to job P1CASE/D1/unlock" in w]
    assert len(said) == 1, version["kpis"]["warnings"]
    assert said[0].endswith("P4CASE/D1/unlock") and "Tue 25 Mar 07:15" in said[0]


def test_a_p1_case_with_room_of_its_own_leaves_frozen_work_alone(
    manual, client, app, admin, keymaker
):
    lab = "urgentroom2"
    manual.set(MONDAY_7)
    sup = lab_with(client, app, admin, keymaker, lab, graykeys=2)
    manual.set(MONDAY_7 + timedelta(minutes=15))
    unlock(client, sup, lab, "P1CASE", "P1", manual.now())
    version = run(client, app, sup, lab, "repair")
    now = starts(client, sup, lab)
    assert now["P4CASE"] == (MONDAY_8, "G1")  # frozen, kept exactly
    assert now["P1CASE"][1] == "G2"
    # the examiner is on the P4 unlock from 08:00 to 08:15
    assert now["P1CASE"][0] == MONDAY_8 + timedelta(minutes=15)
    assert not [w for w in version["kpis"]["warnings"] if "may give way" in w]
