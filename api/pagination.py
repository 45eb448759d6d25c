"""Cursor pagination: lists are ordered by a key and resume after the last key seen.

The cursor is opaque to clients (the last row's key: an id, or a few integers for a list in
another order, such as assignments by start), so the ordering key can change without breaking
them; ``limit`` is bounded 1..500. Each integer of the key is 9 bytes big-endian, below 2**63,
in base64url: 12 characters, of which the schema's ``pattern`` says exactly which are possible.
So every string the pattern admits is a position in the list's order and is answered (past the
end, with an empty page), and every other is a 422 naming ``cursor``. Ids are 32-bit integers in
the database, so a path id beyond ``MAX_ID`` is refused before any query (PostgreSQL would fail
it), and a cursor beyond it reads as the end of the list.
"""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass
from typing import Annotated, Any, Generic, NamedTuple, TypeVar

from fastapi import Depends, Path, Query
from pydantic import BaseModel, Field
from sqlalchemy.orm import Session

from scheduler.errors import Invalid
from scheduler.services.listing import Listing

DEFAULT_LIMIT = 100
MAX_LIMIT = 500
MAX_ID = 2**31 - 1
MAX_KEY = 2**63 - 1
_PART_BYTES = 9
# 9 bytes are 72 bits, 12 base64 digits of 6 bits: a value below 2**63 has its first 9 bits 0,
# so its first digit is "A" (0) and its second one of "A".."H" (0..7).
_PART_PATTERN = "A[A-H][A-Za-z0-9_-]{10}"


def cursor_pattern(parts: int) -> str:
    """The ``pattern`` of a cursor of ``parts`` integers: exactly the strings that are one."""
    return "^" + _PART_PATTERN * parts + "$"


Item = TypeVar("Item")


class Page(BaseModel, Generic[Item]):
    items: list[Item]
    next_cursor: str | None = Field(
        description="Pass as `cursor` to get the next page; null on the last page."
    )
    resume_cursor: str | None = Field(
        default=None,
        description="Pass as `cursor` later to get only what was added since: the position "
        "after this page's last item (the request's own cursor when the page is empty), "
        "present on the last page too.",
    )


class Cursors(NamedTuple):
    """Where a list goes on: the next page now, or whatever is added after this page later."""

    next_cursor: str | None
    resume_cursor: str | None


def id_path(what: str) -> Any:
    """A numeric id in a path: 1..MAX_ID, so an id the database cannot hold is a 422."""
    return Path(ge=1, le=MAX_ID, description=f"The {what}'s id (1..{MAX_ID}).")


def encode_cursor(*key: int) -> str:
    raw = b"".join(part.to_bytes(_PART_BYTES, "big") for part in key)
    return base64.urlsafe_b64encode(raw).decode()


def _forged() -> Invalid:
    return Invalid("cursor is not one this API issued", field="cursor")


def decode_cursor(cursor: str, parts: int) -> tuple[int, ...]:
    """The key a cursor carries: ``parts`` integers in 0..MAX_KEY.

    The route's ``pattern`` has already refused any other string; this is the same rule again
    for a caller that did not go through it.
    """
    if re.fullmatch(cursor_pattern(parts), cursor) is None:
        raise _forged()
    raw = base64.urlsafe_b64decode(cursor)
    return tuple(
        int.from_bytes(raw[i : i + _PART_BYTES], "big") for i in range(0, len(raw), _PART_BYTES)
    )


@dataclass(frozen=True)
class PageParams:
    limit: int
    after: tuple[int, ...] | None

    @property
    def after_id(self) -> int | None:
        """The last id seen, for the lists ordered by id (no id is above ``MAX_ID``)."""
        if self.after is None:
            return None
        if len(self.after) != 1:
            raise _forged()
        return min(self.after[0], MAX_ID)

    def cursors(self, last_key: tuple[int, ...] | None, more: bool) -> Cursors:
        """The cursors of a page whose last item has ``last_key`` (None when it is empty)."""
        if last_key is None:
            resume = encode_cursor(*self.after) if self.after is not None else None
            return Cursors(None, resume)
        resume = encode_cursor(*last_key)
        return Cursors(resume if more else None, resume)

    def after_key(self, parts: int) -> tuple[int, ...] | None:
        """The last key seen, for a list ordered by ``parts`` integers."""
        if self.after is not None and len(self.after) != parts:
            raise _forged()
        return self.after


Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT, description="Items per page (1..500).")]
_CURSOR = "The `next_cursor` (or `resume_cursor`) of an earlier page of this list."
IdCursor = Annotated[str | None, Query(pattern=cursor_pattern(1), description=_CURSOR)]
StartCursor = Annotated[str | None, Query(pattern=cursor_pattern(2), description=_CURSOR)]


def page_params(limit: Limit = DEFAULT_LIMIT, cursor: IdCursor = None) -> PageParams:
    return PageParams(limit=limit, after=decode_cursor(cursor, 1) if cursor else None)


def start_page_params(limit: Limit = DEFAULT_LIMIT, cursor: StartCursor = None) -> PageParams:
    """A list in start order: its key is (start, id)."""
    return PageParams(limit=limit, after=decode_cursor(cursor, 2) if cursor else None)


PageDep = Annotated[PageParams, Depends(page_params)]
StartPageDep = Annotated[PageParams, Depends(start_page_params)]


def paginate(session: Session, listing: Listing, params: PageParams) -> tuple[list[Any], Cursors]:
    """One page of a service's or view's ``listing`` (ORM entities, ordered by its integer key)."""
    stmt, id_column = listing.stmt, listing.key
    if params.after_id is not None:
        stmt = stmt.where(id_column > params.after_id)
    rows = list(session.scalars(stmt.order_by(id_column).limit(params.limit + 1)).unique())
    more = len(rows) > params.limit
    rows = rows[: params.limit]
    last = (getattr(rows[-1], id_column.key),) if rows else None
    return rows, params.cursors(last, more)
