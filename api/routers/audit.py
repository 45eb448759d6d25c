"""The audit trail: every mutation, with actor (the key's prefix) and digests, never contents."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query
from sqlalchemy.orm import Session

from api.deps import ReadCtx, lab_path
from api.pagination import Page, PageDep, paginate
from api.problems import problems
from api.schemas.audit import AuditEventOut
from api.schemas.common import QueryText
from models import AuditEvent
from scheduler.services import audit, labs

router = APIRouter(tags=["audit"])

Filter = Annotated[QueryText | None, Query(max_length=64)]


def _out(session: Session, events: list[AuditEvent]) -> list[AuditEventOut]:
    ids = {e.lab_id for e in events if e.lab_id is not None}
    codes = labs.codes_of(session, ids)
    return [
        AuditEventOut(
            id=e.id,
            at=e.at,
            actor=e.actor,
            action=e.action,
            entity_type=e.entity_type,
            entity_id=e.entity_id,
            entity_ref=e.entity_ref,
            lab=codes.get(e.lab_id) if e.lab_id is not None else None,
            before_digest=e.before_digest,
            after_digest=e.after_digest,
        )
        for e in events
    ]


@router.get("/audit-events", responses=problems(422))
def list_audit_events(
    ctx: ReadCtx,
    page: PageDep,
    entity_type: Filter = None,
    entity_id: Filter = None,
    action: Filter = None,
    actor: Filter = None,
) -> Page[AuditEventOut]:
    """Audit events of every lab this key may see (and, for all-lab keys, events of no lab)."""
    listing = audit.events_of(
        lab_id=ctx.principal.lab_id,  # None: a key of all labs sees every event
        entity_type=entity_type,
        entity_id=entity_id,
        action=action,
        actor=actor,
    )
    rows, cursors = paginate(ctx.session, listing, page)
    return Page[AuditEventOut](items=_out(ctx.session, list(rows)), **cursors._asdict())


@router.get(
    "/labs/{lab}/audit-events",
    dependencies=[Depends(lab_path)],
    responses=problems(404, 422),
)
def list_lab_audit_events(
    ctx: ReadCtx,
    page: PageDep,
    entity_type: Filter = None,
    entity_id: Filter = None,
    action: Filter = None,
    actor: Filter = None,
) -> Page[AuditEventOut]:
    listing = audit.events_of(
        lab_id=ctx.lab.id, entity_type=entity_type, entity_id=entity_id, action=action, actor=actor
    )
    rows, cursors = paginate(ctx.session, listing, page)
    return Page[AuditEventOut](items=_out(ctx.session, list(rows)), **cursors._asdict())
