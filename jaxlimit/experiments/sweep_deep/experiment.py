"""``jaxlimit sweep deep``: one deep NTK-regime comparison per width, then rates in n.

Expected (docs/deep.md#finite-width): each network follows
its own linearised path to O(n^{-1/2}); the ensemble's law approaches the
Gaussian at O(1/n); the empirical NTK moves during training by O(n^{-1/2}) or
less. These are open: the sweep reports the fitted exponents with intervals,
and which candidate each one is consistent with.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from jaxlimit.experiments.against_limit import against_limit, finite_width_members
from jaxlimit.experiments.problem import deep_correction, deep_limit, deep_problem, ensemble_options, timed
from jaxlimit.experiments.sweep_deep import figures
from jaxlimit.experiments.sweep_deep.config import SweepDeepConfig
from jaxlimit.limits.empirical import ntk_observable
from jaxlimit.limits.training_correction import TrainingCorrection
from jaxlimit.report import Report
from jaxlimit.stats import PowerLawFit, fit_power_law
from jaxlimit.stats.coupling import mean_drift
from jaxlimit.stats.kernels import kernel_summary
from jaxlimit.stats.nulls import bures_null_size
from jaxlimit.stats.verdict import (
    INCONSISTENT, NOT_RESOLVED, RESOLVED, resolution, slope_agreement, verdict_over_times,
)
from jaxlimit.streams import stream_seed
from jaxlimit.training import run_ensemble

CANDIDATES = {"pathwise": (-0.5,), "moments": (-1.0, -0.5), "ntk_change": (-0.5, -1.0), "mean_drift": (-1.0,)}
"""The exponents each rate is compared with (docs/deep.md)."""


@dataclasses.dataclass(frozen=True)
class WidthResult:
    """One width's comparison with the limit (the fields are the ``by_width`` table's columns, in order).

    Attributes:
        width: the width n.
        n_members: finite members compared.
        n_diverged: members that diverged (left out).
        pathwise: RMS over members of each one's max distance to its own linearised path; ``pathwise_se`` its SE.
        bures: the Gaussian W2 of the law at t_max to the limit; ``bures_se`` its bootstrap spread.
        bures_excess: W2 beyond its Monte Carlo size, sqrt(max(W2² − null², 0)).
        verdict: the calibrated verdict at the compared times (inconsistent when any member diverged).
        min_pvalue: the smallest p-value over the compared times.
        bures_resolution: whether ``bures_excess`` is resolved against ``bures_se``.
        ntk_change, ntk_change_se: the kernel arm's relative NTK change by t_max (None without a kernel arm).
        ntk_init_spread, ntk_init_max_abs_z: the arm's NTK at t = 0 against the analytic Θ.
        mean_drift, mean_drift_se: with --correction-width, the members' mean drift from their own flow paths
            at t_max, at the point where the 1/n coefficient c is largest in size; ``mean_drift_predicted``
            (``_se``) the 1/n theory's, ``mean_drift_correction_z`` their difference in combined standard errors.
        corrected_verdict, corrected_min_pvalue: the verdict against the 1/n-corrected law.
    """

    width: int
    n_members: int
    n_diverged: int
    pathwise: float
    pathwise_se: float
    bures: float
    bures_se: float
    bures_excess: float
    verdict: str
    min_pvalue: float
    bures_resolution: str
    ntk_change: float | None = None
    ntk_change_se: float | None = None
    ntk_init_spread: float | None = None
    ntk_init_max_abs_z: float | None = None
    mean_drift: float | None = None
    mean_drift_se: float | None = None
    mean_drift_predicted: float | None = None
    mean_drift_predicted_se: float | None = None
    mean_drift_correction_z: float | None = None
    corrected_verdict: str | None = None
    corrected_min_pvalue: float | None = None


@dataclasses.dataclass(frozen=True)
class Rates:
    """The rates in n fitted over the compared widths.

    Attributes:
        fits: per rate (``pathwise``, ``moments``, ``ntk_change`` with a kernel arm), the power-law fit,
            None when fewer than two widths resolve it.
        words: per rate, its agreement with each candidate exponent of :data:`CANDIDATES`.
        resolved: per width, whether the law's distance to the Gaussian is resolved (used in ``moments``).
    """

    fits: dict[str, PowerLawFit | None]
    words: dict[str, dict[str, str]]
    resolved: np.ndarray


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
    final = len(times) - 1
    null = bures_null_size(np.asarray(prediction.mean)[final], np.asarray(prediction.cov)[final], config.ensemble,
                           seed=stream_seed(config.seed, "null"))
    correction = None
    if config.correction_width:
        with timed(timing, "correction"):
            correction = deep_correction(config, data, times[-1])
    rows = []
    for width in config.widths:
        row = compare_width(config, width, data, trainer, times, compare_idx, limit, prediction, null, timing,
                            warnings, correction)
        if row is not None:
            rows.append(row)
    if len(rows) < 2:
        return Report(experiment="sweep-deep", config={}, metrics={"widths_compared": [r.width for r in rows]},
                      timing=timing, warnings=warnings,
                      summary=["Fewer than two widths could be compared; no slope is fitted."])

    rates = fit_rates(config, rows)
    if not rates.resolved.all():
        warnings.append("at widths " + ", ".join(str(r.width) for r, k in zip(rows, rates.resolved) if not k)
                        + " the law's distance to the Gaussian is not resolved at this size (within twice its "
                        "bootstrap spread of the Monte Carlo size); more members resolve it")
    metrics = _metrics(config, rows, rates, null)
    facts = dict(depth=config.depth, widths=metrics["widths"], parameterisation="NTK", members=config.ensemble,
                 data=data.name)
    figure = figures.rates_figure(rows, rates.fits, null, facts, bool(config.kernel_ensemble))
    return Report(experiment="sweep-deep", config={"times": times.tolist()}, metrics=metrics, timing=timing,
                  figures={"rates": figure}, tables={"by_width": _table(config, rows)},
                  summary=_summary(config, rows, rates, null, metrics, data, times), warnings=warnings)


def compare_width(config: SweepDeepConfig, width: int, data, trainer, times, compare_idx, limit, prediction,
                  null: float, timing: dict, warnings: list,
                  correction: TrainingCorrection | None = None) -> WidthResult | None:
    """The ensemble (and kernel arm) at ``width`` against the limit; None when too few members stayed finite."""
    _, model, _, _, _ = deep_problem(config, width, data)
    with timed(timing, f"ensemble_n{width}"):
        result = run_ensemble(model, data, trainer, times=times, **ensemble_options(config, width))
    ok = finite_width_members(result, width, data.n_train + data.n_probe, warnings)
    if ok is None:
        return None
    final = len(times) - 1
    mean, cov = np.asarray(prediction.mean)[final], np.asarray(prediction.cov)[final]
    with timed(timing, "comparison"):
        check = against_limit(ok.outputs, limit, prediction, times, compare_idx, level=config.level,
                              seed=stream_seed(config.seed, "tests"))
        path_err, verdict = check.pathwise, check.verdict
        bures = verdict.comparisons[-1].bures_w2
        boot = np.random.default_rng(stream_seed(config.seed, "bootstrap", width))
        resampled = [verdict_free_bures(ok.outputs[boot.integers(0, ok.n_members, ok.n_members), final], mean, cov)
                     for _ in range(100)]
    bures_se, excess = float(np.std(resampled, ddof=1)), _excess(bures, null)
    kernels = {}
    if config.kernel_ensemble:
        with timed(timing, f"kernels_n{width}"):
            options = ensemble_options(config, width, name="members-kernel") | {"n_members": config.kernel_ensemble}
            arm = run_ensemble(model, data, trainer, times=times, observables={"ntk": ntk_observable(model)},
                               **options)
            k = kernel_summary(arm.finite().observables["ntk"], np.asarray(limit.ntk))
        kernels = dict(ntk_change=float(k.change_by_time[-1]), ntk_change_se=float(k.change_se_by_time[-1]),
                       ntk_init_spread=k.init_spread, ntk_init_max_abs_z=k.max_abs_z)
    corrected = {}
    if correction is not None:
        with timed(timing, "comparison"):
            corrected = _against_correction(config, correction, width, ok.outputs, check.paths, times, compare_idx,
                                            result.n_diverged)
        deficit = correction.covariance_deficit(times, width)
        if deficit < 0:
            warnings.append(f"width {width}: the 1/n-corrected covariance has a negative eigenvalue ({deficit:.3g}), "
                            "set to zero: the expansion does not hold at this width, or C is too noisy")
    return WidthResult(width=width, n_members=ok.n_members, n_diverged=result.n_diverged, pathwise=path_err.rms,
                       pathwise_se=path_err.se, bures=bures, bures_se=bures_se, bures_excess=excess,
                       verdict=INCONSISTENT if result.n_diverged else verdict.verdict,
                       min_pvalue=min(verdict.smallest_pvalue_by_time),
                       bures_resolution=resolution(excess, bures_se), **kernels, **corrected)


def _against_correction(config, correction: TrainingCorrection, width: int, outputs, paths, times, compare_idx,
                        n_diverged: int) -> dict:
    """The drift at the point where |c| is largest against c/n, and the verdict against the corrected law."""
    last = len(times) - 1
    point = int(np.argmax(np.abs(correction.shift[correction.steps(times[last:])[0]])))
    drift = mean_drift(outputs[:, last], paths[:, last])
    predicted, predicted_se = (float(a[0, point]) for a in correction.drift(times[last:], width))
    value, se = float(drift.value[point]), float(drift.se[point])
    verdict = verdict_over_times(outputs, correction.predict(times, width), compare_idx, times=times,
                                 level=config.level, seed=stream_seed(config.seed, "tests"))
    return dict(mean_drift=value, mean_drift_se=se, mean_drift_predicted=predicted,
                mean_drift_predicted_se=predicted_se,
                mean_drift_correction_z=(value - predicted) / math.hypot(se, predicted_se),
                corrected_verdict=INCONSISTENT if n_diverged else verdict.verdict,
                corrected_min_pvalue=min(verdict.smallest_pvalue_by_time))


def fit_rates(config: SweepDeepConfig, rows: list[WidthResult]) -> Rates:
    """Power laws in n of the pathwise error, the law's excess W2 (resolved widths only) and the NTK change."""
    widths = np.array([r.width for r in rows], dtype=float)
    col = lambda key: np.array([getattr(r, key) for r in rows], dtype=float)  # noqa: E731
    keep = np.array([r.bures_resolution == RESOLVED for r in rows])
    fits = {"pathwise": fit_power_law(widths, col("pathwise"), y_err=col("pathwise_se")),
            "moments": (fit_power_law(widths[keep], col("bures_excess")[keep], y_err=col("bures_se")[keep])
                        if keep.sum() >= 2 else None)}
    if config.kernel_ensemble:
        fits["ntk_change"] = fit_power_law(widths, col("ntk_change"), y_err=col("ntk_change_se"))
    if config.correction_width:
        drift, drift_se = np.abs(col("mean_drift")), col("mean_drift_se")
        seen = drift > 2.0 * drift_se
        fits["mean_drift"] = (fit_power_law(widths[seen], drift[seen], y_err=drift_se[seen]) if seen.sum() >= 2
                              else None)
    words = {name: ({f"{c:g}": slope_agreement(fit, c, 0.1) for c in CANDIDATES[name]} if fit is not None
                    else {f"{c:g}": NOT_RESOLVED for c in CANDIDATES[name]}) for name, fit in fits.items()}
    return Rates(fits, words, keep)


def _metrics(config: SweepDeepConfig, rows: list[WidthResult], rates: Rates, null: float) -> dict:
    metrics = {"widths": [int(r.width) for r in rows], "n_members": config.ensemble,
               "bures_w2_monte_carlo_size": null, "gaussian_verdicts": [r.verdict for r in rows]}
    for name, fit in rates.fits.items():
        metrics[f"slope_{name}"] = fit.slope if fit else None
        metrics[f"slope_{name}_ci"] = list(fit.slope_ci) if fit else None
        metrics[f"slope_{name}_against"] = rates.words[name]
    return metrics


def _table(config: SweepDeepConfig, rows: list[WidthResult]) -> dict:
    """The ``by_width`` table: one column per field of :class:`WidthResult` (the NTK's with a kernel arm)."""
    names = [f.name for f in dataclasses.fields(WidthResult)]
    if not config.kernel_ensemble:
        names = [n for n in names if not n.startswith("ntk_")]
    if not config.correction_width:
        names = [n for n in names if not n.startswith(("mean_drift", "corrected_"))]
    return {n: [getattr(r, n) for r in rows] for n in names}


def _summary(config: SweepDeepConfig, rows: list[WidthResult], rates: Rates, null: float, metrics: dict, data,
             times) -> list[str]:
    def describe(name, what):
        fit = rates.fits.get(name)
        if fit is None:
            return f"{what}: not resolved at this size (fewer than two resolved widths)."
        against = ", ".join(f"{w} with n^{c}" for c, w in rates.words[name].items())
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
    summary.append("Gaussian verdict per width: " + ", ".join(f"n = {r.width}: {r.verdict}" for r in rows) + ".")
    if config.correction_width:
        summary += [
            describe("mean_drift", f"Mean drift at t = {times[-1]:g} (members minus their flow paths, at the point "
                     "where the 1/n coefficient is largest; widths where it exceeds twice its SE)"),
            "Against the 1/n correction (docs/corrections.md, estimated at width "
            f"{config.correction_width}): " + "; ".join(
                f"n = {r.width}: drift {r.mean_drift:.3g} ± {r.mean_drift_se:.1g}, predicted "
                f"{r.mean_drift_predicted:.3g} ± {r.mean_drift_predicted_se:.1g} (z {r.mean_drift_correction_z:+.2f}), "
                f"corrected verdict {r.corrected_verdict}" for r in rows) + "."]
    return summary


def verdict_free_bures(outputs_t, mean_t, cov_t) -> float:
    """Gaussian W2 between the sample moments of ``outputs_t`` (E, P) and N(mean_t, cov_t)."""
    from jaxlimit.stats import gaussian_w2

    x = np.asarray(outputs_t, np.float64)
    return gaussian_w2(x.mean(axis=0), np.cov(x, rowvar=False), mean_t, cov_t)
