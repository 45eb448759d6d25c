"""The largest files and functions of labq's production code, by lines (docs/architecture.md §7).

A file or function that keeps growing usually holds more than one subject; this lists where to
look. Tests, migrations and the tools themselves are left out.

    python tools/largest.py          # the five largest files and functions
    python tools/largest.py 10       # the ten largest
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("scheduler", "api", "models")


def production_files() -> list[Path]:
    return sorted(p for pkg in PACKAGES for p in (ROOT / pkg).rglob("*.py"))


def functions(path: Path) -> list[tuple[int, str]]:
    """(lines, qualified name) of every function and method in ``path``."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    out: list[tuple[int, str]] = []

    def visit(node: ast.AST, prefix: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef):
                end = child.end_lineno or child.lineno
                out.append((end - child.lineno + 1, f"{prefix}{child.name}"))
                visit(child, f"{prefix}{child.name}.")
            elif isinstance(child, ast.ClassDef):
                visit(child, f"{prefix}{child.name}.")

    visit(tree, "")
    return out


def main(count: int = 5) -> None:
    files = production_files()
    sizes = sorted(
        ((len(p.read_text(encoding="utf-8").splitlines()), p) for p in files), reverse=True
    )
    print(f"largest files (of {len(files)}):")
    for lines, path in sizes[:count]:
        print(f"  {lines:5d}  {path.relative_to(ROOT)}")
    found = sorted(
        ((lines, f"{p.relative_to(ROOT)}:{name}") for p in files for lines, name in functions(p)),
        reverse=True,
    )
    print("largest functions:")
    for lines, name in found[:count]:
        print(f"  {lines:5d}  {name}")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 5)
