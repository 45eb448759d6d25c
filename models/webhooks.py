"""Outbound events for case systems: webhook subscriptions and the durable outbox they read.

An event is written to ``webhook_event`` in the same transaction as the change that causes it, with
one ``webhook_delivery`` row per subscription that wants it; a delivery loop posts them later. A
delivery row is the outbox entry and its log at once: attempts, last status, next attempt.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, CheckConstraint, ForeignKey, Index, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, CreatedAt, one_of

EVENT_TYPES = ("schedule.published", "case.forecast_changed", "case.sla_breached", "run.failed")
DELIVERY_STATUSES = ("pending", "delivered", "failed")


class WebhookSubscription(CreatedAt, Base):
    """A lab's receiver: where to post which event types, and the secret that signs each body.

    The secret is kept as issued, not hashed: signing needs it in the clear (an HMAC key cannot be
    recovered from a hash). It is shown once at creation and never returned by the API again;
    protect the database (and its backups) as you protect the receivers.
    """

    __tablename__ = "webhook_subscription"

    id: Mapped[int] = mapped_column(primary_key=True)
    lab_id: Mapped[int] = mapped_column(ForeignKey("lab.id", ondelete="CASCADE"), index=True)
    url: Mapped[str] = mapped_column(String(2000))
    secret: Mapped[str] = mapped_column(String(128))
    event_types: Mapped[list[str]] = mapped_column(JSON)
    description: Mapped[str | None] = mapped_column(String(200))
    created_by: Mapped[str] = mapped_column(String(64))


class WebhookEvent(Base):
    """One thing that happened in a lab, as receivers see it (``body`` is what is posted)."""

    __tablename__ = "webhook_event"
    __table_args__ = (one_of("type", EVENT_TYPES),)

    id: Mapped[int] = mapped_column(primary_key=True)
    uid: Mapped[str] = mapped_column(String(36), unique=True)
    lab_id: Mapped[int] = mapped_column(ForeignKey("lab.id", ondelete="CASCADE"), index=True)
    type: Mapped[str] = mapped_column(String(32))
    occurred_at: Mapped[datetime]
    body: Mapped[dict[str, Any]] = mapped_column(JSON)


class WebhookDelivery(CreatedAt, Base):
    """One event for one subscription: pending until a 2xx answer, failed past the maximum age.

    ``lease_until`` marks a delivery a loop has claimed and is posting; another loop leaves it alone
    until then, so a loop that died mid-post only delays it (the receiver may then see it twice,
    with the same event id).
    """

    __tablename__ = "webhook_delivery"
    __table_args__ = (
        one_of("status", DELIVERY_STATUSES),
        CheckConstraint("attempts >= 0", name="attempts_nonneg"),
        Index("ix_webhook_delivery_subscription_status", "subscription_id", "status", "id"),
        Index(
            "ix_webhook_delivery_pending_due",
            "next_attempt_at",
            sqlite_where=text("status = 'pending'"),
            postgresql_where=text("status = 'pending'"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    subscription_id: Mapped[int] = mapped_column(
        ForeignKey("webhook_subscription.id", ondelete="CASCADE")
    )
    event_id: Mapped[int] = mapped_column(
        ForeignKey("webhook_event.id", ondelete="CASCADE"), index=True
    )
    status: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[datetime]
    lease_until: Mapped[datetime | None]
    last_attempt_at: Mapped[datetime | None]
    last_status_code: Mapped[int | None]
    last_error: Mapped[str | None] = mapped_column(Text)
    delivered_at: Mapped[datetime | None]
