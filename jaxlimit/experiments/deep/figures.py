"""Figures of ``jaxlimit deep`` beyond the shared comparison plots (:mod:`jaxlimit.figures`)."""

from __future__ import annotations

import numpy as np

from jaxlimit.figures import ENSEMBLE_COLOUR, LIMIT_COLOUR, new_figure, run_title, styled
from jaxlimit.stats.kernels import KernelSummary


@styled
def kernel_figure(times, kernels: KernelSummary, analytic: np.ndarray, initial: np.ndarray, facts):
    """Left: empirical NTK entries at t = 0 (mean ± 2 SE) against the analytic Θ.
    Right: the relative change ‖Θ_t − Θ_0‖_F / ‖Θ_0‖_F over time."""
    fig, (ax1, ax2) = new_figure(1, 2, panel=(4.4, 3.5))
    mean = initial.mean(axis=0).ravel()
    se = initial.std(axis=0, ddof=1).ravel() / np.sqrt(len(initial))
    a = analytic.ravel()
    ax1.errorbar(a, mean, yerr=2 * se, fmt="o", ms=3, color=ENSEMBLE_COLOUR, capsize=2,
                 label=f"mean of {len(initial)} networks ± 2 SE")
    lo, hi = float(min(a.min(), mean.min())), float(max(a.max(), mean.max()))
    ax1.plot([lo, hi], [lo, hi], "-", color=LIMIT_COLOUR, lw=1, label="y = x")
    ax1.set(xlabel="analytic Θ(x, x′)", ylabel="empirical Θ̂(x, x′) at t = 0", title="NTK at initialisation")
    ax1.legend()
    change, change_se = kernels.change_by_time, kernels.change_se_by_time
    ax2.fill_between(times, change - 2 * change_se, change + 2 * change_se, color=ENSEMBLE_COLOUR, alpha=0.25,
                     label="± 2 SE")
    ax2.plot(times, change, color=ENSEMBLE_COLOUR, label="mean over networks")
    ax2.set(xlabel="training time t", ylabel="‖Θ̂_t − Θ̂_0‖_F / ‖Θ̂_0‖_F", title="NTK change during training",
            ylim=(0, None))
    ax2.legend()
    fig.suptitle(run_title("Empirical NTK against the limit", **facts))
    return fig
