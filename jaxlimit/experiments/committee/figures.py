"""Figures of ``jaxlimit committee``: ε_g of every student faintly, the ensemble mean, the ODE with its
linear-noise band; an order parameter; the escape times against ln D/(2λ)."""

from __future__ import annotations

import numpy as np

from jaxlimit.figures import ENSEMBLE_COLOUR, LIMIT_COLOUR, TARGET_COLOUR, new_figure, run_title, styled

SHOWN = 200
"""Students drawn faintly."""


@styled
def committee_figure(times, outputs, mean, sd, names, compare, escape, facts,
                     no_plateau: str = "no symmetric plateau\n(it needs K = M ≥ 2 and T = I)"):
    fig, axes = new_figure(1, 3, panel=(4.2, 3.4))
    ax = axes[0]
    ax.plot(times, outputs[:SHOWN, :, 0].T, color=ENSEMBLE_COLOUR, alpha=0.05, lw=0.6)
    ax.plot(times, outputs[:, :, 0].mean(0), color=ENSEMBLE_COLOUR, lw=2, label="ensemble mean")
    ax.plot(times, mean[:, 0], color=LIMIT_COLOUR, lw=1.5, label="ODE (mean start)")
    ax.fill_between(times, mean[:, 0] - 2 * sd[:, 0], mean[:, 0] + 2 * sd[:, 0], color=LIMIT_COLOUR, alpha=0.15,
                    label="± 2 sd (linear noise)")
    for a in compare:
        ax.axvline(a, color=TARGET_COLOUR, lw=0.8, ls=":")
    ax.set(yscale="log", xlabel="α = steps / D", ylabel="ε_g", title="generalisation error")
    ax.legend(fontsize=7)
    ax = axes[1]
    j = names.index("R00")
    ax.plot(times, outputs[:SHOWN, :, j].T, color=ENSEMBLE_COLOUR, alpha=0.05, lw=0.6)
    ax.plot(times, mean[:, j], color=LIMIT_COLOUR, lw=1.5, label="ODE")
    ax.fill_between(times, mean[:, j] - 2 * sd[:, j], mean[:, j] + 2 * sd[:, j], color=LIMIT_COLOUR, alpha=0.15)
    if "v0" in names:  # the trained second layer: student unit 0's v on the same axes
        j = names.index("v0")
        ax.plot(times, outputs[:SHOWN, :, j].T, color=TARGET_COLOUR, alpha=0.05, lw=0.6)
        ax.plot(times, mean[:, j], color=LIMIT_COLOUR, lw=1.5, ls="--", label="ODE v₀")
        ax.fill_between(times, mean[:, j] - 2 * sd[:, j], mean[:, j] + 2 * sd[:, j], color=LIMIT_COLOUR, alpha=0.15)
        ax.set(ylabel="R₀₀ and v₀ (faint: students)", title="R₀₀ and the second layer v₀")
    else:
        ax.set(ylabel="R₀₀", title="overlap of student 0 with teacher 0")
    ax.set(xlabel="α")
    ax.legend(fontsize=7)
    ax = axes[2]
    if escape is not None and np.isfinite(escape.times).any():
        t = escape.times[np.isfinite(escape.times)]
        ax.hist(t, bins=max(5, min(40, len(np.unique(t)))), color=ENSEMBLE_COLOUR, alpha=0.7)
        ax.axvline(escape.predicted_ln_D_over_2_lambda, color=TARGET_COLOUR, lw=1.5, label="ln D / (2λ)")
        ax.set(xlabel="escape time α", ylabel="students", title="escape from the plateau")
        ax.legend(fontsize=7)
    else:
        # No panel to draw: its axes (tick labels included) are hidden, and the text says why.
        ax.set_axis_off()
        ax.xaxis.set_visible(False)
        ax.yaxis.set_visible(False)
        why = (no_plateau if escape is None else
               f"no student escaped the plateau\nby α = {times[-1]:g} (predicted\nln D / (2λ) = "
               f"{escape.predicted_ln_D_over_2_lambda:.3g})")
        ax.text(0.5, 0.5, why, ha="center", va="center", transform=ax.transAxes)
    fig.suptitle(run_title("Soft committee machines against the order-parameter ODEs", **facts))  # wrapped by styled
    return fig
