"""The audit trail (read-only)."""

from __future__ import annotations

from pydantic import Field

from api.schemas.common import Instant, Out


class AuditEventOut(Out):
    id: int
    at: Instant
    actor: str
    action: str
    entity_type: str
    entity_id: str
    entity_ref: str | None = Field(
        description="The entity's external reference when the event was written (a case ref, "
        "`case/device/job`, an examiner ref, a version or run id); null for older events."
    )
    lab: str | None
    before_digest: str | None
    after_digest: str | None
