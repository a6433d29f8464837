"""The mean-field limit, its predicted fluctuations, and the mean-field and γ experiments."""

import json
import math
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxlimit import InputError, Trainer, TwoLayer, run_ensemble, synthetic_problem
from jaxlimit.cli import main
from jaxlimit.limits.empirical import empirical_ntk
from jaxlimit.limits.kernels import estimate_xavier_kernels
from jaxlimit.limits.mean_field import (
    SGDNoiseWarning, influence_functions, mean_field_limit, network_particles, particle_outputs,
    predict_fluctuations, sample_particles, solve_particle_flow,
)
from jaxlimit.losses import Loss, huber_loss
from jaxlimit.models.two_layer import InitLaw
from jaxlimit.stats import Gaussian, fit_power_law
from jaxlimit.stats.moments import relative_frobenius, variance_summary
from jaxlimit.training import make_step
from tests.helpers.refusal import assert_refused
from tests.helpers.reports import assert_figures_labelled, capture_written_report


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
    # Online SGD (the default trainer): the flow is its limit, the covariance is incomplete.
    model = TwoLayer(64, data.dim, "mean-field", "tanh")
    return mean_field_limit(model, data, times=np.linspace(0.0, 2.0, 5), n_particles=2**15,
                            fluctuation_particles=2**9)


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
    trainer = Trainer(method="fullbatch")
    pred = predict_fluctuations(model, data, trainer, times=[0.0, t], n_particles=2**13, seed=1)
    # At t = 0 the prediction is Cov[c σ(w·x)], the NNGP kernel.
    nngp = estimate_xavier_kernels(data.x_all, data.x_all, "tanh").nngp
    assert relative_frobenius(pred.cov[0], nngp) < 0.01
    assert pred.cov.shape == (2, 8, 8) and pred.joint_cov.shape == (16, 16)
    # The limit only centres the ensembles here: that predict(times) is N(h̄_t, C_t / N) with C_t
    # this same predict_fluctuations is checked on a smaller quadrature in the next test, rather
    # than paying for the influence functions at 2^13 particles twice.
    lim = mean_field_limit(model, data, trainer, times=[t], n_particles=2**14, fluctuation_particles=2**13,
                           fluctuation_seed=1)
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


def test_predict_warns_under_sgd_and_answers_any_times(data, limit):
    import dataclasses

    assert any("full-batch descent only" in w for w in limit.warnings())
    with pytest.warns(SGDNoiseWarning, match="full-batch descent only"):
        law = limit.predict([0.0, 1.0, 2.0])
    # The protocol: predict(times) is N(h̄_t, C_t / N) at the model's width, C_t from
    # predict_fluctuations with the limit's fluctuation quadrature (2^9 particles, seed 1).
    assert isinstance(law, Gaussian) and law.mean.shape == (3, 8) and law.cov.shape == (3, 8, 8)
    np.testing.assert_allclose(law.mean, np.asarray(limit.outputs)[[0, 2, 4]], atol=1e-12)
    pred = predict_fluctuations(TwoLayer(64, data.dim, "mean-field", "tanh"), data, times=[1.0, 2.0],
                                n_particles=2**9, seed=1)
    np.testing.assert_allclose(np.asarray(law.cov) * 64, pred.cov, rtol=1e-8, atol=1e-14)
    # t = 0 alone is the initial law (no solve); a time off the solved grid is solved anew.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SGDNoiseWarning)
        initial = limit.predict([0.0])
    np.testing.assert_allclose(initial.cov[0], law.cov[0], rtol=1e-10, atol=1e-14)
    np.testing.assert_allclose(initial.mean[0], limit.outputs[0], atol=1e-12)
    between = np.asarray(limit.mean([0.5, 1.0]))
    np.testing.assert_allclose(between[1], limit.outputs[2], atol=1e-9)
    assert np.all(np.abs(between[0]) < np.abs(np.asarray(limit.outputs[2])) + 1e-9)
    # Full batch: the covariance is complete, no warning.
    full = dataclasses.replace(limit, method="fullbatch")
    assert not any("full-batch" in w for w in full.warnings())
    with warnings.catch_warnings():
        warnings.simplefilter("error", SGDNoiseWarning)
        full.predict([1.0, 2.0])  # the times above: their compiled influence functions are reused


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
    # Σ_leaves lr J Jᵀ is O(1/N) for every γ and a unit of time is N steps, so the kernel of the
    # output ODE, Θ = Σ_leaves (lr / dt) J Jᵀ, tends to A at initialisation.
    a = estimate_xavier_kernels(data.x_all, data.x_all, "tanh").ntk
    for scaling in ("xavier", "mean-field"):
        model = TwoLayer(8192, data.dim, scaling, "tanh")
        params = model.init(jax.random.key(0), jnp.float64)
        k = empirical_ntk(model, params, data.x_all)
        assert k.shape == (8, 8)
        assert relative_frobenius(k, a) < 0.05
    # The kernel the engine follows: one full-batch step moves the outputs by (α/M) dt Θ r to first order.
    model = TwoLayer(64, data.dim, "mean-field", "tanh")
    params = model.init(jax.random.key(1), jnp.float64)
    _, step = make_step(model, data, Trainer(alpha=1e-4, method="fullbatch"))
    moved = model.apply(step(params, (), None, 0)[0], data.x_all) - model.apply(params, data.x_all)
    r = data.y_train - model.apply(params, data.x_train)
    expected = 1e-4 / data.n_train * model.time_step * empirical_ntk(model, params, data.x_all)[:, : data.n_train] @ r
    np.testing.assert_allclose(moved, expected, rtol=1e-3, atol=1e-12)
    with pytest.raises(InputError, match="x must have shape"):
        empirical_ntk(model, params, data.x_all[0])


def _custom_loss():
    return Loss("quartic", lambda p, y: (y - p) ** 4)


@pytest.mark.parametrize("make,fragment", [
    (lambda d: (TwoLayer(8, d.dim, "xavier"), d, None), "γ = 1"),
    (lambda d: (TwoLayer(8, d.dim, 0.75), d, None), "γ = 1"),
    (lambda d: (TwoLayer(8, d.dim + 1, "mean-field"), d, None), "input dimension"),
    (lambda d: (TwoLayer(8, d.dim, "mean-field"), d, Trainer(loss=_custom_loss())), "squared and Huber"),
    (lambda d: (TwoLayer(8, d.dim, "mean-field"), d.x_train, None), "Dataset"),
    (lambda d: ("network", d, None), "two-layer"),
])
def test_mean_field_limit_refuses_what_it_does_not_describe(data, make, fragment):
    model, d, trainer = make(data)
    with pytest.raises(InputError, match=fragment):
        mean_field_limit(model, d, trainer, times=[1.0], n_particles=64)


def test_mean_field_limit_accepts_huber_and_uniform_and_refuses_bad_arguments(data):
    # Huber and a uniform initial law are described (the flow takes the model's own law and σ).
    model = TwoLayer(8, data.dim, "mean-field", "relu", InitLaw("uniform", c_std=0.5))
    lim = mean_field_limit(model, data, Trainer(loss=huber_loss(0.5), method="fullbatch"), times=[0.5],
                           n_particles=256, fluctuation_particles=64, feature_times=())
    assert lim.activation.name == "relu" and lim.init_law.kind == "uniform" and lim.loss.name == "huber(0.5)"
    assert lim.flow.c.shape == (0, 256)
    good = TwoLayer(8, data.dim, "mean-field")
    for kwargs, fragment in [({"times": [float("nan")]}, "times must be finite"),
                             ({"times": [0.0]}, "positive training time"),
                             ({"times": [[1.0, 2.0]]}, "1-D"),
                             ({"times": [1.0], "n_particles": 1}, "n_particles"),
                             ({"times": [1.0], "n_particles": 2.5}, "n_particles"),
                             ({"times": [1.0], "fluctuation_particles": 0}, "fluctuation_particles"),
                             ({"times": [1.0], "seed": -1}, "seed"),
                             ({"times": [1.0], "rtol": float("nan")}, "rtol"),
                             ({"times": [1.0], "rule": "grid"}, "rule")]:
        with pytest.raises(InputError, match=fragment):
            mean_field_limit(good, data, **kwargs)
    with pytest.raises(InputError, match="times must be finite"):
        lim.predict([np.inf])
    with pytest.raises(InputError, match="positive training time"):
        solve_particle_flow(sample_particles(InitLaw(), 4, 64), data, times=[0.0])
    with pytest.raises(InputError, match="particle c must be finite"):
        type(lim.particles)(jnp.array([np.nan]), jnp.ones((1, 4)), jnp.ones(1))
    with pytest.raises(InputError, match="x must have shape"):
        particle_outputs(lim.particles, data.x_all[:, :2], "tanh")


# The commands -------------------------------------------------------------------------

def test_mean_field_command_writes_the_promised_report(tmp_path, monkeypatch):
    written = capture_written_report(monkeypatch)
    out = tmp_path / "rep"
    code = main(["mean-field", "--widths", "16,64", "--ensemble", "96", "--particles", "2048",
                 "--fluctuation-particles", "512", "--xavier-ensemble", "16", "--n-times", "2",
                 "--t-max", "1", "--no-progress", "--out", str(out)])
    assert code == 0
    rep = json.loads((out / "report.json").read_text())
    m = rep["metrics"]
    # At N = 64 the O(N^-1/2) departures of the scaled law are a fraction of the
    # resolution of 96 members, so the verdict must hold at every compared time.
    assert rep["verdict"] == {"variance_slope": "consistent", "clt": "consistent"}
    assert len(m["clt_smallest_pvalue_by_time"]) == 3 and not m["clt_rejected_at_t0"]
    assert len(m["mean_error"]) == 2 and m["limit_discretisation_error"] < 0.01
    assert -1.4 < m["variance_slope"] < -0.6 and m["variance_slope_se"] > 0
    assert m["cov_rel_error"] < 0.5 and m["cov_rel_error_null"] > 0
    assert set(m["mean_gap_resolution"]) <= {"resolved", "not resolved at this size"}
    # Mean-field parameters move O(1), Xavier ones shrink with N.
    assert m["rms_parameter_change_final"][1] > 0.7 * m["rms_parameter_change_final"][0]
    assert m["xavier_rms_parameter_change_final"][1] < 0.7 * m["xavier_rms_parameter_change_final"][0]
    assert m["xavier_ntk_change_slope_agreement"] in ("consistent", "inconsistent")
    for stem in ("limit", "gap", "lln_clt", "features", "xavier_vs_mean_field"):
        assert (out / f"{stem}.png").stat().st_size > 1000 and (out / f"{stem}.pdf").exists()
    for table in ("by_width", "outputs_by_time", "clt_by_time", "xavier_by_width"):
        assert (out / f"{table}.csv").read_text().count("\n") > 2
    with np.load(out / "data.npz") as f:
        assert f["outputs_N64"].shape == (96, 3, 8) and f["limit_scaled_cov"].shape == (3, 8, 8)
    streams = {s["name"] for s in rep["provenance"]["random_streams"]}
    assert {"data", "quadrature", "fluctuation-quadrature", "members-mean-field", "members-xavier"} <= streams
    assert_figures_labelled(written["report"], "N = ", "γ", "data:", "E = ", exempt={"features": ("E = ",)})


MEAN_FIELD_CASES = [
    (["mean-field", "--widths", "64"], "--widths must have 2 to"),
    (["mean-field", "--widths", "64,64"], "--widths has a repeated entry"),
    (["mean-field", "--widths", "0,64"], "--widths must be ≥ 1"),
    (["mean-field", "--widths", "64,nan"], "expected an integer"),
    (["mean-field", "--widths", "64,1e9"], "--widths must be at most"),
    (["mean-field", "--width", "64"], "unrecognized arguments"),
    (["mean-field", "--scaling", "xavier"], "unrecognized arguments"),
    (["mean-field", "--ensemble", "5"], "--ensemble must be at least P + 2"),
    (["mean-field", "--ensemble", "-1"], "--ensemble must be ≥ 1"),
    (["mean-field", "--ensemble", "2.5"], "expected an integer"),
    (["mean-field", "--xavier-ensemble", "1"], "--xavier-ensemble must be 0"),
    (["mean-field", "--xavier-ensemble", "-3"], "--xavier-ensemble must be ≥ 0"),
    (["mean-field", "--particles", "1e11"], "--particles makes the run need about"),
    (["mean-field", "--particles", "2"], "--particles must be ≥ 4"),
    (["mean-field", "--particles", "inf"], "expected an integer"),
    (["mean-field", "--fluctuation-particles", "1e10"], "--fluctuation-particles makes the run need"),
    (["mean-field", "--fluctuation-particles", "8"], "--fluctuation-particles must be at least P + 1"),
    (["mean-field", "--alpha", "nan"], "--alpha must be a finite number"),
    (["mean-field", "--alpha", "0"], "--alpha must be > 0"),
    (["mean-field", "--t-max", "-1"], "--t-max must be > 0"),
    (["mean-field", "--t-max", "3000", "--widths", "64,1000000"], "--t-max needs"),
    (["mean-field", "--compare-times", "0,3"], "--compare-times must lie in [0, t_max = 2]"),
    (["mean-field", "--compare-times", "1,1"], "--compare-times has a repeated entry"),
    (["mean-field", "--level", "0"], "--level must be > 0"),
    (["mean-field", "--loss", "hinge"], "--loss must be one of"),
    (["mean-field", "--method", "optax"], "--method must be one of"),
    (["mean-field", "--method", "minibatch", "--batch-size", "7"], "--batch-size must be at most"),
    (["mean-field", "--init", "cauchy"], "--init must be one of"),
    (["mean-field", "--ensemble", "5000000", "--n-times", "5000"], "of memory"),
    (["mean-field", "--data", "digits", "--dim", "3"], "--dim does not apply"),
    (["mean-field", "--seed", "-1"], "--seed must be ≥ 0"),
]

@pytest.mark.parametrize("argv,fragment", MEAN_FIELD_CASES, ids=[" ".join(c[0]) for c in MEAN_FIELD_CASES])
def test_command_line_refuses_in_one_line(argv, fragment, capsys, tmp_path, monkeypatch):
    assert_refused(argv, fragment, capsys, tmp_path, monkeypatch)
