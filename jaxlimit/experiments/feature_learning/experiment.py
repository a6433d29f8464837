"""``jaxlimit feature-learning``: config → ensemble of μP networks → DMFT limit → comparison → Report.

The prediction (docs/feature-learning.md) is the law of width-N outputs under the μP gradient flow
dθ/dt = −η γ₀² N ∇L: the infinite-width DMFT mean with the leading O(1/N) covariance (Bordelon &
Pehlevan 2022, 2023). Measured: the ensemble's law against it (the calibrated verdict at the compared
times), the mean's departure with and without the predicted O(1/N) shift, each network against its
own DMFT path (the flow from its own f₀ with the infinite-width kernels), and the NTK of a smaller arm
of networks against the DMFT's evolving NTK (the lazy limit predicts a frozen one).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import numpy as np

from jaxlimit import figures as comparison
from jaxlimit.data import Dataset
from jaxlimit.experiments.against_limit import AgainstLimit, against_limit, finite_members
from jaxlimit.experiments.feature_learning import figures
from jaxlimit.experiments.feature_learning.config import FeatureLearningConfig, uses_deep_dmft
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


@dataclasses.dataclass(frozen=True)
class FeatureLimit:
    """The DMFT limit at width N at the saved times.

    Attributes:
        limit: the DMFT limit (its paths, kernels and O(1/N) corrections).
        prediction: the infinite-width mean with the O(1/N) covariance at every saved time.
        shift: the predicted O(1/N) shift of the mean, (T, P).
        kernels: the DMFT's NTK (and its O(1/N) variance) at every saved time.
        law: the law of width-N outputs to O(1/N), N(mean + shift, cov): the verdict's prediction
            (the shift is of the order of the covariance).
    """

    limit: Any
    prediction: Gaussian
    shift: np.ndarray
    kernels: Any
    law: Gaussian

    @property
    def mean(self) -> np.ndarray:
        return np.asarray(self.prediction.mean)

    @property
    def cov(self) -> np.ndarray:
        return np.asarray(self.prediction.cov)


@dataclasses.dataclass(frozen=True)
class MeanAndVariance:
    """The ensemble's mean and variance against the DMFT's at every saved time.

    Attributes:
        z_limit: the largest |mean − DMFT mean| over points in standard errors of the mean, (T,).
        z_shifted: the same against DMFT mean + O(1/N) shift, (T,).
        ratio: ensemble variance / predicted variance per point, (T, P).
        ratio_se: its delta-method standard error (fourth moments), (T, P).
    """

    z_limit: np.ndarray
    z_shifted: np.ndarray
    ratio: np.ndarray
    ratio_se: np.ndarray


@dataclasses.dataclass(frozen=True)
class KernelMovement:
    """The kernel arm's NTKs against the DMFT's evolving NTK, relative movement ‖K_t − K_0‖_F/‖K_0‖_F.

    Attributes:
        n_members: networks in the arm.
        networks_change: the mean over networks of each one's own movement, (T,).
        networks_change_se: its standard error over networks, (T,).
        mean_change: the movement of the arm's mean NTK, (T,).
        dmft_change: the DMFT NTK's movement, (T,).
        max_abs_z_by_time: the largest |mean − DMFT| in standard errors of the mean, (T,).
    """

    n_members: int
    networks_change: np.ndarray
    networks_change_se: np.ndarray
    mean_change: np.ndarray
    dmft_change: np.ndarray
    max_abs_z_by_time: np.ndarray


@dataclasses.dataclass(frozen=True)
class LawComparison:
    """The finite members against the DMFT law.

    Attributes:
        check: the calibrated verdict at the compared times and each member against its own DMFT path.
        every_time: the Gaussian comparison against ``FeatureLimit.law`` at every saved time.
        moments: the mean and variance at every saved time.
        last: the index of the last compared time; the noise levels are taken there.
        cov_null: the relative covariance error exact Gaussian samples of this size show.
        bures_null: the Bures W2 exact Gaussian samples of this size show.
    """

    check: AgainstLimit
    every_time: list
    moments: MeanAndVariance
    last: int
    cov_null: float
    bures_null: float


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
    times, idx = compared_times(config)
    return data, model, trainer, times, idx


def compared_times(config):
    """The saved times (with the compared times added) and the compared indices; the same at every width."""
    return with_compare_times(saved_times(config.t_max, config.n_times), config.compare_times, config.t_max)


def limit_of(config, data, width: int):
    return dmft_limit(data.x_train, data.y_train, data.x_probe, depth=config.depth, activation=config.activation,
                      gamma0=config.gamma0, width=width, learning_rate=config.alpha)


def feature_limit(config: FeatureLearningConfig, data, times) -> FeatureLimit:
    """The DMFT limit at ``config.width`` and its law to O(1/N) at ``times``."""
    limit = limit_of(config, data, config.width)
    prediction = limit.predict(times)
    shift = np.asarray(limit.mean_correction(times))
    law = Gaussian(np.asarray(prediction.mean) + shift, np.asarray(prediction.cov))
    return FeatureLimit(limit, prediction, shift, limit.kernels(times), law)


def step_warnings(config: FeatureLearningConfig, data, lim: FeatureLimit) -> list[str]:
    """A warning when the step is large against the fastest mode η λ_max / M of the DMFT's NTK."""
    return step_warning(config, data.n_train, lim.kernels.ntk)


def step_warning(config, n_train: int, ntk: np.ndarray) -> list[str]:
    """:func:`step_warnings` for a DMFT NTK (T, M, M), training points first."""
    lam = float(np.max(np.linalg.eigvalsh(ntk[:, :n_train, :n_train])))
    if config.alpha * lam / n_train * config.step > 0.5:
        return [f"the step dt = {config.step:g} is large against the fastest mode (η λ_max/M = "
                f"{config.alpha * lam / n_train:.3g}): gradient descent departs from the flow by "
                "O(dt); use a smaller --step"]
    return []


def ntk_arm(config, model, data, trainer, times, *stream) -> np.ndarray | None:
    """Empirical NTKs γ₀²N JJᵀ of ``config.kernel_ensemble`` networks at every saved time: (K, T, P, P)."""
    if config.kernel_ensemble == 0:
        return None
    options = ensemble_options(config, *stream, name="members-kernel") | {"n_members": config.kernel_ensemble}
    result = run_ensemble(model, data, trainer, times=times,
                          observables={"ntk": lambda p, p0, d: model.ntk(p, d.x_all)}, **options)
    return result.finite().observables["ntk"].astype(np.float64)


def kernel_movement(kernels: np.ndarray, dmft_ntk: np.ndarray, dmft_se: np.ndarray | None = None) -> KernelMovement:
    """Relative movement ‖K_t − K_0‖_F/‖K_0‖_F of the arm's mean NTK and of each network's own NTK
    (mean ± SE over networks) against the DMFT's, and the largest |mean − DMFT| in SE at every time
    (with ``dmft_se``, a sampled DMFT's Monte Carlo error, added in quadrature)."""
    n = len(kernels)
    mean = kernels.mean(axis=0)
    se = kernels.std(axis=0, ddof=1) / math.sqrt(n)
    if dmft_se is not None:
        se = np.sqrt(se**2 + dmft_se**2)
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.where(se > 0, (mean - dmft_ntk) / se, 0.0)
    norm0 = np.linalg.norm(dmft_ntk[0])
    own = np.linalg.norm(kernels - kernels[:, :1], axis=(2, 3)) / np.linalg.norm(kernels[:, 0], axis=(1, 2))[:, None]
    return KernelMovement(
        n_members=n,
        networks_change=own.mean(axis=0),
        networks_change_se=own.std(axis=0, ddof=1) / math.sqrt(n),
        mean_change=np.linalg.norm(mean - mean[:1], axis=(1, 2)) / np.linalg.norm(mean[0]),
        dmft_change=np.linalg.norm(dmft_ntk - dmft_ntk[:1], axis=(1, 2)) / norm0,
        max_abs_z_by_time=np.max(np.abs(z), axis=(1, 2)),
    )


def mean_and_variance(outputs, mean, cov, shift) -> MeanAndVariance:
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
    return MeanAndVariance(z_limit=np.max(np.abs((m - mean) / se), axis=1),
                           z_shifted=np.max(np.abs((m - mean - shift) / se), axis=1), ratio=ratio, ratio_se=ratio_se)


def compare_law(config: FeatureLearningConfig, out: np.ndarray, lim: FeatureLimit, times,
                compare_idx) -> LawComparison:
    """The finite members' outputs ``out`` (float64) against the DMFT law: verdict, paths, moments, noise levels."""
    test_seed = stream_seed(config.seed, "tests")
    last = compare_idx[-1]
    # What an exact Gaussian prediction shows at this ensemble size: the noise levels of the effects.
    return LawComparison(
        check=against_limit(out, lim.limit, lim.law, times, compare_idx, level=config.level, seed=test_seed),
        every_time=[compare_gaussian(out[:, i], lim.law[i], seed=test_seed + i) for i in range(len(times))],
        moments=mean_and_variance(out, lim.mean, lim.cov, lim.shift),
        last=last,
        cov_null=covariance_error_null(lim.cov[last], len(out)),
        bures_null=bures_null_size((lim.mean + lim.shift)[last], lim.cov[last], len(out),
                                   seed=stream_seed(config.seed, "null")),
    )


def run(config: FeatureLearningConfig) -> Report:
    if uses_deep_dmft(config):  # depth ≥ 2 or a nonlinear φ: the deep DMFT's mean alone
        from jaxlimit.experiments.feature_learning import deep

        return deep.run(config)
    timing: dict = {}
    warnings: list[str] = []
    data, model, trainer, times, compare_idx = problem(config, config.width)
    with timed(timing, "limit"):
        lim = feature_limit(config, data, times)
    warnings += step_warnings(config, data, lim)

    with timed(timing, "ensemble"):
        result = run_ensemble(model, data, trainer, times=times, **ensemble_options(config))
    ok, too_few = finite_members("feature-learning", result, data.n_train + data.n_probe, warnings, timing)
    if too_few:
        return too_few

    with timed(timing, "comparison"):
        law = compare_law(config, ok.outputs.astype(np.float64), lim, times, compare_idx)
    with timed(timing, "kernels"):
        arm = ntk_arm(config, model, data, trainer, times)
        movement = kernel_movement(arm, lim.kernels.ntk) if arm is not None and len(arm) >= 2 else None
    word = INCONSISTENT if result.n_diverged else law.check.verdict.verdict
    metrics = _metrics(result, ok, lim, law, movement)
    facts = dict(depth=config.depth, width=config.width, parameterisation=f"μP, γ₀ = {config.gamma0:g}",
                 members=ok.n_members, data=data.name)
    return Report(experiment="feature-learning", config={"ensemble": result.config, "times": times.tolist()},
                  metrics=metrics, verdict={"gaussian_limit": word}, timing=timing,
                  figures=_figures(ok, lim, law, movement, data, times, compare_idx, facts),
                  tables=_tables(law, movement, times, compare_idx),
                  arrays=_arrays(result, lim, law, arm if movement else None, times),
                  summary=_summary(config, result, data, times, lim, law, movement, metrics, word),
                  warnings=warnings)


def _metrics(result, ok, lim: FeatureLimit, law: LawComparison, movement: KernelMovement | None) -> dict:
    verdict, moments, last = law.check.verdict, law.moments, law.last
    c_last = verdict.comparisons[-1]
    z_null = max_abs_z_noise(result.outputs.shape[-1])
    ntk = lim.kernels.ntk
    metrics = {
        "n_members": result.n_members,
        "n_diverged": result.n_diverged,
        "compare_times": list(verdict.times),
        "smallest_pvalue_by_time": verdict.smallest_pvalue_by_time,
        "per_test_threshold": verdict.threshold,
        "mean_error_z": c_last.mean_error_z,
        "mean_error_z_null": z_null,
        "mean_error_resolution": resolution(c_last.mean_error_z, z_null),
        "mean_error_z_infinite_width_mean": float(moments.z_limit[last]),
        "mean_error_z_infinite_width_mean_resolution": resolution(float(moments.z_limit[last]), z_null),
        "cov_rel_error": c_last.cov_rel_error,
        "cov_rel_error_null": law.cov_null,
        "cov_rel_error_resolution": resolution(c_last.cov_rel_error, law.cov_null),
        "bures_w2": c_last.bures_w2,
        "bures_w2_null": law.bures_null,
        "bures_w2_resolution": resolution(c_last.bures_w2, law.bures_null),
        "variance_ratio_last": [float(r) for r in moments.ratio[last]],
        "variance_ratio_last_se": [float(r) for r in moments.ratio_se[last]],
        "variance_ratio_last_resolution": [resolution(float(r) - 1.0, float(se))
                                           for r, se in zip(moments.ratio[last], moments.ratio_se[last])],
        "pathwise_max_error": law.check.pathwise.rms,
        "pathwise_max_error_se": law.check.pathwise.se,
        "dmft_ntk_change_final": float(np.linalg.norm(ntk[-1] - ntk[0]) / np.linalg.norm(ntk[0])),
        "lazy_ntk_change_final": 0.0,
        "final_train_loss_ensemble": float(np.mean(ok.loss[:, -1])),
    }
    metrics.update(movement_metrics(movement))
    return metrics


def _figures(ok, lim: FeatureLimit, law: LawComparison, movement: KernelMovement | None, data, times,
             compare_idx, facts) -> dict:
    figs = {
        "trajectories": comparison.trajectory_figure(ok, lim.law, data, facts, limit=LIMIT),
        "marginal": comparison.marginal_figure(ok, lim.law, data, facts, limit=LIMIT),
        "effects": comparison.effects_figure(times, law.every_time, lim.cov, compare_idx, law.check.pathwise,
                                             law.check.verdict, facts, limit=LIMIT),
    }
    if movement:
        figs["kernel"] = figures.kernel_figure(times, movement, facts)
    return figs


def _tables(law: LawComparison, movement: KernelMovement | None, times, compare_idx) -> dict:
    tables = {"tests_by_time": {"t": times, "verdict_time": [i in compare_idx for i in range(len(times))],
                                "mean_error_z": law.moments.z_limit, "mean_error_z_with_shift": law.moments.z_shifted,
                                "cov_rel_error": [c.cov_rel_error for c in law.every_time],
                                "smallest_pvalue": [c.smallest_pvalue for c in law.every_time],
                                "pathwise_rms_max_error": law.check.pathwise.per_time}}
    if movement:
        tables["kernel_by_time"] = {"t": times, "networks_change": movement.networks_change,
                                    "networks_change_se": movement.networks_change_se,
                                    "mean_ntk_change": movement.mean_change, "dmft_change": movement.dmft_change,
                                    "max_abs_z": movement.max_abs_z_by_time}
    return tables


def _arrays(result, lim: FeatureLimit, law: LawComparison, empirical_ntk: np.ndarray | None, times) -> dict:
    arrays = {"outputs": result.outputs, "loss": result.loss, "times": times, "diverged": result.diverged,
              "limit_mean": lim.mean, "limit_cov": lim.cov, "limit_mean_shift": lim.shift,
              "limit_paths": law.check.paths, "dmft_ntk": lim.kernels.ntk, "dmft_ntk_var": lim.kernels.ntk_var}
    if empirical_ntk is not None:
        arrays["empirical_ntk"] = empirical_ntk
    return arrays


def _summary(config: FeatureLearningConfig, result, data, times, lim: FeatureLimit, law: LawComparison,
             movement: KernelMovement | None, metrics: dict, word: str) -> list[str]:
    verdict, moments, last, path_err = law.check.verdict, law.moments, law.last, law.check.pathwise
    c_last = verdict.comparisons[-1]
    summary = [
        f"{result.n_members} μP networks of depth {config.depth} and width {config.width} ({config.activation}, "
        f"γ₀ = {config.gamma0:g}) trained by gradient descent (η = {config.alpha:g}, dt = {config.step:g}) to "
        f"t = {times[-1]:g} on {data.name}, against the DMFT limit to O(1/N): the infinite-width mean plus its "
        "O(1/N) shift, and the O(1/N) covariance (docs/feature-learning.md).",
        "",
        f"Verdict **{word}** at t = {', '.join(f'{t:g}' for t in verdict.times)} (level {config.level}; smallest "
        f"p-values {', '.join(f'{p:.3g}' for p in verdict.smallest_pvalue_by_time)} against a per-test threshold "
        f"{verdict.threshold:.2g}).",
        f"At t = {times[last]:g}: largest mean error {moments.z_shifted[last]:.2f} standard errors with the "
        f"predicted O(1/N) shift ({metrics['mean_error_resolution']}), {moments.z_limit[last]:.2f} against the "
        f"infinite-width mean alone ({metrics['mean_error_z_infinite_width_mean_resolution']}); variance ratios "
        + ", ".join(f"{r:.3f} ± {s:.2g}" for r, s in zip(moments.ratio[last], moments.ratio_se[last]))
        + f"; relative covariance error {c_last.cov_rel_error:.3g} against {law.cov_null:.2g} for an exact "
        f"prediction ({metrics['cov_rel_error_resolution']}); Bures distance {c_last.bures_w2:.3g} against "
        f"{law.bures_null:.2g} ({metrics['bures_w2_resolution']}).",
        f"Each network against its own DMFT path (its own f₀, infinite-width kernels): RMS over members of the max "
        f"error {path_err.rms:.3g} ± {path_err.se:.1g} (O(N^-1/2): the kernels' own initial fluctuations).",
        f"The DMFT's NTK moves by {metrics['dmft_ntk_change_final']:.3g} (relative, by t = {times[-1]:g}); the lazy "
        "limit's does not move.",
    ]
    if movement:
        summary.append(
            f"NTK of {movement.n_members} networks: their mean moved by {movement.mean_change[-1]:.3g} "
            f"(DMFT {movement.dmft_change[-1]:.3g}), largest |mean − DMFT| {movement.max_abs_z_by_time[-1]:.2f} "
            f"standard errors at t = {times[-1]:g}; each network's own movement "
            f"{movement.networks_change[-1]:.3g} ± {movement.networks_change_se[-1]:.1g}.")
    return summary


def movement_metrics(movement) -> dict:
    """The kernel arm's NTK movement at t_max (nothing without a kernel arm)."""
    if not movement:
        return {}
    return {
        "kernel_members": movement.n_members,
        "ntk_mean_change_final": float(movement.mean_change[-1]),
        "ntk_networks_change_final": float(movement.networks_change[-1]),
        "ntk_networks_change_final_se": float(movement.networks_change_se[-1]),
        "ntk_max_abs_z_final": float(movement.max_abs_z_by_time[-1]),
    }
