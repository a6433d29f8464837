"""``jaxlimit sweep deep``: one deep NTK-regime comparison per width, then rates in n.

Expected (docs/deep.md#finite-width): each network follows
its own linearised path to O(n^{-1/2}); the ensemble's law approaches the
Gaussian at O(1/n); the empirical NTK moves during training by O(n^{-1/2}) or
less. These are open: the sweep reports the fitted exponents with intervals,
and which candidate each one is consistent with.
"""

from __future__ import annotations

import math

import numpy as np

from jaxlimit.experiments.against_limit import against_limit
from jaxlimit.experiments.problem import deep_limit, deep_problem, ensemble_options, timed
from jaxlimit.experiments.sweep_deep import figures
from jaxlimit.experiments.sweep_deep.config import SweepDeepConfig
from jaxlimit.limits.empirical import ntk_observable
from jaxlimit.report import Report
from jaxlimit.stats import fit_power_law
from jaxlimit.stats.kernels import kernel_summary
from jaxlimit.stats.nulls import bures_null_size
from jaxlimit.stats.verdict import INCONSISTENT, NOT_RESOLVED, RESOLVED, resolution, slope_agreement
from jaxlimit.streams import stream_seed
from jaxlimit.training import run_ensemble

CANDIDATES = {"pathwise": (-0.5,), "moments": (-1.0, -0.5), "ntk_change": (-0.5, -1.0)}
"""The exponents each rate is compared with (docs/deep.md)."""


def _excess(value: float, null: float) -> float:
    """A distance beyond its Monte Carlo size: sqrt(max(W² − null², 0))."""
    return math.sqrt(max(value**2 - null**2, 0.0))


def run(config: SweepDeepConfig) -> Report:
    timing: dict = {}
    warnings: list[str] = []
    data, _, trainer, times, compare_idx = deep_problem(config, config.widths[0])
    with timed(timing, "limit"):
        limit = deep_limit(config, data)
        prediction = limit.predict(times)
    mean, cov = np.asarray(prediction.mean), np.asarray(prediction.cov)
    final = len(times) - 1
    null = bures_null_size(mean[final], cov[final], config.ensemble, seed=stream_seed(config.seed, "null"))
    test_seed = stream_seed(config.seed, "tests")
    n_points = data.n_train + data.n_probe

    rows = []
    for width in config.widths:
        _, model, _, _, _ = deep_problem(config, width, data)
        with timed(timing, f"ensemble_n{width}"):
            result = run_ensemble(model, data, trainer, times=times, **ensemble_options(config, width))
        ok = result.finite()
        if result.n_diverged:
            warnings.append(f"width {width}: {result.n_diverged} members diverged and are excluded")
        if ok.n_members < n_points + 2:
            warnings.append(f"width {width}: too few finite members to compare; the width is left out")
            continue
        with timed(timing, "comparison"):
            check = against_limit(ok.outputs, limit, prediction, times, compare_idx, level=config.level,
                                  seed=test_seed)
            path_err, verdict = check.pathwise, check.verdict
            bures = verdict.comparisons[-1].bures_w2
            boot = np.random.default_rng(stream_seed(config.seed, "bootstrap", width))
            resampled = [verdict_free_bures(ok.outputs[boot.integers(0, ok.n_members, ok.n_members), final],
                                            mean[final], cov[final]) for _ in range(100)]
        row = {"width": width, "n_members": ok.n_members, "n_diverged": result.n_diverged,
               "pathwise": path_err.rms, "pathwise_se": path_err.se,
               "bures": bures, "bures_se": float(np.std(resampled, ddof=1)), "bures_excess": _excess(bures, null),
               "verdict": INCONSISTENT if result.n_diverged else verdict.verdict,
               "min_pvalue": min(verdict.smallest_pvalue_by_time)}
        row["bures_resolution"] = resolution(row["bures_excess"], row["bures_se"])
        if config.kernel_ensemble:
            with timed(timing, f"kernels_n{width}"):
                options = ensemble_options(config, width, name="members-kernel") | {
                    "n_members": config.kernel_ensemble}
                arm = run_ensemble(model, data, trainer, times=times, observables={"ntk": ntk_observable(model)},
                                   **options)
                summary = kernel_summary(arm.finite().observables["ntk"], np.asarray(limit.ntk))
            row.update(ntk_change=float(summary["change_by_time"][-1]),
                       ntk_change_se=float(summary["change_se_by_time"][-1]),
                       ntk_init_spread=summary["init_spread"], ntk_init_max_abs_z=summary["max_abs_z"])
        rows.append(row)
    if len(rows) < 2:
        return Report(experiment="sweep-deep", config={}, metrics={"widths_compared": [r["width"] for r in rows]},
                      timing=timing, warnings=warnings,
                      summary=["Fewer than two widths could be compared; no slope is fitted."])

    widths = np.array([r["width"] for r in rows], dtype=float)
    col = lambda key: np.array([r[key] for r in rows], dtype=float)  # noqa: E731
    fits, words = {}, {}
    fits["pathwise"] = fit_power_law(widths, col("pathwise"), y_err=col("pathwise_se"))
    keep = np.array([r["bures_resolution"] == RESOLVED for r in rows])
    fits["moments"] = (fit_power_law(widths[keep], col("bures_excess")[keep], y_err=col("bures_se")[keep])
                       if keep.sum() >= 2 else None)
    if config.kernel_ensemble:
        fits["ntk_change"] = fit_power_law(widths, col("ntk_change"), y_err=col("ntk_change_se"))
    for name, fit in fits.items():
        words[name] = ({f"{c:g}": slope_agreement(fit, c, 0.1) for c in CANDIDATES[name]} if fit is not None
                       else {f"{c:g}": NOT_RESOLVED for c in CANDIDATES[name]})
    if not keep.all():
        warnings.append("at widths " + ", ".join(str(r["width"]) for r, k in zip(rows, keep) if not k)
                        + " the law's distance to the Gaussian is not resolved at this size (within twice its "
                        "bootstrap spread of the Monte Carlo size); more members resolve it")

    metrics = {"widths": widths.astype(int).tolist(), "n_members": config.ensemble,
               "bures_w2_monte_carlo_size": null, "gaussian_verdicts": [r["verdict"] for r in rows]}
    for name, fit in fits.items():
        metrics[f"slope_{name}"] = fit.slope if fit else None
        metrics[f"slope_{name}_ci"] = list(fit.slope_ci) if fit else None
        metrics[f"slope_{name}_against"] = words[name]
    table = {k: [r.get(k) for r in rows] for k in rows[0]}
    facts = dict(depth=config.depth, widths=metrics["widths"], parameterisation="NTK", members=config.ensemble,
                 data=data.name)

    def describe(name, what):
        fit = fits.get(name)
        if fit is None:
            return f"{what}: not resolved at this size (fewer than two resolved widths)."
        against = ", ".join(f"{w} with n^{c}" for c, w in words[name].items())
        return (f"{what} ∝ n^{fit.slope:.3f}, {100 * fit.level:g}% CI [{fit.slope_ci[0]:.3f}, "
                f"{fit.slope_ci[1]:.3f}]: {against}.")

    summary = [
        f"Depth {config.depth}, widths {', '.join(str(w) for w in metrics['widths'])}, {config.ensemble} networks "
        f"each ({config.activation}, σ_w = {config.weight_scale:g}, σ_b = {config.b_std:g}), gradient descent to "
        f"t = {times[-1]:g} on {data.name} (docs/deep.md).",
        "",
        describe("pathwise", "Each network against its own linearised path (RMS of the max error)"),
        describe("moments", f"Gaussian W2 of the law at t = {times[-1]:g} beyond its Monte Carlo size {null:.2g}"),
    ]
    if config.kernel_ensemble:
        summary.append(describe("ntk_change", "Relative change of the empirical NTK during training"))
    summary.append("Gaussian verdict per width: " + ", ".join(f"n = {r['width']}: {r['verdict']}" for r in rows) + ".")
    return Report(experiment="sweep-deep", config={"times": times.tolist()}, metrics=metrics, timing=timing,
                  figures={"rates": figures.rates_figure(rows, fits, null, facts, bool(config.kernel_ensemble))},
                  tables={"by_width": table}, summary=summary, warnings=warnings)


def verdict_free_bures(outputs_t, mean_t, cov_t) -> float:
    """Gaussian W2 between the sample moments of ``outputs_t`` (E, P) and N(mean_t, cov_t)."""
    from jaxlimit.stats import gaussian_w2

    x = np.asarray(outputs_t, np.float64)
    return gaussian_w2(x.mean(axis=0), np.cov(x, rowvar=False), mean_t, cov_t)
