"""Field readers shared by the snapshot and plan parsers of the JSON contract.

They raise `FieldError` with the JSON path of the offending field; each parser turns it into its
own error type (`SnapshotError`, `PlanError`) so a caller sees one error type per document.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import NoReturn

#: Longest integer literal a document may hold. Every integer of the contracts fits in int64
#: (19 digits); a longer literal is refused before it is converted, so a multi-thousand-digit
#: number reads as too long instead of failing inside the interpreter's conversion guard.
MAX_INTEGER_DIGITS = 30


class FieldError(ValueError):
    """A field that breaks the contract; ``field`` is its JSON path (empty for the document)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}" if field else message)
        self.field = field
        self.message = message


def fail(path: str, message: str) -> NoReturn:
    raise FieldError(path, message)


def join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def kind(value: object) -> str:
    """How a JSON value reads in an error message ("a boolean", "an array", ...)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list | tuple):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def read_object(
    value: object, path: str, required: Sequence[str], optional: Sequence[str] = ()
) -> Mapping[str, object]:
    """An object with every ``required`` key and no key outside ``required + optional``.

    Unknown keys are rejected so a misspelt field (``machine_by_workstaion``) is an error, not a
    silently ignored restriction.
    """
    if not isinstance(value, dict):
        fail(path, f"expected an object, got {kind(value)}")
    for key in value:
        if not isinstance(key, str):
            fail(path, f"object keys must be strings, got {kind(key)}")
    for key in required:
        if key not in value:
            fail(join(path, key), "missing required field")
    allowed = set(required) | set(optional)
    for key in value:
        if key not in allowed:
            fail(join(path, key), "unknown field")
    return value


def read_int(value: object, path: str, low: int, high: int) -> int:
    """An integer in ``[low, high]``; booleans are not integers here."""
    if isinstance(value, bool) or not isinstance(value, int):
        fail(path, f"expected an integer, got {kind(value)}")
    if not low <= value <= high:
        if value.bit_length() > 3 * MAX_INTEGER_DIGITS:  # too long to show, or even to print
            fail(path, f"the number is far outside [{low}, {high}]")
        fail(path, f"{value} is outside [{low}, {high}]")
    return value


def read_bool(value: object, path: str) -> bool:
    """``true`` or ``false``; no number stands in for one."""
    if not isinstance(value, bool):
        fail(path, f"expected true or false, got {kind(value)}")
    return value


def _parse_int(literal: str) -> int:
    digits = len(literal.lstrip("-"))
    if digits > MAX_INTEGER_DIGITS:
        raise ValueError(
            f"a number of {digits:,} digits ({literal[:12]}...) is too long; "
            f"numbers have at most {MAX_INTEGER_DIGITS} digits"
        )
    return int(literal)


def _reject_constant(name: str) -> NoReturn:
    raise ValueError(f"{name} is not valid JSON")


def parse_json(text: str) -> object:
    """Decode a contract document: no NaN or Infinity, no integer literal longer than
    ``MAX_INTEGER_DIGITS``. Raises ``ValueError`` (or ``RecursionError``) with a readable cause."""
    return json.loads(text, parse_constant=_reject_constant, parse_int=_parse_int)


def read_array(value: object, path: str) -> Sequence[object]:
    if not isinstance(value, list | tuple):
        fail(path, f"expected an array, got {kind(value)}")
    return value
