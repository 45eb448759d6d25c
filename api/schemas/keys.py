"""API keys."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from api.schemas.common import Body, Instant, Name, Out, Ref

Role = Literal["admin", "supervisor", "integration", "examiner", "auditor"]


class KeyCreate(Body):
    role: Role
    name: Name
    lab: Ref | None = Field(default=None, description="Scope to one lab; omit for all labs.")
    examiner: Ref | None = Field(
        default=None, description="Examiner keys only: the examiner (in `lab`) it belongs to."
    )


class KeyOut(Out):
    prefix: str = Field(description="Public identifier; the actor in the audit trail.")
    name: str
    role: str
    lab: str | None
    examiner: str | None
    created_at: Instant
    last_used_at: Instant | None
    revoked_at: Instant | None


class KeyCreated(KeyOut):
    token: str = Field(description="The key. Shown once, never stored: keep it now.")
