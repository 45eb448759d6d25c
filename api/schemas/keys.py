"""API keys."""

from __future__ import annotations

from typing import Literal

from pydantic import ConfigDict, Field

from api.schemas.common import Body, Instant, Name, Out, Ref

Role = Literal["admin", "supervisor", "integration", "examiner", "auditor"]


class KeyCreate(Body):
    """An examiner key names its examiner and the lab to find them in; no other key names one."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "if": {"properties": {"role": {"const": "examiner"}}, "required": ["role"]},
            "then": {
                "properties": {"examiner": {"type": "string"}, "lab": {"type": "string"}},
                "required": ["examiner", "lab"],
            },
            "else": {"properties": {"examiner": {"type": "null"}}},
        },
    )

    role: Role
    name: Name
    lab: Ref | None = Field(
        default=None,
        description="Scope to one lab; omit for all labs (a lab's own admin: that lab). "
        "Required with `examiner`.",
    )
    examiner: Ref | None = Field(
        default=None,
        description="Examiner keys only, and required for them: the examiner (in `lab`) it "
        "belongs to.",
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
