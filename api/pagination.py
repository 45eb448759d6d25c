"""Cursor pagination: lists are ordered by a key and resume after the last key seen.

The cursor is opaque to clients (base64 of the last row's key: an id, or a few integers for a
list in another order, such as assignments by start), so the ordering key can change without
breaking them; ``limit`` is bounded 1..500. Ids are 32-bit integers in the database, so a path id
or a cursor beyond ``MAX_ID`` is refused before any query (PostgreSQL would fail the query).
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from typing import Annotated, Any, Generic, NamedTuple, TypeVar

from fastapi import Depends, Path, Query
from pydantic import BaseModel, Field
from sqlalchemy import Select
from sqlalchemy.orm import InstrumentedAttribute, Session

from scheduler.errors import Invalid

DEFAULT_LIMIT = 100
MAX_LIMIT = 500
MAX_ID = 2**31 - 1
MAX_KEY = 2**63 - 1
_MAX_PARTS = 4

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
    return base64.urlsafe_b64encode(".".join(map(str, key)).encode()).decode().rstrip("=")


def _forged() -> Invalid:
    return Invalid("cursor is not one this API issued", field="cursor")


def decode_cursor(cursor: str) -> tuple[int, ...]:
    """The key a cursor carries; each part a non-negative integer within int64."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        text = base64.urlsafe_b64decode(padded.encode()).decode("ascii")
        parts = text.split(".")
        if len(parts) > _MAX_PARTS or not all(p.isdigit() for p in parts):
            raise ValueError(text)
        key = tuple(int(p) for p in parts)
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise _forged() from None
    if any(part > MAX_KEY for part in key):
        raise _forged()
    return key


@dataclass(frozen=True)
class PageParams:
    limit: int
    after: tuple[int, ...] | None

    @property
    def after_id(self) -> int | None:
        """The last id seen, for the lists ordered by id."""
        if self.after is None:
            return None
        if len(self.after) != 1 or self.after[0] > MAX_ID:
            raise _forged()
        return self.after[0]

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


def page_params(
    limit: Annotated[
        int, Query(ge=1, le=MAX_LIMIT, description="Items per page (1..500).")
    ] = DEFAULT_LIMIT,
    cursor: Annotated[
        str | None,
        Query(max_length=64, description="The `next_cursor` of the previous page."),
    ] = None,
) -> PageParams:
    return PageParams(limit=limit, after=decode_cursor(cursor) if cursor else None)


PageDep = Annotated[PageParams, Depends(page_params)]


def paginate(
    session: Session,
    stmt: Select[Any],
    id_column: InstrumentedAttribute[int],
    params: PageParams,
) -> tuple[list[Any], Cursors]:
    """One page of ``stmt``, which selects ORM entities, ordered by the integer ``id_column``."""
    if params.after_id is not None:
        stmt = stmt.where(id_column > params.after_id)
    rows = list(session.scalars(stmt.order_by(id_column).limit(params.limit + 1)).unique())
    more = len(rows) > params.limit
    rows = rows[: params.limit]
    last = (getattr(rows[-1], id_column.key),) if rows else None
    return rows, params.cursors(last, more)
