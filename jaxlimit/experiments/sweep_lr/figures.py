"""Figures of ``jaxlimit sweep lr``: the loss after the budget against α per width, and the optimal α
against the width with the fitted drift and its band."""

from __future__ import annotations

import numpy as np

from jaxlimit.figures import loglog_fit, new_figure, run_title, styled


@styled
def loss_figure(result, facts):
    """Mean over networks ± 2 SE of the loss after T steps against α, one line per width, each width's
    optimum (geometric mean over networks) marked."""
    fig, axes = new_figure(1, 1, panel=(5.2, 3.8))
    ax = axes[0]
    alphas = np.asarray(result.alphas, float)
    for w, n in enumerate(result.widths):
        final = result.final[w]
        mean, se = final.mean(axis=0), final.std(axis=0, ddof=1) / np.sqrt(final.shape[0])
        ax.errorbar(alphas, mean, yerr=2 * se, fmt="-o", ms=3, capsize=2, color=f"C{w}", label=f"n = {n}")
        if np.isfinite(result.optimum[w]):
            ax.axvline(result.optimum[w], color=f"C{w}", ls=":", lw=1)
    ax.set(xscale="log", yscale="log", xlabel="base learning rate α",
           ylabel=f"training loss after {result.steps} steps (diverged: initial loss)",
           title="loss against α; dotted: each width's optimum")
    ax.legend(fontsize=7)
    fig.suptitle(run_title("Learning-rate sweep", **facts))
    return fig


@styled
def optimum_figure(result, facts):
    """The optimal α against the width on log–log axes: ± 2 SE (over networks, with the grid's
    resolution), the fitted drift with its interval, and slope 0 (transfer)."""
    fig, axes = new_figure(1, 1, panel=(5.2, 3.8))
    ax = axes[0]
    ok = result.resolved
    n = np.asarray(result.widths, float)[ok]
    opt = result.optimum[ok]
    if ok.sum() >= 1:
        # loglog_fit takes a linear error: the log error times the value (delta method)
        loglog_fit(ax, n, opt, y_err=opt * result.optimum_se[ok], fit=result.fit,
                   predicted_slope=0.0 if result.fit is not None else None, label="optimal α ± 2 SE (dashed: no drift)")
    if result.fit is not None and ok.sum() >= 2:
        grid = np.geomspace(n.min(), n.max(), 32)
        centre = float(np.exp(np.log(n).mean()))
        lo, hi = result.fit.slope_ci
        band = result.fit.predict(centre) * np.stack([(grid / centre) ** lo, (grid / centre) ** hi])
        ax.fill_between(grid, band.min(axis=0), band.max(axis=0), alpha=0.15, label="slope interval")
    ax.set_xticks(np.asarray(result.widths, float), labels=[str(w) for w in result.widths])
    ax.set_xticks([], minor=True)
    ax.set(xscale="log", yscale="log", xlabel="width n", ylabel="optimal base learning rate α*",
           title=f"transfer: {result.verdict['transfer']}")
    ax.legend(fontsize=7)
    fig.suptitle(run_title("Optimal learning rate against width", **facts))
    return fig
