"""``jaxlimit sweep feature-learning``: one feature-learning comparison per width, then rates in N.

Expected (docs/feature-learning.md): each network departs from its own DMFT path (its own f₀, the
infinite-width kernels) by O(N^-1/2), the kernels' initial fluctuations; the ensemble mean departs from
the infinite-width mean by the O(1/N) shift; each network's NTK departs from the DMFT's by O(N^-1/2).
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from jaxlimit.experiments.against_limit import against_limit, finite_width_members
from jaxlimit.experiments.feature_learning.experiment import (
    compared_times, limit_of, ntk_arm, problem, scaled_data,
)
from jaxlimit.experiments.feature_learning.config import uses_deep_dmft
from jaxlimit.experiments.feature_learning.sweep_config import SweepFeatureLearningConfig
from jaxlimit.experiments.problem import ensemble_options, timed
from jaxlimit.figures import loglog_fit, new_figure, run_title, styled
from jaxlimit.report import Report
from jaxlimit.stats import Gaussian, PowerLawFit, fit_power_law
from jaxlimit.stats.verdict import INCONSISTENT, NOT_RESOLVED, slope_agreement
from jaxlimit.streams import stream_seed
from jaxlimit.training import run_ensemble

EXPECTED = {"pathwise": -0.5, "mean": -1.0, "ntk": -0.5}
"""The predicted exponent of each rate in N (docs/feature-learning.md)."""


@dataclasses.dataclass(frozen=True)
class WidthResult:
    """One width's comparison with the DMFT law (the fields are the ``by_width`` table's columns, in order).

    Attributes:
        width: the width N.
        n_members: finite members compared.
        n_diverged: members that diverged (left out).
        verdict: the calibrated verdict against N(mean + shift, cov) (inconsistent when any member diverged).
        pathwise: RMS over members of each one's max distance to its own DMFT path; ``pathwise_se`` its SE.
        mean_gap: |ensemble mean − infinite-width mean| at t_max at the point of largest predicted shift;
            ``mean_gap_se`` the ensemble mean's standard error there.
        predicted_shift: |the predicted O(1/N) shift| at that point.
        variance_ratio: the largest |ensemble variance / predicted variance − 1| over points at t_max.
        ntk: RMS over the kernel arm of ‖K_t − K_DMFT(t)‖_F / ‖K_DMFT(0)‖_F at t_max, with its delta-method
            ``ntk_se`` (None without a kernel arm).
    """

    width: int
    n_members: int
    n_diverged: int
    verdict: str
    pathwise: float
    pathwise_se: float
    mean_gap: float
    mean_gap_se: float
    predicted_shift: float
    variance_ratio: float
    ntk: float | None = None
    ntk_se: float | None = None


def run(config: SweepFeatureLearningConfig) -> Report:
    if uses_deep_dmft(config):  # depth ≥ 2 or a nonlinear φ: the deep DMFT's mean alone
        from jaxlimit.experiments.feature_learning import deep_sweep

        return deep_sweep.run(config)
    timing: dict = {}
    warnings: list[str] = []
    data = scaled_data(config)
    rows = []
    for width in config.widths:
        row = compare_width(config, width, data, timing, warnings)
        if row is not None:
            rows.append(row)
    if len(rows) < 2:
        return Report(experiment="sweep-feature-learning", config={},
                      metrics={"widths_compared": [r.width for r in rows]}, timing=timing, warnings=warnings,
                      summary=["Fewer than two widths could be compared; no slope is fitted."])
    fits = fit_rates(config, rows)
    words = {k: slope_agreement(f, EXPECTED[k], 0.1) if f is not None else NOT_RESOLVED for k, f in fits.items()}
    metrics = {"widths": [int(r.width) for r in rows], "n_members": config.ensemble,
               "verdicts": [r.verdict for r in rows]}
    for k, f in fits.items():
        metrics[f"slope_{k}"] = f.slope if f else None
        metrics[f"slope_{k}_ci"] = list(f.slope_ci) if f else None
        metrics[f"slope_{k}_against_{EXPECTED[k]:g}"] = words[k]
    facts = dict(depth=config.depth, widths=metrics["widths"], parameterisation=f"μP, γ₀ = {config.gamma0:g}",
                 members=config.ensemble, data=data.name)
    times, _ = compared_times(config)
    return Report(experiment="sweep-feature-learning", config={"times": times.tolist()}, metrics=metrics,
                  timing=timing, figures={"rates": rates_figure(rows, fits, facts)},
                  tables={"by_width": _table(config, rows)},
                  summary=_summary(config, rows, fits, words, metrics, data), warnings=warnings)


def compare_width(config: SweepFeatureLearningConfig, width: int, data, timing: dict,
                  warnings: list) -> WidthResult | None:
    """The ensemble (and kernel arm) at width N against the DMFT law; None when too few members stayed finite."""
    _, model, trainer, times, compare_idx = problem(config, width, data)
    with timed(timing, "limit"):
        limit = limit_of(config, data, width)
        pred = limit.predict(times)
        shift = np.asarray(limit.mean_correction(times))
        kern = limit.kernels(times, fluctuations=False)
    mean, cov = np.asarray(pred.mean), np.asarray(pred.cov)
    with timed(timing, f"ensemble_n{width}"):
        result = run_ensemble(model, data, trainer, times=times, **ensemble_options(config, width))
    ok = finite_width_members(result, width, data.n_train + data.n_probe, warnings)
    if ok is None:
        return None
    out = ok.outputs.astype(np.float64)
    with timed(timing, "comparison"):
        check = against_limit(out, limit, Gaussian(mean + shift, cov), times, compare_idx, level=config.level,
                              seed=stream_seed(config.seed, "tests"))
    last = len(times) - 1
    m = out[:, last].mean(axis=0)
    se = out[:, last].std(axis=0, ddof=1) / math.sqrt(ok.n_members)
    j = int(np.argmax(np.abs(shift[last])))  # the point with the largest predicted shift (the same at every N)
    ntk = {}
    if config.kernel_ensemble >= 2:
        with timed(timing, f"kernels_n{width}"):
            arm = ntk_arm(config, model, data, trainer, times, width)
        dist = np.linalg.norm(arm[:, last] - kern.ntk[last], axis=(1, 2)) / np.linalg.norm(kern.ntk[0])
        rms = float(np.sqrt(np.mean(dist**2)))
        ntk = {"ntk": rms, "ntk_se": float(np.std(dist**2, ddof=1) / math.sqrt(len(dist)) / (2 * rms))}
    return WidthResult(
        width=width, n_members=ok.n_members, n_diverged=result.n_diverged,
        verdict=INCONSISTENT if result.n_diverged else check.verdict.verdict,
        pathwise=check.pathwise.rms, pathwise_se=check.pathwise.se,
        mean_gap=float(abs(m[j] - mean[last, j])), mean_gap_se=float(se[j]),
        predicted_shift=float(abs(shift[last, j])),
        variance_ratio=float(np.max(np.abs(out[:, last].var(axis=0, ddof=1) / np.diagonal(cov[last]) - 1))), **ntk)


def fit_rates(config: SweepFeatureLearningConfig, rows: list[WidthResult]) -> dict[str, PowerLawFit | None]:
    """Power laws in N of the pathwise gap, the mean gap (widths beyond 2 SE only) and the NTK distance."""
    widths = np.array([r.width for r in rows], dtype=float)
    col = lambda key: np.array([getattr(r, key) for r in rows], dtype=float)  # noqa: E731
    fits = {"pathwise": fit_power_law(widths, col("pathwise"), y_err=col("pathwise_se"))}
    resolved = col("mean_gap") > 2 * col("mean_gap_se")
    fits["mean"] = (fit_power_law(widths[resolved], col("mean_gap")[resolved], y_err=col("mean_gap_se")[resolved])
                    if resolved.sum() >= 2 else None)
    if config.kernel_ensemble >= 2:
        fits["ntk"] = fit_power_law(widths, col("ntk"), y_err=col("ntk_se"))
    return fits


def _table(config: SweepFeatureLearningConfig, rows: list[WidthResult]) -> dict:
    """The ``by_width`` table: one column per field of :class:`WidthResult` (the NTK's with a kernel arm)."""
    names = [f.name for f in dataclasses.fields(WidthResult)]
    if config.kernel_ensemble < 2:
        names = [n for n in names if n not in ("ntk", "ntk_se")]
    return {n: [getattr(r, n) for r in rows] for n in names}


def _summary(config: SweepFeatureLearningConfig, rows: list[WidthResult], fits: dict, words: dict, metrics: dict,
             data) -> list[str]:
    def describe(k, what):
        f = fits.get(k)
        if f is None:
            return f"{what}: not resolved at this size (fewer than two widths beyond 2 SE)."
        return (f"{what} ∝ N^{f.slope:.3f}, {100 * f.level:g}% CI [{f.slope_ci[0]:.3f}, {f.slope_ci[1]:.3f}]: "
                f"{words[k]} with N^{EXPECTED[k]:g}.")

    summary = [
        f"Depth {config.depth}, widths {', '.join(str(w) for w in metrics['widths'])}, {config.ensemble} μP networks "
        f"each ({config.activation}, γ₀ = {config.gamma0:g}), gradient descent (dt = {config.step:g}) to "
        f"t = {config.t_max:g} on {data.name} (docs/feature-learning.md).",
        "",
        describe("pathwise", "Each network against its own DMFT path (RMS of the max error)"),
        describe("mean", f"Ensemble mean against the infinite-width DMFT mean at t = {config.t_max:g}"),
        "Predicted O(1/N) shift at that point: " + ", ".join(
            f"N = {r.width}: {r.predicted_shift:.3g} (measured {r.mean_gap:.3g} ± {r.mean_gap_se:.1g})"
            for r in rows) + ".",
    ]
    if "ntk" in fits:
        summary.append(describe("ntk", f"Each network's NTK against the DMFT's at t = {config.t_max:g} (relative)"))
    summary.append("Verdict per width (against the DMFT law to O(1/N)): "
                   + ", ".join(f"N = {r.width}: {r.verdict}" for r in rows) + ".")
    return summary


@styled
def rates_figure(rows: list[WidthResult], fits, facts):
    n = np.array([r.width for r in rows], dtype=float)
    panels = [("pathwise", "RMS of max |f − own DMFT path|", "each network against its DMFT path"),
              ("mean_gap", "|ensemble mean − DMFT mean| at t_max", "the mean against the infinite-width mean")]
    if "ntk" in fits:
        panels.append(("ntk", "RMS ‖K_t − K_DMFT(t)‖_F / ‖K(0)‖_F", "each network's NTK at t_max"))
    fig, axes = new_figure(1, len(panels), panel=(4.2, 3.5))
    for ax, (key, ylabel, title), colour in zip(axes, panels, ("C0", "C1", "C2")):
        fit_key = {"mean_gap": "mean"}.get(key, key)
        loglog_fit(ax, n, [getattr(r, key) for r in rows], y_err=[getattr(r, f"{key}_se") for r in rows],
                   fit=fits.get(fit_key), predicted_slope=EXPECTED[fit_key], label="measured ± 2 SE", colour=colour)
        if key == "mean_gap":
            ax.plot(n, [r.predicted_shift for r in rows], "k--", lw=1, label="predicted O(1/N) shift")
        ax.set(ylabel=ylabel, title=title)
        ax.set_xticks(n, labels=[str(int(w)) for w in n])
        ax.set_xticks([], minor=True)
        ax.legend()
    fig.suptitle(run_title("Rates in the width, feature learning", **facts))
    return fig
