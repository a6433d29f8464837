"""Figures of ``jaxlimit xavier``: every title names N, γ, E and the data."""

from __future__ import annotations

import math

import numpy as np
from scipy import stats as sps

from jaxlimit.figures import (
    ENSEMBLE_COLOUR, LIMIT_COLOUR, TARGET_COLOUR, gap_with_band, histogram_bins, new_figure, qq_plot,
    run_title, styled, time_colours,
)
from jaxlimit.stats.nulls import covariance_error_null


def _point_label(j: int, n_train: int) -> str:
    return f"training point {j}" if j < n_train else f"probe {j - n_train}"


@styled
def trajectory_figure(ok, prediction, data, facts):
    """Top row: ensemble and limit mean ± sd per point. Bottom row: the gap ensemble − limit mean
    with its ±2 SE band, where the comparison's mean test lives."""
    p = prediction.dim
    cols = min(4, p)
    blocks = -(-p // cols)
    fig, axes = new_figure(2 * blocks, cols, panel=(3.0, 2.3), sharex=True)
    axes = axes.reshape(2 * blocks, cols)
    t = ok.times
    emp_mean, emp_sd = ok.outputs.mean(axis=0), ok.outputs.std(axis=0, ddof=1)
    se = emp_sd / math.sqrt(ok.n_members)
    mean, sd = np.asarray(prediction.mean), np.asarray(prediction.std)
    y = np.asarray(data.y_train)
    for j in range(blocks * cols):
        top, bottom = axes[2 * (j // cols), j % cols], axes[2 * (j // cols) + 1, j % cols]
        if j >= p:
            top.set_visible(False)
            bottom.set_visible(False)
            continue
        top.fill_between(t, emp_mean[:, j] - emp_sd[:, j], emp_mean[:, j] + emp_sd[:, j], color=ENSEMBLE_COLOUR,
                         alpha=0.25, label="ensemble mean ± sd")
        top.plot(t, emp_mean[:, j], color=ENSEMBLE_COLOUR, lw=2)
        top.plot(t, mean[:, j], "--", color=LIMIT_COLOUR, lw=1.2, label="limit mean")
        top.plot(t, mean[:, j] - sd[:, j], ":", color=LIMIT_COLOUR, lw=1)
        top.plot(t, mean[:, j] + sd[:, j], ":", color=LIMIT_COLOUR, lw=1, label="limit mean ± sd")
        if j < data.n_train:
            top.axhline(y[j], color=TARGET_COLOUR, lw=0.8, alpha=0.7, label="target y")
        top.set(title=_point_label(j, data.n_train), xlabel="training time t", ylabel="output h_t(x)")
        gap_with_band(bottom, t, emp_mean[:, j] - mean[:, j], se[:, j], label="ensemble − limit mean")
        bottom.set(xlabel="training time t", ylabel="mean gap (output units)")
    handles, labels = axes[0, 0].get_legend_handles_labels()
    h2, l2 = axes[1, 0].get_legend_handles_labels()
    fig.legend(handles + h2, labels + l2, loc="outside lower center", ncols=4)
    fig.suptitle(run_title("Outputs against the Xavier limit", **facts))
    return fig


@styled
def marginal_figure(ok, prediction, data, facts):
    """At one point (a probe if there is one): histograms at t = 0 and the last time with the
    limit densities, and a QQ plot at the last time with a simultaneous 95 % band."""
    j = data.n_train if data.n_probe else 0
    fig, (ax1, ax2) = new_figure(1, 2, panel=(4.4, 3.4))
    first, last = 0, len(ok.times) - 1
    colours = time_colours(2)
    for k, ti in enumerate((first, last)):
        x = ok.outputs[:, ti, j].astype(np.float64)
        mu, sd = float(prediction.mean[ti, j]), float(prediction.std[ti, j])
        ax1.hist(x, bins=histogram_bins(x), density=True, color=colours[k], alpha=0.45,
                 label=f"ensemble, t = {ok.times[ti]:g}")
        grid = np.linspace(mu - 4.5 * sd, mu + 4.5 * sd, 300)
        ax1.plot(grid, sps.norm.pdf(grid, mu, sd), color=colours[k], lw=1.6, ls="--" if k == 0 else "-",
                 label=f"limit density, t = {ok.times[ti]:g}")
    ax1.set(xlabel="output h_t(x) (output units)", ylabel="probability density",
            title=f"{_point_label(j, data.n_train)}: distribution")
    ax1.legend()
    x = ok.outputs[:, last, j].astype(np.float64)
    qq_plot(ax2, x, float(prediction.mean[last, j]), float(prediction.std[last, j]),
            label=f"ensemble, t = {ok.times[last]:g}")
    ax2.set(title=f"QQ plot against the limit at t = {ok.times[last]:g}")
    ax2.legend()
    fig.suptitle(run_title("Marginal law against the Xavier limit", **facts))
    return fig


@styled
def loss_figure(ok, loss_limit, long_run, conditioning, facts):
    fig, axes = new_figure(1, 2 if long_run else 1, panel=(4.6, 3.4))
    ax = axes[0]
    ax.fill_between(ok.times, np.quantile(ok.loss, 0.1, axis=0), np.quantile(ok.loss, 0.9, axis=0),
                    color=ENSEMBLE_COLOUR, alpha=0.2, label="ensemble, 10–90 % of members")
    ax.plot(ok.times, ok.loss.mean(axis=0), color=ENSEMBLE_COLOUR, lw=2, label="ensemble mean")
    ax.plot(ok.times, loss_limit, "--", color=LIMIT_COLOUR, label="limit: expected loss")
    ax.set(xlabel="training time t", ylabel="training loss ½ mean (y − h)²", yscale="log", title="training loss")
    ax.legend()
    if long_run:
        ax = axes[1]
        t, members = long_run["times"], long_run["loss_members"]
        for row in members:
            ax.plot(t, row, color=ENSEMBLE_COLOUR, lw=0.5, alpha=0.3)
        ax.plot(t, members.mean(axis=0), color=ENSEMBLE_COLOUR, lw=2, label=f"{len(members)} networks (mean)")
        ax.plot(t, long_run["loss_limit"], "--", color=LIMIT_COLOUR, label="limit: expected loss")
        bound = long_run["loss_limit"][0] * np.exp(-conditioning.loss_decay_rate * t)
        ax.plot(t, bound, ":", color=TARGET_COLOUR, lw=1.2,
                label=r"bound $L_0\, e^{-2\alpha\lambda_{\min}(A)\, t/M}$")
        ax.set(xlabel="training time t", ylabel="training loss", yscale="log",
               title="global minimum: the loss goes to zero")
        ax.legend()
    fig.suptitle(run_title("Training loss against the Xavier limit", **facts))
    return fig


@styled
def effects_figure(times, every_time, cov, compare_idx, path_err, verdict, facts):
    fig, (ax1, ax2, ax3) = new_figure(1, 3, panel=(3.8, 3.2))
    names = [("mean", "mean_pvalue"), ("Mahalanobis KS", "mahalanobis_ks_pvalue"),
             ("marginal KS (Holm)", "marginal_ks_pvalue"), ("energy", "energy_pvalue")]
    for name, key in names:
        ax1.semilogy(times, [max(getattr(c, key), 1e-16) for c in every_time], marker=".", label=name)
    ax1.axhline(verdict.threshold, color=LIMIT_COLOUR, lw=1, ls="--", label="per-test rejection threshold")
    for i in compare_idx:
        ax1.axvline(times[i], color="0.6", lw=0.8)
    ax1.set(xlabel="training time t", ylabel="p-value", title="tests at every saved time (grey: verdict times)")
    ax1.legend()
    n = every_time[0].n_samples
    ax2.plot(times, [c.mean_error_z for c in every_time], marker=".", label="max mean error / its SE")
    ax2.plot(times, [c.cov_rel_error / covariance_error_null(cv, n) for c, cv in zip(every_time, cov)],
             marker=".", label="covariance error / its null size")
    ax2.axhline(1.0, color="0.5", lw=0.8)
    ax2.set(xlabel="training time t", ylabel="effect in Monte Carlo units", ylim=(0, None),
            title="effect sizes")
    ax2.legend()
    ax3.plot(times, path_err.per_time, marker=".", color=ENSEMBLE_COLOUR)
    ax3.set(xlabel="training time t", ylabel="RMS over members of max |h^N_t − h_t| (output units)",
            title="each network against its own limit path")
    fig.suptitle(run_title("Effect sizes against the Xavier limit", **facts))
    return fig
