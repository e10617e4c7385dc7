"""Checkpoint I/O: safetensors groups + JSON, atomic replacement, optimizer state round trip."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from sagd_core import checkpoint as checkpoint_module
from sagd_core.checkpoint import (
    Checkpoint,
    CheckpointError,
    list_groups,
    load_checkpoint,
    load_optimizer_state,
    optimizer_state_to_tensors,
    save_checkpoint,
)
from sagd_core.models import UNet, UNetConfig, unet_preset


def _trained_model(seed: int = 0) -> UNet:
    torch.manual_seed(seed)
    model = UNet(unet_preset("cpu-tiny", 1))
    torch.nn.init.normal_(model.conv_out.weight, std=0.05)
    return model


def _save_simple(directory: Path, value: float = 1.0) -> None:
    save_checkpoint(
        directory,
        tensors={"model": {"w": torch.full((2, 3), value)}},
        config={"value": value},
        meta={"step": int(value)},
    )


def test_model_round_trip_gives_identical_outputs(tmp_path: Path) -> None:
    model = _trained_model().eval()
    ckpt_dir = tmp_path / "ckpt"
    save_checkpoint(
        ckpt_dir,
        tensors={"model": model.state_dict()},
        config=model.config.model_dump(mode="json"),
        meta={"step": 12, "note": "ü"},
    )
    loaded = load_checkpoint(ckpt_dir)
    assert isinstance(loaded, Checkpoint)
    assert loaded.meta == {"step": 12, "note": "ü"}
    restored = UNet(UNetConfig.model_validate(loaded.config)).eval()
    restored.load_state_dict(loaded.tensors["model"])
    x, t = torch.randn(2, 1, 13, 10), torch.tensor([3.0, 700.0])
    with torch.no_grad():
        assert torch.equal(model(x, t), restored(x, t))
    assert sorted(p.name for p in ckpt_dir.iterdir()) == [
        "config.json",
        "meta.json",
        "model.safetensors",
    ]


def test_shared_and_strided_tensors_are_saved(tmp_path: Path) -> None:
    base = torch.arange(12.0).reshape(3, 4)
    tensors = {"a": base, "alias": base, "t": base.T, "view": base[:, 1]}
    save_checkpoint(tmp_path / "c", tensors={"g": tensors}, config={}, meta={})
    loaded = load_checkpoint(tmp_path / "c").tensors["g"]
    for key, value in tensors.items():
        assert torch.equal(loaded[key], value), key
    # Stored copies, not views of the caller's tensor.
    base.zero_()
    assert loaded["a"].sum() == 66


def test_dtypes_and_scalars_round_trip(tmp_path: Path) -> None:
    tensors = {
        "half": torch.randn(3, dtype=torch.float16),
        "long": torch.arange(5),
        "bool": torch.tensor([True, False]),
        "scalar": torch.tensor(2.5),
        "empty": torch.zeros(0, 4),
    }
    save_checkpoint(tmp_path / "c", tensors={"x": tensors, "none": {}}, config={}, meta={})
    loaded = load_checkpoint(tmp_path / "c")
    assert set(loaded.tensors) == {"x", "none"}
    assert loaded.tensors["none"] == {}
    for key, value in tensors.items():
        got = loaded.tensors["x"][key]
        assert got.dtype == value.dtype and got.shape == value.shape
        assert torch.equal(got, value)


def test_load_selected_groups(tmp_path: Path) -> None:
    save_checkpoint(
        tmp_path / "c",
        tensors={"model": {"a": torch.ones(1)}, "ema": {"a": torch.zeros(1)}},
        config={},
        meta={},
    )
    assert list_groups(tmp_path / "c") == ["ema", "model"]
    loaded = load_checkpoint(tmp_path / "c", groups=["ema"])
    assert list(loaded.tensors) == ["ema"]
    with pytest.raises(CheckpointError, match=r"unknown tensor group.*optimizer"):
        load_checkpoint(tmp_path / "c", groups=["optimizer"])


def test_atomic_replace_leaves_no_temporaries(tmp_path: Path) -> None:
    target = tmp_path / "ckpt"
    save_checkpoint(
        target,
        tensors={"model": {"w": torch.zeros(2)}, "stale": {"x": torch.ones(1)}},
        config={"v": 0},
        meta={},
    )
    _save_simple(target, 2.0)
    loaded = load_checkpoint(target)
    assert loaded.config == {"value": 2.0}
    assert set(loaded.tensors) == {"model"}  # the old group did not survive the replacement
    assert torch.equal(loaded.tensors["model"]["w"], torch.full((2, 3), 2.0))
    assert [p.name for p in tmp_path.iterdir()] == ["ckpt"]


def test_failed_save_keeps_previous_checkpoint(tmp_path: Path) -> None:
    target = tmp_path / "ckpt"
    _save_simple(target, 1.0)
    with pytest.raises(CheckpointError, match="JSON"):
        save_checkpoint(
            target,
            tensors={"model": {"w": torch.zeros(1)}},
            config={"bad": object()},
            meta={},
        )
    with pytest.raises(CheckpointError, match="JSON"):
        save_checkpoint(target, tensors={}, config={}, meta={"loss": float("nan")})
    not_tensors: dict[str, dict[str, object]] = {"model": {"w": [1.0]}}
    with pytest.raises(CheckpointError, match=r"not a torch\.Tensor"):
        save_checkpoint(target, tensors=not_tensors, config={}, meta={})  # type: ignore[arg-type]
    with pytest.raises(CheckpointError, match="invalid tensor group name"):
        save_checkpoint(target, tensors={"../evil": {}}, config={}, meta={})
    assert load_checkpoint(target).config == {"value": 1.0}
    assert [p.name for p in tmp_path.iterdir()] == ["ckpt"]


def test_crash_while_writing_keeps_previous_checkpoint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "ckpt"
    _save_simple(target, 1.0)

    def crash(*args: object, **kwargs: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(checkpoint_module, "save_file", crash)
    with pytest.raises(OSError, match="disk full"):
        _save_simple(target, 2.0)
    assert load_checkpoint(target).config == {"value": 1.0}
    assert [p.name for p in tmp_path.iterdir()] == ["ckpt"]


def test_save_refuses_to_replace_a_file(tmp_path: Path) -> None:
    target = tmp_path / "ckpt"
    target.write_text("not a directory")
    with pytest.raises(CheckpointError, match="not a checkpoint directory"):
        _save_simple(target)
    assert target.read_text() == "not a directory"
    assert [p.name for p in tmp_path.iterdir()] == ["ckpt"]


def test_missing_directory_and_files(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="not found"):
        load_checkpoint(tmp_path / "nope")
    target = tmp_path / "ckpt"
    for name in ("config.json", "meta.json"):
        _save_simple(target)
        (target / name).unlink()
        with pytest.raises(CheckpointError, match=f"missing.*{name}"):
            load_checkpoint(target)


@pytest.mark.parametrize(
    ("content", "message"),
    [(b"{not json", "not valid JSON"), (b"[1, 2]", "JSON object"), (b"\xff\xfe", "UTF-8")],
)
def test_corrupt_json(tmp_path: Path, content: bytes, message: str) -> None:
    target = tmp_path / "ckpt"
    _save_simple(target)
    (target / "meta.json").write_bytes(content)
    with pytest.raises(CheckpointError, match=message):
        load_checkpoint(target)


def test_corrupt_safetensors(tmp_path: Path) -> None:
    target = tmp_path / "ckpt"
    _save_simple(target)
    (target / "model.safetensors").write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00garbage")
    with pytest.raises(CheckpointError, match="cannot read tensor group 'model'"):
        load_checkpoint(target)
    assert issubclass(CheckpointError, ValueError)


def _step(model: torch.nn.Module, opt: torch.optim.Optimizer, seed: int) -> None:
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(2, 1, 8, 8, generator=gen)
    t = torch.rand(2, generator=gen) * 1000
    opt.zero_grad()
    (model(x, t) - x).square().mean().backward()
    opt.step()


def test_optimizer_state_round_trip_continues_identically(tmp_path: Path) -> None:
    model = _trained_model(seed=3)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, betas=(0.8, 0.95), weight_decay=0.01)
    for seed in range(3):
        _step(model, opt, seed)

    opt_tensors, opt_scalars = optimizer_state_to_tensors(opt)
    save_checkpoint(
        tmp_path / "ckpt",
        tensors={"model": model.state_dict(), "optimizer": opt_tensors},
        config=model.config.model_dump(mode="json"),
        meta={"optimizer": opt_scalars},
    )
    loaded = load_checkpoint(tmp_path / "ckpt")
    restored = UNet(UNetConfig.model_validate(loaded.config))
    restored.load_state_dict(loaded.tensors["model"])
    restored_opt = torch.optim.AdamW(restored.parameters(), lr=0.5)  # hyperparameters restored
    load_optimizer_state(restored_opt, loaded.tensors["optimizer"], loaded.meta["optimizer"])

    assert restored_opt.param_groups[0]["betas"] == (0.8, 0.95)
    assert restored_opt.param_groups[0]["lr"] == 1e-3
    for seed in range(3, 6):
        _step(model, opt, seed)
        _step(restored, restored_opt, seed)
    for (name, a), b in zip(model.named_parameters(), restored.parameters(), strict=True):
        assert torch.equal(a, b), name


def test_optimizer_tensors_are_snapshots() -> None:
    model = _trained_model()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    _step(model, opt, 0)
    tensors, _ = optimizer_state_to_tensors(opt)
    before = {k: v.clone() for k, v in tensors.items()}
    _step(model, opt, 1)
    assert all(torch.equal(tensors[k], before[k]) for k in tensors)
    assert any(k.endswith("exp_avg") for k in tensors)


def test_optimizer_state_errors() -> None:
    model = _trained_model()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    _step(model, opt, 0)
    tensors, scalars = optimizer_state_to_tensors(opt)
    fresh = torch.optim.AdamW(model.parameters(), lr=1e-2)
    missing = dict(tensors)
    missing.pop(next(iter(missing)))
    with pytest.raises(CheckpointError, match="missing"):
        load_optimizer_state(fresh, missing, scalars)
    with pytest.raises(CheckpointError, match="saved from 'AdamW'"):
        load_optimizer_state(torch.optim.SGD(model.parameters(), lr=0.1), tensors, scalars)
    with pytest.raises(CheckpointError, match="unknown format"):
        load_optimizer_state(fresh, tensors, {**scalars, "format": 99})
    other = torch.optim.AdamW(list(model.parameters())[:2], lr=1e-2)
    with pytest.raises(CheckpointError, match="does not fit"):
        load_optimizer_state(other, tensors, scalars)
    # The scalars survive JSON unchanged (they are stored in meta.json).
    assert json.loads(json.dumps(scalars)) == scalars
