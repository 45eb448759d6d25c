"""Layers point down (tools/import_arrows.py): no new upward import arrow, none into the harness.

There are none left: services announce what happened (`scheduler.services.events`) instead of
calling the planning layer, and only the CLI starts the harness.
"""

from __future__ import annotations

import ast
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
        "from scheduler import continuous\ndef later():\n    from ..planning import pins\n"
    )
    found = tool.imports(source, "scheduler.services.casework")
    assert {"scheduler.continuous", "scheduler.planning.pins"} <= found
    own = tool.layer("scheduler.services.casework")
    assert all(tool.layer(t) > own for t in ("scheduler.continuous", "scheduler.planning.pins"))


# --- routers run no query of their own (docs/architecture.md §7.5) -------------------------------

QUERY_METHODS = {"execute", "scalar", "scalars", "query"}


def router_queries(source: str) -> list[str]:
    """What in a router's source runs SQL itself: an import from SQLAlchemy other than the
    ``Session`` type, or a call of a session's query method."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("sqlalchemy"):
            names = {a.name for a in node.names}
            if node.module != "sqlalchemy.orm" or names - {"Session"}:
                found.append(f"line {node.lineno}: from {node.module} import {sorted(names)}")
        elif isinstance(node, ast.Import) and any(
            a.name.startswith("sqlalchemy") for a in node.names
        ):
            found.append(f"line {node.lineno}: import sqlalchemy")
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr in QUERY_METHODS
        ):
            found.append(f"line {node.lineno}: .{node.func.attr}(...)")
    return found


def test_routers_call_services_and_views_not_sql():
    queries = {
        path.name: found
        for path in sorted((ROOT / "api/routers").glob("*.py"))
        if (found := router_queries(path.read_text()))
    }
    assert queries == {}


def test_the_router_check_sees_a_query():
    source = (
        "from sqlalchemy import select\n"
        "from sqlalchemy.orm import Session, selectinload\n"
        "def route(ctx):\n"
        "    return ctx.session.scalars(select(Job)).all()\n"
    )
    found = router_queries(source)
    assert len(found) == 3
    assert router_queries("from sqlalchemy.orm import Session\n") == []
