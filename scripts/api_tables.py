"""Generate docs/API.md's request-field tables from the service's OpenAPI schema.

    .venv/bin/python scripts/api_tables.py          # rewrite docs/API.md between the markers
    .venv/bin/python scripts/api_tables.py --check  # exit 1 if docs/API.md is out of date

For every route of the app (``service.api.app.create_app``, built in-process: no Redis is
contacted, the schema needs none) the table lists each field a client sends: path, query and
header parameters, multipart form fields and JSON body fields, with type, constraints, whether
it is required, its default and its description, all as the schema states them. A field without
a description in the code shows "—": the fix is a ``description=`` in the code, not here.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
API_MD = REPO / "docs" / "API.md"
BEGIN = "<!-- BEGIN GENERATED: request fields (scripts/api_tables.py) -->"
END = "<!-- END GENERATED: request fields -->"
NO_DESCRIPTION = "—"
METHOD_ORDER = ("get", "post", "put", "patch", "delete")


def openapi_schema() -> dict[str, Any]:
    """The app's OpenAPI document, built in-process with a client that never connects."""
    sys.path.insert(0, str(REPO))
    import redis

    from service.api.app import create_app
    from service.settings import Settings

    logging.disable(logging.WARNING)  # "authentication is disabled", "metrics unavailable"
    try:
        settings = Settings(env="development", redis_url="redis://127.0.0.1:1/0")
        # A client object is only a connection pool: nothing connects until a command runs.
        client = redis.Redis.from_url(settings.redis_url, socket_connect_timeout=0.1)
        app = create_app(settings, client=client)
        return app.openapi()
    finally:
        logging.disable(logging.NOTSET)


def _resolve(schema: dict[str, Any], doc: dict[str, Any]) -> dict[str, Any]:
    ref = schema.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/components/schemas/"):
        resolved: dict[str, Any] = doc["components"]["schemas"][ref.rsplit("/", 1)[1]]
        return resolved
    return schema


def _cell(text: str) -> str:
    """Markdown-table-safe text: one line, pipes escaped."""
    return " ".join(str(text).split()).replace("|", "\\|")


def type_of(schema: dict[str, Any], doc: dict[str, Any]) -> str:
    """A short type: ``integer 1–1000``, one of the enum values, ``file``, ``object (BandSpec)``."""
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[1]
        target = _resolve(schema, doc)
        if "enum" in target:
            return type_of(target, doc)
        return f"object ({name})"
    if "anyOf" in schema or "oneOf" in schema:
        options = [
            s for s in schema.get("anyOf", schema.get("oneOf", [])) if s.get("type") != "null"
        ]
        kinds = [type_of(s, doc) for s in options]
        return " or ".join(dict.fromkeys(kinds)) or "null"
    if "enum" in schema:
        return " \\| ".join(f"`{v}`" for v in schema["enum"])
    if "const" in schema:
        return f"`{schema['const']}`"
    kind = schema.get("type", "any")
    if kind == "string" and (schema.get("format") == "binary" or "contentMediaType" in schema):
        return "file"
    if kind == "array":
        return f"list of {type_of(schema.get('items', {}), doc)}"
    kind += _range(schema)
    if "pattern" in schema:
        kind += f" matching `{schema['pattern']}`"
    if "maxLength" in schema:
        kind += f", at most {schema['maxLength']} characters"
    return kind


def _number(value: float) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def _range(schema: dict[str, Any]) -> str:
    """`` 1–1000``, `` > 0, ≤ 0.25``, `` ≥ 1`` or nothing."""
    low, high = schema.get("minimum"), schema.get("maximum")
    if low is not None and high is not None:
        return f" {_number(low)}–{_number(high)}"
    parts = []
    for key, sign in (
        ("minimum", "≥"),
        ("exclusiveMinimum", ">"),
        ("maximum", "≤"),
        ("exclusiveMaximum", "<"),
    ):
        if key in schema:
            parts.append(f"{sign} {_number(schema[key])}")
    return " " + ", ".join(parts) if parts else ""


def _default(schema: dict[str, Any], required: bool) -> str:
    if required:
        return "required"
    if "default" not in schema:
        return "—"
    return f"`{json.dumps(schema['default'], ensure_ascii=False)}`"


def _description(field: dict[str, Any], schema: dict[str, Any]) -> str:
    text = field.get("description") or schema.get("description") or NO_DESCRIPTION
    return _cell(text)


def operation_rows(op: dict[str, Any], doc: dict[str, Any]) -> list[tuple[str, ...]]:
    """``(field, where, type, default, description)`` for every field of one operation."""
    rows: list[tuple[str, ...]] = []
    for param in op.get("parameters", []):
        schema = param.get("schema", {})
        required = bool(param.get("required"))
        rows.append(
            (
                f"`{param['name']}`",
                param["in"],
                type_of(schema, doc),
                _default(schema, required),
                _description(param, schema),
            )
        )
    body = op.get("requestBody")
    for media, content in (body or {}).get("content", {}).items():
        where = "form" if media.startswith("multipart/") else "JSON"
        schema = _resolve(content.get("schema", {}), doc)
        needed = set(schema.get("required", []))
        for name, prop in schema.get("properties", {}).items():
            rows.append(
                (
                    f"`{name}`",
                    where,
                    type_of(prop, doc),
                    _default(prop, name in needed),
                    _description(prop, _resolve(prop, doc)),
                )
            )
    return rows


def render(doc: dict[str, Any]) -> str:
    """The generated block, markers included."""
    lines = [BEGIN, ""]
    for path, ops in doc["paths"].items():
        for method in sorted(ops, key=lambda m: METHOD_ORDER.index(m) if m in METHOD_ORDER else 9):
            op = ops[method]
            rows = operation_rows(op, doc)
            if not rows:
                continue
            lines.append(f"#### `{method.upper()} {path}`")
            lines += [
                "",
                "| field | in | type | default | description |",
                "|---|---|---|---|---|",
            ]
            lines += ["| " + " | ".join(row) + " |" for row in rows]
            lines.append("")
    lines.append(END)
    return "\n".join(lines)


def rewrite(text: str, block: str) -> str:
    """``text`` with the part between the markers (inclusive) replaced by ``block``."""
    start, end = text.find(BEGIN), text.find(END)
    if start < 0 or end < start:
        raise SystemExit(f"docs/API.md lacks the markers {BEGIN!r} … {END!r}")
    return text[:start] + block + text[end + len(END) :]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if docs/API.md is stale")
    args = parser.parse_args(argv)
    current = API_MD.read_text(encoding="utf-8")
    wanted = rewrite(current, render(openapi_schema()))
    if args.check:
        if wanted != current:
            print("docs/API.md's field tables are out of date: run scripts/api_tables.py")
            return 1
        return 0
    API_MD.write_text(wanted, encoding="utf-8")
    print(f"rewrote the request-field tables in {API_MD.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
