"""docs/API.md's request-field tables are what ``scripts/api_tables.py`` generates from the
service's OpenAPI schema: every field of every route, the trainings' included."""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.harness import load_script

api_tables = load_script("api_tables")


@pytest.fixture(scope="module")
def schema() -> dict[str, Any]:
    doc: dict[str, Any] = api_tables.openapi_schema()
    return doc


def _generated_block() -> str:
    text = api_tables.API_MD.read_text(encoding="utf-8")
    start, end = text.index(api_tables.BEGIN), text.index(api_tables.END)
    return text[start : end + len(api_tables.END)]


def _section(block: str, route: str) -> str:
    """The table under the ``#### `ROUTE``` heading of the generated block."""
    match = re.search(rf"#### `{re.escape(route)}`\n(.*?)(?=\n#### |\Z)", block, re.S)
    assert match, f"docs/API.md has no generated table for {route}"
    return match.group(1)


def test_the_committed_tables_match_the_schema(schema: dict[str, Any]) -> None:
    assert _generated_block() == api_tables.render(schema), (
        "docs/API.md's field tables differ from the OpenAPI schema: run "
        ".venv/bin/python scripts/api_tables.py and commit docs/API.md"
    )


def test_every_field_of_trainings_and_restorations_has_a_row(schema: dict[str, Any]) -> None:
    block = _generated_block()
    for path in ("/v1/trainings", "/v1/restorations"):
        body = schema["paths"][path]["post"]["requestBody"]["content"]["multipart/form-data"]
        fields = api_tables._resolve(body["schema"], schema)["properties"]
        table = _section(block, f"POST {path}")
        rows = set(re.findall(r"^\| `([^`]+)` \| form \|", table, re.M))
        assert rows == set(fields), (path, sorted(set(fields) ^ rows))


def test_types_defaults_and_requirement_come_from_the_schema(schema: dict[str, Any]) -> None:
    table = _section(api_tables.render(schema), "POST /v1/restorations")
    assert "| `image` | form | file | required |" in table
    assert "| `steps` | form | integer 1–1000 | `50` |" in table
    assert re.search(r"\| `method` \| form \| `auto` \\\| `notch` .* \| `\"auto\"` \|", table)
    header = "| `Idempotency-Key` | header |"
    assert header in table


def test_rewrite_replaces_only_the_marked_block() -> None:
    text = f"before\n{api_tables.BEGIN}\nold\n{api_tables.END}\nafter\n"
    new_block = f"{api_tables.BEGIN}\nnew\n{api_tables.END}"
    assert api_tables.rewrite(text, new_block) == f"before\n{new_block}\nafter\n"
    with pytest.raises(SystemExit):
        api_tables.rewrite("no markers here", new_block)
