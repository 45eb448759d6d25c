"""The audit trail (read-only)."""

from __future__ import annotations

from datetime import datetime

from api.schemas.common import Out


class AuditEventOut(Out):
    id: int
    at: datetime
    actor: str
    action: str
    entity_type: str
    entity_id: str
    lab: str | None
    before_digest: str | None
    after_digest: str | None
