"""One band spec for a folder of images (``sagd analyze`` on a folder): the regions that enough
of the images' analyses agree on (:func:`combine_analyses`)."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from sagd_core.analysis.regions import DetectedRegion
from sagd_core.spectral.bands import BandSpec

if TYPE_CHECKING:
    from sagd_core.analysis.result import Analysis


def _same_region(a: dict[str, Any], b: dict[str, Any], tol: float) -> bool:
    if a["kind"] != b["kind"]:
        return False
    if a["kind"] == "notch":
        d1 = math.hypot(a["fy"] - b["fy"], a["fx"] - b["fx"])
        d2 = math.hypot(a["fy"] + b["fy"], a["fx"] + b["fx"])
        return min(d1, d2) <= max(a["radius"], b["radius"], tol)
    if a["kind"] == "wedge":
        d = abs((a["angle_deg"] - b["angle_deg"] + 90.0) % 180.0 - 90.0)
        return bool(d <= max(a["tolerance_deg"], b["tolerance_deg"]))
    return bool(a["low"] < b["high"] and b["low"] < a["high"])


def combine_analyses(
    analyses: list[Analysis], *, min_support: float = 0.5, max_regions: int = 8
) -> BandSpec | None:
    """One spec for a folder: regions found (by kind and position) in at least ``min_support``
    of the images, widened to cover every matching detection."""
    if not analyses:
        return None
    tol = max(1.0 / min(a.height, a.width) for a in analyses) * 2
    clusters: list[list[DetectedRegion]] = []
    for analysis in analyses:
        for r in analysis.regions:
            for cl in clusters:
                if _same_region(cl[0].region, r.region, tol):
                    cl.append(r)
                    break
            else:
                clusters.append([r])
    need = max(1, math.ceil(min_support * len(analyses)))
    regions = []
    for cl in sorted(clusters, key=lambda c: -len(c)):
        if len(cl) < need:
            continue
        best = dict(max(cl, key=lambda r: r.score_db).region)
        if best["kind"] == "annulus":
            best["low"] = min(r.region["low"] for r in cl)
            best["high"] = max(r.region["high"] for r in cl)
        elif best["kind"] == "wedge":
            best["tolerance_deg"] = max(r.region["tolerance_deg"] for r in cl)
            best["low"] = min(r.region["low"] for r in cl)
            best["high"] = max(r.region["high"] for r in cl)
        else:
            best["radius"] = max(r.region["radius"] for r in cl)
        regions.append(best)
    if not regions:
        return None
    return BandSpec.model_validate({"regions": regions[:max_regions]})


__all__ = ["combine_analyses"]
