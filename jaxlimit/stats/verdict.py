"""One verdict vocabulary for every experiment, chosen by rule.

* A comparison with a predicted law is **consistent** or **inconsistent**
  (:func:`verdict_over_times`: Bonferroni over the compared times, each time a
  calibrated :func:`~jaxlimit.stats.compare_gaussian`).
* A measured effect is **resolved** when it exceeds twice its noise level
  (the larger of its standard error and what estimation noise alone
  produces), else **not resolved at this size** (:func:`resolution`): a
  report never calls an unresolved number a violation.
* A fitted slope against a predicted one (:func:`slope_agreement`) and a
  probability against a claimed lower bound (:func:`probability_at_least`)
  use the same words; :func:`combine` merges several.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from jaxlimit.errors import InputError
from jaxlimit.stats.gaussian import Gaussian, GaussianComparison, check_aligned, compare_gaussian
from jaxlimit.stats.scaling import PowerLawFit, Proportion, proportion

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


def slope_agreement(fit: PowerLawFit | None, predicted: float, tolerance: float = 0.0) -> str:
    """``"consistent"`` when the fitted slope's confidence interval, widened by ``tolerance`` on each
    side (for higher-order terms the fit does not model), covers ``predicted``; ``"not resolved at
    this size"`` when there is no fit or it has no interval (two points, no errors)."""
    if fit is None:
        return NOT_RESOLVED
    lo, hi = fit.slope_ci
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return NOT_RESOLVED
    return CONSISTENT if lo - tolerance <= predicted <= hi + tolerance else INCONSISTENT


@dataclasses.dataclass(frozen=True)
class BoundCheck:
    """A claimed lower bound P ≥ b on a probability, against k successes in n trials.

    Attributes:
        estimate: the :class:`~jaxlimit.stats.scaling.Proportion` k / n.
        bound: b.
        margin: p̂ − b, the effect.
        resolution: :func:`resolution` of the margin against the estimate's SE.
        verdict: ``"consistent"`` (margin resolved and positive), ``"inconsistent"``
            (resolved and negative) or ``"not resolved at this size"``.
    """

    estimate: Proportion
    bound: float
    margin: float
    resolution: str
    verdict: str

    def as_dict(self) -> dict:
        return {**self.estimate.as_dict(), "bound": self.bound, "margin": self.margin,
                "margin_se": self.estimate.se, "resolution": self.resolution, "verdict": self.verdict}


def probability_at_least(successes: int, trials: int, bound: float, *, level: float = 0.95) -> BoundCheck:
    """Check the claim P ≥ ``bound`` by k successes in n trials (see :class:`BoundCheck`)."""
    if not 0.0 <= float(bound) <= 1.0:
        raise InputError(f"bound must lie in [0, 1], got {bound}")
    estimate = proportion(successes, trials, level)
    margin = estimate.p - float(bound)
    word = resolution(margin, estimate.se)
    if word == RESOLVED:
        verdict = CONSISTENT if margin > 0 else INCONSISTENT
    else:
        verdict = NOT_RESOLVED
    return BoundCheck(estimate, float(bound), margin, word, verdict)


def combine(words) -> str:
    """One word for several: inconsistent if any is, else not resolved if any is, else consistent."""
    words = list(words)
    if INCONSISTENT in words:
        return INCONSISTENT
    return NOT_RESOLVED if NOT_RESOLVED in words or not words else CONSISTENT


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

    def _repr_markdown_(self) -> str:  # Jupyter: the verdict and one row per compared time
        from jaxlimit.display import markdown_table

        rows = [(t, c.smallest_pvalue, self.threshold, c.mean_error_z, c.cov_rel_error, c.bures_w2)
                for t, c in zip(self.times, self.comparisons)]
        return (f"**{self.verdict}** at level {self.level:g}\n\n"
                + markdown_table(["t", "smallest p-value", "per-test threshold", "mean error (SE)",
                                  "covariance error", "Bures W2"], rows))

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
    if times is not None:
        check_aligned(times, prediction.times)
    each = level / len(indices)
    comparisons = tuple(compare_gaussian(outputs[:, i], prediction[i], seed=seed + i, level=each)
                        for i in indices)
    verdict = CONSISTENT if all(c.consistent for c in comparisons) else INCONSISTENT
    t = tuple(float(v) for v in (np.asarray(times)[indices] if times is not None else indices))
    return TimeVerdict(verdict, float(level), t, comparisons)


__all__ = ["BoundCheck", "CONSISTENT", "INCONSISTENT", "NOT_RESOLVED", "RESOLVED", "TimeVerdict", "agreement",
           "combine", "probability_at_least", "resolution", "slope_agreement", "verdict_over_times"]
