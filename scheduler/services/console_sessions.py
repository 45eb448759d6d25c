"""Web console sessions: a browser signs in with an API key and then carries a cookie.

The cookie holds a random 256-bit secret; only its SHA-256 is stored (``console_session``), as
for keys. A session acts with its key's role and scope exactly (it resolves to the same
``VerifiedKey`` the key does) and ends when the key is revoked, after ``idle`` without use, or
at sign-out. The CSRF token of a session is an HMAC of its secret, so it is never stored and
cannot be derived from anything the server keeps. See docs/architecture.md §7.8.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import datetime, timedelta

from sqlalchemy import Engine, delete, select, update
from sqlalchemy.orm import Session

from models import ApiKey, ConsoleSession, Lab
from models.base import utcnow
from scheduler.services import audit
from scheduler.services.keys import VerifiedKey

SECRET_BYTES = 32
TOUCH_EVERY = timedelta(seconds=60)


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def csrf_token(secret: str) -> str:
    """The session's CSRF token: sent in every form and compared in constant time."""
    return hmac.new(secret.encode(), b"labq-console-csrf", hashlib.sha256).hexdigest()


def csrf_matches(secret: str, sent: str | None) -> bool:
    return bool(sent) and hmac.compare_digest(csrf_token(secret), sent or "")


def start(
    session: Session,
    *,
    key_id: int,
    actor: str,
    lab_id: int | None,
    idle: timedelta,
    now: datetime | None = None,
) -> str:
    """A new session for a verified key; returns the cookie's secret (shown to no one else).

    Sessions idle for longer than ``idle`` are removed on the way, so the table stays small.
    """
    now = now or utcnow()
    session.execute(delete(ConsoleSession).where(ConsoleSession.last_seen_at < now - idle))
    secret = secrets.token_urlsafe(SECRET_BYTES)
    row = ConsoleSession(secret_hash=_hash(secret), api_key_id=key_id, last_seen_at=now)
    session.add(row)
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="console.sign_in",
        entity_type="console_session",
        entity_id=row.id,
        lab_id=lab_id,
        entity_ref=actor,
    )
    return secret


def resolve(
    session: Session, secret: str, *, idle: timedelta, now: datetime | None = None
) -> tuple[int, datetime, VerifiedKey] | None:
    """``(session id, last seen, key)`` of a live session, or None (unknown, idle, revoked)."""
    if not secret:
        return None
    now = now or utcnow()
    row = session.execute(
        select(ConsoleSession.id, ConsoleSession.last_seen_at, ApiKey, Lab.code)
        .join(ApiKey, ApiKey.id == ConsoleSession.api_key_id)
        .outerjoin(Lab, Lab.id == ApiKey.lab_id)
        .where(ConsoleSession.secret_hash == _hash(secret))
    ).first()
    if row is None:
        return None
    session_id, last_seen, key, lab_code = row
    if key.revoked_at is not None or last_seen < now - idle:
        return None
    verified = VerifiedKey(key.id, key.prefix, key.role, key.lab_id, lab_code, key.examiner_id)
    return session_id, last_seen, verified


def touch(engine: Engine, session_id: int, now: datetime | None = None) -> None:
    """Record use (at most once per ``TOUCH_EVERY``) in a short transaction of its own, so a
    page view stays a read."""
    now = now or utcnow()
    with engine.begin() as conn:
        conn.execute(
            update(ConsoleSession)
            .where(ConsoleSession.id == session_id, ConsoleSession.last_seen_at < now - TOUCH_EVERY)
            .values(last_seen_at=now)
        )


def end(session: Session, secret: str, *, actor: str, lab_id: int | None) -> bool:
    """Sign out: remove the session. Returns whether there was one."""
    row = session.scalar(select(ConsoleSession).where(ConsoleSession.secret_hash == _hash(secret)))
    if row is None:
        return False
    audit.record(
        session,
        actor=actor,
        action="console.sign_out",
        entity_type="console_session",
        entity_id=row.id,
        lab_id=lab_id,
        entity_ref=actor,
    )
    session.delete(row)
    session.flush()
    return True
