"""Figures of ``jaxlimit three-layer``: every title names the widths, the parameterisation, E and the data."""

from __future__ import annotations

import textwrap

import numpy as np

from jaxlimit.figures import (
    ENSEMBLE_COLOUR, LIMIT_COLOUR, gap_with_band, loglog_fit, new_figure, run_title, styled, time_colours,
)


def _title(fig, what: str, facts: dict) -> None:
    """The run title, wrapped to the figure's width."""
    fig.suptitle(textwrap.fill(run_title(what, **facts), width=int(13 * fig.get_figwidth())))


def _finite(values) -> np.ndarray:
    return np.asarray([np.nan if v is None else v for v in values], float)


def _per_width_over_time(ax, times, widths, curves, *, ylabel: str, title: str) -> None:
    """One curve per width over time, light (narrow) to dark (wide), on a log scale."""
    for colour, n, curve in zip(time_colours(len(widths)), widths, curves):
        ax.plot(times, curve, color=colour, label=f"n = {n}")
    ax.set(xlabel="training time t", ylabel=ylabel, yscale="log", title=title)
    ax.legend(ncols=2)


def _width_ticks(ax, widths) -> None:
    ax.set_xticks(widths, labels=[str(int(w)) for w in widths])
    ax.set_xticks([], minor=True)


@styled
def gaps_figure(coupling, coupled, facts):
    """Left: the coupled gaps against n_eff with the fitted and the predicted slope. Right: the
    output gap over time, per width."""
    fig, (ax1, ax2) = new_figure(1, 2, panel=(4.8, 3.6))
    n_eff = np.asarray(coupled.n_eff, float)
    for gaps, fit, label, colour in ((coupled.out, coupled.fit_out_nested, "output gap", "C0"),
                                     (coupled.w, coupled.fit_w_nested, "weight gap (leading block)", "C1")):
        values = _finite([e.value for e in gaps])
        ses = _finite([e.se for e in gaps])
        ok = np.isfinite(values) & (values > 0)
        if ok.sum() >= 1:
            loglog_fit(ax1, n_eff[ok], values[ok], y_err=np.where(np.isfinite(ses[ok]), ses[ok], 0.0), fit=fit,
                       predicted_slope=-0.5 if fit is not None else None, label=f"{label} ± 2 SE", colour=colour)
    ax1.set(xlabel="effective width n_eff = (1/n − 1/N)^-1",
            ylabel=f"RMS over coupled pairs of sup_t gap to width {coupling.widths[-1]}",
            title="coupled gaps to the widest network")
    ax1.legend()
    _per_width_over_time(ax2, coupling.times, coupling.widths[:-1],
                         [np.sqrt(np.nanmean(g**2, axis=0)) for g in coupled.output_gaps],
                         ylabel="output gap, RMS over coupled pairs (output units)", title="output gap over time")
    _title(fig, "Width by coupling", facts)
    return fig


@styled
def loss_figure(coupling, coupled, facts):
    """Mean training loss per width over time, and the final loss against the width."""
    fig, (ax1, ax2) = new_figure(1, 2, panel=(4.6, 3.4))
    times = coupling.times
    _per_width_over_time(ax1, times, coupling.widths, coupled.mean_loss, ylabel="training loss, mean over networks",
                         title="training loss per width")
    ax2.plot(coupling.widths, coupled.mean_loss[:, -1], "o-", color=ENSEMBLE_COLOUR, label=f"t = {times[-1]:g}")
    ax2.plot(coupling.widths, coupled.mean_loss[:, 0], "s--", color=LIMIT_COLOUR, label="t = 0")
    ax2.set(xscale="log", yscale="log", xlabel="width n", ylabel="training loss, mean over networks",
            title="initial and final loss (global convergence: the final loss → 0)")
    _width_ticks(ax2, coupling.widths)
    ax2.legend()
    _title(fig, "Training loss", facts)
    return fig


@styled
def spread_figure(config, times, spread, limit_rows, coupled, facts):
    """Left: the spread across seeds at t_max against n (full batch: fit and predicted slope −1/2; the
    proxy limit's prediction; the coupled SGD networks). Right: √n × the full-batch spread over time,
    which collapses where the spread is ∝ n^-1/2."""
    fig, (ax1, ax2) = new_figure(1, 2, panel=(4.8, 3.8))
    n = np.asarray(spread.widths, float)
    loglog_fit(ax1, n, _finite([e.value for e in spread.final]), y_err=_finite([e.se for e in spread.final]),
               fit=spread.fit_final, predicted_slope=-0.5 if spread.fit_final is not None else None,
               label="full batch ± 2 SE")
    if limit_rows is not None:
        ax1.plot(n, [r.predicted_spread[-1] for r in limit_rows], "D", mfc="none", color="C2",
                 label=f"proxy limit: its spread × √({config.proxy_width}/n)")
    sgd = _finite(coupled.sgd_spread_final)
    ok = np.isfinite(sgd)
    ax1.plot(np.asarray(coupled.widths, float)[ok], sgd[ok], "s-", color="C1", ms=4,
             label=f"{config.method}, coupled networks (own samples)")
    ax1.set(xlabel="width n", ylabel=f"output sd across seeds at t = {config.t_max:g}, RMS over points",
            title="spread across seeds at t_max")
    ax1.legend()
    _per_width_over_time(ax2, times, spread.widths,
                         [np.sqrt(w) * s.per_time for w, s in zip(spread.widths, spread.per_width)],
                         ylabel="√n × output sd across seeds, RMS over points",
                         title="rescaled spread: the curves collapse where it is ∝ n^-1/2")
    _title(fig, "Spread across seeds", facts)
    return fig


@styled
def limit_figure(runs, proxy, limit_rows, n_train, facts):
    """Per spread width: the ensemble mean minus the proxy limit's mean over time, with its ±2 SE band,
    at the point where it is largest in standard errors."""
    k = len(limit_rows)
    cols = min(3, k)
    fig, axes = new_figure(-(-k // cols), cols, panel=(3.4, 2.7))
    for ax, r, row in zip(axes, runs, limit_rows):
        z = np.abs(row.mean_gap) / np.maximum(row.mean_gap_se, 1e-300)
        j = int(np.argmax(np.max(z, axis=0)))
        point = f"training point {j}" if j < n_train else f"probe {j - n_train}"
        gap_with_band(ax, proxy.times, row.mean_gap[:, j], row.mean_gap_se[:, j],
                      label="ensemble − limit mean")
        ax.set(xlabel="training time t", ylabel="mean gap (output units)",
               title=f"n = {row.width}, {point}\n{row.mean_gap_resolution}")
    for ax in axes[k:]:
        ax.set_visible(False)
    axes[0].legend()
    _title(fig, "Full-batch ensembles against the proxy limit", facts)
    return fig


@styled
def step_size_figure(refinement, facts):
    """Gap to the gradient flow against the step, with the predicted slopes 1 and 1/2."""
    fig, (ax,) = new_figure(1, 1, panel=(5.2, 3.8))
    for colour, (method, (s, gaps, fit)) in zip(("C0", "C1"), refinement.items()):
        values = _finite([g.value for g in gaps])
        ses = _finite([g.se for g in gaps])
        ok = np.isfinite(values) & (values > 0)
        loglog_fit(ax, s.epsilons[ok], values[ok], y_err=np.where(np.isfinite(ses[ok]), ses[ok], 0.0), fit=fit,
                   predicted_slope=(1.0 if method == "fullbatch" else 0.5) if fit is not None else None,
                   label=f"{method} ± 2 SE", colour=colour)
    ax.set(xlabel="step ε", ylabel=f"RMS over networks of |ŷ_ε − ŷ_flow| at t = {s.t_max:g}",
           title="step-size refinement against the gradient flow")
    ax.legend()
    _title(fig, "Step size", facts)
    return fig
