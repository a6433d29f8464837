"""Figures of ``jaxlimit sweep xavier``."""

from __future__ import annotations

import math

import numpy as np

from jaxlimit.figures import loglog_fit, new_figure, run_title, styled, time_colours


@styled
def rates_figure(rows, fit_path, fit_bures, fit_resolved, mc_size, facts):
    n = np.array([r.width for r in rows], dtype=float)
    fig, (ax1, ax2) = new_figure(1, 2, panel=(4.8, 3.6))
    loglog_fit(ax1, n, [r.pathwise for r in rows], y_err=[r.pathwise_se for r in rows], fit=fit_path,
               predicted_slope=-0.5, label="measured ± 2 SE")
    ax1.set(ylabel="RMS over members of max |h^N_t − h_t| (output units)",
            title="each network against its own limit path")
    ax1.legend()
    resolved = np.array([r.bures_resolution == "resolved" for r in rows])
    b = np.array([r.bures for r in rows])
    loglog_fit(ax2, n, b, y_err=[r.bures_se for r in rows], fit=fit_resolved or fit_bures,
               predicted_slope=-1.0, label="coupled estimate ± 2 SE", colour="C1")
    if (~resolved).any():
        ax2.plot(n[~resolved], b[~resolved], "o", mfc="white", color="C1", label="not resolved at this size")
    ax2.plot(n, [r.bures_noise for r in rows], "v", color="C1", mfc="none", label="its noise level (bootstrap)")
    ax2.axhline(mc_size, color="0.5", ls="--", lw=1, label="Monte Carlo size of the raw distance")
    ax2.set(ylabel="Gaussian W2 distance to the limit (output units)", title="law at t_max against the limit")
    ax2.legend()
    for ax in (ax1, ax2):
        ax.set_xticks(n, labels=[str(int(w)) for w in n])
        ax.set_xticks([], minor=True)
    fig.suptitle(run_title("Rates in the width, Xavier limit", **facts))
    return fig


@styled
def pathwise_time_figure(rows, times, facts):
    fig, (ax,) = new_figure(1, 1, panel=(5.2, 3.8))
    for colour, r in zip(time_colours(len(rows)), rows):
        ax.plot(times, np.asarray(r.pathwise_by_time) * math.sqrt(r.width), color=colour,
                label=f"N = {r.width}")
    ax.set(xlabel="training time t", ylabel=r"$\sqrt{N}$ × RMS over members of max over points",
           title="rescaled pathwise error: the curves collapse if it is ∝ N^-1/2")
    ax.legend()
    fig.suptitle(run_title("Pathwise error over time", **facts))
    return fig
