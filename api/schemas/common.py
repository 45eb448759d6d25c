"""Field types shared by the request and response models."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time, timedelta
from typing import Annotated, Any, TypeVar

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    GetCoreSchemaHandler,
    GetJsonSchemaHandler,
    PlainSerializer,
    StrictBool,
    WithJsonSchema,
)
from pydantic.json_schema import JsonSchemaValue, SkipJsonSchema
from pydantic_core import core_schema

from api.deps import REF_PATTERN
from api.schemas.free_text import MAX_NOTE_LENGTH, NOTE_DESCRIPTION, non_identifying
from models.base import utcnow

LABEL_PATTERN = r"^[a-z0-9][a-z0-9._-]*$"
T = TypeVar("T")


def _integer_only(value: Any) -> Any:
    """Refuse booleans and strings where an integer is expected (``True`` is not 1 minute)."""
    if isinstance(value, bool):
        raise ValueError("expected an integer, got a boolean")
    if isinstance(value, str):
        raise ValueError("expected an integer, got a string")
    return value


IntegerOnly = BeforeValidator(_integer_only)


# --- text ----------------------------------------------------------------------------------------

_NOT_TEXT = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff]")


def plain_text(value: str) -> str:
    """Refuse what no database stores as text: NUL and other control characters (tab and line
    breaks excepted) and unpaired surrogates. PostgreSQL rejects a NUL outright; SQLite would
    keep it and hand it to every client."""
    found = _NOT_TEXT.search(value)
    if found is not None:
        raise ValueError(
            f"text may not contain the control character U+{ord(found.group()):04X} "
            f"(at character {found.start()})"
        )
    return value


# The same characters for the schema: JSON Schema patterns count UTF-16 code units, so the
# unpaired surrogates are left to the check above (a JSON encoder never writes one).
PLAIN_TEXT_PATTERN = r"^[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f]*$"


class _PlainText:
    """``plain_text`` as a check, and its rule as the field's ``pattern`` in the schema (the
    check's own message says which character, and where)."""

    def __get_pydantic_core_schema__(self, source: Any, handler: GetCoreSchemaHandler) -> Any:
        return core_schema.no_info_after_validator_function(plain_text, handler(source))

    def __get_pydantic_json_schema__(
        self, schema: Any, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        found = handler(schema)
        if found.get("type") == "string" and "pattern" not in found and "enum" not in found:
            found["pattern"] = PLAIN_TEXT_PATTERN
        return found


PlainText = _PlainText()
QueryText = Annotated[str, PlainText]
"""A free-form query filter: any text a database can compare."""


# --- instants ------------------------------------------------------------------------------------
# An instant is a string in RFC 3339 with an offset ("2026-11-02T09:00:00Z", "...+01:00"): never
# a number (0 is not 1970) nor a naive time. Each kind of instant has a window, checked in UTC so
# that the far edges of the calendar (9999-12-31T23:59:59-12:00) are a 422, not an overflow.

RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d{1,9})?([Zz]|[+-]\d{2}:\d{2})$")
EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)
ARRIVAL_AHEAD = timedelta(days=1)
PLAN_AHEAD = timedelta(days=3653)  # ten years
FILTER_LATEST = datetime(2200, 1, 1, tzinfo=UTC)


def _rfc3339(value: Any) -> Any:
    if isinstance(value, datetime):  # from Python callers (the CLI import), already parsed
        if value.tzinfo is None:
            raise ValueError("an instant needs an offset, e.g. 2026-11-02T09:00:00Z")
        return value
    if not isinstance(value, str):
        raise ValueError(
            f"expected an RFC 3339 date-time string with an offset, got {type(value).__name__}"
        )
    if not RFC3339.match(value):
        raise ValueError("expected an RFC 3339 date-time with an offset, e.g. 2026-11-02T09:00:00Z")
    return value


def _window(ahead: timedelta | None, latest: datetime = FILTER_LATEST) -> AfterValidator:
    def check(value: datetime) -> datetime:
        limit = latest if ahead is None else utcnow() + ahead
        try:
            utc = value.astimezone(UTC)
        except OverflowError:  # beyond year 9999 in UTC
            utc = datetime.max.replace(tzinfo=UTC)
        if utc < EARLIEST:
            raise ValueError(f"must not be before {EARLIEST:%Y-%m-%d}")
        if utc > limit:
            raise ValueError(
                f"must not be after {limit:%Y-%m-%dT%H:%M:%SZ}"
                + (f" (at most {_span(ahead)} from now)" if ahead is not None else "")
            )
        return value

    return AfterValidator(check)


def _span(delta: timedelta) -> str:
    return "one day" if delta == ARRIVAL_AHEAD else f"{round(delta.days / 365.25)} years"


_STRICT_INSTANT = BeforeValidator(_rfc3339)
Arrival = Annotated[
    datetime,
    Field(
        description="RFC 3339 with an offset; from 2000-01-01 to at most one day from now "
        "(something that arrived or was received)."
    ),
    _STRICT_INSTANT,
    _window(ARRIVAL_AHEAD),
]
Planned = Annotated[
    datetime,
    Field(description="RFC 3339 with an offset; from 2000-01-01 to at most 10 years from now."),
    _STRICT_INSTANT,
    _window(PLAN_AHEAD),
]
FilterInstant = Annotated[
    datetime,
    Field(description="RFC 3339 with an offset, between 2000-01-01 and 2200-01-01."),
    _STRICT_INSTANT,
    _window(None, FILTER_LATEST),
]

_DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def _iso_day(value: Any) -> Any:
    if isinstance(value, date):
        return value
    if not isinstance(value, str) or not _DAY.match(value):
        raise ValueError("expected a day as YYYY-MM-DD")
    return value


def _recent_day(value: date) -> date:
    if value < EARLIEST.date() or value > (utcnow() + ARRIVAL_AHEAD).date():
        raise ValueError("must be a day from 2000-01-01 to tomorrow")
    return value


PastDay = Annotated[
    date,
    Field(description="YYYY-MM-DD, from 2000-01-01 to tomorrow."),
    BeforeValidator(_iso_day),
    AfterValidator(_recent_day),
]


def _not_null(value: Any) -> Any:
    if value is None:
        raise ValueError("may be omitted (to leave it unchanged) but not null")
    return value


Omittable = Annotated[T | SkipJsonSchema[None], BeforeValidator(_not_null)]
"""A patch field that may be left out but never cleared (the stored value is required)."""


WALL_CLOCK_PATTERN = r"^([01][0-9]|2[0-3]):[0-5][0-9](:[0-5][0-9])?$"
_WALL_CLOCK = re.compile(WALL_CLOCK_PATTERN)


def _wall_clock(value: Any) -> Any:
    """A lab-local time of day is ``HH:MM`` or ``HH:MM:SS``, without an offset.

    Its meaning comes from the lab's timezone (it is the same wall-clock time in winter and in
    summer), so an offset would be wrong half the year; RFC 3339's ``time`` requires one, hence
    the pattern instead of ``format: time``.
    """
    if isinstance(value, time):
        return value
    if not isinstance(value, str) or not _WALL_CLOCK.fullmatch(value):
        raise ValueError("a lab-local wall-clock time is HH:MM or HH:MM:SS, without an offset")
    return time.fromisoformat(value)


_AWARE_INSTANT = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?([+-]\d{2}:\d{2}|Z)$")


def utc_instants(value: Any) -> Any:
    """A JSON document with every instant (a date-time with an offset) rewritten in UTC with Z.

    For documents stored as JSON (a schedule's figures) or built by the planning layer (the
    snapshot), whose instants were written with the lab's offset when they were made.
    """
    if isinstance(value, dict):
        return {key: utc_instants(item) for key, item in value.items()}
    if isinstance(value, list):
        return [utc_instants(item) for item in value]
    if isinstance(value, str) and _AWARE_INSTANT.match(value):
        return _utc_z(datetime.fromisoformat(value))
    return value


def _utc_z(value: datetime) -> str:
    """An instant as RFC 3339 in UTC with ``Z``; a naive value (SQLite) is UTC already."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


class Body(BaseModel):
    """A request body: unknown fields are errors, not silently dropped."""

    model_config = ConfigDict(extra="forbid")


class Out(BaseModel):
    model_config = ConfigDict(from_attributes=True)


Ref = Annotated[
    str,
    Field(
        min_length=1,
        max_length=64,
        pattern=REF_PATTERN,
        description="A reference (letters, digits, '.', '_', '-'; max 64).",
    ),
]
Code = Annotated[str, Field(min_length=1, max_length=16, pattern=REF_PATTERN)]
Label = Annotated[
    str,
    Field(
        min_length=1,
        max_length=64,
        pattern=LABEL_PATTERN,
        description="A lower-case label such as a skill or capability.",
    ),
]
VOCABULARY = (
    "terms of the lab's vocabulary (GET /labs/{lab}/vocabulary); any other is refused (422, "
    "every unknown term listed)"
)
Terms = Annotated[
    list[Label], Field(max_length=64, description=f"Skills or capabilities: {VOCABULARY}.")
]
"""Skills or capabilities a write names: the one rule is scheduler/services/vocabulary.py."""
Name = Annotated[str, Field(min_length=1, max_length=200), PlainText]
Note = Annotated[
    str,
    Field(max_length=MAX_NOTE_LENGTH, description=NOTE_DESCRIPTION),
    PlainText,
    AfterValidator(non_identifying),
]
Flag = StrictBool
LocalTime = Annotated[
    time,
    BeforeValidator(_wall_clock),
    PlainSerializer(
        lambda value: value.isoformat(timespec="seconds"), return_type=str, when_used="json"
    ),
    WithJsonSchema(
        {
            "type": "string",
            "pattern": WALL_CLOCK_PATTERN,
            "description": "Lab-local wall-clock time (HH:MM or HH:MM:SS, no offset).",
            "examples": ["08:00"],
        }
    ),
]
Instant = Annotated[
    datetime,
    PlainSerializer(_utc_z, return_type=str, when_used="json"),
    WithJsonSchema(
        {"type": "string", "format": "date-time", "description": "RFC 3339, UTC (ends in Z)."}
    ),
]
"""Every instant an API response carries: one serializer, so every route writes the same form."""
JsonWithInstants = Annotated[
    dict[str, Any], PlainSerializer(utc_instants, return_type=dict[str, Any], when_used="json")
]
"""A free-form JSON object (stored figures) whose instants are written like every other."""

Minutes = Annotated[int, Field(ge=0, le=100_000, description="Minutes (0..100000)."), IntegerOnly]
DayMinutes = Annotated[int, Field(ge=0, le=1440, description="Minutes in a day."), IntegerOnly]
WeekMinutes = Annotated[int, Field(ge=0, le=10_080, description="Minutes in a week."), IntegerOnly]
Severity = Annotated[
    int, Field(ge=0, le=3, description="0 none, 1 category C, 2 B, 3 A (most severe)."), IntegerOnly
]
Weight = Annotated[int, Field(ge=0, le=1_000_000), IntegerOnly]
Capacity = Annotated[int, Field(ge=1, le=1000, description="Parallel jobs."), IntegerOnly]


class RunLink(BaseModel):
    """The solve run a change queued, or joined if one was already waiting."""

    id: int
    status: str = Field(description="queued, running, succeeded, failed or cancelled.")
    href: str = Field(description="The run's URL path: poll it for progress.")


QueuedRun = Annotated[
    RunLink | None,
    Field(description="The solve run this change queued or joined; null if none."),
]
