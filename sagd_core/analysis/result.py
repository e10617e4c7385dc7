"""What ``sagd analyze`` returns for one image: the detected regions, those dropped, and the
radial power-law fit behind them (:class:`Analysis`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from sagd_core.analysis.regions import DetectedRegion, log_to_db
from sagd_core.analysis.spectrum_stats import PowerLawFit
from sagd_core.spectral.bands import BandSpec


@dataclass
class Analysis:
    """What :func:`analyze_image` found."""

    height: int
    width: int
    fit: PowerLawFit
    radii: np.ndarray
    profile: np.ndarray  # median log power per ring
    regions: list[DetectedRegion] = field(default_factory=list)
    dropped: list[DetectedRegion] = field(default_factory=list)

    @property
    def spec(self) -> BandSpec | None:
        if not self.regions:
            return None
        return BandSpec.model_validate({"regions": [r.region for r in self.regions]})

    def to_dict(self) -> dict[str, Any]:
        spec = self.spec
        return {
            "image": {"height": self.height, "width": self.width},
            "band_spec": spec.model_dump(mode="json") if spec is not None else None,
            "regions": [
                {"region": r.region, "score_db": r.score_db, "source": r.source}
                for r in self.regions
            ],
            "dropped": [
                {"region": r.region, "score_db": r.score_db, "source": r.source}
                for r in self.dropped
            ],
            "power_law": {
                "slope": self.fit.slope,
                "intercept": self.fit.intercept,
                "r_low": self.fit.r_low,
                "r_high": self.fit.r_high,
                "scatter_db": log_to_db(self.fit.scatter),
            },
            "radial_profile": {
                "radii": [round(float(r), 6) for r in self.radii],
                "log_power": [round(float(p), 4) for p in self.profile],
                "log_trend": [round(float(t), 4) for t in self.fit.log_trend(self.radii)],
            },
        }


__all__ = ["Analysis"]
