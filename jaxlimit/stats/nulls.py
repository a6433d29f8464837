"""What a perfect prediction shows: the Monte Carlo size of each distance.

A distance between E samples and a Gaussian is never zero even when the
samples come from that Gaussian; these give its size under the null, so a
report can say whether a measured distance is resolved.
"""

from __future__ import annotations

import math

import numpy as np

from jaxlimit.stats.gaussian import gaussian_w2


ONE_SE_EXCEEDANCE = math.erfc(1.0 / math.sqrt(2.0))
"""P(|z| > 1) for one standard normal z: how often noise alone exceeds one standard error."""


def max_abs_z_noise(n_points: int) -> float:
    """The noise level of the largest |z| over ``n_points`` standard errors.

    The value m that max_i |z_i| over n independent standard normals exceeds as often as one
    |z| exceeds 1 (probability 0.317): (2Φ(m) − 1)^n = 1 − 0.317, so m = 1 for one point and
    grows like √(2 ln n). Correlated points have a smaller maximum, so this errs towards
    calling an effect not resolved.
    """
    from scipy.special import ndtri

    n = int(n_points)
    if n < 1:
        raise ValueError(f"n_points must be at least 1, got {n_points!r}")
    return float(ndtri(0.5 * (1.0 + (1.0 - ONE_SE_EXCEEDANCE) ** (1.0 / n))))


def covariance_error_null(cov, n_samples: int) -> float:
    """The Monte Carlo size of the relative covariance error for exact Gaussian samples.

    For E draws of N(μ, C) the unbiased sample covariance has
    E‖Ĉ − C‖_F² = ((tr C)² + ‖C‖_F²)/(E − 1) (Wishart), so a relative error
    near sqrt of that over ‖C‖_F is what a perfect prediction shows.
    """
    cov = np.asarray(cov, np.float64)
    fro = float(np.linalg.norm(cov))
    return math.sqrt((np.trace(cov) ** 2 + fro**2) / (n_samples - 1)) / fro if fro > 0 else float("nan")


def bures_null_size(mean, cov, n_samples: int, *, reps: int = 20, seed: int = 0) -> float:
    """The Monte Carlo size of the Gaussian W2 for a perfect prediction.

    The RMS, over ``reps`` simulated ensembles of ``n_samples`` exact draws
    from N(mean, cov), of the Gaussian W2 between their sample moments and
    (mean, cov): the distance a raw comparison shows at any width.
    """
    rng = np.random.default_rng(seed)
    mean, cov = np.asarray(mean, np.float64), np.asarray(cov, np.float64)
    d2 = []
    for _ in range(reps):
        x = rng.multivariate_normal(mean, cov, size=n_samples, method="eigh")
        d2.append(gaussian_w2(x.mean(axis=0), np.cov(x, rowvar=False), mean, cov) ** 2)
    return float(math.sqrt(np.mean(d2)))


__all__ = ["ONE_SE_EXCEEDANCE", "bures_null_size", "covariance_error_null", "max_abs_z_noise"]
