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

import math

import numpy as np

from jaxlimit import figures as comparison
from jaxlimit.experiments.against_limit import against_limit, finite_members
from jaxlimit.experiments.deep import figures
from jaxlimit.experiments.deep.config import DeepConfig
from jaxlimit.experiments.problem import deep_limit, deep_problem, ensemble_options, timed
from jaxlimit.limits.empirical import ntk_observable
from jaxlimit.report import Report
from jaxlimit.stats import compare_gaussian
from jaxlimit.stats.coupling import coupled_bures, mean_drift
from jaxlimit.stats.kernels import kernel_summary
from jaxlimit.stats.nulls import bures_null_size, covariance_error_null, max_abs_z_noise
from jaxlimit.stats.verdict import INCONSISTENT, resolution
from jaxlimit.streams import stream_seed
from jaxlimit.training import run_ensemble

LIMIT = "the NTK-regime Gaussian"


def kernel_arm(config, model, data, trainer, times) -> dict | None:
    """Empirical NTKs of ``config.kernel_ensemble`` networks at every saved time: (K, T, P, P)."""
    if config.kernel_ensemble == 0:
        return None
    options = ensemble_options(config, name="members-kernel") | {"n_members": config.kernel_ensemble}
    result = run_ensemble(model, data, trainer, times=times, observables={"ntk": ntk_observable(model)}, **options)
    kernels = result.finite().observables["ntk"].astype(np.float64)
    return {"ntk": kernels, "n_diverged": result.n_diverged}


def run(config: DeepConfig) -> Report:
    timing: dict = {}
    warnings: list[str] = []
    data, model, trainer, times, compare_idx = deep_problem(config, config.width)
    with timed(timing, "limit"):
        limit = deep_limit(config, data)
        prediction = limit.predict(times)
        by_ode = limit.predict_ode(times)
        conditioning = limit.conditioning()
    mean, cov = np.asarray(prediction.mean), np.asarray(prediction.cov)
    rate = conditioning.max_eigenvalue * config.alpha / data.n_train
    if rate * config.step > 0.5:
        warnings.append(f"the step dt = {config.step:g} is large against the fastest mode (α λ_max/M = {rate:.3g}): "
                        "gradient descent departs from the flow by O(dt); use a smaller --step")

    with timed(timing, "ensemble"):
        result = run_ensemble(model, data, trainer, times=times, **ensemble_options(config))
    ok, too_few = finite_members("deep", result, data.n_train + data.n_probe, warnings, timing)
    if too_few:
        return too_few

    test_seed = stream_seed(config.seed, "tests")
    with timed(timing, "comparison"):
        check = against_limit(ok.outputs, limit, prediction, times, compare_idx, level=config.level, seed=test_seed)
        paths, path_err, verdict = check.paths, check.pathwise, check.verdict
        every_time = [compare_gaussian(ok.outputs[:, i], prediction[i], seed=test_seed + i)
                      for i in range(len(times))]
        last = compare_idx[-1]
        cov_null = covariance_error_null(cov[last], ok.n_members)
        bures_null = bures_null_size(mean[last], cov[last], ok.n_members, seed=stream_seed(config.seed, "null"))
        drift = mean_drift(ok.outputs[:, last], paths[:, last])
        mean_se = np.sqrt(np.diagonal(cov[last])) / math.sqrt(ok.n_members)
        bures_c = coupled_bures(ok.outputs[:, last], paths[:, last], mean[last], cov[last],
                                seed=stream_seed(config.seed, "bootstrap"))
        loss_limit = np.asarray(limit.train_loss(prediction))
    with timed(timing, "kernels"):
        arm = kernel_arm(config, model, data, trainer, times)
        kernels = kernel_summary(arm["ntk"], np.asarray(limit.ntk)) if arm else None
    word = INCONSISTENT if result.n_diverged else verdict.verdict

    c_last = verdict.comparisons[-1]
    loss_se = float(np.std(ok.loss[:, -1], ddof=1) / math.sqrt(ok.n_members))
    metrics = {
        "n_members": result.n_members,
        "n_diverged": result.n_diverged,
        "compare_times": list(verdict.times),
        "smallest_pvalue_by_time": verdict.smallest_pvalue_by_time,
        "per_test_threshold": verdict.threshold,
        "mean_error_z": c_last.mean_error_z,
        "mean_error_z_null": max_abs_z_noise(result.outputs.shape[-1]),
        "mean_error_resolution": resolution(c_last.mean_error_z, max_abs_z_noise(result.outputs.shape[-1])),
        "cov_rel_error": c_last.cov_rel_error,
        "cov_rel_error_null": cov_null,
        "cov_rel_error_resolution": resolution(c_last.cov_rel_error, cov_null),
        "bures_w2": c_last.bures_w2,
        "bures_w2_null": bures_null,
        "bures_w2_resolution": resolution(c_last.bures_w2, bures_null),
        "mean_drift": float(drift.value[drift.worst]),
        "mean_drift_z": drift.z,
        "mean_drift_in_mean_se": drift.in_units_of(mean_se),
        "mean_drift_resolution": resolution(drift.z, max_abs_z_noise(result.outputs.shape[-1])),
        "bures_w2_coupled": bures_c.value,
        "bures_w2_coupled_se": bures_c.se,
        "bures_w2_coupled_noise": bures_c.noise,
        "bures_w2_coupled_resolution": resolution(bures_c.value, bures_c.noise, bures_c.se),
        "pathwise_max_error": path_err.rms,
        "pathwise_max_error_se": path_err.se,
        "ntk_min_eigenvalue": conditioning.min_eigenvalue,
        "ntk_condition_number": conditioning.condition_number,
        "kernel_method": limit.kernel_method,
        "kernel_max_error": limit.kernel_error,
        "limit_ode_max_error": float(max(np.max(np.abs(mean - np.asarray(by_ode.mean))),
                                         np.max(np.abs(cov - np.asarray(by_ode.cov))))),
        "final_train_loss_limit": float(loss_limit[-1]),
        "final_train_loss_ensemble": float(np.mean(ok.loss[:, -1])),
        "final_train_loss_ensemble_se": loss_se,
    }
    if kernels:
        metrics.update({
            "kernel_members": kernels["n_members"],
            "ntk_init_max_abs_z": kernels["max_abs_z"],
            "ntk_init_mean_rel_error": kernels["mean_rel_error"],
            "ntk_init_spread": kernels["init_spread"],
            "ntk_change_final": float(kernels["change_by_time"][-1]),
            "ntk_change_final_se": float(kernels["change_se_by_time"][-1]),
        })
    facts = dict(depth=config.depth, width=config.width, parameterisation="NTK", members=ok.n_members,
                 data=data.name)
    figs = {
        "trajectories": comparison.trajectory_figure(ok, prediction, data, facts, limit=LIMIT),
        "marginal": comparison.marginal_figure(ok, prediction, data, facts, limit=LIMIT),
        "effects": comparison.effects_figure(times, every_time, cov, compare_idx, path_err, verdict, facts,
                                             limit=LIMIT),
    }
    tables = {"tests_by_time": {"t": times, "verdict_time": [i in compare_idx for i in range(len(times))],
                                "mean_error_z": [c.mean_error_z for c in every_time],
                                "cov_rel_error": [c.cov_rel_error for c in every_time],
                                "smallest_pvalue": [c.smallest_pvalue for c in every_time],
                                "pathwise_rms_max_error": path_err.per_time}}
    arrays = {"outputs": result.outputs, "loss": result.loss, "times": times, "diverged": result.diverged,
              "limit_mean": mean, "limit_cov": cov, "limit_paths": paths,
              "limit_nngp": np.asarray(limit.nngp), "limit_ntk": np.asarray(limit.ntk)}
    if kernels:
        figs["kernel"] = figures.kernel_figure(times, kernels, np.asarray(limit.ntk), arm["ntk"][:, 0], facts)
        tables["kernel_by_time"] = {"t": times, "ntk_rel_change": kernels["change_by_time"],
                                    "ntk_rel_change_se": kernels["change_se_by_time"]}
        arrays["empirical_ntk"] = arm["ntk"]
    summary = [
        f"{result.n_members} fully connected networks of depth {config.depth} and width {config.width} "
        f"({config.activation}, σ_w = {config.weight_scale:g}, σ_b = {config.b_std:g}) trained by gradient descent "
        f"(α = {config.alpha:g}, dt = {config.step:g}) to t = {times[-1]:g} on {data.name}, against the "
        "infinite-width ensemble Gaussian (docs/deep.md).",
        "",
        f"Verdict **{word}** at t = {', '.join(f'{t:g}' for t in verdict.times)} (level {config.level}; smallest "
        f"p-values {', '.join(f'{p:.3g}' for p in verdict.smallest_pvalue_by_time)} against a per-test threshold "
        f"{verdict.threshold:.2g}).",
        f"At t = {times[last]:g}: largest mean error {c_last.mean_error_z:.2f} standard errors "
        f"({metrics['mean_error_resolution']}); relative covariance error {c_last.cov_rel_error:.3g} against "
        f"{cov_null:.2g} for exact samples ({metrics['cov_rel_error_resolution']}); Bures W2 "
        f"{c_last.bures_w2:.3g} against {bures_null:.2g} ({resolution(c_last.bures_w2, bures_null)}).",
        f"Each network against its own linearised path: RMS over members of the max error {path_err.rms:.3g} ± "
        f"{path_err.se:.1g}.",
        f"Finite-width bias of the mean at t = {times[last]:g}, coupled (members minus their own linearised paths, "
        f"free of the initial draw's noise): largest {drift.value[drift.worst]:.3g}, {drift.z:.2f} of its own standard "
        f"errors ({metrics['mean_drift_resolution']}) and {drift.in_units_of(mean_se):.2f} standard errors of the "
        f"ensemble mean (its share of the mean "
        f"error above; the rest is the initial draw's noise carried forward). Coupled Bures distance "
        f"{bures_c.value:.2g} ± {bures_c.se:.1g}, noise level {bures_c.noise:.2g}: "
        f"{resolution(bures_c.value, bures_c.noise, bures_c.se)}.",
    ]
    if kernels:
        summary.append(
            f"Empirical NTK of {kernels['n_members']} networks at t = 0: mean within {kernels['max_abs_z']:.2f} "
            f"standard errors of the analytic Θ (each network {kernels['init_spread']:.2g} away, relative); its "
            f"relative change by t = {times[-1]:g}: {kernels['change_by_time'][-1]:.3g} ± "
            f"{kernels['change_se_by_time'][-1]:.1g}.")
    return Report(experiment="deep", config={"ensemble": result.config, "times": times.tolist()}, metrics=metrics,
                  verdict={"gaussian_limit": word}, timing=timing, figures=figs, tables=tables, arrays=arrays,
                  summary=summary, warnings=warnings)
