"""The network check of the corruption-shaped read (``sagd_core.bench.corruption_shaped_net``),
run short: a band model trained for a few steps on corrupted images only. Whatever the network's
quality, ``s`` is recovered from the corrupted images and SURE tracks the read's true MSE (Stein's
estimate is unbiased for any estimator); the reported figures in the issue come from
``run_network_check`` with its defaults."""

from __future__ import annotations

from pathlib import Path

import pytest

from sagd_core.bench.corruption_shaped_net import format_check, run_network_check


@pytest.mark.slow
def test_a_short_run_reports_consistent_figures(tmp_path: Path) -> None:
    check = run_network_check(
        tmp_path / "band", steps=30, count=400, held_out=64, excesses=(0.3, 3.0), fill_chains=1
    )
    assert check.estimated_std == pytest.approx(0.3, rel=0.2)
    assert set(check.mse_db) == {
        "input",
        "notch",
        "posterior (exact)",
        "one call (SURE choice)",
        "band fill",
    }
    exact = check.mse_db["posterior (exact)"]
    assert exact < min(check.mse_db["notch"], check.mse_db["input"])
    for excess in (0.3, 3.0):
        assert check.sure[excess] == pytest.approx(check.one_call[excess], abs=1.0)
    assert check.chosen_excess == min(check.sure, key=lambda k: check.sure[k])
    assert check.mse_db["one call (SURE choice)"] == check.one_call[check.chosen_excess]
    text = format_check(check)
    assert len(text.splitlines()) == 2 + len(check.mse_db)
