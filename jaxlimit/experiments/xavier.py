"""``jaxlimit xavier``: is an ensemble of γ = 1/2 networks Gaussian as the limit predicts?

E networks of width N are trained by online SGD; the limit of THEORY §2 gives
the law of the outputs at every time, N(mean_t, cov_t), and each network's own
limit path from its initial outputs. The report compares the two.

Why the defaults (width 1024, 2048 members, 4 training and 2 probe points in
d = 8, t ≤ 2) give an honest "consistent":

* The initial outputs of a width-N network have exactly mean 0 and
  covariance Σ; their first departure from N(0, Σ) is a fourth cumulant of
  order 1/N. In Mardia's kurtosis that is κ/N with κ computed from the kernel
  (:func:`~jaxlimit.limits.xavier.initial_kurtosis_excess`; κ ≈ 76 here),
  against a standard error √(8P(P+2)/E) ≈ 0.43: 0.17 standard errors. The
  report gives this ratio as ``finite_width_effect_z`` for every run. With
  4096 members the tests do resolve it where the ratio is large: ``jaxlimit
  sweep xavier --widths 16,32,64,128,256 --ensemble 4096`` rejects widths 16
  and 32 (ratios 15 and 8) and accepts 64 (ratio 3.9) and up: the verdict's
  tests are less sensitive to kurtosis than Mardia's test, so the ratio is a
  conservative guide.
* During training, kernel fluctuations, parameter drift and SGD noise move
  each network O(N^{-1/2}) from its limit path (``pathwise_max_error``); the
  moments of the law move only O(1/N) (the leading cross terms vanish for
  mean-zero c), which the coupling estimates with the Monte Carlo noise of the
  initial draw removed (``bures_w2_coupled``, next to the level that noise
  alone gives, ``bures_w2_coupled_noise``).
* The limit covariance shrinks like e^{−βAt} (β = α/M) while those
  finite-width errors do not, so at late times the comparison, which whitens
  by the predicted covariance, eventually resolves them in the shrinking
  directions. On the default problem with width 256 and 4096 members the
  verdict turns inconsistent from t ≈ 9 (the per-coordinate effect sizes
  stay below 2 standard errors; the whitened tests see it first). The
  verdict therefore uses t = 0, t_max/2 and t_max = 2 (Bonferroni over the
  three, each :func:`~jaxlimit.stats.compare_gaussian` call at level/3), and
  the ``effects`` figure shows p-values and effect sizes at every saved time.

The global minimum: when A ≻ 0 the limit's training loss decays at a rate of
at least 2αλ_min/M. A few extra networks of the same width are trained long
enough for that bound to promise a hundredfold drop (at most ``--long-time``)
and plotted against the limit's loss.
"""

from __future__ import annotations

import argparse
import dataclasses
import math

import jax
import jax.numpy as jnp
import numpy as np
from matplotlib.figure import Figure
from scipy import stats as sps

from jaxlimit.errors import InputError
from jaxlimit.experiments.common import (
    add_output_arguments, add_problem_arguments, build_problem, ensemble_options,
    float_list, nonnegative_int, positive_float, require, timed,
)
from jaxlimit.limits.xavier import XavierLimit, initial_kurtosis_excess, xavier_limit
from jaxlimit.models.two_layer import resolve_gamma
from jaxlimit.report import Report
from jaxlimit.stats import Gaussian, GaussianComparison, compare_gaussian, gaussian_w2
from jaxlimit.training import run_ensemble

NAME = "xavier"
HELP = "compare γ=1/2 networks with their Gaussian infinite-width limit (THEORY §2)"

DEFAULTS = {"width": 1024, "ensemble": 2048, "t_max": 2.0, "points": 4, "dim": 8, "probes": 2}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_problem_arguments(parser, **DEFAULTS)
    add_verdict_arguments(parser)
    g = parser.add_argument_group("global minimum")
    g.add_argument("--long-members", type=nonnegative_int, default=16,
                   help="networks trained to the long time to show the global minimum; 0 skips "
                        "(default: %(default)s)")
    g.add_argument("--long-time", type=positive_float, default=40.0,
                   help="the longest time for the global-minimum run; it stops earlier once the "
                        "kernel bound promises a hundredfold loss drop (default: %(default)s)")
    add_output_arguments(parser, "report-xavier")


def add_verdict_arguments(parser: argparse.ArgumentParser) -> None:
    g = parser.add_argument_group("verdict")
    g.add_argument("--compare-times", type=float_list, default=None,
                   help="times where the verdict is taken, Bonferroni-corrected over them "
                        "(default: 0, t_max/2 and t_max)")
    g.add_argument("--level", type=positive_float, default=0.05,
                   help="false-alarm rate of the whole verdict (default: 0.05)")


# Statistics shared with the sweep --------------------------------------------


def gaussian_limit_verdict(
    outputs: np.ndarray,
    mean: np.ndarray,
    cov: np.ndarray,
    indices,
    *,
    level: float = 0.05,
    seed: int = 0,
) -> tuple[str, list[GaussianComparison]]:
    """One verdict over several times: each time is compared at level/K.

    Args:
        outputs: ensemble outputs, shape (E, T, P), finite members only.
        mean, cov: the limit's moments, shapes (T, P) and (T, P, P).
        indices: the K time indices the verdict uses.
        level: the false-alarm rate of the combined verdict (Bonferroni; the
            times share members, so the true rate is at most this).

    Returns:
        ("consistent" or "inconsistent", the K comparisons).
    """
    indices = list(indices)
    require(len(indices) >= 1, "the verdict needs at least one time")
    require(0.0 < level < 1.0, f"level must lie in (0, 1), got {level}")
    each = level / len(indices)
    comparisons = [
        compare_gaussian(outputs[:, i], Gaussian(np.asarray(mean[i]), np.asarray(cov[i])),
                         seed=seed + int(i), level=each)
        for i in indices
    ]
    verdict = "consistent" if all(c.consistent for c in comparisons) else "inconsistent"
    return verdict, comparisons


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


def pathwise_error(outputs: np.ndarray, paths: np.ndarray) -> PathwiseError:
    """Compare each network with its own limit path; both of shape (E, T, P)."""
    gap = np.abs(np.asarray(outputs, np.float64) - np.asarray(paths, np.float64))
    worst = gap.max(axis=(1, 2))
    sq = worst**2
    rms = float(np.sqrt(sq.mean()))
    se = float(sq.std(ddof=1) / (2.0 * rms * math.sqrt(len(sq)))) if len(sq) > 1 and rms > 0 else float("nan")
    return PathwiseError(rms, se, np.sqrt(np.mean(gap.max(axis=2) ** 2, axis=0)))


def coupled_moments(outputs_t: np.ndarray, paths_t: np.ndarray, mean_t,
                    cov_t) -> tuple[np.ndarray, np.ndarray]:
    """Moments of the finite-width law at one time, estimated through the coupling.

    With Δ = h^N_t − h_t(h^N_0) and L = h_t(h^N_0): h^N_0 has exactly mean 0
    and covariance Σ at any width and the limit map is linear, so L has
    exactly the moments (mean_t, cov_t), and

        E h^N_t = mean_t + E Δ,   Cov h^N_t = cov_t + Cov(L, Δ) + Cov(Δ, L) + Cov(Δ).

    Estimating only the Δ terms from the ensemble removes the Monte Carlo
    noise of the initial draw (O(E^{-1/2})) and leaves noise of order
    |Δ| E^{-1/2} = O(N^{-1/2} E^{-1/2}).
    """
    x = np.asarray(outputs_t, np.float64)
    lim = np.asarray(paths_t, np.float64)
    delta = x - lim
    n = len(x)
    dc = delta - delta.mean(axis=0)
    lc = lim - lim.mean(axis=0)
    cross = lc.T @ dc
    cov_shift = (cross + cross.T + dc.T @ dc) / (n - 1)
    return np.asarray(mean_t) + delta.mean(axis=0), np.asarray(cov_t) + cov_shift


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
    m, c = coupled_moments(outputs_t, paths_t, mean_t, cov_t)
    value = gaussian_w2(m, c, mean_t, cov_t)
    rng = np.random.default_rng(seed)
    n = len(outputs_t)
    boots = []
    for _ in range(n_boot):
        idx = rng.integers(0, n, n)
        mb, cb = coupled_moments(outputs_t[idx], paths_t[idx], mean_t, cov_t)
        boots.append(gaussian_w2(mb, cb, mean_t, cov_t))
    boots = np.asarray(boots)
    noise = math.sqrt(max(float(np.mean(boots**2)) - value**2, 0.0))
    return CoupledBures(value, float(np.std(boots, ddof=1)), noise)


# The experiment ---------------------------------------------------------------


def check_problem(args: argparse.Namespace) -> list[str]:
    """Reject option combinations the Xavier limit does not describe; return warnings."""
    if args.loss != "squared":
        raise InputError("the Xavier limit is derived for the squared loss; use --loss squared")
    if args.init != "gaussian":
        raise InputError("the Xavier limit's kernels assume Gaussian initial weights; use --init gaussian")
    warnings = []
    if resolve_gamma(args.scaling) != 0.5:
        warnings.append(f"the networks use scaling {args.scaling}, but the Xavier limit describes "
                        "γ = 1/2: an inconsistent verdict is expected")
    return warnings


def run(args: argparse.Namespace) -> Report:
    timing: dict = {}
    warnings = check_problem(args)
    problem = build_problem(args)
    model, data = problem.model, problem.data
    n_points = data.n_train + data.n_probe
    require(args.ensemble >= n_points + 2,
            f"--ensemble must be at least P + 2 = {n_points + 2} to compare {n_points} outputs, "
            f"got {args.ensemble}")
    times, compare_idx = with_compare_times(problem.times, args.compare_times, args.t_max)

    with timed(timing, "limit"):
        limit = xavier_limit(data, model.activation, alpha=args.alpha, w_std=args.w_std, c_std=args.c_std)
        mean, cov = (np.asarray(a) for a in limit.moments(times))
        mean_cf, cov_cf = (np.asarray(a) for a in limit.moments_closed_form(times))
        conditioning = limit.conditioning()
        kappa, rank = initial_kurtosis_excess(jax.random.key(args.seed + 104729), data.x_all,
                                              model.activation, args.w_std)
    warnings += _conditioning_warnings(limit, conditioning)
    kurtosis_se = math.sqrt(8.0 * rank * (rank + 2) / args.ensemble)
    effect_z = kappa / model.width / kurtosis_se
    if effect_z > 1.0:
        warnings.append(
            f"at width {model.width} the leading finite-width effect (excess kurtosis κ/N = "
            f"{kappa / model.width:.3g}) is {effect_z:.1f} standard errors for {args.ensemble} "
            "members: the tests can resolve finite width, so 'inconsistent' may mean 'not yet at the limit'"
        )

    with timed(timing, "ensemble"):
        result = run_ensemble(model, data, problem.trainer, times=times, **ensemble_options(args))
    ok = result.finite()
    if result.n_diverged:
        warnings.append(f"{result.n_diverged} of {result.n_members} members diverged; the limit never "
                        "does, so the verdict is inconsistent; statistics use the finite members")
    require(ok.n_members >= n_points + 2,
            f"only {ok.n_members} members stayed finite, too few to compare {n_points} outputs")

    with timed(timing, "comparison"):
        paths = np.asarray(limit.pathwise(ok.outputs[:, 0].astype(np.float64), times))
        path_err = pathwise_error(ok.outputs, paths)
        verdict, comparisons = gaussian_limit_verdict(ok.outputs, mean, cov, compare_idx,
                                                      level=args.level, seed=args.seed)
        if result.n_diverged:
            verdict = "inconsistent"
        every_time = [compare_gaussian(ok.outputs[:, i], Gaussian(mean[i], cov[i]), seed=args.seed + i)
                      for i in range(len(times))]
        last_idx = compare_idx[-1]
        bures_c = coupled_bures(ok.outputs[:, last_idx], paths[:, last_idx], mean[last_idx],
                                cov[last_idx], seed=args.seed)
        loss_limit = np.asarray(limit.train_loss(jnp.asarray(mean), jnp.asarray(cov)))

    long_run = None
    if args.long_members > 0 and not conditioning.singular:
        t_long = min(args.long_time, math.log(100.0) / conditioning.loss_decay_rate)
        with timed(timing, "global_minimum"):
            long_run = _global_minimum_run(args, problem, limit, t_long)
    elif args.long_members > 0:
        warnings.append("A is singular, so the training loss need not reach zero; the global-minimum "
                        "run is skipped")

    last = comparisons[-1]
    metrics = {
        "n_members": result.n_members,
        "n_diverged": result.n_diverged,
        "compare_times": [float(times[i]) for i in compare_idx],
        "mean_error": last.mean_error,
        "mean_error_z": last.mean_error_z,
        "cov_rel_error": last.cov_rel_error,
        "bures_w2": last.bures_w2,
        "bures_w2_coupled": bures_c.value,
        "bures_w2_coupled_se": bures_c.se,
        "bures_w2_coupled_noise": bures_c.noise,
        "mahalanobis_ks_pvalue": last.mahalanobis_ks_pvalue,
        "min_pvalue": min(min(_pvalues(c)) for c in comparisons),
        "pathwise_max_error": path_err.rms,
        "pathwise_max_error_se": path_err.se,
        "kernel_min_eigenvalue": conditioning.min_eigenvalue,
        "kernel_max_eigenvalue": conditioning.max_eigenvalue,
        "kernel_condition_number": conditioning.condition_number,
        "kernel_singular": conditioning.singular,
        "kernel_method": limit.kernel_method,
        "kernel_max_error": limit.kernel_error,
        "loss_decay_rate_bound": conditioning.loss_decay_rate,
        "limit_ode_max_error": float(max(np.max(np.abs(mean - mean_cf)), np.max(np.abs(cov - cov_cf)))),
        "final_train_loss_limit": float(loss_limit[-1]),
        "final_train_loss_ensemble": float(np.mean(ok.loss[:, -1])),
        "final_train_loss_ensemble_se": float(np.std(ok.loss[:, -1], ddof=1) / math.sqrt(ok.n_members)),
        "initial_train_loss_limit": float(loss_limit[0]),
        "kurtosis_excess_per_width": kappa,
        "finite_width_kurtosis_excess": kappa / model.width,
        "kurtosis_se": kurtosis_se,
        "finite_width_effect_z": effect_z,
        "cov_rel_error_null": covariance_error_null(cov[last_idx], ok.n_members),
        "bures_w2_null": bures_null_size(mean[last_idx], cov[last_idx], ok.n_members, seed=args.seed),
        **{f"{key}_at_compare_times": [getattr(c, key) for c in comparisons] for key in _PER_TIME_KEYS},
        "mean_error_z_by_time": [c.mean_error_z for c in every_time],
        "cov_rel_error_by_time": [c.cov_rel_error for c in every_time],
        "bures_w2_by_time": [c.bures_w2 for c in every_time],
        "pathwise_error_by_time": path_err.per_time,
    }
    if long_run is not None:
        metrics.update(long_run["metrics"])
    figures = {
        "trajectories": _trajectory_figure(ok, mean, cov, data),
        "marginal": _marginal_figure(ok, mean, cov, data),
        "loss": _loss_figure(ok, loss_limit, long_run, conditioning),
        "effects": _effects_figure(times, every_time, cov, compare_idx, path_err, args.level),
    }
    config = dict(result.config)
    config["limit"] = {"kernel_method": limit.kernel_method, "alpha": args.alpha,
                       "w_std": args.w_std, "c_std": args.c_std, "ode": "diffrax Tsit5, rtol 1e-10"}
    config["verdict"] = {"compare_times": metrics["compare_times"], "level": args.level,
                         "correction": "Bonferroni over the compared times"}
    if long_run is not None:
        config["global_minimum"] = long_run["config"]
    summary = [
        f"{result.n_members} networks of width {model.width} (γ = {model.gamma}, {model.activation.name}) "
        f"trained by {problem.trainer.method} SGD to t = {times[-1]:g} on {data.name} "
        f"with {data.n_probe} probe points, against the Xavier Gaussian limit.",
        "",
        f"Verdict **{verdict}** at t = {', '.join(f'{t:g}' for t in metrics['compare_times'])} "
        f"(level {args.level}, Bonferroni over times). At t = {times[compare_idx[-1]]:g}: largest mean "
        f"error {last.mean_error:.3g} ({last.mean_error_z:.2f} standard errors), relative covariance "
        f"error {last.cov_rel_error:.3g} (Monte Carlo size {metrics['cov_rel_error_null']:.2g}), "
        f"Bures W2 {last.bures_w2:.3g} (Monte Carlo size {metrics['bures_w2_null']:.2g}).",
        f"Finite-width effect at t = 0 (excess kurtosis κ/N) in standard errors: {effect_z:.2f}. "
        f"Coupled estimate of the Bures distance (initial Monte Carlo noise removed): "
        f"{bures_c.value:.2g} ± {bures_c.se:.1g}, of which noise alone would give ≈ {bures_c.noise:.1g}.",
        f"Each network against its own limit path: RMS over members of the max error "
        f"{path_err.rms:.3g} ± {path_err.se:.1g} (O(N^-1/2)).",
        f"Kernel: λ_min(A) = {conditioning.min_eigenvalue:.3g}, condition number "
        f"{conditioning.condition_number:.3g}; training loss at t = {times[-1]:g}: limit "
        f"{loss_limit[-1]:.4g}, ensemble {metrics['final_train_loss_ensemble']:.4g}.",
    ]
    if long_run is not None:
        summary.append(long_run["summary"])
    return Report(experiment=NAME, config=config, metrics=metrics, verdict={"gaussian_limit": verdict},
                  timing=timing, figures=figures, summary=summary, warnings=warnings)


def with_compare_times(times: np.ndarray, compare, t_max: float) -> tuple[np.ndarray, list[int]]:
    """Merge the compared times into the saved grid; return the grid and their indices."""
    if compare is None:
        compare = [0.0, t_max / 2.0, t_max]
    compare = sorted(set(round(float(t), 12) for t in compare))
    require(all(0.0 <= t <= t_max for t in compare),
            f"--compare-times must lie in [0, t_max = {t_max:g}], got {compare}")
    grid = np.unique(np.concatenate([times, compare]))
    return grid, [int(np.searchsorted(grid, t)) for t in compare]


def _conditioning_warnings(limit: XavierLimit, cond) -> list[str]:
    out = []
    if cond.singular:
        out.append(f"the training kernel A is singular (λ_min = {cond.min_eigenvalue:.3g}, λ_max = "
                   f"{cond.max_eigenvalue:.3g}): the limit's training loss need not go to zero "
                   "(with no bias and an odd activation, antipodal inputs x and −x do this)")
    elif cond.condition_number > 1e6:
        out.append(f"the training kernel A is badly conditioned (condition number "
                   f"{cond.condition_number:.3g}): the loss converges at rate ≥ "
                   f"{cond.loss_decay_rate:.3g} only")
    if limit.kernel_error > 1e-6:
        out.append(f"the kernels were computed by {limit.kernel_method} with estimated error up to "
                   f"{limit.kernel_error:.2g}")
    return out


def bures_null_size(mean, cov, n_samples: int, *, reps: int = 20, seed: int = 0) -> float:
    """The Monte Carlo size of ``bures_w2`` for a perfect prediction.

    The RMS, over ``reps`` simulated ensembles of ``n_samples`` exact draws
    from N(mean, cov), of the Gaussian W2 between their sample moments and
    (mean, cov): the distance a raw comparison shows at any width.
    """
    rng = np.random.default_rng(seed)
    mean, cov = np.asarray(mean, np.float64), np.asarray(cov, np.float64)
    d2 = []
    for _ in range(reps):
        x = rng.multivariate_normal(mean, cov, size=n_samples, method="eigh")
        d2.append(gaussian_w2(x.mean(axis=0), np.cov(x, rowvar=False), mean, cov) ** 2)
    return float(math.sqrt(np.mean(d2)))


_PER_TIME_KEYS = ("mean_error_z", "cov_rel_error", "bures_w2", "mean_pvalue", "mahalanobis_ks_pvalue",
                  "marginal_ks_pvalue", "energy_pvalue", "mardia_kurtosis_pvalue", "verdict")


def covariance_error_null(cov: np.ndarray, n_samples: int) -> float:
    """The Monte Carlo size of ``cov_rel_error`` for exact Gaussian samples.

    For E draws of N(μ, C) the unbiased sample covariance has
    E‖Ĉ − C‖_F² = ((tr C)² + ‖C‖_F²)/(E − 1) (Wishart), so a relative error
    near sqrt of that over ‖C‖_F is what a perfect prediction shows.
    """
    cov = np.asarray(cov, np.float64)
    fro = float(np.linalg.norm(cov))
    return math.sqrt((np.trace(cov) ** 2 + fro**2) / (n_samples - 1)) / fro if fro > 0 else float("nan")


def _pvalues(c: GaussianComparison) -> list[float]:
    return [c.mean_pvalue, c.mahalanobis_ks_pvalue, c.marginal_ks_pvalue, c.energy_pvalue]


def _global_minimum_run(args, problem, limit: XavierLimit, t_long: float) -> dict:
    """A few more networks of the same width trained to ``t_long`` (members with new seeds)."""
    n = args.long_members
    times = np.round(np.linspace(0.0, t_long, 41), 12)
    result = run_ensemble(problem.model, problem.data, problem.trainer, times=times, n_members=n,
                          seed=args.seed + 1, progress=not args.no_progress)
    ok = result.finite()
    # The closed form (checked against diffrax in the main comparison) spares a recompilation.
    mean, cov = limit.moments_closed_form(times)
    loss_limit = np.asarray(limit.train_loss(mean, cov))
    loss_ens = ok.loss.mean(axis=0) if ok.n_members else np.full(len(times), np.nan)
    metrics = {
        "global_min_time": float(t_long),
        "global_min_members": n,
        "global_min_diverged": result.n_diverged,
        "global_min_train_loss_limit": float(loss_limit[-1]),
        "global_min_train_loss_ensemble": float(loss_ens[-1]),
        "global_min_loss_drop_limit": float(loss_limit[-1] / loss_limit[0]),
        "global_min_loss_drop_ensemble": float(loss_ens[-1] / loss_ens[0]),
    }
    summary = (f"Global minimum: {n} more networks trained to t = {t_long:.3g} reach mean training loss "
               f"{loss_ens[-1]:.3g} (limit {loss_limit[-1]:.3g}, started at {loss_limit[0]:.3g}); A ≻ 0 "
               f"promises decay at rate ≥ {limit.conditioning().loss_decay_rate:.3g}.")
    return {"metrics": metrics, "summary": summary, "times": times, "loss_limit": loss_limit,
            "loss_members": ok.loss, "config": {"time": float(t_long), "members": n, "seed": args.seed + 1}}


# Figures ----------------------------------------------------------------------


def _point_label(j: int, n_train: int) -> str:
    return f"training point {j}" if j < n_train else f"probe {j - n_train}"


def _trajectory_figure(ok, mean, cov, data) -> Figure:
    p = mean.shape[1]
    cols = min(4, p)
    rows = -(-p // cols)
    fig = Figure(figsize=(3.2 * cols, 2.6 * rows), layout="constrained")
    axes = np.atleast_1d(fig.subplots(rows, cols, sharex=True, squeeze=False)).ravel()
    t = ok.times
    emp_mean, emp_std = ok.outputs.mean(axis=0), ok.outputs.std(axis=0)
    sd = np.sqrt(np.clip(np.diagonal(cov, axis1=1, axis2=2), 0.0, None))
    y = np.asarray(data.y_train)
    for j in range(p):
        ax = axes[j]
        ax.fill_between(t, emp_mean[:, j] - emp_std[:, j], emp_mean[:, j] + emp_std[:, j],
                        color="C0", alpha=0.25, label="ensemble ± sd")
        ax.plot(t, emp_mean[:, j], color="C0", lw=2, label="ensemble mean")
        ax.plot(t, mean[:, j], "k--", lw=1.2, label="limit mean")
        ax.plot(t, mean[:, j] - sd[:, j], "k:", lw=1)
        ax.plot(t, mean[:, j] + sd[:, j], "k:", lw=1, label="limit ± sd")
        if j < data.n_train:
            ax.axhline(y[j], color="C3", lw=0.8, alpha=0.7, label="target")
        ax.set_title(_point_label(j, data.n_train), fontsize=9)
        ax.set_xlabel("t")
    for ax in axes[p:]:
        ax.set_visible(False)
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncol=len(labels), fontsize=8)
    fig.suptitle(f"{ok.n_members} networks against the Xavier limit: mean and spread over time")
    return fig


def _marginal_figure(ok, mean, cov, data) -> Figure:
    # A probe point if there is one: it checks predictions off the training set.
    j = data.n_train if data.n_probe else 0
    fig = Figure(figsize=(10, 4), layout="constrained")
    axes = fig.subplots(1, 2)
    for k, (ti, colour) in enumerate(((0, "C7"), (len(ok.times) - 1, "C0"))):
        x = ok.outputs[:, ti, j].astype(np.float64)
        mu, sd = float(mean[ti, j]), float(math.sqrt(max(cov[ti, j, j], 0.0)))
        bins = int(np.clip(1.5 * math.sqrt(len(x)), 15, 80))
        axes[0].hist(x, bins=bins, density=True, color=colour, alpha=0.45,
                     label=f"ensemble, t = {ok.times[ti]:g}")
        grid = np.linspace(mu - 4.5 * sd, mu + 4.5 * sd, 300)
        axes[0].plot(grid, sps.norm.pdf(grid, mu, sd), color="k" if k else "0.4", lw=1.5,
                     ls="-" if k else "--", label=f"limit density, t = {ok.times[ti]:g}")
        if k:
            q = np.sort(x)
            probs = (np.arange(1, len(q) + 1) - 0.5) / len(q)
            theory = mu + sd * sps.norm.ppf(probs)
            axes[1].plot(theory, q, ".", ms=2, color=colour, label=f"t = {ok.times[ti]:g}")
            lo, hi = theory[0], theory[-1]
            axes[1].plot([lo, hi], [lo, hi], "k-", lw=1, label="y = x")
    axes[0].set(xlabel="output", ylabel="density", title=f"{_point_label(j, data.n_train)}: histogram")
    axes[0].legend(fontsize=8)
    axes[1].set(xlabel="limit quantile", ylabel="ensemble quantile", title="QQ plot against the limit")
    axes[1].legend(fontsize=8)
    return fig


def _loss_figure(ok, loss_limit, long_run, conditioning) -> Figure:
    fig = Figure(figsize=(10 if long_run else 5.5, 4), layout="constrained")
    axes = np.atleast_1d(fig.subplots(1, 2 if long_run else 1))
    ax = axes[0]
    ax.fill_between(ok.times, np.quantile(ok.loss, 0.1, axis=0), np.quantile(ok.loss, 0.9, axis=0),
                    color="C0", alpha=0.2, label="ensemble 10–90%")
    ax.plot(ok.times, ok.loss.mean(axis=0), color="C0", lw=2, label="ensemble mean")
    ax.plot(ok.times, loss_limit, "k--", label="limit (expected)")
    ax.set(xlabel="t", ylabel="training loss", title="training loss", yscale="log")
    ax.legend(fontsize=8)
    if long_run:
        ax = axes[1]
        t, members = long_run["times"], long_run["loss_members"]
        for row in members:
            ax.plot(t, row, color="C0", lw=0.6, alpha=0.35)
        ax.plot(t, members.mean(axis=0), color="C0", lw=2, label=f"{len(members)} networks (mean, members)")
        ax.plot(t, long_run["loss_limit"], "k--", label="limit (expected)")
        bound = long_run["loss_limit"][0] * np.exp(-conditioning.loss_decay_rate * t)
        ax.plot(t, bound, color="C3", lw=1, ls=":", label=r"bound $e^{-2\alpha\lambda_{\min} t/M}$")
        ax.set(xlabel="t", ylabel="training loss", yscale="log", title="global minimum: loss → 0")
        ax.legend(fontsize=8)
    return fig


def _effects_figure(times, every_time, cov, compare_idx, path_err, level) -> Figure:
    fig = Figure(figsize=(11, 3.8), layout="constrained")
    ax1, ax2, ax3 = fig.subplots(1, 3)
    names = ["mean", "Mahalanobis KS", "marginal KS", "energy"]
    for k, name in enumerate(names):
        ax1.semilogy(times, [max(_pvalues(c)[k], 1e-16) for c in every_time], marker=".", label=name)
    threshold = level / (every_time[0].n_tests * len(compare_idx))
    ax1.axhline(threshold, color="k", lw=1, ls="--", label="rejection threshold")
    for i in compare_idx:
        ax1.axvline(times[i], color="0.7", lw=0.8)
    ax1.set(xlabel="t", ylabel="p-value", title="tests at every saved time (grey: verdict times)")
    ax1.legend(fontsize=7)
    n = every_time[0].n_samples
    ax2.plot(times, [c.mean_error_z for c in every_time], marker=".", label="max mean error / its SE")
    ax2.plot(times, [c.cov_rel_error / covariance_error_null(cv, n) for c, cv in zip(every_time, cov)],
             marker=".", label="cov. rel. error / its null size")
    ax2.axhline(1.0, color="0.6", lw=0.8)
    ax2.set(xlabel="t", title="effect sizes in Monte Carlo units", ylim=(0, None))
    ax2.legend(fontsize=8)
    ax3.plot(times, path_err.per_time, marker=".")
    ax3.set(xlabel="t", ylabel="RMS over members of max over points",
            title="each network vs its own limit path")
    return fig
