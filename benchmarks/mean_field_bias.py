"""The O(1/N) bias of mean-field networks, predicted through the solver and measured.

Run: ``python benchmarks/mean_field_bias.py`` (about 8 minutes on 2 CPU cores).

On the default problem of ``jaxlimit mean-field`` (γ = 1, tanh, full-batch
descent to t = 2) the mean output of width-N networks differs from the limit
h̄_t by b_t/N + O(N^-2), with two parts (``jaxlimit.limits.mean_field``,
"What the prediction neglects"):

* sampling: F_t(μ^N_0) is a nonlinear function of the empirical measure, so
  E F_t(μ^N_0) − F_t(μ_0) = (1/2N)(Σ_k m_k H_kk − mᵀHm), H the Hessian of the
  K-particle outputs with respect to the particle weights m. Σ_k m_k H_kk is
  estimated by Hutchinson's trick, E_v[uᵀHu] with u = √m ⊙ v and Rademacher
  v, each uᵀHu one nested ``jax.jvp`` through the solve;
* time step: full-batch descent is the Euler scheme (step 1/N) of the flow;
  N × (descent − flow of the same neurons) gives its coefficient.

The prediction is checked against ensembles at small widths, where b/N is
many standard errors: N × (ensemble mean − h̄) should match b up to the
O(1/N) corrections and the Monte Carlo error printed beside it. The last
table gives the bias at larger widths in standard errors of the √N-scaled
mean of E members, the resolution of the CLT verdict of ``jaxlimit
mean-field``.
"""

from __future__ import annotations

import argparse
import math
import time

import diffrax
import jax
import jax.numpy as jnp
import numpy as np

jax.config.update("jax_enable_x64", True)

from jaxlimit import Trainer, TwoLayer, run_ensemble  # noqa: E402
from jaxlimit.experiments.mean_field import MeanFieldConfig  # noqa: E402
from jaxlimit.limits.mean_field import (  # noqa: E402
    Particles, mean_field_limit, network_particles, sample_particles, solve_particle_flow,
)
from jaxlimit.streams import stream_key, stream_seed  # noqa: E402
from jaxlimit.training import make_step  # noqa: E402
from jaxlimit.training.problem import two_layer_problem  # noqa: E402


def sampling_bias(problem, times, n_particles: int, n_probes: int, seed: int):
    """N × the sampling bias at ``times``, shape (T, P), and its Hutchinson standard error."""
    particles = sample_particles(problem.model.init_law, problem.data.dim, n_particles,
                                 seed=stream_seed(seed, "hessian-quadrature"))
    c, w, m = particles.c, particles.w, particles.weights

    def outputs(weights):
        flow = solve_particle_flow(Particles(c, w, weights), problem.data, times=times,
                                   alpha=problem.trainer.alpha, activation=problem.model.activation,
                                   loss=problem.trainer.loss, feature_times=(),
                                   adjoint=diffrax.ForwardMode())
        return flow.outputs

    # Not jitted: the flow reads its step count back as a Python int (diffrax
    # compiles the solve itself).
    def second_derivative(u):
        return jax.jvp(lambda v: jax.jvp(outputs, (v,), (u,))[1], (m,), (u,))[1]

    key = stream_key(seed, "hutchinson-probes")
    draws = np.stack([
        np.asarray(second_derivative(jnp.sqrt(m) * jax.random.rademacher(
            jax.random.fold_in(key, r), m.shape, dtype=m.dtype)))
        for r in range(n_probes)
    ])
    along_m = np.asarray(second_derivative(m))
    return 0.5 * (draws.mean(0) - along_m), 0.5 * draws.std(0, ddof=1) / math.sqrt(n_probes)


def euler_bias(problem, times, width: int, seed: int) -> np.ndarray:
    """N × (full-batch descent − the flow of the same N neurons) at ``times``, shape (T, P)."""
    model = TwoLayer(width, problem.data.dim, "mean-field", problem.model.activation,
                     problem.model.init_law)
    params = model.init(stream_key(seed, "euler-network"), jnp.float64)
    _, step = make_step(model, problem.data, Trainer(alpha=problem.trainer.alpha, method="fullbatch"))
    flow = solve_particle_flow(network_particles(params), problem.data, times=times,
                               alpha=problem.trainer.alpha, activation=model.activation)
    gaps, state, done = [], (params, ()), 0
    for i, t in enumerate(times):
        n = model.steps_to(float(t))
        state = jax.lax.fori_loop(done, n, lambda k, s: step(*s, None, k), state)
        done = n
        gaps.append(np.asarray(model.apply(state[0], problem.data.x_all) - flow.outputs[i]))
    return width * np.array(gaps)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--particles", type=int, default=4096, help="K for the Hessian (default 4096)")
    parser.add_argument("--probes", type=int, default=256, help="Hutchinson probes (default 256)")
    parser.add_argument("--check-widths", default="16,32,64", help="ensemble widths for the check")
    parser.add_argument("--check-members", type=int, default=16384, help="members per check width")
    parser.add_argument("--members", type=int, default=2048, help="E for the resolution table")
    parser.add_argument("--seed", type=int, default=0, help="the seed of every random stream (default 0)")
    args = parser.parse_args()

    # The default problem of ``jaxlimit mean-field`` (its data stream, full-batch descent).
    problem = two_layer_problem(MeanFieldConfig(seed=args.seed), width=64, scaling="mean-field")
    times = np.array([0.0, 1.0, 2.0])
    np.set_printoptions(precision=3, suppress=True, linewidth=120)

    start = time.perf_counter()
    limit = mean_field_limit(problem.model, problem.data, problem.trainer, times=times,
                             n_particles=2**18, seed=stream_seed(args.seed, "quadrature"),
                             fluctuation_seed=stream_seed(args.seed, "fluctuation-quadrature"))
    h_bar = np.asarray(limit.outputs)
    sampling, sampling_se = sampling_bias(problem, times, args.particles, args.probes, seed=args.seed)
    euler = euler_bias(problem, times, 1024, seed=args.seed)
    predicted = sampling + euler
    print(f"problem: {problem.data.name}; limit error {limit.discretisation_error:.1e}; "
          f"{time.perf_counter() - start:.0f} s")
    print("N × bias at t = 2, per point")
    print("  sampling (Hessian) ", sampling[-1], "± ", sampling_se[-1])
    print("  Euler (time step)  ", euler[-1])
    print("  predicted b        ", predicted[-1])

    print("check: N × (ensemble mean − h̄) at t = 2, ± its standard error")
    for width in map(int, args.check_widths.split(",")):
        model = TwoLayer(width, problem.data.dim, "mean-field", problem.model.activation,
                         problem.model.init_law)
        result = run_ensemble(model, problem.data, problem.trainer, times=times, n_members=args.check_members,
                              seed=stream_key(args.seed, "members-mean-field", width), dtype=jnp.float64)
        out = result.finite().outputs[:, -1]
        gap = width * (out.mean(0) - h_bar[-1])
        se = width * out.std(0, ddof=1) / math.sqrt(len(out))
        print(f"  N = {width:4d}         ", gap, "± ", se)

    # limit.predict is N(h̄_t, C_t / N) at the model's width (64); the scaled sd is √(N C_t/N).
    law = limit.predict(times[1:])
    sd = np.sqrt(np.diag(np.asarray(law.cov)[-1]) * problem.model.width)
    print(f"bias of the √N-scaled mean at t = 2 in standard errors of {args.members} members, "
          "largest over points")
    for width in (1024, 2048, 4096, 16384):
        z = np.abs(predicted[-1]) / math.sqrt(width) / (sd / math.sqrt(args.members))
        print(f"  N = {width:5d}: {z.max():.2f}")


if __name__ == "__main__":
    main()
