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

from jaxlimit.report import Report
from jaxlimit.stats.coupling import PathwiseError, pathwise_error
from jaxlimit.stats.gaussian import Gaussian
from jaxlimit.stats.verdict import INCONSISTENT, TimeVerdict, verdict_over_times


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


def finite_members(experiment: str, result, n_points: int, warnings: list, timing: dict):
    """``(finite members, None)``, or ``(None, report)`` when too few stayed finite to compare.

    Diverged members are reported in ``warnings`` and make the verdict inconsistent (the limit
    never diverges); a comparison of P points needs at least P + 2 finite members.
    """
    ok = result.finite()
    if result.n_diverged:
        warnings.append(f"{result.n_diverged} of {result.n_members} members diverged; the limit never does, so "
                        "the verdict is inconsistent; statistics use the finite members")
    if ok.n_members >= n_points + 2:
        return ok, None
    warnings.append(f"only {ok.n_members} members stayed finite, too few to compare with the limit")
    return None, Report(experiment=experiment, config={"ensemble": result.config},
                        metrics={"n_members": result.n_members, "n_diverged": result.n_diverged},
                        verdict={"gaussian_limit": INCONSISTENT}, timing=timing, warnings=warnings,
                        arrays={"outputs": result.outputs, "diverged": result.diverged},
                        summary=["Too few members stayed finite to compare with the limit; verdict inconsistent."])


def finite_width_members(result, width: int, n_points: int, warnings: list):
    """A sweep's rule for one width: its finite members, or None (with a warning) when fewer than
    P + 2 stayed finite; diverged members are reported in ``warnings`` and left out."""
    ok = result.finite()
    if result.n_diverged:
        warnings.append(f"width {width}: {result.n_diverged} members diverged and are excluded")
    if ok.n_members < n_points + 2:
        warnings.append(f"width {width}: too few finite members to compare; the width is left out")
        return None
    return ok


__all__ = ["AgainstLimit", "against_limit", "finite_members", "finite_width_members"]
