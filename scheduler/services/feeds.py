"""Feed tokens: read-only links for a calendar app (one examiner's feed) or a browser (the board).

Calendar apps and browsers cannot send an ``X-API-Key`` header, so the credential travels in the
URL: ``labqfeed_<prefix>_<secret>``. As for API keys, the secret is random (256 bits), shown once
and stored as a SHA-256; the prefix names the token in lists, revocations and the audit trail.
A token opens exactly one thing read-only and is revoked on its own, without touching any key.
"""

from __future__ import annotations

import hmac
import logging
import secrets
from datetime import datetime

from sqlalchemy import Engine, or_, select, update
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from models import Examiner, FeedToken, Lab
from models.base import utcnow
from scheduler.errors import Conflict, Invalid, NotFound
from scheduler.services import audit
from scheduler.services.integrity import flush
from scheduler.services.keys import SECRET_BYTES, TOUCH_EVERY, free_prefix, hash_secret
from scheduler.services.listing import Listing, by_id

log = logging.getLogger(__name__)

TOKEN_PREFIX = "labqfeed"


def create_feed(
    session: Session,
    *,
    actor: str,
    lab: Lab,
    kind: str,
    name: str,
    examiner: Examiner | None = None,
) -> tuple[FeedToken, str]:
    """Create a token; returns it with the URL token, the only time the secret is available."""
    if kind == "calendar" and examiner is None:
        raise Invalid("a calendar feed names its examiner", field="examiner")
    if kind == "board" and examiner is not None:
        raise Invalid("a board link opens the whole lab's board, not one examiner", field="kind")
    name = name.strip()
    if not name or len(name) > 200:
        raise Invalid("a feed name is 1 to 200 characters", field="name")
    prefix = free_prefix(session, FeedToken.prefix)
    secret = secrets.token_urlsafe(SECRET_BYTES)
    feed = FeedToken(
        prefix=prefix,
        secret_hash=hash_secret(secret),
        kind=kind,
        name=name,
        lab_id=lab.id,
        examiner_id=examiner.id if examiner is not None else None,
        created_by=actor,
    )
    session.add(feed)
    flush(session)
    audit.record(
        session,
        actor=actor,
        action="feed_token.create",
        entity_type="feed_token",
        entity_id=prefix,
        lab_id=lab.id,
        after=_public_state(feed),
    )
    return feed, f"{TOKEN_PREFIX}_{prefix}_{secret}"


def _public_state(feed: FeedToken) -> dict[str, object]:
    state = audit.state_of(feed)
    state.pop("secret_hash", None)
    return state


def feeds_of(lab: Lab) -> Listing:
    """The lab's feed tokens, live and revoked, in id order."""
    return by_id(select(FeedToken).where(FeedToken.lab_id == lab.id))


def get_feed(session: Session, lab: Lab, prefix: str) -> FeedToken:
    feed = session.scalar(
        select(FeedToken).where(FeedToken.lab_id == lab.id, FeedToken.prefix == prefix)
    )
    if feed is None:
        raise NotFound(f"feed {prefix!r} does not exist in lab {lab.code!r}")
    return feed


def revoke_feed(session: Session, *, actor: str, feed: FeedToken) -> FeedToken:
    """Revoke a token: its URL stops working at once (tokens are never cached)."""
    if feed.revoked_at is not None:
        raise Conflict(f"feed {feed.prefix!r} was already revoked")
    before = _public_state(feed)
    feed.revoked_at = utcnow()
    flush(session)
    audit.record(
        session,
        actor=actor,
        action="feed_token.revoke",
        entity_type="feed_token",
        entity_id=feed.prefix,
        lab_id=feed.lab_id,
        before=before,
        after=_public_state(feed),
    )
    return feed


def verify_feed(session: Session, token: str, kind: str) -> FeedToken | None:
    """The live token of this ``kind`` that ``token`` is, or None (unknown, wrong, revoked)."""
    parts = token.split("_", 2)
    if len(parts) != 3 or parts[0] != TOKEN_PREFIX or not parts[1] or not parts[2]:
        return None
    prefix, secret = parts[1], parts[2]
    feed = session.scalar(select(FeedToken).where(FeedToken.prefix == prefix))
    if feed is None:
        hmac.compare_digest(hash_secret(secret), hash_secret(""))  # same work either way
        return None
    if not hmac.compare_digest(feed.secret_hash, hash_secret(secret)):
        return None
    if feed.revoked_at is not None or feed.kind != kind:
        return None
    return feed


def touch(engine: Engine, feed_id: int, now: datetime | None = None) -> None:
    """Note the token's last use, at most once per ``TOUCH_EVERY``, in its own short transaction.

    Called after the response; a calendar that polls while the database is busy loses nothing
    but this note.
    """
    now = now or utcnow()
    try:
        with engine.begin() as conn:
            conn.execute(
                update(FeedToken)
                .where(
                    FeedToken.id == feed_id,
                    or_(
                        FeedToken.last_used_at.is_(None),
                        FeedToken.last_used_at < now - TOUCH_EVERY,
                    ),
                )
                .values(last_used_at=now)
            )
    except OperationalError:
        log.info("feed %s: last use not recorded, the database is busy", feed_id)
