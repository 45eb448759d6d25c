"""Every command's --help, as a user reads it piped: no type placeholders for flags."""

from __future__ import annotations

from typing import Any

import typer
from typer.testing import CliRunner

from api.cli import app


def _paths(command: Any, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    paths = [prefix]
    if hasattr(command, "commands"):  # a group (typer's own click)
        for name, sub in command.commands.items():
            paths += _paths(sub, (*prefix, name))
    return paths


def test_no_help_shows_a_bool_placeholder() -> None:
    runner = CliRunner()
    paths = _paths(typer.main.get_command(app))
    assert ("reoptimize",) in paths and ("bench", "api") in paths and ("keys", "revoke") in paths
    for path in paths:
        result = runner.invoke(app, [*path, "--help"])
        assert result.exit_code == 0, (path, result.output)
        assert "Usage: " in result.output, path
        assert "<bool>" not in result.output, (path, result.output)
    flags = runner.invoke(app, ["reoptimize", "--help"]).output
    assert "--publish / --no-publish" in flags and "[default:" in flags
