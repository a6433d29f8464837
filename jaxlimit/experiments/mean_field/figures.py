"""Figures of ``jaxlimit mean-field``: every title names N, γ, E and the data."""

from __future__ import annotations

import math

import numpy as np

from jaxlimit.figures import (
    ENSEMBLE_COLOUR, LIMIT_COLOUR, gap_with_band, histogram_bins, loglog_fit, new_figure, qq_plot, run_title,
    styled, time_colours,
)

XAVIER_COLOUR = "C0"
MEAN_FIELD_COLOUR = "C3"


def _point_label(j: int, n_train: int) -> str:
    return f"training point {j}" if j < n_train else f"probe {j - n_train}"


def _width_ticks(ax, widths) -> None:
    ax.set_xticks(widths, labels=[str(int(w)) for w in widths])
    ax.set_xticks([], minor=True)


@styled
def limit_figure(times, h_bar, loss_limit, ok, data, facts):
    """The limit h̄_t and the largest width's ensemble, and the training loss."""
    fig, (ax1, ax2) = new_figure(1, 2, panel=(4.6, 3.4))
    mean, sd = ok.outputs.mean(0), ok.outputs.std(0, ddof=1)
    for j in range(h_bar.shape[1]):
        line = ax1.plot(times, h_bar[:, j], lw=1.6, label=_point_label(j, data.n_train))[0]
        ax1.errorbar(times, mean[:, j], yerr=sd[:, j], fmt=".", ms=3, color=line.get_color(), alpha=0.6)
    ax1.set(xlabel="training time t", ylabel="output h_t(x)",
            title="limit h̄_t (lines); ensemble mean ± sd (dots)")
    ax1.legend(ncols=2)
    ax2.plot(times, loss_limit, "--", color=LIMIT_COLOUR, label="limit")
    ax2.plot(times, ok.loss.mean(0), color=ENSEMBLE_COLOUR, label="ensemble mean")
    ax2.fill_between(times, np.quantile(ok.loss, 0.1, 0), np.quantile(ok.loss, 0.9, 0), color=ENSEMBLE_COLOUR,
                     alpha=0.2, label="10–90 % of members")
    ax2.set(xlabel="training time t", ylabel="training loss (mean over points)", yscale="log",
            title="training loss")
    ax2.legend()
    fig.suptitle(run_title("Outputs against the mean-field limit", **facts))
    return fig


@styled
def gap_figure(times, h_bar, ok, data, facts):
    """Per point: the ensemble mean minus h̄_t with its ±2 SE band (the gap ``mean_error`` tests)."""
    p = h_bar.shape[1]
    cols = min(4, p)
    rows = -(-p // cols)
    fig, axes = new_figure(rows, cols, panel=(2.9, 2.2), sharex=True)
    mean = ok.outputs.mean(0)
    se = ok.outputs.std(0, ddof=1) / math.sqrt(ok.n_members)
    for j, ax in enumerate(axes):
        if j >= p:
            ax.set_visible(False)
            continue
        gap_with_band(ax, times, mean[:, j] - h_bar[:, j], se[:, j], label="ensemble mean − h̄_t")
        ax.set(xlabel="training time t", ylabel="gap (output units)", title=_point_label(j, data.n_train))
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncols=3)
    fig.suptitle(run_title("Gap of the ensemble mean to the mean-field limit", **facts))
    return fig


@styled
def lln_clt_figure(rows, fit, prediction, compare_idx, times, n_null, data, facts):
    """Variance against N; predicted against measured scaled variances; a QQ plot of the scaled
    outputs against N(0, C_jj); the covariance error per width against its Monte Carlo size."""
    fig, axes = new_figure(1, 4, panel=(3.7, 3.3))
    ax1, ax2, ax3, ax4 = axes
    widths = np.array([r.width for r in rows], dtype=float)
    loglog_fit(ax1, widths, [r.variance for r in rows], y_err=[r.variance_se for r in rows], fit=fit,
               predicted_slope=-1.0, label="ensemble ± 2 SE")
    ax1.set(ylabel="mean over points of Var h^N at t_max", title="law of large numbers")
    _width_ticks(ax1, widths)
    ax1.legend()

    last = rows[-1]
    width = last.width
    c_final = np.asarray(prediction.cov)[-1] * widths[-1]
    pred = np.diag(c_final)
    emp = np.diag(last.scaled_cov)
    emp_se = emp * math.sqrt(2.0 / (last.n_members - 1))
    p = len(pred)
    ax2.bar(np.arange(p) - 0.2, pred, 0.4, color=LIMIT_COLOUR, alpha=0.6, label="predicted C_t (diagonal)")
    ax2.bar(np.arange(p) + 0.2, emp, 0.4, yerr=2 * emp_se, color=ENSEMBLE_COLOUR, capsize=2,
            label=f"ensemble at N = {width}, ± 2 SE")
    ax2.set(xlabel="point (training points, then probes)", ylabel="variance of √N (h^N − h̄) at t_max",
            title=f"fluctuation variance at t = {times[-1]:g}")
    ax2.legend()

    j = int(np.argmax(pred))
    h_bar_final = np.asarray(prediction.mean)[-1, j]
    scaled = math.sqrt(width) * (last.outputs_final[:, j] - h_bar_final)
    qq_plot(ax3, scaled, 0.0, math.sqrt(pred[j]), label=f"N = {width}, {_point_label(j, data.n_train)}")
    ax3.set(xlabel="predicted quantile of √N (h − h̄) (output units)",
            ylabel="ensemble quantile of √N (h − h̄) (output units)",
            title=f"CLT at t = {times[-1]:g}")
    ax3.legend()

    ax4.plot(widths, [r.cov_rel_error for r in rows], "o-", color=ENSEMBLE_COLOUR,
             label="‖Ĉ_N − C‖_F / ‖C‖_F at t_max")
    ax4.axhline(n_null, color="0.5", ls="--", lw=1, label="Monte Carlo size for a perfect prediction")
    ax4.set(xscale="log", xlabel="width N", ylabel="relative Frobenius error", ylim=(0, None),
            title="predicted covariance against the ensembles")
    _width_ticks(ax4, widths)
    ax4.legend()
    fig.suptitle(run_title("Law of large numbers and CLT against the mean-field limit", **facts))
    return fig


@styled
def features_figure(limit, data, facts):
    """The law of the neurons in the limit at the saved times: c, and the pre-activation at a training point."""
    flow = limit.flow
    fig, (ax1, ax2) = new_figure(1, 2, panel=(5.6, 3.4))
    weights = np.asarray(flow.weights)
    x0 = np.asarray(data.x_train[0])
    colours = time_colours(len(flow.feature_times))
    for i, t in enumerate(flow.feature_times):
        c = np.asarray(flow.c[i])
        u = np.asarray(flow.w[i]) @ x0
        ax1.hist(c, bins=80, weights=weights, histtype="step", density=True, color=colours[i], label=f"t = {t:g}")
        ax2.hist(u, bins=80, weights=weights, histtype="step", density=True, color=colours[i], label=f"t = {t:g}")
    ax1.set(xlabel="output weight c", ylabel="probability density", title="law of the output weights")
    ax2.set(xlabel="pre-activation w · x_0 at training point 0", ylabel="probability density",
            title="law of a pre-activation")
    ax1.legend()
    ax2.legend()
    fig.suptitle(run_title("Learned features of the mean-field limit", **facts))
    return fig


@styled
def side_by_side_figure(rows, ensembles, xavier, times, h_bar, facts):
    """Output laws, loss curves, parameter movement and kernel change: Xavier against mean field."""
    runs, fits = xavier.runs, xavier.fits
    widths = np.array([r.width for r in rows], dtype=float)
    xw = np.array(sorted(runs), dtype=float)
    fig, axes = new_figure(2, 2, panel=(4.8, 3.4))
    a1, a2, a3, a4 = axes
    j = 0
    smallest, largest = int(widths[0]), int(widths[-1])
    for w, style in ((smallest, ":"), (largest, "-")):
        if w in runs:
            x = runs[w].outputs[:, -1, j]
            a1.hist(x, bins=histogram_bins(x), density=True, histtype="step", ls=style, color=XAVIER_COLOUR,
                    label=f"Xavier, N = {w}")
        x = ensembles[w][1].outputs[:, -1, j]
        a1.hist(x, bins=histogram_bins(x), density=True, histtype="step", ls=style, color=MEAN_FIELD_COLOUR,
                label=f"mean field, N = {w}")
    a1.axvline(h_bar[-1, j], color=LIMIT_COLOUR, lw=1, label="mean-field limit h̄")
    a1.set(xlabel=f"output at training point 0, t = {times[-1]:g}", ylabel="probability density",
           title="outputs: Gaussian spread (Xavier), a point mass (mean field)")
    a1.legend()
    if largest in runs:
        a2.plot(times, runs[largest].loss.mean(0), color=XAVIER_COLOUR, label=f"Xavier, N = {largest}")
    a2.plot(times, ensembles[largest][1].loss.mean(0), color=MEAN_FIELD_COLOUR, label=f"mean field, N = {largest}")
    a2.set(xlabel="training time t", ylabel="mean training loss", yscale="log", title="loss curves")
    a2.legend()
    for ax, key, predicted, ylabel, title in (
            (a3, "rms_parameter_change", -0.5, "RMS parameter change at t_max",
             "parameter movement: O(N^-1/2) (Xavier) against O(1)"),
            (a4, "ntk_change", -1.0, "‖Θ_t − Θ_0‖_F / ‖Θ_0‖_F at t_max",
             "empirical kernel change: O(1/N) (Xavier) against O(1)")):
        if key in fits:
            estimates = xavier.estimates[key]
            loglog_fit(ax, xw, [e.value for e in estimates], y_err=[e.se for e in estimates], fit=fits[key],
                       predicted_slope=predicted, label="Xavier ± 2 SE", colour=XAVIER_COLOUR)
        mf_key = "rms_change" if key == "rms_parameter_change" else "ntk_change"
        ax.errorbar(widths, [getattr(r, mf_key) for r in rows], yerr=[2 * getattr(r, f"{mf_key}_se") for r in rows],
                    fmt="s-", ms=4, capsize=2, color=MEAN_FIELD_COLOUR, label="mean field ± 2 SE")
        ax.set(xscale="log", yscale="log", xlabel="width N", ylabel=ylabel, title=title)
        _width_ticks(ax, widths)
        ax.legend()
    fig.suptitle(run_title("Xavier (γ = 1/2) beside mean field (γ = 1)", **facts))
    return fig
