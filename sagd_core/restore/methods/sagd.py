"""SAGD restoration: selective omission for the trusted bands, a band model for the band
(DESIGN.md §4).

1. **Trusted bands.** With no declared input noise they are returned exactly (§4.1). With noise
   of std ``s`` and an omission model they are denoised (§4.2): the reverse process starts at the
   first training time ``t*`` whose per-frequency model noise ``(1−ᾱ)/ᾱ · w²`` reaches ``s²`` on
   every trusted bin, from ``x_{t*} = √ᾱ* P y + F⁻¹[√max((1−ᾱ*) w² − ᾱ* s², 0) F ξ]`` (the top-up
   makes the noise exactly the model's ``(1−ᾱ*) Σ_w`` when ``w`` is not flat), with the band kept
   at 0 (``P = F⁻¹ diag(1−M) F`` applied to every ``x̂₀``). With ``estimator="mean"`` the
   denoised bands are Tweedie's posterior mean ``E[x₀ | x_{t*}]``, one network call: the MMSE
   estimate (best PSNR, DESIGN.md §4.4); with ``"sample"`` each sample runs the reverse chain.
   If the omission model carries a denoising blend calibrated at this noise level
   (:mod:`denoise_calibration`), the posterior mean is blended per frequency ring with the input.
2. **The band.** An omission model cannot fill it (its score has no component there, §4.2). A band
   model (forward noise only in the band, ``w = M``) trained on the corrupted images can (§4.3):
   its trusted bins carry no noise at any time, so it is a conditional model of the band given the
   rest, and sampling from ``x_T = √ᾱ_T P z + √(1−ᾱ_T) ε_band`` while replacing the trusted part
   of every ``x̂₀`` by that of ``z`` (the image or its denoised version) is exact conditioning.
   Without a band model the band is omitted (set to zero: a hard notch), and the report's
   warnings say so.
   With ``estimator="mean"`` the band is the posterior mean ``E[x'_B | x_notB]``, which for a
   model trained on corrupted images is the clean ``E[x_B | x_notB]`` (zero-mean corruption,
   §4.3) while any single sample carries a fresh draw of the corruption. It is estimated by
   Rao–Blackwellisation: ``E[x'_B | x_notB] = E[E[x'₀ | x_t] | x_notB]``, so each of the K chains
   stops at the first step whose ``ᾱ ≥`` :data:`FILL_MEAN_ALPHA_BAR` (or at the read level
   calibrated for the model, :mod:`calibration`) and contributes its Tweedie ``x̂₀``; the
   chains' average has far less variance than the average of finished samples and costs fewer
   steps (earlier steps amplify model error by ``1/√ᾱ``, later ones keep more sampling noise;
   which wins depends on the model, hence the calibrated level). If the band model carries a
   calibrated ``fill_gain`` (a Noise2Noise shrinkage estimated on held-out corrupted images,
   :mod:`calibration`) the fill is scaled by it.
   The calibration also records what the corrupted images say about the corruption
   (:mod:`band_prior`): the corruption-to-noise ratio ρ, with which each Tweedie read is
   turned into the *clean* posterior mean (a corrupted-data model's x̂₀ also returns part of the
   chain's band noise, which looks like the corruption), and the constant-magnitude bins of
   random-phase periodic interference, where the component of the clean band along the
   corruption's direction is recovered from its known magnitude.
   **The one-call read.** A band model trained on band-limited-noise-corrupted images with forward
   noise of the corruption's shape (:func:`~corruption_shaped.corruption_shaped_reason`) is a
   clean-data model above the corruption level: with ``estimator="mean"``, no declared input noise
   and only noise-like regions, the band is its clean posterior mean from the whole observation,
   one network call per tile (:func:`~corruption_shaped.one_call_clean_mean`), the corruption std
   from the calibration or estimated from the image, κ from the calibration at this size.
3. **Whole image.** Tiles are blended, then ``x̂ = F⁻¹[(1−M) F z + M F x̃]`` is applied with the
   mask of the whole image, so out-of-band exactness holds for any tiling (§4.5).
4. **The guard: a learned fill is never trusted blindly.** The classical tier restores the image
   too (the fallback), and per region the learned estimate is kept only if its error is smaller;
   otherwise the classical estimate replaces it there, with a warning naming both errors. The
   one-call read (band noise, no declared input noise) is checked on recorrupted copies of the
   image itself (:func:`~learned_guard.recorrupted_check`). The sampled fill is checked on a
   probe image made from the classical result by decimation so that the band holds known clean
   content (:func:`~classical.guard.scaled_probe`), with noise at the level measured in each
   region added there, restored by both. A fill calibration measured at another size than the
   network's (or that did not record its size) is not trusted: the fill's gain is fitted on
   the probe instead (calibration on the spot); when no probe fits, an uncalibrated learned
   fill is not used at all (the classical estimate, with a warning) and a calibrated one is
   kept unchecked (with a warning). A model marked
   :data:`RAW_FILL` (the fill calibration's own runs, tests and benchmarks of the fill itself)
   skips the guard and the one-call read.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np
import torch

from sagd_core.restore.fourier import apply_gain, irfft2, merge_bands, rfft2
from sagd_core.restore.methods.band_prior import clean_tweedie, project_magnitude
from sagd_core.restore.methods.chains import (
    MEAN_ALPHA_BAR,
    generator_for,
    mask_on,
    require_support,
    run_chain,
)
from sagd_core.restore.methods.classical import plan_regions
from sagd_core.restore.methods.corruption_shaped import (
    ReadSetting,
    corruption_shaped_reason,
    flat_in_band,
    one_call_clean_mean,
    read_setting,
)
from sagd_core.restore.methods.denoise_blend import apply_blend, find_calibration
from sagd_core.restore.methods.learned_guard import (
    GuardCheck,
    apply_check,
    probe_check,
    recorrupted_check,
)
from sagd_core.restore.models import LoadedModel, ModelSet, RolePlans
from sagd_core.restore.progress import Progress, ProgressFn
from sagd_core.restore.report import BandAction, MethodOutcome
from sagd_core.restore.tiling import run_tiled, tile_grid, tile_shape
from sagd_core.samplers.common import predict_x0
from sagd_core.schedules import SamplingPlan
from sagd_core.spectral.bands import BandSpec
from sagd_core.spectral.masks import band_mask
from sagd_core.training.checkpoints import TrainedModel

if TYPE_CHECKING:
    from sagd_core.restore.request import RestoreRequest


def denoise_plan(
    model: LoadedModel, plan: SamplingPlan, spec: BandSpec, h: int, w: int, noise_std: float
) -> tuple[SamplingPlan, bool]:
    """The omission model's ``plan`` started at ``t*`` (see module docstring, point 1) at tile
    size ``h × w``: the first training time whose model noise ``(1−ᾱ)/ᾱ · w²`` reaches ``s²`` on
    every trusted bin, and whether one does (else the chain starts at the last time)."""
    trusted = band_mask(spec, h, w) < 1.0
    weights = model.noise_op(h, w).weights.cpu().numpy()
    support = trusted & (weights > 0)
    w2_min = float((weights[support] ** 2).min()) if support.any() else 1.0
    t_star, ok = model.schedule.first_time_at(noise_std**2, weight=w2_min)
    return plan.started_at(t_star), ok


def denoise_tile(
    model: LoadedModel,
    y: torch.Tensor,
    spec: BandSpec,
    plan: SamplingPlan,
    *,
    noise_std: float,
    generator: torch.Generator,
    progress: Progress,
    posterior_mean: bool = False,
) -> torch.Tensor:
    """Denoise the trusted bands of one tile ``(K, C, h, w)``; the band comes back as 0.

    ``posterior_mean``: return Tweedie's ``E[x₀ | x_{t*}]`` after one network call instead of
    running the chain."""
    h, w = y.shape[-2:]
    mask_np = band_mask(spec, h, w)
    noise_op = require_support(
        model, (mask_np == 0).astype(np.float64), h, w, role="omission", where="the trusted bands"
    )
    keep = (1.0 - mask_on(spec, h, w, y.device)).to(torch.float32)
    a = float(plan.alpha_bars[0])
    w2 = noise_op.power_spectrum().to(torch.float32)
    top_up = ((1.0 - a) * w2 - a * noise_std**2).clamp_min(0.0).sqrt() * (w2 > 0)
    xi = torch.randn(tuple(y.shape), generator=generator, device=y.device)
    x_start = math.sqrt(a) * apply_gain(y.to(torch.float32), keep) + irfft2(
        rfft2(xi) * top_up, h, w
    )

    def keep_band_at_zero(x0: torch.Tensor, alpha_bar: float) -> torch.Tensor:
        del alpha_bar
        return apply_gain(x0, keep)

    if posterior_mean:
        t = torch.full((y.shape[0],), float(plan.timesteps[0]), device=y.device)
        eps = model.eps_predictor(noise_op)(x_start, t)
        progress.advance()
        return keep_band_at_zero(predict_x0(x_start, eps, a), a)
    return run_chain(
        model,
        plan,
        noise_op,
        x_start,
        generator=generator,
        x0_transform=keep_band_at_zero,
        progress=progress,
    )


#: Where the fill's posterior-mean estimate is read by default (module docstring, point 2).
FILL_MEAN_ALPHA_BAR = MEAN_ALPHA_BAR


def fill_plan(
    plan: SamplingPlan, posterior_mean: bool, read_alpha_bar: float | None = None
) -> SamplingPlan:
    """The fill chain's part of the band model's ``plan``: all of it for samples; for the
    posterior mean it ends at the first step with ``ᾱ ≥ FILL_MEAN_ALPHA_BAR``, or, with a
    ``read_alpha_bar`` above that, at that level (the plan's levels below the cut, then the read:
    :meth:`SamplingPlan.read_at`, as many network calls as the default read)."""
    if not posterior_mean:
        return plan
    if read_alpha_bar is not None and read_alpha_bar > FILL_MEAN_ALPHA_BAR:
        plan = plan.read_at(read_alpha_bar, cut=FILL_MEAN_ALPHA_BAR)
    return plan.truncated(FILL_MEAN_ALPHA_BAR)


def fill_read_level(model: LoadedModel) -> float:
    """The calibrated read level ``ᾱ`` of the band model's posterior-mean fill
    (:mod:`calibration`; :data:`FILL_MEAN_ALPHA_BAR` when uncalibrated or calibrated before the
    read level was)."""
    calib = model.meta.get("fill_calibration")
    read = calib.get("read_alpha_bar") if isinstance(calib, dict) else None
    return FILL_MEAN_ALPHA_BAR if read is None else float(read)


def fill_gain(model: LoadedModel) -> float:
    """The calibrated fill gain stored with the band model (1 when uncalibrated)."""
    calib = model.meta.get("fill_calibration")
    return float(calib["gain"]) if isinstance(calib, dict) and "gain" in calib else 1.0


def fill_tile(
    model: LoadedModel,
    z: torch.Tensor,
    spec: BandSpec,
    plan: SamplingPlan,
    *,
    generator: torch.Generator,
    progress: Progress,
    posterior_mean: bool = False,
) -> torch.Tensor:
    """Fill the band of one tile ``(K, C, h, w)`` conditioned on its trusted part: K posterior
    samples, or with ``posterior_mean`` (and a plan from :func:`fill_plan`) K Tweedie
    estimates of the posterior mean."""
    h, w = z.shape[-2:]
    noise_op = require_support(model, band_mask(spec, h, w), h, w, role="band", where="the band")
    mask = mask_on(spec, h, w, z.device).to(torch.float32)
    z32 = z.to(torch.float32)
    a_top = float(plan.alpha_bars[0])
    eps = noise_op.sample(tuple(z.shape), generator=generator)
    x_start = math.sqrt(a_top) * apply_gain(z32, 1.0 - mask) + math.sqrt(1.0 - a_top) * eps

    def replace_trusted(x0: torch.Tensor, alpha_bar: float) -> torch.Tensor:
        del alpha_bar
        return merge_bands(z32, x0, mask)

    if not posterior_mean:
        return run_chain(
            model,
            plan,
            noise_op,
            x_start,
            generator=generator,
            x0_transform=replace_trusted,
            progress=progress,
        )
    # Run to the read step, then read its x̂₀ with the corrupted-data correction (band_prior).
    x_t = x_start
    if len(plan) > 1:
        x_t = run_chain(
            model,
            plan.head(),
            noise_op,
            x_start,
            generator=generator,
            x0_transform=replace_trusted,
            progress=progress,
        )
    a_read = float(plan.alpha_bars[-1])
    t = torch.full((z.shape[0],), float(plan.timesteps[-1]), device=z.device)
    x0 = replace_trusted(predict_x0(x_t, model.eps_predictor(noise_op)(x_t, t), a_read), a_read)
    progress.advance()
    return clean_tweedie(x0, x_t, a_read, corruption_ratio(model), mask)


def corruption_ratio(model: LoadedModel) -> float:
    """The calibrated corruption-to-noise ratio ρ of a band model (0 when uncalibrated)."""
    calib = model.meta.get("fill_calibration")
    return float(calib.get("corruption_ratio", 0.0)) if isinstance(calib, dict) else 0.0


def calibration_status(model: LoadedModel, size: tuple[int, int]) -> tuple[bool, str]:
    """Whether the band model's fill calibration holds for a restore whose network works at
    ``size`` (tile shape), and what to say about it: a gain fitted at another size (or one
    that did not record its size) is not trusted (issue #18: a gain fitted at 32 px said 1 at
    256² where the fill hurt)."""
    calib = model.meta.get("fill_calibration")
    if not isinstance(calib, dict) or "gain" not in calib:
        return False, "the band model has no fill calibration"
    measured = calib.get("size")
    if measured is None:
        return False, "the band model's fill calibration did not record the size it was measured at"
    if tuple(int(v) for v in measured) != tuple(size):
        return False, (
            f"the band model's fill calibration was measured at {measured[0]}×{measured[1]}, "
            f"not at this restore's {size[0]}×{size[1]}"
        )
    return True, f"calibrated at {size[0]}×{size[1]}"


#: ``model.meta[RAW_FILL]``: run the band model's fill as it is, no guard and no one-call read
#: (the fill calibration's own restorations; tests and benchmarks of the fill itself).
RAW_FILL = "raw_fill"


def is_raw_fill(model: LoadedModel | None) -> bool:
    """Whether ``model`` is marked :data:`RAW_FILL`."""
    return model is not None and bool(model.meta.get(RAW_FILL))


def as_raw_fill(model: LoadedModel) -> LoadedModel:
    """The same band model marked :data:`RAW_FILL` (a new object; ``model`` is unchanged)."""
    meta = {**model.meta, RAW_FILL: True}
    return TrainedModel(
        net=model.net, config=model.config, schedule=model.schedule, meta=meta, device=model.device
    )


def _one_call_read(
    model: LoadedModel,
    y: torch.Tensor,
    request: RestoreRequest,
    calibrated: bool,
    notes: dict[str, object],
) -> ReadSetting | None:
    """The one-call read's setting when it applies (module docstring of
    :mod:`corruption_shaped`), else None with the reason in ``notes["one_call"]``."""
    why = corruption_shaped_reason(model)
    if why is None:
        return None
    h, w = y.shape[-2:]
    kinds = {p.kind for p in plan_regions(request)}
    blocked = (
        "estimator 'sample' asks for posterior samples; the read gives the posterior mean"
        if request.estimator != "mean"
        else "input noise is declared; the read assumes the band corruption alone"
        if request.input_noise_std > 0
        else f"the band is not noise-like for the classical tier ({', '.join(sorted(kinds))})"
        if kinds != {"noise"}
        else "the model's forward noise is not flat in the band"
        if not flat_in_band(model, h, w)
        else None
    )
    if blocked is None:
        setting = read_setting(model, y[0].cpu().numpy(), request.band, calibrated_here=calibrated)
        if isinstance(setting, ReadSetting):
            return setting
        blocked = setting
    notes["one_call"] = f"not used although the band model is corruption-shaped ({why}): {blocked}"
    return None


#: What happens to the trusted bands with declared input noise and no omission model: as given,
#: unless the learned fill was checked against the classical tier, whose estimate (denoised for
#: the declared noise) then supplies them.
_TRUSTED_AS_GIVEN = "the trusted bands are returned as they are, noise included"
_TRUSTED_BY_CLASSICAL = (
    "the trusted bands are the classical tier's estimate (denoised for the declared noise)"
)

#: How the report names the one-call read (DESIGN.md §4.3, last point).
ONE_CALL = "clean posterior mean from the whole observation, one call"

#: ``(x, z, progress, generator) → the band model's estimate`` (see :func:`run_sagd`).
LearnedFn = Callable[[torch.Tensor, torch.Tensor, Progress, torch.Generator], torch.Tensor]
#: ``(x, progress, generator) → the trusted bands of x`` (denoised when asked).
DenoisedFn = Callable[[torch.Tensor, Progress, torch.Generator], torch.Tensor]


def _probe_run(
    x: torch.Tensor, seed: int, denoised: DenoisedFn, learned: LearnedFn
) -> tuple[torch.Tensor, torch.Tensor]:
    """The learned path on a probe image: its trusted bands and the band model's estimate."""
    silent = Progress(1, None)
    gen = generator_for(x.device, seed)
    z = denoised(x, silent, gen)
    return z, learned(x, z, silent, gen)


def run_sagd(
    y: torch.Tensor,
    request: RestoreRequest,
    models: ModelSet,
    plans: RolePlans,
    *,
    progress: ProgressFn | None,
    tile: int,
    overlap: int,
) -> MethodOutcome:
    """SAGD restoration of ``y`` ``(1, C, H, W)`` float64 (see the module docstring), its chains
    cut from ``plans["omission"]`` (the denoiser) and ``plans["band"]`` (the fill); a learned
    fill is then checked against the classical tier (module docstring, point 4)."""
    h, w = y.shape[-2:]
    th, tw = tile_shape(h, w, tile)
    s = request.input_noise_std
    spec = request.band
    warnings: list[str] = []
    details: dict[str, object] = {"sampler": "ancestral (DDIM eta=1)"}
    denoiser = models.omission if s > 0 else None
    filler = models.band
    trusted_by_classical = False
    if s > 0 and denoiser is None:
        warnings.append(
            f"input noise std {s} declared but no omission model given: {_TRUSTED_AS_GIVEN}"
        )
    if s > 0 and filler is not None and denoiser is None:
        warnings.append("the band model is conditioned on noisy trusted bands it never saw")

    chains: dict[str, SamplingPlan] = {}
    tweedie = request.estimator == "mean"
    checked = filler is not None and not is_raw_fill(filler)
    calibrated, calibration_note = (
        calibration_status(filler, (th, tw)) if filler is not None else (False, "")
    )
    read = (
        _one_call_read(filler, y, request, calibrated, details)
        if checked and filler is not None
        else None
    )
    work = 0
    if denoiser is not None:
        chains["denoise"], reached = denoise_plan(denoiser, plans["omission"], spec, th, tw, s)
        if not reached:
            warnings.append(f"input noise std {s} exceeds the omission model's noise range")
        work += 1 if tweedie else len(chains["denoise"])
        details["denoise"] = denoise_details = {
            "t_start": float(chains["denoise"].timesteps[0]),
            "steps": 1 if tweedie else len(chains["denoise"]),
            "estimator": "posterior mean (Tweedie)" if tweedie else "sample",
            "model": denoiser.config.noise.describe(),
        }
    gain = 1.0
    if filler is not None and read is not None:
        work += 1
        details["fill"] = fill_details = {
            "steps": 1,
            "model": filler.config.noise.describe(),
            "estimator": ONE_CALL,
            "gain": gain,
            **read.describe(),
        }
        if not read.in_range:
            warnings.append(
                f"the one-call read for corruption std {read.corruption_std:.3g} is outside the "
                "band model's schedule (its smallest noise is above κ s²): it is read at t = 0"
            )
    elif filler is not None:
        # A read level set by the request's schedule is already in the model's plan.
        requested = request.schedule.read_alpha_bar
        chains["fill"] = fill_plan(
            plans["band"],
            tweedie,
            None if requested is not None else fill_read_level(filler),
        )
        work += len(chains["fill"])
        gain = fill_gain(filler) if tweedie else 1.0
        read_at = float(chains["fill"].alpha_bars[-1])
        details["fill"] = fill_details = {
            "steps": len(chains["fill"]),
            "model": filler.config.noise.describe(),
            "estimator": f"posterior mean (Tweedie at ᾱ = {read_at:.3g}, averaged over the samples)"
            if tweedie
            else "sample",
            "gain": gain,
        }
        if tweedie:
            fill_details["read_alpha_bar"] = read_at
    n_tiles = len(tile_grid(h, w, tile, overlap))
    tracker = Progress(n_tiles * work or 1, progress)
    mask = mask_on(spec, h, w, y.device)
    stochastic = (filler is not None and read is None) or (denoiser is not None and not tweedie)
    k = request.samples if stochastic else 1

    def denoised(x: torch.Tensor, steps: Progress, gen: torch.Generator) -> torch.Tensor:
        """The trusted bands of ``x`` (denoised when asked), ``k`` copies, band at 0 if denoised."""
        z = x.expand(1 if tweedie else k, -1, -1, -1).contiguous()
        if denoiser is not None:
            model_d, plan_d = denoiser, chains["denoise"]
            z = run_tiled(
                lambda t: denoise_tile(
                    model_d,
                    t,
                    spec,
                    plan_d,
                    noise_std=s,
                    generator=gen,
                    progress=steps,
                    posterior_mean=tweedie,
                ).to(torch.float64),
                z,
                tile,
                overlap,
            )
            blend = find_calibration(denoiser, s) if tweedie else None
            if blend is not None:  # calibrated Wiener-like blend with the input (denoise_blend)
                z = apply_blend(z, x, blend)
            denoise_details["calibrated_blend"] = blend is not None
            z = apply_gain(z, 1.0 - mask_on(spec, x.shape[-2], x.shape[-1], x.device))
        return z.expand(k, -1, -1, -1).contiguous() if z.shape[0] != k else z

    def learned(
        x: torch.Tensor, z: torch.Tensor, steps: Progress, gen: torch.Generator
    ) -> torch.Tensor:
        """The band model's estimate for ``x`` (its band is what counts), before any gain."""
        assert filler is not None
        if read is not None:
            return read_tiled(filler, x, read)
        model_f, plan_f = filler, chains["fill"]
        return run_tiled(
            lambda t: fill_tile(
                model_f, t, spec, plan_f, generator=gen, progress=steps, posterior_mean=tweedie
            ).to(torch.float64),
            z,
            tile,
            overlap,
        )

    def read_tiled(model: LoadedModel, x: torch.Tensor, setting: ReadSetting) -> torch.Tensor:
        return run_tiled(
            lambda t: one_call_clean_mean(
                model, t, setting.corruption_std, t=setting.t, dtype=torch.float32
            )[0].to(torch.float64),
            x,
            tile,
            overlap,
        )

    def read_of(v: np.ndarray, factor: float) -> np.ndarray:
        """The guarded read of ``v`` ``(C, H, W)`` for ``factor`` times the band's noise power
        (no declared input noise: its trusted bands are its own)."""
        assert filler is not None and read is not None
        x = torch.as_tensor(v[None], dtype=torch.float64, device=y.device)
        estimate = read_tiled(filler, x, read.scaled(filler, factor))
        return merge_bands(x, estimate, mask)[0].cpu().numpy()

    gen = generator_for(y.device, request.seed)
    z = denoised(y, tracker, gen)
    regions: list[BandAction] | None = None
    if filler is not None:
        estimate = learned(y, z, tracker, gen)
        check: GuardCheck | None = None
        if checked and read is not None:  # its error is estimated on y itself
            check = recorrupted_check(y, request, read_of)
        elif checked:
            check = probe_check(
                y,
                request,
                lambda x: _probe_run(x, request.seed, denoised, learned),
                spot_gain=tweedie and not calibrated,
                gain=gain,
            )
            if check.spot_gain is not None:
                gain = fill_details["gain"] = check.spot_gain
        samples = merge_bands(z, gain * estimate, mask)
        if tweedie and read is None:  # constant-magnitude (periodic) bins: band_prior point 2
            calib = filler.meta.get("fill_calibration")
            stats = calib.get("magnitude") if isinstance(calib, dict) else None
            samples, n_bins = project_magnitude(samples, y, stats, noise_std=s)
            fill_details["constant_magnitude_bins"] = n_bins
        how = (
            ONE_CALL + " (corruption-shaped band model, DESIGN.md §4.3)"
            if read is not None
            else f"posterior mean of the band model given the trusted bands, fill gain {gain:.3g}"
            " (DESIGN.md §4.3)"
            if tweedie
            else "sampled from the band model conditioned on the trusted bands (DESIGN.md §4.3)"
        )
        band = BandAction("filled", how)
        if check is not None:
            samples, regions = apply_check(
                check, samples, request, how, calibrated, calibration_note, read is not None
            )
            details["guard"] = check.describe(calibration_note)
            warnings += check.warnings
            if s > 0 and denoiser is None:
                # The classical tier (the guard's fallback) has denoised the trusted bands for
                # the declared noise: use them rather than return the noise (nothing learned
                # is lost: without an omission model the trusted bands are the input's).
                fallback = torch.as_tensor(
                    check.fallback.samples[0], dtype=samples.dtype, device=samples.device
                )
                samples = samples + apply_gain(fallback - samples, 1.0 - mask)
                trusted_by_classical = True
                warnings = [w.replace(_TRUSTED_AS_GIVEN, _TRUSTED_BY_CLASSICAL) for w in warnings]
        details["uncertainty"] = (
            "none: the one-call read is deterministic"
            if read is not None
            else "spread of the K posterior-mean estimates (Monte Carlo error × √K), not the "
            "posterior spread: use estimator 'sample' for that"
            if tweedie
            else "spread of K posterior samples (of the corrupted band distribution)"
        )
    else:
        samples = apply_gain(z, 1.0 - mask)
        why = (
            "no band model given"
            if models.omission is None
            else (
                "no band model given; an omission model has no support in the band and cannot "
                "fill it (DESIGN.md §4.2)"
            )
        )
        band = BandAction("omitted", why + ": the band is set to zero (a hard notch)")
        warnings.append(
            f"the band was not filled: {why}. It is set to zero, as method 'notch' does; "
            "pass a band model to fill it"
        )
    if request.samples > 1 and not stochastic:
        done = (
            "the band is the one-call clean posterior mean"
            if read is not None
            else "the trusted bands are Tweedie's posterior mean, one network call; "
            "estimator 'sample' draws several"
            if denoiser is not None
            else "nothing is sampled"
        )
        state = "the band is read in one call, so" if read is not None else "with the band omitted"
        warnings.append(
            f"samples={request.samples} ignored: {state} this restoration is deterministic "
            f"({done}), so it gives one result and no uncertainty map"
        )
    tracker.finish()
    trusted = (
        "denoised by the omission model"
        if denoiser is not None
        else "denoised by the classical tier (no omission model given)"
        if trusted_by_classical
        else ("returned exactly" if s == 0 else "returned as given (not denoised)")
    )
    return MethodOutcome(
        samples=samples.to(torch.float64).cpu().numpy(),
        band=band,
        trusted=trusted,
        details=details,
        warnings=warnings,
        stochastic=stochastic,
        regions=regions,
    )


__all__ = [
    "ONE_CALL",
    "RAW_FILL",
    "as_raw_fill",
    "calibration_status",
    "denoise_plan",
    "denoise_tile",
    "fill_plan",
    "fill_read_level",
    "fill_tile",
    "is_raw_fill",
    "run_sagd",
]
