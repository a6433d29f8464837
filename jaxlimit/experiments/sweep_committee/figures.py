"""Figures of ``jaxlimit sweep committee``: ε_g of students at the largest D against the ODE, the gap
rates in D, and the escape times against ln D/(2λ)."""

from __future__ import annotations

import textwrap

import numpy as np

from jaxlimit.figures import ENSEMBLE_COLOUR, LIMIT_COLOUR, TARGET_COLOUR, loglog_fit, new_figure, run_title, styled
from jaxlimit.limits.committee import escape_time_cdf


@styled
def gap_figure(rows, fits, window, shown, facts):
    fig, axes = new_figure(1, 3, panel=(4.6, 3.6))
    ax = axes[0]
    a = shown.alpha
    ax.plot(a, shown.eps.T, color=ENSEMBLE_COLOUR, alpha=0.08, lw=0.6)
    ax.plot(a, shown.mean, color=ENSEMBLE_COLOUR, lw=1.5, label=f"ensemble mean (D = {shown.D})")
    ax.plot(a, shown.ode, color=LIMIT_COLOUR, lw=1.5, label="ODE (mean start)")
    ax.axvspan(*window, color=TARGET_COLOUR, alpha=0.1, label="gap window")
    ax.set(yscale="log", xlabel="α = steps / D", ylabel="ε_g", title="students against the ODE")
    ax.legend(fontsize=7)
    dims = [r.dim for r in rows]
    for ax, key, pred, what in ((axes[1], "mean_gap", -1.0, "|mean ε_g gap| over the window"),
                                (axes[2], "rms_gap", -0.5, "pathwise RMS ε_g gap over the window")):
        loglog_fit(ax, dims, np.abs([getattr(r, key) for r in rows]), y_err=[getattr(r, f"{key}_se") for r in rows],
                   fit=fits[key], predicted_slope=pred, label="measured ± 2 SE")
        ax.set(xlabel="input dimension D", ylabel=what, title=what.split(" over")[0])
        ax.set_xticks(dims, labels=[str(d) for d in dims])
        ax.set_xticks([], minor=True)
        ax.legend(fontsize=7)
    if rows[0].curvature_gap_times_D is not None:
        d = np.asarray(dims, float)
        axes[1].plot(d, np.abs(rows[0].curvature_gap_times_D) / d, ":", color=TARGET_COLOUR,
                     label="|½ tr(∇²ε_g Σ)| / D")
        axes[1].legend(fontsize=7)
    fig.suptitle(textwrap.fill(run_title("Soft committee machines: rates in the input dimension", **facts),
                               width=120))
    return fig


@styled
def escape_figure(rows, escapes, fit, rate, facts):
    fig, axes = new_figure(1, 2, panel=(5.0, 3.8))
    ax = axes[0]
    dims = np.array([r.dim for r in rows], float)
    med = np.array([r.escape_median for r in rows], float)
    se = np.array([r.escape_se for r in rows], float)
    ok = np.isfinite(med) & np.isfinite(se)
    ax.errorbar(np.log(dims[ok]), med[ok], yerr=2 * se[ok], fmt="o", color=ENSEMBLE_COLOUR, capsize=2,
                label="median escape ± 2 SE")
    grid = np.linspace(np.log(dims.min()), np.log(dims.max()), 20)
    if fit is not None:
        ax.plot(grid, fit.predict(grid), "-", color=ENSEMBLE_COLOUR, lw=1,
                label=f"fit: slope {fit.slope:.2f} [{fit.slope_ci[0]:.2f}, {fit.slope_ci[1]:.2f}]")
        x0, y0 = float(np.mean(np.log(dims[ok]))), float(np.mean(fit.predict(np.log(dims[ok]))))
        ax.plot(grid, y0 + (grid - x0) / (2 * rate), "--", color=LIMIT_COLOUR, lw=1,
                label=f"slope 1/(2λ) = {1 / (2 * rate):.2f}")
    ax.set(xlabel="ln D", ylabel="escape time α", title="median escape from the plateau")
    ax.legend(fontsize=7)
    ax = axes[1]
    for i, (D, t) in enumerate(escapes.items()):
        shifted = np.sort(t[np.isfinite(t)] - np.log(D) / (2 * rate))
        ax.step(shifted, np.arange(1, len(shifted) + 1) / len(t), where="post", color=f"C{i}", lw=1,
                label=f"D = {D}")
    if ok.any():
        finite = np.concatenate([t[np.isfinite(t)] - np.log(D) / (2 * rate) for D, t in escapes.items()])
        centre = float(np.median(med[ok] - np.log(dims[ok]) / (2 * rate)))
        x = np.linspace(finite.min(), finite.max(), 200) if finite.size else np.linspace(0, 1, 2)
        ax.plot(x, escape_time_cdf(x, centre, rate), "--", color=LIMIT_COLOUR, lw=1.5,
                label="one unstable mode: α = c − ln|ξ|/λ")
    ax.set(xlabel="escape time α − ln D/(2λ)", ylabel="fraction of students escaped",
           title="escape times, shifted by ln D/(2λ)")
    ax.legend(fontsize=7)
    fig.suptitle(textwrap.fill(run_title("Escape from the symmetric plateau", **facts), width=120))
    return fig
