"""Webhooks end to end on a real database and a real receiving HTTP server on loopback.

Events are written with the change that causes them (a publication, a failed run); the delivery
loop is driven one step at a time with an explicit ``now``, so nothing here depends on timing.
"""

from __future__ import annotations

import random
import threading
from datetime import timedelta

import pytest
from lab_builders import MONDAY, small_lab
from sqlalchemy import delete, func, select

from models import WebhookDelivery, WebhookEvent, WebhookSubscription
from scheduler.benchmarks.receiver import Receiver
from scheduler.core.dispatch import dispatch
from scheduler.db import session_scope
from scheduler.delivery import backoff_seconds, claim_due, deliver_due
from scheduler.planning import views
from scheduler.planning.loader import load_snapshot
from scheduler.planning.publish import current_version, publish
from scheduler.planning.runs import queue_run
from scheduler.planning.store import store_plan
from scheduler.services import webhooks
from scheduler.services.labs import get_lab
from scheduler.settings import Settings
from scheduler.worker import run_once

SETTINGS = Settings(
    webhook_backoff_base_seconds=5,
    webhook_backoff_cap_seconds=60,
    webhook_max_age_seconds=86_400,
    webhook_timeout_seconds=5,
)
ALL_TYPES = ("schedule.published", "case.forecast_changed", "case.sla_breached", "run.failed")


@pytest.fixture(autouse=True)
def no_subscriptions_left(shared_engine):
    """The delivery loop serves every lab: each test starts with an empty outbox."""
    yield
    with session_scope(shared_engine) as session:
        session.execute(delete(WebhookSubscription))
        session.execute(delete(WebhookEvent))


@pytest.fixture
def receiver():
    started = []

    def make(secret: str | None = None) -> Receiver:
        r = Receiver(secret)
        started.append(r)
        return r

    yield make
    for r in started:
        r.gate.set()
        r.stop()


def _lab(engine, code, cases=3):
    with session_scope(engine) as session:
        small_lab(session, code, cases=cases)


def _subscribe(engine, code, url, types=ALL_TYPES):
    with session_scope(engine) as session:
        new = webhooks.create_subscription(
            session, get_lab(session, code), actor="sup", url=url, event_types=types
        )
        return new.subscription.id, new.secret


def _publish(engine, code, now=MONDAY):
    """Solve (a dispatch baseline: fast and deterministic) and publish at ``now``."""
    with session_scope(engine) as session:
        lab = get_lab(session, code)
        snapshot, idmap = load_snapshot(session, lab, now)
        version = store_plan(session, lab, None, snapshot, dispatch(snapshot, "fifo"), idmap)
        publish(session, version, actor="sup", now=now)
        return version.id


def _events(engine, code, event_type=None):
    with session_scope(engine) as session:
        lab = get_lab(session, code)
        query = select(WebhookEvent).where(WebhookEvent.lab_id == lab.id)
        if event_type:
            query = query.where(WebhookEvent.type == event_type)
        return [(e.uid, e.type, e.body) for e in session.scalars(query.order_by(WebhookEvent.id))]


def _deliveries(engine, subscription_id):
    with session_scope(engine) as session:
        rows = session.scalars(
            select(WebhookDelivery)
            .where(WebhookDelivery.subscription_id == subscription_id)
            .order_by(WebhookDelivery.id)
        ).all()
        for row in rows:
            session.expunge(row)
        return rows


def _step(engine, now, settings=SETTINGS):
    return deliver_due(engine, now=now, settings=settings, rng=random.Random(7))


def test_a_publication_is_delivered_once_with_a_valid_signature(shared_engine, lab_code, receiver):
    _lab(shared_engine, lab_code)
    hook = receiver()
    hook.start()
    sub, secret = _subscribe(shared_engine, lab_code, hook.url, ["schedule.published"])
    hook.secret = secret
    hook.clock = (MONDAY + timedelta(seconds=1)).timestamp
    version = _publish(shared_engine, lab_code)

    step = _step(shared_engine, MONDAY + timedelta(seconds=1))
    assert (step.attempted, step.delivered) == (1, 1)
    (got,) = hook.received
    assert got.valid, got.signature
    assert got.event_type == "schedule.published"
    assert got.event_id == got.data["id"]
    assert got.data["lab"] == lab_code and got.data["data"]["version"] == version
    assert got.data["data"]["previous_version"] is None
    # A forged body with the same signature is refused by the receiver's check.
    assert not webhooks.verify_signature(secret, got.signature, got.body + b" ", now=hook.clock())
    (delivery,) = _deliveries(shared_engine, sub)
    assert (delivery.status, delivery.attempts, delivery.last_status_code) == ("delivered", 1, 200)
    assert _step(shared_engine, MONDAY + timedelta(hours=1)).attempted == 0
    assert len(hook.received) == 1


def test_a_500_is_retried_after_the_backoff_and_delivered_once(shared_engine, lab_code, receiver):
    _lab(shared_engine, lab_code)
    hook = receiver()
    hook.start()
    sub, _ = _subscribe(shared_engine, lab_code, hook.url, ["schedule.published"])
    hook.answers.append(500)
    _publish(shared_engine, lab_code)
    t0 = MONDAY + timedelta(seconds=1)

    first = _step(shared_engine, t0)
    assert (first.attempted, first.retrying, first.delivered) == (1, 1, 0)
    (waiting,) = _deliveries(shared_engine, sub)
    assert waiting.status == "pending" and waiting.last_status_code == 500
    assert "HTTP 500" in waiting.last_error
    assert waiting.next_attempt_at > t0
    assert _step(shared_engine, t0).attempted == 0  # not due before its backoff
    second = _step(shared_engine, waiting.next_attempt_at)
    assert (second.attempted, second.delivered) == (1, 1)
    assert _step(shared_engine, waiting.next_attempt_at + timedelta(hours=1)).attempted == 0
    (done,) = _deliveries(shared_engine, sub)
    assert (done.status, done.attempts, done.last_status_code) == ("delivered", 2, 200)
    assert [r.answered for r in hook.received] == [500, 200]
    assert len({r.event_id for r in hook.received}) == 1
    assert len(hook.accepted()) == 1


def test_order_per_subscription_holds_while_the_receiver_is_down(shared_engine, lab_code, receiver):
    _lab(shared_engine, lab_code)
    down, up = receiver(), receiver()
    down.start()
    down.stop()  # the port is known and refuses connections
    up.start()
    late, _ = _subscribe(shared_engine, lab_code, down.url, ["schedule.published"])
    _subscribe(shared_engine, lab_code, up.url, ["schedule.published"])
    versions = [_publish(shared_engine, lab_code, MONDAY + timedelta(hours=h)) for h in (0, 1, 2)]
    events = [uid for uid, _, _ in _events(shared_engine, lab_code, "schedule.published")]
    assert len(events) == 3

    now = MONDAY + timedelta(hours=2, seconds=1)
    for _ in range(6):  # the receiver stays down; only the head of its queue is tried
        _step(shared_engine, now)
        now += timedelta(seconds=SETTINGS.webhook_backoff_cap_seconds)
    attempts = [d.attempts for d in _deliveries(shared_engine, late)]
    assert attempts[0] == 6 and attempts[1:] == [0, 0]
    first = _deliveries(shared_engine, late)[0]
    assert first.last_status_code is None and "Connect" in first.last_error
    # The other subscription was not held up by the dead one.
    assert [r.event_id for r in up.accepted()] == events

    down.start()
    for _ in range(10):
        if _step(shared_engine, now).attempted == 0 and not any(
            d.status == "pending" for d in _deliveries(shared_engine, late)
        ):
            break
        now += timedelta(seconds=SETTINGS.webhook_backoff_cap_seconds)
    assert [r.event_id for r in down.accepted()] == events
    assert [r.data["data"]["version"] for r in down.accepted()] == versions
    assert {d.status for d in _deliveries(shared_engine, late)} == {"delivered"}


def test_a_delivery_past_the_maximum_age_fails_and_frees_the_next(
    shared_engine, lab_code, receiver
):
    _lab(shared_engine, lab_code)
    hook = receiver()
    hook.start()
    sub, _ = _subscribe(shared_engine, lab_code, hook.url, ["schedule.published"])
    hook.answers.extend([503] * 50)
    hourly = SETTINGS.model_copy(update={"webhook_max_age_seconds": 3600})
    _publish(shared_engine, lab_code, MONDAY)
    _publish(shared_engine, lab_code, MONDAY + timedelta(minutes=50))
    assert _step(shared_engine, MONDAY, hourly).attempted == 1
    # An hour later (the maximum age) the first is given up; the second goes out.
    hook.answers.clear()
    step = _step(shared_engine, MONDAY + timedelta(seconds=3601), hourly)
    assert (step.failed, step.delivered) == (1, 1)
    first, second = _deliveries(shared_engine, sub)
    assert first.status == "failed" and "gave up" in first.last_error
    assert first.attempts == 1 and first.last_status_code == 503
    assert second.status == "delivered"


def test_a_claimed_delivery_is_leased_and_not_claimed_twice(shared_engine, lab_code):
    _lab(shared_engine, lab_code)
    _subscribe(shared_engine, lab_code, "http://127.0.0.1:9/hook", ["schedule.published"])
    _publish(shared_engine, lab_code)
    _publish(shared_engine, lab_code, MONDAY + timedelta(hours=1))
    now = MONDAY + timedelta(hours=1)
    (claimed,) = claim_due(shared_engine, now, SETTINGS)
    assert claimed.attempt == 1
    # Neither the leased head nor the delivery behind it is handed to another loop.
    assert claim_due(shared_engine, now, SETTINGS) == []
    # A loop that died keeps it only until the lease runs out.
    expired = now + timedelta(seconds=SETTINGS.webhook_timeout_seconds + 31)
    again = claim_due(shared_engine, expired, SETTINGS)
    assert [c.delivery_id for c in again] == [claimed.delivery_id]
    assert again[0].attempt == 2


def test_publication_announces_changed_forecasts_and_new_breaches(shared_engine, lab_code):
    _lab(shared_engine, lab_code)
    _subscribe(shared_engine, lab_code, "http://127.0.0.1:9/hook")
    first = _publish(shared_engine, lab_code, MONDAY)
    changed_first = {
        b["data"]["case"]
        for _, _, b in _events(shared_engine, lab_code)
        if b["type"] == "case.forecast_changed"
    }
    assert changed_first == {"C1", "C2", "C3"}  # nothing was forecast before
    breached_first = {
        b["data"]["case"]
        for _, _, b in _events(shared_engine, lab_code)
        if b["type"] == "case.sla_breached"
    }
    with session_scope(shared_engine) as session:
        lab = get_lab(session, lab_code)
        report = views.sla_breaches(session, lab, current_version(session, lab), MONDAY)
        assert breached_first == {c["case"] for c in report["cases"]}

    later = MONDAY + timedelta(days=3)  # every case's work moves three days on
    second = _publish(shared_engine, lab_code, later)
    events = [
        b for _, _, b in _events(shared_engine, lab_code) if b["data"].get("version") == second
    ]
    changed = {b["data"]["case"]: b["data"] for b in events if b["type"] == "case.forecast_changed"}
    assert set(changed) == {"C1", "C2", "C3"}
    assert all(d["previous_version"] == first for d in changed.values())
    assert all(d["expected_finish"] > d["previous_expected_finish"] for d in changed.values())
    breached = {b["data"]["case"] for b in events if b["type"] == "case.sla_breached"}
    with session_scope(shared_engine) as session:
        lab = get_lab(session, lab_code)
        report = views.sla_breaches(session, lab, current_version(session, lab), later)
        now_breaching = {c["case"] for c in report["cases"]}
    assert breached == now_breaching - breached_first
    assert "C2" in breached_first | breached  # its 72 h target start has passed by then
    assert [b["type"] for b in events].count("schedule.published") == 1


def test_a_failed_run_is_announced_and_a_lab_without_subscriptions_writes_nothing(
    shared_engine, lab_code
):
    quiet = f"{lab_code}-quiet"
    _lab(shared_engine, lab_code, cases=1)
    _lab(shared_engine, quiet, cases=1)
    _subscribe(shared_engine, lab_code, "http://127.0.0.1:9/hook", ["run.failed"])
    runs = {}
    for code in (lab_code, quiet):
        with session_scope(shared_engine) as session:
            lab = get_lab(session, code)
            lab.timezone = "Nowhere/Atlantis"  # a lab that cannot be planned at all
            runs[code] = queue_run(session, lab, actor="sup", time_limit_seconds=2).run.id
        assert run_once(shared_engine, "w1", policy="fifo", now=MONDAY)
    (event,) = _events(shared_engine, lab_code)
    assert event[1] == "run.failed"
    assert event[2]["data"]["run"] == runs[lab_code]
    assert "Nowhere/Atlantis" in event[2]["data"]["error"]
    assert _events(shared_engine, quiet) == []


def test_deleting_a_subscription_drops_its_pending_deliveries(shared_engine, lab_code, receiver):
    _lab(shared_engine, lab_code)
    hook = receiver()
    hook.start()
    sub, _ = _subscribe(shared_engine, lab_code, hook.url, ["schedule.published"])
    _publish(shared_engine, lab_code)
    with session_scope(shared_engine) as session:
        lab = get_lab(session, lab_code)
        webhooks.delete_subscription(
            session, webhooks.get_subscription(session, lab, sub), actor="sup"
        )
    assert _step(shared_engine, MONDAY + timedelta(seconds=1)).attempted == 0
    assert hook.received == []
    with session_scope(shared_engine) as session:
        left = session.scalar(
            select(func.count())
            .select_from(WebhookDelivery)
            .where(WebhookDelivery.subscription_id == sub)
        )
    assert left == 0


def test_backoff_doubles_up_to_the_cap_with_jitter():
    rng = random.Random(1)
    delays = [backoff_seconds(n, SETTINGS, rng) for n in range(1, 9)]
    for n, delay in enumerate(delays, start=1):
        full = min(SETTINGS.webhook_backoff_cap_seconds, 5 * 2 ** (n - 1))
        assert full / 2 <= delay <= full
    assert max(delays) <= SETTINGS.webhook_backoff_cap_seconds


def test_loops_claiming_at_once_never_share_a_delivery(shared_engine, lab_code):
    _lab(shared_engine, lab_code)
    subs = [
        _subscribe(shared_engine, lab_code, f"http://127.0.0.1:9/hook{n}", ["schedule.published"])[
            0
        ]
        for n in range(6)
    ]
    _publish(shared_engine, lab_code)
    _publish(shared_engine, lab_code, MONDAY + timedelta(hours=1))
    now = MONDAY + timedelta(hours=1)
    start = threading.Barrier(3)
    claimed: list[list[int]] = [[] for _ in range(3)]

    def loop(n: int) -> None:
        start.wait()
        claimed[n] = [c.delivery_id for c in claim_due(shared_engine, now, SETTINGS, batch=4)]

    threads = [threading.Thread(target=loop, args=(n,)) for n in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    every = [d for ids in claimed for d in ids]
    assert len(every) == len(set(every))  # no delivery handed to two loops
    heads = {_deliveries(shared_engine, s)[0].id for s in subs}
    assert set(every) <= heads  # and never one behind a pending head
    # What the three loops did not take (batch 3 x 4 > 6 heads, but a loop may skip locked rows)
    # is taken by the next step; every head is claimed exactly once in all.
    rest = [c.delivery_id for c in claim_due(shared_engine, now, SETTINGS)]
    assert sorted(every + rest) == sorted(heads)
