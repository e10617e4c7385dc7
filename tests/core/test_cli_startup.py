"""``sagd`` starts without torch: building the parser (``sagd --help``) and parsing the
numpy-only commands (``sagd analyze``, ``sagd restore --method notch``) import no torch (in a
subprocess: this one has torch loaded already)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]  # tests/core/ -> repo root
PARSER = "import sys; from sagd_core.cli.main import build_parser; "
TORCH_LOADED = "print('torch' in sys.modules)"


def _run_python(code: str) -> str:
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_building_the_parser_imports_no_torch() -> None:
    assert _run_python(PARSER + "build_parser(); " + TORCH_LOADED) == "False"


@pytest.mark.parametrize(
    "argv",
    [
        ["analyze", "in.png"],
        ["restore", "in.png", "-o", "out", "--band", "{}", "--method", "notch"],
    ],
    ids=["analyze", "restore-notch"],
)
def test_parsing_a_numpy_only_command_imports_no_torch(argv: list[str]) -> None:
    assert _run_python(PARSER + f"build_parser().parse_args({argv!r}); " + TORCH_LOADED) == "False"
