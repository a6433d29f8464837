"""Figures of ``jaxlimit feature-learning`` beyond the shared comparison plots (:mod:`jaxlimit.figures`)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from jaxlimit.figures import ENSEMBLE_COLOUR, LIMIT_COLOUR, new_figure, run_title, styled

if TYPE_CHECKING:
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
