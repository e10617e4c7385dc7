"""``sagd bench latency`` (sagd_core.bench.latency)."""

from __future__ import annotations

import argparse

import pytest
import torch

from sagd_core.bench.latency import TimedNet, band_model, markdown, measure_latency
from sagd_core.cli import bench_latency


def test_measure_latency_counts_the_network_calls_of_the_fill() -> None:
    result = measure_latency(size=32, steps=10, rounds=1)
    # 10 leading-spaced levels, the posterior-mean fill stops at the first with ᾱ ≥ 0.1.
    assert result.network_calls == 6
    assert result.steps == 10 and result.size == 32 and result.threads == torch.get_num_threads()
    assert 0 < result.network_in_run_s < result.total_s
    assert result.total_s >= result.total_min_s > 0
    assert result.in_run_overhead > 0
    assert result.overhead == pytest.approx(result.total_s / (6 * result.bare_forward_s) - 1.0)
    table = markdown([result])
    assert "| cpu-tiny | 32 | 10 | mean | cpu |" in table
    assert set(result.to_dict()) >= {"overhead", "in_run_overhead", "cpu_overhead"}


def test_default_steps_come_from_the_request() -> None:
    from sagd_core.restore.request import RestoreRequest

    result = measure_latency(size=16, rounds=1, estimator="sample")
    default = RestoreRequest.model_fields["steps"].default
    assert result.steps == default and result.network_calls == default


def test_timed_net_records_every_call() -> None:
    model = band_model("cpu-tiny", 3, torch.device("cpu"))
    timed = TimedNet(model.net)
    with torch.no_grad():
        out = timed(torch.randn(1, 3, 16, 16), torch.tensor([3.0]))
        timed(torch.randn(1, 3, 16, 16), torch.tensor([3.0]))
    assert out.shape == (1, 3, 16, 16) and torch.count_nonzero(out) > 0
    assert len(timed.times) == 2 and all(t > 0 for t in timed.times)


def test_bench_latency_cli(capsys: pytest.CaptureFixture[str]) -> None:
    parser = argparse.ArgumentParser()
    bench_latency.register_bench(parser.add_subparsers())
    threads = torch.get_num_threads()
    try:
        args = parser.parse_args(
            ["latency", "--size", "16", "--steps", "4", "--rounds", "1", "--threads", "1"]
        )
        assert args.func(args) == 0
    finally:
        torch.set_num_threads(threads)
    out = capsys.readouterr().out
    assert "| cpu-tiny | 16 | 4 | mean |" in out
    args = parser.parse_args(["latency", "--size", "8"])
    with pytest.raises(Exception, match="--size"):
        args.func(args)
