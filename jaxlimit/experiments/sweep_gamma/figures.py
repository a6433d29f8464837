"""Figures of ``jaxlimit sweep gamma``: every title names the widths, the γ values, E and the data."""

from __future__ import annotations

import numpy as np

from jaxlimit.figures import LIMIT_COLOUR, new_figure, run_title, styled, time_colours


def _ticks(ax, values) -> None:
    ax.set_xticks(values, labels=[f"{v:g}" for v in values])
    ax.set_xticks([], minor=True)


@styled
def gamma_figure(widths, per_gamma, facts):
    """Spread and bias against N for each γ, with the fitted and the predicted exponents."""
    fig, (ax1, ax2) = new_figure(1, 2, panel=(5.0, 3.8))
    grid = np.geomspace(widths.min(), widths.max(), 50)
    for i, r in enumerate(per_gamma):
        colour = f"C{i}"
        spread = np.array(r.spread)
        ax1.errorbar(widths, spread, yerr=2 * np.array(r.spread_se), fmt="o", ms=4, capsize=2, color=colour,
                     label=f"γ = {r.gamma:g}: {r.spread_slope:.3f} (asymptotic {r.predicted_spread_slope:g})"
                     if r.spread_slope is not None else f"γ = {r.gamma:g}")
        if r.fit_spread is not None:
            ax1.plot(grid, r.fit_spread.predict(grid), "-", color=colour, lw=1)
            anchor = float(np.exp(np.mean(np.log(r.fit_spread.predict(widths)))))
            x0 = float(np.exp(np.mean(np.log(widths))))
            ax1.plot(grid, anchor * (grid / x0) ** r.predicted_spread_slope, "--", color=colour, lw=0.8)
        bias = np.array(r.bias)
        res = np.array(r.bias_resolved)
        ax2.errorbar(widths[res], bias[res], yerr=2 * np.array(r.bias_se)[res], fmt="o", ms=4, capsize=2,
                     color=colour, label=f"γ = {r.gamma:g}: " + ("not resolved" if r.bias_slope is None else
                                                               f"{r.bias_slope:.2f}")
                     + f" (predicted {r.predicted_bias_slope:g})")
        ax2.plot(widths[~res], bias[~res], "o", mfc="white", ms=4, color=colour)
        ax2.plot(widths, 2 * np.array(r.bias_noise), ":", color=colour, lw=1)
        if r.fit_bias is not None:
            fit = r.fit_bias
            w = widths[res]
            g = np.geomspace(w.min(), w.max(), 20)
            ax2.plot(g, fit.predict(g), "-", color=colour, lw=1)
            anchor = float(np.exp(np.mean(np.log(fit.predict(w)))))
            x0 = float(np.exp(np.mean(np.log(w))))
            ax2.plot(g, anchor * (g / x0) ** r.predicted_bias_slope, "--", color=colour, lw=0.8)
    ax1.set(xscale="log", yscale="log", xlabel="width N", ylabel="output spread at t_max (output units)",
            title="spread: fit (solid)\nasymptotic exponent 1/2 − γ (dashed)")
    ax2.set(xscale="log", yscale="log", xlabel="width N",
            ylabel="RMS bias against kernel regression (output units)",
            title="bias: fit (solid), predicted 2γ − 2 (dashed)\nopen: not resolved; dotted: 2 × its noise")
    for ax in (ax1, ax2):
        _ticks(ax, widths)
        ax.legend()
    fig.suptitle(run_title("Spread and bias across the γ family", **facts,
                           **{"γ": [r.gamma for r in per_gamma]}))
    return fig


@styled
def epsilon_figure(cells, epsilon, gammas, facts):
    """At each width, the bias against ε = N^{γ−1} (γ sets ε): slope 2 if the mean is even in ε."""
    fig, (ax,) = new_figure(1, 1, panel=(7.6, 4.6))
    widths = sorted({c.width for c in cells})
    colours = time_colours(len(widths))
    for colour, width in zip(colours, widths):
        at = [c for c in cells if c.width == width and np.isfinite(c.bias)]
        eps = np.array([c.epsilon for c in at])
        bias = np.array([c.bias for c in at])
        se = np.array([c.bias_se for c in at])
        res = np.array([c.bias_resolution == "resolved" for c in at])
        fit = next(e for e in epsilon if e.width == width)
        label = f"N = {width}" + (f": ε^{fit.exponent:.2f}" if fit.exponent is not None else "")
        ax.errorbar(eps[res], bias[res], yerr=2 * se[res], fmt="o", ms=4, capsize=2, color=colour, label=label)
        ax.plot(eps[~res], bias[~res], "o", mfc="white", ms=4, color=colour)
        if fit.fit is not None:
            g = np.geomspace(min(e for e, c in zip(eps, at) if c.gamma < 1), 1.0, 20)
            ax.plot(g, fit.fit.predict(g), "-", color=colour, lw=1)
    e = np.geomspace(min(c.epsilon for c in cells), 1.0, 20)
    top = max(c.bias for c in cells if np.isfinite(c.bias))
    ax.plot(e, top * e**2, "--", color=LIMIT_COLOUR, lw=1, label="∝ ε² (even in ε: predicted)")
    ax.plot(e, top * e, ":", color=LIMIT_COLOUR, lw=1, label="∝ ε (a first-order term)")
    ax.set(xscale="log", yscale="log", xlabel="ε = N^(γ−1)",
           ylabel="RMS bias against kernel regression (output units)",
           title="bias against ε at each width (open: not resolved; ε = 1 is γ = 1)")
    ax.legend()
    fig.suptitle(run_title("Is the bias even in ε?", **facts, **{"γ": list(gammas)}))
    return fig
