"""Webhooks: a lab's subscriptions (admins and supervisors manage them) and their delivery log.

Events are written to an outbox in the transaction that causes them and posted afterwards by the
delivery loop (scheduler/delivery.py), never inside a request. Each POST carries
``X-Labq-Event-Id`` (de-duplicate by it), ``X-Labq-Event-Type`` and
``X-Labq-Signature: t=<unix>,v1=<hex>``, the HMAC-SHA256 of ``"<unix>." + body`` under the secret
shown once at creation.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Response

from api.deps import ManageCtx, ReadCtx, lab_path
from api.pagination import Page, PageDep, id_path, paginate
from api.problems import problems
from api.schemas.webhooks import (
    DeliveryOut,
    DeliveryStatus,
    WebhookCreate,
    WebhookCreated,
    WebhookOut,
)
from models import Lab, WebhookSubscription
from scheduler.services import webhooks

router = APIRouter(prefix="/labs/{lab}", dependencies=[Depends(lab_path)], tags=["webhooks"])

WebhookId = Annotated[int, id_path("webhook subscription")]


def webhook_out(lab: Lab, subscription: WebhookSubscription, pending: int) -> WebhookOut:
    return WebhookOut(
        id=subscription.id,
        lab=lab.code,
        url=subscription.url,
        event_types=list(subscription.event_types),
        description=subscription.description,
        created_by=subscription.created_by,
        created_at=subscription.created_at,
        pending=pending,
    )


@router.post("/webhooks", status_code=201, responses=problems(404, 422))
def create_webhook(body: WebhookCreate, ctx: ManageCtx, response: Response) -> WebhookCreated:
    """Subscribe a receiver to event types. The response holds the secret, never shown again."""
    new = webhooks.create_subscription(
        ctx.session,
        ctx.lab,
        actor=ctx.actor,
        url=str(body.url),
        event_types=body.event_types,
        description=body.description,
    )
    response.headers["Location"] = f"/labs/{ctx.lab.code}/webhooks/{new.subscription.id}"
    out = webhook_out(ctx.lab, new.subscription, 0)
    return WebhookCreated(**out.model_dump(), secret=new.secret)


@router.get("/webhooks", responses=problems(404, 422))
def list_webhooks(ctx: ReadCtx, page: PageDep) -> Page[WebhookOut]:
    """The lab's subscriptions (never their secrets)."""
    rows, cursors = paginate(ctx.session, webhooks.subscriptions_of(ctx.lab), page)
    pending = webhooks.pending_counts(ctx.session, [s.id for s in rows])
    return Page[WebhookOut](
        items=[webhook_out(ctx.lab, s, pending.get(s.id, 0)) for s in rows], **cursors._asdict()
    )


@router.get("/webhooks/{webhook_id}", responses=problems(404, 422))
def get_webhook(webhook_id: WebhookId, ctx: ReadCtx) -> WebhookOut:
    subscription = webhooks.get_subscription(ctx.session, ctx.lab, webhook_id)
    pending = webhooks.pending_counts(ctx.session, [subscription.id]).get(subscription.id, 0)
    return webhook_out(ctx.lab, subscription, pending)


@router.delete("/webhooks/{webhook_id}", status_code=204, responses=problems(404, 422))
def delete_webhook(webhook_id: WebhookId, ctx: ManageCtx) -> Response:
    """Remove the subscription and its delivery log; nothing more is posted to it."""
    subscription = webhooks.get_subscription(ctx.session, ctx.lab, webhook_id)
    webhooks.delete_subscription(ctx.session, subscription, actor=ctx.actor)
    return Response(status_code=204)


@router.get("/webhooks/{webhook_id}/deliveries", responses=problems(404, 422))
def list_deliveries(
    webhook_id: WebhookId,
    ctx: ReadCtx,
    page: PageDep,
    status: Annotated[
        DeliveryStatus | None, Query(description="Only deliveries in this state.")
    ] = None,
) -> Page[DeliveryOut]:
    """The subscription's deliveries, oldest first: attempts, last answer, next attempt."""
    subscription = webhooks.get_subscription(ctx.session, ctx.lab, webhook_id)
    listing = webhooks.deliveries_of(subscription, status=status)
    rows, cursors = paginate(ctx.session, listing, page)
    events = webhooks.events_by_id(ctx.session, (d.event_id for d in rows))
    return Page[DeliveryOut](
        items=[
            DeliveryOut(
                id=d.id,
                event_id=events[d.event_id].uid,
                event_type=events[d.event_id].type,
                occurred_at=events[d.event_id].occurred_at,
                status=d.status,
                attempts=d.attempts,
                last_status_code=d.last_status_code,
                last_error=d.last_error,
                last_attempt_at=d.last_attempt_at,
                next_attempt_at=d.next_attempt_at if d.status == "pending" else None,
                delivered_at=d.delivered_at,
            )
            for d in rows
        ],
        **cursors._asdict(),
    )
