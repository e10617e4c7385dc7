"""The docs name only files and folders that exist (a doc naming a moved module is wrong)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DOCS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
#: A repository path inside backticks, e.g. `sagd_core/restore/request.py` or `service/api/`.
PATH = re.compile(
    r"`((?:sagd_core|service|worker|tests|benchmarks|scripts|docs|examples)/[\w./-]*)`"
)


@pytest.mark.parametrize("doc", DOCS, ids=[d.name for d in DOCS])
def test_every_path_a_doc_names_exists(doc: Path) -> None:
    missing = [
        path
        for path in PATH.findall(doc.read_text(encoding="utf-8"))
        if not (REPO / path.rstrip("/")).exists()
    ]
    assert not missing, f"{doc.name} names paths that do not exist: {missing}"


def test_the_docs_name_paths_at_all() -> None:
    assert sum(len(PATH.findall(d.read_text(encoding="utf-8"))) for d in DOCS) > 20
