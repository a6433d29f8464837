"""``jaxlimit sweep gamma``: how spread and bias scale with N across the γ family (THEORY §3).

For each γ in ``--gammas`` and each width N an ensemble of networks
g^N = N^{-γ} Σ c σ(w·x) is trained (rate α N^{-(2-2γ)}, ⌊N t⌋ steps) and, at
t_max:

* **spread**: sqrt of the mean over points of Var h^N_t, fitted as N^{s};
* **bias**: the RMS over points of E h^N_t − h^ker_t (estimated with the
  initial outputs as a control variate, :func:`bias_summary`), with h^ker the limit
  THEORY §3 names for γ < 1: kernel regression from h = 0,
  h^ker_t = (I − e^{−αAt/M}) Y on the training points (and its extension to
  the probes), with A the Xavier kernel (:mod:`jaxlimit.limits.xavier`; the
  mean of the Xavier limit). Fitted as N^{b} over the widths where the bias
  is resolved (more than 3 standard errors of the ensemble mean).

THEORY §3's [check] prediction: s = 1/2 − γ (the initial output
N^{1/2−γ} G, propagated linearly) and b = γ − 1 (parameters move O(N^{γ−1}),
which changes the kernel by as much). At γ = 1/2 the spread is O(1) (the
Gaussian Xavier limit); at γ = 1, b = 0: the mean-field limit is not kernel
regression, and against the mean-field limit itself the bias is O(1/N)
(``bias_vs_mean_field_limit``). Beyond the leading terms, the kernel's own
sampling fluctuation adds an N^{-1/2} part to the spread for every γ, so for
γ near 1 the fitted spread exponent over a finite range of widths lies
between 1/2 − γ and −1/2; the report marks each exponent as agreeing when
the prediction lies in its confidence interval, "close" when it is outside
but within 0.05, and says where it does not agree.

The default t_max is 4: the bias at every γ is a multiple of how far the
mean-field limit has left kernel regression, and on the default problem that
gap grows slowly (RMS 0.004 at t = 2, 0.014 at t = 4, 0.025 at t = 8).
"""

from __future__ import annotations

import argparse
import math

import numpy as np
from matplotlib.figure import Figure

from jaxlimit.experiments.common import (
    add_output_arguments, add_problem_arguments, build_problem, ensemble_options, float_list,
    int_list, positive_int, require, timed,
)
from jaxlimit.experiments.mean_field import variance_summary
from jaxlimit.limits.mean_field import mean_field_limit
from jaxlimit.limits.xavier import xavier_limit
from jaxlimit.models.two_layer import resolve_gamma
from jaxlimit.report import Report
from jaxlimit.stats import fit_power_law
from jaxlimit.training import run_ensemble

NAME = "gamma"
HELP = "the γ family: scaling of output spread and bias with N against THEORY §3's exponents"

RESOLVED_Z = 3.0
"""A width's bias enters the fit when it exceeds this many standard errors."""

CLOSE_TOLERANCE = 0.05
"""A fitted exponent outside its CI but this close to the prediction is "close"."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_problem_arguments(parser, ensemble=512, t_max=4.0)
    for action in parser._actions:  # widths and γ are swept
        if action.dest in ("width", "scaling"):
            action.help = argparse.SUPPRESS
    parser.set_defaults(method="fullbatch")
    g = parser.add_argument_group("sweep")
    g.add_argument("--gammas", type=float_list, default=[0.5, 0.625, 0.75, 0.875, 1.0],
                   help="normalisation exponents γ in [0.5, 1] (default: 0.5,0.625,0.75,0.875,1)")
    g.add_argument("--widths", type=int_list, default=[64, 128, 256, 512, 1024],
                   help="comma-separated widths N (default: 64,128,256,512,1024)")
    g.add_argument("--particles", type=positive_int, default=2**16,
                   help="particles for the γ = 1 mean-field limit (default: 2^16)")
    add_output_arguments(parser, "report-sweep-gamma")


def predicted_exponents(gamma: float) -> tuple[float, float]:
    """THEORY §3: (spread exponent 1/2 − γ, bias exponent γ − 1)."""
    return 0.5 - gamma, gamma - 1.0


def bias_summary(outputs_t: np.ndarray, outputs_0: np.ndarray, reference: np.ndarray) -> tuple[float, float]:
    """RMS over points of E h^N_t − ``reference``, and its noise size, shapes (E, P).

    The initial outputs h^N_0 have mean exactly 0 (c is mean-zero and
    independent of w), so they are a control variate: the estimate is the
    mean of h^N_t − h^N_0 B̂ with B̂ the least-squares regression of h^N_t on
    h^N_0. For γ < 1 most of the spread is the initial output carried along
    linearly, and this removes it; without it the bias (∝ N^{γ−1}) is far
    below the noise of the plain mean (∝ N^{1/2−γ} E^{-1/2}) at any
    affordable E. The noise size is the RMS standard error of the adjusted
    mean: a gap of that size is noise.
    """
    x = np.asarray(outputs_t, np.float64)
    z = np.asarray(outputs_0, np.float64)
    n, p = x.shape
    zc = z - z.mean(axis=0)
    coef = np.linalg.lstsq(zc, x - x.mean(axis=0), rcond=None)[0]  # (P, P)
    adjusted = x - z @ coef
    gap = adjusted.mean(axis=0) - np.asarray(reference, np.float64)
    dof = max(n - p - 1, 1)
    noise = math.sqrt(float(np.mean(np.sum((adjusted - adjusted.mean(0)) ** 2, axis=0) / dof)) / n)
    return float(np.sqrt(np.mean(gap**2))), noise


def _fit_or_none(widths, values, errors, keep):
    keep = np.asarray(keep, bool)
    if keep.sum() < 2:
        return None
    return fit_power_law(np.asarray(widths)[keep], np.asarray(values)[keep],
                         y_err=np.asarray(errors)[keep])


def _agrees(fit, predicted: float) -> str:
    """"agrees" (prediction inside the CI), "close" (outside it but within
    CLOSE_TOLERANCE: a pre-asymptotic correction over the widths used),
    "disagrees" or "unresolved" (no fit)."""
    if fit is None:
        return "unresolved"
    lo, hi = fit.slope_ci
    if lo <= predicted <= hi:
        return "agrees"
    return "close" if abs(fit.slope - predicted) <= CLOSE_TOLERANCE else "disagrees"


def run(args: argparse.Namespace) -> Report:
    timing: dict = {}
    warnings: list[str] = []
    require(len(args.widths) >= 2, "a sweep needs at least two widths")
    gammas = sorted({resolve_gamma(g) for g in args.gammas})
    require(args.loss == "squared", "the kernel-regression limit is derived for the squared loss; "
                                    "use --loss squared")
    require(args.init == "gaussian", "the Xavier kernels assume Gaussian initial weights; "
                                     "use --init gaussian")
    require(args.ensemble >= 2, "--ensemble must be at least 2")
    problem = build_problem(args, width=args.widths[0], scaling=gammas[0])
    data, trainer, times = problem.data, problem.trainer, problem.times

    with timed(timing, "limits"):
        kernel_limit = xavier_limit(data, problem.model.activation, alpha=args.alpha,
                                    w_std=args.w_std, c_std=args.c_std)
        reference = np.asarray(kernel_limit.moments_closed_form(times)[0])[-1]
        mf_reference = None
        if 1.0 in gammas:
            mf = mean_field_limit(build_problem(args, width=1, scaling=1.0).model, data, trainer,
                                  times=times, n_particles=args.particles, seed=args.seed)
            mf_reference = np.asarray(mf.outputs)[-1]

    widths = np.array(args.widths, float)
    per_gamma = []
    for gamma in gammas:
        spread, spread_se, bias, bias_noise, bias_mf, bias_mf_noise = ([] for _ in range(6))
        for width in args.widths:
            model = build_problem(args, width=width, scaling=gamma).model
            with timed(timing, f"ensembles_gamma{gamma:g}"):
                result = run_ensemble(model, data, trainer, times=times, **ensemble_options(args, width))
            ok = result.finite()
            if result.n_diverged:
                warnings.append(f"γ = {gamma:g}, N = {width}: {result.n_diverged} members diverged "
                                "and are excluded")
            require(ok.n_members >= 2, f"γ = {gamma:g}, N = {width}: too few finite members")
            final = ok.outputs[:, -1].astype(np.float64)
            initial = ok.outputs[:, 0].astype(np.float64)
            var, var_se = variance_summary(final)
            spread.append(math.sqrt(var))
            spread_se.append(var_se / (2.0 * math.sqrt(var)))
            b, noise = bias_summary(final, initial, reference)
            bias.append(b)
            bias_noise.append(noise)
            if gamma == 1.0 and mf_reference is not None:
                b, noise = bias_summary(final, initial, mf_reference)
                bias_mf.append(b)
                bias_mf_noise.append(noise)
        resolved = [b > RESOLVED_Z * n for b, n in zip(bias, bias_noise)]
        fit_spread = fit_power_law(widths, spread, y_err=spread_se)
        fit_bias = _fit_or_none(widths, bias, bias_noise, resolved)
        pred_s, pred_b = predicted_exponents(gamma)
        row = {
            "gamma": gamma, "spread": spread, "spread_se": spread_se, "bias": bias,
            "bias_noise": bias_noise, "bias_resolved": resolved,
            "spread_slope": fit_spread.slope, "spread_slope_ci": list(fit_spread.slope_ci),
            "bias_slope": None if fit_bias is None else fit_bias.slope,
            "bias_slope_ci": None if fit_bias is None else list(fit_bias.slope_ci),
            "predicted_spread_slope": pred_s, "predicted_bias_slope": pred_b,
            "spread_agreement": _agrees(fit_spread, pred_s),
            "bias_agreement": _agrees(fit_bias, pred_b),
        }
        if bias_mf:
            resolved_mf = [b > RESOLVED_Z * n for b, n in zip(bias_mf, bias_mf_noise)]
            fit_mf = _fit_or_none(widths, bias_mf, bias_mf_noise, resolved_mf)
            row.update({
                "bias_vs_mean_field_limit": bias_mf, "bias_vs_mean_field_limit_noise": bias_mf_noise,
                "bias_vs_mean_field_limit_resolved": resolved_mf,
                "bias_vs_mean_field_limit_slope": None if fit_mf is None else fit_mf.slope,
                "bias_vs_mean_field_limit_slope_ci": None if fit_mf is None else list(fit_mf.slope_ci),
                "bias_vs_mean_field_limit_agreement": _agrees(fit_mf, -1.0),
            })
        per_gamma.append(row)

    metrics = {
        "gammas": gammas,
        "widths": [int(w) for w in args.widths],
        "n_members": args.ensemble,
        "spread_slopes": [r["spread_slope"] for r in per_gamma],
        "predicted_spread_slopes": [r["predicted_spread_slope"] for r in per_gamma],
        "bias_slopes": [r["bias_slope"] for r in per_gamma],
        "predicted_bias_slopes": [r["predicted_bias_slope"] for r in per_gamma],
        "spread_agreement": [r["spread_agreement"] for r in per_gamma],
        "bias_agreement": [r["bias_agreement"] for r in per_gamma],
        "kernel_limit_final": reference,
        "by_gamma": per_gamma,
    }
    verdict = {f"spread_gamma_{r['gamma']:g}": r["spread_agreement"] for r in per_gamma}
    verdict |= {f"bias_gamma_{r['gamma']:g}": r["bias_agreement"] for r in per_gamma}
    summary = [
        f"{args.ensemble} networks per (γ, N), γ ∈ {{{', '.join(f'{g:g}' for g in gammas)}}}, "
        f"N ∈ {{{', '.join(str(w) for w in args.widths)}}}, {trainer.method} descent to t = "
        f"{times[-1]:g} on {data.name}. Spread = sqrt(mean variance over points); bias = RMS gap of "
        "the ensemble mean to kernel regression from h = 0 (the Xavier limit's mean).",
        "",
        "| γ | spread slope (95% CI) | predicted 1/2 − γ | | bias slope (95% CI) | predicted γ − 1 | |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in per_gamma:
        s_ci = r["spread_slope_ci"]
        b_txt = ("unresolved" if r["bias_slope"] is None else
                 f"{r['bias_slope']:.3f} ({r['bias_slope_ci'][0]:.3f}, {r['bias_slope_ci'][1]:.3f})")
        summary.append(
            f"| {r['gamma']:g} | {r['spread_slope']:.3f} ({s_ci[0]:.3f}, {s_ci[1]:.3f}) | "
            f"{r['predicted_spread_slope']:g} | {r['spread_agreement']} | {b_txt} | "
            f"{r['predicted_bias_slope']:g} | {r['bias_agreement']} |"
        )
    summary += ["", _discussion(per_gamma)]
    for r in per_gamma:
        if "bias_vs_mean_field_limit_slope" in r:
            s = r["bias_vs_mean_field_limit_slope"]
            summary.append(
                "At γ = 1 against the mean-field limit itself the bias is "
                + ("unresolved (below 3 standard errors at every width or all but one)" if s is None
                   else f"∝ N^{s:.2f} over the resolved widths (expected −1)") + "."
            )
    config = {
        "model": problem.model.describe() | {"width": "swept", "gamma": "swept"},
        "gammas": gammas, "widths": metrics["widths"], "trainer": trainer.describe(),
        "dataset": data.name, "n_train": data.n_train, "n_probe": data.n_probe,
        "n_members": args.ensemble, "seed": args.seed, "times": times.tolist(),
        "reference": "kernel regression from h = 0 with the Xavier kernel A (THEORY §2–3)",
        "bias_resolved_z": RESOLVED_Z,
    }
    figures = {"gamma_scaling": _figure(widths, per_gamma)}
    return Report(experiment=f"sweep-{NAME}", config=config, metrics=metrics, verdict=verdict,
                  timing=timing, figures=figures, summary=summary, warnings=warnings)


def _discussion(per_gamma: list[dict]) -> str:
    def names(key, label):
        return [f"{r['gamma']:g}" for r in per_gamma if r[key] == label]

    def detail(key, slope, pred, label):
        return [f"{r['gamma']:g} (measured {r[slope]:.3f}, predicted {r[pred]:g})"
                for r in per_gamma if r[key] == label]

    text = f"Spread exponents agree with 1/2 − γ (inside the 95% CI) at γ = " \
           f"{', '.join(names('spread_agreement', 'agrees')) or 'none'}"
    close = detail("spread_agreement", "spread_slope", "predicted_spread_slope", "close")
    if close:
        text += (f"; they are steeper by less than {CLOSE_TOLERANCE:g} at γ = {'; '.join(close)}, as "
                 "a sum of power laws makes them over a finite range: for γ < 1 the kernel's own "
                 "sampling fluctuation adds an N^-1/2 part that decays faster than N^(1/2−γ), and at "
                 "γ = 1 the variance has O(1/N) relative corrections")
    far = detail("spread_agreement", "spread_slope", "predicted_spread_slope", "disagrees")
    if far:
        text += f"; they disagree at γ = {'; '.join(far)}"
    text += ". Bias exponents agree with γ − 1 at γ = " \
            f"{', '.join(names('bias_agreement', 'agrees')) or 'none'}"
    off = detail("bias_agreement", "bias_slope", "predicted_bias_slope", "close") + \
        detail("bias_agreement", "bias_slope", "predicted_bias_slope", "disagrees")
    if off:
        text += f", not at γ = {'; '.join(off)}"
    unresolved = names("bias_agreement", "unresolved")
    if unresolved:
        text += (f", and are unresolved at γ = {', '.join(unresolved)}: there the bias is within "
                 f"{RESOLVED_Z:g} standard errors of the (control-variate) ensemble mean at all but "
                 "one width, so more members or a longer t_max are needed")
    return text + "."


def _figure(widths, per_gamma) -> Figure:
    fig = Figure(figsize=(12, 4.5), layout="constrained")
    ax1, ax2 = fig.subplots(1, 2)
    for i, r in enumerate(per_gamma):
        color = f"C{i}"
        ax1.errorbar(widths, r["spread"], yerr=2 * np.array(r["spread_se"]), fmt="o", color=color,
                     label=f"γ = {r['gamma']:g}: {r['spread_slope']:.2f} (pred {r['predicted_spread_slope']:g})")
        scale = r["spread"][0] / widths[0] ** r["predicted_spread_slope"]
        ax1.plot(widths, scale * widths ** r["predicted_spread_slope"], "--", color=color, lw=1)
        bias = np.array(r["bias"])
        res = np.array(r["bias_resolved"])
        ax2.plot(widths[res], bias[res], "o", color=color,
                 label=f"γ = {r['gamma']:g}: " + ("unresolved" if r["bias_slope"] is None
                                                   else f"{r['bias_slope']:.2f}")
                 + f" (pred {r['predicted_bias_slope']:g})")
        ax2.plot(widths[~res], bias[~res], "x", color=color)
        ax2.plot(widths, RESOLVED_Z * np.array(r["bias_noise"]), ":", color=color, lw=1)
    ax1.set(xscale="log", yscale="log", xlabel="width N", ylabel="output spread at t_max",
            title="spread (dashed: predicted slope)")
    ax2.set(xscale="log", yscale="log", xlabel="width N", ylabel="RMS bias vs kernel regression",
            title=f"bias (x: below {RESOLVED_Z:g} SE, dotted: {RESOLVED_Z:g} SE)")
    ax1.legend(fontsize=7)
    ax2.legend(fontsize=7)
    return fig
