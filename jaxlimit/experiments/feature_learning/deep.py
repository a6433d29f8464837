"""``jaxlimit feature-learning`` at depth L ≥ 2, or with a smooth nonlinear φ: μP networks against the mean
of the deep DMFT (:func:`~jaxlimit.limits.dmft_deep.deep_dmft`, docs/feature-learning.md "Any depth").

The DMFT is solved in the networks' own discrete time (Euler steps dt of the flow dθ/dt = −η γ₀² N ∇L),
exactly for φ = identity and by sampling the single-site process for a smooth φ (with its Monte Carlo
standard error). Its finite-width O(1/N) covariance is not implemented there, so the verdict is on the
**mean only**: at every compared time t and point p,

    z_{t,p} = (m̂_{t,p} − μ_{t,p}) / √(ŝe_{t,p}² + se(μ_{t,p})²),

m̂ the ensemble mean with its standard error ŝe = sd/√E, μ the DMFT mean with its Monte Carlo error (zero
when exact), two-sided normal p-values Bonferroni-combined over the P points and the K compared times
(:func:`~jaxlimit.stats.compare.mean_test`, as :func:`~jaxlimit.stats.compare.compare` tests a
deterministic limit). The O(1/N) shift of the mean is not subtracted: at width N it is a bias of order 1/N
against a standard error of order 1/√(γ₀²NE), so a large ensemble at a small width resolves it (the sweep
measures its rate). The kernel arm's NTK movement is set against the DMFT's (the lazy limit: none).
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from jaxlimit.activations import get_activation
from jaxlimit.config import ConfigError
from jaxlimit.experiments.against_limit import finite_members
from jaxlimit.experiments.feature_learning import figures
from jaxlimit.experiments.feature_learning.experiment import (
    KernelMovement, compared_times, kernel_movement, movement_metrics, ntk_arm, problem, step_warning,
)
from jaxlimit.experiments.problem import ensemble_options, timed
from jaxlimit.limits import dmft_deep
from jaxlimit.limits.dmft_deep import KINKED, MAX_GRID, DeepDMFT
from jaxlimit.report import Report
from jaxlimit.stats.compare import MeanTest, mean_test
from jaxlimit.stats.nulls import max_abs_z_noise
from jaxlimit.stats.verdict import CONSISTENT, INCONSISTENT, resolution
from jaxlimit.streams import stream_seed
from jaxlimit.training import run_ensemble

NO_COVARIANCE = ("The covariance is not compared: the DMFT's finite-width O(1/N) covariance (Bordelon & Pehlevan "
                 "2023) is implemented only for two-layer linear networks, so at this depth and activation the "
                 "verdict is on the mean alone.")


def check_deep_dmft(config) -> None:
    """What :func:`deep_dmft` solves, checked before any computation: a smooth φ, an even number of sites,
    a grid of (steps + 1) × points ≤ ``MAX_GRID`` and every saved time on the step grid."""
    act = get_activation(config.activation)
    if act.name.startswith(KINKED):
        raise ConfigError("activation", f"{config.activation}: the DMFT at depth ≥ 2 or with a nonlinear φ needs "
                          "a smooth activation (φ′ without jumps: the solver's responses are pathwise derivatives)")
    if config.dmft_samples % 2:
        raise ConfigError("dmft_samples", f"must be even (antithetic pairs of sites), got {config.dmft_samples}")
    steps = int(round(config.t_max / config.step)) + 1
    m = config.points + config.probes
    if steps * m > MAX_GRID:
        raise ConfigError("step", f"{config.step:g} makes a DMFT grid of {steps} steps × {m} points = {steps * m} > "
                          f"{MAX_GRID}; use a larger --step, a smaller --t-max or fewer points")
    times, _ = compared_times(config)
    k = np.asarray(times) / config.step
    if np.any(np.abs(k - np.rint(k)) > 1e-9 * np.maximum(1.0, k)):
        raise ConfigError("n_times", f"and --compare-times must put every saved time on the step grid "
                          f"(multiples of --step {config.step:g}): the DMFT is solved on the networks' own steps")


def deep_limit(config, data) -> DeepDMFT:
    """The infinite-width DMFT on the networks' step grid up to t_max (one solve; it does not depend on N)."""
    return dmft_deep.deep_dmft(data.x_train, data.y_train, data.x_probe if data.n_probe else None,
                               depth=config.depth,
                               activation=config.activation, gamma0=config.gamma0, time_step=config.step,
                               t_max=config.t_max, learning_rate=config.alpha, samples=config.dmft_samples,
                               replicas=config.dmft_replicas, seed=stream_seed(config.seed, "dmft"))


@dataclasses.dataclass(frozen=True)
class MeanComparison:
    """The ensemble mean against the DMFT mean at every saved time.

    Attributes:
        verdict: consistent unless a mean test rejects at a compared time (level/K each, Bonferroni over P).
        level: the verdict's false-alarm rate.
        times: the compared times; ``tests`` their :class:`MeanTest`.
        z_by_time: at every saved time, max_p |z_{t,p}| (module docstring), (T,).
        pvalue_by_time: at every saved time, the smallest two-sided p-value over points, (T,).
        mean, mean_se: the ensemble mean and its standard error, (T, P).
        dmft_mean, dmft_se: the DMFT mean and its Monte Carlo standard error, (T, P).
    """

    verdict: str
    level: float
    times: tuple[float, ...]
    tests: tuple[MeanTest, ...]
    z_by_time: np.ndarray
    pvalue_by_time: np.ndarray
    mean: np.ndarray
    mean_se: np.ndarray
    dmft_mean: np.ndarray
    dmft_se: np.ndarray

    @property
    def threshold(self) -> float:
        """The per-test rejection threshold: level / (K · P)."""
        return self.level / (len(self.tests) * self.tests[0].n_tests)


def compare_mean(outputs: np.ndarray, sol: DeepDMFT, times, compare_idx, level: float) -> MeanComparison:
    """Outputs (E, T, P) of finite members at ``times`` against the DMFT mean (module docstring)."""
    k = sol.at(times)
    mu, se = sol.mean[k], sol.mean_se[k]
    each = level / len(compare_idx)
    every = [mean_test(outputs[:, i], mu[i], level=each, mean_se=se[i]) for i in range(len(times))]
    tests = tuple(every[i] for i in compare_idx)
    e = outputs.shape[0]
    return MeanComparison(
        verdict=CONSISTENT if all(t.consistent for t in tests) else INCONSISTENT, level=float(level),
        times=tuple(float(times[i]) for i in compare_idx), tests=tests,
        z_by_time=np.array([t.mean_error_z for t in every]), pvalue_by_time=np.array([t.smallest_pvalue for t in every]),
        mean=outputs.mean(axis=0), mean_se=outputs.std(axis=0, ddof=1) / math.sqrt(e), dmft_mean=mu, dmft_se=se)


def ntk_change(sol: DeepDMFT, k: int) -> tuple[float, float]:
    """‖K(k) − K(0)‖_F/‖K(0)‖_F of the DMFT's NTK and its Monte Carlo standard error (delta method, the
    entries' errors taken independent; zero when solved exactly)."""
    d = sol.ntk[k] - sol.ntk[0]
    norm0, normd = float(np.linalg.norm(sol.ntk[0])), float(np.linalg.norm(d))
    if sol.exact or normd == 0.0:
        return normd / norm0, 0.0
    var = np.sum((d / normd) ** 2 * (sol.ntk_se[k] ** 2 + sol.ntk_se[0] ** 2))
    return normd / norm0, float(math.sqrt(var)) / norm0


def run(config) -> Report:
    timing: dict = {}
    warnings: list[str] = []
    data, model, trainer, times, compare_idx = problem(config, config.width)
    with timed(timing, "limit"):
        sol = deep_limit(config, data)
    k = sol.at(times)
    warnings += step_warning(config, data.n_train, sol.ntk)
    with timed(timing, "ensemble"):
        result = run_ensemble(model, data, trainer, times=times, **ensemble_options(config))
    ok, too_few = finite_members("feature-learning", result, data.n_train + data.n_probe, warnings, timing)
    if too_few:
        return too_few
    with timed(timing, "comparison"):
        mc = compare_mean(np.asarray(ok.outputs, np.float64), sol, times, compare_idx, config.level)
    with timed(timing, "kernels"):
        arm = ntk_arm(config, model, data, trainer, times)
        movement = (kernel_movement(arm, sol.ntk[k], sol.ntk_se[k]) if arm is not None and len(arm) >= 2
                    else None)
    word = INCONSISTENT if result.n_diverged else mc.verdict
    change, change_se = ntk_change(sol, int(k[-1]))
    z_null = max_abs_z_noise(data.n_train + data.n_probe)
    last = compare_idx[-1]
    metrics = {
        "n_members": result.n_members,
        "n_diverged": result.n_diverged,
        "compare_times": list(mc.times),
        "covariance_compared": False,
        "dmft_exact": bool(sol.exact),
        "smallest_pvalue_by_time": [t.smallest_pvalue for t in mc.tests],
        "per_test_threshold": mc.threshold,
        "mean_error_z": float(mc.z_by_time[last]),
        "mean_error_z_null": z_null,
        "mean_error_resolution": resolution(float(mc.z_by_time[last]), z_null),
        "largest_mean_error_z": float(max(t.mean_error_z for t in mc.tests)),
        "mean_error_last": float(mc.tests[-1].mean_error),
        "dmft_mean_se_max": float(np.max(mc.dmft_se)),
        "dmft_ntk_change_final": change,
        "dmft_ntk_change_final_se": change_se,
        "lazy_ntk_change_final": 0.0,
        "final_train_loss_ensemble": float(np.mean(ok.loss[:, -1])),
    }
    metrics.update(movement_metrics(movement))
    facts = dict(depth=config.depth, width=config.width, parameterisation=f"μP, γ₀ = {config.gamma0:g}",
                 members=ok.n_members, data=data.name)
    figs = {"mean": figures.mean_figure(times, mc, z_null, facts)}
    tables = {"tests_by_time": {"t": times, "verdict_time": [i in compare_idx for i in range(len(times))],
                                "mean_error_z": mc.z_by_time, "smallest_pvalue": mc.pvalue_by_time,
                                "largest_dmft_mean_se": np.max(mc.dmft_se, axis=1)}}
    arrays = {"outputs": result.outputs, "loss": result.loss, "times": times, "diverged": result.diverged,
              "dmft_mean": mc.dmft_mean, "dmft_mean_se": mc.dmft_se, "dmft_ntk": sol.ntk[k],
              "dmft_ntk_se": sol.ntk_se[k]}
    if movement:
        figs["kernel"] = figures.kernel_figure(times, movement, facts)
        tables["kernel_by_time"] = {"t": times, "networks_change": movement.networks_change,
                                    "networks_change_se": movement.networks_change_se,
                                    "mean_ntk_change": movement.mean_change, "dmft_change": movement.dmft_change,
                                    "max_abs_z": movement.max_abs_z_by_time}
        arrays["empirical_ntk"] = arm
    return Report(experiment="feature-learning", config={"ensemble": result.config, "times": times.tolist(),
                                                         "dmft_sweeps": int(sol.sweeps)},
                  metrics=metrics, verdict={"dmft_mean": word}, timing=timing, figures=figs, tables=tables,
                  arrays=arrays, summary=_summary(config, result, data, times, sol, mc, movement, metrics, word),
                  warnings=warnings)


def _summary(config, result, data, times, sol: DeepDMFT, mc: MeanComparison, movement: KernelMovement | None,
             metrics: dict, word: str) -> list[str]:
    how = ("solved exactly (linear networks)" if sol.exact else
           f"sampled ({config.dmft_samples} sites per layer, {config.dmft_replicas} replicas; largest Monte "
           f"Carlo error of its mean {metrics['dmft_mean_se_max']:.2g})")
    summary = [
        f"{result.n_members} μP networks of depth {config.depth} and width {config.width} ({config.activation}, "
        f"γ₀ = {config.gamma0:g}) trained by gradient descent (η = {config.alpha:g}, dt = {config.step:g}) to "
        f"t = {times[-1]:g} on {data.name}, against the infinite-width DMFT mean on the same steps, {how} "
        "(docs/feature-learning.md, \"Any depth\").",
        "",
        NO_COVARIANCE,
        f"Verdict on the mean **{word}** at t = {', '.join(f'{t:g}' for t in mc.times)} (level {config.level}; "
        f"smallest p-values {', '.join(f'{t.smallest_pvalue:.3g}' for t in mc.tests)} against a per-test "
        f"threshold {mc.threshold:.2g}; z = (ensemble mean − DMFT mean)/√(SE² + SE_DMFT²)).",
        f"Largest |z| over points: " + ", ".join(f"{z:.2f} at t = {t:g}" for t, z in zip(mc.times,
                                                                                     (s.mean_error_z for s in mc.tests)))
        + f" (noise level {metrics['mean_error_z_null']:.2f}; {metrics['mean_error_resolution']} at the last). "
        "The mean's O(1/N) finite-width shift is not predicted here: a large ensemble at a small width can "
        "resolve it (`jaxlimit sweep feature-learning` measures its rate in N).",
        f"The DMFT's NTK moves by {metrics['dmft_ntk_change_final']:.3g}"
        + (f" ± {metrics['dmft_ntk_change_final_se']:.1g}" if not sol.exact else "")
        + f" (relative, by t = {times[-1]:g}); the lazy limit's does not move.",
    ]
    if movement:
        summary.append(
            f"NTK of {movement.n_members} networks: their mean moved by {movement.mean_change[-1]:.3g} "
            f"(DMFT {movement.dmft_change[-1]:.3g}), largest |mean − DMFT| {movement.max_abs_z_by_time[-1]:.2f} "
            f"standard errors at t = {times[-1]:g}; each network's own movement "
            f"{movement.networks_change[-1]:.3g} ± {movement.networks_change_se[-1]:.1g}.")
    return summary
