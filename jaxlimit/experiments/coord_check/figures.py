"""Figures of ``jaxlimit coord-check``: microsoft/mup's picture (one panel per step, coordinate size
against width on log–log axes, one line per layer) with each fitted slope and its band."""

from __future__ import annotations

import numpy as np

from jaxlimit.figures import new_figure, styled


@styled
def coord_figure(result, quantity: str, title: str):
    """Mean over networks ± 2 SE of one quantity against the width, one panel per step t = 1…T (and
    t = 0 for the activations), the fitted power law drawn through each layer's points with its band
    (the slope's interval), the slope and interval in the legend."""
    from jaxlimit.training.coord_check import QUANTITIES

    q = QUANTITIES.index(quantity)
    widths = np.asarray(result.widths, float)
    steps = list(range(0 if quantity == "activation" else 1, result.steps + 1))
    fig, axes = new_figure(1, len(steps), panel=(3.4, 3.0))
    mean = result.sizes.mean(axis=1)
    se = result.sizes.std(axis=1, ddof=1) / np.sqrt(result.sizes.shape[1])
    names = result.layer_names()
    for ax, t in zip(axes, steps):
        for l, name in enumerate(names):
            colour = f"C{l}"
            y, e = mean[:, t, l, q], se[:, t, l, q]
            ok = y > 0
            ax.errorbar(widths[ok], y[ok], yerr=2 * e[ok], fmt="o", ms=3, color=colour, capsize=2)
            label = name
            if t >= 1:
                c = next((c for c in result.checks if (c.layer, c.quantity, c.step) == (name, quantity, t)), None)
                if c is not None and c.fit is not None:
                    lo, hi = c.fit.slope_ci
                    label = f"{name}: {c.fit.slope:+.2f} [{lo:+.2f}, {hi:+.2f}]"
                    grid = np.geomspace(widths[0], widths[-1], 32)
                    centre = float(np.exp(np.log(widths).mean()))
                    ax.plot(grid, c.fit.predict(grid), "-", color=colour, lw=1)
                    if np.isfinite(lo) and np.isfinite(hi):
                        band = c.fit.predict(centre) * np.stack([(grid / centre) ** lo, (grid / centre) ** hi])
                        ax.fill_between(grid, band.min(axis=0), band.max(axis=0), color=colour, alpha=0.15)
            ax.plot([], [], "-o", ms=3, color=colour, label=label)
        ax.set_xscale("log", base=2)
        ax.set_yscale("log", base=2)
        ax.set(xlabel="width n", title=f"t = {t}")
        ax.legend(fontsize=6)
    axes[0].set_ylabel({"activation": "RMS z^l", "change": "RMS (z^l_t − z^l_0)",
                           "update": "RMS m_l ΔW^l h^{l−1}"}[quantity])
    fig.suptitle(title)
    return fig
