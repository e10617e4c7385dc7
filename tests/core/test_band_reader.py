"""The band reader (``sagd_core.models.band_reader``): the band projection, the trusted bands
returned exactly, the weights' round trip through safetensors, and the shipped reader's read of
band noise on a scene it was not trained on."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from sagd_core.bench.default_read.build import export, reader_config
from sagd_core.data.dead_leaves import dead_leaves
from sagd_core.models.band_reader import (
    BandReader,
    BandReaderConfig,
    band_part,
    level_code,
    load_band_reader,
)
from sagd_core.models.default_read import DEFAULT_READER_DIR
from sagd_core.models.presets import UNetConfig


def annulus(size: int, low: float, high: float) -> torch.Tensor:
    r = np.hypot(np.fft.fftfreq(size)[:, None], np.fft.fftfreq(size)[None, :])
    return torch.from_numpy(((r >= low) & (r < high)).astype(np.float32))


def out_of_band_power(x: torch.Tensor, mask: torch.Tensor) -> float:
    return float((torch.fft.fft2(x, norm="ortho").abs() ** 2 * (1 - mask)).sum())


def random_reader(seed: int = 0) -> BandReader:
    """A reader with random weights, its zero-initialised output layer included (so that its
    output is far from the identity)."""
    torch.manual_seed(seed)
    reader = BandReader(reader_config())
    torch.nn.init.normal_(reader.unet.conv_out.weight, std=0.5)
    return reader.eval()


def test_band_part_is_the_projection_on_the_band() -> None:
    y = torch.randn(2, 1, 32, 32, generator=torch.Generator().manual_seed(1))
    mask = annulus(32, 0.1, 0.3)
    inside = band_part(y, mask)
    assert torch.allclose(band_part(inside, mask), inside, atol=1e-5)
    assert out_of_band_power(inside, mask) < 1e-8
    assert float((torch.fft.fft2(y - inside, norm="ortho").abs() ** 2 * mask).sum()) < 1e-8


def test_trusted_bands_come_back_exactly_without_white_noise() -> None:
    reader = random_reader()
    mask = annulus(48, 0.15, 0.3)
    y = torch.randn(3, 1, 48, 48, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        out = reader(y, mask, torch.full((3,), 0.3), torch.zeros(3))
        noisy = reader(y, mask, torch.full((3,), 0.3), torch.full((3,), 0.05))
    assert out_of_band_power(out - y, mask) < 1e-8
    assert float((out - y).abs().max()) > 1e-2  # the band was changed
    assert out_of_band_power(noisy - y, mask) > 1e-2  # with white noise the rest is denoised


def test_level_code_orders_levels_and_keeps_zero_apart() -> None:
    levels = torch.tensor([0.0, 0.01, 0.1, 1.0])
    codes = level_code(levels)
    assert codes[0] == 0.0 and bool(torch.all(codes[1:].diff() > 0)) and codes[1] > 0


def test_reader_config_refuses_a_network_of_other_channels() -> None:
    bad = reader_config().model_copy(
        update={"unet": UNetConfig(in_channels=1, base_channels=16, mid_attention=False)}
    )
    with pytest.raises(ValueError, match="takes 2 channels"):
        BandReader(bad)


def test_weights_round_trip_through_safetensors(tmp_path: Path) -> None:
    reader = random_reader(3)
    export(reader, reader.config, {"step": 0}, tmp_path)
    loaded = load_band_reader(tmp_path)
    assert not any(p.suffix in (".pt", ".pkl", ".bin") for p in tmp_path.iterdir())
    y = torch.randn(1, 1, 32, 32, generator=torch.Generator().manual_seed(4))
    mask = annulus(32, 0.2, 0.35)
    with torch.no_grad():
        args = (y, mask, torch.tensor([0.2]), torch.tensor([0.0]))
        assert torch.equal(reader(*args), loaded(*args))
    assert isinstance(loaded.config, BandReaderConfig)


@pytest.mark.parametrize("band", ["annulus", "wedge"])
def test_shipped_reader_reads_band_noise_better_than_the_notch(band: str) -> None:
    """On a dead-leaves scene outside the training seeds, band noise of the benchmark's level in
    an annulus or a line wedge (column stripes' band): the read is closer to the clean scene
    than the input and than deleting the band."""
    size = 128
    clean = torch.from_numpy(2.0 * dead_leaves(size, 1, seed=7) - 1.0).float()[None, None]
    if band == "annulus":
        mask = annulus(size, 0.15, 0.3)
    else:
        f = np.fft.fftfreq(size)
        mask = torch.from_numpy(
            ((np.abs(f)[:, None] < 1e-9) & (np.abs(f)[None, :] > 0.02)).astype(np.float32)
        )
    gen = torch.Generator().manual_seed(5)
    band_std = 0.26
    y = clean + band_std * band_part(torch.randn(1, 1, size, size, generator=gen), mask)
    reader = load_band_reader(DEFAULT_READER_DIR)
    with torch.no_grad():
        read = reader(y, mask, torch.tensor([band_std]), torch.tensor([0.0]))
    error = {
        name: float(((v - clean) ** 2).mean())
        for name, v in {"input": y, "notch": y - band_part(y, mask), "read": read}.items()
    }
    assert error["read"] < 0.8 * error["notch"] and error["read"] < 0.5 * error["input"], error


def test_levels_outside_the_trained_range_are_clamped_and_zero_white_stays_zero() -> None:
    reader = random_reader()
    lo, hi = reader.config.band_std_range
    band, white = reader.trained_levels(
        torch.tensor([1e-4, 0.2, 50.0]), torch.tensor([0.0, 0.05, 9.0])
    )
    assert band.tolist() == pytest.approx([lo, 0.2, hi])
    assert white.tolist() == pytest.approx([0.0, 0.05, reader.config.white_std_range[1]])


def test_a_config_with_a_reversed_or_non_positive_range_is_refused() -> None:
    good = reader_config().model_dump()
    for bad in [(0.5, 0.1), (0.0, 1.0)]:
        with pytest.raises(ValueError, match="0 < low ≤ high"):
            BandReaderConfig.model_validate({**good, "band_std_range": bad})
