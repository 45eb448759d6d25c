"""Webhook subscriptions and their delivery log."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AnyHttpUrl, BaseModel, Field, UrlConstraints

from api.schemas.common import Body, Instant, Note

EventType = Literal[
    "schedule.published", "case.forecast_changed", "case.sla_breached", "run.failed"
]
DeliveryStatus = Literal["pending", "delivered", "failed"]
ReceiverUrl = Annotated[
    AnyHttpUrl,
    UrlConstraints(max_length=2000, allowed_schemes=["http", "https"]),
    Field(description="Where events are posted (http or https; https outside a test bench)."),
]


class WebhookCreate(Body):
    url: ReceiverUrl
    event_types: list[EventType] = Field(
        min_length=1, max_length=4, description="The events to post to this receiver."
    )
    description: Note | None = None


class WebhookOut(BaseModel):
    id: int
    lab: str
    url: str
    event_types: list[str]
    description: str | None
    created_by: str
    created_at: Instant
    pending: int = Field(description="Deliveries not yet made (waiting or being retried).")


class WebhookCreated(WebhookOut):
    secret: str = Field(
        description="Signs every body (HMAC-SHA256, `X-Labq-Signature`). Shown once: keep it now."
    )


class DeliveryOut(BaseModel):
    id: int
    event_id: str = Field(description="The event's id (`X-Labq-Event-Id`): de-duplicate by it.")
    event_type: str
    occurred_at: Instant
    status: DeliveryStatus
    attempts: int
    last_status_code: int | None
    last_error: str | None
    last_attempt_at: Instant | None
    next_attempt_at: Instant | None = Field(description="When the next attempt is due (pending).")
    delivered_at: Instant | None
