"""``jaxlimit sweep gamma``: spread and bias against N across the γ family (docs/mean-field.md#the-gamma-family).

For each γ in ``--gammas`` and each width N an ensemble of networks
g^N = N^{-γ} Σ c σ(w·x) is trained and, at t_max:

* **spread**: the square root of the mean over points of Var h^N_t
  (:func:`~jaxlimit.stats.moments.variance_summary`), fitted as N^s. The
  variance is a sum of two uncorrelated parts (the initial output, odd in c,
  and the kernel's sampling fluctuation, even in c), a N^{1−2γ} + b N^{−1}
  with a, b ≥ 0, so over any range of widths s lies between −1/2 and 1/2 − γ,
  tending to 1/2 − γ. Consistent when the fitted s is within 3 standard
  errors of that interval (:func:`~jaxlimit.stats.verdict.agreement` with its
  nearest point).
* **bias**: the RMS over points of E h^N_t − h^ker_t, with h^ker_t = R_t Y
  kernel regression from h = 0 (the mean of the Xavier limit, the limit of
  every γ < 1), estimated with the initial outputs as a control variate
  (:func:`~jaxlimit.stats.bias.bias_summary`), fitted as N^b over the widths
  where it is resolved (:func:`~jaxlimit.stats.verdict.resolution`). The
  prediction is b = 2γ − 2: with ε = N^{γ−1} the training equations are
  invariant under (ε, c) → (−ε, −c), so for a symmetric law of c the mean
  output is even in ε and the bias is O(ε²) + O(1/N) = O(N^{2γ−2}) + O(N^{−1})
  (not O(N^{γ−1}), as an earlier version predicted). At γ = 1 the bias
  against kernel regression is O(1) (the mean-field limit is not kernel
  regression); against the mean-field limit itself it is O(1/N)
  (``bias_vs_mean_field_limit``).
* **the symmetry directly**: at one width, γ sets ε = N^{γ−1} and the O(1/N)
  part hardly depends on γ, so the bias across the γ < 1 values with a
  resolved bias is fitted as ε^k (``bias_epsilon_exponent`` per width):
  k = 2 if the mean is even in ε, k = 1 if a first-order term survived.

The default t_max is 4: the bias at every γ is a multiple of how far the
mean-field limit has left kernel regression, and on the default problem that
gap is near its largest there (RMS over points 0.007 at t = 1, 0.029 at t = 2,
0.064 at t = 4, 0.052 at t = 8).
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from jaxlimit.experiments.problem import ensemble_options, timed, two_layer_problem
from jaxlimit.experiments.sweep_gamma import figures
from jaxlimit.experiments.sweep_gamma.config import SweepGammaConfig
from jaxlimit.limits.mean_field import mean_field_limit
from jaxlimit.limits.xavier import xavier_limit
from jaxlimit.report import Report
from jaxlimit.stats import PowerLawFit, fit_power_law
from jaxlimit.stats.scaling import predicted_bias_exponent, predicted_spread_exponents
from jaxlimit.stats.bias import bias_summary
from jaxlimit.stats.moments import variance_summary
from jaxlimit.stats.verdict import NOT_RESOLVED, RESOLVED, agreement, resolution
from jaxlimit.streams import stream_seed
from jaxlimit.training import run_ensemble

AGREEMENT_Z = 3.0
"""A fitted exponent is consistent with its prediction within this many standard errors."""


def _fit(widths, values, errors, keep):
    keep = np.asarray(keep, bool)
    if keep.sum() < 2:
        return None
    return fit_power_law(np.asarray(widths, float)[keep], np.asarray(values)[keep], y_err=np.asarray(errors)[keep])


def _nearest(value: float, low: float, high: float) -> float:
    return min(max(value, low), high)


NAN = float("nan")


@dataclasses.dataclass(frozen=True)
class References:
    """What the biases are measured against, at t_max.

    Attributes:
        kernel: kernel regression from h = 0, the Xavier limit's mean, shape (P,).
        mean_field: the mean-field limit h̄ (None when γ = 1 is not swept).
    """

    kernel: np.ndarray
    mean_field: np.ndarray | None


@dataclasses.dataclass(frozen=True)
class Cell:
    """One (γ, N) ensemble at t_max (finite members; NaN statistics when too few stayed finite).

    Attributes:
        gamma, width, epsilon: γ, N and ε = N^{γ−1}.
        n_members, n_diverged: finite and diverged members.
        spread, spread_se: √(mean over points of Var h^N) with its delta-method standard error.
        bias, bias_se, bias_noise, bias_debiased, bias_resolution: the control-variate RMS bias
            against kernel regression (:func:`~jaxlimit.stats.bias.bias_summary`), its standard
            error, its noise level, with the noise removed, and whether it is resolved.
        bias_gap, bias_gap_se: the per-point gap and its standard errors (None when not computed).
        bias_over_epsilon, bias_over_epsilon_squared: bias / ε and bias / ε².
        bias_vs_mean_field_limit, _se, _noise, _resolution: the bias against the mean-field limit
            (γ = 1 only; NaN and "" otherwise).
    """

    gamma: float
    width: int
    epsilon: float
    n_members: int
    n_diverged: int
    spread: float = NAN
    spread_se: float = NAN
    bias: float = NAN
    bias_se: float = NAN
    bias_noise: float = NAN
    bias_debiased: float = NAN
    bias_resolution: str = NOT_RESOLVED
    bias_gap: np.ndarray | None = None
    bias_gap_se: np.ndarray | None = None
    bias_over_epsilon: float = NAN
    bias_over_epsilon_squared: float = NAN
    bias_vs_mean_field_limit: float = NAN
    bias_vs_mean_field_limit_se: float = NAN
    bias_vs_mean_field_limit_noise: float = NAN
    bias_vs_mean_field_limit_resolution: str = ""


@dataclasses.dataclass(frozen=True)
class MeanFieldBias:
    """At γ = 1, the bias against the mean-field limit fitted as N^b over its resolved widths
    (predicted −1): ``fit`` (None with fewer than two), its slope, standard error and verdict."""

    fit: PowerLawFit | None
    slope: float | None
    slope_se: float | None
    agreement: str


@dataclasses.dataclass(frozen=True)
class GammaFits:
    """One γ across the widths: spread and bias against N, fitted and predicted.

    Attributes:
        gamma: γ.
        spread, spread_se, bias, bias_se, bias_noise: the cells' values, one per width.
        bias_resolved, bias_resolved_widths: where the bias is resolved (the points its fit uses).
        fit_spread, spread_slope, spread_slope_se: the spread's power-law fit in N (None with
            fewer than two finite points).
        predicted_spread_slope, predicted_spread_interval: the asymptotic exponent 1/2 − γ and the
            interval [−1/2, 1/2 − γ] a finite range of widths can show
            (:func:`~jaxlimit.stats.scaling.predicted_spread_exponents`).
        spread_agreement: the fitted exponent against the nearest point of that interval.
        fit_bias, bias_slope, bias_slope_se, predicted_bias_slope, bias_agreement: the bias's fit over
            the resolved widths against 2γ − 2 (:func:`~jaxlimit.stats.scaling.predicted_bias_exponent`).
        mean_field: at γ = 1 with a mean-field limit, the bias against it; else None.
    """

    gamma: float
    spread: list
    spread_se: list
    bias: list
    bias_se: list
    bias_noise: list
    bias_resolved: list
    bias_resolved_widths: list
    fit_spread: PowerLawFit | None
    spread_slope: float | None
    spread_slope_se: float | None
    predicted_spread_slope: float
    predicted_spread_interval: list
    spread_agreement: str
    fit_bias: PowerLawFit | None
    bias_slope: float | None
    bias_slope_se: float | None
    predicted_bias_slope: float
    bias_agreement: str
    mean_field: MeanFieldBias | None


@dataclasses.dataclass(frozen=True)
class EpsilonFit:
    """At one width, the resolved biases of the γ < 1 ensembles fitted as ε^k (k = 2 if the mean is
    even in ε): ``exponent`` and ``se`` (None with fewer than two), the γ values used as text."""

    width: int
    exponent: float | None
    se: float | None
    gammas: str
    fit: PowerLawFit | None


BY_GAMMA_WIDTH = ("gamma", "width", "epsilon", "n_members", "n_diverged", "spread", "spread_se", "bias", "bias_se",
                  "bias_noise", "bias_debiased", "bias_resolution", "bias_over_epsilon", "bias_over_epsilon_squared",
                  "bias_vs_mean_field_limit", "bias_vs_mean_field_limit_se",
                  "bias_vs_mean_field_limit_noise", "bias_vs_mean_field_limit_resolution")
BY_GAMMA = ("gamma", "spread_slope", "spread_slope_se", "predicted_spread_slope", "spread_agreement",
            "bias_slope", "bias_slope_se", "predicted_bias_slope", "bias_agreement", "bias_resolved_widths")


def run(config: SweepGammaConfig) -> Report:
    timing: dict = {}
    warnings: list[str] = []
    gammas = list(config.gammas)
    problem = two_layer_problem(config, width=config.widths[0], scaling=gammas[0])
    data, trainer, times = problem.data, problem.trainer, problem.times
    with timed(timing, "limits"):
        refs = _references(config, problem, warnings)
    widths = np.array(config.widths, float)
    grid = [_ensembles(config, problem, gamma, refs, timing, warnings) for gamma in gammas]
    cells = [c for row in grid for c in row]
    per_gamma = [_gamma_fits(gamma, widths, row) for gamma, row in zip(gammas, grid)]
    epsilon = _epsilon_fits(cells, gammas, config.widths)
    metrics = _metrics(config, gammas, widths, per_gamma, epsilon, refs)
    verdict = {f"spread_gamma_{r.gamma:g}": r.spread_agreement for r in per_gamma}
    verdict |= {f"bias_gamma_{r.gamma:g}": r.bias_agreement for r in per_gamma if r.bias_agreement != NOT_RESOLVED}
    facts = dict(widths=metrics["widths"], members=config.ensemble, data=data.name)
    return Report(
        experiment="sweep-gamma",
        config={"reference": "kernel regression from h = 0 with the Xavier kernel A (docs/mean-field.md)",
                "times": times.tolist(), "model": problem.model.describe() | {"width": "swept", "gamma": "swept"},
                "trainer": trainer.describe(),
                "verdict": {"spread": f"the exponent within {AGREEMENT_Z:g} SE of [-1/2, 1/2 - γ]",
                            "bias": f"the exponent over resolved widths within {AGREEMENT_Z:g} SE of 2γ - 2"}},
        metrics=metrics, verdict=verdict, timing=timing,
        figures={"gamma_scaling": figures.gamma_figure(widths, per_gamma, facts),
                 "bias_symmetry": figures.epsilon_figure(cells, epsilon, gammas, facts)},
        tables={"by_gamma_width": {k: [getattr(c, k) for c in cells] for k in BY_GAMMA_WIDTH},
                "by_gamma": {k: [_table_value(getattr(r, k)) for r in per_gamma] for k in BY_GAMMA},
                "epsilon_by_width": {k: [getattr(e, k) for e in epsilon]
                                     for k in ("width", "exponent", "se", "gammas")}},
        arrays=_arrays(cells, gammas, config.widths, refs, times),
        summary=_summary(config, gammas, problem, per_gamma, epsilon), warnings=warnings,
    )


def _table_value(value):
    return ";".join(str(v) for v in value) if isinstance(value, list) else value


def _references(config, problem, warnings) -> References:
    """Kernel regression from h = 0 (the Xavier limit's mean) and, when γ = 1 is swept, the mean-field limit."""
    data, trainer, times = problem.data, problem.trainer, problem.times
    kernel = xavier_limit(two_layer_problem(config, width=config.widths[0], scaling="xavier", data=data).model,
                          data, trainer)
    reference = np.asarray(kernel.predict(times).mean)[-1]
    mf_reference = None
    if 1.0 in config.gammas:
        mf_model = two_layer_problem(config, width=config.widths[-1], scaling="mean-field", data=data).model
        mf = mean_field_limit(mf_model, data, trainer, times=times, n_particles=config.particles,
                              seed=stream_seed(config.seed, "quadrature"))
        mf_reference = np.asarray(mf.outputs)[-1]
        warnings += [w for w in mf.warnings() if "covariance" not in w]  # no covariance is used here
    warnings += kernel.warnings()
    return References(reference, mf_reference)


def _ensembles(config, problem, gamma: float, refs: References, timing, warnings) -> list[Cell]:
    """One ensemble per width at this γ, its own members' stream each."""
    cells = []
    for width in config.widths:
        model = two_layer_problem(config, width=width, scaling=gamma, data=problem.data).model
        with timed(timing, f"ensembles_gamma{gamma:g}"):
            result = run_ensemble(model, problem.data, problem.trainer, times=problem.times,
                                  **ensemble_options(config, width, name=f"members-gamma-{gamma:g}"))
        if result.n_diverged:
            warnings.append(f"γ = {gamma:g}, N = {width}: {result.n_diverged} members diverged and are excluded")
        cells.append(_cell(gamma, width, result, result.finite(), refs, problem.data))
    return cells


def _cell(gamma, width, result, ok, refs: References, data) -> Cell:
    """The spread and biases of one (γ, N) ensemble at t_max."""
    epsilon = width ** (gamma - 1.0)
    if ok.n_members < data.n_train + data.n_probe + 2:
        return Cell(gamma, width, epsilon, ok.n_members, result.n_diverged)
    final = ok.outputs[:, -1].astype(np.float64)
    initial = ok.outputs[:, 0].astype(np.float64)
    var = variance_summary(final)
    bias = bias_summary(final, initial, refs.kernel)
    mf = {}
    if gamma == 1.0 and refs.mean_field is not None:
        b = bias_summary(final, initial, refs.mean_field)
        mf = dict(bias_vs_mean_field_limit=b.value, bias_vs_mean_field_limit_se=b.value_se,
                  bias_vs_mean_field_limit_noise=b.noise,
                  bias_vs_mean_field_limit_resolution=resolution(b.value, b.noise))
    return Cell(gamma, width, epsilon, ok.n_members, result.n_diverged, spread=math.sqrt(var.value),
                spread_se=var.se / (2.0 * math.sqrt(var.value)), bias=bias.value, bias_se=bias.value_se,
                bias_noise=bias.noise, bias_debiased=bias.debiased, bias_resolution=resolution(bias.value, bias.noise),
                bias_gap=bias.gap, bias_gap_se=bias.se, bias_over_epsilon=bias.value / epsilon,
                bias_over_epsilon_squared=bias.value / epsilon ** 2, **mf)


def _gamma_fits(gamma: float, widths: np.ndarray, cells: list[Cell]) -> GammaFits:
    col = lambda key: np.array([getattr(c, key) for c in cells], float)  # noqa: E731
    fit_spread = _fit(widths, col("spread"), col("spread_se"), np.isfinite(col("spread")))
    resolved = [c.bias_resolution == RESOLVED for c in cells]
    fit_bias = _fit(widths, col("bias"), col("bias_se"), resolved)
    lo, hi = predicted_spread_exponents(gamma)
    pred_b = predicted_bias_exponent(gamma)
    mean_field = None
    if gamma == 1.0 and np.isfinite(col("bias_vs_mean_field_limit")).any():
        keep = [c.bias_vs_mean_field_limit_resolution == RESOLVED for c in cells]
        fit_mf = _fit(widths, col("bias_vs_mean_field_limit"), col("bias_vs_mean_field_limit_se"), keep)
        mean_field = MeanFieldBias(
            fit_mf, None if fit_mf is None else fit_mf.slope, None if fit_mf is None else fit_mf.slope_se,
            NOT_RESOLVED if fit_mf is None else agreement(fit_mf.slope, -1.0, fit_mf.slope_se, z=AGREEMENT_Z))
    return GammaFits(
        gamma=gamma, spread=col("spread").tolist(), spread_se=col("spread_se").tolist(), bias=col("bias").tolist(),
        bias_se=col("bias_se").tolist(), bias_noise=col("bias_noise").tolist(), bias_resolved=resolved,
        bias_resolved_widths=[int(w) for w, k in zip(widths, resolved) if k], fit_spread=fit_spread,
        spread_slope=None if fit_spread is None else fit_spread.slope,
        spread_slope_se=None if fit_spread is None else fit_spread.slope_se,
        predicted_spread_slope=hi, predicted_spread_interval=[lo, hi],
        spread_agreement=NOT_RESOLVED if fit_spread is None else
        agreement(fit_spread.slope, _nearest(fit_spread.slope, lo, hi), fit_spread.slope_se, z=AGREEMENT_Z),
        fit_bias=fit_bias, bias_slope=None if fit_bias is None else fit_bias.slope,
        bias_slope_se=None if fit_bias is None else fit_bias.slope_se, predicted_bias_slope=pred_b,
        bias_agreement=NOT_RESOLVED if fit_bias is None else
        agreement(fit_bias.slope, pred_b, fit_bias.slope_se, z=AGREEMENT_Z),
        mean_field=mean_field)


def _epsilon_fits(cells: list[Cell], gammas, widths) -> list[EpsilonFit]:
    """At each width, the resolved biases of the γ < 1 ensembles fitted as ε^k, ε = N^{γ−1}."""
    out = []
    for width in widths:
        at = [c for c in cells if c.width == width and c.gamma < 1.0 and c.bias_resolution == RESOLVED]
        fit = None
        if len(at) >= 2:
            fit = fit_power_law([c.epsilon for c in at], [c.bias for c in at], y_err=[c.bias_se for c in at])
        out.append(EpsilonFit(int(width), None if fit is None else fit.slope, None if fit is None else fit.slope_se,
                              ";".join(f"{c.gamma:g}" for c in at), fit))
    return out


def _mean_field_row(per_gamma: list[GammaFits]) -> GammaFits | None:
    return next((r for r in per_gamma if r.mean_field is not None), None)


def _metrics(config, gammas, widths, per_gamma: list[GammaFits], epsilon: list[EpsilonFit], refs) -> dict:
    metrics = {
        "gammas": gammas,
        "widths": widths.astype(int).tolist(),
        "n_members": config.ensemble,
        "spread_slopes": [r.spread_slope for r in per_gamma],
        "spread_slopes_se": [r.spread_slope_se for r in per_gamma],
        "predicted_spread_slopes": [r.predicted_spread_slope for r in per_gamma],
        "predicted_spread_slope_intervals": [r.predicted_spread_interval for r in per_gamma],
        "spread_agreement": [r.spread_agreement for r in per_gamma],
        "bias_slopes": [r.bias_slope for r in per_gamma],
        "bias_slopes_se": [r.bias_slope_se for r in per_gamma],
        "predicted_bias_slopes": [r.predicted_bias_slope for r in per_gamma],
        "bias_agreement": [r.bias_agreement for r in per_gamma],
        "bias_resolved_widths": [r.bias_resolved_widths for r in per_gamma],
        "bias_epsilon_exponent_by_width": [e.exponent for e in epsilon],
        "bias_epsilon_exponent_se_by_width": [e.se for e in epsilon],
        "kernel_limit_final": refs.kernel,
    }
    mf_row = _mean_field_row(per_gamma)
    if mf_row is not None:
        mf = mf_row.mean_field
        metrics |= {"bias_vs_mean_field_limit_slope": mf.slope, "bias_vs_mean_field_limit_slope_se": mf.slope_se,
                    "bias_vs_mean_field_limit_agreement": mf.agreement}
        metrics["mean_field_limit_final"] = refs.mean_field
    return metrics


def _summary(config, gammas, problem, per_gamma: list[GammaFits], epsilon: list[EpsilonFit]) -> list[str]:
    summary = [
        f"{config.ensemble} networks per (γ, N), γ ∈ {{{', '.join(f'{g:g}' for g in gammas)}}}, "
        f"N ∈ {{{', '.join(str(w) for w in config.widths)}}}, {problem.trainer.method} descent to "
        f"t = {problem.times[-1]:g} on {problem.data.name}. Spread = sqrt(mean variance over points); bias = RMS gap "
        "of the ensemble mean (initial outputs as a control variate) to kernel regression from h = 0, the Xavier "
        "limit's mean.",
        "",
        "| γ | spread exponent ± SE | predicted (asymptotic; range) | | bias exponent ± SE (resolved widths) | "
        "predicted 2γ − 2 | |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in per_gamma:
        lo, hi = r.predicted_spread_interval
        b_txt = (f"{NOT_RESOLVED} ({len(r.bias_resolved_widths)} widths)" if r.bias_slope is None else
                 f"{r.bias_slope:.3f} ± {r.bias_slope_se:.3f} (N = "
                 f"{', '.join(str(w) for w in r.bias_resolved_widths)})")
        s_txt = ("n/a" if r.spread_slope is None else f"{r.spread_slope:.3f} ± {r.spread_slope_se:.3f}")
        summary.append(
            f"| {r.gamma:g} | {s_txt} | {hi:g}; "
            f"[{lo:g}, {hi:g}] | {r.spread_agreement} | {b_txt} | {r.predicted_bias_slope:g} | "
            f"{r.bias_agreement} |")
    summary += ["", _discussion(per_gamma, epsilon)]
    mf_row = _mean_field_row(per_gamma)
    if mf_row is not None:
        mf = mf_row.mean_field
        summary.append("At γ = 1 against the mean-field limit itself the bias is "
                       + (f"{NOT_RESOLVED} at two or more widths" if mf.slope is None else
                          f"∝ N^{mf.slope:.2f} ± {mf.slope_se:.2f} over the resolved "
                          f"widths (predicted −1: {mf.agreement})") + ".")
    return summary


def _arrays(cells: list[Cell], gammas, widths, refs: References, times) -> dict:
    """Per (γ, N) the control-variate gap vectors and their standard errors, shape (n_γ, n_N, P)."""
    p = len(refs.kernel)
    gap = np.full((len(gammas), len(widths), p), np.nan)
    se = np.full_like(gap, np.nan)
    for c in cells:
        if c.bias_gap is not None:
            i, j = gammas.index(c.gamma), list(widths).index(c.width)
            gap[i, j], se[i, j] = c.bias_gap, c.bias_gap_se
    out = {"gammas": np.array(gammas), "widths": np.array(widths), "times": times, "kernel_limit_final": refs.kernel,
           "bias_gap": gap, "bias_gap_se": se}
    if refs.mean_field is not None:
        out["mean_field_limit_final"] = refs.mean_field
    return out


def _discussion(per_gamma: list[GammaFits], epsilon: list[EpsilonFit]) -> str:
    def listed(key, word):
        return ", ".join(f"{r.gamma:g}" for r in per_gamma if getattr(r, key) == word) or "none"

    text = (f"Spread exponents are consistent with the predicted range (between the kernel-sampling −1/2 and the "
            f"initial-output 1/2 − γ, within {AGREEMENT_Z:g} SE) at γ = "
            f"{listed('spread_agreement', 'consistent')}; "
            f"inconsistent at γ = {listed('spread_agreement', 'inconsistent')}. Bias exponents are consistent with "
            f"2γ − 2 at γ = {listed('bias_agreement', 'consistent')}; inconsistent at γ = "
            f"{listed('bias_agreement', 'inconsistent')}; {NOT_RESOLVED} (resolved at fewer than two widths) at "
            f"γ = {listed('bias_agreement', NOT_RESOLVED)}.")
    off = [r for r in per_gamma if r.bias_agreement == "inconsistent" and r.gamma < 1.0]
    if off:
        text += (" 2γ − 2 is the asymptotic exponent; over a finite range of widths the next terms pull the fit: "
                 "near γ = 1 the next even term O(ε⁴) = O(N^(4γ−4)) (ε = N^(γ−1) is not small there), near "
                 "γ = 1/2 the O(1/N) part. If the bias is even in ε, bias/ε² (by_gamma_width.csv) is nearly "
                 "the same at every (γ, N), while bias/ε is not.")
    fitted = [e for e in epsilon if e.exponent is not None]
    if fitted:
        text += (" At fixed width the resolved biases of the γ < 1 ensembles scale as ε^k with k = "
                 + ", ".join(f"{e.exponent:.2f} ± {e.se:.2f} (N = {e.width})" for e in fitted)
                 + " (2 if the mean is even in ε, 1 if not).")
    return text
