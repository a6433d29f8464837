"""The bias of an ensemble mean against a reference, with the initial outputs as a control variate.

Across the γ family (docs/mean-field.md#the-gamma-family) the spread of the
outputs is mostly the initial output N^{1/2−γ} G carried along linearly,
while the bias sought is far smaller; the plain ensemble mean would need an
unaffordable ensemble to resolve it. The initial outputs have mean exactly
zero (c is mean-zero and independent of w), so they are a control variate.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from jaxlimit.errors import InputError
from jaxlimit.stats.moments import _samples


class BiasSummary(NamedTuple):
    """The control-variate bias at one time.

    Attributes:
        value: RMS over points of the adjusted ensemble mean minus the reference.
        noise: the RMS over points of the adjusted mean's standard error; a
            ``value`` of that size is noise (an RMS of pure noise is ≈ ``noise``).
        gap: the adjusted mean minus the reference per point, shape (P,).
        se: the standard error of each entry of ``gap``, shape (P,).
        value_se: the standard error of ``value`` (delta method; valid once
            ``value`` is resolved, i.e. well above ``noise``).
    """

    value: float
    noise: float
    gap: np.ndarray
    se: np.ndarray
    value_se: float

    @property
    def debiased(self) -> float:
        """sqrt(max(mean gap² − mean se², 0)): the RMS bias with the noise's own contribution
        (E gap_j² = b_j² + se_j²) removed."""
        return float(math.sqrt(max(float(np.mean(self.gap**2) - np.mean(self.se**2)), 0.0)))


def bias_summary(outputs_t, outputs_0, reference) -> BiasSummary:
    """RMS over points of E h_t − ``reference`` from E members, with h_0 as a control variate.

    Args:
        outputs_t: the outputs at time t, shape (E, P).
        outputs_0: the same members' initial outputs, shape (E, P), whose mean is
            known to be exactly zero.
        reference: the value E h_t is compared with, shape (P,).

    The estimate is the mean of h_t − h_0 B̂, with B̂ (P × P) the least-squares
    regression of h_t on h_0: unbiased to O(1/E) and, where h_t is mostly
    linear in h_0, far less noisy than the mean of h_t. Each point's standard
    error is that of the residual mean (E − P − 1 degrees of freedom).
    """
    x = _samples(outputs_t, "outputs_t")
    z = _samples(outputs_0, "outputs_0")
    n, p = x.shape
    ref = np.asarray(reference, np.float64)
    if z.shape != x.shape or ref.shape != (p,):
        raise InputError(f"outputs_t {x.shape}, outputs_0 {z.shape} and reference {ref.shape} must be "
                         "(E, P), (E, P) and (P,)")
    if n < p + 2:
        raise InputError(f"the control variate needs at least P + 2 = {p + 2} members, got {n}")
    if not np.all(np.isfinite(ref)):
        raise InputError("reference must be finite")
    zc = z - z.mean(axis=0)
    coef = np.linalg.lstsq(zc, x - x.mean(axis=0), rcond=None)[0]  # (P, P)
    adjusted = x - z @ coef
    gap = adjusted.mean(axis=0) - ref
    dof = n - p - 1
    se = np.sqrt(np.sum((adjusted - adjusted.mean(0)) ** 2, axis=0) / dof / n)
    rms = float(np.sqrt(np.mean(gap**2)))
    rms_se = float(np.sqrt(np.sum((gap * se) ** 2)) / (p * rms)) if rms > 0 else float("inf")
    return BiasSummary(rms, float(math.sqrt(np.mean(se**2))), gap, se, rms_se)


__all__ = ["BiasSummary", "bias_summary"]
