"""Layers point down (tools/import_arrows.py): no new upward import arrow, none into the harness.

There are none left: services announce what happened (`scheduler.services.events`) instead of
calling the planning layer, and only the CLI starts the harness.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
KNOWN: set[tuple[str, str]] = set()


def _tool():
    spec = importlib.util.spec_from_file_location("import_arrows", ROOT / "tools/import_arrows.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_no_new_upward_import_arrow():
    arrows = set(_tool().upward_arrows())
    assert arrows - KNOWN == set()


def test_the_tool_sees_an_arrow_it_should(tmp_path):
    tool = _tool()
    assert tool.layer("scheduler.core.verify") < tool.layer("scheduler.planning.loader")
    assert tool.layer("scheduler.planning.demo") == tool.HARNESS
    source = tmp_path / "casework.py"
    source.write_text(
        "from scheduler import continuous\n"
        "def later():\n"
        "    from ..planning import pins\n"
    )
    found = tool.imports(source, "scheduler.services.casework")
    assert {"scheduler.continuous", "scheduler.planning.pins"} <= found
    own = tool.layer("scheduler.services.casework")
    assert all(tool.layer(t) > own for t in ("scheduler.continuous", "scheduler.planning.pins"))
