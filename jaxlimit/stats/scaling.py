"""Scaling laws and intervals: power-law fits in width, proportions, bootstrap.

Finite-width effects are reported as an effect size against N and the slope of
its log–log fit (e.g. the coupling error should fall like N^{-1/2}); a slope
with an honest confidence interval says more than a p-value at one width.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Callable

import numpy as np
from scipy import stats as sps

from jaxlimit.errors import InputError


def _check_level(level: float) -> None:
    if not 0.0 < level < 1.0:
        raise InputError(f"level must lie in (0, 1), got {level}")


@dataclasses.dataclass(frozen=True)
class PowerLawFit:
    """The fit log y = intercept + slope · log x (natural logarithms).

    Attributes:
        slope, intercept: the (weighted) least-squares estimates.
        slope_ci: confidence interval for the slope at ``level``;
            (nan, nan) where it cannot be estimated (see :func:`fit_power_law`).
        slope_se: the standard error behind ``slope_ci``.
        level, n_points: the confidence level and the number of points.
        r_squared: the (weighted) coefficient of determination in log space.
        weighted: whether standard errors of y were used.
    """

    slope: float
    intercept: float
    slope_ci: tuple[float, float]
    level: float
    n_points: int
    r_squared: float
    slope_se: float
    weighted: bool

    def predict(self, x) -> np.ndarray:
        """exp(intercept) · x^slope."""
        return np.exp(self.intercept) * np.asarray(x, float) ** self.slope

    def as_dict(self) -> dict:
        out = dataclasses.asdict(self)
        out["slope_ci"] = list(self.slope_ci)
        return out


def _positive_finite(name: str, values) -> np.ndarray:
    array = np.asarray(values, float)
    if array.ndim != 1:
        raise InputError(f"{name} must be one-dimensional, got shape {array.shape}")
    if not np.all(np.isfinite(array)) or np.any(array <= 0):
        raise InputError(f"{name} must be finite and positive for a log-log fit, got {array.tolist()}")
    return array


def fit_power_law(x, y, *, level: float = 0.95, y_err=None) -> PowerLawFit:
    """Fit y ≈ e^a x^b by least squares on (log x, log y).

    Unweighted: ordinary least squares; the slope's interval is
    b ± t_{n−2} · s / sqrt(Σ (log x − mean)²) with s² the residual variance,
    and (nan, nan) with fewer than 3 points.

    Weighted (``y_err`` the standard errors of y): the log-space errors are
    σ_i = y_err_i / y_i (delta method, valid while y_err ≪ y) and the weights
    1/σ_i². The slope's variance is the known-error one, 1 / Σ w (log x − x̄_w)²,
    inflated by the reduced χ² of the residuals when that exceeds 1 (scatter
    beyond the stated errors, e.g. a law that is not a power law); the
    interval uses the normal quantile. With 2 points the known errors alone
    give the interval.

    Raises InputError on non-positive or non-finite x, y or y_err, mismatched
    lengths, fewer than 2 points or x values that are all equal.
    """
    _check_level(level)
    x = _positive_finite("x", x)
    y = _positive_finite("y", y)
    n = x.shape[0]
    if y.shape[0] != n:
        raise InputError(f"x and y differ in length: {n} and {y.shape[0]}")
    if n < 2:
        raise InputError(f"a power-law fit needs at least 2 points, got {n}")
    weighted = y_err is not None
    if weighted:
        err = _positive_finite("y_err", y_err)
        if err.shape[0] != n:
            raise InputError(f"y_err has {err.shape[0]} entries for {n} points")
        weights = (y / err) ** 2
    else:
        weights = np.ones(n)

    line = _weighted_line(np.log(x), np.log(y), weights, level, weighted)
    return PowerLawFit(**line)


def _weighted_line(u: np.ndarray, v: np.ndarray, weights: np.ndarray, level: float, weighted: bool) -> dict:
    """v ≈ intercept + slope · u by (weighted) least squares, with the interval rules of
    :func:`fit_power_law` (which calls it on logarithms)."""
    n = u.shape[0]
    u_bar = np.sum(weights * u) / np.sum(weights)
    v_bar = np.sum(weights * v) / np.sum(weights)
    suu = float(np.sum(weights * (u - u_bar) ** 2))
    if suu <= 0.0:
        raise InputError("x values are all equal; a slope cannot be fitted")
    slope = float(np.sum(weights * (u - u_bar) * (v - v_bar)) / suu)
    intercept = float(v_bar - slope * u_bar)
    residual_ss = float(np.sum(weights * (v - intercept - slope * u) ** 2))
    total_ss = float(np.sum(weights * (v - v_bar) ** 2))
    r_squared = 1.0 - residual_ss / total_ss if total_ss > 0 else float("nan")

    half_level = 0.5 * (1.0 + level)
    if weighted:
        inflation = max(1.0, residual_ss / (n - 2)) if n > 2 else 1.0
        slope_se = math.sqrt(inflation / suu)
        quantile = float(sps.norm.ppf(half_level))
    elif n > 2:
        slope_se = math.sqrt(residual_ss / (n - 2) / suu)
        quantile = float(sps.t.ppf(half_level, n - 2))
    else:
        slope_se = quantile = float("nan")
    slope_ci = (slope - quantile * slope_se, slope + quantile * slope_se)
    return dict(slope=slope, intercept=intercept, slope_ci=(float(slope_ci[0]), float(slope_ci[1])),
                level=float(level), n_points=int(n), r_squared=float(r_squared), slope_se=float(slope_se),
                weighted=weighted)


@dataclasses.dataclass(frozen=True)
class LineFit:
    """The fit y = intercept + slope · x; fields as :class:`PowerLawFit` (no logarithms)."""

    slope: float
    intercept: float
    slope_ci: tuple[float, float]
    level: float
    n_points: int
    r_squared: float
    slope_se: float
    weighted: bool

    def predict(self, x) -> np.ndarray:
        return self.intercept + self.slope * np.asarray(x, float)

    def as_dict(self) -> dict:
        out = dataclasses.asdict(self)
        out["slope_ci"] = list(self.slope_ci)
        return out


def fit_line(x, y, *, level: float = 0.95, y_err=None) -> LineFit:
    """Fit y ≈ a + b x by least squares, weighted by 1/y_err² when given, with the slope's interval
    as in :func:`fit_power_law` (t_{n−2} unweighted; normal, inflated by the reduced χ² when it
    exceeds 1, weighted). Example: a median escape time against ln D.

    Raises InputError on non-finite values, non-positive y_err, mismatched lengths, fewer than 2
    points or x values that are all equal."""
    _check_level(level)
    x = np.asarray(x, float)
    y = np.asarray(y, float)
    if x.ndim != 1 or y.shape != x.shape:
        raise InputError(f"x and y must be one-dimensional of the same length, got {x.shape} and {y.shape}")
    if not (np.all(np.isfinite(x)) and np.all(np.isfinite(y))):
        raise InputError("x and y must be finite for a line fit")
    if x.shape[0] < 2:
        raise InputError(f"a line fit needs at least 2 points, got {x.shape[0]}")
    weighted = y_err is not None
    if weighted:
        err = _positive_finite("y_err", y_err)
        if err.shape != x.shape:
            raise InputError(f"y_err has {err.shape[0]} entries for {x.shape[0]} points")
        weights = 1.0 / err**2
    else:
        weights = np.ones_like(x)
    return LineFit(**_weighted_line(x, y, weights, level, weighted))


def fit_valid_points(x, y, *, y_err=None, level: float = 0.95) -> PowerLawFit | None:
    """:func:`fit_power_law` over the points whose y (and y_err) are finite and positive, or None
    with fewer than two such points (a gap that is exactly zero, or a width whose members all
    diverged, is left out rather than refused)."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    ok = np.isfinite(y) & (y > 0)
    if y_err is not None:
        y_err = np.asarray(y_err, float)
        ok &= np.isfinite(y_err) & (y_err > 0)
    if ok.sum() < 2:
        return None
    return fit_power_law(x[ok], y[ok], level=level, y_err=None if y_err is None else y_err[ok])


def proportion_interval(successes: int, trials: int, level: float = 0.95) -> tuple[float, float]:
    """The Wilson score interval for a binomial proportion k / n:

        (p̂ + z²/2n ± z sqrt(p̂(1−p̂)/n + z²/4n²)) / (1 + z²/n),   z = Φ⁻¹((1+level)/2).

    Unlike p̂ ± z sqrt(p̂(1−p̂)/n) it keeps its coverage near 0 and 1 (a
    rejection rate of 0 out of 20 still has a non-trivial upper end).
    """
    _check_level(level)
    if int(trials) != trials or int(successes) != successes:
        raise InputError(f"successes and trials must be integers, got {successes} and {trials}")
    k, n = int(successes), int(trials)
    if n < 1 or not 0 <= k <= n:
        raise InputError(f"need 0 ≤ successes ≤ trials and trials ≥ 1, got {k} of {n}")
    z = float(sps.norm.ppf(0.5 * (1.0 + level)))
    p_hat = k / n
    denominator = 1.0 + z * z / n
    centre = (p_hat + z * z / (2 * n)) / denominator
    half = z * math.sqrt(p_hat * (1 - p_hat) / n + z * z / (4 * n * n)) / denominator
    return max(0.0, centre - half), min(1.0, centre + half)


@dataclasses.dataclass(frozen=True)
class Proportion:
    """k successes in n trials: the estimate, its standard error and the Wilson interval.

    Attributes:
        successes, trials: k and n.
        p: k / n.
        se: the Agresti–Coull standard error sqrt(p̃(1 − p̃)/(n + z²)),
            p̃ = (k + z²/2)/(n + z²), which is not zero at k = 0 or k = n.
        ci: the Wilson interval at ``level`` (:func:`proportion_interval`).
        level: its confidence level.
    """

    successes: int
    trials: int
    p: float
    se: float
    ci: tuple[float, float]
    level: float

    def as_dict(self) -> dict:
        return {"successes": self.successes, "trials": self.trials, "p": self.p, "se": self.se,
                "ci": list(self.ci), "level": self.level}


def proportion(successes: int, trials: int, level: float = 0.95) -> Proportion:
    """Summarise k successes in n trials (see :class:`Proportion`)."""
    lo, hi = proportion_interval(successes, trials, level)
    k, n = int(successes), int(trials)
    z2 = float(sps.norm.ppf(0.5 * (1.0 + level))) ** 2
    tilde = (k + z2 / 2) / (n + z2)
    return Proportion(k, n, k / n, math.sqrt(tilde * (1 - tilde) / (n + z2)), (lo, hi), float(level))


# Predicted exponents of the γ family (docs/mean-field.md#the-gamma-family) -------------------------


def predicted_spread_exponents(gamma: float) -> tuple[float, float]:
    """The interval of the spread exponent of g^N = N^{-γ} Σ c σ(w·x): (−1/2, 1/2 − γ), the
    kernel-sampling and the initial-output term; 1/2 − γ is the asymptotic one."""
    return -0.5, 0.5 - gamma


def predicted_bias_exponent(gamma: float) -> float:
    """2γ − 2: the bias is even in ε = N^{γ−1} (O(ε²) + O(1/N), and 2γ − 2 ≥ −1 on [1/2, 1])."""
    return 2.0 * gamma - 2.0


def bootstrap_ci(
    values,
    statistic: Callable[[np.ndarray], float],
    *,
    seed: int,
    n_boot: int = 1000,
    level: float = 0.95,
) -> tuple[float, float]:
    """A BCa bootstrap interval for ``statistic(values)``, resampling rows.

    ``values`` has shape (E, ...) (E ensemble members); ``statistic`` maps an
    array of that shape to a float. Members are resampled with replacement
    (scipy.stats.bootstrap, bias-corrected and accelerated). Example, the
    variance of one output over an ensemble::

        bootstrap_ci(outputs[:, t, j], lambda v: np.var(v, ddof=1), seed=0)

    For Gaussian data that variance also has the exact interval
    (E−1) s² / χ²_{E−1, 1−α/2} ≤ σ² ≤ (E−1) s² / χ²_{E−1, α/2}; the bootstrap
    does not assume Gaussianity (and slightly undercovers for small E).
    """
    _check_level(level)
    data = np.asarray(values, float)
    if data.ndim < 1 or data.shape[0] < 2:
        raise InputError(f"bootstrap needs at least 2 rows, got shape {data.shape}")
    if not np.all(np.isfinite(data)):
        raise InputError("bootstrap values are not finite; drop diverged members first")
    if n_boot < 2:
        raise InputError(f"n_boot must be at least 2, got {n_boot}")
    result = sps.bootstrap(
        (np.arange(data.shape[0]),),
        lambda rows: statistic(data[rows]),
        n_resamples=n_boot,
        confidence_level=level,
        vectorized=False,
        method="BCa",
        rng=np.random.default_rng(seed),
    )
    return float(result.confidence_interval.low), float(result.confidence_interval.high)
