"""Each network against its own limit path, and moments estimated through that coupling.

When a limit defines a path h_t(h_0) from any initial outputs (the Xavier and
NTK limits are linear ODEs), integrating it from each finite network's own
h^N_0 couples the two: Δ = h^N_t − h_t(h^N_0) is the finite-width error of
that network alone, free of the Monte Carlo noise of the initial draw.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from jaxlimit.errors import InputError
from jaxlimit.stats.gaussian import gaussian_w2
from jaxlimit.stats.summaries import root_mean_square


def _pair(outputs, paths) -> tuple[np.ndarray, np.ndarray]:
    x = np.asarray(outputs, np.float64)
    lim = np.asarray(paths, np.float64)
    if x.shape != lim.shape or x.ndim < 2:
        raise InputError(f"outputs and limit paths must have one shape (E, ...), got {x.shape} and {lim.shape}")
    if len(x) < 2:
        raise InputError(f"need at least 2 members, got {len(x)}")
    return x, lim


@dataclasses.dataclass(frozen=True)
class PathwiseError:
    """max over times and points of |h^N_t − h_t(h^N_0)|, summarised over members.

    Attributes:
        rms: the root mean square over members of each member's maximum.
        se: its standard error (delta method).
        per_time: RMS over members of the max over points, shape (T,).
    """

    rms: float
    se: float
    per_time: np.ndarray


def pathwise_error(outputs, paths) -> PathwiseError:
    """Compare each network with its own limit path; both of shape (E, T, P)."""
    x, lim = _pair(outputs, paths)
    gap = np.abs(x - lim)
    worst = root_mean_square(gap.reshape(len(gap), -1).max(axis=1))
    per_time = np.sqrt(np.mean(gap.max(axis=2) ** 2, axis=0)) if gap.ndim == 3 else np.array([worst.value])
    return PathwiseError(worst.value, worst.se, per_time)


def coupled_moments(outputs_t, paths_t, mean_t, cov_t) -> tuple[np.ndarray, np.ndarray]:
    """Moments of the finite-width law at one time, estimated through the coupling.

    With Δ = h^N_t − h_t(h^N_0) and L = h_t(h^N_0): when h^N_0 has exactly the
    limit's initial moments and the limit map is linear, L has exactly the
    moments (mean_t, cov_t), and

        E h^N_t = mean_t + E Δ,   Cov h^N_t = cov_t + Cov(L, Δ) + Cov(Δ, L) + Cov(Δ).

    Estimating only the Δ terms from the ensemble removes the Monte Carlo
    noise of the initial draw (O(E^{-1/2})) and leaves noise of order
    |Δ| E^{-1/2}.
    """
    x, lim = _pair(outputs_t, paths_t)
    delta = x - lim
    n = len(x)
    dc = delta - delta.mean(axis=0)
    lc = lim - lim.mean(axis=0)
    cross = lc.T @ dc
    cov_shift = (cross + cross.T + dc.T @ dc) / (n - 1)
    return np.asarray(mean_t) + delta.mean(axis=0), np.asarray(cov_t) + cov_shift


@dataclasses.dataclass(frozen=True)
class MeanDrift:
    """The mean of Δ = h^N_t − h_t(h^N_0) at one time: the finite-width bias of the mean, coupled.

    E h^N_t − mean_t = E Δ + (E h_t(h^N_0) − mean_t); the second term is the Monte Carlo
    noise of the initial draw carried forward by the limit, so E Δ isolates the bias
    and its estimate has noise of order sd(Δ)/√E, usually far below sd(h^N_t)/√E.

    Attributes:
        value: the sample mean of Δ per point, shape (P,).
        se: its standard error per point, shape (P,).
        worst: the point where |value| / se is largest.
    """

    value: np.ndarray
    se: np.ndarray
    worst: int

    @property
    def z(self) -> float:
        """value / se at the worst point: the drift in its own standard errors."""
        value, se = float(self.value[self.worst]), float(self.se[self.worst])
        if se == 0.0:
            return 0.0 if value == 0.0 else math.copysign(math.inf, value)
        return value / se

    def in_units_of(self, scale) -> float:
        """The drift at the worst point in units of ``scale[worst]``, e.g. the SE of the ensemble mean."""
        return float(self.value[self.worst] / np.asarray(scale)[self.worst])


def mean_drift(outputs_t, paths_t) -> MeanDrift:
    """The mean drift of the networks from their own limit paths at one time; both (E, P)."""
    x, lim = _pair(outputs_t, paths_t)
    delta = x - lim
    value = delta.mean(axis=0)
    se = delta.std(axis=0, ddof=1) / math.sqrt(len(delta))
    z = np.abs(value) / np.where(se > 0, se, np.inf)
    return MeanDrift(value, se, int(np.argmax(z)))


@dataclasses.dataclass(frozen=True)
class CoupledBures:
    """The Gaussian W2 between the coupled moment estimate and the limit.

    Attributes:
        value: W2(N(m̂, Ĉ), N(mean_t, cov_t)) with (m̂, Ĉ) from :func:`coupled_moments`.
        se: the bootstrap standard deviation of ``value``.
        noise: the part of ``value`` that estimation noise alone produces,
            sqrt(E*[Ŵ*²] − Ŵ²) over bootstrap resamples (W2 is non-negative, so
            noise biases it upwards; a value near ``noise`` says nothing about
            the finite-width bias).
    """

    value: float
    se: float
    noise: float

    @property
    def resolved(self) -> bool:
        """The value is at least twice what noise alone would give."""
        return self.value > 2.0 * self.noise


def coupled_bures(outputs_t, paths_t, mean_t, cov_t, *, n_boot: int = 200, seed: int = 0) -> CoupledBures:
    """W2 between the coupled moment estimate at one time and the limit, with its noise level."""
    x, lim = _pair(outputs_t, paths_t)
    m, c = coupled_moments(x, lim, mean_t, cov_t)
    value = gaussian_w2(m, c, mean_t, cov_t)
    rng = np.random.default_rng(seed)
    n = len(x)
    boots = []
    for _ in range(n_boot):
        idx = rng.integers(0, n, n)
        mb, cb = coupled_moments(x[idx], lim[idx], mean_t, cov_t)
        boots.append(gaussian_w2(mb, cb, mean_t, cov_t))
    boots = np.asarray(boots)
    noise = math.sqrt(max(float(np.mean(boots**2)) - value**2, 0.0))
    return CoupledBures(value, float(np.std(boots, ddof=1)), noise)


__all__ = ["CoupledBures", "MeanDrift", "PathwiseError", "coupled_bures", "coupled_moments", "mean_drift",
           "pathwise_error"]
