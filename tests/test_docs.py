"""The repository documents itself: code points at docs/architecture.md, never outside.

Comments and docstrings cite the architecture document by section (``docs/architecture.md §3.5``);
a citation of a section the document does not have, or of the design file that lives outside the
repository, fails here, so a renumbered section or a stray outside reference is caught at once.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOC = Path("docs/architecture.md")
# Spelled in two parts so that this file does not mention it itself.
OUTSIDE_DESIGN = "DESIGN" + ".md"

_HEADING = re.compile(r"^#{2,4}\s+(\d+(?:\.\d+)*)\.?\s", re.MULTILINE)
_POINTER = re.compile(r"docs/architecture\.md((?:[ ,/]*(?:and\s+)?§\d+(?:\.\d+)*)*)")
_SECTION = re.compile(r"§(\d+(?:\.\d+)*)")
_SKIPPED_DIRS = {".git", ".venv", "venv", "node_modules", "build", "dist"}


def sections(document: str) -> set[str]:
    """The section numbers of a markdown document's numbered headings (``## 3.``, ``### 3.5``)."""
    return set(_HEADING.findall(document))


def pointers(text: str) -> list[str]:
    """Every section a text cites as ``docs/architecture.md §N`` (or ``... §N, §M``)."""
    return [s for group in _POINTER.findall(text) for s in _SECTION.findall(group)]


def dangling(text: str, known: set[str]) -> list[str]:
    """Cited sections that ``known`` lacks."""
    return [s for s in pointers(text) if s not in known]


def tracked_files() -> list[Path]:
    """The repository's .py and .md files: git's list, or the tree when git is not at hand."""
    try:
        listed = subprocess.run(
            ["git", "ls-files", "*.py", "*.md"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.split("\n")
        files = [Path(name) for name in listed if name]
    except (OSError, subprocess.CalledProcessError):
        files = [
            path.relative_to(ROOT)
            for path in ROOT.rglob("*")
            if path.suffix in (".py", ".md")
            and not _SKIPPED_DIRS & set(path.relative_to(ROOT).parts)
            and not any(part.endswith(".egg-info") for part in path.parts)
        ]
    return [path for path in files if (ROOT / path).is_file()]


def _read(path: Path) -> str:
    return (ROOT / path).read_text(encoding="utf-8")


def test_the_checks_catch_what_they_are_for() -> None:
    known = sections("# Title\n\n## 1. One\n\n### 1.2 One two\n\n## 10. Ten\n")
    assert known == {"1", "1.2", "10"}
    doc = DOC.as_posix()  # not written out, so this file cites no section itself
    text = f"see ({doc} §1.2, §10) and {doc} §3.5 and §9; §7 alone; {doc}: §8"
    assert pointers(text) == ["1.2", "10", "3.5", "9"]
    assert dangling(text, known) == ["3.5", "9"]
    assert dangling(f"{doc}, the whole page", known) == []


def test_the_document_is_in_the_repository_with_numbered_sections() -> None:
    known = sections(_read(DOC))
    assert {str(n) for n in range(1, 11)} <= known
    assert DOC in tracked_files()


def test_no_file_cites_the_design_file_outside_the_repository() -> None:
    citing = [str(path) for path in tracked_files() if OUTSIDE_DESIGN in _read(path)]
    assert citing == []


def test_every_pointer_names_a_section_the_document_has() -> None:
    known = sections(_read(DOC))
    broken = {
        str(path): missing for path in tracked_files() if (missing := dangling(_read(path), known))
    }
    cited = sum(len(pointers(_read(path))) for path in tracked_files())
    assert broken == {}
    assert cited > 0  # the code does point here


def test_the_document_refers_only_to_its_own_sections() -> None:
    document = _read(DOC)
    known = sections(document)
    assert [s for s in _SECTION.findall(document) if s not in known] == []
