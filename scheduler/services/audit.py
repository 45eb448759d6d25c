"""The append-only audit trail: every mutation records actor, action, entity and digests."""

from __future__ import annotations

import hashlib
import json
from datetime import date, datetime, time
from typing import Any

from sqlalchemy import inspect, select
from sqlalchemy.orm import Session

from models import AuditEvent, Case, Device, Examiner, Job, Workstation
from scheduler.services.listing import Listing, by_id

# Entities whose id is what clients already use to name them.
_NAMED_BY_ID = {"schedule_version", "solve_run", "api_key", "feed_token", "absence"}
_NAMED_BY_REF: dict[str, type[Case] | type[Examiner] | type[Workstation]] = {
    "case": Case,
    "examiner": Examiner,
    "workstation": Workstation,
}


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


def reference_of(
    session: Session, entity_type: str, entity_id: object, state: dict[str, Any] | None
) -> str | None:
    """How clients name the entity: its external reference, ``case/device[/job]`` for the parts
    of a case, or the id clients already hold; None when it has no such name."""
    if entity_type in _NAMED_BY_ID or entity_type in ("maintenance_window", "exposure_log"):
        return str(entity_id)
    if state is not None:
        for field in ("external_ref", "code"):
            if isinstance(state.get(field), str) and entity_type not in ("job", "device"):
                return str(state[field])
    if not str(entity_id).isdigit():
        return None
    key = int(str(entity_id))
    if entity_type == "job":
        job = session.execute(
            select(Case.external_ref, Device.external_ref, Job.external_ref)
            .join(Device, Job.device_id == Device.id)
            .join(Case, Device.case_id == Case.id)
            .where(Job.id == key)
        ).first()
        return "/".join(job) if job else None
    if entity_type == "device":
        device = session.execute(
            select(Case.external_ref, Device.external_ref)
            .join(Case, Device.case_id == Case.id)
            .where(Device.id == key)
        ).first()
        return "/".join(device) if device else None
    model = _NAMED_BY_REF.get(entity_type)
    if model is None:
        return None
    ref: str | None = session.scalar(select(model.external_ref).where(model.id == key))
    return ref


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
    entity_ref: str | None = None,
) -> AuditEvent:
    if entity_ref is None:
        entity_ref = reference_of(session, entity_type, entity_id, after or before)
    event = AuditEvent(
        entity_ref=entity_ref,
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


def events_of(
    *,
    lab_id: int | None = None,
    entity_type: str | None = None,
    entity_id: str | None = None,
    action: str | None = None,
    actor: str | None = None,
) -> Listing:
    """Audit events in id order (oldest first): of one lab when ``lab_id`` is given, and only
    those matching each filter given."""
    stmt = select(AuditEvent)
    if lab_id is not None:
        stmt = stmt.where(AuditEvent.lab_id == lab_id)
    if entity_type:
        stmt = stmt.where(AuditEvent.entity_type == entity_type)
    if entity_id:
        stmt = stmt.where(AuditEvent.entity_id == entity_id)
    if action:
        stmt = stmt.where(AuditEvent.action == action)
    if actor:
        stmt = stmt.where(AuditEvent.actor == actor)
    return by_id(stmt)
