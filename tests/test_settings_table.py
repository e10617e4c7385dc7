"""The README's settings table is what ``scripts/settings_table.py`` generates: every
``Settings`` field under its environment variable, with its default, and every other ``SAGD_*``
variable the code reads (``SAGD_PORT``, ``SAGD_HOST``, …), each with a meaning."""

from __future__ import annotations

import re

from service.settings import Settings
from tests.harness import load_script

settings_table = load_script("settings_table")


def _committed_block() -> str:
    text = settings_table.README.read_text(encoding="utf-8")
    start, end = text.index(settings_table.BEGIN), text.index(settings_table.END)
    return text[start : end + len(settings_table.END)]


def _rows(block: str) -> dict[str, list[str]]:
    """Cells by variable name."""
    out = {}
    for line in block.splitlines():
        match = re.match(r"^\| `(SAGD_[A-Z0-9_]+)` \| (.*) \|$", line)
        if match:
            out[match.group(1)] = re.split(r"(?<!\\)\|", match.group(2))
    return out


def test_the_committed_table_matches_the_code() -> None:
    assert _committed_block() == settings_table.render(), (
        "README.md's settings table differs from service/settings.py: run "
        ".venv/bin/python scripts/settings_table.py and commit README.md"
    )


def test_every_setting_has_a_row_with_its_default() -> None:
    rows = _rows(settings_table.render())
    for name, field in Settings.model_fields.items():
        variable = f"SAGD_{name.upper()}"
        assert variable in rows, variable
        default = field.get_default(call_default_factory=True)
        if isinstance(default, int | float | str) and not isinstance(default, bool):
            assert f"`{default}`" in rows[variable][1], (variable, rows[variable])


def test_the_serve_variables_are_found_in_the_code_and_documented() -> None:
    found = settings_table.other_variables()
    assert found["SAGD_PORT"] == "service/embedded.py"
    assert found["SAGD_HOST"] == "service/embedded.py"
    rows = _rows(settings_table.render())
    assert "port" in rows["SAGD_PORT"][-1]


def test_every_variable_has_a_meaning() -> None:
    undocumented = [
        variable
        for variable, cells in _rows(settings_table.render()).items()
        if settings_table.UNDOCUMENTED in cells[-1]
    ]
    assert not undocumented, (
        f"{undocumented}: give the field a Field(description=...) or a comment in "
        "service/settings.py, or add it to MEANINGS in scripts/settings_table.py"
    )


def test_field_comments_read_the_same_line_then_the_block_above() -> None:
    source = (
        "class Settings:\n"
        "    a: int = 1  # the same line\n"
        "\n"
        "    # a block\n"
        "    # of two lines\n"
        "    b: int = 2\n"
        "    c: int = 3\n"
    )
    assert settings_table.field_comments(source) == {
        "a": "the same line",
        "b": "a block of two lines",
    }
