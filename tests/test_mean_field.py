"""The mean-field limit, its predicted fluctuations, and the mean-field and γ experiments."""

import argparse
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxlimit import InputError, Trainer, TwoLayer, run_ensemble, synthetic_problem
from jaxlimit.experiments import EXPERIMENTS, SWEEPS
from jaxlimit.experiments.mean_field import empirical_ntk, relative_frobenius, variance_summary
from jaxlimit.experiments.sweep_gamma import bias_summary
from jaxlimit.limits.kernels import estimate_xavier_kernels
from jaxlimit.limits.mean_field import (
    influence_functions, mean_field_limit, network_particles, predict_fluctuations,
    sample_particles, solve_particle_flow,
)
from jaxlimit.models.two_layer import InitLaw
from jaxlimit.stats import fit_power_law
from jaxlimit.training import make_step


@pytest.fixture(scope="module")
def data():
    return synthetic_problem(jax.random.key(7919), 6, 4, 2)


def _full_batch(model, data, params, t):
    _, step = make_step(model, data, Trainer(method="fullbatch"))
    body = lambda k, state: step(*state, None, k)  # noqa: E731
    return jax.lax.fori_loop(0, model.steps_to(t), body, (params, ()))[0]


def test_full_batch_network_follows_its_particle_flow(data):
    # The factors of the flow: a finite network's full-batch descent is the
    # Euler scheme (step 1/N) of the flow of its own neurons, so the gap is
    # O(1/N); a wrong factor (e.g. α instead of α/M) would give O(0.1).
    gaps = []
    for width in (512, 2048):
        model = TwoLayer(width, data.dim, "mean-field", "tanh")
        p0 = model.init(jax.random.key(3), jnp.float64)
        p_t = _full_batch(model, data, p0, 2.0)
        flow = solve_particle_flow(network_particles(p0), data, times=[0.0, 2.0])
        np.testing.assert_allclose(flow.outputs[0], model.apply(p0, data.x_all), atol=1e-12)
        gaps.append(float(jnp.max(jnp.abs(model.apply(p_t, data.x_all) - flow.outputs[-1]))))
    assert gaps[0] < 3e-4
    assert 3.0 < gaps[0] / gaps[1] < 5.5  # Euler: 4x smaller at 4x the width


@pytest.fixture(scope="module")
def limit(data):
    model = TwoLayer(1, data.dim, "mean-field", "tanh")
    return mean_field_limit(model, data, times=np.linspace(0.0, 2.0, 5), n_particles=2**15)


def test_limit_against_independent_solves(data, limit):
    # A different solver at a tighter tolerance, the nested half rule, and an
    # independently scrambled rule of the same size all agree.
    assert limit.solver_error < 1e-7
    assert limit.quadrature_error < 1e-3
    assert limit.n_particles == 2**15
    other = sample_particles(InitLaw(), data.dim, 2**15, seed=11)
    independent = solve_particle_flow(other, data, times=limit.times, solver="dopri8", rtol=1e-11,
                                      atol=1e-11)
    assert float(jnp.max(jnp.abs(independent.outputs - limit.outputs))) < 1e-3
    # and Monte Carlo with 2^15 particles only to its own (much larger) error
    mc = sample_particles(InitLaw(), data.dim, 2**15, rule="monte-carlo", seed=5)
    mc_out = solve_particle_flow(mc, data, times=limit.times).outputs
    assert float(jnp.max(jnp.abs(mc_out - limit.outputs))) < 0.03


def test_limit_starts_at_zero_with_the_xavier_kernel_velocity(data, limit):
    # dh̄/dt at t = 0 is (α/M) A (Y − 0), with A the Xavier (NTK) kernel of
    # the initial law: an independent check of the flow and its factors.
    assert float(jnp.max(jnp.abs(limit.outputs[0]))) < 1e-3  # E[c] = 0
    dt = 1e-4
    particles = sample_particles(InitLaw(), data.dim, 2**15, seed=0)
    flow = solve_particle_flow(particles, data, times=[0.0, dt])
    slope = (flow.outputs[1] - flow.outputs[0]) / dt
    a = estimate_xavier_kernels(data.x_all, data.x_train, "tanh").ntk
    expected = a @ data.y_train / data.n_train
    np.testing.assert_allclose(slope, expected, atol=5e-3)
    # The loss falls and the learned law moves (features are learned).
    assert limit.loss_curve[-1] < 0.5 * limit.loss_curve[0]
    assert float(jnp.sqrt(jnp.mean((limit.flow.c[-1] - limit.flow.c[0]) ** 2))) > 0.1


def test_influence_functions_at_zero_and_by_finite_differences(data):
    particles = sample_particles(InitLaw(), data.dim, 256, seed=2)
    out, phi = influence_functions(particles, data, times=[0.0, 1.0, 2.0])
    # At t = 0 the influence of a neuron is its own output c σ(w·x).
    own = (particles.c[:, None] * jnp.tanh(particles.w @ data.x_all.T)).T
    np.testing.assert_allclose(phi[0], own, atol=1e-10)
    # At t = 2, against a central finite difference of the weights.
    eps = 1e-5
    for k in (0, 17, 200):
        def shifted(sign):
            w = particles.weights.at[k].add(sign * eps)
            p = type(particles)(particles.c, particles.w, w)
            return solve_particle_flow(p, data, times=[0.0, 2.0], rtol=1e-11, atol=1e-11).outputs[-1]

        fd = (shifted(1.0) - shifted(-1.0)) / (2 * eps)
        np.testing.assert_allclose(phi[-1][:, k], fd, rtol=1e-4, atol=1e-6)


def test_predicted_covariance_against_a_brute_force_ensemble(data):
    # Full-batch descent: the prediction is the whole covariance. With E = 4096
    # the estimate's relative Frobenius noise is about 0.03 (cov_rel_error_null),
    # so the 8% criterion is more than two noise sizes from failing; the online-SGD
    # ensemble, whose data noise is not in the prediction, misses it by over 10%.
    width, t = 256, 1.0
    model = TwoLayer(width, data.dim, "mean-field", "tanh")
    pred = predict_fluctuations(model, data, times=[0.0, t], n_particles=2**13)
    # At t = 0 the prediction is Cov[c σ(w·x)], the NNGP kernel.
    nngp = estimate_xavier_kernels(data.x_all, data.x_all, "tanh").nngp
    assert relative_frobenius(pred.cov[0], nngp) < 0.01
    assert pred.cov.shape == (2, 8, 8) and pred.joint_cov.shape == (16, 16)
    lim = mean_field_limit(model, data, times=[t], n_particles=2**14)
    covs = {}
    for method in ("fullbatch", "online"):
        res = run_ensemble(model, data, Trainer(method=method), times=[t], n_members=4096, seed=0,
                           dtype=jnp.float32)
        scaled = math.sqrt(width) * (res.outputs[:, -1].astype(np.float64) - np.asarray(lim.outputs[-1]))
        covs[method] = np.cov(scaled, rowvar=False)
    assert relative_frobenius(covs["fullbatch"], pred.cov[-1]) < 0.08
    assert relative_frobenius(covs["online"], pred.cov[-1]) > 0.1
    # SGD noise only adds: the online covariance exceeds the prediction.
    assert np.trace(covs["online"]) > 1.1 * np.trace(pred.cov[-1])


def test_variance_falls_like_one_over_width(data):
    widths = [32, 128, 512]
    var, se = [], []
    for width in widths:
        model = TwoLayer(width, data.dim, "mean-field", "tanh")
        res = run_ensemble(model, data, Trainer(method="fullbatch"), times=[0.5], n_members=512,
                           seed=1, dtype=jnp.float32)
        v, s = variance_summary(res.outputs[:, -1])
        var.append(v)
        se.append(s)
    fit = fit_power_law(widths, var, y_err=se)
    assert abs(fit.slope + 1.0) < 0.1
    assert fit.slope_ci[0] < -1.0 < fit.slope_ci[1] or abs(fit.slope + 1.0) < 0.05


def test_empirical_ntk_at_init_is_the_xavier_kernel(data):
    for scaling in ("xavier", "mean-field"):
        model = TwoLayer(8192, data.dim, scaling, "tanh")
        params = model.init(jax.random.key(0), jnp.float64)
        k = empirical_ntk(model, params, data.x_all)
        a = estimate_xavier_kernels(data.x_all, data.x_all, "tanh").ntk
        assert relative_frobenius(k, a) < 0.05


def test_control_variate_bias_is_unbiased_and_quieter():
    rng = np.random.default_rng(0)
    z = rng.normal(size=(4000, 3))
    x = 0.3 + z @ np.diag([2.0, 1.0, 0.5]) + 0.01 * rng.normal(size=(4000, 3))
    b, noise = bias_summary(x, z, np.zeros(3))
    assert abs(b - 0.3) < 5 * noise and noise < 0.001
    assert bias_summary(x, z, np.full(3, 0.3))[0] < 5 * noise


def test_mean_field_limit_rejects_other_scalings(data):
    with pytest.raises(InputError, match="γ = 1"):
        mean_field_limit(TwoLayer(8, data.dim, "xavier"), data, times=[1.0])
    with pytest.raises(InputError, match="rule"):
        sample_particles(InitLaw(), 4, 64, rule="grid")
    with pytest.raises(InputError, match="positive training time"):
        solve_particle_flow(sample_particles(InitLaw(), 4, 64), data, times=[0.0])


def _parse(module, argv):
    parser = argparse.ArgumentParser()
    module.add_arguments(parser)
    return parser.parse_args(argv)


def test_mean_field_experiment_small(tmp_path):
    module = EXPERIMENTS["mean-field"]
    args = _parse(module, ["--widths", "32,128", "--ensemble", "128", "--particles", "4096",
                           "--fluctuation-particles", "1024", "--xavier-ensemble", "16",
                           "--n-times", "4", "--t-max", "1", "--no-progress",
                           "--out", str(tmp_path)])
    report = module.run(args)
    m = report.metrics
    # At N = 128 the O(N^-1/2) departures of the scaled law are a fraction of the
    # resolution of 128 members, so the verdict must hold at every compared time.
    assert report.verdict["clt"] == "consistent"
    assert len(m["clt_pvalue_by_time"]) == 3 and not m["clt_rejected_at_t0"]
    assert len(m["mean_error_vs_limit"]) == 2 and m["limit_discretisation_error"] < 0.01
    assert -1.4 < m["variance_slope"] < -0.6
    assert m["predicted_cov_rel_error"] < 0.5
    # Mean-field parameters move O(1), Xavier ones shrink with N.
    assert m["rms_parameter_change_final"][1] > 0.5 * m["rms_parameter_change_final"][0]
    assert m["xavier_rms_parameter_change_final"][1] < 0.7 * m["xavier_rms_parameter_change_final"][0]
    assert set(report.figures) == {"limit", "lln_clt", "features", "xavier_vs_mean_field"}


def test_gamma_sweep_small(tmp_path):
    module = SWEEPS["gamma"]
    args = _parse(module, ["--widths", "32,128", "--ensemble", "128", "--gammas", "0.5,1",
                           "--particles", "4096", "--n-times", "2", "--t-max", "1",
                           "--no-progress", "--out", str(tmp_path)])
    report = module.run(args)
    slopes = report.metrics["spread_slopes"]
    assert abs(slopes[0]) < 0.15 and abs(slopes[1] + 0.5) < 0.15
    assert report.metrics["predicted_bias_slopes"] == [-0.5, 0.0]
