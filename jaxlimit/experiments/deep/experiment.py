"""``jaxlimit deep``: config → ensemble of deep MLPs → NTK-regime Gaussian → comparison → Report.

The prediction (docs/deep.md) is the law of the outputs of infinitely wide
networks under gradient flow on the mean squared loss, df/dt = −(α/M) Θ (f − y)
from f_0 ~ GP(0, K): Gaussian at every time. At width n three things are
measured: the ensemble's law against it (a calibrated verdict at t = 0, 1 and
t_max), each network against its own linearised path (the flow with the
limit's kernel started from the network's own f_0), and the empirical NTK of a
smaller arm of networks at initialisation (against the analytic Θ, in standard
errors) and its relative change during training. ``jaxlimit sweep deep``
measures how each shrinks with n.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import numpy as np

from jaxlimit import figures as comparison
from jaxlimit.experiments.against_limit import AgainstLimit, against_limit, finite_members
from jaxlimit.experiments.deep import figures
from jaxlimit.experiments.deep.config import DeepConfig
from jaxlimit.experiments.problem import deep_correction, deep_limit, deep_problem, ensemble_options, timed
from jaxlimit.limits.empirical import ntk_observable
from jaxlimit.limits.training_correction import TERMS, TrainingCorrection
from jaxlimit.report import Report
from jaxlimit.stats import Gaussian, compare_gaussian
from jaxlimit.stats.coupling import CoupledBures, MeanDrift, coupled_bures, mean_drift
from jaxlimit.stats.kernels import KernelSummary, kernel_summary
from jaxlimit.stats.nulls import bures_null_size, covariance_error_null, max_abs_z_noise
from jaxlimit.stats.verdict import INCONSISTENT, resolution, verdict_over_times
from jaxlimit.streams import stream_seed
from jaxlimit.training import run_ensemble

LIMIT = "the NTK-regime Gaussian"


@dataclasses.dataclass(frozen=True)
class DeepLimit:
    """The NTK-regime limit at the saved times.

    Attributes:
        limit: the infinite-width limit (kernels, flow, linearised paths).
        prediction: its Gaussian law at every saved time (the closed form).
        by_ode: the same law integrated as an ODE (a check of the closed form).
        conditioning: λ_min, λ_max and the condition number of Θ on the training points.
    """

    limit: Any
    prediction: Gaussian
    by_ode: Gaussian
    conditioning: Any

    @property
    def mean(self) -> np.ndarray:
        return np.asarray(self.prediction.mean)

    @property
    def cov(self) -> np.ndarray:
        return np.asarray(self.prediction.cov)


@dataclasses.dataclass(frozen=True)
class LawComparison:
    """The finite members against the limit.

    Attributes:
        check: the calibrated verdict at the compared times and each member against its linearised path.
        every_time: the Gaussian comparison at every saved time (seeded per time).
        last: the index of the last compared time; the quantities below are taken there.
        cov_null: the relative covariance error exact Gaussian samples of this size show.
        bures_null: the Bures W2 exact Gaussian samples of this size show.
        drift: the coupled mean drift, members minus their own linearised paths.
        mean_se: the standard error of the ensemble mean per point, √(diag Σ / E).
        bures_coupled: the Bures W2 of the coupled moment estimate, with its bootstrap noise.
        loss_limit: the limit's training loss at every saved time.
    """

    check: AgainstLimit
    every_time: list
    last: int
    cov_null: float
    bures_null: float
    drift: MeanDrift
    mean_se: np.ndarray
    bures_coupled: CoupledBures
    loss_limit: np.ndarray


@dataclasses.dataclass(frozen=True)
class KernelArm:
    """The empirical NTKs of the kernel arm against the analytic Θ.

    Attributes:
        ntk: the finite members' empirical NTKs at every saved time, (K, T, P, P) in float64.
        n_diverged: how many of the arm's members diverged (left out).
        summary: their mean at t = 0 against Θ and their relative change over time.
    """

    ntk: np.ndarray
    n_diverged: int
    summary: KernelSummary


def deep_limit_at(config: DeepConfig, data, times) -> DeepLimit:
    """The limit of ``config`` on ``data`` and its law at ``times``."""
    limit = deep_limit(config, data)
    return DeepLimit(limit, limit.predict(times), limit.predict_ode(times), limit.conditioning())


def step_warnings(config: DeepConfig, data, lim: DeepLimit) -> list[str]:
    """A warning when the step is large against the fastest mode α λ_max / M of the flow."""
    rate = lim.conditioning.max_eigenvalue * config.alpha / data.n_train
    if rate * config.step > 0.5:
        return [f"the step dt = {config.step:g} is large against the fastest mode (α λ_max/M = {rate:.3g}): "
                "gradient descent departs from the flow by O(dt); use a smaller --step"]
    return []


def compare_law(config: DeepConfig, ok, lim: DeepLimit, times, compare_idx) -> LawComparison:
    """The finite members ``ok`` against the limit: verdict, paths, noise levels, coupled bias."""
    test_seed = stream_seed(config.seed, "tests")
    check = against_limit(ok.outputs, lim.limit, lim.prediction, times, compare_idx, level=config.level,
                          seed=test_seed)
    every_time = [compare_gaussian(ok.outputs[:, i], lim.prediction[i], seed=test_seed + i)
                  for i in range(len(times))]
    last = compare_idx[-1]
    mean, cov = lim.mean[last], lim.cov[last]
    return LawComparison(
        check=check, every_time=every_time, last=last,
        cov_null=covariance_error_null(cov, ok.n_members),
        bures_null=bures_null_size(mean, cov, ok.n_members, seed=stream_seed(config.seed, "null")),
        drift=mean_drift(ok.outputs[:, last], check.paths[:, last]),
        mean_se=np.sqrt(np.diagonal(cov)) / math.sqrt(ok.n_members),
        bures_coupled=coupled_bures(ok.outputs[:, last], check.paths[:, last], mean, cov,
                                    seed=stream_seed(config.seed, "bootstrap")),
        loss_limit=np.asarray(lim.limit.train_loss(lim.prediction)),
    )


def kernel_arm(config: DeepConfig, model, data, trainer, times, analytic) -> KernelArm | None:
    """Empirical NTKs of ``config.kernel_ensemble`` networks at every saved time against ``analytic``."""
    if config.kernel_ensemble == 0:
        return None
    options = ensemble_options(config, name="members-kernel") | {"n_members": config.kernel_ensemble}
    result = run_ensemble(model, data, trainer, times=times, observables={"ntk": ntk_observable(model)}, **options)
    kernels = result.finite().observables["ntk"].astype(np.float64)
    return KernelArm(kernels, result.n_diverged, kernel_summary(kernels, analytic))


@dataclasses.dataclass(frozen=True)
class Corrected:
    """The members against the 1/n-corrected law (docs/corrections.md).

    Attributes:
        correction: the coefficients, estimated from networks of width n₀.
        verdict: the calibrated verdict against N(m̄ + c/n, Σ̄ + C/n) at the compared times.
        drift, drift_se: the predicted mean drift (members minus their flow paths) at the last compared time, (P,).
    """

    correction: TrainingCorrection
    verdict: Any
    drift: np.ndarray
    drift_se: np.ndarray


def corrected(config: DeepConfig, data, ok, times, compare_idx) -> Corrected | None:
    """The 1/n correction estimated at ``--correction-width`` and the members against it."""
    if not config.correction_width:
        return None
    corr = deep_correction(config, data, times[-1])
    law = corr.predict(times, config.width)
    verdict = verdict_over_times(ok.outputs, law, compare_idx, times=times, level=config.level,
                                 seed=stream_seed(config.seed, "tests"))
    drift, drift_se = corr.drift(times[compare_idx[-1:]], config.width)
    return Corrected(corr, verdict, drift[0], drift_se[0])


def run(config: DeepConfig) -> Report:
    timing: dict = {}
    warnings: list[str] = []
    data, model, trainer, times, compare_idx = deep_problem(config, config.width)
    with timed(timing, "limit"):
        lim = deep_limit_at(config, data, times)
    warnings += step_warnings(config, data, lim)

    with timed(timing, "ensemble"):
        result = run_ensemble(model, data, trainer, times=times, **ensemble_options(config))
    ok, too_few = finite_members("deep", result, data.n_train + data.n_probe, warnings, timing)
    if too_few:
        return too_few

    with timed(timing, "comparison"):
        law = compare_law(config, ok, lim, times, compare_idx)
    with timed(timing, "kernels"):
        arm = kernel_arm(config, model, data, trainer, times, np.asarray(lim.limit.ntk))
    with timed(timing, "correction"):
        corr = corrected(config, data, ok, times, compare_idx)
    if corr and (deficit := corr.correction.covariance_deficit(times, config.width)) < 0:
        warnings.append(f"the 1/n-corrected covariance has a negative eigenvalue ({deficit:.3g}), set to zero: the "
                        "expansion does not hold at this width, or C is too noisy")
    word = INCONSISTENT if result.n_diverged else law.check.verdict.verdict
    metrics = _metrics(result, ok, lim, law, arm) | _correction_metrics(corr, law, times, config.width)
    verdicts = {"gaussian_limit": word}
    if corr:
        verdicts["corrected_limit"] = INCONSISTENT if result.n_diverged else corr.verdict.verdict
    facts = dict(depth=config.depth, width=config.width, parameterisation="NTK", members=ok.n_members,
                 data=data.name)
    return Report(experiment="deep", config={"ensemble": result.config, "times": times.tolist()}, metrics=metrics,
                  verdict=verdicts, timing=timing,
                  figures=_figures(ok, lim, law, arm, data, times, compare_idx, facts),
                  tables=_tables(lim, law, arm, times, compare_idx), arrays=_arrays(result, lim, law, arm, times),
                  summary=_summary(config, result, data, times, law, arm, metrics, word)
                  + _correction_summary(corr, metrics, times[law.last]), warnings=warnings)


def _correction_metrics(corr: Corrected | None, law: LawComparison, times, width: int) -> dict:
    """The measured drift against the predicted one at its worst point, and the pieces' shares."""
    if corr is None:
        return {}
    c = corr.correction
    worst, last = law.drift.worst, law.last
    measured, measured_se = float(law.drift.value[worst]), float(law.drift.se[worst])
    predicted, predicted_se = float(corr.drift[worst]), float(corr.drift_se[worst])
    step = int(c.steps(times[last:last + 1])[0])
    out = {
        "correction_width": c.width,
        "correction_networks": c.networks,
        "correction_diverged": c.n_diverged,
        "mean_drift_predicted": predicted,
        "mean_drift_predicted_se": predicted_se,
        "mean_drift_explained": measured / predicted if predicted else math.nan,
        "mean_drift_correction_z": (measured - predicted) / math.hypot(measured_se, predicted_se),
        "corrected_smallest_pvalue_by_time": corr.verdict.smallest_pvalue_by_time,
    }
    for name in TERMS:
        out[f"correction_{name}"] = float(c.terms[name][step, worst]) / width
        out[f"correction_{name}_se"] = float(c.terms_se[name][step, worst]) / width
    return out


def _correction_summary(corr: Corrected | None, metrics: dict, t: float) -> list[str]:
    if corr is None:
        return []
    c, m = corr.correction, metrics
    word = corr.verdict.verdict
    shares = ", ".join(f"{name} {m[f'correction_{name}']:+.2g} ± {m[f'correction_{name}_se']:.1g}" for name in TERMS)
    return [
        f"The 1/n correction (docs/corrections.md), estimated from {c.networks} networks of width {c.width}: "
        f"predicted drift at t = {t:g} at the same point {m['mean_drift_predicted']:.3g} ± "
        f"{m['mean_drift_predicted_se']:.1g} (pieces: {shares}); the measured drift is "
        f"{m['mean_drift_explained']:.2f} of it, {m['mean_drift_correction_z']:+.2f} combined standard errors "
        f"away. Against the corrected law N(m̄ + c/n, Σ̄ + C/n) the verdict is **{word}** (smallest p-values "
        f"{', '.join(f'{p:.3g}' for p in corr.verdict.smallest_pvalue_by_time)}; the correction's own Monte "
        "Carlo error is not in these tests).",
    ]


def _metrics(result, ok, lim: DeepLimit, law: LawComparison, arm: KernelArm | None) -> dict:
    c_last = law.check.verdict.comparisons[-1]
    verdict, drift, bures_c = law.check.verdict, law.drift, law.bures_coupled
    z_null = max_abs_z_noise(result.outputs.shape[-1])
    mean, cov, by_ode = lim.mean, lim.cov, lim.by_ode
    metrics = {
        "n_members": result.n_members,
        "n_diverged": result.n_diverged,
        "compare_times": list(verdict.times),
        "smallest_pvalue_by_time": verdict.smallest_pvalue_by_time,
        "per_test_threshold": verdict.threshold,
        "mean_error_z": c_last.mean_error_z,
        "mean_error_z_null": z_null,
        "mean_error_resolution": resolution(c_last.mean_error_z, z_null),
        "cov_rel_error": c_last.cov_rel_error,
        "cov_rel_error_null": law.cov_null,
        "cov_rel_error_resolution": resolution(c_last.cov_rel_error, law.cov_null),
        "bures_w2": c_last.bures_w2,
        "bures_w2_null": law.bures_null,
        "bures_w2_resolution": resolution(c_last.bures_w2, law.bures_null),
        "mean_drift": float(drift.value[drift.worst]),
        "mean_drift_z": drift.z,
        "mean_drift_in_mean_se": drift.in_units_of(law.mean_se),
        "mean_drift_resolution": resolution(drift.z, z_null),
        "bures_w2_coupled": bures_c.value,
        "bures_w2_coupled_se": bures_c.se,
        "bures_w2_coupled_noise": bures_c.noise,
        "bures_w2_coupled_resolution": resolution(bures_c.value, bures_c.noise, bures_c.se),
        "pathwise_max_error": law.check.pathwise.rms,
        "pathwise_max_error_se": law.check.pathwise.se,
        "ntk_min_eigenvalue": lim.conditioning.min_eigenvalue,
        "ntk_condition_number": lim.conditioning.condition_number,
        "kernel_method": lim.limit.kernel_method,
        "kernel_max_error": lim.limit.kernel_error,
        "limit_ode_max_error": float(max(np.max(np.abs(mean - np.asarray(by_ode.mean))),
                                         np.max(np.abs(cov - np.asarray(by_ode.cov))))),
        "final_train_loss_limit": float(law.loss_limit[-1]),
        "final_train_loss_ensemble": float(np.mean(ok.loss[:, -1])),
        "final_train_loss_ensemble_se": float(np.std(ok.loss[:, -1], ddof=1) / math.sqrt(ok.n_members)),
    }
    if arm:
        k = arm.summary
        metrics.update({
            "kernel_members": k.n_members,
            "ntk_init_max_abs_z": k.max_abs_z,
            "ntk_init_mean_rel_error": k.mean_rel_error,
            "ntk_init_spread": k.init_spread,
            "ntk_change_final": float(k.change_by_time[-1]),
            "ntk_change_final_se": float(k.change_se_by_time[-1]),
        })
    return metrics


def _figures(ok, lim: DeepLimit, law: LawComparison, arm: KernelArm | None, data, times, compare_idx,
             facts) -> dict:
    figs = {
        "trajectories": comparison.trajectory_figure(ok, lim.prediction, data, facts, limit=LIMIT),
        "marginal": comparison.marginal_figure(ok, lim.prediction, data, facts, limit=LIMIT),
        "effects": comparison.effects_figure(times, law.every_time, lim.cov, compare_idx, law.check.pathwise,
                                             law.check.verdict, facts, limit=LIMIT),
    }
    if arm:
        figs["kernel"] = figures.kernel_figure(times, arm.summary, np.asarray(lim.limit.ntk), arm.ntk[:, 0], facts)
    return figs


def _tables(lim: DeepLimit, law: LawComparison, arm: KernelArm | None, times, compare_idx) -> dict:
    every_time = law.every_time
    tables = {"tests_by_time": {"t": times, "verdict_time": [i in compare_idx for i in range(len(times))],
                                "mean_error_z": [c.mean_error_z for c in every_time],
                                "cov_rel_error": [c.cov_rel_error for c in every_time],
                                "smallest_pvalue": [c.smallest_pvalue for c in every_time],
                                "pathwise_rms_max_error": law.check.pathwise.per_time}}
    if arm:
        tables["kernel_by_time"] = {"t": times, "ntk_rel_change": arm.summary.change_by_time,
                                    "ntk_rel_change_se": arm.summary.change_se_by_time}
    return tables


def _arrays(result, lim: DeepLimit, law: LawComparison, arm: KernelArm | None, times) -> dict:
    arrays = {"outputs": result.outputs, "loss": result.loss, "times": times, "diverged": result.diverged,
              "limit_mean": lim.mean, "limit_cov": lim.cov, "limit_paths": law.check.paths,
              "limit_nngp": np.asarray(lim.limit.nngp), "limit_ntk": np.asarray(lim.limit.ntk)}
    if arm:
        arrays["empirical_ntk"] = arm.ntk
    return arrays


def _summary(config: DeepConfig, result, data, times, law: LawComparison, arm: KernelArm | None, metrics: dict,
             word: str) -> list[str]:
    verdict, path_err, drift, bures_c = law.check.verdict, law.check.pathwise, law.drift, law.bures_coupled
    c_last = verdict.comparisons[-1]
    summary = [
        f"{result.n_members} fully connected networks of depth {config.depth} and width {config.width} "
        f"({config.activation}, σ_w = {config.weight_scale:g}, σ_b = {config.b_std:g}) trained by gradient descent "
        f"(α = {config.alpha:g}, dt = {config.step:g}) to t = {times[-1]:g} on {data.name}, against the "
        "infinite-width ensemble Gaussian (docs/deep.md).",
        "",
        f"Verdict **{word}** at t = {', '.join(f'{t:g}' for t in verdict.times)} (level {config.level}; smallest "
        f"p-values {', '.join(f'{p:.3g}' for p in verdict.smallest_pvalue_by_time)} against a per-test threshold "
        f"{verdict.threshold:.2g}).",
        f"At t = {times[law.last]:g}: largest mean error {c_last.mean_error_z:.2f} standard errors "
        f"({metrics['mean_error_resolution']}); relative covariance error {c_last.cov_rel_error:.3g} against "
        f"{law.cov_null:.2g} for exact samples ({metrics['cov_rel_error_resolution']}); Bures W2 "
        f"{c_last.bures_w2:.3g} against {law.bures_null:.2g} ({metrics['bures_w2_resolution']}).",
        f"Each network against its own linearised path: RMS over members of the max error {path_err.rms:.3g} ± "
        f"{path_err.se:.1g}.",
        f"Finite-width bias of the mean at t = {times[law.last]:g}, coupled (members minus their own linearised "
        f"paths, free of the initial draw's noise): largest {drift.value[drift.worst]:.3g}, {drift.z:.2f} of its "
        f"own standard errors ({metrics['mean_drift_resolution']}) and {drift.in_units_of(law.mean_se):.2f} "
        f"standard errors of the ensemble mean (its share of the mean "
        f"error above; the rest is the initial draw's noise carried forward). Coupled Bures distance "
        f"{bures_c.value:.2g} ± {bures_c.se:.1g}, noise level {bures_c.noise:.2g}: "
        f"{metrics['bures_w2_coupled_resolution']}.",
    ]
    if arm:
        k = arm.summary
        summary.append(
            f"Empirical NTK of {k.n_members} networks at t = 0: mean within {k.max_abs_z:.2f} "
            f"standard errors of the analytic Θ (each network {k.init_spread:.2g} away, relative); its "
            f"relative change by t = {times[-1]:g}: {k.change_by_time[-1]:.3g} ± "
            f"{k.change_se_by_time[-1]:.1g}.")
    return summary
