"""The webhook delivery loop: posts the outbox's pending deliveries, in order, with retries.

A step (``deliver_due``) works in three short phases and holds no transaction while it posts, so a
slow or dead receiver never holds a lock that a request or a solve waits for:

1. Claim: deliveries older than the maximum age are given up, then the *head* of each
   subscription (its oldest pending delivery) that is due and not leased is leased
   (``lease_until``) and its attempt counted, in one transaction; on PostgreSQL the rows are taken
   with ``FOR UPDATE SKIP LOCKED``, so several loops (one per worker or server process) share the
   outbox without posting a delivery twice. Only heads are claimed: a delivery is never sent while
   an earlier one for the same subscription is pending, which keeps each receiver's events in the
   order they happened.
2. Post: every claimed delivery (one per subscription) is posted concurrently with a short timeout.
3. Record: a 2xx answer marks it delivered; anything else schedules the next attempt after an
   exponential backoff with jitter, capped, or marks it failed once the event is older than the
   maximum age. The write is a compare-and-set on (id, attempt), so a loop whose lease ran out
   cannot overwrite a later attempt's outcome.

Deliveries are at least once: a loop that dies between a receiver's 2xx and the record leaves the
lease to expire, and the delivery is posted again with the same ``X-Labq-Event-Id``.
"""

from __future__ import annotations

import json
import logging
import random
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import Engine, exists, func, or_, select, update
from sqlalchemy.orm import Session, aliased

from models import WebhookDelivery, WebhookEvent, WebhookSubscription
from models.base import utcnow
from scheduler.db import is_lock_timeout, session_scope
from scheduler.planning.runs import rows_changed
from scheduler.services.webhooks import (
    EVENT_ID_HEADER,
    EVENT_TYPE_HEADER,
    SIGNATURE_HEADER,
    signature,
)
from scheduler.settings import Settings, get_settings

logger = logging.getLogger(__name__)

BATCH = 32
LEASE_MARGIN_SECONDS = 30.0
MAX_ERROR = 500
USER_AGENT = "labq-webhooks/1"


@dataclass(frozen=True)
class Claimed:
    delivery_id: int
    attempt: int
    url: str
    secret: str
    event_uid: str
    event_type: str
    occurred_at: datetime
    body: dict[str, Any]


@dataclass(frozen=True)
class Outcome:
    status_code: int | None
    error: str | None

    @property
    def ok(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


@dataclass
class StepResult:
    """What one step did: deliveries posted, delivered, to be retried, given up."""

    attempted: int = 0
    delivered: int = 0
    retrying: int = 0
    failed: int = 0


def backoff_seconds(attempt: int, settings: Settings, rng: random.Random | None = None) -> float:
    """Delay before attempt ``attempt + 1``: base x 2^(attempt-1), capped, then 50-100 % of it.

    The jitter spreads the retries of many deliveries that failed together (a receiver that was
    down) so they do not all come back in the same second.
    """
    raw = settings.webhook_backoff_base_seconds * 2 ** min(max(attempt - 1, 0), 30)
    capped = min(settings.webhook_backoff_cap_seconds, raw)
    return float(capped * (0.5 + 0.5 * (rng or random).random()))


def encode_body(body: dict[str, Any]) -> bytes:
    return json.dumps(body, separators=(",", ":"), sort_keys=True).encode()


# ---- the three phases -----------------------------------------------------------------------


def _fail_expired(session: Session, now: datetime, settings: Settings) -> int:
    """Give up pending deliveries whose event is older than the maximum age (not leased ones)."""
    cutoff = now - timedelta(seconds=settings.webhook_max_age_seconds)
    old_events = select(WebhookEvent.id).where(WebhookEvent.occurred_at < cutoff)
    result = session.execute(
        update(WebhookDelivery)
        .where(
            WebhookDelivery.status == "pending",
            or_(WebhookDelivery.lease_until.is_(None), WebhookDelivery.lease_until < now),
            WebhookDelivery.event_id.in_(old_events),
        )
        .values(
            status="failed",
            lease_until=None,
            last_error=func.coalesce(WebhookDelivery.last_error.concat("; "), "").concat(
                f"gave up: older than {settings.webhook_max_age_seconds:g} s"
            ),
        )
        .execution_options(synchronize_session=False)
    )
    return rows_changed(result)


def claim_due(
    engine: Engine, now: datetime, settings: Settings, *, batch: int = BATCH
) -> list[Claimed]:
    """Lease the due head delivery of each subscription (at most ``batch``)."""
    return _claim(engine, now, settings, batch)[1]


def _claim(
    engine: Engine, now: datetime, settings: Settings, batch: int
) -> tuple[int, list[Claimed]]:
    """Give up expired deliveries, then lease due heads: one short transaction."""
    earlier = aliased(WebhookDelivery)
    blocked = exists().where(
        earlier.subscription_id == WebhookDelivery.subscription_id,
        earlier.status == "pending",
        earlier.id < WebhookDelivery.id,
    )
    heads = (
        select(WebhookDelivery.id)
        .where(
            WebhookDelivery.status == "pending",
            WebhookDelivery.next_attempt_at <= now,
            or_(WebhookDelivery.lease_until.is_(None), WebhookDelivery.lease_until < now),
            ~blocked,
        )
        .order_by(WebhookDelivery.id)
        .limit(batch)
    )
    lease_until = now + timedelta(seconds=settings.webhook_timeout_seconds + LEASE_MARGIN_SECONDS)
    with session_scope(engine) as session:
        expired = _fail_expired(session, now, settings)
        if session.get_bind().dialect.name == "postgresql":
            heads = heads.with_for_update(skip_locked=True, of=WebhookDelivery)
        ids = list(session.scalars(heads))
        if not ids:
            return expired, []
        session.execute(
            update(WebhookDelivery)
            .where(WebhookDelivery.id.in_(ids))
            .values(
                lease_until=lease_until,
                attempts=WebhookDelivery.attempts + 1,
                last_attempt_at=now,
            )
            .execution_options(synchronize_session=False)
        )
        rows = session.execute(
            select(
                WebhookDelivery.id,
                WebhookDelivery.attempts,
                WebhookSubscription.url,
                WebhookSubscription.secret,
                WebhookEvent.uid,
                WebhookEvent.type,
                WebhookEvent.occurred_at,
                WebhookEvent.body,
            )
            .join(WebhookSubscription, WebhookDelivery.subscription_id == WebhookSubscription.id)
            .join(WebhookEvent, WebhookDelivery.event_id == WebhookEvent.id)
            .where(WebhookDelivery.id.in_(ids))
            .order_by(WebhookDelivery.id)
        ).all()
    return expired, [Claimed(*row) for row in rows]


def post(client: httpx.Client, claimed: Claimed, now: datetime) -> Outcome:
    """Post one signed delivery; never raises (a refused connection is an outcome too)."""
    body = encode_body(claimed.body)
    headers = {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        EVENT_ID_HEADER: claimed.event_uid,
        EVENT_TYPE_HEADER: claimed.event_type,
        "X-Labq-Delivery-Attempt": str(claimed.attempt),
        SIGNATURE_HEADER: signature(claimed.secret, int(now.timestamp()), body),
    }
    try:
        response = client.post(claimed.url, content=body, headers=headers)
    except httpx.HTTPError as exc:
        return Outcome(None, f"{type(exc).__name__}: {exc}"[:MAX_ERROR] or type(exc).__name__)
    if 200 <= response.status_code < 300:
        return Outcome(response.status_code, None)
    return Outcome(response.status_code, f"HTTP {response.status_code} {response.reason_phrase}")


def record(
    engine: Engine,
    claimed: Claimed,
    outcome: Outcome,
    now: datetime,
    settings: Settings,
    rng: random.Random | None = None,
) -> str:
    """Store one attempt's outcome; returns the delivery's status (or "lost" if not ours)."""
    values: dict[str, Any] = {
        "lease_until": None,
        "last_status_code": outcome.status_code,
        "last_error": outcome.error,
    }
    if outcome.ok:
        values.update(status="delivered", delivered_at=now)
    else:
        retry_at = now + timedelta(seconds=backoff_seconds(claimed.attempt, settings, rng))
        too_old = retry_at - claimed.occurred_at > timedelta(
            seconds=settings.webhook_max_age_seconds
        )
        if too_old:
            values.update(status="failed")
            values["last_error"] = (
                f"{outcome.error}; gave up after {claimed.attempt} attempt(s): "
                f"older than {settings.webhook_max_age_seconds:g} s"
            )[:MAX_ERROR]
        else:
            values.update(next_attempt_at=retry_at)
    with session_scope(engine) as session:
        result = session.execute(
            update(WebhookDelivery)
            .where(
                WebhookDelivery.id == claimed.delivery_id,
                WebhookDelivery.status == "pending",
                WebhookDelivery.attempts == claimed.attempt,
            )
            .values(**values)
            .execution_options(synchronize_session=False)
        )
        if rows_changed(result) != 1:
            return "lost"
    return str(values.get("status", "pending"))


# ---- a step and the loop --------------------------------------------------------------------


def deliver_due(
    engine: Engine,
    *,
    now: datetime | None = None,
    client: httpx.Client | None = None,
    settings: Settings | None = None,
    rng: random.Random | None = None,
    batch: int = BATCH,
) -> StepResult:
    """One step: give up expired deliveries, claim due heads, post them, record the outcomes.

    ``now`` fixes the clock (tests drive the loop deterministically); by default each phase reads
    the time itself.
    """
    settings = settings or get_settings()
    clock: Callable[[], datetime] = (lambda: now) if now is not None else utcnow
    result = StepResult()
    result.failed, claimed = _claim(engine, clock(), settings, batch)
    if not claimed:
        return result
    own_client = client is None
    http = client or httpx.Client(timeout=settings.webhook_timeout_seconds)
    try:
        with ThreadPoolExecutor(max_workers=min(8, len(claimed))) as pool:
            outcomes = list(pool.map(lambda c: post(http, c, clock()), claimed))
    finally:
        if own_client:
            http.close()
    for item, outcome in zip(claimed, outcomes, strict=True):
        status = record(engine, item, outcome, clock(), settings, rng)
        result.attempted += 1
        if status == "delivered":
            result.delivered += 1
        elif status == "failed":
            result.failed += 1
        elif status == "pending":
            result.retrying += 1
        if not outcome.ok:
            logger.info(
                "webhook delivery %s (attempt %s) to %s: %s",
                item.delivery_id,
                item.attempt,
                item.url,
                outcome.error,
            )
    return result


def run_deliveries(
    engine: Engine, stop_event: threading.Event, *, poll_seconds: float | None = None
) -> None:
    """Deliver until ``stop_event`` is set; waits ``poll_seconds`` when nothing was due."""
    settings = get_settings()
    poll = poll_seconds if poll_seconds is not None else settings.webhook_poll_seconds
    with httpx.Client(timeout=settings.webhook_timeout_seconds) as client:
        while not stop_event.is_set():
            try:
                busy = deliver_due(engine, client=client, settings=settings).attempted > 0
            except Exception as exc:
                # The database may be briefly away, or a long writer (a bulk import) held the lock
                # past the busy timeout: the outbox keeps every delivery; try after a pause.
                if is_lock_timeout(exc):
                    logger.warning("webhook delivery step: the database is locked; will retry")
                else:
                    logger.exception("webhook delivery step failed")
                busy = False
            if not busy:
                stop_event.wait(poll)


def start_delivery_thread(engine: Engine) -> Callable[[], None]:
    """Run the delivery loop in a daemon thread of this process; returns its stop."""
    stop_event = threading.Event()
    thread = threading.Thread(
        target=run_deliveries, args=(engine, stop_event), name="labq-webhooks", daemon=True
    )
    thread.start()

    def stop(timeout: float = 15.0) -> None:
        stop_event.set()
        thread.join(timeout=timeout)

    return stop
