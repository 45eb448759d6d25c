"""Recommendations against the published schedule as the lab lives: after a pin placed since
publication and after a start nobody reported, jobs still get options, and every eligible
examiner/workstation without one, and every kept job, says why in the lab's own terms.

Real app, real database, real CP-SAT, on a manual clock (docs/architecture.md §5.6).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from api_support import all_pages, case_payload

from models import clock
from scheduler.worker import run_once

LAB = "living"
L = f"/labs/{LAB}"
MONDAY = datetime(2031, 3, 3, 7, 0, tzinfo=UTC)  # 08:00 in Berlin, far from today
SHIFTS = [{"weekday": d, "starts": "08:00", "ends": "16:30"} for d in range(5)]
ENGINE_WORDS = re.compile(r"\bday -?\d+ \d{2}:\d{2}\b|\[\d+, \d+\)")


def ok(response, status=200) -> Any:
    assert response.status_code == status, response.text
    return response.json()


@pytest.fixture(scope="module")
def manual():
    with clock.use(clock.ManualClock(MONDAY)) as set_clock:
        yield set_clock


@pytest.fixture(scope="module")
def sup(client, app, admin, keymaker, manual) -> dict[str, str]:
    body = {
        "code": LAB,
        "name": "Living lab",
        "timezone": "Europe/Berlin",
        "planning_horizon_days": 5,
        "frozen_working_days": 0,
        "start_grace_minutes": 60,
    }
    ok(client.post("/labs", json=body, headers=admin), 201)
    sup = keymaker.headers("supervisor", LAB)
    for ref in ("E1", "E2"):
        person = {"skills": ["mobile", "review"], "shifts": SHIFTS}
        ok(client.put(f"{L}/examiners/{ref}", json=person, headers=sup), 201)
    for ref in ("U1", "U2"):
        ok(client.put(f"{L}/workstations/{ref}", json={"capabilities": ["ufed"]}, headers=sup), 201)
    cases = [case_payload(f"C{n}", priority="P3") for n in range(1, 5)]
    ok(client.post(f"{L}/cases:import", json={"cases": cases}, headers=sup))
    run = {"time_limit_seconds": 2, "reason": "test"}
    location = client.post(f"{L}/solve-runs", json=run, headers=sup).headers["Location"]
    assert run_once(app.state.engine, "w-living", policy="cpsat")
    solved = ok(client.get(location, headers=sup))
    assert solved["status"] == "succeeded", solved
    ok(client.post(f"{L}/schedules/{solved['schedule_version']}:publish", headers=sup))
    return sup


def assignments(client, sup) -> list[dict[str, Any]]:
    rows = all_pages(client, f"{L}/schedules/current/assignments", sup)
    return sorted(rows, key=lambda r: (r["starts_at"], r["job_id"]))


def recommendations(client, sup, job_id: int) -> dict[str, Any]:
    body: dict[str, Any] = ok(client.get(f"{L}/jobs/{job_id}/recommendations", headers=sup))
    if body["kept"]:
        assert body["kept_reason"] and not ENGINE_WORDS.search(body["kept_reason"])
        assert body["options"] == [] and body["refused"] == []
    else:
        assert body["options"] or body["refused"], body
        for refused in body["refused"]:
            assert refused["reason"] and not ENGINE_WORDS.search(refused["reason"]), refused
    return body


def job_of(rows: list[dict[str, Any]], case: str, ref: str) -> dict[str, Any]:
    return next(r for r in rows if r["case"] == case and r["job"].endswith(f"/{ref}"))


def test_after_a_pin_the_pinned_jobs_successor_and_the_others_get_options(client, sup):
    rows = assignments(client, sup)
    acquire = next(r for r in rows if r["job"].endswith("/acquire"))
    best = recommendations(client, sup, acquire["job_id"])["options"][0]
    pin = {"start": best["starts_at"], "examiner": best["examiner"]}
    pin["workstation"] = best["workstation"]
    ok(client.post(f"{L}/jobs/{acquire['job_id']}:pin", json=pin, headers=sup))

    pinned = recommendations(client, sup, acquire["job_id"])
    assert pinned["kept"] and pinned["kept_reason"].startswith("pinned at ")
    assert pinned["current"]["starts_at"] == best["starts_at"]  # where it is pinned now
    process = job_of(rows, acquire["case"], "process")
    after = recommendations(client, sup, process["job_id"])
    assert after["options"], after  # before, its pinned predecessor counted as unscheduled
    pinned_end = datetime.fromisoformat(best["ends_at"])
    assert all(datetime.fromisoformat(o["starts_at"]) >= pinned_end for o in after["options"])

    answers = [recommendations(client, sup, r["job_id"]) for r in rows]
    movable = [a for a in answers if not a["kept"]]
    assert movable and sum(bool(a["options"]) for a in movable) >= len(movable) // 2

    # An option is one the service accepts as it stands: pinning the successor there is kept.
    option = after["options"][0]
    pin = {"start": option["starts_at"], "examiner": option["examiner"]}
    if option["workstation"]:
        pin["workstation"] = option["workstation"]
    ok(client.post(f"{L}/jobs/{process['job_id']}:pin", json=pin, headers=sup))


def test_after_a_missed_start_the_job_is_kept_and_its_chain_still_moves(client, sup, manual):
    rows = assignments(client, sup)
    missed = next(
        r
        for r in rows
        if r["job"].endswith("/acquire")
        and not client.get(f"{L}/jobs/{r['job_id']}", headers=sup).json().get("pin")
    )
    start = datetime.fromisoformat(missed["starts_at"])
    manual.set(start + timedelta(minutes=20))  # past its start, nothing reported, within grace
    answer = recommendations(client, sup, missed["job_id"])
    assert answer["kept"] and "taken as started" in answer["kept_reason"], answer
    review = job_of(rows, missed["case"], "review")
    later = recommendations(client, sup, review["job_id"])
    assert later["options"], later
