"""The versioned JSON documents of schedule design (a saved spectrum, a fitted schedule)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class DocumentKind:
    """A kind of JSON document: its ``format`` and ``version`` fields, its name in messages and
    the error raised for a document that is not one."""

    fmt: str
    version: int
    what: str
    error: type[ValueError]

    def parse(self, text: str | bytes) -> Any:
        try:
            return json.loads(text)
        except json.JSONDecodeError as exc:
            raise self.error(f"{self.what} is not valid JSON: {exc}") from exc

    def check(self, data: Any) -> dict[str, Any]:
        """``data`` if it is a JSON object of this format and version."""
        if not isinstance(data, dict):
            raise self.error(f"a saved {self.what} must be a JSON object")
        if data.get("format") != self.fmt or data.get("version") != self.version:
            raise self.error(
                f"not a {self.fmt} v{self.version} document: "
                f"format={data.get('format')!r}, version={data.get('version')!r}"
            )
        return data
