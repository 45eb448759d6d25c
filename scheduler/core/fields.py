"""Field readers shared by the snapshot and plan parsers of the JSON contract.

They raise `FieldError` with the JSON path of the offending field; each parser turns it into its
own error type (`SnapshotError`, `PlanError`) so a caller sees one error type per document.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import NoReturn


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
        fail(path, f"{value} is outside [{low}, {high}]")
    return value


def read_array(value: object, path: str) -> Sequence[object]:
    if not isinstance(value, list | tuple):
        fail(path, f"expected an array, got {kind(value)}")
    return value
