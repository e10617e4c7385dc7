"""Generate the README's settings table: every ``service/settings.py`` field and every other
``SAGD_*`` environment variable the code reads, with its default and meaning.

    .venv/bin/python scripts/settings_table.py          # rewrite README.md between the markers
    .venv/bin/python scripts/settings_table.py --check  # exit 1 if README.md is out of date

Settings fields come from the pydantic model itself (name, environment variable, type, default).
A field's meaning is its ``Field(description=...)`` when it has one, else the text in
:data:`MEANINGS` below, else the comment on the field's line in ``service/settings.py``. The other
variables are found by scanning the code for ``environ``/``getenv`` reads of ``SAGD_*`` names, so
a new one shows up in the table (as "undocumented" until :data:`MEANINGS` describes it).
"""

from __future__ import annotations

import argparse
import ast
import io
import re
import sys
import tokenize
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
README = REPO / "README.md"
SETTINGS_SOURCE = REPO / "service" / "settings.py"
BEGIN = "<!-- BEGIN GENERATED: settings table (scripts/settings_table.py) -->"
END = "<!-- END GENERATED: settings table -->"
#: Where other ``SAGD_*`` variables are read (tests and benchmarks have their own switches).
SCANNED = ("sagd_core", "service", "worker")
#: Read outside the scanned packages but meant for users.
EXTRA_VARIABLES = {"SAGD_SKIP_BROWSER": "tests/browser/conftest.py"}
UNDOCUMENTED = "undocumented: describe it in scripts/settings_table.py MEANINGS"
ENV_READ = re.compile(
    r"""(?:environ(?:\.get|\.setdefault)?\s*[\[(]|getenv\s*\()\s*["'](SAGD_[A-Z0-9_]+)["']"""
)

#: Meanings by environment variable, for the fields and variables whose code carries none.
MEANINGS: dict[str, str] = {
    "SAGD_ENV": "`development` (authentication optional, development webhook secret accepted) "
    "or `production` (API keys and a webhook secret of your own required)",
    "SAGD_STORAGE_ROOT": "the data folder: job inputs, results, reports, models, the registry "
    "files; the API and every worker must see the same one. `make serve` also keeps its "
    "embedded Redis there and locks it against a second instance",
    "SAGD_REDIS_URL": "Redis (broker, job records, listings). `make serve` starts its own "
    "`redis-server` unless this is set",
    "SAGD_API_KEYS": "SHA-256 hex digests of the accepted API keys, comma separated (never the "
    "keys themselves)",
    "SAGD_AUTH_DISABLED": "force authentication off (`true`, development only) or on (`false`); "
    "unset: off only in development without keys",
    "SAGD_RATE_LIMIT_PER_S": "requests per second per key (429 + `Retry-After` beyond)",
    "SAGD_RATE_LIMIT_BURST": "burst allowance of the per-key rate limit",
    "SAGD_MAX_UPLOAD_BYTES": "largest request body of a restoration or analysis (413)",
    "SAGD_MAX_BATCH_BYTES": "largest request body of a batch or a training upload (413)",
    "SAGD_MAX_PIXELS": "largest image, in pixels, checked from the header before decoding (413)",
    "SAGD_MIN_SIDE": "smallest image side in pixels (422)",
    "SAGD_MAX_BATCH_ITEMS": "most images in one batch (422)",
    "SAGD_BATCH_CHUNK_ITEMS": "micro-batching: most notch items of a batch per worker task",
    "SAGD_BATCH_CHUNK_PIXELS": "micro-batching: most pixels per worker task",
    "SAGD_MAX_ZIP_ENTRIES": "most entries in an uploaded zip",
    "SAGD_MAX_ZIP_UNCOMPRESSED_BYTES": "largest uncompressed size of an uploaded zip",
    "SAGD_RESULT_TTL_S": "seconds a finished job's record and files are kept",
    "SAGD_ANALYZE_WAIT_S": "`POST /v1/analyze` answers 200 within this many seconds, else 202 "
    "with a job",
    "SAGD_ACCEPT_CONCURRENCY": "uploads decoded and queued at once per API process",
    "SAGD_WEBHOOK_SECRET": "HMAC key of the `X-SAGD-Signature` webhook header (the development "
    "default is refused in production)",
    "SAGD_WEBHOOK_ALLOW_PRIVATE": "allow callback URLs that resolve to private or loopback "
    "addresses (off: SSRF protection)",
    "SAGD_WEBHOOK_MAX_RETRIES": "delivery retries of a webhook (exponential backoff)",
    "SAGD_VISIBILITY_TIMEOUT_S": "seconds before an unacknowledged task is delivered again; "
    "every hard time limit must stay below it",
    "SAGD_RESTORE_SOFT_TIME_LIMIT_S": "soft time limit of a restoration task (the job fails "
    "cleanly)",
    "SAGD_RESTORE_TIME_LIMIT_S": "hard time limit of a restoration task (the process is killed)",
    "SAGD_TRAIN_SOFT_TIME_LIMIT_S": "soft time limit of a training task",
    "SAGD_TRAIN_TIME_LIMIT_S": "hard time limit of a training task",
    "SAGD_MAX_ATTEMPTS": 'deliveries of a job before it fails as "worker lost too many times"',
    "SAGD_DEVICE": "the workers' device: `auto` (CUDA if available), `cpu`, `cuda`, `cuda:1`, …",
    "SAGD_WORKER_NICENESS": "CPU niceness of the workers (0 leaves it), so uploads stay fast "
    "while restorations run",
    "SAGD_DEFAULT_MODEL": "the model learned methods use when a request names none",
    "SAGD_MODELS_CACHE_SIZE": "models kept loaded per worker process (LRU)",
    "SAGD_JOB_LEASE_S": "seconds of a running job's lease, renewed by its worker; a job whose "
    "lease runs out (worker killed or cut off from Redis) is requeued",
    "SAGD_FINAL_WRITE_RETRY_S": "how long a worker cut off from Redis keeps retrying a job's "
    "final state before giving the job up",
    "SAGD_HOST": "`make serve`: the address the API listens on (or `--host`)",
    "SAGD_PORT": "`make serve`: the API's port (or `--port`)",
    "SAGD_REDIS_RESTART_DELAY_S": "`make serve`: seconds before a dead embedded `redis-server` "
    "is restarted",
    "SAGD_CACHE_DIR": "the library's cache (the Fréchet-distance classifier)",
    "SAGD_SKIP_BROWSER": "`make test`: `1` skips the headless-Chromium tests",
}
#: Defaults of the variables that are not settings fields, as the code reads them.
OTHER_DEFAULTS: dict[str, str] = {
    "SAGD_HOST": "`127.0.0.1`",
    "SAGD_PORT": "`8000`",
    "SAGD_REDIS_RESTART_DELAY_S": "`0.5`",
    "SAGD_CACHE_DIR": "`~/.cache/sagd`",
    "SAGD_SKIP_BROWSER": "unset",
}


def _comments(source: str) -> tuple[dict[int, str], dict[int, str]]:
    """Comment text by line number: comments after code on the same line, and whole-line
    comments."""
    trailing: dict[int, str] = {}
    whole: dict[int, str] = {}
    code_lines: set[int] = set()
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type == tokenize.COMMENT:
            text = token.string.lstrip("#").strip()
            (trailing if token.start[0] in code_lines else whole)[token.start[0]] = text
        elif token.type not in (tokenize.NL, tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT):
            code_lines.add(token.start[0])
    return trailing, whole


def field_comments(source: str, class_name: str = "Settings") -> dict[str, str]:
    """The comment of every annotated field of ``class_name`` in ``source``: the one on its
    own line(s), else the block of whole-line comments right above it."""
    trailing, whole = _comments(source)
    out: dict[str, str] = {}
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ClassDef) and node.name == class_name:
            for stmt in node.body:
                if isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name):
                    end = stmt.end_lineno or stmt.lineno
                    text = next(
                        (trailing[n] for n in range(stmt.lineno, end + 1) if n in trailing), None
                    )
                    above: list[str] = []
                    line = stmt.lineno - 1
                    while line in whole:
                        above.insert(0, whole[line])
                        line -= 1
                    text = text or " ".join(above).replace("``", "`")
                    if text:
                        out[stmt.target.id] = text
    return out


def _type_name(annotation: Any) -> str:
    text = getattr(annotation, "__name__", None) or str(annotation)
    text = re.sub(r"typing\.|pydantic\.types\.|pathlib\.", "", str(annotation))
    text = re.sub(r"<class '([\w.]+)'>", r"\1", text)
    text = text.replace("Annotated[", "").replace(", NoDecode]", "")
    text = re.sub(r", NoDecode\b.*?\]", "]", text)
    text = re.sub(r"Literal\[(.*)\]", lambda m: m.group(1).replace(", ", " \\| "), text)
    text = text.replace("Optional[", "").replace("NoneType", "None")
    return text.replace("|", "\\|").replace("\\\\|", "\\|")


def _default(field: Any) -> str:
    from pydantic import SecretStr
    from pydantic_core import PydanticUndefined

    if field.default_factory is not None:
        value = field.default_factory()
    elif field.default is PydanticUndefined:
        return "required"
    else:
        value = field.default
    if isinstance(value, SecretStr):
        return "a development secret"
    if value is None:
        return "unset"
    if isinstance(value, list | tuple) and not value:
        return "empty"
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    return f"`{value}`"


def settings_rows() -> list[tuple[str, str, str, str]]:
    """``(variable, type, default, meaning)`` for every field of ``Settings``."""
    sys.path.insert(0, str(REPO))
    from service.settings import Settings

    prefix = str(Settings.model_config.get("env_prefix", "SAGD_"))
    comments = field_comments(SETTINGS_SOURCE.read_text(encoding="utf-8"))
    rows = []
    for name, field in Settings.model_fields.items():
        variable = (field.alias or prefix + name).upper()
        meaning = field.description or MEANINGS.get(variable) or comments.get(name) or UNDOCUMENTED
        rows.append((variable, _type_name(field.annotation), _default(field), meaning))
    return rows


def other_variables() -> dict[str, str]:
    """``SAGD_*`` variables read with ``os.environ``/``getenv`` outside ``Settings``, with the
    first file that reads each."""
    found: dict[str, str] = {}
    for package in SCANNED:
        for path in sorted((REPO / package).rglob("*.py")):
            if path == SETTINGS_SOURCE:
                continue
            for name in ENV_READ.findall(path.read_text(encoding="utf-8")):
                found.setdefault(name, path.relative_to(REPO).as_posix())
    for name, where in EXTRA_VARIABLES.items():
        found.setdefault(name, where)
    return found


def render() -> str:
    """The generated block, markers included."""
    rows = settings_rows()
    known = {row[0] for row in rows}
    lines = [
        BEGIN,
        "",
        "| variable | type | default | meaning |",
        "|---|---|---|---|",
    ]
    lines += [f"| `{v}` | {t} | {d} | {m} |" for v, t, d, m in rows]
    others = {k: v for k, v in other_variables().items() if k not in known}
    if others:
        lines += [
            "",
            "Read outside the settings (not from `.env`):",
            "",
            "| variable | read by | default | meaning |",
            "|---|---|---|---|",
        ]
        for name in sorted(others, key=lambda n: (n not in ("SAGD_HOST", "SAGD_PORT"), n)):
            default = OTHER_DEFAULTS.get(name, "—")
            meaning = MEANINGS.get(name, UNDOCUMENTED)
            lines.append(f"| `{name}` | `{others[name]}` | {default} | {meaning} |")
    lines += ["", END]
    return "\n".join(lines)


def rewrite(text: str, block: str) -> str:
    """``text`` with the part between the markers (inclusive) replaced by ``block``."""
    start, end = text.find(BEGIN), text.find(END)
    if start < 0 or end < start:
        raise SystemExit(f"README.md lacks the markers {BEGIN!r} … {END!r}")
    return text[:start] + block + text[end + len(END) :]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if README.md is stale")
    args = parser.parse_args(argv)
    current = README.read_text(encoding="utf-8")
    wanted = rewrite(current, render())
    if args.check:
        if wanted != current:
            print("README.md's settings table is out of date: run scripts/settings_table.py")
            return 1
        return 0
    README.write_text(wanted, encoding="utf-8")
    print(f"rewrote the settings table in {README.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
