"""One figure style for every experiment, and the plots they share.

Every figure says what was run in its title (N, γ or parameterisation, E,
data) and labels its axes with units; :func:`styled` applies the common
style to a figure-building function. Figures are built without pyplot, so
nothing here touches global plotting state; the report writes each as PNG
and PDF.
"""

from __future__ import annotations

import functools
import math

import matplotlib
import numpy as np
from matplotlib.figure import Figure
from scipy import stats as sps

STYLE = {
    "font.size": 9,
    "axes.titlesize": 9,
    "axes.labelsize": 9,
    "legend.fontsize": 7.5,
    "figure.titlesize": 10,
    "axes.grid": True,
    "grid.alpha": 0.25,
    "lines.linewidth": 1.4,
    "axes.prop_cycle": matplotlib.cycler(color=matplotlib.colormaps["tab10"].colors),
}

ENSEMBLE_COLOUR = "C0"
LIMIT_COLOUR = "k"
TARGET_COLOUR = "C3"


def styled(build):
    """Run a figure-building function under the common style."""

    @functools.wraps(build)
    def wrapper(*args, **kwargs):
        with matplotlib.rc_context(STYLE):
            return build(*args, **kwargs)

    return wrapper


def new_figure(rows: int = 1, cols: int = 1, *, panel=(3.6, 2.9), **subplots):
    """A constrained-layout figure and its axes array (always 1-D)."""
    fig = Figure(figsize=(panel[0] * cols, panel[1] * rows + 0.5), layout="constrained")
    axes = fig.subplots(rows, cols, squeeze=False, **subplots)
    return fig, np.ravel(axes)


def run_title(what: str, **facts) -> str:
    """``"what — N = 1024, γ = 1/2, E = 2048, data: …"`` from the given facts (None skipped)."""
    names = {"width": "N", "widths": "N", "gamma": "γ", "members": "E", "depth": "L",
             "learning_rate": "η", "alpha": "α"}
    parts = []
    for key, value in facts.items():
        if value is None:
            continue
        if key == "data":
            parts.append(f"data: {value}")
        elif key == "gamma":
            parts.append(f"γ = {_fraction(value)}")
        elif isinstance(value, (list, tuple)):
            parts.append(f"{names.get(key, key)} = {min(value)}…{max(value)}")
        else:
            parts.append(f"{names.get(key, key)} = {value:g}" if isinstance(value, float)
                         else f"{names.get(key, key)} = {value}")
    return f"{what} — " + ", ".join(parts) if parts else what


def _fraction(gamma: float) -> str:
    for num, den in ((1, 2), (1, 1), (3, 4), (2, 3), (5, 8), (7, 8)):
        if abs(gamma - num / den) < 1e-12:
            return "1" if num == den else f"{num}/{den}"
    return f"{gamma:g}"


def histogram_bins(x: np.ndarray) -> int:
    """Freedman–Diaconis bins, clipped to [10, 50] so histograms stay readable."""
    x = np.asarray(x, float)
    iqr = float(np.subtract(*np.percentile(x, [75, 25])))
    if iqr <= 0 or len(x) < 2:
        return 10
    width = 2.0 * iqr / len(x) ** (1 / 3)
    return int(np.clip(math.ceil((x.max() - x.min()) / width), 10, 50))


def time_colours(n: int) -> list:
    """n clearly distinct colours ordered in time (early light, late dark)."""
    cmap = matplotlib.colormaps["viridis"]
    return [cmap(0.15 + 0.7 * i / max(n - 1, 1)) for i in range(n)]


def qq_plot(ax, samples, mean: float, sd: float, *, level: float = 0.95, colour=ENSEMBLE_COLOUR,
            label: str | None = None) -> None:
    """Ensemble quantiles against the predicted N(mean, sd²), with a simultaneous band.

    The band is the Kolmogorov–Smirnov one: with probability ``level`` the
    whole empirical CDF of n exact draws lies within ±c/√n of the true CDF
    (c from the KS distribution), so the points leave the band at the stated
    rate for the whole plot, not per point.
    """
    q = np.sort(np.asarray(samples, float))
    n = len(q)
    probs = (np.arange(1, n + 1) - 0.5) / n
    theory = mean + sd * sps.norm.ppf(probs)
    eps = sps.kstwo.ppf(level, n)
    lo = mean + sd * sps.norm.ppf(np.clip(probs - eps, 1e-12, 1 - 1e-12))
    hi = mean + sd * sps.norm.ppf(np.clip(probs + eps, 1e-12, 1 - 1e-12))
    ax.fill_between(theory, lo, hi, color="0.85", label=f"{level:.0%} simultaneous band")
    ax.plot(theory, q, ".", ms=2.5, color=colour, label=label or "ensemble")
    ax.plot([theory[0], theory[-1]], [theory[0], theory[-1]], "-", color=LIMIT_COLOUR, lw=1,
            label="y = x (limit)")
    pad = 0.1 * (q[-1] - q[0])
    ax.set_ylim(min(q[0], theory[0]) - pad, max(q[-1], theory[-1]) + pad)
    ax.set(xlabel="limit quantile (output units)", ylabel="ensemble quantile (output units)")


def gap_with_band(ax, t, gap, se, *, label: str, colour=ENSEMBLE_COLOUR) -> None:
    """A gap (ensemble − limit) over time with its ±2 SE band and the zero line."""
    ax.axhline(0.0, color=LIMIT_COLOUR, lw=0.8)
    ax.fill_between(t, gap - 2 * se, gap + 2 * se, color=colour, alpha=0.25, label="± 2 SE")
    ax.plot(t, gap, color=colour, label=label)


def loglog_fit(ax, x, y, *, fit=None, y_err=None, predicted_slope: float | None = None, label: str = "measured",
               colour=ENSEMBLE_COLOUR) -> None:
    """Values against width on log–log axes, with the fitted and the predicted slope."""
    x = np.asarray(x, float)
    y = np.asarray(y, float)
    ax.errorbar(x, y, yerr=None if y_err is None else 2 * np.asarray(y_err, float), fmt="o", ms=4,
                color=colour, capsize=2, label=label)
    grid = np.geomspace(x.min(), x.max(), 50)
    if fit is not None:
        ax.plot(grid, fit.predict(grid), "-", color=colour, lw=1,
                label=f"fit: slope {fit.slope:.3f} [{fit.slope_ci[0]:.3f}, {fit.slope_ci[1]:.3f}]")
    if predicted_slope is not None and fit is not None:
        anchor = float(np.exp(np.mean(np.log(fit.predict(x)))))
        x0 = float(np.exp(np.mean(np.log(x))))
        ax.plot(grid, anchor * (grid / x0) ** predicted_slope, "--", color=LIMIT_COLOUR, lw=1,
                label=f"predicted slope {predicted_slope:g}")
    ax.set(xscale="log", yscale="log", xlabel="width N")


__all__ = ["ENSEMBLE_COLOUR", "LIMIT_COLOUR", "STYLE", "TARGET_COLOUR", "gap_with_band", "histogram_bins",
           "loglog_fit", "new_figure", "qq_plot", "run_title", "styled", "time_colours"]
