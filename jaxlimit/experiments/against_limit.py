"""An ensemble against a Gaussian limit: what every kernel-regime experiment measures.

Given the finite members of an ensemble and a limit with ``predict`` and
``pathwise`` (the Xavier limit, the deep NTK-regime limit, a Monte Carlo kernel
limit), two things are compared: the law of the outputs with the predicted
Gaussian (a calibrated verdict over the chosen times, docs/statistics.md#the-verdict)
and each network with its own limit path, the flow started from the network's own
outputs at t = 0 (docs/xavier.md#pathwise-coupling).
"""

from __future__ import annotations

import dataclasses

import numpy as np

from jaxlimit.stats.coupling import PathwiseError, pathwise_error
from jaxlimit.stats.gaussian import Gaussian
from jaxlimit.stats.verdict import TimeVerdict, verdict_over_times


@dataclasses.dataclass(frozen=True)
class AgainstLimit:
    """Attributes:
        paths: each member's own limit path, (E, T, P) in float64.
        pathwise: the members against their own paths.
        verdict: the ensemble's law against the prediction at the compared times.
    """

    paths: np.ndarray
    pathwise: PathwiseError
    verdict: TimeVerdict


def against_limit(outputs, limit, prediction: Gaussian, times, compare_idx, *, level: float,
                  seed: int) -> AgainstLimit:
    """Compare finite members' outputs (E, T, P) with ``limit`` at the saved ``times``.

    ``prediction`` is ``limit.predict(times)``; the verdict uses the time indices
    ``compare_idx`` at overall false-alarm rate ``level``, its tests seeded by ``seed``.
    """
    outputs = np.asarray(outputs)
    paths = np.asarray(limit.pathwise(outputs[:, 0].astype(np.float64), times))
    verdict = verdict_over_times(outputs, prediction, compare_idx, times=times, level=level, seed=seed)
    return AgainstLimit(paths, pathwise_error(outputs, paths), verdict)


__all__ = ["AgainstLimit", "against_limit"]
