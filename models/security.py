"""API keys, console sessions and the append-only audit trail."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, CreatedAt, one_of, utcnow

ROLES = ("admin", "supervisor", "integration", "examiner", "auditor")


class ApiKey(CreatedAt, Base):
    """A client credential. Only a hash of the secret is stored; ``prefix`` identifies the key.

    ``lab_id`` NULL scopes the key to every lab. An examiner key is bound to one examiner.
    """

    __tablename__ = "api_key"
    __table_args__ = (one_of("role", ROLES),)

    id: Mapped[int] = mapped_column(primary_key=True)
    prefix: Mapped[str] = mapped_column(String(16), unique=True)
    secret_hash: Mapped[str] = mapped_column(String(128))
    name: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(16))
    lab_id: Mapped[int | None] = mapped_column(ForeignKey("lab.id", ondelete="CASCADE"), index=True)
    examiner_id: Mapped[int | None] = mapped_column(ForeignKey("examiner.id", ondelete="CASCADE"))
    last_used_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]


class ConsoleSession(CreatedAt, Base):
    """A signed-in browser of the web console (docs/architecture.md §7.8).

    Made by signing in with an API key; it acts with that key's role and scope, and ends with
    the key (revoked) or after ``console_idle_minutes`` without a request. Only a SHA-256 of the
    cookie's random secret is stored, as for keys.
    """

    __tablename__ = "console_session"

    id: Mapped[int] = mapped_column(primary_key=True)
    secret_hash: Mapped[str] = mapped_column(String(64), unique=True)
    api_key_id: Mapped[int] = mapped_column(
        ForeignKey("api_key.id", ondelete="CASCADE"), index=True
    )
    last_seen_at: Mapped[datetime] = mapped_column(default=utcnow)


FEED_KINDS = ("calendar", "board")


class FeedToken(CreatedAt, Base):
    """A read-only link for clients that cannot send an API key: a calendar app, a browser.

    A ``calendar`` token opens one examiner's iCalendar feed; a ``board`` token opens the lab's
    published Gantt page. Only a hash of the secret is stored, as for API keys.
    """

    __tablename__ = "feed_token"
    __table_args__ = (one_of("kind", FEED_KINDS),)

    id: Mapped[int] = mapped_column(primary_key=True)
    prefix: Mapped[str] = mapped_column(String(16), unique=True)
    secret_hash: Mapped[str] = mapped_column(String(128))
    kind: Mapped[str] = mapped_column(String(16))
    name: Mapped[str] = mapped_column(String(200))
    lab_id: Mapped[int] = mapped_column(ForeignKey("lab.id", ondelete="CASCADE"), index=True)
    examiner_id: Mapped[int | None] = mapped_column(ForeignKey("examiner.id", ondelete="CASCADE"))
    created_by: Mapped[str] = mapped_column(String(64))
    last_used_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]


class AuditEvent(Base):
    """Who changed what, when. Digests, not contents: the trail itself holds no case detail."""

    __tablename__ = "audit_event"
    __table_args__ = (Index("ix_audit_event_lab_at", "lab_id", "at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(default=utcnow)
    actor: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(64))
    entity_type: Mapped[str] = mapped_column(String(64))
    entity_id: Mapped[str] = mapped_column(String(64))
    # The entity's external reference when it was written (a case ref, ``case/device/job``, an
    # examiner ref, a version or run id), so the trail names it even after it is deleted.
    entity_ref: Mapped[str | None] = mapped_column(String(200))
    lab_id: Mapped[int | None] = mapped_column(ForeignKey("lab.id", ondelete="SET NULL"))
    before_digest: Mapped[str | None] = mapped_column(String(64))
    after_digest: Mapped[str | None] = mapped_column(String(64))
