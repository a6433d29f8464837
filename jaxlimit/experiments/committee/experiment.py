"""``jaxlimit committee``: config → students (exact order-parameter chain) → ODE and linear noise →
comparison → Report (docs/committee.md).

1. The limit: the order-parameter ODEs from the mean start (Q̄, R̄) = (s² I, 0) and the
   linear-noise covariance Σ(α)/D of (ε_g, Q, R), started from the random start's Σ(0).
2. The students: E students from w ~ N(0, s² I_D) against an orthonormalised teacher with overlaps
   T, simulated by the exact Markov chain of (Q, R) (jaxlimit.training.committee; O((K+M)³) per
   step whatever D; the direct D-dimensional simulation agrees with it in law, tests/test_committee.py).
3. The verdict ``fluctuations_before_escape``: the CLT of (Q, R) against the predicted Gaussian
   at the compared times (Bonferroni, each a calibrated compare_gaussian), chosen before the
   plateau's escape: the mean path from the symmetric start stays on the plateau while each student
   leaves it at a random time ≈ ln D/(2λ), where the expansion fails (docs/committee.md).
4. Measured, reported with the prediction: the plateau height, λ, the escape times against
   ln D/(2λ), η_max and the asymptotic rate (K = M, T = I), the noise floor (K > M, T = I, σ > 0).
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np

from jaxlimit.errors import InputError
from jaxlimit.experiments.committee import figures
from jaxlimit.experiments.committee.config import SAVED_TIMES, CommitteeConfig
from jaxlimit.experiments.problem import timed
from jaxlimit.limits import committee as cm
from jaxlimit.report import Report
from jaxlimit.stats import median_estimate
from jaxlimit.stats.verdict import resolution, verdict_over_times
from jaxlimit.streams import stream_key
from jaxlimit.training import committee as tc

ESCAPE_FRACTION = 0.5
"""A student has escaped the plateau once its ε_g falls below this fraction of the plateau height."""
COMPARE_FRACTION = 0.25
"""The last compared time is this fraction of the predicted plateau length ln D/(2λ): the unstable
mode's variance e^{2λα}/D is then D^{-3/4} of its O(1) escape size."""


def teacher_overlaps(M: int, c: float) -> np.ndarray:
    return (1.0 - c) * np.eye(M) + c * np.ones((M, M))


def run(config: CommitteeConfig) -> Report:
    if not jax.config.jax_enable_x64:
        raise InputError("committee integrates its ODEs in float64; enable it first with "
                         "jax.config.update('jax_enable_x64', True) (the command line does)")
    K, M, D, eta, sigma, s0 = (config.students, config.teachers, config.dim, config.alpha, config.noise,
                               config.init_std)
    T = teacher_overlaps(M, config.teacher_overlap)
    timing: dict = {}
    warnings: list[str] = []
    metrics: dict = {}
    with timed(timing, "phenomena"):
        eta_max = cm.max_learning_rate(T)
        if eta >= eta_max:
            raise InputError(f"--alpha {eta:g} is at or above η_max = {eta_max:.4g}, where the perfect student "
                             "becomes unstable; choose a smaller --alpha")
        metrics["eta_max"] = eta_max
        metrics["asymptotic_rate"] = cm.convergence_rate(T, eta)
        plateau = None
        if K == M and config.teacher_overlap == 0.0 and K >= 2:
            plateau = cm.escape_rate(K, eta, sigma)
            plateau["plateau_eps_small_lr_theory"] = cm.plateau_theory(K)["eps"]
            plateau["plateau_length_prediction"] = cm.plateau_length(D, plateau["escape_rate"])
            metrics["plateau"] = plateau
        if K > M and config.teacher_overlap == 0.0 and sigma > 0:
            fp = cm.specialised_fixed_point(M, K - M, eta, sigma)
            theory = cm.noise_floor_theory(M, K - M, eta, sigma)
            metrics["noise_floor"] = {"ode_fixed_point_eps": fp["eps"], "goldt_formula": theory,
                                      "ratio": fp["eps"] / theory, "fixed_point_stable": fp["leading_eigenvalue"] < 0}

    if plateau is not None:
        last = min(COMPARE_FRACTION * plateau["plateau_length_prediction"], config.alpha_max)
    else:
        last = config.alpha_max / 10
    compare = sorted({round(last / 4, 6), round(last, 6)})
    times = np.unique(np.concatenate([np.linspace(0.0, config.alpha_max, SAVED_TIMES + 1), compare]))
    idx = [int(np.searchsorted(times, a)) for a in compare]

    with timed(timing, "limit"):
        ode = cm.committee_ode(s0**2 * np.eye(K), np.zeros((K, M)), T, lr=eta, noise_std=sigma, dim=D,
                               initial_cov=cm.gaussian_start_covariance(K, T, s0))
        law = ode.predict(times)

    with timed(timing, "students"):
        ids = np.arange(config.ensemble)
        Q0, R0 = jax.vmap(lambda k: tc.gaussian_start_order_parameters(k, K, T, D, s0))(
            tc.student_keys(stream_key(config.seed, "starts"), ids))
        runs = tc.train_order_parameters(Q0, R0, T, lr=eta, noise_std=sigma, D=D, alphas=times,
                                         root=stream_key(config.seed, "members"))
    finite = runs["finite"]
    if not finite.all():
        warnings.append(f"{int((~finite).sum())} of {config.ensemble} students diverged and are excluded")
    if finite.sum() < 20:
        raise InputError("fewer than 20 students stayed finite; reduce --alpha")
    X = np.asarray(cm.flatten(jnp.asarray(runs["Q"][finite]), jnp.asarray(runs["R"][finite])))
    outputs = np.concatenate([runs["eps"][finite][..., None], X], axis=-1)  # (E, A, P)

    with timed(timing, "comparison"):
        # (Q, R) only: ε_g is a function of them, so (ε_g, Q, R)'s predicted covariance is singular
        # along ε_g − ∇ε_g·X, a direction the students leave by O(1/D) second-order terms
        coords = np.arange(1, outputs.shape[-1])
        tv = verdict_over_times(outputs[..., 1:], law.select(coords), idx, times=times, level=config.level,
                                seed=config.seed)
    names = cm.observable_names(K, M)
    mean = np.asarray(law.mean)
    sd = np.sqrt(np.clip(np.diagonal(np.asarray(law.cov), axis1=-2, axis2=-1), 0, None))
    ens_mean = outputs.mean(0)
    ens_se = outputs.std(0, ddof=1) / math.sqrt(outputs.shape[0])
    metrics["compared_times"] = [float(times[i]) for i in idx]
    metrics["fluctuations"] = tv.as_dict()
    metrics["mean_gap_eps_at_compared_times"] = [
        {"alpha": float(times[i]), "gap": float(ens_mean[i, 0] - mean[i, 0]), "se": float(ens_se[i, 0]),
         "resolution": resolution(float(ens_mean[i, 0] - mean[i, 0]), float(ens_se[i, 0])),
         "predicted_sd_of_one_student": float(sd[i, 0])} for i in idx]
    metrics["students"] = int(finite.sum())
    metrics["observables"] = names
    metrics["simulation"] = "exact order-parameter Markov chain (O((K+M)^3) per step, any D)"

    escape = None
    if plateau is not None:
        thresh = ESCAPE_FRACTION * plateau["plateau_eps"]
        eps = runs["eps"][finite]
        after = times >= last
        below = (eps < thresh) & after[None, :]
        escaped = below.any(axis=1)
        first = np.where(escaped, times[np.argmax(below, axis=1)], np.inf)  # +inf: not escaped by α_max
        med = median_estimate(first)  # over all students, the censored ones counted as later than any
        escape = {"threshold_eps": thresh, "fraction_escaped": float(escaped.mean()),
                  "median": med.value if np.isfinite(med.value) else None,
                  "median_interval": [v if np.isfinite(v) else None for v in med.interval],
                  "quartiles": [float(q) if np.isfinite(q) else None
                                for q in np.quantile(first, [0.25, 0.75], method="lower")],
                  "predicted_ln_D_over_2_lambda": plateau["plateau_length_prediction"],
                  "resolution_in_alpha": float(times[1] - times[0]), "times": first}
        metrics["escape"] = {k: v for k, v in escape.items() if k != "times"}
        plateau_idx = int(np.searchsorted(times, last))
        metrics["plateau"]["ode_eps_at_last_compared_time"] = float(mean[plateau_idx, 0])

    facts = dict(model=f"K = {K}, M = {M}, erf(·/√2) committee", members=int(finite.sum()),
                 data=f"online x ~ N(0, I_{D}), η = {eta:g}, σ = {sigma:g}")
    figs = {"committee": figures.committee_figure(times, outputs, mean, sd, names, compare, escape, facts)}
    tables = {"trajectory": {"alpha": times.tolist(), "ode_eps": mean[:, 0].tolist(),
                             "lna_sd_eps": sd[:, 0].tolist(), "ensemble_mean_eps": ens_mean[:, 0].tolist(),
                             "ensemble_se_eps": ens_se[:, 0].tolist()}}
    verdict = {"fluctuations_before_escape": tv.verdict}
    summary = [
        f"{int(finite.sum())} students, K = {K}, M = {M}, D = {D}, η = {eta:g}, σ = {sigma:g}, α ≤ {config.alpha_max:g} "
        "(exact order-parameter chain).",
        f"CLT of (Q, R) against the ODE ± linear noise at α = {', '.join(f'{a:g}' for a in compare)}: "
        f"**{tv.verdict}** (level {config.level:g}).",
        f"η_max = {eta_max:.4g}; asymptotic rate at Q = R = T: {metrics['asymptotic_rate']:.4g}.",
    ]
    if plateau is not None:
        summary.append(f"Plateau ε_g = {plateau['plateau_eps']:.5g} (η → 0: {plateau['plateau_eps_small_lr_theory']:.5g}); "
                       f"escape rate λ = {plateau['escape_rate']:.4g}; ln D/(2λ) = "
                       f"{plateau['plateau_length_prediction']:.3g}; measured median escape "
                       f"{escape['median'] if escape['median'] is None else round(escape['median'], 2)} "
                       f"({100 * escape['fraction_escaped']:.0f} % escaped by α = {config.alpha_max:g}).")
    if "noise_floor" in metrics:
        nf = metrics["noise_floor"]
        summary.append(f"Noise floor: ODE fixed point ε* = {nf['ode_fixed_point_eps']:.4g}, Goldt et al. "
                       f"(σ²η/2π)(L + M/√3) = {nf['goldt_formula']:.4g} (ratio {nf['ratio']:.3f}; O(η) apart).")
    return Report(
        experiment=config.NAME,
        config={"limit": "Saad–Solla / Goldt order-parameter ODEs (closed forms, diffrax Tsit5 through solve_ode) "
                         "with the linear-noise covariance Σ(α)/D",
                "students": "exact order-parameter Markov chain", "T": T.tolist()},
        metrics=metrics, verdict=verdict, timing=timing, figures=figs, tables=tables,
        arrays={"alpha": times, "outputs": outputs, "ode_mean": mean, "lna_sd": sd},
        summary=summary, warnings=warnings,
    )
