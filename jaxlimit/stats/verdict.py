"""One verdict vocabulary for every experiment, chosen by rule.

* A comparison with a predicted law is **consistent** or **inconsistent**
  (:func:`verdict_over_times`: Bonferroni over the compared times, each time a
  calibrated :func:`~jaxlimit.stats.compare_gaussian`).
* A measured effect is **resolved** when it exceeds twice its noise level
  (the larger of its standard error and what estimation noise alone
  produces), else **not resolved at this size** (:func:`resolution`): a
  report never calls an unresolved number a violation.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from jaxlimit.errors import InputError
from jaxlimit.stats.gaussian import Gaussian, GaussianComparison, compare_gaussian

CONSISTENT = "consistent"
INCONSISTENT = "inconsistent"
RESOLVED = "resolved"
NOT_RESOLVED = "not resolved at this size"
RESOLUTION_Z = 2.0


def resolution(value: float, *noise: float) -> str:
    """``"resolved"`` when |value| > 2 × the largest of the given noise levels."""
    levels = [abs(float(n)) for n in noise if n is not None and math.isfinite(float(n))]
    if not math.isfinite(float(value)) or not levels:
        return NOT_RESOLVED
    return RESOLVED if abs(float(value)) > RESOLUTION_Z * max(levels) else NOT_RESOLVED


def agreement(measured: float, predicted: float, se: float, *, z: float = 3.0) -> str:
    """``"consistent"`` when |measured − predicted| ≤ z · se (for example a slope
    against its predicted value, se from the fit)."""
    if not all(math.isfinite(float(v)) for v in (measured, predicted, se)):
        return INCONSISTENT
    return CONSISTENT if abs(measured - predicted) <= z * se else INCONSISTENT


def slope_agreement(fit, predicted: float, tolerance: float) -> str:
    """``"consistent"`` when ``predicted`` lies in the fitted slope's confidence interval widened by
    ``tolerance`` on each side (room for the higher-order terms a finite range of widths or steps
    keeps); ``"inconsistent"`` otherwise, or when there is no fit or no interval."""
    if fit is None:
        return INCONSISTENT
    lo, hi = fit.slope_ci
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return INCONSISTENT
    return CONSISTENT if lo - tolerance <= predicted <= hi + tolerance else INCONSISTENT


@dataclasses.dataclass(frozen=True)
class TimeVerdict:
    """A verdict over K times, each compared at level/K (Bonferroni).

    Attributes:
        verdict: ``"consistent"`` or ``"inconsistent"``.
        level: the false-alarm rate of the combined verdict (the times share
            members, so the true rate is at most this).
        times: the compared times.
        comparisons: one :class:`GaussianComparison` per time.
    """

    verdict: str
    level: float
    times: tuple[float, ...]
    comparisons: tuple[GaussianComparison, ...]

    @property
    def consistent(self) -> bool:
        return self.verdict == CONSISTENT

    @property
    def smallest_pvalue_by_time(self) -> list[float]:
        return [c.smallest_pvalue for c in self.comparisons]

    @property
    def threshold(self) -> float:
        """The per-test rejection threshold: level / (K · tests per time)."""
        return self.level / (len(self.comparisons) * max(c.n_tests for c in self.comparisons))

    def as_dict(self) -> dict:
        return {"verdict": self.verdict, "level": self.level, "times": list(self.times),
                "smallest_pvalue_by_time": self.smallest_pvalue_by_time,
                "comparisons": [c.as_dict() for c in self.comparisons]}


def verdict_over_times(outputs, prediction: Gaussian, indices, *, times=None, level: float = 0.05,
                       seed: int = 0) -> TimeVerdict:
    """Compare an ensemble with a time-batched prediction at the K given time indices.

    Args:
        outputs: ensemble outputs, shape (E, T, P), finite members only.
        prediction: the limit's law, mean (T, P) and cov (T, P, P).
        indices: the K time indices the verdict uses.
        times: the times (for the record); defaults to the indices.
        level: the false-alarm rate of the combined verdict.
        seed: fixes the permutation tests (time index i uses seed + i).
    """
    outputs = np.asarray(outputs)
    indices = [int(i) for i in indices]
    if not indices:
        raise InputError("the verdict needs at least one time")
    if not 0.0 < level < 1.0:
        raise InputError(f"level must lie in (0, 1), got {level}")
    if outputs.ndim != 3 or prediction.batch_shape != (outputs.shape[1],):
        raise InputError(f"outputs (E, T, P) and a prediction over the same T times are needed, got "
                         f"{outputs.shape} and batch shape {prediction.batch_shape}")
    each = level / len(indices)
    comparisons = tuple(compare_gaussian(outputs[:, i], prediction[i], seed=seed + i, level=each)
                        for i in indices)
    verdict = CONSISTENT if all(c.consistent for c in comparisons) else INCONSISTENT
    t = tuple(float(v) for v in (np.asarray(times)[indices] if times is not None else indices))
    return TimeVerdict(verdict, float(level), t, comparisons)


__all__ = ["CONSISTENT", "INCONSISTENT", "NOT_RESOLVED", "RESOLVED", "TimeVerdict", "agreement",
           "resolution", "slope_agreement", "verdict_over_times"]
