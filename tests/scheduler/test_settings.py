"""The README's configuration table and the settings class say the same: every setting has a row
with its default, and every row names a setting."""

from __future__ import annotations

import re
from pathlib import Path

from scheduler.settings import Settings

README = Path(__file__).resolve().parents[2] / "README.md"


def _documented() -> dict[str, str]:
    """Variable -> default as the table of the README's Configuration section gives it."""
    section = README.read_text(encoding="utf-8").split("\n## Configuration\n", 1)[1]
    section = section.split("\n## ", 1)[0]
    rows: dict[str, str] = {}
    for line in section.splitlines():
        if not line.startswith("| `LABQ_"):
            continue
        names_cell, defaults_cell = line.split("|")[1:3]
        names = re.findall(r"`(LABQ_[A-Z0-9_]+)`", names_cell)
        defaults = re.findall(r"`([^`]*)`", defaults_cell)
        assert len(names) == len(defaults), f"one default per variable: {line}"
        for name, default in zip(names, defaults, strict=True):
            assert name not in rows, f"{name} has two rows"
            rows[name] = default
    return rows


def _shown(value: object) -> str:
    """A default as the README writes it."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def drift(
    settings: type[Settings], documented: dict[str, str]
) -> tuple[list[str], list[str], dict[str, tuple[str, str]]]:
    """Settings without a row, rows naming no setting, and (README, class) defaults that differ."""
    prefix = settings.model_config.get("env_prefix", "")
    defined = {
        f"{prefix}{name}".upper(): _shown(field.default)
        for name, field in settings.model_fields.items()
    }
    missing = sorted(defined.keys() - documented.keys())
    unknown = sorted(documented.keys() - defined.keys())
    wrong = {
        k: (documented[k], v) for k, v in defined.items() if k in documented and documented[k] != v
    }
    return missing, unknown, wrong


def test_every_setting_has_a_row_with_its_default_and_every_row_a_setting() -> None:
    missing, unknown, wrong = drift(Settings, _documented())
    assert missing == [], "settings without a row in the README's Configuration table"
    assert unknown == [], "rows of the README's Configuration table naming no setting"
    assert wrong == {}, "README default != the settings class's default"


def test_a_new_setting_a_stale_row_and_a_changed_default_are_each_caught() -> None:
    class Grown(Settings):
        brand_new_knob: int = 1

    documented = {**_documented(), "LABQ_RETIRED_KNOB": "3", "LABQ_KEY_CACHE_SECONDS": "9"}
    missing, unknown, wrong = drift(Grown, documented)
    assert missing == ["LABQ_BRAND_NEW_KNOB"]
    assert unknown == ["LABQ_RETIRED_KNOB"]
    assert wrong == {"LABQ_KEY_CACHE_SECONDS": ("9", "5")}
