"""API keys: random secrets shown once, stored hashed, identified by a public prefix.

A key reads ``labq_<prefix>_<secret>``. The prefix (8 hex characters) is public: it names the key in
the audit trail and in ``labq keys revoke``. The secret has 256 bits of entropy, so a plain SHA-256
of it is enough at rest (a slow password hash buys nothing against a random 32-byte secret); it is
compared in constant time.

Verified keys may be kept for a few seconds per process (``KeyCache``, ``key_cache_seconds``):
a request with a recently verified token then needs no database read. Revoking a key evicts it
from every cache of the revoking process at once; other processes stop accepting it when their
entry expires, within ``key_cache_seconds``.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
import threading
import time
import weakref
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Engine, or_, select, update
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import InstrumentedAttribute, Session

from models import ApiKey, Examiner, Lab
from models.base import utcnow
from models.security import ROLES
from scheduler.db import is_lock_timeout
from scheduler.errors import Conflict, Invalid, NotFound
from scheduler.services import audit
from scheduler.services.integrity import flush
from scheduler.services.listing import Listing, by_id

logger = logging.getLogger(__name__)

TOKEN_PREFIX = "labq"
PREFIX_BYTES = 4
SECRET_BYTES = 32
TOUCH_EVERY = timedelta(seconds=60)
# After a revocation in this process, its key is not cached again for this long, so a request
# that read the row before the revocation committed cannot put it back.
REVOKED_QUARANTINE_SECONDS = 60.0


@dataclass(frozen=True)
class NewKey:
    """A freshly created key; ``token`` is the only time the secret is ever available."""

    key: ApiKey
    token: str


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def free_prefix(session: Session, column: InstrumentedAttribute[str]) -> str:
    """A random public prefix not yet used in ``column`` (API keys and feed tokens alike)."""
    for _ in range(5):
        prefix = secrets.token_hex(PREFIX_BYTES)
        if session.scalar(select(column).where(column == prefix)) is None:
            return prefix
    # 2**32 prefixes: five collisions in a row mean something is broken.
    raise Conflict("could not find a free prefix")  # pragma: no cover


def split_token(token: str) -> tuple[str, str] | None:
    """``labq_<prefix>_<secret>`` -> (prefix, secret); None if it is not shaped like a key."""
    parts = token.strip().split("_", 2)
    if len(parts) != 3 or parts[0] != TOKEN_PREFIX or not parts[1] or not parts[2]:
        return None
    return parts[1], parts[2]


def create_key(
    session: Session,
    *,
    actor: str,
    role: str,
    name: str,
    lab: Lab | None = None,
    examiner: Examiner | None = None,
) -> NewKey:
    """Create a key. An examiner key is bound to one examiner and scoped to that examiner's lab."""
    if role not in ROLES:
        raise Invalid(f"unknown role {role!r}; one of {', '.join(ROLES)}", field="role")
    if role == "examiner":
        if examiner is None:
            raise Invalid("an examiner key must name its examiner", field="examiner")
        if lab is not None and lab.id != examiner.lab_id:
            raise Invalid("the examiner belongs to another lab", field="examiner")
        lab_id: int | None = examiner.lab_id
    else:
        if examiner is not None:
            raise Invalid("only an examiner key is bound to an examiner", field="examiner")
        lab_id = lab.id if lab is not None else None
    name = name.strip()
    if not name or len(name) > 200:
        raise Invalid("a key name is 1 to 200 characters", field="name")
    prefix = free_prefix(session, ApiKey.prefix)
    secret = secrets.token_urlsafe(SECRET_BYTES)
    key = ApiKey(
        prefix=prefix,
        secret_hash=hash_secret(secret),
        name=name,
        role=role,
        lab_id=lab_id,
        examiner_id=examiner.id if examiner is not None else None,
    )
    session.add(key)
    flush(session)
    audit.record(
        session,
        actor=actor,
        action="api_key.create",
        entity_type="api_key",
        entity_id=prefix,
        lab_id=lab_id,
        after=_public_state(key),
    )
    return NewKey(key=key, token=f"{TOKEN_PREFIX}_{prefix}_{secret}")


def _public_state(key: ApiKey) -> dict[str, object]:
    state = audit.state_of(key)
    state.pop("secret_hash", None)
    return state


def keys_of(lab_id: int | None) -> Listing:
    """Every key in id order, or only those of lab ``lab_id`` when given."""
    stmt = select(ApiKey)
    if lab_id is not None:
        stmt = stmt.where(ApiKey.lab_id == lab_id)
    return by_id(stmt)


def get_key(session: Session, prefix: str) -> ApiKey:
    key = session.scalar(select(ApiKey).where(ApiKey.prefix == prefix))
    if key is None:
        raise NotFound(f"API key {prefix!r} does not exist")
    return key


def revoke_key(session: Session, *, actor: str, prefix: str) -> ApiKey:
    """Revoke a key: this process refuses it at once, others within ``key_cache_seconds`` (see
    the module). Revoking twice is a conflict, not a no-op."""
    key = get_key(session, prefix)
    if key.revoked_at is not None:
        raise Conflict(f"API key {prefix!r} was already revoked at {key.revoked_at.isoformat()}")
    before = _public_state(key)
    key.revoked_at = utcnow()
    flush(session)
    forget_everywhere(prefix)
    audit.record(
        session,
        actor=actor,
        action="api_key.revoke",
        entity_type="api_key",
        entity_id=prefix,
        lab_id=key.lab_id,
        before=before,
        after=_public_state(key),
    )
    return key


def verify_token(session: Session, token: str) -> ApiKey | None:
    """The live key this token belongs to, or None (unknown, malformed, wrong secret, revoked)."""
    parts = split_token(token)
    if parts is None:
        return None
    prefix, secret = parts
    key = session.scalar(select(ApiKey).where(ApiKey.prefix == prefix))
    if key is None:
        hmac.compare_digest(hash_secret(secret), hash_secret(""))  # same work either way
        return None
    if not hmac.compare_digest(key.secret_hash, hash_secret(secret)):
        return None
    if key.revoked_at is not None:
        return None
    return key


def touch(engine: Engine, key_id: int, now: datetime | None = None) -> bool:
    """Record that a key was used, at most once per ``TOUCH_EVERY`` (one indexed UPDATE).

    Runs in its own short transaction, off the request's unit of work, so a read request never
    becomes a writer. A database too busy to take it (a lock wait that ran out) skips the touch:
    it is bookkeeping, retried on the key's next use. Returns whether the row was updated.
    """
    now = now or utcnow()
    try:
        with engine.begin() as conn:
            result = conn.execute(
                update(ApiKey)
                .where(
                    ApiKey.id == key_id,
                    or_(ApiKey.last_used_at.is_(None), ApiKey.last_used_at < now - TOUCH_EVERY),
                )
                .values(last_used_at=now)
            )
    except DBAPIError as exc:
        if not is_lock_timeout(exc):
            raise
        logger.info("last use of key %s not recorded: the database is busy", key_id)
        return False
    return bool(result.rowcount)


# ---- verified keys, briefly cached --------------------------------------------------------


@dataclass(frozen=True)
class VerifiedKey:
    """What a request needs of a live key (no secret hash): who it is and what it may see."""

    id: int
    prefix: str
    role: str
    lab_id: int | None
    lab_code: str | None
    examiner_id: int | None


def verify(session: Session, token: str) -> VerifiedKey | None:
    """``verify_token`` plus the key's lab code, in one query."""
    parts = split_token(token)
    if parts is None:
        return None
    prefix, secret = parts
    row = session.execute(
        select(ApiKey, Lab.code)
        .outerjoin(Lab, Lab.id == ApiKey.lab_id)
        .where(ApiKey.prefix == prefix)
    ).first()
    if row is None:
        hmac.compare_digest(hash_secret(secret), hash_secret(""))  # same work either way
        return None
    key, lab_code = row
    if not hmac.compare_digest(key.secret_hash, hash_secret(secret)):
        return None
    if key.revoked_at is not None:
        return None
    return VerifiedKey(key.id, key.prefix, key.role, key.lab_id, lab_code, key.examiner_id)


class KeyCache:
    """Verified keys by a digest of the whole token, each trusted for ``seconds``.

    The digest is of the token itself, so a hit proves the caller holds that exact token; an
    unknown or wrong token is never cached and always goes to the database. ``clock`` is
    injectable for tests. Bounded: the oldest entries go first.
    """

    def __init__(
        self,
        seconds: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        max_entries: int = 10_000,
    ) -> None:
        self.seconds = seconds
        self.clock = clock
        self.max_entries = max_entries
        self._entries: OrderedDict[str, tuple[float, VerifiedKey]] = OrderedDict()
        self._quarantine: dict[str, float] = {}
        self._lock = threading.Lock()
        _caches.add(self)

    @staticmethod
    def digest(token: str) -> str:
        return hashlib.sha256(token.encode()).hexdigest()

    def get(self, token: str) -> VerifiedKey | None:
        if self.seconds <= 0:
            return None
        digest = self.digest(token)
        with self._lock:
            entry = self._entries.get(digest)
            if entry is None:
                return None
            if entry[0] <= self.clock():
                del self._entries[digest]
                return None
            return entry[1]

    def put(self, token: str, key: VerifiedKey) -> None:
        if self.seconds <= 0:
            return
        now = self.clock()
        with self._lock:
            until = self._quarantine.get(key.prefix)
            if until is not None:
                if until > now:
                    return
                del self._quarantine[key.prefix]
            self._entries[self.digest(token)] = (now + self.seconds, key)
            self._entries.move_to_end(self.digest(token))
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)

    def forget(self, prefix: str) -> None:
        """Drop a key (revoked) and keep it out for ``REVOKED_QUARANTINE_SECONDS``."""
        with self._lock:
            for digest in [d for d, (_, k) in self._entries.items() if k.prefix == prefix]:
                del self._entries[digest]
            self._quarantine[prefix] = self.clock() + max(self.seconds, REVOKED_QUARANTINE_SECONDS)


_caches: weakref.WeakSet[KeyCache] = weakref.WeakSet()


def forget_everywhere(prefix: str) -> None:
    """Evict a revoked key from every key cache of this process (API apps, tests, the CLI)."""
    for cache in list(_caches):
        cache.forget(prefix)
