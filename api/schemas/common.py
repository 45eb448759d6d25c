"""Field types shared by the request and response models."""

from __future__ import annotations

from datetime import time
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, StrictBool

from api.deps import REF_PATTERN

LABEL_PATTERN = r"^[a-z0-9][a-z0-9._-]*$"
NOTE_DESCRIPTION = (
    "Short and non-identifying: no names, no content, no victim or suspect detail (max 200)."
)


def _integer_only(value: Any) -> Any:
    """Refuse booleans and strings where an integer is expected (``True`` is not 1 minute)."""
    if isinstance(value, bool):
        raise ValueError("expected an integer, got a boolean")
    if isinstance(value, str):
        raise ValueError("expected an integer, got a string")
    return value


IntegerOnly = BeforeValidator(_integer_only)


def _naive_time(value: time) -> time:
    if value.tzinfo is not None:
        raise ValueError("a lab-local wall-clock time has no offset")
    return value


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
Name = Annotated[str, Field(min_length=1, max_length=200)]
Note = Annotated[str, Field(max_length=200, description=NOTE_DESCRIPTION)]
Flag = StrictBool
LocalTime = Annotated[time, AfterValidator(_naive_time)]

Minutes = Annotated[int, Field(ge=0, le=100_000, description="Minutes (0..100000)."), IntegerOnly]
DayMinutes = Annotated[int, Field(ge=0, le=1440, description="Minutes in a day."), IntegerOnly]
WeekMinutes = Annotated[int, Field(ge=0, le=10_080, description="Minutes in a week."), IntegerOnly]
Severity = Annotated[
    int, Field(ge=0, le=3, description="0 none, 1 category C, 2 B, 3 A (most severe)."), IntegerOnly
]
Weight = Annotated[int, Field(ge=0, le=1_000_000), IntegerOnly]
Capacity = Annotated[int, Field(ge=1, le=1000, description="Parallel jobs."), IntegerOnly]
