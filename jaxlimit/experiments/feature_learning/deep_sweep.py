"""``jaxlimit sweep feature-learning`` at depth L ≥ 2 or with a nonlinear φ: the ensemble mean against the
deep DMFT's mean across widths (docs/feature-learning.md).

The DMFT is solved once (it does not depend on N). At every width the mean verdict of ``deep.py`` is taken,
and at t_max the gap |ensemble mean − DMFT mean| at one point (the one whose gap is most resolved at the
smallest width, the same at every width) with its standard error √(ŝe² + se_DMFT²). Expected: the gap is the
mean's O(1/N) finite-width shift, ∝ N^-1, fitted over the widths where it exceeds 2 standard errors; each
network's NTK departs from the DMFT's by O(N^-1/2) (its own fluctuation).
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from jaxlimit.experiments.against_limit import finite_width_members
from jaxlimit.experiments.feature_learning.deep import NO_COVARIANCE, compare_mean, deep_limit
from jaxlimit.experiments.feature_learning.experiment import compared_times, ntk_arm, problem, scaled_data
from jaxlimit.experiments.problem import ensemble_options, timed
from jaxlimit.figures import loglog_fit, new_figure, run_title, styled
from jaxlimit.report import Report
from jaxlimit.stats import PowerLawFit, fit_power_law
from jaxlimit.stats.verdict import INCONSISTENT, NOT_RESOLVED, slope_agreement
from jaxlimit.training import run_ensemble

EXPECTED = {"mean": -1.0, "ntk": -0.5}
"""The predicted exponent of each rate in N."""


@dataclasses.dataclass(frozen=True)
class DeepWidthResult:
    """One width against the DMFT mean (the fields are the ``by_width`` table's columns, in order).

    Attributes:
        width, n_members, n_diverged: the width N, the finite members compared and those that diverged.
        verdict: the mean verdict (inconsistent when any member diverged).
        mean_error_z: the largest |z| over points at the last compared time.
        mean_gap, mean_gap_se: |ensemble mean − DMFT mean| at t_max at the sweep's point, and √(ŝe² + se_DMFT²).
        ntk, ntk_se: RMS over the kernel arm of ‖K_t − K_DMFT(t)‖_F/‖K_DMFT(0)‖_F at t_max, with its
            delta-method standard error (None without a kernel arm).
    """

    width: int
    n_members: int
    n_diverged: int
    verdict: str
    mean_error_z: float
    mean_gap: float
    mean_gap_se: float
    ntk: float | None = None
    ntk_se: float | None = None


def run(config) -> Report:
    timing: dict = {}
    warnings: list[str] = []
    data = scaled_data(config)
    times, compare_idx = compared_times(config)
    with timed(timing, "limit"):
        sol = deep_limit(config, data)
    k = sol.at(times)
    last = len(times) - 1
    measured = []  # (width, n_members, n_diverged, verdict, z, gap vector, se vector, ntk)
    for width in config.widths:
        _, model, trainer, _, _ = problem(config, width, data)
        with timed(timing, f"ensemble_n{width}"):
            result = run_ensemble(model, data, trainer, times=times, **ensemble_options(config, width))
        ok = finite_width_members(result, width, data.n_train + data.n_probe, warnings)
        if ok is None:
            continue
        with timed(timing, "comparison"):
            mc = compare_mean(np.asarray(ok.outputs, np.float64), sol, times, compare_idx, config.level)
        ntk = {}
        if config.kernel_ensemble >= 2:
            with timed(timing, f"kernels_n{width}"):
                arm = ntk_arm(config, model, data, trainer, times, width)
            dist = np.linalg.norm(arm[:, last] - sol.ntk[k[last]], axis=(1, 2)) / np.linalg.norm(sol.ntk[0])
            rms = float(np.sqrt(np.mean(dist**2)))
            ntk = {"ntk": rms, "ntk_se": float(np.std(dist**2, ddof=1) / math.sqrt(len(dist)) / (2 * rms))}
        gap = np.abs(mc.mean[last] - mc.dmft_mean[last])
        se = np.sqrt(mc.mean_se[last] ** 2 + mc.dmft_se[last] ** 2)
        measured.append((width, ok.n_members, result.n_diverged,
                         INCONSISTENT if result.n_diverged else mc.verdict, float(mc.tests[-1].mean_error_z),
                         gap, se, ntk))
    if len(measured) < 2:
        return Report(experiment="sweep-feature-learning", config={},
                      metrics={"widths_compared": [m[0] for m in measured]}, timing=timing, warnings=warnings,
                      summary=["Fewer than two widths could be compared; no slope is fitted."])
    point = int(np.argmax(measured[0][5] / measured[0][6]))  # most resolved at the smallest width
    rows = [DeepWidthResult(width=w, n_members=n, n_diverged=d, verdict=v, mean_error_z=z, mean_gap=float(g[point]),
                            mean_gap_se=float(s[point]), **ntk) for w, n, d, v, z, g, s, ntk in measured]
    fits = fit_rates(config, rows)
    words = {key: slope_agreement(f, EXPECTED[key], 0.1) if f is not None else NOT_RESOLVED for key, f in fits.items()}
    metrics = {"widths": [r.width for r in rows], "n_members": config.ensemble, "covariance_compared": False,
               "dmft_exact": bool(sol.exact), "verdicts": [r.verdict for r in rows], "mean_gap_point": point}
    for key, f in fits.items():
        metrics[f"slope_{key}"] = f.slope if f else None
        metrics[f"slope_{key}_ci"] = list(f.slope_ci) if f else None
        metrics[f"slope_{key}_against_{EXPECTED[key]:g}"] = words[key]
    facts = dict(depth=config.depth, widths=metrics["widths"], parameterisation=f"μP, γ₀ = {config.gamma0:g}",
                 members=config.ensemble, data=data.name)
    names = [f.name for f in dataclasses.fields(DeepWidthResult)]
    if config.kernel_ensemble < 2:
        names = [n for n in names if n not in ("ntk", "ntk_se")]
    return Report(experiment="sweep-feature-learning", config={"times": times.tolist(), "dmft_sweeps": int(sol.sweeps)},
                  metrics=metrics, timing=timing, figures={"rates": rates_figure(rows, fits, facts)},
                  tables={"by_width": {n: [getattr(r, n) for r in rows] for n in names}},
                  summary=_summary(config, rows, fits, words, sol, point, data), warnings=warnings)


def fit_rates(config, rows: list[DeepWidthResult]) -> dict[str, PowerLawFit | None]:
    """Power laws in N of the mean gap (widths beyond 2 SE only) and of the NTK distance."""
    widths = np.array([r.width for r in rows], dtype=float)
    col = lambda key: np.array([getattr(r, key) for r in rows], dtype=float)  # noqa: E731
    resolved = col("mean_gap") > 2 * col("mean_gap_se")
    fits = {"mean": (fit_power_law(widths[resolved], col("mean_gap")[resolved], y_err=col("mean_gap_se")[resolved])
                     if resolved.sum() >= 2 else None)}
    if config.kernel_ensemble >= 2:
        fits["ntk"] = fit_power_law(widths, col("ntk"), y_err=col("ntk_se"))
    return fits


def _summary(config, rows, fits, words, sol, point: int, data) -> list[str]:
    def describe(key, what):
        f = fits.get(key)
        if f is None:
            return f"{what}: not resolved at this size (fewer than two widths beyond 2 SE)."
        return (f"{what} ∝ N^{f.slope:.3f}, {100 * f.level:g}% CI [{f.slope_ci[0]:.3f}, {f.slope_ci[1]:.3f}]: "
                f"{words[key]} with N^{EXPECTED[key]:g}.")

    how = "exact" if sol.exact else f"sampled, {config.dmft_samples} sites × {config.dmft_replicas} replicas"
    summary = [
        f"Depth {config.depth}, widths {', '.join(str(r.width) for r in rows)}, {config.ensemble} μP networks each "
        f"({config.activation}, γ₀ = {config.gamma0:g}), gradient descent (dt = {config.step:g}) to t = "
        f"{config.t_max:g} on {data.name}, against the infinite-width DMFT mean on the same steps ({how}; solved "
        "once).",
        "",
        NO_COVARIANCE,
        describe("mean", f"|Ensemble mean − DMFT mean| at t = {config.t_max:g}, point {point}"),
        "Gaps: " + ", ".join(f"N = {r.width}: {r.mean_gap:.3g} ± {r.mean_gap_se:.1g}" for r in rows) + ".",
    ]
    if "ntk" in fits:
        summary.append(describe("ntk", f"Each network's NTK against the DMFT's at t = {config.t_max:g} (relative)"))
    summary.append("Verdict on the mean per width: " + ", ".join(f"N = {r.width}: {r.verdict}" for r in rows) + ".")
    return summary


@styled
def rates_figure(rows: list[DeepWidthResult], fits, facts):
    n = np.array([r.width for r in rows], dtype=float)
    panels = [("mean_gap", "mean", "|ensemble mean − DMFT mean| at t_max", "the mean against the DMFT's")]
    if "ntk" in fits:
        panels.append(("ntk", "ntk", "RMS ‖K_t − K_DMFT(t)‖_F / ‖K(0)‖_F", "each network's NTK at t_max"))
    fig, axes = new_figure(1, len(panels), panel=(4.2, 3.5))
    for ax, (key, fit_key, ylabel, title), colour in zip(axes, panels, ("C1", "C2")):
        loglog_fit(ax, n, [getattr(r, key) for r in rows], y_err=[getattr(r, f"{key}_se") for r in rows],
                   fit=fits.get(fit_key), predicted_slope=EXPECTED[fit_key], label="measured ± 2 SE", colour=colour)
        ax.set(ylabel=ylabel, title=title)
        ax.set_xticks(n, labels=[str(int(w)) for w in n])
        ax.set_xticks([], minor=True)
        ax.legend()
    fig.suptitle(run_title("Rates in the width, feature learning (mean only)", **facts))
    return fig
