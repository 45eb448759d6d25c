"""Webhook subscriptions and the outbox: what a lab's case systems are told, and how it is signed.

``emit`` writes an event and one pending delivery per subscription that wants it, in the caller's
transaction: the event exists exactly when the change that caused it was committed, and nothing is
posted while a request or a solve waits (the delivery loop in scheduler/delivery.py posts later).

Each body is signed with the subscription's secret: ``X-Labq-Signature: t=<unix>,v1=<hex>`` where
``hex`` is HMAC-SHA256(secret, ``"<unix>." + body``). ``verify_signature`` is what a receiver does.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from models import Lab, WebhookDelivery, WebhookEvent, WebhookSubscription
from models.base import utcnow
from models.webhooks import EVENT_TYPES
from scheduler.errors import Invalid, NotFound
from scheduler.services import audit
from scheduler.services.integrity import flush
from scheduler.services.labs import lock_lab
from scheduler.services.listing import Listing, by_id

MAX_URL_LENGTH = 2000  # the column's width
SECRET_PREFIX = "whsec_"
SIGNATURE_HEADER = "X-Labq-Signature"
EVENT_ID_HEADER = "X-Labq-Event-Id"
EVENT_TYPE_HEADER = "X-Labq-Event-Type"
SIGNATURE_TOLERANCE_SECONDS = 300


@dataclass(frozen=True)
class NewSubscription:
    """A freshly created subscription; ``secret`` is the only time the API shows it."""

    subscription: WebhookSubscription
    secret: str


def _public_state(subscription: WebhookSubscription) -> dict[str, Any]:
    """The audited state: everything but the secret (the trail never holds it, even digested)."""
    state = audit.state_of(subscription)
    state.pop("secret", None)
    return state


def create_subscription(
    session: Session,
    lab: Lab,
    *,
    actor: str,
    url: str,
    event_types: Iterable[str],
    description: str | None = None,
) -> NewSubscription:
    types = sorted(set(event_types))
    unknown = [t for t in types if t not in EVENT_TYPES]
    if unknown or not types:
        raise Invalid(
            f"event_types must name one or more of {', '.join(EVENT_TYPES)}; "
            f"unknown: {', '.join(unknown) or 'none given'}",
            field="event_types",
        )
    if not url.startswith(("http://", "https://")):
        raise Invalid("url must be an http:// or https:// URL", field="url")
    if len(url) > MAX_URL_LENGTH:  # checked after normalisation, which may lengthen it
        raise Invalid(f"url is longer than {MAX_URL_LENGTH} characters", field="url")
    secret = SECRET_PREFIX + secrets.token_urlsafe(32)
    subscription = WebhookSubscription(
        lab_id=lab.id,
        url=url,
        secret=secret,
        event_types=types,
        description=description,
        created_by=actor[:64],
    )
    session.add(subscription)
    flush(session)
    audit.record(
        session,
        actor=actor,
        action="webhook.create",
        entity_type="webhook_subscription",
        entity_id=subscription.id,
        lab_id=lab.id,
        after=_public_state(subscription),
    )
    return NewSubscription(subscription, secret)


def get_subscription(session: Session, lab: Lab, subscription_id: int) -> WebhookSubscription:
    subscription = session.get(WebhookSubscription, subscription_id)
    if subscription is None or subscription.lab_id != lab.id:
        raise NotFound(f"webhook {subscription_id} does not exist in lab {lab.code!r}")
    return subscription


def subscriptions_of(lab: Lab) -> Listing:
    """The lab's subscriptions, in id order."""
    return by_id(select(WebhookSubscription).where(WebhookSubscription.lab_id == lab.id))


def pending_counts(session: Session, subscription_ids: list[int]) -> dict[int, int]:
    """How many deliveries wait for each of the subscriptions (those with any)."""
    if not subscription_ids:
        return {}
    rows = session.execute(
        select(WebhookDelivery.subscription_id, func.count())
        .where(
            WebhookDelivery.subscription_id.in_(subscription_ids),
            WebhookDelivery.status == "pending",
        )
        .group_by(WebhookDelivery.subscription_id)
    )
    return {sid: int(n) for sid, n in rows}


def deliveries_of(subscription: WebhookSubscription, *, status: str | None = None) -> Listing:
    """The subscription's deliveries in id order (oldest first), of one status when given."""
    stmt = select(WebhookDelivery).where(WebhookDelivery.subscription_id == subscription.id)
    if status is not None:
        stmt = stmt.where(WebhookDelivery.status == status)
    return by_id(stmt)


def events_by_id(session: Session, event_ids: Iterable[int]) -> dict[int, WebhookEvent]:
    """The webhook events ``event_ids``, by id."""
    return {
        e.id: e
        for e in session.scalars(select(WebhookEvent).where(WebhookEvent.id.in_(set(event_ids))))
    }


def delete_subscription(session: Session, subscription: WebhookSubscription, *, actor: str) -> None:
    """Remove a subscription with its deliveries: nothing more is posted to it."""
    before = _public_state(subscription)
    session.delete(subscription)
    flush(session)
    audit.record(
        session,
        actor=actor,
        action="webhook.delete",
        entity_type="webhook_subscription",
        entity_id=before["id"],
        lab_id=before["lab_id"],
        before=before,
    )


# ---- the outbox -----------------------------------------------------------------------------


def subscribed_types(session: Session, lab_id: int) -> set[str]:
    """Event types some subscription of the lab wants (empty: nothing to compute or write)."""
    wanted: set[str] = set()
    for types in session.scalars(
        select(WebhookSubscription.event_types).where(WebhookSubscription.lab_id == lab_id)
    ):
        wanted.update(types)
    return wanted


def emit(
    session: Session,
    lab: Lab,
    event_type: str,
    data: dict[str, Any],
    *,
    now: datetime | None = None,
) -> WebhookEvent | None:
    """Queue ``event_type`` for every subscription of ``lab`` that wants it (None if none does)."""
    if event_type not in EVENT_TYPES:
        raise ValueError(f"unknown webhook event type {event_type!r}")
    subscribers = [
        s
        for s in session.scalars(
            select(WebhookSubscription)
            .where(WebhookSubscription.lab_id == lab.id)
            .order_by(WebhookSubscription.id)
        )
        if event_type in s.event_types
    ]
    if not subscribers:
        return None
    # Ids in the order of commit per lab: the lab row stays locked until this transaction ends,
    # so a later event of the lab cannot commit first and overtake this one. A request that
    # changes the lab, and a publication, hold this lock already.
    lock_lab(session, lab.code)
    at = now or utcnow()
    uid = str(uuid.uuid4())
    event = WebhookEvent(
        uid=uid,
        lab_id=lab.id,
        type=event_type,
        occurred_at=at,
        body={
            "id": uid,
            "type": event_type,
            "lab": lab.code,
            "occurred_at": at.isoformat().replace("+00:00", "Z"),
            "data": data,
        },
    )
    session.add(event)
    flush(session)
    session.add_all(
        WebhookDelivery(subscription_id=s.id, event_id=event.id, next_attempt_at=at)
        for s in subscribers
    )
    flush(session)
    return event


# ---- signatures -----------------------------------------------------------------------------


def signature(secret: str, timestamp: int, body: bytes) -> str:
    """The ``X-Labq-Signature`` value of ``body`` posted at ``timestamp`` (unix seconds)."""
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"t={timestamp},v1={digest.hexdigest()}"


def verify_signature(
    secret: str,
    header: str,
    body: bytes,
    *,
    now: float,
    tolerance: float = SIGNATURE_TOLERANCE_SECONDS,
) -> bool:
    """What a receiver checks: a ``v1`` HMAC of ``t.body`` that matches, and a recent ``t``.

    The timestamp bound refuses a replay of an old, validly signed request; de-duplicate
    retries by the ``X-Labq-Event-Id`` header.
    """
    parts = dict(p.split("=", 1) for p in header.split(",") if "=" in p)
    try:
        timestamp = int(parts["t"])
    except (KeyError, ValueError):
        return False
    if abs(now - timestamp) > tolerance:
        return False
    expected = signature(secret, timestamp, body).split("v1=", 1)[1]
    return hmac.compare_digest(expected, parts.get("v1", ""))
