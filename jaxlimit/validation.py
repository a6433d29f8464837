"""Generic input validation shared by the library and the experiment configurations.

Every check refuses bad input with one :class:`~jaxlimit.errors.InputError`
line naming the argument. Light module: numpy only, no JAX.
"""

from __future__ import annotations

import numpy as np

from jaxlimit.errors import InputError


def validate_times(times) -> np.ndarray:
    """Sorted, finite, non-negative save times with t = 0 first."""
    try:
        t = np.atleast_1d(np.asarray(times, dtype=np.float64))
    except (TypeError, ValueError):
        raise InputError(f"times must be a list of numbers, got {times!r}") from None
    if t.ndim != 1 or t.size == 0:
        raise InputError("times must be a non-empty 1-D list of numbers")
    if not np.all(np.isfinite(t)) or np.any(t < 0):
        raise InputError("times must be finite and non-negative")
    if np.any(np.diff(t) <= 0):
        raise InputError("times must be strictly increasing")
    if t[0] != 0.0:
        t = np.concatenate([[0.0], t])
    return t


__all__ = ["validate_times"]
