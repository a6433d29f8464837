"""Kernels estimated from finite networks against an analytic kernel."""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from jaxlimit.errors import InputError


@dataclasses.dataclass(frozen=True)
class KernelSummary:
    """Empirical kernels of K networks at T times against an analytic kernel Θ.

    Attributes:
        max_abs_z: the largest |mean − Θ| at t = 0 in standard errors of the mean.
        mean_rel_error: ‖mean − Θ‖_F / ‖Θ‖_F at t = 0.
        init_spread: the RMS over networks of ‖Θ̂ − Θ‖_F / ‖Θ‖_F at t = 0 (the finite-width fluctuation).
        change_by_time: the mean over networks of ‖Θ̂_t − Θ̂_0‖_F / ‖Θ̂_0‖_F, (T,).
        change_se_by_time: its standard error over networks, (T,).
        n_members: K.
    """

    max_abs_z: float
    mean_rel_error: float
    init_spread: float
    change_by_time: np.ndarray
    change_se_by_time: np.ndarray
    n_members: int


def kernel_summary(kernels: np.ndarray, analytic: np.ndarray) -> KernelSummary:
    """Empirical kernels of K networks at T times, shape (K, T, P, P), against an analytic kernel (P, P)
    (:class:`KernelSummary`)."""
    kernels = np.asarray(kernels, np.float64)
    analytic = np.asarray(analytic, np.float64)
    if kernels.ndim != 4 or kernels.shape[2:] != analytic.shape or len(kernels) < 2:
        raise InputError(f"kernels must have shape (K ≥ 2, T, P, P) matching the analytic {analytic.shape}, "
                         f"got {kernels.shape}")
    k0 = kernels[:, 0]
    n = len(k0)
    mean0 = k0.mean(axis=0)
    se0 = k0.std(axis=0, ddof=1) / math.sqrt(n)
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.where(se0 > 0, (mean0 - analytic) / se0, 0.0)
    norm0 = np.linalg.norm(k0, axis=(1, 2))
    change = np.linalg.norm(kernels - k0[:, None], axis=(2, 3)) / norm0[:, None]  # (K, T)
    spread = np.linalg.norm(k0 - analytic, axis=(1, 2)) / np.linalg.norm(analytic)  # per network at t = 0
    return KernelSummary(
        max_abs_z=float(np.max(np.abs(z))),
        mean_rel_error=float(np.linalg.norm(mean0 - analytic) / np.linalg.norm(analytic)),
        init_spread=float(np.sqrt(np.mean(spread**2))),
        change_by_time=change.mean(axis=0),
        change_se_by_time=change.std(axis=0, ddof=1) / math.sqrt(n),
        n_members=n,
    )


__all__ = ["KernelSummary", "kernel_summary"]
