"""ETags for mutable single resources and If-Match / If-None-Match on their changes.

The tag is a digest of the resource's JSON representation, so it changes whenever anything a
client can see changes; a write with a stale ``If-Match`` gets 412 and changes nothing.
"""

from __future__ import annotations

import hashlib
from typing import Annotated

from fastapi import Header, Response
from pydantic import BaseModel, WithJsonSchema

from scheduler.errors import PreconditionFailed

# A header is a string or absent, never null: the schema says so (FastAPI would add a null).
# Its value is not held to the tag grammar: RFC 9110 13.1.1 and 13.1.2 say what any value
# means ("*", or a list naming the current tag, or "otherwise"), so a malformed If-Match is a
# condition that fails (412) and a malformed If-None-Match one that holds.
_TAGS_SCHEMA = WithJsonSchema({"type": "string", "maxLength": 2000})

IfMatch = Annotated[
    str | None,
    _TAGS_SCHEMA,
    Header(
        alias="If-Match",
        max_length=2000,
        description="The ETag you last read (quoted, as the ETag header gives it), or `*`; the "
        "change is refused with 412 if it names another state (on PUT, also when there is none "
        "yet: RFC 9110 13.1.1). A resource that does not exist is a 404 first where the "
        "method cannot create it.",
    ),
]
IfNoneMatch = Annotated[
    str | None,
    _TAGS_SCHEMA,
    Header(
        alias="If-None-Match",
        max_length=2000,
        description='On PUT, "*" creates only (412 if it exists); on GET, the ETags of your copy '
        "(304 if it is current).",
    ),
]


def etag_of(representation: BaseModel) -> str:
    return etag_of_json(representation.model_dump_json().encode())


def etag_of_json(body: bytes) -> str:
    """The tag of an already serialized representation (the same tag ``etag_of`` gives)."""
    return f'"{hashlib.sha256(body).hexdigest()[:32]}"'


def _tags(header: str) -> list[str]:
    return [t.strip() for t in header.split(",") if t.strip()]


def check_if_match(if_match: str | None, current: str | None) -> None:
    """Refuse a change when ``If-Match`` is given and does not name the current state.

    ``current`` is None when the resource does not exist. Weak tags never match (RFC 9110 13.1.1).
    """
    if if_match is None:
        return
    tags = _tags(if_match)
    if tags == ["*"]:
        if current is None:
            raise PreconditionFailed("If-Match: * but the resource does not exist")
        return
    if current is None:
        raise PreconditionFailed("If-Match was given but the resource does not exist")
    if current not in tags:
        raise PreconditionFailed(
            f"the resource has changed: its ETag is {current}, If-Match was {if_match}",
            etag=current,
        )


def check_if_none_match(if_none_match: str | None, current: str | None) -> None:
    """On a write, ``If-None-Match: *`` means create only."""
    if if_none_match is None:
        return
    tags = _tags(if_none_match)
    if current is not None and (tags == ["*"] or current in tags):
        raise PreconditionFailed("the resource already exists (If-None-Match)", etag=current)


def not_modified(if_none_match: str | None, current: str) -> bool:
    """On a read, whether the client's copy is current (answer 304)."""
    if if_none_match is None:
        return False
    tags = [t.removeprefix("W/") for t in _tags(if_none_match)]
    return "*" in tags or current in tags


def set_etag(response: Response, representation: BaseModel) -> str:
    tag = etag_of(representation)
    response.headers["ETag"] = tag
    return tag
