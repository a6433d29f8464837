"""Summaries of an ensemble over its members, each with its standard error.

* :func:`root_mean_square`: √(mean v²) over members (a typical size of a gap
  or an error), with its delta-method standard error.
* :func:`seed_spread`: the spread across members (seeds) of outputs at P
  points, the RMS over points of the standard deviation, at every time.
* :func:`ratio_of_means`: mean(a) / mean(b) over the same members (a final
  over an initial loss), with its paired delta-method standard error.
* :func:`spread_ratio`: a measured spread over a predicted one, from independent
  members, with its standard error.

Members whose values are NaN (diverged runs) are left out and counted.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from jaxlimit.errors import InputError


@dataclasses.dataclass(frozen=True)
class Estimate:
    """A summary over members: ``value`` ± ``se`` from ``n`` finite members (NaN with too few)."""

    value: float
    se: float
    n: int

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)


def _members(values, name: str) -> np.ndarray:
    array = np.asarray(values, np.float64)
    if array.ndim < 1:
        raise InputError(f"{name} needs a leading member axis, got a scalar")
    if np.any(np.isinf(array)):
        raise InputError(f"{name} must not hold infinities (mark diverged members with NaN)")
    return array


def root_mean_square(values) -> Estimate:
    """√(mean over members of v²) for ``values`` of shape (E,), NaN entries left out.

    Standard error by the delta method, se(√m) = se(m) / (2√m) with se(m) the
    standard error of the mean of v²; NaN with fewer than two finite members.
    """
    v = _members(values, "values")
    if v.ndim != 1:
        raise InputError(f"values must have shape (E,), got {v.shape}")
    sq = v[np.isfinite(v)] ** 2
    n = int(sq.size)
    if n == 0:
        return Estimate(float("nan"), float("nan"), 0)
    rms = float(np.sqrt(sq.mean()))
    if n < 2:
        return Estimate(rms, float("nan"), n)
    se = float(sq.std(ddof=1) / (2.0 * rms * math.sqrt(n))) if rms > 0 else 0.0
    return Estimate(rms, se, n)


@dataclasses.dataclass(frozen=True)
class SeedSpread:
    """The spread across members over time.

    Attributes:
        per_time: RMS over points of the across-member standard deviation
            (ddof = 1), shape (T,).
        per_time_se: its standard error, per_time / √(2 (E − 1)) (the
            Gaussian approximation for a standard deviation from E members).
        n: the members used.
    """

    per_time: np.ndarray
    per_time_se: np.ndarray
    n: int

    @property
    def worst(self) -> Estimate:
        """The largest spread over time (its time's standard error)."""
        if not np.any(np.isfinite(self.per_time)):
            return Estimate(float("nan"), float("nan"), self.n)
        i = int(np.nanargmax(self.per_time))
        return Estimate(float(self.per_time[i]), float(self.per_time_se[i]), self.n)


def seed_spread(outputs) -> SeedSpread:
    """The spread across members of ``outputs`` (E, T, P); members with any NaN are left out."""
    x = _members(outputs, "outputs")
    if x.ndim != 3:
        raise InputError(f"outputs must have shape (E, T, P), got {x.shape}")
    x = x[np.all(np.isfinite(x.reshape(len(x), -1)), axis=1)]
    n = len(x)
    if n < 2:
        nan = np.full(x.shape[1], np.nan)
        return SeedSpread(nan, nan, n)
    spread = np.sqrt(np.mean(np.var(x, axis=0, ddof=1), axis=-1))
    return SeedSpread(spread, spread / math.sqrt(2.0 * (n - 1)), n)


def spread_ratio(spread, predicted, n: int, n_predicted: int) -> tuple[np.ndarray, np.ndarray]:
    """A measured spread over a predicted one, elementwise, with its standard error.

    Both are standard deviations (or RMS of them) estimated from ``n`` and ``n_predicted``
    independent members; with the Gaussian approximation se(s)/s = 1/√(2(n − 1)) for each, the
    ratio r = s / s_p has se(r)/r = √(1/(2(n − 1)) + 1/(2(n_p − 1))) (n − 1 at least 1). A
    prediction of exactly 0 is divided as if it were 1e-300.
    """
    spread, predicted = np.asarray(spread), np.asarray(predicted)
    if spread.shape != predicted.shape:
        raise InputError(f"spread and predicted must have one shape, got {spread.shape} and {predicted.shape}")
    ratio = spread / np.maximum(predicted, 1e-300)
    return ratio, ratio * math.sqrt(1.0 / (2.0 * max(n - 1, 1)) + 1.0 / (2.0 * max(n_predicted - 1, 1)))


def ratio_of_means(numerator, denominator) -> Estimate:
    """mean(a) / mean(b) over members (E,), pairs with a NaN left out.

    Paired delta method for a ratio estimator: se(r)² ≈ Var(a − r b) / (E b̄²).
    """
    a = _members(numerator, "numerator")
    b = _members(denominator, "denominator")
    if a.shape != b.shape or a.ndim != 1:
        raise InputError(f"numerator and denominator must have one shape (E,), got {a.shape} and {b.shape}")
    ok = np.isfinite(a) & np.isfinite(b)
    a, b = a[ok], b[ok]
    n = int(a.size)
    if n == 0 or b.mean() == 0:
        return Estimate(float("nan"), float("nan"), n)
    r = float(a.mean() / b.mean())
    if n < 2:
        return Estimate(r, float("nan"), n)
    return Estimate(r, float(np.std(a - r * b, ddof=1) / (abs(b.mean()) * math.sqrt(n))), n)


def mean_estimate(values) -> Estimate:
    """The mean over members of ``values`` (E,), NaN entries left out, with its standard error
    s/√n (s the sample standard deviation, ddof = 1); NaN se with fewer than two members."""
    v = _members(values, "values")
    if v.ndim != 1:
        raise InputError(f"values must have shape (E,), got {v.shape}")
    v = v[np.isfinite(v)]
    n = int(v.size)
    if n == 0:
        return Estimate(float("nan"), float("nan"), 0)
    se = float(v.std(ddof=1) / math.sqrt(n)) if n > 1 else float("nan")
    return Estimate(float(v.mean()), se, n)


@dataclasses.dataclass(frozen=True)
class MedianEstimate:
    """A sample median with a distribution-free interval (order statistics): ``interval`` covers the
    population median with probability ≥ ``level``; ``se`` is its half-width / z_{(1+level)/2}, the
    standard error a normal approximation would give. ``n_finite`` counts the finite members."""

    value: float
    interval: tuple[float, float]
    se: float
    level: float
    n: int
    n_finite: int

    def as_dict(self) -> dict:
        out = dataclasses.asdict(self)
        out["interval"] = list(self.interval)
        return out


def median_estimate(values, level: float = 0.95) -> MedianEstimate:
    """The median of ``values`` (E,) with the order-statistic interval [v_(j), v_(n+1−j)], j the
    largest rank with P(Bin(n, ½) < j) ≤ (1 − level)/2. Entries +inf are allowed and count as
    larger than every finite value (a right-censored time: "not yet happened"); a median or an
    interval end that falls on one is +inf."""
    from scipy import stats as sps

    v = np.asarray(values, np.float64)
    if v.ndim != 1 or v.size < 2:
        raise InputError(f"values must have shape (E,) with E ≥ 2, got {v.shape}")
    if np.any(np.isnan(v)) or np.any(v == -np.inf):
        raise InputError("values must not hold NaN or −inf (+inf marks a censored member)")
    if not 0.0 < level < 1.0:
        raise InputError(f"level must lie in (0, 1), got {level}")
    n = v.size
    s = np.sort(v)
    j = int(sps.binom.ppf((1.0 - level) / 2.0, n, 0.5))  # P(B ≤ j − 1) ≤ (1 − level)/2 at this j
    while j > 0 and sps.binom.cdf(j - 1, n, 0.5) > (1.0 - level) / 2.0:
        j -= 1
    j = max(j, 1)
    lo, hi = float(s[j - 1]), float(s[n - j])
    z = float(sps.norm.ppf(0.5 * (1.0 + level)))
    se = (hi - lo) / (2.0 * z) if math.isfinite(hi) else float("inf")
    return MedianEstimate(float(np.median(s)) if math.isfinite(s[n // 2]) else float("inf"), (lo, hi), se,
                          float(level), int(n), int(np.isfinite(v).sum()))


__all__ = ["Estimate", "MedianEstimate", "SeedSpread", "mean_estimate", "median_estimate", "ratio_of_means",
           "root_mean_square", "seed_spread", "spread_ratio"]
