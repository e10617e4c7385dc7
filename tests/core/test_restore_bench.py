"""Smoke runs of ``sagd bench restore`` and ``sagd bench omission`` (tiny training, few images):
they must finish and write their tables, figures and JSON."""

from __future__ import annotations

import argparse
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from sagd_core.cli import bench_omission, bench_restore


@pytest.fixture(autouse=True)
def _one_thread() -> Iterator[None]:
    """The benches set torch's global thread count (``--threads 1``); put it back."""
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


def _parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers()
    bench_restore.register_bench(sub)
    bench_omission.register_bench(sub)
    return parser.parse_args(argv)


def _smoke_args(bench: str, out: Path, options: str) -> argparse.Namespace:
    """``sagd bench BENCH --out OUT OPTIONS`` on the CPU with one thread and no progress bars."""
    cpu = ["--device", "cpu", "--threads", "1", "--no-progress"]
    return _parse([bench, "--out", str(out), *options.split(), *cpu])


@pytest.mark.slow
def test_bench_restore_smoke(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = _smoke_args(
        "restore", tmp_path, "--train-steps 2 --test-images 2 --calibration-images 4 --skip-latency"
    )
    assert args.func(args) == 0
    text = (tmp_path / "results.md").read_text()
    assert "PSNR summary" in text and "Band detection" in text
    data = json.loads((tmp_path / "results.json").read_text())
    assert len(data["settings"]) == 18  # 3 datasets × 3 corruptions × 2 noise levels
    for setting in data["settings"]:
        notch = setting["metrics"]["best notch"]
        assert notch["psnr_out"] > 100 or setting["noise_std"] > 0  # notch keeps trusted bins
    assert any(p.suffix == ".png" for p in (tmp_path / "figures").iterdir())
    assert "python" in capsys.readouterr().out  # the environment is printed


@pytest.mark.slow
def test_bench_omission_smoke(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SAGD_CACHE_DIR", str(tmp_path / "cache"))
    args = _smoke_args("omission", tmp_path, "--train-steps 2 --seeds 2 --bands 1")
    assert args.func(args) == 0
    data = json.loads((tmp_path / "results.json").read_text())
    band = data["bands"][0]
    assert band["band"] == "[0.1,0.2)" and band["p1_fid"] == [3.23, 2.76]
    assert len(band["metrics"]["sagd"]["fd"]) == 2
    # The omitted band stays empty in SAGD samples (DESIGN.md §3, §3.5).
    assert max(band["metrics"]["sagd"]["band_energy"]) < 1e-6


def test_restore_presets_cover_the_three_datasets() -> None:
    from sagd_core.bench.restore_lib import PRESETS

    for preset in PRESETS.values():
        assert preset.datasets == ("digits", "lfw", "natural")
        kinds = {c["kind"] for _, c in preset.corruptions}
        assert kinds == {"band_noise", "periodic", "oriented"}
        assert preset.noise_levels == (0.0, 0.05)
    quick = PRESETS["quick"]
    assert quick.steps_for("band", "digits") == 800 and quick.steps_for("band", "lfw") == 100
    assert quick.steps_for("omission", "digits") == 300
    assert quick.steps_for("omission", "natural") == quick.steps_for("full", "lfw") == 200
    assert PRESETS["full"].steps_for("band") == PRESETS["full"].train_steps
