"""``compare(result, limit)``: any ensemble against any limit (docs/limits.md#compare).

At each compared saved time t the ensemble's finite members are set against
the limit's law N(μ_t, C_t):

* where C_t is a proper covariance (its largest eigenvalue above
  ``DETERMINISTIC_RTOL`` times the squared scale of μ_t and of the members'
  spread), the calibrated Gaussian comparison of docs/statistics.md
  (:func:`~jaxlimit.stats.compare_gaussian`);
* where C_t is zero (a deterministic limit: an ODE without fluctuations, mean
  field, the population flow), the ensemble mean is tested against μ_t point by
  point, z_p = (m̂_p − μ_p)/ŝe_p with ŝe_p = sd_p/√E, two-sided normal
  p-values, and the spread sd_p is reported beside it (a deterministic limit
  says nothing about it).

The K compared times share the false-alarm rate ``level`` (Bonferroni, as
:func:`~jaxlimit.stats.verdict_over_times`); inside a time the Gaussian tests
and the P mean tests are Bonferroni-combined too. Members that diverged make
the verdict inconsistent (the limit never diverges) and are left out of every
statistic. When the limit defines a path per network, each member is also
compared with its own path (:func:`~jaxlimit.stats.coupling.pathwise_error`)
and the mean drift from the paths is reported; when the result recorded the
empirical NTK (observable ``"ntk"``), its relative change since t = 0 is
reported, the movement that the NTK regime says vanishes.
"""

from __future__ import annotations

import dataclasses
import math
import warnings
from typing import Any

import numpy as np
from scipy import stats as sps

from jaxlimit.errors import InputError
from jaxlimit.stats.coupling import MeanDrift, PathwiseError, mean_drift, pathwise_error
from jaxlimit.stats.gaussian import Gaussian, GaussianComparison, check_aligned, compare_gaussian
from jaxlimit.stats.summaries import Estimate
from jaxlimit.stats.verdict import CONSISTENT, INCONSISTENT, resolution

DETERMINISTIC_RTOL = 1e-12
"""A predicted covariance whose largest eigenvalue is below this times the squared scale of the outputs is
treated as zero: the limit is deterministic at that time."""


@dataclasses.dataclass(frozen=True)
class MeanTest:
    """The ensemble mean against a deterministic prediction at one time.

    Attributes:
        mean_error: max_p |m̂_p − μ_p|.
        mean_error_z: max_p |m̂_p − μ_p| / ŝe_p.
        smallest_pvalue: the smallest two-sided p-value over the points.
        spread: the members' standard deviation at each point, shape (P,).
        n_tests: P, the tests combined.
        consistent: smallest_pvalue ≥ level / P.
    """

    mean_error: float
    mean_error_z: float
    smallest_pvalue: float
    spread: np.ndarray
    n_tests: int
    consistent: bool


def mean_test(samples, mean, *, level: float, mean_se=None) -> MeanTest:
    """Test E samples (E, P) against a point prediction ``mean`` (P,) at overall level ``level``.

    ``mean_se`` (P,), when the prediction is itself an estimate (a Monte Carlo limit), is its standard
    error: then z_p = (m̂_p − μ_p)/√(ŝe_p² + se(μ_p)²), the two errors being independent."""
    x = np.asarray(samples, np.float64)
    mu = np.asarray(mean, np.float64)
    if x.ndim != 2 or mu.shape != x.shape[1:]:
        raise InputError(f"samples (E, P) and a mean (P,) are needed, got {x.shape} and {mu.shape}")
    if len(x) < 2:
        raise InputError(f"need at least 2 members to test a mean, got {len(x)}")
    sd = x.std(axis=0, ddof=1)
    gap = x.mean(axis=0) - mu
    se = sd / math.sqrt(len(x))
    if mean_se is not None:
        se = np.sqrt(se**2 + np.broadcast_to(np.asarray(mean_se, np.float64), se.shape) ** 2)
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.where(se > 0, np.abs(gap) / np.where(se > 0, se, 1.0), np.where(np.abs(gap) > 0, np.inf, 0.0))
    p = 2.0 * sps.norm.sf(z)
    n = int(mu.size)
    return MeanTest(float(np.max(np.abs(gap))), float(np.max(z)), float(np.min(p)), sd, n,
                    bool(np.min(p) >= level / n))


@dataclasses.dataclass(frozen=True)
class TimeComparison:
    """One compared time: ``gaussian`` (a proper predicted covariance) or ``mean`` (a deterministic one)."""

    time: float
    kind: str
    gaussian: GaussianComparison | None
    mean: MeanTest | None

    @property
    def consistent(self) -> bool:
        return self.gaussian.consistent if self.gaussian is not None else self.mean.consistent

    @property
    def smallest_pvalue(self) -> float:
        return self.gaussian.smallest_pvalue if self.gaussian is not None else self.mean.smallest_pvalue

    @property
    def mean_error_z(self) -> float:
        return self.gaussian.mean_error_z if self.gaussian is not None else self.mean.mean_error_z

    @property
    def threshold(self) -> float:
        """The per-test rejection threshold at this time."""
        if self.gaussian is not None:
            return self.gaussian.threshold
        return float("nan") if self.mean is None else self._level / self.mean.n_tests

    _level: float = 0.0

    def row(self) -> dict:
        out = {"t": self.time, "kind": self.kind, "consistent": self.consistent,
               "smallest_pvalue": self.smallest_pvalue, "threshold": self.threshold,
               "mean_error_z": self.mean_error_z}
        if self.gaussian is not None:
            out.update(cov_rel_error=self.gaussian.cov_rel_error, bures_w2=self.gaussian.bures_w2)
        else:
            out.update(mean_error=self.mean.mean_error, largest_spread=float(np.max(self.mean.spread)))
        return out


@dataclasses.dataclass(frozen=True)
class Comparison:
    """An ensemble against a limit: the verdict with its rule and the effect sizes behind it.

    Attributes:
        verdict: ``"consistent"`` or ``"inconsistent"``.
        level: the false-alarm rate of the verdict (Bonferroni over times and tests).
        times: the compared saved times.
        per_time: one :class:`TimeComparison` per compared time.
        n_members, n_diverged: members run and members that diverged (left out; any makes the verdict inconsistent).
        pathwise: each member against its own limit path (None when the limit has no paths).
        drift: the mean over members of (member − its path) at the last compared time, with its SE.
        kernel_change: relative Frobenius change of the empirical NTK from t = 0 to the last compared time,
            mean over members ± SE (None unless the result recorded ``"ntk"``).
        method: the training method of the ensemble, and ``limit_method`` the one the limit describes.
        limit: the limit's class name.
        notes: one line per caveat (a method mismatch, diverged members).
    """

    verdict: str
    level: float
    times: tuple[float, ...]
    per_time: tuple[TimeComparison, ...]
    n_members: int
    n_diverged: int
    pathwise: PathwiseError | None
    drift: MeanDrift | None
    kernel_change: Estimate | None
    method: str | None
    limit_method: str | None
    limit: str
    notes: tuple[str, ...]

    @property
    def consistent(self) -> bool:
        return self.verdict == CONSISTENT

    @property
    def rule(self) -> str:
        kinds = sorted({c.kind for c in self.per_time})
        what = " or ".join({"gaussian": "a calibrated Gaussian test", "mean": "the mean test"}[k] for k in kinds)
        return (f"inconsistent when any member diverged or when, at any of the {len(self.times)} compared times, "
                f"{what} rejects at level {self.level:g}/{len(self.times)} (Bonferroni)")

    def metrics(self) -> dict[str, Any]:
        """Flat numbers for a report: the verdict's inputs and the effect sizes, each with its noise level."""
        out: dict[str, Any] = {"verdict": self.verdict, "level": self.level, "n_members": self.n_members,
                               "n_diverged": self.n_diverged, "limit": self.limit, "method": self.method,
                               "limit_method": self.limit_method,
                               "smallest_pvalue": min(c.smallest_pvalue for c in self.per_time),
                               "largest_mean_error_z": max(c.mean_error_z for c in self.per_time)}
        if self.pathwise is not None:
            out.update(pathwise_error=self.pathwise.rms, pathwise_error_se=self.pathwise.se)
        if self.drift is not None:
            value, se = float(self.drift.value[self.drift.worst]), float(self.drift.se[self.drift.worst])
            out.update(mean_drift=value, mean_drift_se=se, mean_drift_resolution=resolution(value, se))
        if self.kernel_change is not None:
            k = self.kernel_change
            out.update(kernel_change=k.value, kernel_change_se=k.se,
                       kernel_change_resolution=resolution(k.value, k.se))
        return out

    def rows(self) -> list[dict]:
        """One tidy row per compared time."""
        return [c.row() for c in self.per_time]

    def tables(self):
        """The per-time rows as a pandas DataFrame (tidy rows when pandas is not installed)."""
        try:
            import pandas as pd
        except ImportError:
            return self.rows()
        return pd.DataFrame(self.rows())

    def plot(self, result=None, prediction: Gaussian | None = None, *, points=(0,)):
        """A figure of the compared times: the ensemble mean ± 2 SE against the limit's mean ± 2 sd.

        ``result`` and ``prediction`` are the ones compared (``compare`` keeps neither)."""
        import matplotlib.pyplot as plt

        fig, axes = plt.subplots(1, 2, figsize=(9, 3.4), constrained_layout=True)
        t = np.asarray(self.times)
        z = [c.mean_error_z for c in self.per_time]
        axes[1].plot(t, z, "o-")
        axes[1].axhline(2.0, color="grey", ls=":", label="2 SE")
        axes[1].set(xlabel="training time t", ylabel="largest mean error (SE)", title="mean error")
        axes[1].legend(loc="best")
        if result is not None and prediction is not None:
            ok = result.finite()
            for p in points:
                idx = [ok.time_index(v) for v in t]
                x = np.asarray(ok.outputs, np.float64)[:, idx, p]
                m, se = x.mean(0), x.std(0, ddof=1) / math.sqrt(len(x))
                axes[0].errorbar(t, m, 2 * se, fmt="o", label=f"ensemble, point {p}")
                mu = np.asarray(prediction.mean)[:, p]
                sd = np.sqrt(np.clip(np.asarray(prediction.cov)[:, p, p], 0, None))
                pt = np.asarray(prediction.times) if prediction.times is not None else t
                axes[0].plot(pt, mu, "-", label=f"limit, point {p}")
                axes[0].fill_between(pt, mu - 2 * sd, mu + 2 * sd, alpha=0.2)
            axes[0].legend(loc="best", fontsize="small")
        axes[0].set(xlabel="training time t", ylabel="output", title=f"{self.limit}: {self.verdict}")
        return fig

    def _summary_rows(self) -> list[tuple[str, Any]]:
        m = self.metrics()
        keys = [k for k in ("n_members", "n_diverged", "method", "limit_method", "smallest_pvalue",
                            "largest_mean_error_z", "pathwise_error", "mean_drift", "mean_drift_resolution",
                            "kernel_change", "kernel_change_resolution") if k in m]
        return [(k, m[k]) for k in keys]

    def _repr_markdown_(self) -> str:
        from jaxlimit.display import markdown_table

        head = f"**{self.verdict}**: {self.limit} at level {self.level:g}. Rule: {self.rule}."
        notes = "".join(f"\n\n> {n}" for n in self.notes)
        rows = self.rows()
        table = markdown_table(list(rows[0]), [list(r.values()) for r in rows])
        return head + notes + "\n\n" + markdown_table(["", ""], self._summary_rows()) + "\n\n" + table

    def _repr_html_(self) -> str:
        from html import escape

        from jaxlimit.display import format_value

        def table(rows):
            cells = "".join("<tr>" + "".join(f"<td>{escape(format_value(v))}</td>" for v in r) + "</tr>"
                            for r in rows)
            return f"<table>{cells}</table>"

        rows = self.rows()
        head = "<tr>" + "".join(f"<th>{escape(k)}</th>" for k in rows[0]) + "</tr>"
        per_time = table([list(r.values()) for r in rows]).replace("<table>", "<table>" + head, 1)
        notes = "".join(f"<p><em>{escape(n)}</em></p>" for n in self.notes)
        return (f"<p><strong>{escape(self.verdict)}</strong>: {escape(self.limit)} at level {self.level:g}. "
                f"Rule: {escape(self.rule)}.</p>{notes}{table(self._summary_rows())}{per_time}")


def _result_description(result) -> dict:
    from jaxlimit.limits.base import normalised

    config = getattr(result, "config", None) or {}
    out = {}
    for part, key in (("model", "model"), ("trainer", "trainer"), ("data", "dataset")):
        value = config.get(key)
        if isinstance(value, dict):
            out[part] = normalised(value)
    return out


def _deterministic(law: Gaussian, samples: np.ndarray) -> bool:
    cov = np.asarray(law.cov, np.float64)
    scale = max(float(np.max(np.abs(np.asarray(law.mean)))), float(np.max(samples.std(axis=0))), 1e-300)
    return float(np.max(np.abs(cov))) <= DETERMINISTIC_RTOL * scale ** 2


def _kernel_change(result, index: int) -> Estimate | None:
    ntk = result.observables.get("ntk") if result.observables else None
    if ntk is None:
        return None
    k = np.asarray(ntk, np.float64)
    k0, kt = k[:, 0], k[:, index]
    change = np.linalg.norm((kt - k0).reshape(len(k), -1), axis=1) / np.linalg.norm(k0.reshape(len(k), -1), axis=1)
    n = len(change)
    return Estimate(float(change.mean()), float(change.std(ddof=1) / math.sqrt(n)) if n > 1 else float("nan"), n)


def compare(result, limit, *, level: float = 0.05, times=None, seed: int = 0) -> Comparison:
    """Compare an :class:`~jaxlimit.training.EnsembleResult` with any :class:`~jaxlimit.limits.Limit`.

    Args:
        result: the ensemble, compared at its saved times.
        limit: what it is compared with; ``limit.predict(result.times)`` is asked once.
        level: the false-alarm rate of the verdict, in (0, 1).
        times: a subset of the saved times to compare (default: every saved time, t = 0 included).
        seed: fixes the permutation tests (saved time index i uses seed + i, as verdict_over_times).

    Refuses (InputError, before any test) a limit that does not describe the
    run (another model or training settings: :meth:`Limit.describes`), a
    prediction over other points or times, and times that were not saved.
    A training method other than the limit's (online SGD against a gradient
    flow) is named in a :class:`~jaxlimit.training.TrainingMethodWarning` and in ``notes``.
    """
    from jaxlimit.limits.base import Limit, mismatch
    from jaxlimit.training.guards import TrainingMethodWarning, training_method_mismatch
    from jaxlimit.training.results import EnsembleResult

    if not isinstance(result, EnsembleResult):
        raise InputError(f"compare needs an EnsembleResult (from run_ensemble), got {type(result).__name__}")
    if not isinstance(limit, Limit):
        raise InputError(f"compare needs a jaxlimit.Limit (e.g. from mlp_limit, lazy_limit or ode_limit), "
                         f"got {type(limit).__name__}")
    if not 0.0 < float(level) < 1.0:
        raise InputError(f"level must lie in (0, 1), got {level}")
    saved = np.asarray(result.times, np.float64)
    idx = list(range(len(saved))) if times is None else [result.time_index(t) for t in np.atleast_1d(times)]
    if not idx:
        raise InputError("compare needs at least one time")
    actual = _result_description(result)
    assumed = limit.assumptions
    trainer_assumed = dict(assumed.get("trainer", {}))
    limit_method = trainer_assumed.pop("method", None)
    method = actual.get("trainer", {}).get("method")
    reason = mismatch({k: v for k, v in {**assumed, "trainer": trainer_assumed}.items()}, actual)
    if reason:
        raise InputError(f"{type(limit).__name__} does not describe this ensemble: {reason}")
    notes = []
    note = None if method is None else training_method_mismatch(method, limit_method)
    if note:
        warnings.warn(note, TrainingMethodWarning, stacklevel=2)
        notes.append(note)

    prediction = limit.predict(saved)
    check_aligned(saved, prediction.times, what=f"{type(limit).__name__}.predict")
    n_points = result.outputs.shape[-1]
    if prediction.batch_shape != (len(saved),) or prediction.dim != n_points:
        raise InputError(f"{type(limit).__name__} predicts {prediction.batch_shape} times × {prediction.dim} points "
                         f"but the ensemble has {len(saved)} saved times × {n_points} points")

    ok = result.finite()
    if result.n_diverged:
        notes.append(f"{result.n_diverged} of {result.n_members} members diverged (the limit never does): "
                     "verdict inconsistent; statistics use the finite members")
    outputs = np.asarray(ok.outputs, np.float64)
    if ok.n_members < 2:
        raise InputError(f"only {ok.n_members} of {result.n_members} members stayed finite: nothing to compare "
                         "(reduce the step; see the divergence warning)")
    each = float(level) / len(idx)
    per_time = []
    for i in idx:
        samples, law = outputs[:, i], prediction[i]
        if _deterministic(law, samples):
            per_time.append(TimeComparison(float(saved[i]), "mean", None, mean_test(samples, law.mean, level=each),
                                           _level=each))
        else:
            if ok.n_members < n_points + 2:
                raise InputError(f"a Gaussian comparison of {n_points} points needs at least {n_points + 2} "
                                 f"finite members, got {ok.n_members}")
            per_time.append(TimeComparison(float(saved[i]), "gaussian",
                                           compare_gaussian(samples, law, seed=seed + i, level=each), None,
                                           _level=each))
    consistent = all(c.consistent for c in per_time) and result.n_diverged == 0
    pathwise = drift = None
    if limit.has_paths:
        paths = np.asarray(limit.pathwise(outputs[:, 0], saved[idx]), np.float64)
        pathwise = pathwise_error(outputs[:, idx], paths)
        drift = mean_drift(outputs[:, idx[-1]], paths[:, -1])
    return Comparison(
        verdict=CONSISTENT if consistent else INCONSISTENT, level=float(level),
        times=tuple(float(saved[i]) for i in idx), per_time=tuple(per_time), n_members=result.n_members,
        n_diverged=result.n_diverged, pathwise=pathwise, drift=drift, kernel_change=_kernel_change(ok, idx[-1]),
        method=method, limit_method=limit_method, limit=type(limit).__name__, notes=tuple(notes))


__all__ = ["Comparison", "MeanTest", "TimeComparison", "compare", "mean_test"]
