"""Subscription links: a calendar app and a browser open a lab's schedule with a feed token."""

from __future__ import annotations

from datetime import datetime

import pytest
from api_support import case_payload
from icalendar import Calendar

from scheduler.worker import run_once

LAB = "feedlab"
SHIFTS = [{"weekday": d, "starts": "08:00", "ends": "16:30"} for d in range(7)]


@pytest.fixture(scope="module")
def published(app) -> list[tuple[int, datetime]]:
    """The versions this module published on its backend: (id, published_at), oldest first."""
    return []


def _publish_a_run(client, app, sup, policy: str, published: list) -> dict:
    queued = client.post(
        f"/labs/{LAB}/solve-runs", json={"time_limit_seconds": 2, "reason": "test"}, headers=sup
    )
    assert queued.status_code == 202, queued.text
    assert run_once(app.state.engine, "w-feeds", policy=policy)
    run = client.get(queued.headers["Location"], headers=sup).json()
    assert run["status"] == "succeeded", run
    answer = client.post(f"/labs/{LAB}/schedules/{run['schedule_version']}:publish", headers=sup)
    assert answer.status_code == 200, answer.text
    version = answer.json()
    published.append((version["id"], datetime.fromisoformat(version["published_at"])))
    return version


@pytest.fixture(scope="module")
def lab(client, admin, keymaker):
    r = client.post(
        "/labs",
        json={"code": LAB, "name": "Feed lab", "timezone": "Europe/London"},
        headers=admin,
    )
    assert r.status_code == 201, r.text
    sup = keymaker.headers("supervisor", LAB)
    for ref in ("E1", "E2"):
        r = client.put(
            f"/labs/{LAB}/examiners/{ref}",
            json={"skills": ["mobile", "review"], "shifts": SHIFTS},
            headers=sup,
        )
        assert r.status_code == 201, r.text
    r = client.put(f"/labs/{LAB}/workstations/U1", json={"capabilities": ["ufed"]}, headers=sup)
    assert r.status_code == 201, r.text
    cases = [case_payload(f"C{n}", priority=("P1", "P2", "P3")[n % 3]) for n in range(1, 7)]
    r = client.post(f"/labs/{LAB}/cases:import", json={"cases": cases}, headers=sup)
    assert r.status_code == 200, r.text
    return sup


def _calendar_link(client, headers, examiner="E1", name="phone") -> dict:
    r = client.post(
        f"/labs/{LAB}/examiners/{examiner}/calendar-feeds", json={"name": name}, headers=headers
    )
    assert r.status_code == 201, r.text
    return r.json()


def test_a_calendar_app_subscribes_without_a_key(client, app, lab, published):
    _publish_a_run(client, app, lab, "cpsat", published)
    link = _calendar_link(client, lab)
    assert link["kind"] == "calendar" and link["examiner"] == "E1"
    assert "/feeds/labqfeed_" in link["url"] and link["url"].endswith("/schedule.ics")
    r = client.get(link["url"])  # no X-API-Key: the token in the URL is the credential
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/calendar")
    keyed = client.get(f"/labs/{LAB}/examiners/E1/schedule.ics", headers=lab)
    feed_events = {str(e["UID"]) for e in Calendar.from_ical(r.content).walk("VEVENT")}
    keyed_events = {str(e["UID"]) for e in Calendar.from_ical(keyed.content).walk("VEVENT")}
    assert feed_events == keyed_events and feed_events
    # The secret is shown once: the list names the token by prefix only.
    listed = client.get(f"/labs/{LAB}/feeds", headers=lab).json()["items"]
    mine = [f for f in listed if f["prefix"] == link["prefix"]]
    assert len(mine) == 1 and "url" not in mine[0] and "labqfeed_" not in str(listed)


def _placements(client, sup, version: int) -> dict[int, tuple]:
    body = client.get(f"/labs/{LAB}/schedules/{version}/assignments", headers=sup).json()
    items = body["items"] if isinstance(body, dict) else body
    return {
        a["job_id"]: (a["examiner"], a["workstation"], a["starts_at"], a["ends_at"]) for a in items
    }


def test_events_carry_sequence_and_last_modified_across_publications(
    client, app, lab, published
):
    # two baselines, deterministic whatever the machine's load: strict priority and FIFO order
    # this lab's P1-P3 cases differently, so some placements change between the publications
    _publish_a_run(client, app, lab, "priority", published)
    _publish_a_run(client, app, lab, "fifo", published)
    # What a calendar must see: per job, the publications that changed its placement.
    expected: dict[int, tuple[int, datetime]] = {}
    last: dict[int, tuple] = {}
    for version, published_at in published:
        for job_id, placement in _placements(client, lab, version).items():
            if job_id not in last:
                expected[job_id] = (0, published_at)
            elif last[job_id] != placement:
                expected[job_id] = (expected[job_id][0] + 1, published_at)
            last[job_id] = placement
    current = _placements(client, lab, published[-1][0])
    seen = 0
    for examiner in ("E1", "E2"):
        link = _calendar_link(client, lab, examiner)
        for event in Calendar.from_ical(client.get(link["url"]).content).walk("VEVENT"):
            job_id = int(str(event["UID"]).removeprefix(f"labq-{LAB}-job-").split("@")[0])
            assert current[job_id][0] == examiner
            sequence, modified = expected[job_id]
            assert int(event["SEQUENCE"]) == sequence, job_id
            assert event.decoded("LAST-MODIFIED") == modified.replace(microsecond=0), job_id
            seen += 1
    assert seen == sum(1 for p in current.values() if p[0] is not None)
    assert any(sequence > 0 for sequence, _ in expected.values())


def test_a_browser_opens_the_board_with_a_link(client, app, lab):
    r = client.post(f"/labs/{LAB}/board-links", json={"name": "wall screen"}, headers=lab)
    assert r.status_code == 201, r.text
    link = r.json()
    assert link["kind"] == "board" and link["examiner"] is None
    page = client.get(link["url"])
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "Feed lab" in page.text
    # A board token does not open a calendar, nor the other way round.
    token = link["url"].split("/feeds/")[1].split("/")[0]
    assert client.get(f"/feeds/{token}/schedule.ics").status_code == 404


def test_a_revoked_link_stops_at_once_and_is_audited(client, lab, admin):
    link = _calendar_link(client, lab, name="old phone")
    assert client.get(link["url"]).status_code == 200
    r = client.delete(f"/labs/{LAB}/feeds/{link['prefix']}", headers=lab)
    assert r.status_code == 204
    gone = client.get(link["url"])
    assert gone.status_code == 404 and gone.headers["content-type"] == "application/problem+json"
    assert client.delete(f"/labs/{LAB}/feeds/{link['prefix']}", headers=lab).status_code == 409
    trail = client.get("/audit-events", params={"lab": LAB, "limit": 500}, headers=admin)
    actions = {e["action"] for e in trail.json()["items"] if e["entity_id"] == link["prefix"]}
    assert actions == {"feed_token.create", "feed_token.revoke"}


@pytest.mark.parametrize(
    "token", ["nope", "labqfeed_deadbeef_x", "labqfeed__", "labq_deadbeef_notafeed"]
)
def test_a_wrong_token_is_404_and_says_nothing_more(client, token):
    r = client.get(f"/feeds/{token}/schedule.ics")
    assert r.status_code == 404 and "revoked" in r.json()["detail"]


def test_an_examiner_manages_only_its_own_feeds(client, lab, keymaker):
    e1 = keymaker.headers("examiner", LAB, "E1")
    own = _calendar_link(client, e1, "E1", name="my phone")
    assert own["examiner"] == "E1"
    r = client.post(f"/labs/{LAB}/examiners/E2/calendar-feeds", json={"name": "x"}, headers=e1)
    assert r.status_code == 403
    other = _calendar_link(client, lab, "E2", name="e2 phone")
    assert client.delete(f"/labs/{LAB}/feeds/{other['prefix']}", headers=e1).status_code == 403
    assert client.delete(f"/labs/{LAB}/feeds/{own['prefix']}", headers=e1).status_code == 204
    r = client.post(f"/labs/{LAB}/board-links", json={"name": "x"}, headers=e1)
    assert r.status_code == 403
    assert client.get(f"/labs/{LAB}/feeds", headers=e1).status_code == 403


def test_a_key_of_another_lab_creates_no_link_here(client, admin, keymaker, lab):
    r = client.post(
        "/labs", json={"code": "otherfeeds", "name": "O", "timezone": "UTC"}, headers=admin
    )
    assert r.status_code == 201
    stranger = keymaker.headers("supervisor", "otherfeeds")
    r = client.post(f"/labs/{LAB}/board-links", json={"name": "x"}, headers=stranger)
    assert r.status_code == 403
