"""The ring and sector medians of band detection come from one sort
(``spectrum_stats.group_medians``): the same values as a median per group, and excluded bins
(strong peaks) left out unless too few would remain."""

from __future__ import annotations

import numpy as np

from sagd_core.analysis.spectrum_stats import group_medians, masked_group_medians


def test_group_medians_are_the_medians_of_each_group() -> None:
    rng = np.random.default_rng(0)
    keys = rng.integers(0, 40, 5000)
    values = rng.standard_normal(5000) * 7.0
    medians, counts = group_medians(keys, values, 42)
    for k in range(42):
        chosen = values[keys == k]
        assert counts[k] == chosen.size
        if chosen.size:
            assert medians[k] == np.median(chosen)
        else:
            assert np.isnan(medians[k])


def test_excluded_entries_are_left_out_unless_too_few_remain() -> None:
    keys = np.repeat([0, 1], 16)
    values = np.concatenate([np.arange(16.0), np.arange(16.0)])
    exclude = np.zeros(32, dtype=bool)
    exclude[8:16] = True  # the top half of group 0
    exclude[16:31] = True  # all but one of group 1: too few to tell its level
    medians, counts = masked_group_medians(keys, values, 2, exclude)
    assert list(counts) == [16, 16]
    assert medians[0] == 3.5  # the median of 0..7
    assert medians[1] == 7.5  # every entry
