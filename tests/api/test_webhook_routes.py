"""Webhook subscriptions over HTTP: who may manage them, the secret shown once, the delivery log,
and a publish request that never waits on a receiver. Real app, real database, real receiver."""

from __future__ import annotations

import threading
from datetime import timedelta

import httpx
import pytest
from api_support import case_payload, make_lab

from models.base import utcnow
from scheduler.benchmarks.receiver import Receiver
from scheduler.delivery import deliver_due
from scheduler.worker import run_once

LAB, OTHER = "hooks", "hooks-other"
SHIFTS = [{"weekday": d, "starts": "08:00", "ends": "16:30"} for d in range(5)]


@pytest.fixture(scope="module")
def world(client, admin, keymaker):
    make_lab(client, admin, LAB, planning_horizon_days=3)
    make_lab(client, admin, OTHER)
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
    cases = [case_payload(f"C{n}", priority=("P1", "P2", "P3")[n % 3]) for n in range(1, 4)]
    r = client.post(f"/labs/{LAB}/cases:import", json={"cases": cases}, headers=sup)
    assert r.status_code == 200, r.text
    return {
        "sup": sup,
        "auditor": keymaker.headers("auditor", LAB),
        "integration": keymaker.headers("integration", LAB),
        "other_sup": keymaker.headers("supervisor", OTHER),
    }


@pytest.fixture
def receiver():
    hook = Receiver().start()
    yield hook
    hook.gate.set()
    hook.stop()


def _create(client, headers, url, types=("schedule.published",)):
    return client.post(
        f"/labs/{LAB}/webhooks", json={"url": url, "event_types": list(types)}, headers=headers
    )


def _new_version(client, app, sup) -> int:
    queued = client.post(f"/labs/{LAB}/solve-runs", json={"time_limit_seconds": 2}, headers=sup)
    assert queued.status_code == 202, queued.text
    assert run_once(app.state.engine, "w-hooks", policy="fifo")
    run = client.get(queued.headers["Location"], headers=sup).json()
    assert run["status"] == "succeeded", run
    return int(run["schedule_version"])


def test_create_shows_the_secret_once_and_never_again(client, world, admin):
    created = _create(client, world["sup"], "https://cases.example.org/labq")
    assert created.status_code == 201, created.text
    body = created.json()
    secret = body["secret"]
    assert secret.startswith("whsec_") and len(secret) > 40
    assert created.headers["Location"] == f"/labs/{LAB}/webhooks/{body['id']}"
    assert body["event_types"] == ["schedule.published"] and body["pending"] == 0
    listed = client.get(f"/labs/{LAB}/webhooks", headers=world["auditor"])
    one = client.get(f"/labs/{LAB}/webhooks/{body['id']}", headers=world["sup"])
    audit = client.get(f"/labs/{LAB}/audit-events?entity_type=webhook_subscription", headers=admin)
    for response in (listed, one, audit):
        assert response.status_code == 200, response.text
        assert secret not in response.text and "secret" not in response.text
    assert body["id"] in [w["id"] for w in listed.json()["items"]]
    assert [e["action"] for e in audit.json()["items"]] == ["webhook.create"]

    assert (
        client.delete(f"/labs/{LAB}/webhooks/{body['id']}", headers=world["sup"]).status_code == 204
    )
    gone = client.get(f"/labs/{LAB}/webhooks/{body['id']}", headers=world["sup"])
    assert gone.status_code == 404
    assert gone.headers["content-type"] == "application/problem+json"
    audit = client.get(f"/labs/{LAB}/audit-events?entity_type=webhook_subscription", headers=admin)
    assert [e["action"] for e in audit.json()["items"]] == ["webhook.create", "webhook.delete"]


def test_only_admins_and_supervisors_of_the_lab_manage_webhooks(client, world, admin):
    url = "https://cases.example.org/labq"
    assert _create(client, world["auditor"], url).status_code == 403
    assert _create(client, world["integration"], url).status_code == 403
    assert _create(client, world["other_sup"], url).status_code == 403
    assert client.get(f"/labs/{LAB}/webhooks", headers=world["other_sup"]).status_code == 403
    assert client.get(f"/labs/{LAB}/webhooks", headers=world["integration"]).status_code == 403
    created = _create(client, admin, url)
    assert created.status_code == 201
    hook_id = created.json()["id"]
    # Another lab's webhook is not found through this lab, whoever asks.
    assert client.get(f"/labs/{OTHER}/webhooks/{hook_id}", headers=admin).status_code == 404
    assert (
        client.delete(f"/labs/{LAB}/webhooks/{hook_id}", headers=world["auditor"]).status_code
        == 403
    )
    assert client.delete(f"/labs/{LAB}/webhooks/{hook_id}", headers=admin).status_code == 204


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"url": "https://x.example/h", "event_types": []}, "event_types"),
        ({"url": "https://x.example/h", "event_types": ["case.deleted"]}, "event_types"),
        ({"url": "ftp://x.example/h", "event_types": ["run.failed"]}, "url"),
        ({"url": "not a url", "event_types": ["run.failed"]}, "url"),
        ({"url": "https://x.example/h", "event_types": ["run.failed"], "secret": "s"}, "secret"),
    ],
)
def test_bad_subscriptions_are_refused_naming_the_field(client, world, payload, field):
    response = client.post(f"/labs/{LAB}/webhooks", json=payload, headers=world["sup"])
    assert response.status_code == 422, response.text
    assert field in response.text


def test_the_delivery_log_and_a_publish_that_does_not_wait_on_a_slow_receiver(
    client, app, world, receiver
):
    sup = world["sup"]
    created = _create(client, sup, receiver.url).json()
    receiver.secret = created["secret"]
    hook = f"/labs/{LAB}/webhooks/{created['id']}"
    first = _new_version(client, app, sup)
    assert client.post(f"/labs/{LAB}/schedules/{first}:publish", headers=sup).status_code == 200
    assert client.get(hook, headers=sup).json()["pending"] == 1

    # A delivery loop posts the event to a receiver that does not answer yet ...
    receiver.gate.clear()
    engine = app.state.engine
    patient = httpx.Client(timeout=600)  # the step waits for the gate, however slow this box
    step = threading.Thread(
        target=deliver_due, args=(engine,), kwargs={"client": patient}, daemon=True
    )
    step.start()
    assert receiver.arrived.wait(timeout=60)
    # ... and a publish meanwhile neither waits for it nor fails: no lock is held while posting.
    second = _new_version(client, app, sup)
    published = client.post(f"/labs/{LAB}/schedules/{second}:publish", headers=sup)
    assert published.status_code == 200, published.text
    assert receiver.received == []  # the receiver still has not answered
    receiver.gate.set()
    step.join(timeout=600)
    patient.close()
    assert not step.is_alive()

    log = client.get(f"{hook}/deliveries", headers=world["auditor"])
    assert log.status_code == 200, log.text
    delivered, waiting = log.json()["items"]
    assert delivered["status"] == "delivered" and delivered["attempts"] == 1
    assert delivered["last_status_code"] == 200 and delivered["delivered_at"] is not None
    assert delivered["event_type"] == "schedule.published" and delivered["next_attempt_at"] is None
    assert delivered["event_id"] == receiver.received[0].event_id
    assert receiver.received[0].valid
    assert waiting["status"] == "pending" and waiting["attempts"] == 0
    assert waiting["next_attempt_at"] is not None
    assert client.get(f"{hook}/deliveries?status=pending", headers=sup).json()["items"] == [waiting]
    page = client.get(f"{hook}/deliveries?limit=1", headers=sup).json()
    assert [d["id"] for d in page["items"]] == [delivered["id"]]
    rest = client.get(f"{hook}/deliveries?cursor={page['next_cursor']}", headers=sup).json()
    assert [d["id"] for d in rest["items"]] == [waiting["id"]]
    assert client.get(f"{hook}/deliveries?status=bogus", headers=sup).status_code == 422

    # The second event goes out on the next step, after the first: order per subscription.
    assert deliver_due(engine, now=utcnow() + timedelta(seconds=1)).delivered == 1
    assert [r.data["data"]["version"] for r in receiver.accepted()] == [first, second]
    assert client.delete(hook, headers=sup).status_code == 204


def test_ids_past_32_bits_and_urls_that_normalise_too_long_are_refused(client, admin):
    """Found by schemathesis: both reached PostgreSQL and failed there with a 500."""
    lab = client.get("/labs", headers=admin).json()["items"][0]["code"]
    for method in ("GET", "DELETE"):
        r = client.request(method, f"/labs/{lab}/webhooks/{2**31}", headers=admin)
        assert r.status_code in (404, 422), r.text
    long_url = "http://127.0.0.1:9/" + "é" * 1000  # 6 characters each once percent-encoded
    r = client.post(
        f"/labs/{lab}/webhooks",
        json={"url": long_url, "event_types": ["run.failed"]},
        headers=admin,
    )
    assert r.status_code == 422, r.text
