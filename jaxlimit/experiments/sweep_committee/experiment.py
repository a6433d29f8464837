"""``jaxlimit sweep committee``: config → per D, students (exact order-parameter chain, recorded every
≈ 0.25 α) → the ODE and its linear-noise covariance → gaps and escape times → rates in D → Report
(docs/committee.md, "The sweep in D").

1. The limit (D-independent): the symmetric plateau at (η, σ), its escape rate λ (the largest
   eigenvalue of the drift's Jacobian there), the ODE from the mean start (Q̄, R̄) = (s² I, 0), which
   stays on the plateau, with Σ(α) and the Hessian of ε_g in (Q, R).
2. The window W = [¼, ½] · ln(D_min)/(2λ), fixed before any student is drawn: on the plateau, before
   the unstable mode's fluctuation e^{λα} D^{-1/2} reaches O(1) at the smallest D.
3. Per D: the mean over students of the window-averaged ε_g − ε_g^ODE (mean ± SE; expected
   ½ tr(∇²ε_g Σ)/D + ∇ε_g·δX̄/D, the second term, the O(1/D) shift of the mean of X, not computed),
   the pathwise RMS gap √(mean over students and W of (ε_g − ε_g^ODE)²) (∝ D^{-1/2}), and every
   student's escape time (first recorded α with ε_g < ½ ε_plateau; +inf if none by --alpha-max).
4. Rates: |mean gap| and the RMS gap as powers of D (weighted fits, slope intervals; consistent when
   the interval covers −1, resp. −½), and the median escape time against ln D (order-statistic
   intervals, weighted line; consistent when the slope's interval covers 1/(2λ)).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxlimit.errors import InputError
from jaxlimit.experiments.problem import timed
from jaxlimit.experiments.sweep_committee import figures
from jaxlimit.experiments.sweep_committee.config import SweepCommitteeConfig
from jaxlimit.limits import committee as cm
from jaxlimit.report import Report
from jaxlimit.stats import fit_line, fit_power_law, mean_estimate, median_estimate, root_mean_square
from jaxlimit.stats.verdict import combine, slope_agreement
from jaxlimit.streams import stream_key
from jaxlimit.training import committee as tc

ESCAPE_FRACTION = 0.5
"""A student has escaped once its ε_g falls below this fraction of the plateau height."""
WINDOW = (0.25, 0.5)
"""The gap window in units of ln(D_min)/(2λ)."""
RESOLUTION = 0.25
"""Records every ≈ this much α (a power of two of steps dividing the page)."""
SHOWN = 60
TOLERANCE = {"mean_gap": 0.0, "rms_gap": 0.05, "escape": 0.0}
"""Widening of each slope's interval for the terms the fit leaves out: the squared RMS gap is
a/D + b/D² (b from the curvature of ε_g along the growing unstable mode and the next order of the
expansion), which steepens its slope at small D by a few hundredths (−0.55 ± 0.02 from D = 100 to
400, −0.533 ± 0.018 from 250 to 2000)."""


def plateau_window(dims, rate: float) -> tuple[float, float]:
    """The α window of the gap measurement: WINDOW × ln(min D)/(2λ)."""
    length = cm.plateau_length(min(dims), rate)
    return WINDOW[0] * length, WINDOW[1] * length


@dataclasses.dataclass(frozen=True)
class SweepLimit:
    """The D-independent predictions.

    Attributes:
        T: the teacher overlaps (I).
        eta_max: the learning rate above which the perfect student is unstable.
        plateau: ``limits.committee.escape_rate``'s symmetric plateau: its ε_g and escape rate λ.
        ode: the ODE from the mean start, built with dim=1 (its covariance is Σ(α) itself).
    """

    T: np.ndarray
    eta_max: float
    plateau: dict
    ode: Any


@dataclasses.dataclass(frozen=True)
class GapSummary:
    """The window-averaged ε_g gaps of the students to the ODE.

    Attributes:
        mean_gap, mean_gap_se: the mean over students of the window-averaged ε_g − ε_g^ODE, and its SE.
        rms_gap, rms_gap_se: the RMS over students of each one's window RMS gap, and its delta-method SE.
        window_times: the recorded α in the window.
    """

    mean_gap: float
    mean_gap_se: float
    rms_gap: float
    rms_gap_se: float
    window_times: int


@dataclasses.dataclass(frozen=True)
class DimResult:
    """One D's students against the ODE (the fields are the ``by_dim`` table's columns, in order).

    Attributes:
        dim: D; students: the finite students.
        mean_gap … window_times: the window-averaged gaps (:class:`GapSummary`).
        curvature_gap_times_D: ½ tr(∇²ε_g Σ) averaged over the window (D-independent).
        mean_gap_times_D, mean_gap_times_D_se: D × the mean gap and its SE.
        escape_median, escape_interval, escape_se: the median escape time, its order-statistic interval and
            the half-width / 1.96.
        fraction_escaped: the fraction of students that escaped by --alpha-max.
        escape_quartiles: the lower and upper quartiles of the escape times.
        record_resolution: the spacing of the recorded α.
    """

    dim: int
    students: int
    mean_gap: float
    mean_gap_se: float
    rms_gap: float
    rms_gap_se: float
    window_times: int
    curvature_gap_times_D: float
    mean_gap_times_D: float
    mean_gap_times_D_se: float
    escape_median: float
    escape_interval: list
    escape_se: float
    fraction_escaped: float
    escape_quartiles: list
    record_resolution: float


@dataclasses.dataclass(frozen=True)
class Shown:
    """The students drawn in the gap figure (the largest D): α, the first SHOWN students' ε_g, their
    mean over all students and the ODE's ε_g."""

    alpha: np.ndarray
    eps: np.ndarray
    mean: np.ndarray
    ode: np.ndarray
    D: int


@dataclasses.dataclass(frozen=True)
class Rates:
    """The rates in D: per rate (``mean_gap``, ``rms_gap``, ``escape``) the fit (None: not fitted), the
    predicted slope and the verdict (``<rate>_slope``, and ``sweep`` combining them)."""

    fits: dict
    predicted: dict[str, float]
    verdict: dict[str, str]


def sweep_limit(eta: float, sigma: float, init_std: float, units: int = 2) -> SweepLimit:
    """The D-independent predictions at K = M = ``units``: plateau, λ, η_max and the ODE (with dim=1, so its
    covariance is Σ(α) itself) from the mean start."""
    T = np.eye(units)
    eta_max = cm.max_learning_rate(T)
    if eta >= eta_max:
        raise InputError(f"--alpha {eta:g} is at or above η_max = {eta_max:.4g}, where the perfect student "
                         "becomes unstable; choose a smaller --alpha")
    plateau = cm.escape_rate(units, eta, sigma)
    ode = cm.committee_ode(init_std**2 * np.eye(units), np.zeros((units, units)), T, lr=eta, noise_std=sigma,
                           dim=1, initial_cov=cm.gaussian_start_covariance(units, T, init_std))
    return SweepLimit(T, eta_max, plateau, ode)


def curvature_gap(ode, alphas) -> np.ndarray:
    """½ tr(∇²ε_g(X̄(α)) Σ(α)) at ``alphas``: D × the part of E[ε_g] − ε_g(X̄) that comes from the
    curvature of ε_g in X (ode built with dim=1, so its covariance is Σ)."""
    K, M = ode.K, ode.M
    T = jnp.asarray(ode.T)
    hess = jax.jit(jax.vmap(jax.hessian(lambda X: cm.generalisation_error(*cm.unflatten(X, K, M), T))))
    Q, R = ode.order_parameters(alphas)
    X = jax.vmap(cm.flatten)(Q, R)
    _, S = ode.fluctuations(alphas)
    return 0.5 * np.einsum("aij,aij->a", np.asarray(hess(X)), np.asarray(S))


def students_at(config: SweepCommitteeConfig, D: int, T) -> dict:
    """E students at dimension D, recorded every ≈ RESOLUTION α up to --alpha-max."""
    K = config.students
    ids = np.arange(config.ensemble)
    Q0, R0 = jax.vmap(lambda k: tc.gaussian_start_order_parameters(k, K, T, D, config.init_std))(
        tc.student_keys(stream_key(config.seed, "starts", D), ids))
    return tc.train_order_parameters_strided(Q0, R0, T, lr=config.alpha, noise_std=config.noise, D=D,
                                             alpha_max=config.alpha_max, stride=tc.record_stride(D, RESOLUTION),
                                             root=stream_key(config.seed, "members", D))


def gap_summary(eps, alphas, ode_eps, window) -> GapSummary:
    """The window-averaged gaps of ``eps`` (E, A) to ``ode_eps`` (A,) over α ∈ window."""
    w = (alphas >= window[0]) & (alphas <= window[1])
    if w.sum() < 2:
        raise InputError(f"fewer than two recorded times in the window α ∈ [{window[0]:.3g}, {window[1]:.3g}]")
    diff = eps[:, w] - ode_eps[w]
    mean = mean_estimate(diff.mean(1))
    rms = root_mean_square(np.sqrt((diff**2).mean(1)))
    return GapSummary(mean.value, mean.se, rms.value, rms.se, int(w.sum()))


def run(config: SweepCommitteeConfig) -> Report:
    if not jax.config.jax_enable_x64:
        raise InputError("sweep committee integrates its ODEs in float64; enable it first with "
                         "jax.config.update('jax_enable_x64', True) (the command line does)")
    timing: dict = {}
    warnings: list[str] = []
    with timed(timing, "limit"):
        lim = sweep_limit(config.alpha, config.noise, config.init_std, config.students)
    lam = lim.plateau["escape_rate"]
    window = plateau_window(config.dims, lam)
    if window[1] >= config.alpha_max:
        raise InputError(f"--alpha-max {config.alpha_max:g} ends before the gap window α ≤ {window[1]:.3g}")
    with timed(timing, "limit"):
        # D × the curvature part of the mean gap, averaged over the window (D-independent)
        curvature = float(curvature_gap(lim.ode, np.linspace(*window, 9)).mean())
    rows, shown, escapes = [], None, {}
    for D in config.dims:
        row, escapes[D], students = compare_dim(config, D, lim, window, curvature, timing, warnings)
        rows.append(row)
        if D == max(config.dims):
            shown = Shown(students["alpha"], students["eps"][:SHOWN], students["eps"].mean(0), students["ode"], D)
    rates = fit_rates(config, rows, lam, warnings)
    metrics = _metrics(rows, rates, lim, window)
    facts = dict(model=f"K = M = {config.students} erf(·/√2) committee, T = I", members=config.ensemble,
                 data=f"online x ~ N(0, I_D), η = {config.alpha:g}, σ = {config.noise:g}")
    figs = {"gaps": figures.gap_figure(rows, rates.fits, window, shown, facts),
            "escape": figures.escape_figure(rows, escapes, rates.fits["escape"], lam, facts)}
    return Report(experiment="sweep-committee",
                  config={"limit": "Saad–Solla / Goldt order-parameter ODEs with the linear-noise covariance",
                          "students": "exact order-parameter Markov chain, recorded every ≈ 0.25 α"},
                  metrics=metrics, verdict=rates.verdict, timing=timing, figures=figs,
                  tables={"by_dim": _table(rows)},
                  arrays={f"escape_times_D{D}": t for D, t in escapes.items()},
                  summary=_summary(config, rows, rates, lim, window), warnings=warnings)


def compare_dim(config: SweepCommitteeConfig, D: int, lim: SweepLimit, window, curvature: float, timing: dict,
                warnings: list) -> tuple[DimResult, np.ndarray, dict]:
    """E students at D against the ODE: the gaps over the window and the escape times; with the escape
    times and the finite students' ε_g (``alpha``, ``eps``, ``ode``) for the figures."""
    with timed(timing, f"students_D{D}"):
        runs = students_at(config, D, lim.T)
    alphas, finite = runs["alpha"], runs["finite"]
    if not finite.all():
        warnings.append(f"D = {D}: {int((~finite).sum())} students diverged and are excluded")
    eps = runs["eps"][finite]
    with timed(timing, "comparison"):
        ode_eps = np.asarray(lim.ode.generalisation_error(alphas))
        gaps = gap_summary(eps, alphas, ode_eps, window)
        t_esc = cm.escape_times(eps, alphas, ESCAPE_FRACTION * lim.plateau["plateau_eps"])
        med = median_estimate(t_esc)  # its SE: the 95 % order-statistic half-width / 1.96
        row = DimResult(dim=D, students=int(finite.sum()), **dataclasses.asdict(gaps),
                        curvature_gap_times_D=curvature, mean_gap_times_D=D * gaps.mean_gap,
                        mean_gap_times_D_se=D * gaps.mean_gap_se, escape_median=med.value,
                        escape_interval=list(med.interval), escape_se=med.se,
                        fraction_escaped=float(np.isfinite(t_esc).mean()),
                        escape_quartiles=[float(np.quantile(t_esc, q, method="lower")) for q in (0.25, 0.75)],
                        record_resolution=float(alphas[1] - alphas[0]))
    return row, t_esc, {"alpha": alphas, "eps": eps, "ode": ode_eps}


def fit_rates(config: SweepCommitteeConfig, rows: list[DimResult], lam: float, warnings: list) -> Rates:
    """|mean gap| and the RMS gap as powers of D, the median escape time against ln D, and their verdicts."""
    dims = np.array([r.dim for r in rows], float)
    col = lambda key: np.array([getattr(r, key) for r in rows], float)  # noqa: E731
    fits, verdict = {}, {}
    fit_level = 1.0 - config.level / 3  # Bonferroni over the three slopes
    gap = -col("mean_gap") if np.all(col("mean_gap") < 0) else col("mean_gap")
    if np.all(gap > 0):
        fits["mean_gap"] = fit_power_law(dims, gap, y_err=col("mean_gap_se"), level=fit_level)
    else:
        warnings.append("the mean gap changes sign across D: no power law is fitted (not resolved at this size)")
        fits["mean_gap"] = None
    fits["rms_gap"] = fit_power_law(dims, col("rms_gap"), y_err=col("rms_gap_se"), level=fit_level)
    ok = np.isfinite(col("escape_se")) & np.isfinite(col("escape_median"))
    if ok.sum() >= 2:
        fits["escape"] = fit_line(np.log(dims[ok]), col("escape_median")[ok], y_err=col("escape_se")[ok],
                                  level=fit_level)
    else:
        warnings.append("fewer than two D with a finite median escape time (and interval): raise --alpha-max")
        fits["escape"] = None
    predicted = {"mean_gap": -1.0, "rms_gap": -0.5, "escape": 1.0 / (2.0 * lam)}
    for name, fit in fits.items():
        verdict[f"{name}_slope"] = slope_agreement(fit, predicted[name], TOLERANCE[name])
    verdict["sweep"] = combine(verdict.values())
    return Rates(fits, predicted, verdict)


def _table(rows: list[DimResult]) -> dict:
    """The ``by_dim`` table: one column per field of :class:`DimResult`."""
    return {f.name: [getattr(r, f.name) for r in rows] for f in dataclasses.fields(DimResult)}


def _metrics(rows: list[DimResult], rates: Rates, lim: SweepLimit, window) -> dict:
    lam = lim.plateau["escape_rate"]
    metrics = {
        "dims": [int(r.dim) for r in rows], "eta_max": lim.eta_max,
        "plateau_eps": lim.plateau["plateau_eps"], "escape_rate": lam, "window": list(window),
        "escape_threshold_eps": ESCAPE_FRACTION * lim.plateau["plateau_eps"],
        "predicted": {"mean_gap_slope": -1.0, "rms_gap_slope": -0.5, "escape_slope_1_over_2lambda": 1 / (2 * lam),
                      "escape_slope_1_over_lambda": 1 / lam},
    }
    for name, fit in rates.fits.items():
        metrics[f"{name}_fit"] = fit.as_dict() if fit is not None else None
    return metrics


def _summary(config: SweepCommitteeConfig, rows: list[DimResult], rates: Rates, lim: SweepLimit,
             window) -> list[str]:
    lam = lim.plateau["escape_rate"]

    def slope_line(name, what):
        fit = rates.fits[name]
        if fit is None:
            return f"{what}: not resolved at this size."
        ci = fit.slope_ci
        return (f"{what}: slope {fit.slope:.3f}, {100 * fit.level:g}% CI [{ci[0]:.3f}, {ci[1]:.3f}] against "
                f"{rates.predicted[name]:.3g}: **{rates.verdict[f'{name}_slope']}**.")

    return [
        f"D = {', '.join(str(int(r.dim)) for r in rows)}, {config.ensemble} students each (K = M = {config.students}, T = I, "
        f"η = {config.alpha:g}, σ = {config.noise:g}, s = {config.init_std:g}, α ≤ {config.alpha_max:g}; exact "
        "order-parameter chain).",
        f"Plateau ε_g = {lim.plateau['plateau_eps']:.5g}, escape rate λ = {lam:.4g}; gap window α ∈ "
        f"[{window[0]:.3g}, {window[1]:.3g}] (¼ to ½ × ln(D_min)/(2λ)).",
        slope_line("mean_gap", "Mean ε_g gap to the ODE ∝ D^slope"),
        slope_line("rms_gap", "Pathwise RMS ε_g gap ∝ D^slope"),
        "D × mean gap: " + ", ".join(f"{r.mean_gap_times_D:.3g} ± {r.mean_gap_times_D_se:.2g}" for r in rows)
        + f"; curvature term ½ tr(∇²ε_g Σ) averaged over the window: {rows[0].curvature_gap_times_D:.3g}.",
        slope_line("escape", "Median escape time against ln D"),
        "Median escape: " + ", ".join(f"D = {r.dim}: {r.escape_median:.3g} ({100 * r.fraction_escaped:.0f} % "
                                      "escaped)" for r in rows)
        + f"; 1/(2λ) = {1 / (2 * lam):.3g}, 1/λ = {1 / lam:.3g}.",
        f"Verdict: **{rates.verdict['sweep']}**.",
    ]


__all__ = ["curvature_gap", "gap_summary", "plateau_window", "run", "students_at", "sweep_limit"]
