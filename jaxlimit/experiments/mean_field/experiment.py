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
from jaxlimit.stats import Gaussian, fit_power_law
from jaxlimit.stats.moments import relative_frobenius, variance_summary
from jaxlimit.stats.nulls import covariance_error_null, max_abs_z_noise
from jaxlimit.stats.verdict import INCONSISTENT, agreement, resolution, verdict_over_times
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


def _mean_se(values: np.ndarray) -> tuple[float, float]:
    v = np.asarray(values, np.float64)
    return float(v.mean()), float(v.std(ddof=1) / math.sqrt(len(v))) if len(v) > 1 else float("nan")


def run(config: MeanFieldConfig) -> Report:
    timing: dict = {}
    warnings: list[str] = []
    problem = two_layer_problem(config, width=config.widths[-1], scaling="mean-field")
    model, data, trainer = problem.model, problem.data, problem.trainer
    times, compare_idx = with_compare_times(problem.times, config.resolve("compare_times"))
    final = len(times) - 1
    full_batch = trainer.method == "fullbatch"
    largest = config.widths[-1]

    with timed(timing, "limit"):
        limit = mean_field_limit(model, data, trainer, times=times, n_particles=config.particles,
                                 fluctuation_particles=config.fluctuation_particles,
                                 seed=stream_seed(config.seed, "quadrature"),
                                 fluctuation_seed=stream_seed(config.seed, "fluctuation-quadrature"),
                                 feature_times=times[compare_idx])
        h_bar = np.asarray(limit.outputs)
    with timed(timing, "fluctuation_prediction"), _warnings.catch_warnings():
        _warnings.simplefilter("ignore", SGDNoiseWarning)  # said once, in the report's warnings
        prediction = limit.predict(times[compare_idx])  # N(h̄_t, C_t / N) at the largest width
    scaled_cov = np.asarray(prediction.cov) * largest  # C_t
    c_final = scaled_cov[-1]
    warnings += limit.warnings()

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
            rows.append(_width_row(width, result, ok, h_bar, scaled_cov, prediction, compare_idx, times,
                                   config.level, test_seed))
    if len(rows) < 2:
        return Report(experiment="mean-field", config={}, metrics={"widths_compared": [r["width"] for r in rows]},
                      verdict={"variance_slope": INCONSISTENT}, timing=timing, warnings=warnings,
                      summary=["Fewer than two widths could be compared; nothing is fitted."])

    widths = np.array([r["width"] for r in rows], dtype=float)
    col = lambda key: np.array([r[key] for r in rows], dtype=float)  # noqa: E731
    fit = fit_power_law(widths, col("variance"), y_err=col("variance_se"))
    variance_word = agreement(fit.slope, -1.0, fit.slope_se, z=AGREEMENT_Z)
    clt_row = rows[-1]
    clt = clt_row["clt"]
    n_null = covariance_error_null(c_final, clt_row["n_members"])
    two = relative_frobenius(rows[-1]["scaled_cov"], rows[-2]["scaled_cov"])
    two_null = math.sqrt(2.0) * n_null
    by_width_null = [covariance_error_null(c_final, r["n_members"]) for r in rows]

    verdict = {"variance_slope": variance_word}
    initial = [c for i, c in zip(compare_idx, clt.comparisons) if times[i] == 0.0]
    initial_rejected = bool(initial) and not initial[0].consistent
    if initial_rejected:
        warnings.append(
            f"the CLT comparison rejects already at t = 0 (smallest p-value {initial[0].smallest_pvalue:.3g}), "
            "where the predicted law is exact: the initial draw of this ensemble is unusual and the later "
            "times inherit it. A false alarm of this kind happens at most at the verdict's level; rerun "
            "with another --seed")
    if full_batch:
        verdict["clt"] = INCONSISTENT if clt_row["n_diverged"] else clt.verdict
    else:
        warnings.append("the CLT verdict is not taken under SGD (the comparison is still reported; expect the "
                        "ensemble covariance to exceed C_t/N)")

    xavier = _xavier_arm(config, problem, times, timing, warnings) if config.xavier_ensemble > 0 else None

    c_last = clt.comparisons[-1]
    big_ok = ensembles[clt_row["width"]][1]
    metrics = {
        "widths": widths.astype(int).tolist(),
        "n_members": config.ensemble,
        "n_diverged": [r["n_diverged"] for r in rows],
        "t_max": float(times[-1]),
        "compare_times": [float(times[i]) for i in compare_idx],
        "limit_outputs_final": h_bar[final],
        "limit_train_loss_final": float(limit.loss_curve[-1]),
        "limit_particles": limit.n_particles,
        "limit_discretisation_error": limit.discretisation_error,
        "limit_quadrature_error": limit.quadrature_error,
        "limit_solver_error": limit.solver_error,
        "variance_final": col("variance").tolist(),
        "variance_final_se": col("variance_se").tolist(),
        "variance_slope": fit.slope,
        "variance_slope_se": fit.slope_se,
        "variance_slope_ci": list(fit.slope_ci),
        "mean_error": col("mean_error").tolist(),
        "mean_error_z": col("mean_error_z").tolist(),
        "mean_error_z_null": col("mean_error_z_null").tolist(),
        "mean_error_resolution": [resolution(r["mean_error_z"], r["mean_error_z_null"]) for r in rows],
        "mean_gap_rms": col("mean_gap_rms").tolist(),
        "mean_gap_rms_noise": col("mean_gap_rms_noise").tolist(),
        "mean_gap_resolution": [r["mean_gap_resolution"] for r in rows],
        "cov_rel_error": clt_row["cov_rel_error"],
        "cov_rel_error_null": n_null,
        "cov_rel_error_resolution": resolution(clt_row["cov_rel_error"], n_null),
        "cov_rel_error_by_width": col("cov_rel_error").tolist(),
        "cov_rel_error_by_width_null": by_width_null,
        "cov_rel_error_by_width_resolution": [resolution(r["cov_rel_error"], null)
                                              for r, null in zip(rows, by_width_null)],
        "scaled_cov_rel_change_two_largest": two,
        "scaled_cov_rel_change_two_largest_null": two_null,
        "scaled_cov_rel_change_two_largest_resolution": resolution(two, two_null),
        "predicted_scaled_variance_final": np.diag(c_final),
        "ensemble_scaled_variance_final": np.diag(clt_row["scaled_cov"]),
        "fluctuation_particles": config.fluctuation_particles,
        "clt_width": clt_row["width"],
        "clt_mean_error_z": [c.mean_error_z for c in clt.comparisons],
        "clt_cov_rel_error": [c.cov_rel_error for c in clt.comparisons],
        "clt_smallest_pvalue_by_time": clt.smallest_pvalue_by_time,
        "clt_per_test_threshold": clt.threshold,
        "clt_min_pvalue": min(clt.smallest_pvalue_by_time),
        "clt_rejected_at_t0": initial_rejected,
        "clt_mardia_kurtosis_pvalue": [c.mardia_kurtosis_pvalue for c in clt.comparisons],
        "clt_verdict_by_width": [r["clt"].verdict for r in rows],
        "rms_parameter_change_final": col("rms_change").tolist(),
        "rms_parameter_change_final_se": col("rms_change_se").tolist(),
        "ntk_change_final": col("ntk_change").tolist(),
        "ntk_change_final_se": col("ntk_change_se").tolist(),
        "final_train_loss_ensemble": float(np.mean(big_ok.loss[:, -1])),
        "final_train_loss_ensemble_se": _mean_se(big_ok.loss[:, -1])[1],
    }
    if xavier is not None:
        metrics.update(xavier["metrics"])

    name, n_big = data.name, clt_row["width"]
    figs = {
        "limit": figures.limit_figure(times, h_bar, np.asarray(limit.loss_curve), big_ok, data,
                                      dict(width=n_big, gamma=1.0, members=big_ok.n_members, data=name)),
        "gap": figures.gap_figure(times, h_bar, big_ok, data,
                                  dict(width=n_big, gamma=1.0, members=big_ok.n_members, data=name)),
        "lln_clt": figures.lln_clt_figure(rows, fit, prediction, compare_idx, times, n_null, data,
                                          dict(widths=metrics["widths"], gamma=1.0, members=config.ensemble,
                                               data=name)),
        "features": figures.features_figure(limit, data, dict(width="∞", gamma=1.0,
                                                               particles=limit.n_particles, data=name)),
    }
    if xavier is not None:
        figs["xavier_vs_mean_field"] = figures.side_by_side_figure(
            rows, ensembles, xavier, times, h_bar,
            dict(widths=metrics["widths"], members=f"{config.ensemble} (mean field), {config.xavier_ensemble} "
                 "(Xavier)", data=name))
    tables = {
        "by_width": {k: [r[k] for r in rows] for k in (
            "width", "n_members", "n_diverged", "variance", "variance_se", "mean_error", "mean_error_z",
            "mean_gap_rms", "mean_gap_rms_noise", "mean_gap_resolution", "cov_rel_error", "rms_change",
            "rms_change_se", "ntk_change", "ntk_change_se")}
        | {"cov_rel_error_null": by_width_null,
           "clt_verdict": [r["clt"].verdict for r in rows],
           "clt_min_pvalue": [min(r["clt"].smallest_pvalue_by_time) for r in rows]},
        "outputs_by_time": _outputs_table(big_ok, h_bar, times, data.n_train),
        "clt_by_time": _clt_table(rows, compare_idx, times),
    }
    arrays = {"times": times, "limit_mean": h_bar, "limit_scaled_cov": scaled_cov,
              "compare_times": times[compare_idx]}
    for width, (result, _) in ensembles.items():
        arrays[f"outputs_N{width}"] = result.outputs
        arrays[f"loss_N{width}"] = result.loss
        arrays[f"diverged_N{width}"] = result.diverged
        for key in ("rms_parameter_change", "ntk_change"):
            arrays[f"{key}_N{width}"] = result.observables[key]
    if xavier is not None:
        tables["xavier_by_width"] = xavier["table"]
        for width, run in xavier["runs"].items():
            arrays[f"xavier_outputs_N{width}"] = run.outputs
    config_extra = {
        "model": model.describe() | {"width": "swept"},
        "trainer": trainer.describe(),
        "times": times.tolist(),
        "limit": limit.describe(),
        "verdict": {"compare_times": metrics["compare_times"], "level": config.level,
                    "correction": "Bonferroni over the compared times",
                    "variance_slope": f"consistent when within {AGREEMENT_Z:g} standard errors of -1"},
    }
    summary = [
        f"Mean-field (γ = 1) networks, {model.activation.name}, widths "
        f"{', '.join(str(w) for w in metrics['widths'])}; "
        f"{config.ensemble} members each, trained by {trainer.method} descent (α = {trainer.alpha:g}) to "
        f"t = {times[-1]:g} on {data.name}; limit from {limit.n_particles} particles (discretisation error "
        f"{limit.discretisation_error:.2g}), covariance from {config.fluctuation_particles} particles.",
        "",
        f"Law of large numbers: variance ∝ N^{fit.slope:.3f} ± {fit.slope_se:.3f} (95% CI {fit.slope_ci[0]:.3f} "
        f"to {fit.slope_ci[1]:.3f}; predicted −1): **{variance_word}**. At N = {clt_row['width']} the largest "
        f"gap of the ensemble mean to h̄ is {clt_row['mean_error']:.2g} ({clt_row['mean_error_z']:.2f} standard "
        f"errors: {metrics['mean_error_resolution'][-1]}); the RMS gap {clt_row['mean_gap_rms']:.2g} against its noise {clt_row['mean_gap_rms_noise']:.2g}: "
        f"{clt_row['mean_gap_resolution']}.",
        f"Central limit theorem at N = {clt_row['width']} against N(h̄_t, C_t/N) at t = "
        f"{', '.join(f'{t:g}' for t in metrics['compare_times'])}: "
        + (f"**{verdict['clt']}**" if full_batch else "not taken (SGD noise is not in C_t)")
        + " (smallest p-values " + ", ".join(f"{p:.3g}" for p in clt.smallest_pvalue_by_time)
        + f" against a per-test threshold {clt.threshold:.2g}). By width: "
        + ", ".join(f"N = {r['width']}: {r['clt'].verdict}" for r in rows) + ".",
        f"Predicted covariance against the ensemble's √N-scaled covariance at t = {times[-1]:g}: relative "
        f"Frobenius error {clt_row['cov_rel_error']:.3f} at N = {clt_row['width']} against {n_null:.3f} for a "
        f"perfect prediction ({metrics['cov_rel_error_resolution']}); by width " + ", ".join(f"{r['width']}: {r['cov_rel_error']:.3f}" for r in rows)
        + f"; between the two largest widths {two:.3f} (noise ≈ {two_null:.3f}: "
        f"{metrics['scaled_cov_rel_change_two_largest_resolution']}).",
        f"At t = {times[-1]:g}: training loss {metrics['final_train_loss_ensemble']:.4g} ± "
        f"{metrics['final_train_loss_ensemble_se']:.1g} (limit {float(limit.loss_curve[-1]):.4g}); mean-field "
        f"parameters move (RMS) {rows[0]['rms_change']:.3g} at N = {rows[0]['width']} and "
        f"{clt_row['rms_change']:.3g} at N = {clt_row['width']}, and the empirical kernel changes by "
        f"{clt_row['ntk_change']:.1%}: the features are learned.",
    ]
    if xavier is not None:
        summary.append(xavier["summary"])
    return Report(experiment="mean-field", config=config_extra, metrics=metrics, verdict=verdict, timing=timing,
                  figures=figs, tables=tables, arrays=arrays, summary=summary, warnings=warnings)


def _width_row(width, result, ok, h_bar, scaled_cov_t, prediction, compare_idx, times, level, seed) -> dict:
    """The statistics of one width: variance, the gap to h̄, the scaled covariance and the CLT."""
    final = len(times) - 1
    c_final = scaled_cov_t[-1]
    out = ok.outputs.astype(np.float64)
    var = variance_summary(out[:, final])
    gap = out[:, final].mean(axis=0) - h_bar[final]
    se = out[:, final].std(axis=0, ddof=1) / math.sqrt(ok.n_members)
    scaled = math.sqrt(width) * (out[:, final] - h_bar[final])
    scaled_cov = np.cov(scaled, rowvar=False)
    # limit.predict is at the largest width; at this width the predicted covariance is C_t / N.
    at_width = Gaussian(np.asarray(prediction.mean), scaled_cov_t / width)
    clt = verdict_over_times(out[:, compare_idx], at_width, range(len(compare_idx)), times=times[compare_idx],
                             level=level, seed=seed)
    rms, rms_se = _mean_se(ok.observables["rms_parameter_change"][:, final])
    ntk, ntk_se = _mean_se(ok.observables["ntk_change"][:, final])
    gap_rms = float(np.sqrt(np.mean(gap**2)))
    noise = float(np.sqrt(np.mean(se**2)))
    return {
        "width": width, "n_members": ok.n_members, "n_diverged": result.n_diverged,
        "variance": var.value, "variance_se": var.se,
        "mean_error": float(np.max(np.abs(gap))), "mean_error_z": float(np.max(np.abs(gap) / se)),
        "mean_error_z_null": max_abs_z_noise(gap.size),
        "mean_gap_rms": gap_rms, "mean_gap_rms_noise": noise, "mean_gap_resolution": resolution(gap_rms, noise),
        "scaled_cov": scaled_cov, "cov_rel_error": relative_frobenius(scaled_cov, c_final),
        "clt": clt, "outputs_final": out[:, final], "rms_change": rms, "rms_change_se": rms_se,
        "ntk_change": ntk, "ntk_change_se": ntk_se,
    }


def _xavier_arm(config, problem, times, timing, warnings) -> dict:
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
    stat = {key: [_mean_se(runs[int(w)].observables[key][:, -1]) for w in widths]
            for key in ("rms_parameter_change", "ntk_change")}
    fits = {key: fit_power_law(widths, [v for v, _ in stat[key]], y_err=[s for _, s in stat[key]])
            for key in stat} if len(widths) >= 2 else {}
    predicted = {"rms_parameter_change": -0.5, "ntk_change": -1.0}
    metrics = {
        "xavier_n_members": config.xavier_ensemble,
        "xavier_widths": widths.astype(int).tolist(),
        "xavier_output_sd_final": [float(np.mean(np.std(runs[int(w)].outputs[:, -1], axis=0, ddof=1)))
                                   for w in widths],
    }
    for key, fit in fits.items():
        metrics |= {
            f"xavier_{key}_final": [v for v, _ in stat[key]],
            f"xavier_{key}_final_se": [s for _, s in stat[key]],
            f"xavier_{key}_slope": fit.slope,
            f"xavier_{key}_slope_se": fit.slope_se,
            f"xavier_{key}_slope_ci": list(fit.slope_ci),
            f"xavier_{key}_slope_predicted": predicted[key],
            f"xavier_{key}_slope_agreement": agreement(fit.slope, predicted[key], fit.slope_se, z=AGREEMENT_Z),
        }
    summary = "Xavier beside it: too few widths." if not fits else (
        f"Xavier (γ = 1/2) beside it, {config.xavier_ensemble} networks per width: parameters move "
        f"∝ N^{fits['rms_parameter_change'].slope:.3f} ± {fits['rms_parameter_change'].slope_se:.3f} (predicted "
        f"−1/2: {metrics['xavier_rms_parameter_change_slope_agreement']}) and the empirical kernel changes "
        f"∝ N^{fits['ntk_change'].slope:.3f} ± {fits['ntk_change'].slope_se:.3f} (predicted −1 for mean-zero c: "
        f"{metrics['xavier_ntk_change_slope_agreement']}; higher orders still count at these widths), while "
        "the output spread stays O(1).")
    table = {"width": widths.astype(int),
             "rms_parameter_change": [v for v, _ in stat["rms_parameter_change"]],
             "rms_parameter_change_se": [s for _, s in stat["rms_parameter_change"]],
             "ntk_change": [v for v, _ in stat["ntk_change"]], "ntk_change_se": [s for _, s in stat["ntk_change"]],
             "output_sd_final": metrics["xavier_output_sd_final"]}
    return {"runs": runs, "metrics": metrics, "summary": summary, "table": table, "fits": fits}


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
        for i, c in zip(compare_idx, r["clt"].comparisons):
            out["width"].append(r["width"])
            out["t"].append(float(times[i]))
            out["smallest_pvalue"].append(c.smallest_pvalue)
            out["mean_error_z"].append(c.mean_error_z)
            out["cov_rel_error"].append(c.cov_rel_error)
            out["mahalanobis_ks_pvalue"].append(c.mahalanobis_ks_pvalue)
            out["energy_pvalue"].append(c.energy_pvalue)
            out["mardia_kurtosis_pvalue"].append(c.mardia_kurtosis_pvalue)
    return out
