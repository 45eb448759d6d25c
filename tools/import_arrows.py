"""Import arrows that run the wrong way between labq's layers (docs/architecture.md §7.1).

Layers, lowest first: models; the pure core and the plain infrastructure (errors, settings, logs,
clock); the database helpers; services; planning; the processes around them (continuous repair,
worker, delivery); the API and CLI. The demo, the generators, the benchmarks, the replay of
recorded snapshots and the simulation are the *harness*: production code must never import
them, while the CLI may (it is their entry point). Every import counts, those inside functions too.

    python tools/import_arrows.py          # lists each upward arrow, then the count
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HARNESS = 99
LAYERS: tuple[tuple[str, int], ...] = (  # longest prefix wins
    ("models", 0),
    ("scheduler.core", 1),
    ("scheduler.errors", 1),
    ("scheduler.settings", 1),
    ("scheduler.logs", 1),
    ("scheduler.db", 2),
    ("scheduler.migrate", 2),
    ("scheduler.services", 3),
    ("scheduler.planning", 4),
    ("scheduler.continuous", 5),
    ("scheduler.worker", 5),
    ("scheduler.delivery", 5),
    ("scheduler.replay", HARNESS),  # re-runs recorded snapshots as regression tests
    ("api", 6),
    ("scheduler.demo", HARNESS),
    ("scheduler.planning.demo", HARNESS),
    ("scheduler.generate", HARNESS),
    ("scheduler.benchmarks", HARNESS),
    ("scheduler.simulate", HARNESS),
)
ENTRY_POINTS = ("api.cli",)  # the CLI modules (api/cli*.py) may start the harness


def layer(module: str) -> int | None:
    best: tuple[int, int] | None = None
    for prefix, rank in LAYERS:
        if module == prefix or module.startswith(prefix + "."):
            if best is None or len(prefix) > best[0]:
                best = (len(prefix), rank)
    return None if best is None else best[1]


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports(path: Path, module: str) -> set[str]:
    tree = ast.parse(path.read_text(), str(path))
    found: set[str] = set()
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return found


def upward_arrows() -> list[tuple[str, str]]:
    arrows: set[tuple[str, str]] = set()
    for package in ("models", "scheduler", "api"):
        for path in sorted((ROOT / package).rglob("*.py")):
            source = module_name(path)
            own = layer(source)
            if own is None or own == HARNESS:
                continue
            is_entry = any(source.startswith(e) for e in ENTRY_POINTS)
            for target in imports(path, source):
                theirs = layer(target)
                if theirs is None or theirs <= own or target.startswith(source):
                    continue
                if theirs == HARNESS and is_entry:
                    continue
                # "from scheduler.planning import views" names the module, not the package
                arrows.add((source, _module_of(target)))
    return sorted(arrows)


def _module_of(target: str) -> str:
    path = ROOT / Path(*target.split("."))
    if path.with_suffix(".py").exists() or (path / "__init__.py").exists():
        return target
    return target.rpartition(".")[0]


def main() -> int:
    arrows = upward_arrows()
    for source, target in arrows:
        print(f"{source} -> {target}")
    print(f"{len(arrows)} upward import arrow(s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
