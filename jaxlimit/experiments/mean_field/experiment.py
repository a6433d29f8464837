"""``jaxlimit mean-field``: config → ensembles per width → particle-flow limit → comparison → Report.

For each width N an ensemble of mean-field networks is trained on one problem
and compared with the limit h̄_t (docs/mean-field.md, :mod:`jaxlimit.limits.mean_field`):

* **Law of large numbers.** The ensemble mean approaches h̄_t (``mean_error``
  per width, with its size in standard errors) and the ensemble variance
  falls like 1/N: ``variance_slope`` is the weighted log–log slope of the mean
  over points of Var h^N_{t_max} against N, with its interval; consistent when
  within 3 standard errors of −1 (:func:`~jaxlimit.stats.verdict.agreement`).
* **Central limit theorem.** The outputs at the largest width are compared
  with ``limit.predict`` = N(h̄_t, C_t/N) at t = 0, t_max/2 and t_max, with
  the statistics and Bonferroni verdict of ``jaxlimit xavier``
  (docs/statistics.md). C_t is complete for full-batch descent (the default);
  under online or minibatch SGD the data noise adds a covariance of the same
  order, so the verdict is not taken. At t = 0 the prediction is exact at
  every width, so a rejection there (``clt_rejected_at_t0``, with a warning)
  is a false alarm of the initial draw, which the later times inherit. The
  O(1/N) bias of the mean is O(N^-1/2) standard deviations: 0.2 standard
  errors of 2048 members at N = 4096 on the default problem
  (``benchmarks/mean_field_bias.py``).
* **Predicted covariance.** ``cov_rel_error_by_width``: ‖Ĉ_N − C‖_F/‖C‖_F at
  t_max, Ĉ_N the covariance of the √N-scaled outputs, next to its Monte Carlo
  size for a perfect prediction (``cov_rel_error_null``).
* Every width and arm draws its members from its own named stream, so the
  per-width estimates that the slope fit combines are independent.

Xavier beside mean field (``--xavier-ensemble`` networks per width, 0 skips):
the same data, widths and training with γ = 1/2. Parameters move O(N^-1/2)
against O(1); the relative change of the empirical kernel
(:func:`~jaxlimit.limits.empirical.empirical_ntk`) is O(1/N) for Xavier with
mean-zero c (the first-order change is odd in c^i and averages out over the
neurons, docs/mean-field.md#where-careful-simulation-disagrees-with-a-naive-reading)
and O(1) for mean field (learned features).
"""

from __future__ import annotations

import dataclasses
import math
import warnings as _warnings

import jax.numpy as jnp
import numpy as np

from jaxlimit.data import Dataset
from jaxlimit.experiments.mean_field import figures
from jaxlimit.experiments.mean_field.config import MeanFieldConfig
from jaxlimit.experiments.problem import ensemble_options, timed, two_layer_problem, with_compare_times
from jaxlimit.limits.empirical import empirical_ntk
from jaxlimit.limits.mean_field import SGDNoiseWarning, mean_field_limit
from jaxlimit.models.base import Model, PyTree
from jaxlimit.report import Report
from jaxlimit.stats import Gaussian, PowerLawFit, fit_power_law, mean_estimate
from jaxlimit.stats.moments import relative_frobenius, variance_summary
from jaxlimit.stats.nulls import covariance_error_null, max_abs_z_noise
from jaxlimit.stats.verdict import INCONSISTENT, TimeVerdict, agreement, resolution, verdict_over_times
from jaxlimit.streams import stream_seed
from jaxlimit.training import rms_parameter_change, run_ensemble

AGREEMENT_Z = 3.0
"""A fitted slope is consistent with its prediction within this many standard errors."""


def ntk_change_observable(model: Model):
    """An observable ``fn(params, params0, data)``: ‖Θ_t − Θ_0‖_F / ‖Θ_0‖_F on all points,
    Θ the learning-rate-scaled empirical NTK."""

    def ntk_change(params: PyTree, params0: PyTree, data: Dataset):
        k0 = empirical_ntk(model, params0, data.x_all)
        kt = empirical_ntk(model, params, data.x_all)
        return jnp.linalg.norm(kt - k0) / jnp.linalg.norm(k0)

    return ntk_change


def _arm(config, problem, width: int, scaling: str, n_members: int, times):
    model = two_layer_problem(config, width=width, scaling=scaling, data=problem.data).model
    options = ensemble_options(config, width, name=f"members-{scaling}") | {"n_members": n_members}
    observables = {"rms_parameter_change": rms_parameter_change, "ntk_change": ntk_change_observable(model)}
    return run_ensemble(model, problem.data, problem.trainer, times=times, observables=observables, **options)


@dataclasses.dataclass(frozen=True)
class Limit:
    """The particle-flow limit and its prediction at the compared times.

    Attributes:
        flow: the solved limit (:func:`~jaxlimit.limits.mean_field.mean_field_limit`).
        h_bar: h̄_t at every saved time, shape (T, P).
        prediction: N(h̄_t, C_t / N) at the compared times, N the largest width.
        scaled_cov: C_t at the compared times, shape (K, P, P).
    """

    flow: object
    h_bar: np.ndarray
    prediction: Gaussian
    scaled_cov: np.ndarray


@dataclasses.dataclass(frozen=True)
class WidthStats:
    """The statistics of one mean-field width at t_max (finite members only).

    Attributes:
        width, n_members, n_diverged: N, its finite members and its diverged ones.
        variance, variance_se: mean over points of Var h^N_{t_max}, with its standard error.
        mean_error, mean_error_z, mean_error_z_null: max over points of |mean − h̄| at t_max, in
            standard errors, and the size that max reaches by noise alone.
        mean_gap_rms, mean_gap_rms_noise, mean_gap_resolution: the RMS over points of that gap
            against the RMS of its standard errors, and the word for the two.
        scaled_cov, cov_rel_error: the covariance Ĉ_N of √N (h^N − h̄) at t_max and ‖Ĉ_N − C‖_F/‖C‖_F.
        clt: the Bonferroni verdict against N(h̄_t, C_t/N) at the compared times.
        outputs_final: the finite members' outputs at t_max, (E, P).
        rms_change, rms_change_se, ntk_change, ntk_change_se: the mean over members of the RMS
            parameter change and of the relative empirical-kernel change at t_max, with standard errors.
    """

    width: int
    n_members: int
    n_diverged: int
    variance: float
    variance_se: float
    mean_error: float
    mean_error_z: float
    mean_error_z_null: float
    mean_gap_rms: float
    mean_gap_rms_noise: float
    mean_gap_resolution: str
    scaled_cov: np.ndarray
    cov_rel_error: float
    clt: TimeVerdict
    outputs_final: np.ndarray
    rms_change: float
    rms_change_se: float
    ntk_change: float
    ntk_change_se: float


@dataclasses.dataclass(frozen=True)
class AcrossWidths:
    """What the widths say together.

    Attributes:
        fit: the weighted power-law fit of the variance against N (predicted slope −1).
        variance_word: whether that slope is within :data:`AGREEMENT_Z` standard errors of −1.
        cov_null: Monte Carlo size of ``cov_rel_error`` for a perfect prediction at the largest width.
        cov_null_by_width: the same at every width.
        two: ‖Ĉ_N − Ĉ_N'‖_F/‖Ĉ_N'‖_F between the two largest widths, and ``two_null`` its noise.
        initial: the largest width's CLT comparison at t = 0 (None when t = 0 is not compared), and
            ``initial_rejected`` whether it rejects.
    """

    fit: PowerLawFit
    variance_word: str
    cov_null: float
    cov_null_by_width: list
    two: float
    two_null: float
    initial: object
    initial_rejected: bool


@dataclasses.dataclass(frozen=True)
class XavierArm:
    """Xavier ensembles at the mean-field widths (finite members of those with at least two).

    Attributes:
        runs: width → finite members.
        widths: the widths in ``runs``, ascending.
        estimates: ``"rms_parameter_change"`` / ``"ntk_change"`` → the mean at t_max per width.
        fits: the same keys → power-law fit in N (empty with fewer than two widths).
        output_sd_final: per width, the mean over points of the outputs' standard deviation at t_max.
    """

    runs: dict
    widths: np.ndarray
    estimates: dict
    fits: dict
    output_sd_final: list


XAVIER_PREDICTED = {"rms_parameter_change": -0.5, "ntk_change": -1.0}
"""Predicted exponents in N for Xavier: parameters move O(N^-1/2), the kernel O(1/N) for mean-zero c."""


def run(config: MeanFieldConfig) -> Report:
    timing: dict = {}
    warnings: list[str] = []
    problem = two_layer_problem(config, width=config.widths[-1], scaling="mean-field")
    times, compare_idx = with_compare_times(problem.times, config.resolve("compare_times"))
    limit = _limit(config, problem, times, compare_idx, timing)
    warnings += limit.flow.warnings()
    rows, ensembles = _widths(config, problem, limit, times, compare_idx, timing, warnings)
    if len(rows) < 2:
        return Report(experiment="mean-field", config={}, metrics={"widths_compared": [r.width for r in rows]},
                      verdict={"variance_slope": INCONSISTENT}, timing=timing, warnings=warnings,
                      summary=["Fewer than two widths could be compared; nothing is fitted."])
    across = _across_widths(rows, limit, compare_idx, times)
    verdict = _verdict(problem, rows, across, warnings)
    xavier = _xavier_arm(config, problem, times, timing, warnings) if config.xavier_ensemble > 0 else None
    big_ok = ensembles[rows[-1].width][1]
    metrics = _metrics(config, limit, rows, across, big_ok, xavier, times, compare_idx)
    return Report(experiment="mean-field", config=_config_extra(config, problem, limit, times, metrics),
                  metrics=metrics, verdict=verdict, timing=timing,
                  figures=_figures(config, problem.data, limit, rows, ensembles, across, xavier, times, compare_idx,
                                   metrics),
                  tables=_tables(rows, across, big_ok, xavier, limit, times, compare_idx, problem.data),
                  arrays=_arrays(limit, ensembles, xavier, times, compare_idx),
                  summary=_summary(config, problem, limit, rows, across, verdict, xavier, times, metrics),
                  warnings=warnings)


def _limit(config, problem, times, compare_idx, timing) -> Limit:
    """The particle flow at every saved time and its fluctuation prediction at the compared ones."""
    with timed(timing, "limit"):
        flow = mean_field_limit(problem.model, problem.data, problem.trainer, times=times,
                                n_particles=config.particles, fluctuation_particles=config.fluctuation_particles,
                                seed=stream_seed(config.seed, "quadrature"),
                                fluctuation_seed=stream_seed(config.seed, "fluctuation-quadrature"),
                                feature_times=times[compare_idx])
        h_bar = np.asarray(flow.outputs)
    with timed(timing, "fluctuation_prediction"), _warnings.catch_warnings():
        _warnings.simplefilter("ignore", SGDNoiseWarning)  # said once, in the report's warnings
        prediction = flow.predict(times[compare_idx])  # N(h̄_t, C_t / N) at the largest width
    return Limit(flow, h_bar, prediction, np.asarray(prediction.cov) * config.widths[-1])


def _widths(config, problem, limit: Limit, times, compare_idx, timing, warnings) -> tuple[list, dict]:
    """One mean-field ensemble per width, its own members' stream each, and its statistics."""
    data = problem.data
    rows, ensembles = [], {}
    test_seed = stream_seed(config.seed, "tests")
    for width in config.widths:
        with timed(timing, f"ensemble_N{width}"):
            result = _arm(config, problem, width, "mean-field", config.ensemble, times)
        ok = result.finite()
        if result.n_diverged:
            warnings.append(f"width {width}: {result.n_diverged} of {result.n_members} mean-field members "
                            "diverged and are excluded from every statistic; the limit never diverges")
        if ok.n_members < data.n_train + data.n_probe + 2:
            warnings.append(f"width {width}: too few finite members to compare; the width is left out")
            continue
        ensembles[width] = (result, ok)
        with timed(timing, "comparison"):
            rows.append(_width_row(width, result, ok, limit, compare_idx, times, config.level, test_seed))
    return rows, ensembles


def _width_row(width, result, ok, limit: Limit, compare_idx, times, level, seed) -> WidthStats:
    """The statistics of one width: variance, the gap to h̄, the scaled covariance and the CLT."""
    final = len(times) - 1
    h_bar = limit.h_bar
    out = ok.outputs.astype(np.float64)
    var = variance_summary(out[:, final])
    gap = out[:, final].mean(axis=0) - h_bar[final]
    se = out[:, final].std(axis=0, ddof=1) / math.sqrt(ok.n_members)
    scaled = math.sqrt(width) * (out[:, final] - h_bar[final])
    scaled_cov = np.cov(scaled, rowvar=False)
    # limit.prediction is at the largest width; at this width the predicted covariance is C_t / N.
    at_width = Gaussian(np.asarray(limit.prediction.mean), limit.scaled_cov / width)
    clt = verdict_over_times(out[:, compare_idx], at_width, range(len(compare_idx)), times=times[compare_idx],
                             level=level, seed=seed)
    rms = mean_estimate(ok.observables["rms_parameter_change"][:, final])
    ntk = mean_estimate(ok.observables["ntk_change"][:, final])
    gap_rms = float(np.sqrt(np.mean(gap**2)))
    noise = float(np.sqrt(np.mean(se**2)))
    return WidthStats(
        width=width, n_members=ok.n_members, n_diverged=result.n_diverged, variance=var.value, variance_se=var.se,
        mean_error=float(np.max(np.abs(gap))), mean_error_z=float(np.max(np.abs(gap) / se)),
        mean_error_z_null=max_abs_z_noise(gap.size), mean_gap_rms=gap_rms, mean_gap_rms_noise=noise,
        mean_gap_resolution=resolution(gap_rms, noise), scaled_cov=scaled_cov,
        cov_rel_error=relative_frobenius(scaled_cov, limit.scaled_cov[-1]), clt=clt, outputs_final=out[:, final],
        rms_change=rms.value, rms_change_se=rms.se, ntk_change=ntk.value, ntk_change_se=ntk.se)


def _column(rows, name: str) -> np.ndarray:
    return np.array([getattr(r, name) for r in rows], dtype=float)


def _across_widths(rows, limit: Limit, compare_idx, times) -> AcrossWidths:
    """The variance's slope in N, the covariance errors' noise sizes and the CLT at t = 0."""
    c_final = limit.scaled_cov[-1]
    fit = fit_power_law(_column(rows, "width"), _column(rows, "variance"), y_err=_column(rows, "variance_se"))
    n_null = covariance_error_null(c_final, rows[-1].n_members)
    initial = [c for i, c in zip(compare_idx, rows[-1].clt.comparisons) if times[i] == 0.0]
    return AcrossWidths(
        fit=fit, variance_word=agreement(fit.slope, -1.0, fit.slope_se, z=AGREEMENT_Z), cov_null=n_null,
        cov_null_by_width=[covariance_error_null(c_final, r.n_members) for r in rows],
        two=relative_frobenius(rows[-1].scaled_cov, rows[-2].scaled_cov), two_null=math.sqrt(2.0) * n_null,
        initial=initial[0] if initial else None, initial_rejected=bool(initial) and not initial[0].consistent)


def _verdict(problem, rows, across: AcrossWidths, warnings) -> dict:
    """The variance slope; the CLT at the largest width under full-batch descent only."""
    verdict = {"variance_slope": across.variance_word}
    clt_row = rows[-1]
    if across.initial_rejected:
        warnings.append(
            f"the CLT comparison rejects already at t = 0 (smallest p-value {across.initial.smallest_pvalue:.3g}), "
            "where the predicted law is exact: the initial draw of this ensemble is unusual and the later "
            "times inherit it. A false alarm of this kind happens at most at the verdict's level; rerun "
            "with another --seed")
    if problem.trainer.method == "fullbatch":
        verdict["clt"] = INCONSISTENT if clt_row.n_diverged else clt_row.clt.verdict
    else:
        warnings.append("the CLT verdict is not taken under SGD (the comparison is still reported; expect the "
                        "ensemble covariance to exceed C_t/N)")
    return verdict


def _metrics(config, limit: Limit, rows, across: AcrossWidths, big_ok, xavier, times, compare_idx) -> dict:
    col = lambda name: _column(rows, name).tolist()  # noqa: E731
    clt_row, fit, flow = rows[-1], across.fit, limit.flow
    clt = clt_row.clt
    metrics = {
        "widths": _column(rows, "width").astype(int).tolist(),
        "n_members": config.ensemble,
        "n_diverged": [r.n_diverged for r in rows],
        "t_max": float(times[-1]),
        "compare_times": [float(times[i]) for i in compare_idx],
        "limit_outputs_final": limit.h_bar[-1],
        "limit_train_loss_final": float(flow.loss_curve[-1]),
        "limit_particles": flow.n_particles,
        "limit_discretisation_error": flow.discretisation_error,
        "limit_quadrature_error": flow.quadrature_error,
        "limit_solver_error": flow.solver_error,
        "variance_final": col("variance"),
        "variance_final_se": col("variance_se"),
        "variance_slope": fit.slope,
        "variance_slope_se": fit.slope_se,
        "variance_slope_ci": list(fit.slope_ci),
        "mean_error": col("mean_error"),
        "mean_error_z": col("mean_error_z"),
        "mean_error_z_null": col("mean_error_z_null"),
        "mean_error_resolution": [resolution(r.mean_error_z, r.mean_error_z_null) for r in rows],
        "mean_gap_rms": col("mean_gap_rms"),
        "mean_gap_rms_noise": col("mean_gap_rms_noise"),
        "mean_gap_resolution": [r.mean_gap_resolution for r in rows],
        "cov_rel_error": clt_row.cov_rel_error,
        "cov_rel_error_null": across.cov_null,
        "cov_rel_error_resolution": resolution(clt_row.cov_rel_error, across.cov_null),
        "cov_rel_error_by_width": col("cov_rel_error"),
        "cov_rel_error_by_width_null": across.cov_null_by_width,
        "cov_rel_error_by_width_resolution": [resolution(r.cov_rel_error, null)
                                              for r, null in zip(rows, across.cov_null_by_width)],
        "scaled_cov_rel_change_two_largest": across.two,
        "scaled_cov_rel_change_two_largest_null": across.two_null,
        "scaled_cov_rel_change_two_largest_resolution": resolution(across.two, across.two_null),
        "predicted_scaled_variance_final": np.diag(limit.scaled_cov[-1]),
        "ensemble_scaled_variance_final": np.diag(clt_row.scaled_cov),
        "fluctuation_particles": config.fluctuation_particles,
        "clt_width": clt_row.width,
        "clt_mean_error_z": [c.mean_error_z for c in clt.comparisons],
        "clt_cov_rel_error": [c.cov_rel_error for c in clt.comparisons],
        "clt_smallest_pvalue_by_time": clt.smallest_pvalue_by_time,
        "clt_per_test_threshold": clt.threshold,
        "clt_min_pvalue": min(clt.smallest_pvalue_by_time),
        "clt_rejected_at_t0": across.initial_rejected,
        "clt_mardia_kurtosis_pvalue": [c.mardia_kurtosis_pvalue for c in clt.comparisons],
        "clt_verdict_by_width": [r.clt.verdict for r in rows],
        "rms_parameter_change_final": col("rms_change"),
        "rms_parameter_change_final_se": col("rms_change_se"),
        "ntk_change_final": col("ntk_change"),
        "ntk_change_final_se": col("ntk_change_se"),
        "final_train_loss_ensemble": float(np.mean(big_ok.loss[:, -1])),
        "final_train_loss_ensemble_se": mean_estimate(big_ok.loss[:, -1]).se,
    }
    if xavier is not None:
        metrics.update(_xavier_metrics(config, xavier))
    return metrics


def _figures(config, data, limit: Limit, rows, ensembles, across, xavier, times, compare_idx, metrics) -> dict:
    flow, h_bar, name, n_big = limit.flow, limit.h_bar, data.name, rows[-1].width
    big_ok = ensembles[n_big][1]
    figs = {
        "limit": figures.limit_figure(times, h_bar, np.asarray(flow.loss_curve), big_ok, data,
                                      dict(width=n_big, gamma=1.0, members=big_ok.n_members, data=name)),
        "gap": figures.gap_figure(times, h_bar, big_ok, data,
                                  dict(width=n_big, gamma=1.0, members=big_ok.n_members, data=name)),
        "lln_clt": figures.lln_clt_figure(rows, across.fit, limit.prediction, compare_idx, times, across.cov_null,
                                          data, dict(widths=metrics["widths"], gamma=1.0, members=config.ensemble,
                                                     data=name)),
        "features": figures.features_figure(flow, data, dict(width="∞", gamma=1.0,
                                                              particles=flow.n_particles, data=name)),
    }
    if xavier is not None:
        figs["xavier_vs_mean_field"] = figures.side_by_side_figure(
            rows, ensembles, xavier, times, h_bar,
            dict(widths=metrics["widths"], members=f"{config.ensemble} (mean field), {config.xavier_ensemble} "
                 "(Xavier)", data=name))
    return figs


def _tables(rows, across: AcrossWidths, big_ok, xavier, limit: Limit, times, compare_idx, data) -> dict:
    tables = {
        "by_width": {k: [getattr(r, k) for r in rows] for k in (
            "width", "n_members", "n_diverged", "variance", "variance_se", "mean_error", "mean_error_z",
            "mean_gap_rms", "mean_gap_rms_noise", "mean_gap_resolution", "cov_rel_error", "rms_change",
            "rms_change_se", "ntk_change", "ntk_change_se")}
        | {"cov_rel_error_null": across.cov_null_by_width,
           "clt_verdict": [r.clt.verdict for r in rows],
           "clt_min_pvalue": [min(r.clt.smallest_pvalue_by_time) for r in rows]},
        "outputs_by_time": _outputs_table(big_ok, limit.h_bar, times, data.n_train),
        "clt_by_time": _clt_table(rows, compare_idx, times),
    }
    if xavier is not None:
        tables["xavier_by_width"] = _xavier_table(xavier)
    return tables


def _arrays(limit: Limit, ensembles, xavier, times, compare_idx) -> dict:
    arrays = {"times": times, "limit_mean": limit.h_bar, "limit_scaled_cov": limit.scaled_cov,
              "compare_times": times[compare_idx]}
    for width, (result, _) in ensembles.items():
        arrays[f"outputs_N{width}"] = result.outputs
        arrays[f"loss_N{width}"] = result.loss
        arrays[f"diverged_N{width}"] = result.diverged
        for key in ("rms_parameter_change", "ntk_change"):
            arrays[f"{key}_N{width}"] = result.observables[key]
    if xavier is not None:
        for width, run in xavier.runs.items():
            arrays[f"xavier_outputs_N{width}"] = run.outputs
    return arrays


def _config_extra(config, problem, limit: Limit, times, metrics) -> dict:
    return {
        "model": problem.model.describe() | {"width": "swept"},
        "trainer": problem.trainer.describe(),
        "times": times.tolist(),
        "limit": limit.flow.describe(),
        "verdict": {"compare_times": metrics["compare_times"], "level": config.level,
                    "correction": "Bonferroni over the compared times",
                    "variance_slope": f"consistent when within {AGREEMENT_Z:g} standard errors of -1"},
    }


def _summary(config, problem, limit: Limit, rows, across: AcrossWidths, verdict, xavier, times, metrics) -> list[str]:
    model, data, trainer, flow = problem.model, problem.data, problem.trainer, limit.flow
    full_batch = trainer.method == "fullbatch"
    clt_row, fit = rows[-1], across.fit
    clt = clt_row.clt
    summary = [
        f"Mean-field (γ = 1) networks, {model.activation.name}, widths "
        f"{', '.join(str(w) for w in metrics['widths'])}; "
        f"{config.ensemble} members each, trained by {trainer.method} descent (α = {trainer.alpha:g}) to "
        f"t = {times[-1]:g} on {data.name}; limit from {flow.n_particles} particles (discretisation error "
        f"{flow.discretisation_error:.2g}), covariance from {config.fluctuation_particles} particles.",
        "",
        f"Law of large numbers: variance ∝ N^{fit.slope:.3f} ± {fit.slope_se:.3f} (95% CI {fit.slope_ci[0]:.3f} "
        f"to {fit.slope_ci[1]:.3f}; predicted −1): **{across.variance_word}**. At N = {clt_row.width} the largest "
        f"gap of the ensemble mean to h̄ is {clt_row.mean_error:.2g} ({clt_row.mean_error_z:.2f} standard "
        f"errors: {metrics['mean_error_resolution'][-1]}); the RMS gap {clt_row.mean_gap_rms:.2g} against its "
        f"noise {clt_row.mean_gap_rms_noise:.2g}: {clt_row.mean_gap_resolution}.",
        f"Central limit theorem at N = {clt_row.width} against N(h̄_t, C_t/N) at t = "
        f"{', '.join(f'{t:g}' for t in metrics['compare_times'])}: "
        + (f"**{verdict['clt']}**" if full_batch else "not taken (SGD noise is not in C_t)")
        + " (smallest p-values " + ", ".join(f"{p:.3g}" for p in clt.smallest_pvalue_by_time)
        + f" against a per-test threshold {clt.threshold:.2g}). By width: "
        + ", ".join(f"N = {r.width}: {r.clt.verdict}" for r in rows) + ".",
        f"Predicted covariance against the ensemble's √N-scaled covariance at t = {times[-1]:g}: relative "
        f"Frobenius error {clt_row.cov_rel_error:.3f} at N = {clt_row.width} against {across.cov_null:.3f} for a "
        f"perfect prediction ({metrics['cov_rel_error_resolution']}); by width "
        + ", ".join(f"{r.width}: {r.cov_rel_error:.3f}" for r in rows)
        + f"; between the two largest widths {across.two:.3f} (noise ≈ {across.two_null:.3f}: "
        f"{metrics['scaled_cov_rel_change_two_largest_resolution']}).",
        f"At t = {times[-1]:g}: training loss {metrics['final_train_loss_ensemble']:.4g} ± "
        f"{metrics['final_train_loss_ensemble_se']:.1g} (limit {float(flow.loss_curve[-1]):.4g}); mean-field "
        f"parameters move (RMS) {rows[0].rms_change:.3g} at N = {rows[0].width} and "
        f"{clt_row.rms_change:.3g} at N = {clt_row.width}, and the empirical kernel changes by "
        f"{clt_row.ntk_change:.1%}: the features are learned.",
    ]
    if xavier is not None:
        summary.append(_xavier_summary(config, xavier))
    return summary


def _xavier_arm(config, problem, times, timing, warnings) -> XavierArm:
    """Xavier ensembles at the same widths, for the side-by-side figure."""
    runs = {}
    for width in config.widths:
        with timed(timing, f"xavier_N{width}"):
            result = _arm(config, problem, width, "xavier", config.xavier_ensemble, times)
        if result.n_diverged:
            warnings.append(f"width {width}: {result.n_diverged} Xavier members diverged and are excluded")
        if result.finite().n_members >= 2:
            runs[width] = result.finite()
    widths = np.array(sorted(runs), dtype=float)
    estimates = {key: [mean_estimate(runs[int(w)].observables[key][:, -1]) for w in widths]
                 for key in XAVIER_PREDICTED}
    fits = {key: fit_power_law(widths, [e.value for e in est], y_err=[e.se for e in est])
            for key, est in estimates.items()} if len(widths) >= 2 else {}
    sd = [float(np.mean(np.std(runs[int(w)].outputs[:, -1], axis=0, ddof=1))) for w in widths]
    return XavierArm(runs, widths, estimates, fits, sd)


def _xavier_metrics(config, xavier: XavierArm) -> dict:
    metrics = {
        "xavier_n_members": config.xavier_ensemble,
        "xavier_widths": xavier.widths.astype(int).tolist(),
        "xavier_output_sd_final": xavier.output_sd_final,
    }
    for key, fit in xavier.fits.items():
        predicted = XAVIER_PREDICTED[key]
        metrics |= {
            f"xavier_{key}_final": [e.value for e in xavier.estimates[key]],
            f"xavier_{key}_final_se": [e.se for e in xavier.estimates[key]],
            f"xavier_{key}_slope": fit.slope,
            f"xavier_{key}_slope_se": fit.slope_se,
            f"xavier_{key}_slope_ci": list(fit.slope_ci),
            f"xavier_{key}_slope_predicted": predicted,
            f"xavier_{key}_slope_agreement": agreement(fit.slope, predicted, fit.slope_se, z=AGREEMENT_Z),
        }
    return metrics


def _xavier_summary(config, xavier: XavierArm) -> str:
    if not xavier.fits:
        return "Xavier beside it: too few widths."
    rms, ntk = xavier.fits["rms_parameter_change"], xavier.fits["ntk_change"]
    return (
        f"Xavier (γ = 1/2) beside it, {config.xavier_ensemble} networks per width: parameters move "
        f"∝ N^{rms.slope:.3f} ± {rms.slope_se:.3f} (predicted "
        f"−1/2: {agreement(rms.slope, -0.5, rms.slope_se, z=AGREEMENT_Z)}) and the empirical kernel changes "
        f"∝ N^{ntk.slope:.3f} ± {ntk.slope_se:.3f} (predicted −1 for mean-zero c: "
        f"{agreement(ntk.slope, -1.0, ntk.slope_se, z=AGREEMENT_Z)}; higher orders still count at these widths), "
        "while the output spread stays O(1).")


def _xavier_table(xavier: XavierArm) -> dict:
    est = xavier.estimates
    return {"width": xavier.widths.astype(int),
            "rms_parameter_change": [e.value for e in est["rms_parameter_change"]],
            "rms_parameter_change_se": [e.se for e in est["rms_parameter_change"]],
            "ntk_change": [e.value for e in est["ntk_change"]], "ntk_change_se": [e.se for e in est["ntk_change"]],
            "output_sd_final": xavier.output_sd_final}


def _outputs_table(ok, h_bar, times, n_train) -> dict:
    mean_e = ok.outputs.mean(axis=0)
    se_e = ok.outputs.std(axis=0, ddof=1) / math.sqrt(ok.n_members)
    t_idx, p_idx = np.meshgrid(np.arange(len(times)), np.arange(mean_e.shape[1]), indexing="ij")
    gap = (mean_e - h_bar).ravel()
    return {"t": times[t_idx.ravel()], "point": p_idx.ravel(),
            "kind": np.where(p_idx.ravel() < n_train, "train", "probe"),
            "limit_mean": h_bar.ravel(), "ensemble_mean": mean_e.ravel(), "ensemble_mean_se": se_e.ravel(),
            "gap": gap, "gap_z": gap / np.maximum(se_e.ravel(), 1e-300)}


def _clt_table(rows, compare_idx, times) -> dict:
    out = {k: [] for k in ("width", "t", "smallest_pvalue", "mean_error_z", "cov_rel_error",
                           "mahalanobis_ks_pvalue", "energy_pvalue", "mardia_kurtosis_pvalue")}
    for r in rows:
        for i, c in zip(compare_idx, r.clt.comparisons):
            out["width"].append(r.width)
            out["t"].append(float(times[i]))
            out["smallest_pvalue"].append(c.smallest_pvalue)
            out["mean_error_z"].append(c.mean_error_z)
            out["cov_rel_error"].append(c.cov_rel_error)
            out["mahalanobis_ks_pvalue"].append(c.mahalanobis_ks_pvalue)
            out["energy_pvalue"].append(c.energy_pvalue)
            out["mardia_kurtosis_pvalue"].append(c.mardia_kurtosis_pvalue)
    return out
