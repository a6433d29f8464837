"""Moments of an ensemble at one time: the mean variance over points, and matrix distances.

``variance_summary`` is the spread that a width sweep fits against N (1/N for
mean-field networks, N^{1−2γ} across the γ family, docs/mean-field.md);
``relative_frobenius`` compares an estimated covariance with a predicted one.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from jaxlimit.errors import InputError


class VarianceSummary(NamedTuple):
    """The mean over points of the ensemble variance, and its standard error."""

    value: float
    se: float


def _samples(outputs_t, name: str, min_rows: int = 2) -> np.ndarray:
    x = np.asarray(outputs_t, np.float64)
    if x.ndim != 2:
        raise InputError(f"{name} must have shape (E, P), got {x.shape}")
    if x.shape[0] < min_rows or x.shape[1] < 1:
        raise InputError(f"{name} needs at least {min_rows} members and one point, got shape {x.shape}")
    if not np.all(np.isfinite(x)):
        raise InputError(f"{name} must be finite; drop diverged members first")
    return x


def variance_summary(outputs_t) -> VarianceSummary:
    """(1/P) tr Ĉ at one time and its standard error, from outputs of shape (E, P).

    Ĉ is the unbiased sample covariance. For Gaussian samples
    Var(tr Ĉ) = 2 tr(C²)/(E − 1); the sample covariance stands in for C.
    """
    x = _samples(outputs_t, "outputs_t")
    n, p = x.shape
    cov = np.cov(x, rowvar=False).reshape(p, p)
    return VarianceSummary(float(np.trace(cov) / p), float(math.sqrt(2.0 * np.sum(cov * cov) / (n - 1)) / p))


def relative_frobenius(estimate, reference) -> float:
    """‖estimate − reference‖_F / ‖reference‖_F (arrays of one shape, reference non-zero)."""
    est = np.asarray(estimate, np.float64)
    ref = np.asarray(reference, np.float64)
    if est.shape != ref.shape:
        raise InputError(f"estimate and reference differ in shape: {est.shape} and {ref.shape}")
    if not (np.all(np.isfinite(est)) and np.all(np.isfinite(ref))):
        raise InputError("estimate and reference must be finite")
    norm = float(np.linalg.norm(ref))
    if norm == 0.0:
        raise InputError("the reference is zero; a relative error is undefined")
    return float(np.linalg.norm(est - ref) / norm)


__all__ = ["VarianceSummary", "relative_frobenius", "variance_summary"]
