"""Soft committee machines after the plateau: the CLT of (Q, R) around the converged students, and the
noise floor of over-parameterised students measured on ensembles (docs/committee.md).

Run: ``python benchmarks/committee_fixed_point.py`` (about 5 minutes on 2 CPU cores).

1. After the escape: E students (K = M = 2, T = I, η = 1.5, σ = 0.1, D = 1000) from random starts
   w ~ N(0, ¼ I), through the plateau and its escape, to α = 150 and 200; put in the teachers' order
   (``canonical_order``) and compared with N(X*, Σ*/D), X* the ODE's fixed point and Σ* the
   stationary linear-noise covariance (J Σ* + Σ* Jᵀ + B = 0). Students still on the plateau are
   counted and reported; the verdict includes them.
2. The noise floor: for (M, L) = (2, 1) and (1, 1), at η and η/2, σ = 0.1, D = 500, students started
   at the ODE's fixed point; the late-time mean ε_g against ε_g(X*) (+ ½ tr(∇²ε_g Σ*)/D) and against
   ε* = (σ²η/2π)(L + M/√3). The formula is first order in η, so the comparison within standard
   error is of the extrapolation 2 r(η/2) − r(η) of the measured ratio r = ε_measured / ε* to η → 0.
"""

from __future__ import annotations

import argparse
import math
import time

import jax
import numpy as np

jax.config.update("jax_enable_x64", True)

from jaxlimit.training import committee_fixed_point as fpm  # noqa: E402
from jaxlimit.limits import committee as cm  # noqa: E402
from jaxlimit.stats.verdict import verdict_over_times  # noqa: E402
from jaxlimit.stats import Gaussian  # noqa: E402
from jaxlimit.streams import stream_key  # noqa: E402
from jaxlimit.training import committee as tc  # noqa: E402


def after_escape(D: int, E: int, alphas, seed: int):
    eta, sigma, s0, K = 1.5, 0.1, 0.5, 2
    T = np.eye(K)
    Q0, R0 = jax.vmap(lambda k: tc.gaussian_start_order_parameters(k, K, T, D, s0))(
        tc.student_keys(stream_key(seed, "starts"), np.arange(E)))
    runs = tc.train_order_parameters(Q0, R0, T, lr=eta, noise_std=sigma, D=D, alphas=alphas,
                                     root=stream_key(seed, "members"))
    fp = cm.specialised_fixed_point(K, 0, eta, sigma)
    S = cm.stationary_covariance(fp["Q"], fp["R"], T, eta, sigma)
    ok = runs["finite"]
    Q, R = fpm.canonical_order(runs["Q"][ok], runs["R"][ok])
    X = np.asarray(cm.flatten(jax.numpy.asarray(Q), jax.numpy.asarray(R)))
    X0 = np.asarray(cm.flatten(jax.numpy.asarray(fp["Q"]), jax.numpy.asarray(fp["R"])))
    A = len(alphas)
    law = Gaussian(np.broadcast_to(X0, (A, X0.size)), np.broadcast_to(S / D, (A, X0.size, X0.size)),
                   np.asarray(alphas))
    verdict = verdict_over_times(X, law, list(range(A)), times=alphas, seed=seed)
    plateau = cm.escape_rate(K, eta, sigma)["plateau_eps"]
    print(f"after the escape: D = {D}, {int(ok.sum())} students, ε_g(X*) = {fp['eps']:.4g}")
    for i, a in enumerate(alphas):
        c = verdict.comparisons[i]
        print(f"  α = {a:g}: {100 * np.mean(runs['eps'][ok][:, i] > plateau / 2):.1f} % still above ½ plateau; "
              f"mean ε_g {runs['eps'][ok][:, i].mean():.4g}; mean error {c.mean_error_z:.2f} SE, relative "
              f"covariance error {c.cov_rel_error:.3f}, {c.verdict}")
    print(f"  verdict: {verdict.verdict}")


def floor(M, L, eta, D, E, alpha_max, seed):
    out = []
    for lr in (eta, eta / 2):
        r = fpm.noise_floor_measurement(M, L, lr, 0.1, D, E, alpha_max, seed=seed)
        out.append(r)
        print(f"  M = {M}, L = {L}, η = {lr:g}: measured {r['measured']:.5g} ± {r['se']:.2g}; ODE fixed point "
              f"{r['ode_fixed_point']:.5g} (+ {r['curvature_shift']:.2g}): {r['z_ode']:+.2f} SE; ε* = "
              f"{r['goldt_formula']:.5g}: ratio {r['ratio_to_formula']:.4f} ({r['z_formula']:+.1f} SE)")
    r1, r2 = out
    ratio = lambda r: r["measured"] / r["goldt_formula"]  # noqa: E731
    se = lambda r: r["se"] / r["goldt_formula"]  # noqa: E731
    extrap = 2 * ratio(r2) - ratio(r1)
    extrap_se = math.sqrt(4 * se(r2) ** 2 + se(r1) ** 2)
    print(f"  extrapolated to η → 0: 2 r(η/2) − r(η) = {extrap:.4f} ± {extrap_se:.4f} "
          f"({(extrap - 1) / extrap_se:+.2f} SE from 1)")


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--dim", type=int, default=1000)
    p.add_argument("--ensemble", type=int, default=300)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    start = time.perf_counter()
    after_escape(args.dim, args.ensemble, [150.0, 200.0], args.seed)
    print(f"({time.perf_counter() - start:.0f} s)")
    for M, L, eta in ((2, 1, 0.1), (1, 1, 0.2)):
        floor(M, L, eta, 500, args.ensemble, 50.0, args.seed)
        print(f"({time.perf_counter() - start:.0f} s)")


if __name__ == "__main__":
    main()
