"""Stripes as a 1-D profile: per-column (or per-row) offsets estimated robustly, subtracted.

The profile of column stripes is what each column has that its horizontal neighbours lack:
``s[x] = median_y (y − median_x(y − s))[y, x]``, iterated a few times (the horizontal median
filter ignores a single stripe; the vertical median ignores image edges that cross a few rows).
The profile is a field constant along the stripes, so its spectrum lies on one axis; only the
part inside the declared wedge (its radial range) is subtracted, the rest of the axis is left
to the image.
"""

from __future__ import annotations

import numpy as np

from sagd_core.restore.methods.classical.kinds import StripeAxis

#: Width of the median filter across the stripes (pixels) and estimation passes: tuned on the
#: ``natural`` training photos (wider filters ignore the stripes better, more passes let image
#: content creep into the profile).
FILTER_WIDTH = 25
PASSES = 3
#: The profile is a median along the stripes; this many evenly spaced lines estimate it.
MAX_LINES = 128


def stripe_profile(y: np.ndarray, axis: StripeAxis) -> np.ndarray:
    """The stripe field of ``y`` ``(C, H, W)``: ``(C, H, W)``, constant along the stripes."""
    from scipy import ndimage  # imported on use: start-up of the other paths

    full = y if axis == "columns" else np.swapaxes(y, 1, 2)
    lines = np.unique(np.linspace(0, full.shape[1] - 1, min(full.shape[1], MAX_LINES)).astype(int))
    x = full[:, lines]
    profile = np.zeros((x.shape[0], x.shape[2]))
    width = min(FILTER_WIDTH, x.shape[2] - (1 - x.shape[2] % 2))
    for _ in range(PASSES):
        smooth = ndimage.median_filter(x - profile[:, None, :], size=(1, 1, width), mode="reflect")
        profile = np.median(x - smooth, axis=1)
        profile -= profile.mean(axis=1, keepdims=True)
    field = np.broadcast_to(profile[:, None, :], full.shape)
    return np.ascontiguousarray(field if axis == "columns" else np.swapaxes(field, 1, 2))


__all__ = ["FILTER_WIDTH", "PASSES", "stripe_profile"]
