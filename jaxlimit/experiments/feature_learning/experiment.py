"""``jaxlimit feature-learning``: config → ensemble of μP networks → DMFT limit → comparison → Report.

The prediction (docs/feature-learning.md) is the law of width-N outputs under the μP gradient flow
dθ/dt = −η γ₀² N ∇L: the infinite-width DMFT mean with the leading O(1/N) covariance (Bordelon &
Pehlevan 2022, 2023). Measured: the ensemble's law against it (the calibrated verdict at the compared
times), the mean's departure with and without the predicted O(1/N) shift, each network against its
own DMFT path (the flow from its own f₀ with the infinite-width kernels), and the NTK of a smaller arm
of networks against the DMFT's evolving NTK (the lazy limit predicts a frozen one).
"""

from __future__ import annotations

import math

import numpy as np

from jaxlimit import figures as comparison
from jaxlimit.data import Dataset
from jaxlimit.experiments.against_limit import against_limit, finite_members
from jaxlimit.experiments.feature_learning import figures
from jaxlimit.experiments.feature_learning.config import FeatureLearningConfig
from jaxlimit.experiments.problem import (
    ensemble_options, saved_times, timed, two_layer_data, with_compare_times,
)
from jaxlimit.limits.dmft import dmft_limit
from jaxlimit.models.feature_mlp import FeatureMLP
from jaxlimit.report import Report
from jaxlimit.stats import Gaussian, compare_gaussian
from jaxlimit.stats.nulls import bures_null_size, covariance_error_null, max_abs_z_noise
from jaxlimit.stats.verdict import INCONSISTENT, resolution
from jaxlimit.streams import stream_seed
from jaxlimit.training import Trainer, run_ensemble

LIMIT = "the DMFT limit"


def scaled_data(config) -> Dataset:
    """The command's data with every input rescaled to |x|²/D = 1 (the DMFT's convention K_x(x, x) = 1)."""
    data = two_layer_data(config)
    d = data.dim

    def scale(x):
        x = np.asarray(x, np.float64)
        return x * (math.sqrt(d) / np.linalg.norm(x, axis=1, keepdims=True)) if len(x) else x

    return Dataset(scale(data.x_train), np.asarray(data.y_train, np.float64), scale(data.x_probe),
                   name=f"{data.name}, |x|²/D = 1")


def problem(config, width: int, data=None):
    """Data, network, trainer, saved times and the compared indices."""
    data = scaled_data(config) if data is None else data
    model = FeatureMLP(width, data.dim, config.depth, config.activation, config.gamma0, time_step=config.step)
    trainer = Trainer(alpha=config.alpha, method="fullbatch")
    times, idx = with_compare_times(saved_times(config.t_max, config.n_times), config.compare_times, config.t_max)
    return data, model, trainer, times, idx


def limit_of(config, data, width: int):
    return dmft_limit(data.x_train, data.y_train, data.x_probe, depth=config.depth, activation=config.activation,
                      gamma0=config.gamma0, width=width, learning_rate=config.alpha)


def ntk_arm(config, model, data, trainer, times, *stream) -> np.ndarray | None:
    """Empirical NTKs γ₀²N JJᵀ of ``config.kernel_ensemble`` networks at every saved time: (K, T, P, P)."""
    if config.kernel_ensemble == 0:
        return None
    options = ensemble_options(config, *stream, name="members-kernel") | {"n_members": config.kernel_ensemble}
    result = run_ensemble(model, data, trainer, times=times,
                          observables={"ntk": lambda p, p0, d: model.ntk(p, d.x_all)}, **options)
    return result.finite().observables["ntk"].astype(np.float64)


def kernel_movement(kernels: np.ndarray, dmft_ntk: np.ndarray) -> dict:
    """Relative movement ‖K_t − K_0‖_F/‖K_0‖_F of the arm's mean NTK and of each network's own NTK
    (mean ± SE over networks) against the DMFT's, and the largest |mean − DMFT| in SE at every time."""
    n = len(kernels)
    mean = kernels.mean(axis=0)
    se = kernels.std(axis=0, ddof=1) / math.sqrt(n)
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.where(se > 0, (mean - dmft_ntk) / se, 0.0)
    norm0 = np.linalg.norm(dmft_ntk[0])
    own = np.linalg.norm(kernels - kernels[:, :1], axis=(2, 3)) / np.linalg.norm(kernels[:, 0], axis=(1, 2))[:, None]
    return {
        "n_members": n,
        "networks_change": own.mean(axis=0),
        "networks_change_se": own.std(axis=0, ddof=1) / math.sqrt(n),
        "mean_change": np.linalg.norm(mean - mean[:1], axis=(1, 2)) / np.linalg.norm(mean[0]),
        "dmft_change": np.linalg.norm(dmft_ntk - dmft_ntk[:1], axis=(1, 2)) / norm0,
        "max_abs_z_by_time": np.max(np.abs(z), axis=(1, 2)),
    }


def mean_and_variance(outputs, mean, cov, shift):
    """Largest |z| of the ensemble mean against the DMFT mean (and with the O(1/N) shift), and the
    variance ratios (ensemble / predicted) with their standard errors, at every saved time."""
    e = outputs.shape[0]
    sd = outputs.std(axis=0, ddof=1)
    se = np.where(sd > 0, sd / math.sqrt(e), np.inf)
    m = outputs.mean(axis=0)
    var = np.diagonal(cov, axis1=1, axis2=2)
    c = outputs - m
    v = np.mean(c**2, axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(var > 0, outputs.var(axis=0, ddof=1) / var, np.nan)
        ratio_se = np.sqrt(np.maximum(np.mean(c**4, axis=0) - v**2, 0.0) / e) / v * ratio
    return {
        "z_limit": np.max(np.abs((m - mean) / se), axis=1),
        "z_shifted": np.max(np.abs((m - mean - shift) / se), axis=1),
        "ratio": ratio, "ratio_se": ratio_se,
    }


def run(config: FeatureLearningConfig) -> Report:
    timing: dict = {}
    warnings: list[str] = []
    data, model, trainer, times, compare_idx = problem(config, config.width)
    with timed(timing, "limit"):
        limit = limit_of(config, data, config.width)
        prediction = limit.predict(times)
        shift = np.asarray(limit.mean_correction(times))
        kern = limit.kernels(times)
    mean, cov = np.asarray(prediction.mean), np.asarray(prediction.cov)
    # The law of width-N outputs to O(1/N): the mean's O(1/N) shift is of the order of the covariance,
    # so the verdict is taken against N(mean + shift, cov); the infinite-width mean alone is reported too.
    law = Gaussian(mean + shift, cov)
    lam = float(np.max(np.linalg.eigvalsh(kern.ntk[:, :data.n_train, :data.n_train])))
    if config.alpha * lam / data.n_train * config.step > 0.5:
        warnings.append(f"the step dt = {config.step:g} is large against the fastest mode (η λ_max/M = "
                        f"{config.alpha * lam / data.n_train:.3g}): gradient descent departs from the flow by "
                        "O(dt); use a smaller --step")

    with timed(timing, "ensemble"):
        result = run_ensemble(model, data, trainer, times=times, **ensemble_options(config))
    ok, too_few = finite_members("feature-learning", result, data.n_train + data.n_probe, warnings, timing)
    if too_few:
        return too_few
    out = ok.outputs.astype(np.float64)

    test_seed = stream_seed(config.seed, "tests")
    with timed(timing, "comparison"):
        check = against_limit(out, limit, law, times, compare_idx, level=config.level, seed=test_seed)
        paths, path_err, verdict = check.paths, check.pathwise, check.verdict
        every_time = [compare_gaussian(out[:, i], law[i], seed=test_seed + i) for i in range(len(times))]
        moments = mean_and_variance(out, mean, cov, shift)
        # What an exact Gaussian prediction shows at this ensemble size: the noise levels of the effects.
        cov_null = covariance_error_null(cov[compare_idx[-1]], ok.n_members)
        bures_null = bures_null_size((mean + shift)[compare_idx[-1]], cov[compare_idx[-1]], ok.n_members,
                                     seed=stream_seed(config.seed, "null"))
    with timed(timing, "kernels"):
        arm = ntk_arm(config, model, data, trainer, times)
        movement = kernel_movement(arm, kern.ntk) if arm is not None and len(arm) >= 2 else None
    word = INCONSISTENT if result.n_diverged else verdict.verdict
    last = compare_idx[-1]
    c_last = verdict.comparisons[-1]
    metrics = {
        "n_members": result.n_members,
        "n_diverged": result.n_diverged,
        "compare_times": list(verdict.times),
        "smallest_pvalue_by_time": verdict.smallest_pvalue_by_time,
        "per_test_threshold": verdict.threshold,
        "mean_error_z": c_last.mean_error_z,
        "mean_error_z_null": max_abs_z_noise(result.outputs.shape[-1]),
        "mean_error_resolution": resolution(c_last.mean_error_z, max_abs_z_noise(result.outputs.shape[-1])),
        "mean_error_z_infinite_width_mean": float(moments["z_limit"][last]),
        "mean_error_z_infinite_width_mean_resolution": resolution(float(moments["z_limit"][last]),
                                                                  max_abs_z_noise(result.outputs.shape[-1])),
        "cov_rel_error": c_last.cov_rel_error,
        "cov_rel_error_null": cov_null,
        "cov_rel_error_resolution": resolution(c_last.cov_rel_error, cov_null),
        "bures_w2": c_last.bures_w2,
        "bures_w2_null": bures_null,
        "bures_w2_resolution": resolution(c_last.bures_w2, bures_null),
        "variance_ratio_last": [float(r) for r in moments["ratio"][last]],
        "variance_ratio_last_se": [float(r) for r in moments["ratio_se"][last]],
        "variance_ratio_last_resolution": [resolution(float(r) - 1.0, float(se))
                                           for r, se in zip(moments["ratio"][last], moments["ratio_se"][last])],
        "pathwise_max_error": path_err.rms,
        "pathwise_max_error_se": path_err.se,
        "dmft_ntk_change_final": float(np.linalg.norm(kern.ntk[-1] - kern.ntk[0]) / np.linalg.norm(kern.ntk[0])),
        "lazy_ntk_change_final": 0.0,
        "final_train_loss_ensemble": float(np.mean(ok.loss[:, -1])),
    }
    if movement:
        metrics.update({
            "kernel_members": movement["n_members"],
            "ntk_mean_change_final": float(movement["mean_change"][-1]),
            "ntk_networks_change_final": float(movement["networks_change"][-1]),
            "ntk_networks_change_final_se": float(movement["networks_change_se"][-1]),
            "ntk_max_abs_z_final": float(movement["max_abs_z_by_time"][-1]),
        })
    facts = dict(depth=config.depth, width=config.width, parameterisation=f"μP, γ₀ = {config.gamma0:g}",
                 members=ok.n_members, data=data.name)
    figs = {
        "trajectories": comparison.trajectory_figure(ok, law, data, facts, limit=LIMIT),
        "marginal": comparison.marginal_figure(ok, law, data, facts, limit=LIMIT),
        "effects": comparison.effects_figure(times, every_time, cov, compare_idx, path_err, verdict, facts,
                                             limit=LIMIT),
    }
    tables = {"tests_by_time": {"t": times, "verdict_time": [i in compare_idx for i in range(len(times))],
                                "mean_error_z": moments["z_limit"], "mean_error_z_with_shift": moments["z_shifted"],
                                "cov_rel_error": [c.cov_rel_error for c in every_time],
                                "smallest_pvalue": [c.smallest_pvalue for c in every_time],
                                "pathwise_rms_max_error": path_err.per_time}}
    arrays = {"outputs": result.outputs, "loss": result.loss, "times": times, "diverged": result.diverged,
              "limit_mean": mean, "limit_cov": cov, "limit_mean_shift": shift, "limit_paths": paths,
              "dmft_ntk": kern.ntk, "dmft_ntk_var": kern.ntk_var}
    if movement:
        figs["kernel"] = figures.kernel_figure(times, movement, facts)
        tables["kernel_by_time"] = {"t": times, "networks_change": movement["networks_change"],
                                    "networks_change_se": movement["networks_change_se"],
                                    "mean_ntk_change": movement["mean_change"], "dmft_change": movement["dmft_change"],
                                    "max_abs_z": movement["max_abs_z_by_time"]}
        arrays["empirical_ntk"] = arm
    summary = [
        f"{result.n_members} μP networks of depth {config.depth} and width {config.width} ({config.activation}, "
        f"γ₀ = {config.gamma0:g}) trained by gradient descent (η = {config.alpha:g}, dt = {config.step:g}) to "
        f"t = {times[-1]:g} on {data.name}, against the DMFT limit to O(1/N): the infinite-width mean plus its "
        "O(1/N) shift, and the O(1/N) covariance (docs/feature-learning.md).",
        "",
        f"Verdict **{word}** at t = {', '.join(f'{t:g}' for t in verdict.times)} (level {config.level}; smallest "
        f"p-values {', '.join(f'{p:.3g}' for p in verdict.smallest_pvalue_by_time)} against a per-test threshold "
        f"{verdict.threshold:.2g}).",
        f"At t = {times[last]:g}: largest mean error {moments['z_shifted'][last]:.2f} standard errors with the "
        f"predicted O(1/N) shift ({metrics['mean_error_resolution']}), {moments['z_limit'][last]:.2f} against the "
        f"infinite-width mean alone ({metrics['mean_error_z_infinite_width_mean_resolution']}); variance ratios "
        + ", ".join(f"{r:.3f} ± {s:.2g}" for r, s in zip(moments["ratio"][last], moments["ratio_se"][last]))
        + f"; relative covariance error {c_last.cov_rel_error:.3g} against {cov_null:.2g} for an exact prediction "
        f"({metrics['cov_rel_error_resolution']}); Bures distance {c_last.bures_w2:.3g} against {bures_null:.2g} "
        f"({metrics['bures_w2_resolution']}).",
        f"Each network against its own DMFT path (its own f₀, infinite-width kernels): RMS over members of the max "
        f"error {path_err.rms:.3g} ± {path_err.se:.1g} (O(N^-1/2): the kernels' own initial fluctuations).",
        f"The DMFT's NTK moves by {metrics['dmft_ntk_change_final']:.3g} (relative, by t = {times[-1]:g}); the lazy "
        "limit's does not move.",
    ]
    if movement:
        summary.append(
            f"NTK of {movement['n_members']} networks: their mean moved by {movement['mean_change'][-1]:.3g} "
            f"(DMFT {movement['dmft_change'][-1]:.3g}), largest |mean − DMFT| {movement['max_abs_z_by_time'][-1]:.2f} "
            f"standard errors at t = {times[-1]:g}; each network's own movement "
            f"{movement['networks_change'][-1]:.3g} ± {movement['networks_change_se'][-1]:.1g}.")
    return Report(experiment="feature-learning", config={"ensemble": result.config, "times": times.tolist()},
                  metrics=metrics, verdict={"gaussian_limit": word}, timing=timing, figures=figs, tables=tables,
                  arrays=arrays, summary=summary, warnings=warnings)
