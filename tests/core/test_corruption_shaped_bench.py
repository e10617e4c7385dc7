"""The corruption-shaped benchmark (``sagd_core.bench.corruption_shaped``): exact MSEs in dB of
the one-call clean read, the full posterior mean, the band model's out-of-band fill and the notch,
on Gaussian images with band-limited noise (small grid here; the reported table is 32×32)."""

from __future__ import annotations

import pytest

from sagd_core.bench.corruption_shaped import (
    ESTIMATORS,
    CorruptionShapedRow,
    corruption_shaped_rows,
    format_rows,
)

STDS = (0.1, 0.5)


@pytest.fixture(scope="module")
def rows() -> list[CorruptionShapedRow]:
    return corruption_shaped_rows(size=16, stds=STDS)


def test_one_row_per_prior_and_level(rows: list[CorruptionShapedRow]) -> None:
    assert [(r.prior, r.corruption_std) for r in rows] == [
        (p, s) for p in ("stationary", "modulated") for s in STDS
    ]
    for r in rows:
        assert set(r.mse_db) == set(ESTIMATORS)
        assert 0.0 < r.band_energy < 1.0


def test_the_whole_observation_wins(rows: list[CorruptionShapedRow]) -> None:
    for r in rows:
        assert r.gain_db("posterior", "fill") > 0.1
        assert r.gain_db("posterior", "notch") > 0.1
        assert r.gain_db("posterior", "input") > 0.0
        # the one-call read gives the posterior mean up to its read level (second order)
        assert abs(r.gain_db("one_call", "posterior")) < 0.1
        assert r.mse_db["posterior"] <= r.mse_db["one_call"] + 1e-9


def test_the_fill_and_the_notch_ignore_the_in_band_observation(
    rows: list[CorruptionShapedRow],
) -> None:
    """The notch and the fill ignore the band's observation, so their MSE does not depend on the
    corruption level; the posterior mean's gain over them shrinks as the corruption grows."""
    for prior in ("stationary", "modulated"):
        weak, strong = (r for r in rows if r.prior == prior)
        for name in ("notch", "fill"):
            assert weak.mse_db[name] == pytest.approx(strong.mse_db[name], abs=1e-9)
        assert weak.gain_db("posterior", "fill") > strong.gain_db("posterior", "fill")
    stationary = [r for r in rows if r.prior == "stationary"]
    modulated = [r for r in rows if r.prior == "modulated"]
    for r in stationary:  # independent frequencies: the fill is the notch
        assert r.mse_db["fill"] == pytest.approx(r.mse_db["notch"], abs=1e-9)
    for r in modulated:  # correlated ones: the context predicts part of the band
        assert r.gain_db("fill", "notch") > 0.0


def test_the_table_has_a_line_per_row(rows: list[CorruptionShapedRow]) -> None:
    text = format_rows(rows)
    lines = text.splitlines()
    assert len(lines) == 2 + len(rows)
    assert all(line.count("|") == lines[0].count("|") for line in lines)
    assert f"{rows[0].gain_db('posterior', 'fill'):+.2f}" in lines[2]
