"""labq's log: plain text on a terminal, JSON lines for a collector (``LABQ_LOG_FORMAT``).

Each line carries what it is about where that is known: the HTTP request (``request_id``), the
``lab``, the solve run (``run_id``) and the worker (``worker_id``). They come from context
variables that the API's request middleware and the worker set (`log_context`), or from the
record's own ``extra``, which wins: the solver's progress callback may run in a thread of
OR-Tools' own, where no context variable is set.

A JSON line is one object: ``time`` (UTC, RFC 3339), ``level``, ``logger``, ``message``, the
context fields that are set, any other ``extra`` of the record, and ``exception`` (the
traceback) when there is one.
"""

from __future__ import annotations

import json
import logging
import logging.config
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

CONTEXT_FIELDS = ("request_id", "lab", "run_id", "worker_id")
_context: dict[str, ContextVar[Any]] = {
    name: ContextVar(f"labq_log_{name}", default=None) for name in CONTEXT_FIELDS
}
# The attributes every LogRecord has: anything else on a record came from ``extra``.
_STANDARD = set(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {
    "message",
    "asctime",
    "color_message",  # uvicorn's coloured copy of the message
}


@contextmanager
def log_context(**fields: Any) -> Iterator[None]:
    """Attach ``fields`` (some of `CONTEXT_FIELDS`) to every line logged inside, in this context."""
    tokens = [(_context[name], _context[name].set(value)) for name, value in fields.items()]
    try:
        yield
    finally:
        for var, token in reversed(tokens):
            var.reset(token)


def set_context(**fields: Any) -> None:
    """Set context fields for the rest of this context (a thread's own loop, a request task)."""
    for name, value in fields.items():
        _context[name].set(value)


def current_context() -> dict[str, Any]:
    return {name: var.get() for name, var in _context.items() if var.get() is not None}


def _fields(record: logging.LogRecord) -> dict[str, Any]:
    """The record's context fields and extras, the record's own values first."""
    fields = current_context()
    for name, value in record.__dict__.items():
        if name not in _STANDARD and not name.startswith("_") and value is not None:
            fields[name] = value
    return fields


class JsonFormatter(logging.Formatter):
    """One JSON object per line."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC)
            .isoformat(timespec="milliseconds")
            .replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name, value in _fields(record).items():
            line.setdefault(name, value)
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            line["exception"] = record.exc_text
        return json.dumps(line, default=str, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    """``time level logger: message [lab=... run_id=...]`` for a person at a terminal."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        context = _fields(record)
        if not context:
            return text
        shown = " ".join(f"{name}={value}" for name, value in context.items())
        head, newline, rest = text.partition("\n")  # a traceback stays below the line
        return f"{head} [{shown}]{newline}{rest}"


def resolve_format(fmt: str, stream: Any = None) -> str:
    """``auto``: text when the log goes to a terminal, JSON lines otherwise."""
    if fmt != "auto":
        return fmt
    stream = stream if stream is not None else sys.stderr
    isatty = getattr(stream, "isatty", None)
    return "text" if isatty is not None and isatty() else "json"


def logging_config(level: str, fmt: str) -> dict[str, Any]:
    """A ``dictConfig`` for labq's processes, uvicorn's loggers included (``labq serve`` hands
    it to uvicorn, which applies it in every server process it starts)."""
    formatter = JsonFormatter if resolve_format(fmt) == "json" else TextFormatter
    handler = {"class": "logging.StreamHandler", "formatter": "labq", "stream": "ext://sys.stderr"}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"labq": {"()": formatter}},
        "handlers": {"console": handler},
        # Libraries stay at WARNING; labq's own log at LABQ_LOG_LEVEL; requests and uvicorn's
        # start-up lines at INFO, as uvicorn itself logs them.
        "root": {"level": "WARNING", "handlers": ["console"]},
        "loggers": {
            "api": {"level": level},
            "scheduler": {"level": level},
            "api.access": {"level": "INFO"},
            "uvicorn": {"level": "INFO", "handlers": ["console"], "propagate": False},
            "uvicorn.access": {"level": "WARNING"},
        },
    }


def configure(level: str, fmt: str) -> None:
    logging.config.dictConfig(logging_config(level, fmt))
