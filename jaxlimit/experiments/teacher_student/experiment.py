"""``jaxlimit teacher-student``: config → starts → population flow (the limit) → comparison → Report.

The limit here is in samples, not width: with infinitely many samples per step
the dynamics is the gradient flow of the closed-form population loss
(docs/teacher-student.md). Four measurements, each vmapped over many starts:

1. K ≥ 2, W* = I_K (docs/teacher-student.md#orthonormal-teacher-with-several-units).
   The symmetric start must end at the saddle value: **consistent** when the
   end is within ``SADDLE_TOLERANCE`` of it, **inconsistent** when it rests
   resolvably elsewhere (the error exceeds twice the Newton step, the distance
   still to travel), otherwise **not resolved at this size** (still moving at
   ``t_max``). The symmetric start plus noise δ must reach W* up to a
   permutation: the flow is deterministic, so one run converging to a spurious
   local minimum (Newton step below ``NEWTON_TOLERANCE``, positive-definite
   Hessian, loss above ``SPURIOUS_LOSS``) makes it **inconsistent**; misses
   that are still moving or near a saddle at ``t_max`` leave it **not
   resolved at this size**; every run reaching W* is **consistent**. The
   fraction that reached W* is reported with its standard error and Wilson
   interval.
2. The time near the saddle against log(1/δ): slope 1/λ predicted, λ the
   saddle's largest unstable rate; **consistent** when the fit's interval,
   widened by ``ESCAPE_TOLERANCE`` · 1/λ (the O(δ) corrections), covers 1/λ.
3. K = 1 (docs/teacher-student.md#a-single-unit): the claim P(reach w*) ≥
   (1 − ε)/2 per (d, ε), by :func:`~jaxlimit.stats.verdict.probability_at_least`
   (the margin p̂ − bound against its standard error); a shortfall while some
   runs are still moving at ``k1_time`` is not resolved at this size.
4. SGD with n samples per step against gradient descent with the same step
   (RMS deviation, slope −1/2 predicted; **consistent** when the weighted fit's
   interval widened by ``SGD_SLOPE_TOLERANCE`` covers it) and against the
   limit object :func:`~jaxlimit.limits.teacher_student.population_flow_limit`
   (the flow's W_t; covariance zero).
"""

from __future__ import annotations

import dataclasses
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxlimit.errors import InputError
from jaxlimit.experiments.problem import data_seed, timed
from jaxlimit.experiments.teacher_student import figures
from jaxlimit.experiments.teacher_student.config import (
    ESCAPE_TIMES, PLANE_STARTS, SAVED_TIMES, SGD_SAVES, TeacherStudentConfig,
)
from jaxlimit.limits.teacher_student import (
    PopulationFlowLimit, classify_ending, population_flow_limit, relu_gradient_flow, relu_population_grad,
    relu_population_loss, relu_reduced_flow, relu_unstable_rate, single_neuron_bound, single_neuron_bound_radius,
    single_neuron_inside_probability, symmetric_coordinates, symmetric_saddle_value, symmetric_weights,
    teacher_distance, time_within, uniform_ball,
)
from jaxlimit.report import Report
from jaxlimit.training.teacher_student import relu_gradient_descent, relu_sgd
from jaxlimit.stats import Estimate, PowerLawFit, fit_power_law, proportion
from jaxlimit.stats.scaling import Proportion
from jaxlimit.stats.summaries import root_mean_square
from jaxlimit.stats.verdict import (
    CONSISTENT, INCONSISTENT, NOT_RESOLVED, RESOLVED, BoundCheck, combine, probability_at_least, resolution,
    slope_agreement,
)
from jaxlimit.streams import member_keys, stream_key
from jaxlimit.training.checkpoints import ResultStore, cached, versions

TEACHER_TOLERANCE = 1e-3
"""A run reached the teacher when its best-permutation distance is below this."""
NEWTON_TOLERANCE = 1e-3
"""A run is at a stationary point when the Newton step to it is below this."""
SADDLE_TOLERANCE = 1e-5
"""The symmetric start's end matches the saddle value to this (solver tolerance and time left)."""
SPURIOUS_LOSS = 1e-6
"""A local minimum with a larger loss is not W*."""
ESCAPE_RADIUS = 0.1
"""Time near the saddle is spent within this fraction of ‖saddle‖ of it."""
ESCAPE_TOLERANCE = 0.02
"""Relative widening of the escape slope's interval: T = a + log(1/δ)/λ + O(δ)."""
SGD_SLOPE_TOLERANCE = 0.1
"""Widening of the SGD slope's interval (the n^-1 terms at small n), as in ``sweep xavier``."""
STILL_MOVING_GRAD = 1e-8
"""A K = 1 run that missed w* with a larger gradient norm is still moving."""
PLANE = np.array([[0.1, 0.1], [1e-3, 0.0], [0.3, 0.1], [0.05, 0.4], [0.8, 0.8]])
"""Starts (x0, y0) in the symmetric plane: the symmetric start, the symmetry-breaking one, three more."""
assert len(PLANE) == PLANE_STARTS
DATA = "x ~ N(0, I_K), W* = I_K"


# --------------------------------------------------------------------------
# Typed results of the four studies
# --------------------------------------------------------------------------

class NoisyRun(NamedTuple):
    """Where one finite noisy symmetric start ended (a row of ``noisy_starts.csv``).

    Attributes:
        K: units of the student and of the teacher.
        run: the run's index among the noisy starts.
        teacher_distance: best-permutation distance to W* at t_max.
        ending: ``"teacher"``, ``"spurious_minimum"`` or the kind :func:`classify_ending` gives.
        loss: population loss at t_max.
        newton_step, min_hessian_eigenvalue: of the stationary-point check (None when it reached W*).
    """

    K: int
    run: int
    teacher_distance: float
    ending: str
    loss: float
    newton_step: float | None
    min_hessian_eigenvalue: float | None


@dataclasses.dataclass(frozen=True)
class Orthonormal:
    """K ≥ 2, W* = I_K: the plane starts and the symmetric start plus noise δ under the full flow.

    Attributes:
        K: units of the student and of the teacher.
        theory: the saddle value s (the symmetric start's predicted end x = y = s).
        full_flow, reduced_flow: the symmetric start's end, the full flow's mean entry and the reduced flow's x.
        abs_error: the larger of their distances to s.
        newton_step: the Newton step at the full flow's end (the distance still to travel, the error's noise).
        abs_error_resolution: :func:`resolution` of the error against that step.
        saddle_verdict: consistent within ``SADDLE_TOLERANCE``, inconsistent when resolved elsewhere.
        saddle_loss: the population loss at the saddle.
        reduced_vs_full: the largest |projected full flow − reduced flow| over the plane starts and times.
        symmetry_breaking_distance: the start (1e-3, 0)'s distance to W* at t_max.
        reached: the finite noisy runs' fraction that reached W* (None when every flow failed).
        n_noisy, n_noisy_finite: the noisy starts, and those whose flow finished.
        endings: the misses counted by :func:`classify_ending`'s kind.
        spurious_losses: the distinct losses (rounded to 1e-6) of the spurious local minima.
        noisy_verdict: inconsistent on any spurious minimum, consistent when every run reached W*.
        runs: one :class:`NoisyRun` per finite noisy start.
        times: the saved times; reduced: the reduced flow (plane starts, T, 2); projected: the full flow
            of the plane starts in the plane's coordinates (plane starts, T, 2).
        losses: population loss along the two first plane starts and up to 12 noisy ones, (runs, T).
        final, distance: the noisy runs' final weights and distances to W* (NaN for a failed flow).
    """

    K: int
    theory: float
    full_flow: float
    reduced_flow: float
    abs_error: float
    newton_step: float
    abs_error_resolution: str
    saddle_verdict: str
    saddle_loss: float
    reduced_vs_full: float
    symmetry_breaking_distance: float
    reached: Proportion | None
    n_noisy: int
    n_noisy_finite: int
    endings: dict
    spurious_losses: list
    noisy_verdict: str
    runs: list
    times: np.ndarray
    reduced: np.ndarray
    projected: np.ndarray
    losses: np.ndarray
    final: np.ndarray
    distance: np.ndarray

    @property
    def n_spurious(self) -> int:
        return sum(r.ending == "spurious_minimum" for r in self.runs)


@dataclasses.dataclass(frozen=True)
class Escape:
    """The time near the symmetric saddle against log(1/δ), slope 1/λ predicted.

    Attributes:
        K: units; radius: the ball around the saddle (``ESCAPE_RADIUS`` ‖saddle‖).
        unstable_rate: λ, the saddle's largest unstable rate.
        deltas: the perturbation sizes δ, decreasing; time_near_saddle: the time each flow spends in the ball.
        times, distance: the saved times and each flow's distance to the saddle, (δ, T).
        fit: the power law of exp(T) in 1/δ (slope = that of T in log(1/δ)); None with fewer than three
            finite flows.
        relative_difference: slope · λ − 1 (None without a fit).
        verdict: the slope against 1/λ (:func:`slope_agreement`, widened by ``ESCAPE_TOLERANCE`` / λ).
    """

    K: int
    radius: float
    unstable_rate: float
    deltas: np.ndarray
    time_near_saddle: np.ndarray
    times: np.ndarray
    distance: np.ndarray
    fit: PowerLawFit | None
    relative_difference: float | None
    verdict: str


@dataclasses.dataclass(frozen=True)
class SingleUnit:
    """K = 1 at one (d, ε): starts uniform in the ball of radius r = ε √(2π/(d+1)) ‖w*‖.

    Attributes:
        dim, epsilon, radius: d, ε and r.
        bound: the claimed lower bound (1 − ε)/2 on P(reach w*).
        starts, finite: the starts and those whose flow finished.
        reached: the claim against the finite runs (:func:`probability_at_least`).
        still_moving: misses whose gradient norm exceeds ``STILL_MOVING_GRAD`` at ``k1_time``.
        verdict: ``reached.verdict``, not resolved instead of inconsistent while runs are still moving.
        inside_ball, inside_ball_exact: the fraction of starts in ‖w − w*‖ < ‖w*‖, sampled and exact.
        reached_mask: per start, whether it reached w* (False for a failed flow).
    """

    dim: int
    epsilon: float
    radius: float
    bound: float
    starts: int
    finite: int
    reached: BoundCheck
    still_moving: int
    verdict: str
    inside_ball: Proportion
    inside_ball_exact: float
    reached_mask: np.ndarray


class SgdProblem(NamedTuple):
    """The SGD runs' common part: K, W* = I_K, the start W0 (from the data seed), the limit object
    (the population flow from W0), the number of steps and the save interval."""

    K: int
    teacher: jax.Array
    start: jax.Array
    limit: PopulationFlowLimit
    steps: int
    save_every: int


@dataclasses.dataclass(frozen=True)
class SgdArm:
    """SGD with n samples per step: the runs and, with at least two finite ones, their deviations.

    Attributes:
        n: samples per step; finite: the runs that stayed finite; weights: every run's W_t, (E, T, K, K).
        rms_gd, rms_flow: the RMS over runs of the RMS over times of ‖W_SGD − W_GD‖ and ‖W_SGD − W_flow‖.
        per_time: the RMS over runs of ‖W_SGD − W_GD‖ at each saved time.
        mean_gap, mean_gap_se: the runs' mean minus the flow, (T, K, K), with its standard error.
        loss: the population loss of each finite run, (E, T).
        The last five are None with fewer than two finite runs.
    """

    n: int
    finite: int
    weights: np.ndarray
    rms_gd: Estimate | None = None
    rms_flow: Estimate | None = None
    per_time: list | None = None
    mean_gap: np.ndarray | None = None
    mean_gap_se: np.ndarray | None = None
    loss: np.ndarray | None = None


@dataclasses.dataclass(frozen=True)
class Sgd:
    """SGD against gradient descent with the same step and against the population flow.

    Attributes:
        K, step, steps: the student's units, the step η and the steps.
        times: the saved times η · steps; gd, flow: gradient descent's and the flow's W_t, (T, K, K).
        gd_loss, flow_loss: their population losses, (T,).
        gd_rms_deviation_from_flow: the RMS over times of ‖W_GD − W_flow‖.
        by_n: one :class:`SgdArm` per n.
        mean_gap_to_limit_z, mean_gap_to_gd_z: at the largest usable n and t_end, the largest
            |SGD mean − flow| and |SGD mean − GD| in standard errors of the mean (None without one).
        mean_gap_to_limit_resolution, mean_gap_to_gd_resolution: those against a noise level of 1.
        fit: the weighted power law of RMS(SGD − GD) in n (None with fewer than two positive points).
        verdict: its slope against −1/2, widened by ``SGD_SLOPE_TOLERANCE``.
    """

    K: int
    step: float
    steps: int
    times: np.ndarray
    gd: np.ndarray
    flow: np.ndarray
    gd_loss: np.ndarray
    flow_loss: np.ndarray
    gd_rms_deviation_from_flow: float
    by_n: list
    mean_gap_to_limit_z: float | None
    mean_gap_to_gd_z: float | None
    mean_gap_to_limit_resolution: str | None
    mean_gap_to_gd_resolution: str | None
    fit: PowerLawFit | None
    verdict: str

    @property
    def usable(self) -> list:
        """The arms with at least two finite runs."""
        return [e for e in self.by_n if e.rms_gd is not None]


# --------------------------------------------------------------------------
# The command
# --------------------------------------------------------------------------

def run(config: TeacherStudentConfig) -> Report:
    if not jax.config.jax_enable_x64:
        raise InputError("teacher-student integrates its flows in float64; enable it first with "
                         "jax.config.update('jax_enable_x64', True) (the command line does)")
    timing: dict = {}
    warnings: list[str] = []
    store = None
    if config.checkpoint is not None:
        store = ResultStore(config.checkpoint, {"experiment": config.NAME, "versions": versions()},
                            fresh=config.fresh)
    with timed(timing, "limit"):
        sgd_problem = _sgd_problem(config)  # refuses an unstable step before the long parts run
    with timed(timing, "orthonormal_teacher"):
        ortho = [_orthonormal(config, K, store, warnings) for K in config.ks]
    with timed(timing, "saddle_escape"):
        escape = _escape(config, store, warnings)
    with timed(timing, "single_unit"):
        k1 = _single_unit(config, store, warnings)
    with timed(timing, "sgd"):
        sgd = _sgd(config, sgd_problem, store, warnings)

    verdict = {
        "saddle_value": combine(o.saddle_verdict for o in ortho),
        "symmetric_plus_noise": combine(o.noisy_verdict for o in ortho),
        "escape_time": escape.verdict,
        "k1_bound": combine(row.verdict for row in k1),
        "sgd_noise": sgd.verdict,
    }
    return Report(
        experiment=config.NAME,
        config={"limit": "population gradient flow (closed form, diffrax Tsit5 through solve_ode); "
                          "covariance zero",
                "tolerances": {"teacher": TEACHER_TOLERANCE, "newton": NEWTON_TOLERANCE, "saddle": SADDLE_TOLERANCE,
                               "spurious_loss": SPURIOUS_LOSS, "escape_slope": ESCAPE_TOLERANCE,
                               "sgd_slope": SGD_SLOPE_TOLERANCE}},
        metrics=_metrics(config, ortho, escape, k1, sgd), verdict=verdict, timing=timing,
        figures=_figures(config, ortho, escape, k1, sgd),
        tables=_tables(ortho, escape, k1, sgd), arrays=_arrays(ortho, escape, k1, sgd),
        summary=_summary(config, ortho, escape, k1, sgd, verdict), warnings=warnings,
    )


def _part(estimate: Estimate | None, name: str) -> float | None:
    """``estimate.value`` or ``estimate.se``; None for an arm with fewer than two finite runs."""
    return None if estimate is None else getattr(estimate, name)


def _fit_metrics(fit: PowerLawFit | None) -> dict:
    """A fit's slope, its standard error and 95 % interval (None without a fit)."""
    if fit is None:
        return {"slope": None, "slope_se": None, "slope_ci95": None}
    return {"slope": fit.slope, "slope_se": fit.slope_se, "slope_ci95": list(fit.slope_ci)}


def _metrics(config, ortho: list[Orthonormal], escape: Escape, k1: list[SingleUnit], sgd: Sgd) -> dict:
    metrics: dict = {}
    for o in ortho:
        K = o.K
        metrics[f"saddle_value_K{K}"] = {
            "theory": o.theory, "full_flow": o.full_flow, "reduced_flow": o.reduced_flow, "abs_error": o.abs_error,
            "newton_step": o.newton_step, "abs_error_resolution": o.abs_error_resolution,
            "saddle_verdict": o.saddle_verdict}
        metrics[f"saddle_loss_K{K}"] = o.saddle_loss
        metrics[f"reduced_vs_full_max_deviation_K{K}"] = o.reduced_vs_full
        metrics[f"symmetry_breaking_start_distance_K{K}"] = o.symmetry_breaking_distance
        metrics[f"noisy_start_reached_teacher_K{K}"] = o.reached and o.reached.as_dict()
        metrics[f"noisy_start_endings_K{K}"] = o.endings
        metrics[f"noisy_start_spurious_losses_K{K}"] = o.spurious_losses
        metrics[f"noisy_start_verdict_K{K}"] = o.noisy_verdict
    metrics["escape"] = {"K": escape.K, "radius": escape.radius, "unstable_rate": escape.unstable_rate,
                         "inverse_unstable_rate": 1.0 / escape.unstable_rate, **_fit_metrics(escape.fit),
                         "relative_difference": escape.relative_difference, "tolerance": ESCAPE_TOLERANCE}
    metrics["k1"] = [{"dim": row.dim, "epsilon": row.epsilon, "radius": row.radius, "bound": row.bound,
                      "starts": row.starts, "finite": row.finite, "reached": row.reached.as_dict(),
                      "still_moving": row.still_moving, "verdict": row.verdict,
                      "inside_ball": row.inside_ball.as_dict(), "inside_ball_exact": row.inside_ball_exact}
                     for row in k1]
    metrics["k1_failed_solves"] = sum(row.starts - row.finite for row in k1)
    metrics["sgd"] = {
        "K": sgd.K, "step": sgd.step, "steps": sgd.steps, "runs": config.sgd_ensemble,
        "samples_per_step": list(config.sgd_samples),
        "rms_deviation_from_gd": [_part(e.rms_gd, "value") for e in sgd.by_n],
        "rms_deviation_from_gd_se": [_part(e.rms_gd, "se") for e in sgd.by_n],
        "rms_deviation_from_flow": [_part(e.rms_flow, "value") for e in sgd.by_n],
        "rms_deviation_from_flow_se": [_part(e.rms_flow, "se") for e in sgd.by_n],
        "gd_rms_deviation_from_flow": sgd.gd_rms_deviation_from_flow, **_fit_metrics(sgd.fit),
        "predicted_slope": -0.5, "tolerance": SGD_SLOPE_TOLERANCE,
        "mean_gap_to_limit_z": sgd.mean_gap_to_limit_z,
        "mean_gap_to_limit_resolution": sgd.mean_gap_to_limit_resolution,
        "mean_gap_to_gd_z": sgd.mean_gap_to_gd_z, "mean_gap_to_gd_resolution": sgd.mean_gap_to_gd_resolution}
    return metrics


def _figures(config, ortho, escape, k1, sgd) -> dict:
    facts = dict(model=figures.MODEL, members=config.ensemble, data=DATA)
    return {
        "xy_plane": figures.plane_figure(ortho, PLANE, facts),
        "loss_curves": figures.loss_figure(ortho, config.noise, facts),
        "saddle_escape": figures.escape_figure(escape, facts),
        "convergence_probability": figures.k1_figure(k1, config.dims, config.k1_ensemble),
        "sgd_vs_flow": figures.sgd_figure(sgd, config.sgd_ensemble),
    }


# --------------------------------------------------------------------------
# 1. Orthonormal teacher: saddle and symmetry breaking
# --------------------------------------------------------------------------

def _orthonormal_times(t_max: float) -> np.ndarray:
    """Dense early, where the plane trajectories turn; coarser on the plateaus."""
    early = min(20.0, t_max / 2)
    half = (SAVED_TIMES + 1) // 2
    return np.unique(np.concatenate([np.linspace(0.0, early, half), np.linspace(early, t_max, half)]))


def _noisy_starts(config, K: int) -> jax.Array:
    """The symmetric start plus noise of Frobenius size δ; member i's noise from its own key."""
    keys = member_keys(stream_key(config.seed, "members-noisy", K), np.arange(config.ensemble))
    noise = jax.vmap(lambda k: jax.random.normal(k, (K, K), jnp.float32))(keys).astype(jnp.float64)
    noise = config.noise * noise / jnp.linalg.norm(noise, axis=(1, 2), keepdims=True)
    return symmetric_weights(0.1, 0.1, K)[None] + noise


def _saddle_verdict(error: float, error_resolution: str) -> str:
    """At the saddle within ``SADDLE_TOLERANCE``; resolvably elsewhere; or still travelling."""
    if error <= SADDLE_TOLERANCE:
        return CONSISTENT
    return INCONSISTENT if error_resolution == RESOLVED else NOT_RESOLVED


def _noisy_runs(K: int, ys, distance, indices, reached, teacher) -> list[NoisyRun]:
    """Where each finite noisy start ended: W*, a spurious local minimum, or another kind of ending."""
    runs = []
    for b, hit in zip(indices, reached):
        e = None if hit else classify_ending(ys[b, -1], teacher, newton_tolerance=NEWTON_TOLERANCE)
        kind = "teacher" if hit else ("spurious_minimum" if e.kind == "local_minimum" and e.loss > SPURIOUS_LOSS
                                      else e.kind)
        runs.append(NoisyRun(K, int(b - len(PLANE)), float(distance[b]), kind,
                             float(relu_population_loss(ys[b, -1], teacher)),
                             None if e is None else e.newton_step, None if e is None else e.min_eigenvalue))
    return runs


def _orthonormal(config, K: int, store, warnings) -> Orthonormal:
    teacher = jnp.eye(K)
    s = symmetric_saddle_value(K)
    times = _orthonormal_times(config.t_max)
    starts = jnp.concatenate([jnp.stack([symmetric_weights(x, y, K) for x, y in PLANE]), _noisy_starts(config, K)])

    def compute():
        full = relu_gradient_flow(starts, teacher, times)
        reduced = relu_reduced_flow(PLANE, K, times)
        return {"full": full.weights, "full_finite": full.finite, "reduced": reduced.weights,
                "reduced_finite": reduced.finite}

    flows = cached(store, {"part": "orthonormal", "K": K, "starts": starts, "times": times}, compute)
    ys, finite, reduced = flows["full"], flows["full_finite"], flows["reduced"]
    if not (finite.all() and flows["reduced_finite"].all()):
        warnings.append(f"K = {K}: {int(np.sum(~finite))} full and {int(np.sum(~flows['reduced_finite']))} "
                        "reduced flows failed and are excluded")
    n_plane = len(PLANE)
    distance = np.full(len(starts), np.nan)
    distance[finite] = teacher_distance(ys[finite, -1], np.eye(K))

    # The symmetric start keeps identical rows, so it should end at the saddle.
    end = ys[0, -1]
    saddle_end = classify_ending(end, teacher, newton_tolerance=NEWTON_TOLERANCE)
    error = max(abs(float(np.mean(end)) - s), float(np.max(np.abs(reduced[0, -1] - s))))
    error_resolution = resolution(error, saddle_end.newton_step)  # the distance still to travel is its noise

    projected = np.asarray(symmetric_coordinates(jnp.asarray(ys[:n_plane])))
    noisy = np.arange(n_plane, len(starts))
    ok = noisy[finite[noisy]]
    reached = distance[ok] < TEACHER_TOLERANCE
    runs = _noisy_runs(K, ys, distance, ok, reached, teacher)
    # The misses by classify_ending's kind (a spurious minimum is a local minimum).
    kinds = ["local_minimum" if r.ending == "spurious_minimum" else r.ending for r in runs if r.ending != "teacher"]
    endings = {kind: kinds.count(kind) for kind in ("local_minimum", "other_stationary", "still_moving")}
    spurious = [r for r in runs if r.ending == "spurious_minimum"]
    if spurious:
        noisy_verdict = INCONSISTENT
    elif len(ok) and reached.all():
        noisy_verdict = CONSISTENT
    else:
        noisy_verdict = NOT_RESOLVED
    shown = np.concatenate([np.arange(2), noisy[:12]])
    losses = np.asarray(jax.vmap(jax.vmap(lambda W: relu_population_loss(W, teacher)))(jnp.asarray(ys[shown])))
    return Orthonormal(
        K=K, theory=s, full_flow=float(np.mean(end)), reduced_flow=float(reduced[0, -1, 0]), abs_error=error,
        newton_step=saddle_end.newton_step, abs_error_resolution=error_resolution,
        saddle_verdict=_saddle_verdict(error, error_resolution),
        saddle_loss=float(relu_population_loss(symmetric_weights(s, s, K), teacher)),
        reduced_vs_full=float(np.max(np.abs(projected - reduced))), symmetry_breaking_distance=float(distance[1]),
        reached=proportion(int(reached.sum()), len(ok)) if len(ok) else None,  # None: every flow failed
        n_noisy=len(noisy), n_noisy_finite=len(ok), endings=endings,
        spurious_losses=sorted({round(r.loss, 6) for r in spurious}), noisy_verdict=noisy_verdict,
        runs=runs, times=times, reduced=reduced, projected=projected, losses=losses,
        final=ys[noisy, -1], distance=distance[noisy],
    )


# --------------------------------------------------------------------------
# 2. Time near the saddle against the perturbation size
# --------------------------------------------------------------------------

def _escape(config, store, warnings) -> Escape:
    K = config.escape_k
    teacher = jnp.eye(K)
    s = symmetric_saddle_value(K)
    saddle = symmetric_weights(s, s, K)
    rate = relu_unstable_rate(saddle, teacher)
    direction = jax.random.normal(stream_key(data_seed(config), "escape-direction", K), (K, K), jnp.float32)
    direction = direction.astype(jnp.float64) / jnp.linalg.norm(direction.astype(jnp.float64))
    deltas = np.sort(np.asarray(config.escape_deltas))[::-1]
    horizon = 1.5 * np.log(10.0 / deltas.min()) / rate + 10.0
    times = np.linspace(0.0, horizon, ESCAPE_TIMES)
    starts = saddle[None] + jnp.asarray(deltas)[:, None, None] * direction[None]

    def compute():
        flows = relu_gradient_flow(starts, teacher, times, rtol=1e-10, atol=1e-12)
        return {"weights": flows.weights, "finite": flows.finite}

    flows = cached(store, {"part": "escape", "starts": starts, "times": times}, compute)
    radius = ESCAPE_RADIUS * float(jnp.linalg.norm(saddle))
    distance = np.linalg.norm(flows["weights"] - np.asarray(saddle), axis=(-2, -1))
    near = time_within(distance / radius, times)
    ok = flows["finite"]
    if not ok.all():
        warnings.append(f"escape: {int(np.sum(~ok))} of {len(ok)} flows failed and are excluded")
    measured = dict(K=K, radius=radius, unstable_rate=rate, deltas=deltas, time_near_saddle=near, times=times,
                    distance=distance)
    if ok.sum() < 3:
        warnings.append("escape: fewer than three finite flows; the slope is not fitted")
        return Escape(**measured, fit=None, relative_difference=None, verdict=NOT_RESOLVED)
    # T = a + b log(1/δ) is a power law in exp(T) (shifted so that exp cannot overflow).
    fit = fit_power_law(1.0 / deltas[ok], np.exp(near[ok] - near[ok].max()))
    return Escape(**measured, fit=fit, relative_difference=fit.slope * rate - 1.0,
                  verdict=slope_agreement(fit, 1.0 / rate, ESCAPE_TOLERANCE / rate))


# --------------------------------------------------------------------------
# 3. K = 1: success probability against Tian's bound
# --------------------------------------------------------------------------

def _unit_ball(config, d: int) -> jax.Array:
    """k1_ensemble points uniform in the unit d-ball, member i from its own key (shared by every ε)."""
    keys = member_keys(stream_key(config.seed, "members-k1", d), np.arange(config.k1_ensemble))
    return jax.vmap(lambda k: uniform_ball(k, 1, d, 1.0, jnp.float32)[0])(keys).astype(jnp.float64)


def _single_unit(config, store, warnings) -> list[SingleUnit]:
    grad_norm = jax.jit(jax.vmap(lambda w, t: jnp.linalg.norm(relu_population_grad(w, t)), in_axes=(0, None)))
    rows = []
    for d in config.dims:
        w_star = jnp.zeros((1, d)).at[0, 0].set(1.0)
        unit = _unit_ball(config, d)
        for eps in config.epsilons:
            rows.append(_single_unit_at(config, d, eps, unit, w_star, grad_norm, store, warnings))
    return rows


def _single_unit_at(config, d: int, eps: float, unit, w_star, grad_norm, store, warnings) -> SingleUnit:
    r = single_neuron_bound_radius(eps, d)
    w0 = r * unit

    def compute():
        flow = relu_gradient_flow(w0[:, None, :], w_star, [0.0, config.k1_time], rtol=1e-6, atol=1e-9)
        return {"final": flow.final, "finite": flow.finite}

    flow = cached(store, {"part": "k1", "w0": w0, "w_star": w_star, "t": config.k1_time}, compute)
    finite = flow["finite"]
    end = flow["final"][finite]
    hit = np.linalg.norm(end[:, 0] - np.asarray(w_star[0]), axis=1) < TEACHER_TOLERANCE
    moving = int(np.sum(~hit & (np.asarray(grad_norm(jnp.asarray(end), w_star)) > STILL_MOVING_GRAD)))
    n_ok = int(finite.sum())
    if n_ok < len(finite):
        warnings.append(f"K = 1, d = {d}, ε = {eps:g}: {len(finite) - n_ok} flows failed and are excluded")
    bound = single_neuron_bound(r, d)
    check = probability_at_least(int(hit.sum()), max(n_ok, 1), bound)
    word = check.verdict
    if word == INCONSISTENT and moving:
        word = NOT_RESOLVED  # runs still moving at k1_time may yet reach w*
    inside = proportion(int(np.sum(np.linalg.norm(np.asarray(w0) - np.asarray(w_star[0]), axis=1) < 1.0)),
                        config.k1_ensemble)
    reached_mask = np.zeros(len(finite), bool)
    reached_mask[np.flatnonzero(finite)[hit]] = True
    return SingleUnit(dim=d, epsilon=eps, radius=r, bound=bound, starts=len(finite), finite=n_ok, reached=check,
                      still_moving=moving, verdict=word, inside_ball=inside,
                      inside_ball_exact=single_neuron_inside_probability(r, d), reached_mask=reached_mask)


# --------------------------------------------------------------------------
# 4. Finite samples: SGD against gradient descent and the flow
# --------------------------------------------------------------------------

def _sgd_problem(config) -> SgdProblem:
    """The SGD start (from the data seed), the schedule and the limit object built from them."""
    K = config.sgd_k
    teacher = jnp.eye(K)
    start = 0.5 * jax.random.normal(stream_key(data_seed(config), "sgd-start", K), (K, K), jnp.float32)
    start = start.astype(jnp.float64)
    limit = population_flow_limit(teacher, start, step=config.step)
    every = max(1, round(config.sgd_time / config.step) // SGD_SAVES)
    return SgdProblem(K, teacher, start, limit, config.sgd_steps, every)


def _sgd_arm(config, problem: SgdProblem, n: int, gd_w, flow_w, loss, store, warnings) -> SgdArm:
    """SGD runs with n samples per step (cached) and their deviations from gradient descent and the flow."""
    K, start = problem.K, problem.start
    key = stream_key(config.seed, "members-sgd", n)

    def compute():
        runs = relu_sgd(key, jnp.broadcast_to(start, (config.sgd_ensemble, K, K)), problem.teacher, config.step,
                        problem.steps, n, problem.save_every)
        return {"weights": runs.weights, "finite": runs.finite}

    runs = cached(store, {"part": "sgd", "key": key, "start": start, "step": config.step,
                          "steps": problem.steps, "every": problem.save_every, "E": config.sgd_ensemble},
                  compute)
    finite = runs["finite"]
    if not finite.all():
        warnings.append(f"SGD with n = {n}: {int(np.sum(~finite))} of {len(finite)} runs diverged and are excluded")
    w = runs["weights"][finite]
    arm = SgdArm(n=n, finite=int(finite.sum()), weights=runs["weights"])
    if len(w) < 2:
        return arm
    sq_gd = np.sum((w - gd_w) ** 2, axis=(-2, -1))       # (E, T)
    sq_flow = np.sum((w - flow_w) ** 2, axis=(-2, -1))
    se = w.std(axis=0, ddof=1) / np.sqrt(len(w))  # elementwise over (T, K, K)
    return dataclasses.replace(
        arm, rms_gd=root_mean_square(np.sqrt(sq_gd.mean(axis=1))),
        rms_flow=root_mean_square(np.sqrt(sq_flow.mean(axis=1))),
        per_time=[root_mean_square(np.sqrt(sq_gd[:, i])) for i in range(sq_gd.shape[1])],
        mean_gap=w.mean(axis=0) - flow_w, mean_gap_se=se, loss=np.asarray(loss(jnp.asarray(w))))


def _sgd(config, problem: SgdProblem, store, warnings) -> Sgd:
    K, teacher = problem.K, problem.teacher
    gd = relu_gradient_descent(problem.start[None], teacher, config.step, problem.steps, problem.save_every)
    times = np.asarray(gd.times)
    flow_w = np.asarray(problem.limit.predict(times).mean).reshape(len(times), K, K)
    gd_w = np.asarray(gd.weights[0])
    loss = jax.jit(jax.vmap(jax.vmap(lambda W: relu_population_loss(W, teacher))))
    by_n = [_sgd_arm(config, problem, n, gd_w, flow_w, loss, store, warnings) for n in config.sgd_samples]
    usable = [e for e in by_n if e.rms_gd is not None]
    gaps = dict(mean_gap_to_limit_z=None, mean_gap_to_gd_z=None, mean_gap_to_limit_resolution=None,
                mean_gap_to_gd_resolution=None)
    if usable:
        # The largest n: its ensemble mean against the limit's mean and against gradient descent, at t_end.
        last = usable[-1]
        se = np.maximum(last.mean_gap_se[-1], np.finfo(float).tiny)
        to_limit = float(np.max(np.abs(last.mean_gap[-1]) / se))
        to_gd = float(np.max(np.abs(last.mean_gap[-1] + flow_w[-1] - gd_w[-1]) / se))
        # In standard errors of the mean, so the noise level is 1.
        gaps = dict(mean_gap_to_limit_z=to_limit, mean_gap_to_gd_z=to_gd,
                    mean_gap_to_limit_resolution=resolution(to_limit, 1.0),
                    mean_gap_to_gd_resolution=resolution(to_gd, 1.0))
    positive = [e for e in usable if e.rms_gd.value > 0 and e.rms_gd.se > 0]
    fit = None
    if len(positive) < 2:
        warnings.append("SGD: fewer than two sample sizes with finite runs; the slope is not fitted")
    else:
        fit = fit_power_law([e.n for e in positive], [e.rms_gd.value for e in positive],
                            y_err=[e.rms_gd.se for e in positive])
    return Sgd(K=K, step=config.step, steps=problem.steps, times=times, gd=gd_w, flow=flow_w,
               gd_loss=np.asarray(loss(gd_w[None]))[0], flow_loss=np.asarray(loss(flow_w[None]))[0],
               gd_rms_deviation_from_flow=float(np.sqrt(np.mean(np.sum((gd_w - flow_w) ** 2, axis=(-2, -1))))),
               by_n=by_n, **gaps, fit=fit,
               verdict=NOT_RESOLVED if fit is None else slope_agreement(fit, -0.5, SGD_SLOPE_TOLERANCE))


# --------------------------------------------------------------------------
# Tables, arrays, summary
# --------------------------------------------------------------------------

class _NoRuns:
    successes = p = se = None
    ci = (None, None)


_NO_RUNS = _NoRuns()


def _reached_text(p) -> str:
    if p is None:
        return "no finite runs"
    return f"{p.successes}/{p.trials}, p = {p.p:.3f} ± {p.se:.3f}, 95% CI [{p.ci[0]:.3f}, {p.ci[1]:.3f}]"


def _spurious_text(o: Orthonormal) -> str:
    n = o.n_spurious
    return f"{n} at loss {', '.join(f'{v:.4g}' for v in o.spurious_losses)}" if n else "0"


def _tables(ortho: list[Orthonormal], escape: Escape, k1: list[SingleUnit], sgd: Sgd) -> dict:
    by_k = {key: [] for key in ("K", "saddle_theory", "saddle_full_flow", "saddle_reduced_flow", "saddle_abs_error",
                                "saddle_newton_step", "saddle_verdict", "saddle_loss", "reduced_vs_full_max_deviation",
                                "symmetry_breaking_distance", "noisy_runs", "noisy_finite", "reached", "p", "se",
                                "ci_low", "ci_high", "local_minimum", "other_stationary", "still_moving", "verdict")}
    for o in ortho:
        p = o.reached or _NO_RUNS
        values = [o.K, o.theory, o.full_flow, o.reduced_flow, o.abs_error, o.newton_step, o.saddle_verdict,
                  o.saddle_loss, o.reduced_vs_full, o.symmetry_breaking_distance, o.n_noisy, o.n_noisy_finite,
                  p.successes, p.p, p.se, p.ci[0], p.ci[1], o.endings["local_minimum"],
                  o.endings["other_stationary"], o.endings["still_moving"], o.noisy_verdict]
        for key, v in zip(by_k, values):
            by_k[key].append(v)
    runs = [r for o in ortho for r in o.runs]
    noisy = {key: [getattr(r, key) for r in runs] for key in NoisyRun._fields} if runs else {}
    k1_table = {key: [] for key in ("dim", "epsilon", "radius", "bound", "starts", "finite", "reached", "p", "se",
                                    "ci_low", "ci_high", "margin", "still_moving", "verdict", "inside", "inside_p",
                                    "inside_se", "inside_exact")}
    for row in k1:
        c, i = row.reached.estimate, row.inside_ball
        values = [row.dim, row.epsilon, row.radius, row.bound, row.starts, row.finite, c.successes, c.p, c.se,
                  c.ci[0], c.ci[1], row.reached.margin, row.still_moving, row.verdict, i.successes, i.p, i.se,
                  row.inside_ball_exact]
        for key, v in zip(k1_table, values):
            k1_table[key].append(v)
    by_n = {"n": [e.n for e in sgd.by_n], "finite": [e.finite for e in sgd.by_n],
            "rms_from_gd": [_part(e.rms_gd, "value") for e in sgd.by_n],
            "rms_from_gd_se": [_part(e.rms_gd, "se") for e in sgd.by_n],
            "rms_from_flow": [_part(e.rms_flow, "value") for e in sgd.by_n],
            "rms_from_flow_se": [_part(e.rms_flow, "se") for e in sgd.by_n]}
    by_time = {"t": [], "n": [], "rms_from_gd": [], "rms_from_gd_se": [], "loss_median": [], "loss_q05": [],
               "loss_q95": [], "flow_loss": [], "gd_loss": []}
    for e in sgd.usable:
        for i, t in enumerate(sgd.times):
            by_time["t"].append(t)
            by_time["n"].append(e.n)
            by_time["rms_from_gd"].append(e.per_time[i].value)
            by_time["rms_from_gd_se"].append(e.per_time[i].se)
            by_time["loss_median"].append(float(np.median(e.loss[:, i])))
            by_time["loss_q05"].append(float(np.quantile(e.loss[:, i], 0.05)))
            by_time["loss_q95"].append(float(np.quantile(e.loss[:, i], 0.95)))
            by_time["flow_loss"].append(float(sgd.flow_loss[i]))
            by_time["gd_loss"].append(float(sgd.gd_loss[i]))
    tables = {"orthonormal_by_k": by_k, "escape_by_delta": {"delta": escape.deltas,
                                                            "time_near_saddle": escape.time_near_saddle},
              "k1_by_dim_epsilon": k1_table, "sgd_by_samples": by_n, "sgd_by_time": by_time}
    if noisy:
        tables["noisy_starts"] = noisy
    return tables


def _arrays(ortho: list[Orthonormal], escape: Escape, k1: list[SingleUnit], sgd: Sgd) -> dict:
    arrays = {}
    for o in ortho:
        arrays[f"noisy_final_K{o.K}"] = o.final
        arrays[f"noisy_distance_K{o.K}"] = o.distance
    arrays |= {"escape_deltas": escape.deltas, "escape_times": escape.times, "escape_distance": escape.distance}
    for d in sorted({row.dim for row in k1}):
        arrays[f"k1_reached_d{d}"] = np.stack([row.reached_mask for row in k1 if row.dim == d])
    arrays |= {"sgd_times": sgd.times, "gd_weights": sgd.gd, "flow_weights": sgd.flow}
    for e in sgd.by_n:
        arrays[f"sgd_weights_n{e.n}"] = e.weights
    return arrays


def _summary(config, ortho: list[Orthonormal], escape: Escape, k1: list[SingleUnit], sgd: Sgd,
             verdict: dict) -> list[str]:
    lines = [
        "Gradient flow on the closed-form population loss of a two-layer ReLU student learning a ReLU teacher "
        "from Gaussian inputs (Tian; docs/teacher-student.md), against the claims it is said to satisfy.",
        "",
        f"**Saddle value** ({verdict['saddle_value']}): the symmetric start ends at "
        + "; ".join(f"K = {o.K}: {o.full_flow:.7f} against {o.theory:.7f} (error {o.abs_error:.1e}, "
                    f"{o.abs_error_resolution} against the Newton step {o.newton_step:.1e})"
                    for o in ortho) + ".",
        f"**Symmetric start plus δ = {config.noise:g}** ({verdict['symmetric_plus_noise']}), reached W* up to a "
        "permutation by t = " + f"{config.t_max:g}: "
        + "; ".join(f"K = {o.K}: {_reached_text(o.reached)} (spurious local minima "
                    f"{_spurious_text(o)}, near a saddle {o.endings['other_stationary']}, still moving "
                    f"{o.endings['still_moving']})" for o in ortho) + ".",
    ]
    if escape.fit is not None:
        lines.append(f"**Time near the saddle** ({verdict['escape_time']}), K = {escape.K}: slope "
                     f"{escape.fit.slope:.4f} ± {escape.fit.slope_se:.4f} in log(1/δ) against 1/λ = "
                     f"{1.0 / escape.unstable_rate:.4f} (relative difference "
                     f"{escape.relative_difference:+.2%}).")
    worst = min(k1, key=lambda row: row.reached.margin)
    c = worst.reached.estimate
    lines.append(f"**K = 1 bound (1 − ε)/2** ({verdict['k1_bound']}): smallest margin p̂ − bound = "
                 f"{worst.reached.margin:.3f} ± {c.se:.3f} at d = {worst.dim}, ε = {worst.epsilon:g} "
                 f"(p̂ = {c.p:.4f}, 95% CI [{c.ci[0]:.4f}, {c.ci[1]:.4f}], bound {worst.bound:.3f}); "
                 f"{sum(r.still_moving for r in k1)} "
                 f"runs still moving at t = {config.k1_time:g}.")
    if sgd.fit is not None:
        lo, hi = sgd.fit.slope_ci
        lines.append(f"**SGD noise** ({verdict['sgd_noise']}): RMS(SGD − GD) ∝ n^{sgd.fit.slope:.3f} ± "
                     f"{sgd.fit.slope_se:.3f} (95% CI [{lo:.3f}, {hi:.3f}], predicted −1/2 within "
                     f"±{SGD_SLOPE_TOLERANCE}); gradient descent with η = {config.step:g} is "
                     f"{sgd.gd_rms_deviation_from_flow:.2e} (RMS) from the flow; at n = {config.sgd_samples[-1]} "
                     f"the SGD mean is {sgd.mean_gap_to_limit_z:.1f} SE from the flow "
                     f"({sgd.mean_gap_to_limit_resolution}) and {sgd.mean_gap_to_gd_z:.1f} SE from gradient "
                     f"descent ({sgd.mean_gap_to_gd_resolution}) at t = {config.sgd_time:g}.")
    return lines
