"""Figures of ``jaxlimit sweep deep``."""

from __future__ import annotations

import numpy as np

from jaxlimit.figures import loglog_fit, new_figure, run_title, styled


@styled
def rates_figure(rows, fits, null, facts, with_kernels: bool):
    n = np.array([r.width for r in rows], dtype=float)
    fig, axes = new_figure(1, 3 if with_kernels else 2, panel=(4.2, 3.5))
    loglog_fit(axes[0], n, [r.pathwise for r in rows], y_err=[r.pathwise_se for r in rows],
               fit=fits["pathwise"], predicted_slope=-0.5, label="measured ± 2 SE")
    axes[0].set(ylabel="RMS over networks of max |f_t − f_t^lin| (output units)",
                title="each network against its linearised path")
    excess = np.array([r.bures_excess for r in rows])
    positive = excess > 0
    if positive.any():
        loglog_fit(axes[1], n[positive], excess[positive], y_err=np.array([r.bures_se for r in rows])[positive],
                   fit=fits["moments"], predicted_slope=-1.0 if fits["moments"] else None,
                   label="W2 beyond the Monte Carlo size", colour="C1")
    axes[1].axhline(null, color="0.5", ls="--", lw=1, label="Monte Carlo size of W2")
    axes[1].set(xscale="log", yscale="log", xlabel="width n", ylabel="Gaussian W2 to the limit (output units)",
                title="the law at t_max against the limit")
    if with_kernels:
        loglog_fit(axes[2], n, [r.ntk_change for r in rows], y_err=[r.ntk_change_se for r in rows],
                   fit=fits.get("ntk_change"), predicted_slope=-0.5, label="mean ± 2 SE", colour="C2")
        axes[2].set(ylabel="‖Θ̂_T − Θ̂_0‖_F / ‖Θ̂_0‖_F", title="empirical NTK change during training")
    for ax in axes:
        ax.set_xticks(n, labels=[str(int(w)) for w in n])
        ax.set_xticks([], minor=True)
        ax.legend()
    fig.suptitle(run_title("Rates in the width, deep networks", **facts))
    return fig
