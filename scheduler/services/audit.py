"""The append-only audit trail: every mutation records actor, action, entity and digests."""

from __future__ import annotations

import hashlib
import json
from datetime import date, datetime, time
from typing import Any

from sqlalchemy import inspect
from sqlalchemy.orm import Session

from models import AuditEvent


def _plain(value: Any) -> Any:
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    return value


def state_of(entity: Any) -> dict[str, Any]:
    """The entity's column values: what the digest is taken over."""
    mapper = inspect(entity).mapper
    return {attr.key: _plain(getattr(entity, attr.key)) for attr in mapper.column_attrs}


def digest(state: dict[str, Any] | None) -> str | None:
    if state is None:
        return None
    canonical = json.dumps(state, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def record(
    session: Session,
    *,
    actor: str,
    action: str,
    entity_type: str,
    entity_id: object,
    lab_id: int | None,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
) -> AuditEvent:
    event = AuditEvent(
        actor=actor,
        action=action,
        entity_type=entity_type,
        entity_id=str(entity_id),
        lab_id=lab_id,
        before_digest=digest(before),
        after_digest=digest(after),
    )
    session.add(event)
    return event


def record_if_changed(
    session: Session,
    entity: Any,
    *,
    actor: str,
    action: str,
    lab_id: int | None,
    before: dict[str, Any] | None,
) -> None:
    """Audit an upsert only when it changed something, so a repeated push leaves no trail noise."""
    after = state_of(entity)
    if before != after:
        record(
            session,
            actor=actor,
            action=action,
            entity_type=entity.__tablename__,
            entity_id=entity.id,
            lab_id=lab_id,
            before=before,
            after=after,
        )
