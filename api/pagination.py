"""Cursor pagination: lists are ordered by id and resume after the last id seen.

The cursor is opaque to clients (base64 of the last id), so the ordering key can change without
breaking them; ``limit`` is bounded 1..500.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from typing import Annotated, Any, Generic, TypeVar

from fastapi import Depends, Query
from pydantic import BaseModel, Field
from sqlalchemy import Select
from sqlalchemy.orm import InstrumentedAttribute, Session

from scheduler.errors import Invalid

DEFAULT_LIMIT = 100
MAX_LIMIT = 500

Item = TypeVar("Item")


class Page(BaseModel, Generic[Item]):
    items: list[Item]
    next_cursor: str | None = Field(
        description="Pass as `cursor` to get the next page; null on the last page."
    )


def encode_cursor(last_id: int) -> str:
    return base64.urlsafe_b64encode(str(last_id).encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> int:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        value = int(base64.urlsafe_b64decode(padded.encode()).decode())
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise Invalid("cursor is not one this API issued", field="cursor") from None
    if value < 0:
        raise Invalid("cursor is not one this API issued", field="cursor")
    return value


@dataclass(frozen=True)
class PageParams:
    limit: int
    after_id: int | None


def page_params(
    limit: Annotated[
        int, Query(ge=1, le=MAX_LIMIT, description="Items per page (1..500).")
    ] = DEFAULT_LIMIT,
    cursor: Annotated[
        str | None,
        Query(max_length=64, description="The `next_cursor` of the previous page."),
    ] = None,
) -> PageParams:
    return PageParams(limit=limit, after_id=decode_cursor(cursor) if cursor else None)


PageDep = Annotated[PageParams, Depends(page_params)]


def paginate(
    session: Session,
    stmt: Select[Any],
    id_column: InstrumentedAttribute[int],
    params: PageParams,
) -> tuple[list[Any], str | None]:
    """One page of ``stmt``, which selects ORM entities that have an integer ``id``."""
    if params.after_id is not None:
        stmt = stmt.where(id_column > params.after_id)
    rows = list(session.scalars(stmt.order_by(id_column).limit(params.limit + 1)).unique())
    more = len(rows) > params.limit
    rows = rows[: params.limit]
    next_cursor = encode_cursor(rows[-1].id) if more and rows else None
    return rows, next_cursor
