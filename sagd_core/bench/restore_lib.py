"""``sagd bench restore``: train the models of each corruption type, restore held-out images with
every method, and measure quality, detection and latency (the CLI only orchestrates).

Settings: dataset × corruption × broadband noise (std 0 or 0.05 on [−1, 1]). Methods: identity,
the best notch (roll-off chosen per setting by mean PSNR, an oracle choice that favours the
baseline), SDEdit with an isotropic model trained on the corrupted images, DDNM with a model
trained on clean images (reference), and SAGD with omission and band models trained on the
corrupted images only.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from sagd_core.calibration.denoise import calibrate_denoiser
from sagd_core.calibration.fill import CORRUPTION_SEED, calibrate_fill_gain
from sagd_core.data import apply_corruption, load_builtin, parse_corruption
from sagd_core.metrics import band_metrics
from sagd_core.restore.engine import restore
from sagd_core.restore.methods.baselines import sdedit
from sagd_core.restore.methods.notch import ROLLOFFS
from sagd_core.restore.models import LoadedModel, ModelSet, load_model
from sagd_core.restore.request import RestoreRequest
from sagd_core.spectral import BandSpec
from sagd_core.training import TrainProgress, train
from sagd_core.training.recipes import NAMED_CORRUPTIONS, ROLES, corruption_recipes

logger = logging.getLogger(__name__)

METHODS = (
    "identity",
    "best notch",
    "SDEdit (corrupted-trained)",
    "DDNM (clean-trained)",
    "SAGD (corrupted-trained)",
)


@dataclass(frozen=True)
class RestorePreset:
    name: str
    datasets: tuple[str, ...]
    image_size: int
    corruptions: tuple[tuple[str, dict[str, Any]], ...]
    noise_levels: tuple[float, ...]
    train_steps: int
    batch_size: int
    unet: str
    test_images: int
    steps: int
    samples: int
    seeds: tuple[int, ...]
    detection_images: int
    #: Training steps where they differ from ``train_steps``, keyed ``"dataset/role"`` or
    #: ``"role"`` (the first match wins).
    role_steps: tuple[tuple[str, int], ...] = ()
    #: Held-out corrupted training images that calibrate the band model's fill (per setting).
    calibration_images: int = 64

    def steps_for(self, role: str, dataset: str = "") -> int:
        steps = dict(self.role_steps)
        return steps.get(f"{dataset}/{role}", steps.get(role, self.train_steps))


_BAND = {"kind": "band_noise", "gamma": 1.0}
PRESETS: dict[str, RestorePreset] = {
    # CPU, under 20 minutes on 2 cores (measured at 0.9× the work of the former digits-only
    # preset, which took 19 min): every dataset at 16×16 (the stripes' frequencies lie on the
    # 16-point grid), 16 test images. Training steps go where the calibration on held-out
    # *training* images showed they pay: digits' band models (the fill) get 800, its omission
    # and standard models 300; on lfw (64 training faces) and natural (band content ~10⁻⁴ of the
    # corruption's) the band model's fill calibrates to gain 0 at 300 and 500 steps alike, so
    # their band models get 100 steps and their other models 200.
    "quick": RestorePreset(
        name="quick",
        datasets=("digits", "lfw", "natural"),
        image_size=16,
        corruptions=(
            ("band [0.15,0.30)", {**_BAND, "low": 0.15, "high": 0.3}),
            ("periodic stripes", NAMED_CORRUPTIONS["periodic"]),
            ("oriented stripes", NAMED_CORRUPTIONS["oriented"]),
        ),
        noise_levels=(0.0, 0.05),
        train_steps=200,
        batch_size=32,
        unet="cpu-tiny",
        test_images=16,
        steps=25,
        samples=4,
        seeds=(0,),
        detection_images=8,
        role_steps=(
            ("digits/band", 800),
            ("digits/omission", 300),
            ("digits/standard", 300),
            ("digits/full", 300),
            ("band", 100),
        ),
    ),
    "full": RestorePreset(
        name="full",
        datasets=("digits", "lfw", "natural"),
        image_size=32,
        corruptions=(
            ("band [0.10,0.20)", {**_BAND, "low": 0.1, "high": 0.2}),
            ("band [0.20,0.30)", {**_BAND, "low": 0.2, "high": 0.3}),
            ("band [0.30,0.45)", {**_BAND, "low": 0.3, "high": 0.45}),
            ("periodic stripes", {**NAMED_CORRUPTIONS["periodic"], "notch_radius": 0.03}),
            ("oriented stripes", {**NAMED_CORRUPTIONS["oriented"], "tolerance_deg": 5.0}),
        ),
        noise_levels=(0.0, 0.05),
        train_steps=3000,
        batch_size=64,
        unet="cpu-small",
        test_images=100,
        steps=50,
        samples=8,
        seeds=(0, 1, 2),
        detection_images=24,
    ),
}


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


@dataclass
class TrainedSet:
    models: dict[str, LoadedModel]
    seconds: dict[str, float] = field(default_factory=dict)
    final_loss: dict[str, float] = field(default_factory=dict)
    calibration: dict[str, Any] = field(default_factory=dict)
    denoise_calibration: list[dict[str, Any]] = field(default_factory=list)


def split_train(preset: RestorePreset, dataset: str) -> tuple[int | None, np.ndarray]:
    """``(train_count, calibration images)``: digits/lfw keep their last training images out;
    ``natural`` draws fresh patches (other positions in the same training photos)."""
    if dataset == "natural":
        held = load_builtin(
            dataset,
            image_size=preset.image_size,
            split="train",
            count=preset.calibration_images,
            seed=99,
        )
        return None, held
    full = load_builtin(dataset, image_size=preset.image_size, split="train")
    n_cal = min(preset.calibration_images, len(full) // 5)
    return len(full) - n_cal, full[len(full) - n_cal :]


def train_models(
    preset: RestorePreset,
    dataset: str,
    label: str,
    corruption: dict[str, Any],
    root: Path,
    *,
    device: str,
    on_progress: Callable[[str, TrainProgress], None] | None = None,
) -> TrainedSet:
    """Train (or reuse, when ``root`` already holds them) the four models of one setting, then
    calibrate, on held-out corrupted training images, the band model's fill and the omission
    model's denoising at each broadband noise level of the preset."""
    train_count, held_out = split_train(preset, dataset)
    recipes = {
        role: corruption_recipes(
            corruption,
            source=dataset,
            image_size=preset.image_size,
            steps=preset.steps_for(role, dataset),
            batch_size=preset.batch_size,
            unet=preset.unet,
            device=device,
            train_count=train_count,
            roles=(role,),
        )[role]
        for role in ROLES
    }
    out = TrainedSet(models={})
    for role, config in recipes.items():
        # The clean-trained model does not depend on the corruption: share it per dataset.
        where = root / dataset / ("full" if role == "full" else f"{slug(label)}-{role}")
        t0 = time.perf_counter()
        if role == "full" and (where / "config.json").exists():
            pass
        else:

            def cb(p: TrainProgress, role: str = role) -> None:
                if on_progress is not None:
                    on_progress(f"{dataset}/{label}/{role}", p)

            result = train(config, where, progress=cb)
            out.final_loss[role] = result.final_loss
        out.seconds[role] = time.perf_counter() - t0
        out.models[role] = load_model(where, device=device)
    band_dir = root / dataset / f"{slug(label)}-band"
    calib_images = apply_corruption(held_out, parse_corruption(corruption), seed=CORRUPTION_SEED)
    t0 = time.perf_counter()
    out.calibration = calibrate_fill_gain(
        out.models["band"],
        calib_images.astype(np.float64),
        recipes["band"].band or parse_corruption(corruption).band_spec(),
        steps=preset.steps,
        samples=preset.samples,
        directory=band_dir,
        device=device,
    )
    spec = recipes["omission"].band or parse_corruption(corruption).band_spec()
    out.denoise_calibration = [
        calibrate_denoiser(
            out.models["omission"],
            calib_images.astype(np.float64),
            spec,
            s,
            steps=preset.steps,
            device=device,
        )
        for s in preset.noise_levels
        if s > 0
    ]
    out.seconds["calibration"] = time.perf_counter() - t0
    return out


def test_set(
    preset: RestorePreset, dataset: str, corruption: dict[str, Any], noise_std: float
) -> tuple[np.ndarray, np.ndarray]:
    """Held-out clean images and their corrupted (+ broadband noise) versions, model range."""
    clean = load_builtin(
        dataset,
        image_size=preset.image_size,
        split="test",
        count=None if dataset != "natural" else preset.test_images,
    )
    clean = clean[: preset.test_images]  # lfw's test split holds 20 faces
    corrupted = apply_corruption(clean, parse_corruption(corruption), seed=12345)
    if noise_std > 0:
        rng = np.random.default_rng(54321)
        corrupted = corrupted + noise_std * rng.standard_normal(corrupted.shape)
    return clean.astype(np.float64), corrupted.astype(np.float64)


def _unit_hwc(chw: np.ndarray) -> np.ndarray:
    return np.transpose((chw + 1.0) / 2.0, (1, 2, 0))


def _model_chw(res_unclipped: np.ndarray) -> np.ndarray:
    arr = res_unclipped if res_unclipped.ndim == 3 else res_unclipped[:, :, None]
    return np.transpose(2.0 * arr.astype(np.float64) - 1.0, (2, 0, 1))


@dataclass
class SettingResult:
    metrics: dict[str, dict[str, float]]  # method -> metric -> value (mean over seeds)
    spread: dict[str, dict[str, float]]  # method -> metric -> std over seeds
    seconds_per_image: dict[str, float]
    notch_rolloff: str
    examples: dict[str, np.ndarray]  # method -> (N, C, H, W) outputs of the first seed


def evaluate_setting(
    preset: RestorePreset,
    models: dict[str, LoadedModel],
    spec: BandSpec,
    clean: np.ndarray,
    corrupted: np.ndarray,
    noise_std: float,
    *,
    device: str,
    tick: Callable[[], None] | None = None,
) -> SettingResult:
    """Restore every test image with every method and seed; metrics against the clean images."""
    per_seed: dict[str, list[dict[str, float]]] = {m: [] for m in METHODS}
    seconds: dict[str, float] = dict.fromkeys(METHODS, 0.0)
    examples: dict[str, np.ndarray] = {}
    rolloff_psnr: dict[str, float] = {}
    notch_outputs: dict[str, np.ndarray] = {}
    for r in ROLLOFFS:
        t0 = time.perf_counter()
        notched = np.stack(
            [
                _model_chw(
                    restore(
                        _unit_hwc(y), RestoreRequest(band=spec, method="notch", notch_rolloff=r)
                    ).unclipped
                )
                for y in corrupted
            ]
        )
        seconds["best notch"] = (time.perf_counter() - t0) / len(corrupted)
        notch_outputs[r] = notched
        rolloff_psnr[r] = band_metrics(notched, clean, spec).psnr
    best = max(rolloff_psnr, key=lambda r: rolloff_psnr[r])
    sagd_models = ModelSet(omission=models["omission"], band=models["band"])

    def run_method(method: str, y: np.ndarray, seed: int) -> np.ndarray:
        if method == "SDEdit (corrupted-trained)":
            return sdedit(
                models["standard"],
                y,
                spec,
                steps=preset.steps,
                seed=seed,
                samples=preset.samples,
                input_noise_std=noise_std,
            )
        sagd = method == "SAGD (corrupted-trained)"
        request = RestoreRequest(
            band=spec,
            method="sagd" if sagd else "ddnm",
            steps=preset.steps,
            seed=seed,
            samples=preset.samples,
            input_noise_std=noise_std,
        )
        chosen = sagd_models if sagd else ModelSet(full=models["full"])
        return _model_chw(restore(_unit_hwc(y), request, chosen, device=device).unclipped)

    for k, seed in enumerate(preset.seeds):
        outputs: dict[str, np.ndarray] = {"identity": corrupted, "best notch": notch_outputs[best]}
        for method in METHODS[2:]:
            t0 = time.perf_counter()
            outs: list[np.ndarray] = []
            for y in corrupted:
                outs.append(run_method(method, y, seed))
                if tick is not None:
                    tick()
            outputs[method] = np.stack(outs)
            seconds[method] = (time.perf_counter() - t0) / len(corrupted)
        for method in METHODS:
            per_seed[method].append(band_metrics(outputs[method], clean, spec).as_dict())
        if k == 0:
            examples = outputs
    metrics = {
        m: {key: float(np.mean([d[key] for d in v])) for key in v[0]} for m, v in per_seed.items()
    }
    spread = {
        m: {key: float(np.std([d[key] for d in v])) for key in v[0]} for m, v in per_seed.items()
    }
    return SettingResult(
        metrics=metrics,
        spread=spread,
        seconds_per_image=seconds,
        notch_rolloff=best,
        examples=examples,
    )


def measure_latency(
    unet: str, size: int, steps: int, *, device: str, repeats: int = 2
) -> dict[str, Any]:
    """Seconds for a ``size²`` RGB SAGD band fill at ``steps`` (untrained weights: the cost does
    not depend on training) with each estimator, the notch alone, and one bare network call.
    Overhead = total / (network evaluations made × bare call) − 1."""
    from sagd_core.models import UNet, unet_preset
    from sagd_core.spectral import NoiseSpec, parse_band_spec
    from sagd_core.training.checkpoints import TrainedModel
    from sagd_core.training.config import TrainConfig

    band = parse_band_spec({"regions": [{"kind": "annulus", "low": 0.15, "high": 0.3}]})
    config = TrainConfig(
        model=unet_preset(unet, 3), noise=NoiseSpec(kind="band", band=band), band=band, role="band"
    )
    dev = torch.device(device)
    net = UNet(config.model).to(dev).eval().requires_grad_(False)
    model = TrainedModel(
        net=net, config=config, schedule=config.schedule.build(), meta={}, device=dev
    )
    image = np.random.default_rng(0).random((size, size, 3)).astype(np.float32)
    x = torch.randn(1, 3, size, size, device=dev)
    t = torch.full((1,), 500.0, device=dev)

    def best_of(fn: Callable[[], object]) -> float:
        times = []
        for _ in range(repeats):
            if dev.type == "cuda":
                torch.cuda.synchronize()
            t0 = time.perf_counter()
            fn()
            if dev.type == "cuda":
                torch.cuda.synchronize()
            times.append(time.perf_counter() - t0)
        return min(times)

    with torch.no_grad():
        net(x, t)  # warm-up
        forward = best_of(lambda: net(x, t))
    out: dict[str, Any] = {"bare_forward_s": forward, "steps": steps, "size": size}
    for estimator in ("mean", "sample"):
        req = RestoreRequest(band=band, method="sagd", steps=steps, estimator=estimator)
        report: dict[str, Any] = {}

        def once(req: RestoreRequest = req, report: dict[str, Any] = report) -> None:
            report.update(
                restore(
                    image, req, ModelSet(band=model), device=device, tile_size=max(size, 256)
                ).report
            )

        total = best_of(once)
        evals = int(report["details"]["fill"]["steps"])
        out[estimator] = {
            "total_s": total,
            "network_calls": evals,
            "overhead": total / (evals * forward) - 1.0,
        }
    out["notch_s"] = best_of(lambda: restore(image, RestoreRequest(band=band, method="notch")))
    return out


__all__ = [
    "METHODS",
    "PRESETS",
    "RestorePreset",
    "SettingResult",
    "TrainedSet",
    "evaluate_setting",
    "measure_latency",
    "slug",
    "test_set",
    "train_models",
]
