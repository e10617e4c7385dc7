"""U-Net: shapes for any size, time conditioning, presets, config validation and JSON."""

from __future__ import annotations

import json

import pydantic
import pytest
import torch

from sagd_core.models import PRESET_NAMES, UNet, UNetConfig, count_parameters, unet_preset


def _tiny(in_channels: int = 1) -> UNet:
    return UNet(unet_preset("cpu-tiny", in_channels))


@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("size", [(17, 23), (32, 32), (5, 7), (1, 1), (16, 9)])
def test_output_shape_any_size(channels: int, size: tuple[int, int]) -> None:
    torch.manual_seed(0)
    model = _tiny(channels)
    x = torch.randn(2, channels, *size)
    out = model(x, torch.tensor([3.0, 500.5]))
    assert out.shape == x.shape
    assert torch.isfinite(out).all()


def test_output_channels_override_and_attention_sizes() -> None:
    cfg = UNetConfig(
        in_channels=2,
        out_channels=4,
        base_channels=8,
        channel_mults=(1, 2),
        num_res_blocks=1,
        attention_levels=(0, 1),
        num_heads=2,
        num_groups=4,
    )
    out = UNet(cfg)(torch.randn(3, 2, 9, 6), torch.zeros(3))
    assert out.shape == (3, 4, 9, 6)


def test_last_conv_zero_init_gives_zero_output() -> None:
    model = _tiny(1)
    out = model(torch.randn(2, 1, 16, 16), torch.tensor([1.0, 900.0]))
    assert torch.count_nonzero(out) == 0


def test_time_changes_output_after_training_step() -> None:
    torch.manual_seed(0)
    model = _tiny(1)
    x = torch.randn(4, 1, 16, 16)
    t = torch.tensor([10.0, 200.0, 400.0, 800.0])
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    loss = (model(x, t) - torch.randn_like(x)).square().mean()
    loss.backward()
    opt.step()
    model.eval()
    with torch.no_grad():
        same_x = x[:1].expand(2, -1, -1, -1)
        out = model(same_x, torch.tensor([10.0, 800.0]))
        repeat = model(same_x, torch.tensor([10.0, 10.0]))
    assert not torch.allclose(out[0], out[1], atol=1e-6)
    assert torch.allclose(repeat[0], repeat[1])


def test_fractional_times_differ() -> None:
    """Float times are used as-is (no rounding to integer steps)."""
    torch.manual_seed(1)
    model = _tiny(1)
    torch.nn.init.normal_(model.conv_out.weight, std=0.1)
    x = torch.randn(1, 1, 8, 8).expand(2, -1, -1, -1)
    with torch.no_grad():
        out = model(x, torch.tensor([100.0, 100.5]))
    assert not torch.allclose(out[0], out[1])


def test_batch_items_are_independent() -> None:
    """GroupNorm and padding act per sample: an item's output ignores the rest of the batch."""
    torch.manual_seed(2)
    model = _tiny(1).eval()
    torch.nn.init.normal_(model.conv_out.weight, std=0.1)
    x = torch.randn(2, 1, 13, 11)
    t = torch.tensor([5.0, 50.0])
    with torch.no_grad():
        both = model(x, t)
        single = model(x[1:], t[1:])
    assert torch.allclose(both[1:], single, atol=1e-5)


def test_bad_inputs_raise() -> None:
    model = _tiny(1)
    with pytest.raises(ValueError, match="channels"):
        model(torch.randn(1, 3, 8, 8), torch.zeros(1))
    with pytest.raises(ValueError, match=r"\(B, C, H, W\)"):
        model(torch.randn(1, 8, 8), torch.zeros(1))
    with pytest.raises(ValueError, match="H, W >= 1"):
        model(torch.randn(1, 1, 0, 8), torch.zeros(1))
    with pytest.raises(ValueError, match="t must have shape"):
        model(torch.randn(2, 1, 8, 8), torch.zeros(3))


def test_scalar_time_broadcasts() -> None:
    model = _tiny(1)
    assert model(torch.randn(3, 1, 8, 8), torch.tensor(7.0)).shape == (3, 1, 8, 8)


@pytest.mark.parametrize(
    ("name", "low", "high"),
    [
        ("cpu-tiny", 100_000, 400_000),
        ("cpu-small", 1_000_000, 2_000_000),
        ("p1", 15_000_000, 17_000_000),
    ],
)
def test_preset_parameter_counts(name: str, low: int, high: int) -> None:
    for channels in (1, 3):
        n = count_parameters(UNet(unet_preset(name, channels)))
        assert low <= n <= high, (name, channels, n)


def test_p1_preset_shape() -> None:
    cfg = unet_preset("p1", 1)
    assert cfg.level_channels == (32, 64, 128, 256)
    assert cfg.size_multiple == 8


def test_count_parameters_trainable_only() -> None:
    model = _tiny(1)
    total = count_parameters(model)
    model.conv_in.requires_grad_(False)
    frozen = sum(p.numel() for p in model.conv_in.parameters())
    assert count_parameters(model, trainable_only=True) == total - frozen
    assert count_parameters(model) == total


def test_unknown_preset_lists_names() -> None:
    with pytest.raises(ValueError, match="unknown U-Net preset") as info:
        unet_preset("huge", 1)
    for name in PRESET_NAMES:
        assert name in str(info.value)


@pytest.mark.parametrize("name", PRESET_NAMES)
def test_config_json_round_trip(name: str) -> None:
    cfg = unet_preset(name, 3)
    text = json.dumps(cfg.model_dump(mode="json"))
    back = UNetConfig.model_validate(json.loads(text))
    assert back == cfg
    assert back.resolved_out_channels == 3


def test_config_is_frozen() -> None:
    cfg = unet_preset("cpu-tiny", 1)
    with pytest.raises(pydantic.ValidationError):
        cfg.base_channels = 64


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"in_channels": 0}, "in_channels"),
        ({"in_channels": 5}, "in_channels"),
        ({"base_channels": 0}, "base_channels"),
        ({"channel_mults": ()}, "channel_mults"),
        ({"channel_mults": (1, 0)}, "channel_mults"),
        ({"num_res_blocks": 0}, "num_res_blocks"),
        ({"attention_levels": (3,)}, "attention_levels"),
        ({"attention_levels": (1, 1)}, "duplicates"),
        ({"dropout": 1.0}, "dropout"),
        ({"dropout": -0.1}, "dropout"),
        ({"num_groups": 5}, "num_groups"),
        ({"num_heads": 3, "attention_levels": (0,)}, "num_heads"),
        ({"unknown_field": 1}, "unknown_field"),
    ],
)
def test_config_validation(overrides: dict[str, object], message: str) -> None:
    data = {**unet_preset("cpu-tiny", 1).model_dump(), **overrides}
    with pytest.raises(pydantic.ValidationError, match=message):
        UNetConfig.model_validate(data)


@pytest.mark.parametrize("preset", ["cpu-tiny", "cpu-small"])
@pytest.mark.parametrize("size", [(32, 32), (17, 23)])
def test_cpu_inference_path_matches_the_autograd_path(preset: str, size: tuple[int, int]) -> None:
    """CPU inference runs channels-last with in-place SiLU: same function, NCHW output."""
    torch.manual_seed(0)
    model = UNet(unet_preset(preset, 3)).eval()
    torch.nn.init.normal_(model.conv_out.weight, std=0.05)  # non-zero output
    x = torch.randn(2, 3, *size)
    t = torch.tensor([10.0, 700.0])
    assert not UNet.uses_channels_last(x)  # grad enabled
    reference = model(x, t)  # autograd on: the training path (NCHW, out-of-place SiLU)
    assert reference.requires_grad
    with torch.no_grad():
        assert UNet.uses_channels_last(x)
        fast = model(x, t)
    with torch.inference_mode():
        also = model(x, t)
    assert fast.is_contiguous() and fast.shape == reference.shape
    scale = reference.detach().abs().max()
    # Two float32 conv paths (channels-last vs NCHW) may pick different kernels per CPU; their
    # rounding differs by ~1e-6 of the scale. 1e-4 leaves room across CPUs and torch builds while a
    # different function would differ by O(scale).
    assert torch.allclose(fast, reference.detach(), atol=1e-4 * float(scale))
    assert torch.equal(fast, also)
    # The input is left untouched by the in-place activations.
    x_before = x.clone()
    with torch.no_grad():
        model(x, t)
    assert torch.equal(x, x_before)
