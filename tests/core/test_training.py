"""Training: the loss falls on digits, checkpoints round-trip, resume continues exactly."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from sagd_core.checkpoint import load_checkpoint
from sagd_core.models import unet_preset
from sagd_core.spectral import NoiseSpec, parse_band_spec
from sagd_core.training import (
    DataConfig,
    TrainConfig,
    TrainProgress,
    load_trained_model,
    train,
    training_preset,
)

BAND = parse_band_spec({"regions": [{"kind": "annulus", "low": 0.15, "high": 0.3}]})


def tiny_config(**kw: object) -> TrainConfig:
    base: dict[str, object] = {
        "model": unet_preset("cpu-tiny", 1),
        "data": DataConfig(source="digits", image_size=16),
        "steps": 6,
        "batch_size": 8,
        "checkpoint_every": 3,
        "warmup_steps": 2,
    }
    base.update(kw)
    return TrainConfig(**base)  # type: ignore[arg-type]


@pytest.mark.slow
def test_loss_falls_on_digits(tmp_path: Path) -> None:
    config = tiny_config(
        steps=300,
        batch_size=32,
        lr=2e-3,
        checkpoint_every=300,
        noise=NoiseSpec(omit=BAND),
        project_trusted=True,
        role="omission",
    )
    seen: list[TrainProgress] = []
    result = train(config, tmp_path / "m", progress=seen.append)
    assert [p.step for p in seen] == list(range(1, 301))
    first = np.mean([p.loss for p in seen[:20]])
    last = np.mean([p.loss for p in seen[-20:]])
    assert last < 0.6 * first, (first, last)
    assert result.steps == 300 and np.isfinite(result.final_loss)


def test_checkpoint_save_load_gives_identical_outputs(tmp_path: Path) -> None:
    config = tiny_config()
    train(config, tmp_path / "m")
    a = load_trained_model(tmp_path / "m")
    b = load_trained_model(tmp_path / "m")
    x = torch.randn(2, 1, 16, 16, generator=torch.Generator().manual_seed(0))
    t = torch.tensor([10.0, 500.0])
    out = a.net(x, t)
    assert torch.equal(out, b.net(x, t))
    assert a.config == config
    meta = a.meta
    assert meta["step"] == 6 and meta["dataset_hash"].startswith("sha256:")
    assert meta["noise"] == config.noise.model_dump(mode="json")
    files = sorted(p.name for p in (tmp_path / "m").iterdir())
    assert "ema.safetensors" in files and "config.json" in files
    assert not any(f.endswith((".pt", ".pth", ".pkl")) for f in files)


def test_resume_continues_exactly(tmp_path: Path) -> None:
    straight = tiny_config(steps=6)
    train(straight, tmp_path / "straight")

    # a run stopped after step 3 (cancelled from the progress callback), then resumed
    class Stop(Exception):
        pass

    def stop_at_3(p: TrainProgress) -> None:
        if p.step == 3:
            raise Stop

    with pytest.raises(Stop):
        train(straight, tmp_path / "resumed", progress=stop_at_3)
    assert load_checkpoint(tmp_path / "resumed", groups=[]).meta["step"] == 3
    steps_seen: list[int] = []
    train(straight, tmp_path / "resumed", progress=lambda p: steps_seen.append(p.step))
    assert steps_seen == [4, 5, 6]
    a = load_checkpoint(tmp_path / "straight", groups=["model", "ema"]).tensors
    b = load_checkpoint(tmp_path / "resumed", groups=["model", "ema"]).tensors
    for group in ("model", "ema"):
        for name, tensor in a[group].items():
            torch.testing.assert_close(tensor, b[group][name], rtol=0, atol=0)


def test_resume_refuses_a_different_config(tmp_path: Path) -> None:
    train(tiny_config(steps=2), tmp_path / "m")
    with pytest.raises(ValueError, match="different config"):
        train(tiny_config(steps=4, lr=1e-3), tmp_path / "m")


def test_resume_accepts_a_checkpoint_written_before_a_defaulted_field_existed(
    tmp_path: Path,
) -> None:
    """A config.json without a field that was added later with its default (here
    ``data.declared_corruption``) is the same config: the run resumes."""
    import json

    class Stop(Exception):
        pass

    def stop_at_3(p: TrainProgress) -> None:
        if p.step == 3:
            raise Stop

    config = tiny_config(steps=6)
    with pytest.raises(Stop):
        train(config, tmp_path / "m", progress=stop_at_3)
    path = tmp_path / "m" / "config.json"
    saved = json.loads(path.read_text())
    del saved["data"]["declared_corruption"]
    path.write_text(json.dumps(saved))
    steps: list[int] = []
    train(config, tmp_path / "m", progress=lambda p: steps.append(p.step))
    assert steps == [4, 5, 6]
    with pytest.raises(ValueError, match="different config"):
        train(tiny_config(steps=6, lr=1e-3), tmp_path / "m")


def test_declared_and_applied_corruption_exclude_each_other() -> None:
    with pytest.raises(ValueError, match="one or the other"):
        DataConfig(corruption={"kind": "band_noise"}, declared_corruption="noise")
    assert DataConfig(declared_corruption="noise").declared_corruption == "noise"


def test_bad_training_input(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="must be"):
        train(tiny_config(), tmp_path / "m", images=np.zeros((4, 3, 16, 16), np.float32))
    with pytest.raises(ValueError, match="non-finite"):
        train(tiny_config(), tmp_path / "m", images=np.full((4, 1, 16, 16), np.nan, np.float32))
    with pytest.raises(FileNotFoundError, match="neither a built-in"):
        train(tiny_config(data=DataConfig(source=str(tmp_path / "nope"))), tmp_path / "m")
    with pytest.raises(ValueError, match="unknown training preset"):
        training_preset("nope")


def test_presets_are_valid_configs() -> None:
    demo = training_preset("demo")
    assert demo.role == "omission" and demo.noise.omit is not None and demo.project_trusted
    band = training_preset("digits-band")
    assert band.noise.kind == "band" and band.data.corruption is not None
    assert training_preset("digits-full").data.corruption is None


def test_uploaded_images_become_a_training_array() -> None:
    from sagd_core.training.dataset import prepare_uploaded

    rng = np.random.default_rng(0)
    gray = [rng.random((20, 30, 1)), rng.random((40, 24, 1))]
    arrays, channels = prepare_uploaded(gray, 16)
    assert channels == 1 and arrays.shape == (2, 1, 16, 16) and arrays.dtype == np.float32
    assert arrays.min() >= -1.0 and arrays.max() <= 1.0
    mixed, channels = prepare_uploaded([*gray, rng.random((16, 16, 3))], 16)
    assert channels == 3 and mixed.shape == (3, 3, 16, 16)
    np.testing.assert_allclose(mixed[0, 0], mixed[0, 2])  # gray is copied to every channel
