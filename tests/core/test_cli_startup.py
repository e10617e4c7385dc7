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


@pytest.mark.parametrize("method", ["auto", "notch", "classical"])
def test_a_model_free_restore_runs_end_to_end_without_torch(tmp_path: Path, method: str) -> None:
    """``sagd restore`` with a model-free method and ``sagd analyze`` on a 256² image, run as
    the command runs them (``main``), leave torch out of the process."""
    import json

    import numpy as np

    from sagd_core.data import write_image

    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[:256, :256]
    image = 0.5 + 0.2 * rng.random((256, 256)) + 0.1 * np.cos(2 * np.pi * (0.1 * yy + 0.2 * xx))
    write_image(tmp_path / "in.png", np.clip(image, 0, 1))
    band = json.dumps({"regions": [{"kind": "notch", "fy": 0.1, "fx": 0.2, "radius": 0.02}]})
    argv = ["restore", str(tmp_path / "in.png"), "-o", str(tmp_path / "out"), "--band", band]
    argv += ["--method", method, "--no-progress"]
    code = (
        "import sys; from sagd_core.cli.main import main; "
        f"assert main({argv!r}) == 0; "
        f"assert main(['analyze', {str(tmp_path / 'in.png')!r}, '-o', "
        f"{str(tmp_path / 'bands.json')!r}]) == 0; " + TORCH_LOADED
    )
    assert _run_python(code).splitlines()[-1] == "False"
    assert (tmp_path / "out" / "in.png").exists()
