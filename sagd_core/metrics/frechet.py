"""Fréchet distance in the feature space of a small digits classifier trained here (DESIGN.md §6:
offline we have no Inception weights, so FID's recipe runs on our own features).

The classifier (three convolutions, global average pooling, 64 features, linear head) is trained
on the clean ``digits`` training split at the requested image size with a fixed seed, in a few
seconds on CPU. It is kept in memory and, unless disabled, saved as safetensors in
``$SAGD_CACHE_DIR`` (default ``~/.cache/sagd``) together with its held-out accuracy; a cached file
that cannot be read is retrained, never trusted. Nothing is downloaded.

``FD = ‖μ_a − μ_b‖² + tr(Σ_a + Σ_b − 2 (Σ_a Σ_b)^{1/2})`` between Gaussian fits of the features.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
from scipy import linalg
from torch import nn

logger = logging.getLogger(__name__)

FEATURES = 64
TRAIN_STEPS = 250
SEED = 0
_VERSION = 1


class DigitsNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(1, 16, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(16, 32, 3, stride=2, padding=1),
            nn.ReLU(),
            nn.Conv2d(32, FEATURES, 3, stride=2, padding=1),
            nn.ReLU(),
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
        )
        self.head = nn.Linear(FEATURES, 10)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.body(x)
        return out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.head(self.features(x))
        return out


@dataclass(frozen=True)
class DigitsFeatures:
    """A trained feature extractor for ``image_size`` digits and its held-out accuracy."""

    net: DigitsNet
    image_size: int
    accuracy: float

    @torch.no_grad()
    def __call__(self, images: np.ndarray, batch: int = 512) -> np.ndarray:
        """``(N, 1|3, H, W)`` model-range images → ``(N, 64)`` features (RGB averaged to gray,
        resized bilinearly to the classifier's size when needed)."""
        x = torch.as_tensor(np.asarray(images, dtype=np.float32))
        if x.ndim != 4 or x.shape[1] not in (1, 3):
            raise ValueError(f"expected (N, 1|3, H, W) images, got {tuple(x.shape)}")
        x = x.mean(dim=1, keepdim=True)
        if tuple(x.shape[-2:]) != (self.image_size, self.image_size):
            x = nn.functional.interpolate(
                x, size=(self.image_size,) * 2, mode="bilinear", align_corners=False
            )
        return (
            torch.cat([self.net.features(x[i : i + batch]) for i in range(0, len(x), batch)])
            .double()
            .numpy()
        )


def _cache_dir() -> Path:
    return Path(os.environ.get("SAGD_CACHE_DIR", Path.home() / ".cache" / "sagd"))


def _train(image_size: int) -> DigitsFeatures:
    from sagd_core.data import load_builtin  # local: data pulls in scikit-learn

    train_x = torch.as_tensor(load_builtin("digits", image_size=image_size, split="train"))
    test_x = torch.as_tensor(load_builtin("digits", image_size=image_size, split="test"))
    train_y, test_y = _labels("train"), _labels("test")
    gen = torch.Generator().manual_seed(SEED)
    torch.manual_seed(SEED)
    net = DigitsNet()
    opt = torch.optim.Adam(net.parameters(), lr=3e-3)
    for _ in range(TRAIN_STEPS):
        idx = torch.randint(0, len(train_x), (64,), generator=gen)
        x = train_x[idx] + 0.05 * torch.randn(train_x[idx].shape, generator=gen)
        loss = nn.functional.cross_entropy(net(x), train_y[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
    net.eval().requires_grad_(False)
    with torch.no_grad():
        acc = float((net(test_x).argmax(1) == test_y).float().mean())
    logger.info("digits classifier %dpx trained: held-out accuracy %.3f", image_size, acc)
    return DigitsFeatures(net=net, image_size=image_size, accuracy=acc)


def _labels(split: str) -> torch.Tensor:
    """Labels in the order :func:`load_builtin` returns the split (seed 0 permutation)."""
    from sklearn.datasets import load_digits

    from sagd_core.data import split_indices

    target = load_digits().target
    idx = split_indices(len(target), split)  # type: ignore[arg-type]
    idx = idx[np.random.default_rng(0).permutation(len(idx))]
    return torch.as_tensor(target[idx], dtype=torch.long)


def _load_cached(path: Path, image_size: int) -> DigitsFeatures | None:
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    meta_path = path.with_suffix(".json")
    try:
        meta = json.loads(meta_path.read_text())
        if meta.get("version") != _VERSION or meta.get("image_size") != image_size:
            return None
        net = DigitsNet()
        net.load_state_dict(load_file(path))
        return DigitsFeatures(
            net=net.eval().requires_grad_(False),
            image_size=image_size,
            accuracy=float(meta["accuracy"]),
        )
    except (OSError, ValueError, KeyError, RuntimeError, SafetensorError) as exc:
        logger.info("no usable cached digits classifier at %s (%s)", path, exc)
        return None


def _save(path: Path, model: DigitsFeatures) -> None:
    from safetensors.torch import save_file

    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
        os.close(fd)
        save_file(dict(model.net.state_dict()), tmp)
        os.replace(tmp, path)
        meta = {"version": _VERSION, "image_size": model.image_size, "accuracy": model.accuracy}
        path.with_suffix(".json").write_text(json.dumps(meta))
    except OSError as exc:  # a read-only home is fine: we keep it in memory
        logger.info("could not cache the digits classifier: %s", exc)


@lru_cache(maxsize=4)
def digits_feature_extractor(
    image_size: int = 16, *, use_disk_cache: bool = True
) -> DigitsFeatures:
    """The (cached) digits classifier's feature extractor for ``image_size`` images."""
    path = _cache_dir() / f"digits_classifier_v{_VERSION}_{image_size}px.safetensors"
    if use_disk_cache:
        cached = _load_cached(path, image_size)
        if cached is not None:
            return cached
    model = _train(image_size)
    if use_disk_cache:
        _save(path, model)
    return model


def gaussian_frechet(
    mu_a: np.ndarray, cov_a: np.ndarray, mu_b: np.ndarray, cov_b: np.ndarray
) -> float:
    """Fréchet distance between two Gaussians. ReLU features can be constant (singular
    covariances), so both are regularised by ``1e-6 I`` before the matrix square root, as
    pytorch-fid does when the product is singular."""
    eps = np.eye(cov_a.shape[0]) * 1e-6
    covmean = np.real(linalg.sqrtm((cov_a + eps) @ (cov_b + eps)))
    diff = mu_a - mu_b
    return float(diff @ diff + np.trace(cov_a) + np.trace(cov_b) - 2.0 * np.trace(covmean))


def frechet_distance(a: np.ndarray, b: np.ndarray, *, image_size: int = 16) -> float:
    """Fréchet distance between two image sets ``(N, C, H, W)`` (model range) in the digits
    classifier's feature space. Use a few hundred images per set at least."""
    extractor = digits_feature_extractor(image_size)
    fa, fb = extractor(a), extractor(b)
    if len(fa) < 2 or len(fb) < 2:
        raise ValueError("need at least 2 images per set")
    return gaussian_frechet(
        fa.mean(0), np.cov(fa, rowvar=False), fb.mean(0), np.cov(fb, rowvar=False)
    )


__all__ = [
    "DigitsFeatures",
    "DigitsNet",
    "digits_feature_extractor",
    "frechet_distance",
    "gaussian_frechet",
]
