"""Figures of ``jaxlimit feature-learning`` beyond the shared comparison plots (:mod:`jaxlimit.figures`)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from jaxlimit.figures import ENSEMBLE_COLOUR, LIMIT_COLOUR, new_figure, run_title, styled

import numpy as np

if TYPE_CHECKING:
    from jaxlimit.experiments.feature_learning.deep import MeanComparison
    from jaxlimit.experiments.feature_learning.experiment import KernelMovement


@styled
def kernel_figure(times, movement: KernelMovement, facts):
    """Relative NTK movement ‖K_t − K_0‖_F/‖K_0‖_F: the networks' mean NTK and each network's own
    (± 2 SE) against the DMFT's; the lazy limit's is zero."""
    fig, (ax,) = new_figure(1, 1, panel=(5.0, 3.6))
    ch, se = movement.networks_change, movement.networks_change_se
    ax.fill_between(times, ch - 2 * se, ch + 2 * se, color=ENSEMBLE_COLOUR, alpha=0.2, label="each network ± 2 SE")
    ax.plot(times, ch, color=ENSEMBLE_COLOUR, lw=1)
    ax.plot(times, movement.mean_change, "o", ms=3, color=ENSEMBLE_COLOUR,
            label=f"mean NTK of {movement.n_members} networks")
    ax.plot(times, movement.dmft_change, "-", color=LIMIT_COLOUR, lw=1.5, label="DMFT")
    ax.axhline(0.0, color="grey", lw=1, ls="--", label="lazy (NTK) limit")
    ax.set(xlabel="training time t", ylabel="‖K_t − K_0‖_F / ‖K_0‖_F", title="NTK movement")
    ax.legend()
    fig.suptitle(run_title("The NTK moves as the DMFT says", **facts))
    return fig


@styled
def mean_figure(times, mc: MeanComparison, z_null: float, facts):
    """Depth ≥ 2 (mean only): the ensemble mean ± 2 SE at every point against the DMFT mean (± 2 of its
    Monte Carlo SE), and the largest |z| over points at every time against its noise level."""
    fig, (left, right) = new_figure(1, 2, panel=(4.6, 3.6))
    for p in range(mc.mean.shape[1]):
        colour = f"C{p % 10}"
        left.errorbar(times, mc.mean[:, p], 2 * mc.mean_se[:, p], fmt="o", ms=3, color=colour, capsize=2)
        left.plot(times, mc.dmft_mean[:, p], "-", color=colour, lw=1)
        if np.any(mc.dmft_se[:, p] > 0):
            left.fill_between(times, mc.dmft_mean[:, p] - 2 * mc.dmft_se[:, p],
                              mc.dmft_mean[:, p] + 2 * mc.dmft_se[:, p], color=colour, alpha=0.2)
    left.plot([], [], "o", color="grey", label="ensemble ± 2 SE")
    left.plot([], [], "-", color=LIMIT_COLOUR, label="DMFT mean")
    left.set(xlabel="training time t", ylabel="mean output", title="means, every point")
    left.legend()
    right.plot(times, mc.z_by_time, "o-", color=ENSEMBLE_COLOUR, label="largest |z| over points")
    right.axhline(z_null, color="grey", ls=":", label="noise level")
    for t in mc.times:
        right.axvline(t, color="grey", lw=0.5)
    right.set(xlabel="training time t", ylabel="|mean − DMFT| / SE", title="mean error (verdict times: lines)")
    right.legend()
    fig.suptitle(run_title("The mean follows the DMFT (covariance not compared)", **facts))
    return fig
