"""Tables of the `labq` CLI that survive a pipe: never cut to the terminal's width.

On a terminal a table is drawn with rich; piped or redirected (a cron log, ``| grep``) it is
written as plain columns padded to the longest cell, so no cell is ever shortened. ``--format
json`` (a list of objects, one per row) and ``--format csv`` (a header row) are for programs.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from enum import StrEnum

from rich.console import Console
from rich.markup import escape
from rich.table import Table


class Format(StrEnum):
    table = "table"
    json = "json"
    csv = "csv"


Cell = str | int | float | None


def _text(cell: Cell) -> str:
    return "-" if cell is None else str(cell)


def render(
    columns: Sequence[str],
    rows: Sequence[Sequence[Cell]],
    fmt: Format = Format.table,
    *,
    title: str | None = None,
    terminal: bool = False,
) -> str:
    """The table as text: plain columns (``terminal`` False), JSON or CSV. Rich drawing for a
    terminal is done by `emit`, which knows the console."""
    if fmt == Format.json:
        return json.dumps([dict(zip(columns, row, strict=True)) for row in rows], indent=1)
    if fmt == Format.csv:
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(columns)
        writer.writerows([[_text(c) for c in row] for row in rows])
        return out.getvalue().rstrip("\n")
    texts = [[_text(c) for c in row] for row in rows]
    widths = [max([len(name), *(len(row[i]) for row in texts)]) for i, name in enumerate(columns)]
    lines = [] if title is None else [title]
    for row in [list(columns), *texts]:
        lines.append("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)))
    return "\n".join(line.rstrip() for line in lines)


def emit(
    console: Console,
    columns: Sequence[str],
    rows: Sequence[Sequence[Cell]],
    fmt: Format = Format.table,
    *,
    title: str | None = None,
) -> None:
    """Print the table to ``console``: rich on a terminal, otherwise `render`'s plain text."""
    if fmt == Format.table and console.is_terminal:
        table = Table(*columns, title=title)
        for row in rows:
            table.add_row(*(escape(_text(c)) for c in row))
        console.print(table)
        return
    text = render(columns, rows, fmt, title=title)
    console.print(text, markup=False, highlight=False, soft_wrap=True)
