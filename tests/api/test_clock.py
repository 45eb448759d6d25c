"""One clock: with a manual clock set, the service's "now" is that clock's, everywhere it is asked.

The snapshot's epoch, the audit trail and the pin check (which only checks pins ahead of now) all
follow the clock when it is moved; production code never reads wall time itself.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from api_support import make_lab

from models import clock

LAB = "clocked"
L = f"/labs/{LAB}"
MONDAY = datetime(2031, 3, 3, 9, 7, tzinfo=UTC)  # far from today, so wall time cannot pass for it
WEEKDAYS = [{"weekday": d, "starts": "08:00", "ends": "16:00"} for d in range(5)]
ROOT = Path(__file__).resolve().parents[2]


def ok(response, status=200):
    assert response.status_code == status, response.text
    return response.json()


@pytest.fixture
def manual():
    with clock.use(clock.ManualClock(MONDAY)) as set_clock:
        yield set_clock


@pytest.fixture(scope="module")
def sup(client, admin, keymaker):
    make_lab(client, admin, LAB)
    sup = keymaker.headers("supervisor", LAB)
    body = {"skills": ["mobile"], "shifts": WEEKDAYS, "daily_cap_minutes": 60}
    ok(client.put(f"{L}/examiners/E1", json=body, headers=sup), 201)
    ok(client.put(f"{L}/workstations/U1", json={"capabilities": ["ufed"]}, headers=sup), 201)
    case = {"priority": "P3", "received_at": "2026-11-02T09:00:00+00:00"}
    ok(client.put(f"{L}/cases/C1", json=case, headers=sup), 201)
    device = {"kind": "phone", "arrived_at": "2026-11-02T12:00:00+00:00"}
    ok(client.put(f"{L}/cases/C1/devices/D1", json=device, headers=sup), 201)
    job = {"stage": "acquire", "attended_minutes": 60}
    job |= {"skills": ["mobile"], "capabilities": ["ufed"]}
    ok(client.put(f"{L}/cases/C1/devices/D1/jobs/acquire", json=job, headers=sup), 201)
    return sup


def test_snapshot_epoch_follows_the_clock(client, sup, manual):
    epoch = datetime.fromisoformat(ok(client.get(f"{L}/snapshot", headers=sup))["epoch"])
    assert MONDAY <= epoch < MONDAY + timedelta(hours=1)  # now, rounded up to the slot
    manual.advance(timedelta(days=1))
    later = datetime.fromisoformat(ok(client.get(f"{L}/snapshot", headers=sup))["epoch"])
    assert later - epoch == timedelta(days=1)


def test_audit_stamps_are_the_clocks(client, sup, admin, manual):
    manual.set(MONDAY + timedelta(hours=2))
    ok(client.patch(f"{L}/examiners/E1", json={"daily_cap_minutes": 90}, headers=sup))
    events = ok(client.get("/audit-events", params={"lab": LAB, "limit": 200}, headers=admin))
    stamps = [e["at"] for e in events["items"] if e["action"].startswith("examiner.")]
    assert any(datetime.fromisoformat(at) == MONDAY + timedelta(hours=2) for at in stamps), stamps


def test_pin_check_asks_the_clock(client, sup, manual):
    """A Saturday pin ahead of the clock is refused; once the clock is past it, it is kept work."""
    saturday = (MONDAY + timedelta(days=5)).replace(hour=9, minute=0)
    pin = {"examiner": "E1", "workstation": "U1", "start": saturday.isoformat()}
    url = f"{L}/cases/C1/devices/D1/jobs/acquire:pin"
    refused = client.post(url, json=pin, headers=sup)
    assert refused.status_code == 422, refused.text
    manual.set(saturday + timedelta(days=1))
    ok(client.post(url, json=pin, headers=sup))


def test_production_code_never_reads_wall_time():
    pattern = re.compile(r"datetime\.now\(|datetime\.utcnow\(|date\.today\(|time\.time\(\)")
    offenders = [
        f"{path.relative_to(ROOT)}:{n}"
        for package in ("api", "models", "scheduler")
        for path in (ROOT / package).rglob("*.py")
        if path.name != "clock.py" and "benchmarks" not in path.parts
        for n, line in enumerate(path.read_text().splitlines(), 1)
        if pattern.search(line)
    ]
    assert offenders == []
