"""One figure style for every experiment, and the plots they share.

Every figure says what was run in its title (N, γ or parameterisation, E,
data) and labels its axes with units; :func:`styled` applies the common
style to a figure-building function. Figures are built without pyplot, so
nothing here touches global plotting state; the report writes each as PNG
and PDF.
"""

from __future__ import annotations

import functools
import math

import matplotlib
import numpy as np
from matplotlib.figure import Figure
from scipy import stats as sps

from jaxlimit.stats.nulls import covariance_error_null

STYLE = {
    "font.size": 9,
    "axes.titlesize": 9,
    "axes.labelsize": 9,
    "legend.fontsize": 7.5,
    "figure.titlesize": 10,
    "axes.grid": True,
    "grid.alpha": 0.25,
    "lines.linewidth": 1.4,
    "axes.prop_cycle": matplotlib.cycler(color=matplotlib.colormaps["tab10"].colors),
}

ENSEMBLE_COLOUR = "C0"
LIMIT_COLOUR = "k"
TARGET_COLOUR = "C3"


def styled(build):
    """Run a figure-building function under the common style; titles too wide for the figure (or
    their panel) are wrapped onto more lines (:func:`fit_titles`)."""

    @functools.wraps(build)
    def wrapper(*args, **kwargs):
        with matplotlib.rc_context(STYLE):
            fig = build(*args, **kwargs)
            if isinstance(fig, Figure):
                fit_titles(fig)
            return fig

    return wrapper


def _wrap(text: str, fits) -> str:
    """``text`` broken at spaces (first at " — ", then at ", ") into the fewest lines that ``fits``."""
    if fits(text) or "\n" in text:
        return text
    head, sep, tail = text.partition(" — ")
    lines = [head + (" —" if sep else "")] if sep and fits(head) else []
    rest = tail if lines else text
    words, line = rest.split(" "), ""
    for word in words:
        trial = f"{line} {word}".strip()
        if line and not fits(trial):
            lines.append(line)
            line = word
        else:
            line = trial
    return "\n".join(lines + [line])


def fit_titles(fig: Figure, margin: float = 0.96) -> None:
    """Wrap the figure's title to its width, and each panel's title to the panel's width."""
    from matplotlib.backends.backend_agg import RendererAgg

    renderer = RendererAgg(*(int(v) + 1 for v in fig.bbox.size), fig.dpi)

    def width(text_artist, text: str) -> float:
        w, _, _ = renderer.get_text_width_height_descent(text, text_artist.get_fontproperties(), ismath=False)
        return w

    title = fig._suptitle
    if title is not None and title.get_text():
        limit = margin * fig.bbox.width
        title.set_text(_wrap(title.get_text(), lambda s: width(title, s) <= limit))
    for ax in fig.axes:
        t = ax.title
        if ax.get_visible() and t.get_text():
            limit = 1.15 * ax.get_position().width * fig.bbox.width
            t.set_text(_wrap(t.get_text(), lambda s, t=t: width(t, s) <= limit))


def new_figure(rows: int = 1, cols: int = 1, *, panel=(3.6, 2.9), **subplots):
    """A constrained-layout figure and its axes array (always 1-D)."""
    fig = Figure(figsize=(panel[0] * cols, panel[1] * rows + 0.5), layout="constrained")
    axes = fig.subplots(rows, cols, squeeze=False, **subplots)
    return fig, np.ravel(axes)


def run_title(what: str, **facts) -> str:
    """``"what — N = 1024, γ = 1/2, E = 2048, data: …"`` from the given facts (None skipped)."""
    names = {"width": "N", "widths": "N", "gamma": "γ", "members": "E", "depth": "L",
             "learning_rate": "η", "alpha": "α"}
    parts = []
    for key, value in facts.items():
        if value is None:
            continue
        if key == "data":
            parts.append(f"data: {value}")
        elif key == "parameterisation":
            parts.append(f"{value} parameterisation")
        elif key == "gamma":
            parts.append(f"γ = {_fraction(value)}")
        elif isinstance(value, (list, tuple)):
            parts.append(f"{names.get(key, key)} = {min(value)}…{max(value)}")
        else:
            parts.append(f"{names.get(key, key)} = {value:g}" if isinstance(value, float)
                         else f"{names.get(key, key)} = {value}")
    return f"{what} — " + ", ".join(parts) if parts else what


def _fraction(gamma: float) -> str:
    for num, den in ((1, 2), (1, 1), (3, 4), (2, 3), (5, 8), (7, 8)):
        if abs(gamma - num / den) < 1e-12:
            return "1" if num == den else f"{num}/{den}"
    return f"{gamma:g}"


def histogram_bins(x: np.ndarray) -> int:
    """Freedman–Diaconis bins, clipped to [10, 50] so histograms stay readable."""
    x = np.asarray(x, float)
    iqr = float(np.subtract(*np.percentile(x, [75, 25])))
    if iqr <= 0 or len(x) < 2:
        return 10
    width = 2.0 * iqr / len(x) ** (1 / 3)
    return int(np.clip(math.ceil((x.max() - x.min()) / width), 10, 50))


def time_colours(n: int) -> list:
    """n clearly distinct colours ordered in time (early light, late dark)."""
    cmap = matplotlib.colormaps["viridis"]
    return [cmap(0.15 + 0.7 * i / max(n - 1, 1)) for i in range(n)]


def qq_plot(ax, samples, mean: float, sd: float, *, level: float = 0.95, colour=ENSEMBLE_COLOUR,
            label: str | None = None) -> None:
    """Ensemble quantiles against the predicted N(mean, sd²), with a simultaneous band.

    The band is the Kolmogorov–Smirnov one: with probability ``level`` the
    whole empirical CDF of n exact draws lies within ±c/√n of the true CDF
    (c from the KS distribution), so the points leave the band at the stated
    rate for the whole plot, not per point.
    """
    q = np.sort(np.asarray(samples, float))
    n = len(q)
    probs = (np.arange(1, n + 1) - 0.5) / n
    theory = mean + sd * sps.norm.ppf(probs)
    eps = sps.kstwo.ppf(level, n)
    lo = mean + sd * sps.norm.ppf(np.clip(probs - eps, 1e-12, 1 - 1e-12))
    hi = mean + sd * sps.norm.ppf(np.clip(probs + eps, 1e-12, 1 - 1e-12))
    ax.fill_between(theory, lo, hi, color="0.85", label=f"{level:.0%} simultaneous band")
    ax.plot(theory, q, ".", ms=2.5, color=colour, label=label or "ensemble")
    ax.plot([theory[0], theory[-1]], [theory[0], theory[-1]], "-", color=LIMIT_COLOUR, lw=1,
            label="y = x (limit)")
    pad = 0.1 * (q[-1] - q[0])
    ax.set_ylim(min(q[0], theory[0]) - pad, max(q[-1], theory[-1]) + pad)
    ax.set(xlabel="limit quantile (output units)", ylabel="ensemble quantile (output units)")


def gap_with_band(ax, t, gap, se, *, label: str, colour=ENSEMBLE_COLOUR) -> None:
    """A gap (ensemble − limit) over time with its ±2 SE band and the zero line."""
    ax.axhline(0.0, color=LIMIT_COLOUR, lw=0.8)
    ax.fill_between(t, gap - 2 * se, gap + 2 * se, color=colour, alpha=0.25, label="± 2 SE")
    ax.plot(t, gap, color=colour, label=label)


def loglog_fit(ax, x, y, *, fit=None, y_err=None, predicted_slope: float | None = None, label: str = "measured",
               colour=ENSEMBLE_COLOUR) -> None:
    """Values against width on log–log axes, with the fitted and the predicted slope."""
    x = np.asarray(x, float)
    y = np.asarray(y, float)
    ax.errorbar(x, y, yerr=None if y_err is None else 2 * np.asarray(y_err, float), fmt="o", ms=4,
                color=colour, capsize=2, label=label)
    grid = np.geomspace(x.min(), x.max(), 50)
    if fit is not None:
        ax.plot(grid, fit.predict(grid), "-", color=colour, lw=1,
                label=f"fit: slope {fit.slope:.3f} [{fit.slope_ci[0]:.3f}, {fit.slope_ci[1]:.3f}]")
    if predicted_slope is not None and fit is not None:
        anchor = float(np.exp(np.mean(np.log(fit.predict(x)))))
        x0 = float(np.exp(np.mean(np.log(x))))
        ax.plot(grid, anchor * (grid / x0) ** predicted_slope, "--", color=LIMIT_COLOUR, lw=1,
                label=f"predicted slope {predicted_slope:g}")
    ax.set(xscale="log", yscale="log", xlabel="width N")


# Parameterisations: the coordinate check (microsoft/mup's picture, with the fitted slopes and their bands)
# and the learning-rate transfer sweep (docs/parameterisations.md), for the commands and for notebooks.


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


@styled
def lr_loss_figure(result, facts):
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
def lr_optimum_figure(result, facts):
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


# The comparison of an ensemble with a predicted Gaussian over time, shared by experiments ----------


def _point_label(j: int, n_train: int) -> str:
    return f"training point {j}" if j < n_train else f"probe {j - n_train}"


@styled
def trajectory_figure(ok, prediction, data, facts, *, limit: str = "the limit"):
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
    fig.suptitle(run_title(f"Outputs against {limit}", **facts))
    return fig


@styled
def marginal_figure(ok, prediction, data, facts, *, limit: str = "the limit"):
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
    fig.suptitle(run_title(f"Marginal law against {limit}", **facts))
    return fig


@styled
def effects_figure(times, every_time, cov, compare_idx, path_err, verdict, facts, *, limit: str = "the limit"):
    fig, (ax1, ax2, ax3) = new_figure(1, 3, panel=(3.8, 3.2))
    names = [("mean", "mean_pvalue"), ("Mahalanobis KS", "mahalanobis_ks_pvalue"),
             ("marginal KS (Holm)", "marginal_ks_pvalue"), ("energy", "energy_pvalue")]
    for name, key in names:
        ax1.semilogy(times, [max(getattr(c, key), 1e-16) for c in every_time], marker=".", label=name)
    ax1.axhline(verdict.threshold, color=LIMIT_COLOUR, lw=1, ls="--", label="per-test rejection threshold")
    for i in compare_idx:
        ax1.axvline(times[i], color="0.6", lw=0.8)
    ax1.set(xlabel="training time t", ylabel="p-value", title="tests at every saved time (grey: verdict times)")
    ax1.legend(loc="upper center", bbox_to_anchor=(0.5, -0.2), ncols=2)  # below the panel, off the data
    n = every_time[0].n_samples
    ax2.plot(times, [c.mean_error_z for c in every_time], marker=".", label="max mean error / its SE")
    ax2.plot(times, [c.cov_rel_error / covariance_error_null(cv, n) for c, cv in zip(every_time, cov)],
             marker=".", label="covariance error / its null size")
    ax2.axhline(1.0, color="0.5", lw=0.8)
    ax2.set(xlabel="training time t", ylabel="effect in Monte Carlo units", ylim=(0, None),
            title="effect sizes (1: the size of noise)")
    ax2.legend(loc="upper center", bbox_to_anchor=(0.5, -0.2), ncols=1)
    ax3.plot(times, path_err.per_time, marker=".", color=ENSEMBLE_COLOUR)
    ax3.set(xlabel="training time t", ylabel="max |h^N_t − h_t|, RMS (output units)",
            title="each network against its own limit path (RMS over members of the max over points)")
    fig.suptitle(run_title(f"Effect sizes against {limit}", **facts))
    return fig


__all__ = ["ENSEMBLE_COLOUR", "LIMIT_COLOUR", "STYLE", "TARGET_COLOUR", "gap_with_band", "histogram_bins",
           "loglog_fit", "new_figure", "qq_plot", "run_title", "styled", "time_colours", "trajectory_figure", "marginal_figure",
           "effects_figure"]
