"""``sagd bench speed``: one row per kind, noise level and method, the budgets only where the
issue sets them (512² RGB), and a run that imports no torch (the classical tier is numpy only)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from sagd_core.bench.classical_speed import BUDGETS, budget, markdown, time_classical

ROOT = Path(__file__).resolve().parents[2]


def test_rows_time_notch_and_classical_and_judge_budgets_only_at_512_rgb() -> None:
    rows = time_classical(64, kinds=("stripes", "band_noise"), sigmas=(0.0,), repeats=1)
    assert [(r["kind"], r["method"]) for r in rows] == [
        ("stripes", "notch"),
        ("stripes", "classical"),
        ("band_noise", "notch"),
        ("band_noise", "classical"),
    ]
    assert all(r["wall_s"] > 0 and r["cpu_s"] >= 0 for r in rows)
    assert all(r["budget_s"] is None and r["met"] is None for r in rows)  # not 512² RGB
    table = markdown(rows)
    assert "| stripes | 0 |" in table and "| band_noise | 0 |" in table and "NO" not in table
    assert BUDGETS == {"periodic": 0.5, "halftone": 0.5, "stripes": 0.5, "band_noise": 1.0}


def test_with_broadband_noise_the_noise_path_budget_is_added_to_the_others() -> None:
    """σ > 0: the broadband denoiser (the noise path) runs after the band treatment, so the
    sinusoid and stripe paths get 0.5 + 1.0 s; band noise is the noise path and keeps 1.0 s.
    Each row of the table states its budget and how it adds up."""
    for kind in ("periodic", "stripes", "halftone"):
        assert budget(kind, 0.0) == 0.5
        assert budget(kind, 0.02) == 1.5
    assert budget("band_noise", 0.0) == budget("band_noise", 0.02) == 1.0

    def row(kind: str, sigma: float, method: str, wall: float) -> dict[str, object]:
        limit = budget(kind, sigma) if method == "classical" else None
        return {
            "kind": kind,
            "sigma": sigma,
            "method": method,
            "wall_s": wall,
            "cpu_s": wall,
            "budget_s": limit,
            "met": None if limit is None else wall <= limit,
        }

    rows = [
        row(kind, sigma, method, wall)
        for kind, sigma, wall in [
            ("halftone", 0.0, 0.4),
            ("halftone", 0.02, 1.2),
            ("band_noise", 0.02, 1.2),
        ]
        for method in ("notch", "classical")
    ]
    lines = markdown(rows).splitlines()
    assert "budget s" in lines[0]
    assert lines[2].startswith("| halftone | 0 |") and "| 0.5 | yes |" in lines[2]
    assert lines[3].startswith("| halftone | 0.02 |")
    assert "| 1.5 = 0.5 + 1 (noise path) | yes |" in lines[3]  # 1.2 s: within 0.5 + 1.0
    assert lines[4].startswith("| band_noise | 0.02 |") and "| 1 | NO |" in lines[4]


def test_the_command_pins_one_core_writes_rows_and_loads_no_torch(tmp_path: Path) -> None:
    out = tmp_path / "speed.json"
    code = (
        "import sys; from sagd_core.cli.main import main; "
        f"rc = main(['bench', 'speed', '--size', '64', '--channels', '1', '--repeats', '1', "
        f"'--out', {str(out)!r}]); print('torch' in sys.modules, rc)"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "one core: pinned to CPU" in done.stdout and "BLAS limited to 1 thread" in done.stdout
    assert done.stdout.strip().splitlines()[-1] == "False 0"
    rows = json.loads(out.read_text())
    assert len(rows) == 16 and {r["method"] for r in rows} == {"notch", "classical"}
