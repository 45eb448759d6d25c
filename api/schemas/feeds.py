"""Feed tokens: subscription links for calendar apps and browsers."""

from __future__ import annotations

from pydantic import Field

from api.schemas.common import Body, Instant, Name, Out


class FeedCreate(Body):
    name: Name = Field(description="What the link is for, e.g. `phone calendar`.")


class FeedOut(Out):
    prefix: str = Field(description="Public identifier of the token; revoke it by this.")
    kind: str = Field(description="`calendar` (one examiner's feed) or `board` (the Gantt page).")
    name: str
    examiner: str | None
    created_by: str
    created_at: Instant
    last_used_at: Instant | None
    revoked_at: Instant | None


class FeedCreated(FeedOut):
    url: str = Field(
        description="The subscription URL. It carries the secret: shown once, never again."
    )
