"""Typed domain errors. The API renders each as RFC 9457 problem+json; the CLI as one line."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any


class DomainError(Exception):
    """Base of every error a caller can act on. ``status`` is the HTTP status it maps to."""

    status = 400
    title = "Bad request"
    type = "about:blank"

    def __init__(self, detail: str, **extra: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        self.extra = extra


class NotFound(DomainError):
    status = 404
    title = "Not found"
    type = "https://labq.dev/problems/not-found"


class Conflict(DomainError):
    status = 409
    title = "Conflict"
    type = "https://labq.dev/problems/conflict"


class Invalid(DomainError):
    status = 422
    title = "Invalid value"
    type = "https://labq.dev/problems/invalid"

    @classmethod
    def listing(cls, problems: Sequence[Mapping[str, str]], **extra: Any) -> Invalid:
        """One error for every problem found (each a ``field`` and a ``message``, optionally a
        ``type``), so a client fixes them all at once; the detail names the first."""
        first = problems[0]
        detail = f"{first['field']}: {first['message']}" if first["field"] else first["message"]
        if len(problems) > 1:
            detail += f" (and {len(problems) - 1} more problem(s))"
        return cls(detail, field=first["field"], errors=[dict(p) for p in problems], **extra)


class PreconditionFailed(DomainError):
    status = 412
    title = "Precondition failed"
    type = "https://labq.dev/problems/precondition-failed"


class Forbidden(DomainError):
    status = 403
    title = "Forbidden"
    type = "https://labq.dev/problems/forbidden"


class Busy(DomainError):
    """The change waited too long for another one; nothing was written and a retry may pass."""

    status = 503
    title = "Service busy"
    type = "https://labq.dev/problems/busy"
    headers = {"Retry-After": "1"}
