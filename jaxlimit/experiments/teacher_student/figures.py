"""Figures of ``jaxlimit teacher-student``: every title names the model, K, E and the data."""

from __future__ import annotations

import textwrap

import numpy as np

from jaxlimit.figures import (
    ENSEMBLE_COLOUR, LIMIT_COLOUR, TARGET_COLOUR, gap_with_band, loglog_fit, new_figure, run_title, styled,
)
from jaxlimit.limits.teacher_student import single_neuron_bound_radius, single_neuron_inside_probability

MODEL = "Σ relu(w·x)"


def _title(fig, what: str, **facts) -> None:
    """The run title (:func:`run_title`), wrapped to the figure's width."""
    fig.suptitle(textwrap.fill(run_title(what, **facts), width=max(40, int(13 * fig.get_figwidth()))))


def _ks(ortho) -> str:
    return ", ".join(str(o.K) for o in ortho)


def _legend(ax) -> None:
    """A legend with each label once."""
    handles, labels = ax.get_legend_handles_labels()
    unique = dict(zip(labels, handles))
    ax.legend(unique.values(), unique.keys())


@styled
def plane_figure(ortho, plane, facts):
    """The symmetric plane per K: reduced flow (lines) from each plane start, the full flow projected (dots)."""
    fig, axes = new_figure(1, len(ortho), panel=(4.0, 3.8))
    for o, ax in zip(ortho, axes):
        for start, path in zip(plane, o.reduced):
            line = ax.plot(path[:, 0], path[:, 1], lw=1.2)[0]
            ax.plot(*start, "o", color=line.get_color(), ms=4)
        ax.plot(o.projected[:, ::6, 0].T, o.projected[:, ::6, 1].T, ".", color=LIMIT_COLOUR, ms=2.5)
        s = o.theory
        ax.plot([s], [s], "x", color=TARGET_COLOUR, ms=10, mew=2, label=f"saddle x = y = {s:.4f}")
        ax.plot([1], [0], "*", color="C2", ms=12, label="W*: (x, y) = (1, 0)")
        if o.K == 2:  # the swapped teacher lies in the plane only for K = 2
            ax.plot([0], [1], "*", color="C2", ms=12, mfc="none", label="swapped W*")
        ax.set(xlabel="x: weight on own teacher unit (units of ‖w*‖)",
               ylabel="y: weight on each other unit (units of ‖w*‖)",
               title=f"K = {o.K}: reduced flow (lines), full flow (dots)")
        ax.legend()
    _title(fig, "Symmetric plane of the population flow", K=_ks(ortho), **facts)
    return fig


@styled
def loss_figure(ortho, noise, facts):
    """Population loss along the symmetric, symmetry-breaking and noisy starts, with the saddle's loss."""
    fig, axes = new_figure(1, len(ortho), panel=(4.0, 3.3))
    for o, ax in zip(ortho, axes):
        t, losses = o.times, o.losses
        floor = 1e-13  # below this the loss is rounding noise
        ax.semilogy(t, np.maximum(losses[0], floor), color=LIMIT_COLOUR, lw=2, label="symmetric start")
        ax.semilogy(t, np.maximum(losses[1], floor), color=ENSEMBLE_COLOUR, lw=1.5, label="x0 = 1e-3, y0 = 0")
        for j in range(2, losses.shape[0]):
            ax.semilogy(t, np.maximum(losses[j], floor), color="C1", lw=0.8,
                        label=f"symmetric + δ = {noise:g}" if j == 2 else None)
        ax.axhline(o.saddle_loss, color=TARGET_COLOUR, ls=":", label="loss at the saddle")
        ax.set(xlabel="time t of the flow", ylabel="population loss J (target units²)", title=f"K = {o.K}",
               ylim=(floor, None))
        ax.legend()
    _title(fig, "Population loss along the flow", K=_ks(ortho), **facts)
    return fig


@styled
def escape_figure(escape, facts):
    """Time within the ball around the saddle against log(1/δ), the fit and the predicted slope 1/λ."""
    fig, axes = new_figure(1, 1, panel=(5.0, 3.8))
    ax = axes[0]
    x = np.log(1.0 / escape.deltas)
    near = escape.time_near_saddle
    ax.plot(x, near, "o", color=ENSEMBLE_COLOUR, label="measured (flow)")
    fit = escape.fit
    rate = escape.unstable_rate
    if fit is not None:
        lo, hi = fit.slope_ci
        ax.plot(x, near.mean() + fit.slope * (x - x.mean()), "-", color=ENSEMBLE_COLOUR, lw=1,
                label=f"fit: slope {fit.slope:.4f} [{lo:.4f}, {hi:.4f}]")
    ax.plot(x, near.mean() + (x - x.mean()) / rate, "--", color=LIMIT_COLOUR, lw=1,
            label=f"predicted slope 1/λ = {1 / rate:.4f}")
    ax.set(xlabel="log(1/δ), δ the perturbation's Frobenius size",
           ylabel=f"time within {escape.radius:.3f} of the saddle",
           title=f"K = {escape.K}: escape from the symmetric saddle")
    ax.legend()
    _title(fig, "Time near the saddle", model=facts["model"], K=escape.K, members=len(near),
           data=facts["data"])
    return fig


@styled
def k1_figure(rows, dims, members):
    """Top: P(reach w*) and P(start in the guaranteed ball) with Wilson intervals, against the bound.
    Bottom: the margin p̂ − (1 − ε)/2 that the verdict tests, with ± 2 SE."""
    fig, axes = new_figure(2, len(dims), panel=(4.0, 3.0))
    axes = axes.reshape(2, len(dims))
    for j, d in enumerate(dims):
        top, bottom = axes[0, j], axes[1, j]
        mine = [row for row in rows if row.dim == d]
        eps = np.array([row.epsilon for row in mine])
        for shares, label, marker in [([row.reached.estimate for row in mine], "reached w* (flow)", "o"),
                                      ([row.inside_ball for row in mine], "started in ‖w − w*‖ < ‖w*‖", "s")]:
            p = np.array([share.p for share in shares])
            ci = np.array([share.ci for share in shares])
            # Clipped: the interval's ends are rounded and can miss p̂ = 1 by an ulp.
            yerr = np.maximum([p - ci[:, 0], ci[:, 1] - p], 0.0)
            top.errorbar(eps, p, yerr=yerr, fmt=marker, capsize=3, label=f"{label}, 95% Wilson")
        fine = np.linspace(eps.min(), eps.max(), 50) if len(eps) > 1 else eps
        top.plot(fine, [single_neuron_inside_probability(single_neuron_bound_radius(e, d), d) for e in fine],
                 ":", color=LIMIT_COLOUR, lw=1, label="P(start in ball), exact")
        top.plot(fine, (1 - fine) / 2, "-", color=TARGET_COLOUR, label="bound (1 − ε)/2")
        top.set(xlabel="ε (radius ε √(2π/(d+1)) ‖w*‖)", ylabel="probability", ylim=(-0.02, 1.05),
                title=f"K = 1, d = {d}")
        top.legend(loc="center right")
        margin = np.array([row.reached.margin for row in mine])
        se = np.array([row.reached.estimate.se for row in mine])
        if len(eps) > 1:
            gap_with_band(bottom, eps, margin, se, label="p̂ − bound")
        else:
            bottom.axhline(0.0, color=LIMIT_COLOUR, lw=0.8)
            bottom.errorbar(eps, margin, yerr=2 * se, fmt="o", color=ENSEMBLE_COLOUR, capsize=3,
                            label="p̂ − bound ± 2 SE")
        bottom.set(xlabel="ε", ylabel="margin P(reach w*) − (1 − ε)/2",
                   title=f"d = {d}: margin the verdict tests")
        bottom.legend()
    _title(fig, "K = 1: reaching w* against Tian's bound", model=MODEL, K=1, members=members,
           data="x ~ N(0, I_d), w* = e_1")
    return fig


@styled
def sgd_figure(sgd, members):
    """Loss of SGD runs and the flow; RMS(SGD − GD) against n with the fitted and predicted slope; the SGD
    mean's gap to the limit (the flow) at the largest n, with ± 2 SE, next to gradient descent's."""
    fig, (ax_loss, ax_dev, ax_gap) = new_figure(1, 3, panel=(4.2, 3.4))
    t = sgd.times
    ax_loss.semilogy(t, sgd.flow_loss, color=LIMIT_COLOUR, lw=2, label="limit: population flow")
    for e in sgd.usable:
        line = ax_loss.semilogy(t, np.median(e.loss, 0), lw=1, label=f"SGD n = {e.n}: median, 5–95 %")[0]
        ax_loss.fill_between(t, np.quantile(e.loss, 0.05, 0), np.quantile(e.loss, 0.95, 0),
                             color=line.get_color(), alpha=0.2)
    ax_loss.set(xlabel="time t = η · steps", ylabel="population loss J (target units²)", title="loss")
    ax_loss.legend()
    usable = sgd.usable
    if usable:
        ns = [e.n for e in usable]
        loglog_fit(ax_dev, ns, [e.rms_gd.value for e in usable], y_err=[e.rms_gd.se for e in usable],
                   fit=sgd.fit, predicted_slope=-0.5, label="RMS ‖W_SGD − W_GD‖ (same η)")
        ax_dev.errorbar(ns, [e.rms_flow.value for e in usable], yerr=[2 * e.rms_flow.se for e in usable], fmt="s",
                        ms=4, color="C1", capsize=2, label="RMS ‖W_SGD − W_flow‖")
    ax_dev.axhline(sgd.gd_rms_deviation_from_flow, color="0.5", ls=":", label="RMS ‖W_GD − W_flow‖")
    ax_dev.set(xlabel="samples per SGD step n", ylabel="RMS over runs and times (weight units)",
               title="finite-sample deviation (± 2 SE)")
    ax_dev.legend()
    if usable:
        last = usable[-1]
        shown = min(4, last.mean_gap[0].size)  # the first rows' entries: one colour each
        gaps = last.mean_gap.reshape(len(t), -1)
        ses = last.mean_gap_se.reshape(len(t), -1)
        gd_gap = (sgd.gd - sgd.flow).reshape(len(t), -1)
        for j in range(shown):
            gap_with_band(ax_gap, t, gaps[:, j], ses[:, j], label=f"SGD mean − flow, weight {j}", colour=f"C{j}")
            ax_gap.plot(t, gd_gap[:, j], ":", color=f"C{j}", lw=1.2, label="GD − flow (dotted)")
        ax_gap.set(title=f"n = {last.n}: SGD mean − limit mean, first {shown} weights")
    ax_gap.set(xlabel="time t = η · steps", ylabel="mean gap (weight units)")
    _legend(ax_gap)
    _title(fig, "SGD against gradient descent and the population flow", model=MODEL, K=sgd.K,
           members=members, learning_rate=sgd.step, data="n fresh x ~ N(0, I_K) per step")
    return fig
