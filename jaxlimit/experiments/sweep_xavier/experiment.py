"""``jaxlimit sweep xavier``: one Xavier comparison per width, then slopes in N.

Pathwise: kernel error at initialisation, parameter drift and SGD noise each
move a network O(N^{-1/2}) off its own limit path, so the fitted slope should
be −1/2 (verdict: consistent when the slope's confidence interval, widened by
the tolerance, covers −1/2). Distributional: the coupled Bures distance
(:func:`~jaxlimit.stats.coupling.coupled_bures`) removes the Monte Carlo noise
of the initial draw and leaves the finite-width bias, O(1/N) for mean-zero
symmetric c, plus noise ≈ (N E)^{-1/2}; only widths where the distance is
resolved (more than twice its noise) enter ``slope_bures_resolved``.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from jaxlimit.experiments.against_limit import against_limit, finite_width_members
from jaxlimit.experiments.problem import ensemble_options, timed, two_layer_problem, with_compare_times
from jaxlimit.experiments.sweep_xavier import figures
from jaxlimit.experiments.sweep_xavier.config import SweepXavierConfig
from jaxlimit.limits.xavier import xavier_limit
from jaxlimit.report import Report
from jaxlimit.stats import PowerLawFit, fit_power_law
from jaxlimit.stats.coupling import coupled_bures
from jaxlimit.stats.nulls import bures_null_size
from jaxlimit.stats.verdict import INCONSISTENT, RESOLVED, resolution, slope_agreement
from jaxlimit.streams import stream_seed
from jaxlimit.training import run_ensemble

SLOPE_TOLERANCE = 0.1
"""The pathwise verdict: −1/2 lies within the slope's interval widened by this much (higher orders)."""


@dataclasses.dataclass(frozen=True)
class WidthComparison:
    """One width's finite members against the Xavier limit.

    Attributes:
        width, n_members, n_diverged: N, its finite members and its diverged ones.
        pathwise, pathwise_se: RMS over members of each network's max error against its own limit
            path, with its standard error; ``pathwise_by_time`` the same at every saved time.
        bures, bures_se, bures_noise, bures_resolution: the coupled Bures distance at t_max, its
            standard error, its noise level and whether it is resolved.
        bures_raw: the Bures distance of the sample moments at the last compared time.
        verdict: the Gaussian verdict over the compared times (inconsistent if any member diverged).
        mean_error_z, cov_rel_error: the last compared time's mean error in standard errors and
            relative covariance error.
        min_pvalue: the smallest p-value over the compared times.
    """

    width: int
    n_members: int
    n_diverged: int
    pathwise: float
    pathwise_se: float
    pathwise_by_time: np.ndarray
    bures: float
    bures_se: float
    bures_noise: float
    bures_resolution: str
    bures_raw: float
    verdict: str
    mean_error_z: float
    cov_rel_error: float
    min_pvalue: float


@dataclasses.dataclass(frozen=True)
class Rates:
    """Slopes in N across the compared widths.

    Attributes:
        path: power-law fit of the pathwise error (predicted −1/2); ``rate`` its verdict.
        bures: power-law fit of the coupled Bures distance over every width.
        resolved: per width, whether the Bures distance is resolved; ``bures_resolved`` the fit over
            the resolved widths (None with fewer than two).
        mc_size: the Monte Carlo size of the raw Bures distance for exact samples.
    """

    path: PowerLawFit
    rate: str
    bures: PowerLawFit
    resolved: list
    bures_resolved: PowerLawFit | None
    mc_size: float


TABLE_COLUMNS = ("width", "n_members", "n_diverged", "pathwise", "pathwise_se", "bures", "bures_se", "bures_noise",
                 "bures_resolution", "bures_raw", "verdict", "mean_error_z", "cov_rel_error", "min_pvalue")


def run(config: SweepXavierConfig) -> Report:
    timing: dict = {}
    warnings: list[str] = []
    problem = two_layer_problem(config, width=config.widths[0], scaling="xavier")
    data, trainer = problem.data, problem.trainer
    times, compare_idx = with_compare_times(problem.times, config.resolve("compare_times"))
    with timed(timing, "limit"):
        limit = xavier_limit(problem.model, data, trainer)
        prediction = limit.predict(times)
    warnings += limit.warnings()
    rows = [r for r in (_width(config, problem, limit, prediction, width, times, compare_idx, timing, warnings)
                        for width in config.widths) if r is not None]
    if len(rows) < 2:
        return Report(experiment="sweep-xavier", config={}, metrics={"widths_compared": [r.width for r in rows]},
                      verdict={"pathwise_rate": INCONSISTENT}, timing=timing, warnings=warnings,
                      summary=["Fewer than two widths could be compared; no slope is fitted."])
    rates = _rates(config, rows, prediction, warnings)
    metrics = _metrics(config, rows, rates)
    facts = dict(widths=metrics["widths"], gamma=0.5, members=config.ensemble, data=data.name)
    return Report(
        experiment="sweep-xavier",
        config={"pathwise_verdict": f"-1/2 within the slope's CI widened by {SLOPE_TOLERANCE}",
                "times": times.tolist(), "compare_times": [float(times[i]) for i in compare_idx]},
        metrics=metrics, verdict={"pathwise_rate": rates.rate}, timing=timing,
        figures={"rates": figures.rates_figure(rows, rates.path, rates.bures, rates.bures_resolved, rates.mc_size,
                                               facts),
                 "pathwise_time": figures.pathwise_time_figure(rows, times, facts)},
        tables={"by_width": {k: [getattr(r, k) for r in rows] for k in TABLE_COLUMNS},
                "pathwise_by_time": _by_time(rows, times)},
        summary=_summary(config, problem, rows, rates, times, metrics), warnings=warnings,
    )


def _width(config, problem, limit, prediction, width, times, compare_idx, timing, warnings) -> WidthComparison | None:
    """An ensemble at ``width`` against the limit; None (with a warning) if too few members stayed finite."""
    data, final = problem.data, len(times) - 1
    model = two_layer_problem(config, width=width, scaling="xavier", data=data).model
    with timed(timing, f"ensemble_N{width}"):
        result = run_ensemble(model, data, problem.trainer, times=times, **ensemble_options(config, width))
    ok = finite_width_members(result, width, data.n_train + data.n_probe, warnings)
    if ok is None:
        return None
    mean, cov = np.asarray(prediction.mean), np.asarray(prediction.cov)
    with timed(timing, "comparison"):
        check = against_limit(ok.outputs, limit, prediction, times, compare_idx, level=config.level,
                              seed=stream_seed(config.seed, "tests"))
        bures = coupled_bures(ok.outputs[:, final], check.paths[:, final], mean[final], cov[final],
                              seed=stream_seed(config.seed, "bootstrap", width))
    path_err, verdict, last = check.pathwise, check.verdict, check.verdict.comparisons[-1]
    return WidthComparison(
        width=width, n_members=ok.n_members, n_diverged=result.n_diverged, pathwise=path_err.rms,
        pathwise_se=path_err.se, pathwise_by_time=path_err.per_time, bures=bures.value, bures_se=bures.se,
        bures_noise=bures.noise, bures_resolution=resolution(bures.value, bures.noise, bures.se),
        bures_raw=last.bures_w2, verdict=INCONSISTENT if result.n_diverged else verdict.verdict,
        mean_error_z=last.mean_error_z, cov_rel_error=last.cov_rel_error,
        min_pvalue=min(verdict.smallest_pvalue_by_time))


def _rates(config, rows, prediction, warnings) -> Rates:
    """The pathwise and Bures slopes in N, and the Bures slope over the widths where it is resolved."""
    widths = np.array([r.width for r in rows], dtype=float)
    col = lambda key: np.array([getattr(r, key) for r in rows], dtype=float)  # noqa: E731
    fit_path = fit_power_law(widths, col("pathwise"), y_err=col("pathwise_se"))
    fit_bures = fit_power_law(widths, col("bures"), y_err=col("bures_se"))
    resolved = [r.bures_resolution == RESOLVED for r in rows]
    mc_size = bures_null_size(np.asarray(prediction.mean)[-1], np.asarray(prediction.cov)[-1], config.ensemble,
                              seed=stream_seed(config.seed, "null"))
    rate = slope_agreement(fit_path, -0.5, SLOPE_TOLERANCE)
    if not all(resolved):
        warnings.append("at widths " + ", ".join(str(r.width) for r, k in zip(rows, resolved) if not k)
                        + " the coupled Bures distance is not resolved at this size (less than twice its noise "
                        "level): there it measures estimation noise (∝ (N E)^-1/2), not the finite-width bias, "
                        "and slope_bures is pulled towards -1/2; more members resolve it")
    fit_resolved = None
    if sum(resolved) >= 2:
        keep = np.array(resolved)
        fit_resolved = fit_power_law(widths[keep], col("bures")[keep], y_err=col("bures_se")[keep])
    return Rates(fit_path, rate, fit_bures, resolved, fit_resolved, mc_size)


def _metrics(config, rows, rates: Rates) -> dict:
    fit_resolved = rates.bures_resolved
    return {
        "widths": np.array([r.width for r in rows], dtype=float).astype(int).tolist(),
        "n_members": config.ensemble,
        "slope_pathwise": rates.path.slope,
        "slope_pathwise_ci": list(rates.path.slope_ci),
        "slope_bures": rates.bures.slope,
        "slope_bures_ci": list(rates.bures.slope_ci),
        "slope_bures_resolved": fit_resolved.slope if fit_resolved else None,
        "slope_bures_resolved_ci": list(fit_resolved.slope_ci) if fit_resolved else None,
        "bures_w2_monte_carlo_size": rates.mc_size,
        "gaussian_verdicts": [r.verdict for r in rows],
    }


def _by_time(rows, times) -> dict:
    widths = np.array([r.width for r in rows], dtype=float)
    t_grid, w_grid = np.meshgrid(times, widths, indexing="xy")
    return {"width": w_grid.ravel().astype(int), "t": t_grid.ravel(),
            "pathwise_rms_max_error": np.concatenate([r.pathwise_by_time for r in rows])}


def _summary(config, problem, rows, rates: Rates, times, metrics) -> list[str]:
    fit_path, fit_bures, fit_resolved = rates.path, rates.bures, rates.bures_resolved
    lo, hi = fit_path.slope_ci
    return [
        f"Widths {', '.join(str(w) for w in metrics['widths'])}, {config.ensemble} networks each, "
        f"{problem.model.activation.name}, {problem.trainer.method} SGD to t = {times[-1]:g} on {problem.data.name}.",
        "",
        f"Pathwise error (RMS over members of the max over times and points) ∝ N^{fit_path.slope:.3f}, "
        f"{100 * fit_path.level:g}% CI [{lo:.3f}, {hi:.3f}] (predicted −1/2): **{rates.rate}**.",
        f"Coupled Bures distance at t = {times[-1]:g} ∝ N^{fit_bures.slope:.3f}, CI "
        f"[{fit_bures.slope_ci[0]:.3f}, {fit_bures.slope_ci[1]:.3f}]; resolved at "
        f"{sum(rates.resolved)} of {len(rows)} widths"
        + (f" (slope over those {fit_resolved.slope:.3f}, CI [{fit_resolved.slope_ci[0]:.3f}, "
           f"{fit_resolved.slope_ci[1]:.3f}], predicted −1)" if fit_resolved else "") + ".",
        f"The raw distance of the sample moments stays near its Monte Carlo size ≈ {rates.mc_size:.2g} at every "
        "width.",
        "Gaussian verdict per width: " + ", ".join(f"N = {r.width}: {r.verdict}" for r in rows) + ".",
    ]
