"""The one limit interface: every shipped limit is a jaxlimit.Limit with the predict contract and
refuses what it does not describe; ode_limit against closed forms; compare on any ensemble and limit;
times that cannot misalign."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.integrate

import jaxlimit as jl
from jaxlimit.limits.teacher_student import population_flow_limit
from jaxlimit.training.three_layer import three_layer_limit
from jaxlimit.models.three_layer import ThreeLayer
from jaxlimit.stats.compare import mean_test
from jaxlimit.training import TrainingMethodWarning

TIMES = [0.0, 0.5, 2.0]


@pytest.fixture(scope="module")
def data():
    return jl.synthetic_problem(jl.stream_key(3, "data"), n_train=4, dim=3, n_probe=2)


def _limits(data):
    x = data.x_all
    return {
        "mlp": (jl.mlp_limit(data.x_train, data.y_train, data.x_probe, depth=2, activation="relu", W_std=1.4,
                             b_std=0.1, learning_rate=0.5),
                jl.MLP((16, 16), dim=3, activation="tanh", W_std=1.4, b_std=0.1), jl.Trainer(0.5, "fullbatch")),
        "lazy-mlp": (jl.lazy_limit(jl.MLP((16,), dim=3, activation="erf"), data, jl.Trainer(0.5, "fullbatch")),
                     jl.MLP((16, 16), dim=3, activation="erf"), jl.Trainer(0.5, "fullbatch")),
        "xavier": (jl.xavier_limit(jl.TwoLayer(32, 3, "xavier", "tanh"), data, jl.Trainer(1.0)),
                   jl.TwoLayer(32, 3, "xavier", "relu"), jl.Trainer(1.0)),
        "mean-field": (jl.mean_field_limit(jl.TwoLayer(32, 3, "mean-field", "tanh"), data, jl.Trainer(1.0),
                                           n_particles=2**8, fluctuation_particles=2**6),
                       jl.TwoLayer(64, 3, "mean-field", "tanh"), jl.Trainer(1.0)),
        "three-layer": (three_layer_limit(ThreeLayer(8, 8, 3), data, proxy_width=16, proxy_ensemble=4),
                        ThreeLayer(4, 4, 3), jl.Trainer(method="fullbatch")),
        "ode": (jl.ode_limit(lambda t, y, a: -y, jnp.ones(x.shape[0]), lambda y: y,
                             describes={"trainer": {"alpha": 2.0}}),
                None, jl.Trainer(1.0)),
        "population-flow": (population_flow_limit(np.eye(2, 3), 0.5 * np.eye(2, 3)), None, None),
    }


@pytest.fixture(scope="module")
def limits(data):
    return _limits(data)


@pytest.mark.parametrize("name", ["mlp", "lazy-mlp", "xavier", "mean-field", "three-layer", "ode", "population-flow"])
def test_every_shipped_limit_has_the_predict_contract(limits, data, name):
    limit, _, _ = limits[name]
    assert isinstance(limit, jl.Limit)
    law = limit.predict(TIMES)
    p = 6 if name == "population-flow" else data.x_all.shape[0]
    assert np.shape(law.mean) == (3, p) and np.shape(law.cov) == (3, p, p)
    np.testing.assert_array_equal(law.times, TIMES)  # labelled: a misaligned comparison is refused
    assert np.all(np.isfinite(np.asarray(law.mean)))


@pytest.mark.parametrize("name, reason", [
    ("mlp", "model activation is 'tanh', the limit assumes 'relu'"),
    ("lazy-mlp", "model depth is 2, the limit assumes 1"),
    ("xavier", "model activation is 'relu', the limit assumes 'tanh'"),
    ("mean-field", "model width is 64, the limit assumes 32"),
    ("three-layer", "model n1 is 4, the limit assumes 8"),
    ("ode", "trainer alpha is 1.0, the limit assumes 2.0"),
])
def test_every_limit_refuses_a_model_it_does_not_describe(limits, data, name, reason):
    limit, other_model, trainer = limits[name]
    with pytest.raises(jl.InputError, match=reason):
        limit.describes(other_model, data, trainer)


def test_a_limit_accepts_what_it_describes(limits, data):
    limit, _, _ = limits["mlp"]
    limit.describes(jl.MLP((64, 64), dim=3, activation="relu", W_std=1.4, b_std=0.1), data,
                    jl.Trainer(0.5, "fullbatch"))
    limit.describes(jl.MLP((8, 8), dim=3, activation="relu", W_std=1.4, b_std=0.1))  # width is free
    with pytest.raises(jl.InputError, match="trainer alpha is 1.0, the limit assumes 0.5"):
        limit.describes(trainer=jl.Trainer(1.0, "fullbatch"))


def test_ode_limit_linear_noise_against_the_ornstein_uhlenbeck_closed_form():
    # dy = −y dt + √(2/N) dW: mean y0 e^{−t}, variance (1 − e^{−2t})/N (+ Σ0 e^{−2t}/N).
    sigma0 = np.diag([0.5, 0.0])
    lim = jl.ode_limit(lambda t, y, a: -y, jnp.array([1.0, -2.0]), lambda y: jnp.stack([y[0], y[0] + y[1]]),
                       fluctuations=jl.LinearNoise(lambda t, y, a: 2.0 * jnp.eye(2), size=50.0, initial=sigma0))
    t = np.array([0.0, 0.3, 1.0, 4.0])
    law = lim.predict(t)
    e = np.exp(-t)
    np.testing.assert_allclose(law.mean, np.stack([e, -e], axis=1), rtol=1e-9, atol=1e-12)
    v0 = ((1 - e**2) + 0.5 * e**2) / 50.0  # Var y0
    v1 = (1 - e**2) / 50.0
    np.testing.assert_allclose(law.cov[:, 0, 0], v0, rtol=1e-8)
    np.testing.assert_allclose(law.cov[:, 1, 1], v0 + v1, rtol=1e-8)  # o = (y0, y0 + y1), independent
    np.testing.assert_allclose(law.cov[:, 0, 1], v0, rtol=1e-8)
    assert lim.fluctuation_scale == pytest.approx(1 / 50)


def test_ode_limit_nonlinear_against_scipy():
    # Logistic growth of the Saxe–McClelland–Ganguli mode, du/dt = 2u(s − u), in a pytree state.
    s, u0 = 1.5, 1e-3

    def field(t, y, args):
        return {"u": 2.0 * y["u"] * (args - y["u"])}

    lim = jl.ode_limit(field, {"u": jnp.array([u0])}, lambda y: y["u"] * jnp.array([1.0, -0.5]), args=s)
    t = np.linspace(0.0, 6.0, 13)
    ref = scipy.integrate.solve_ivp(lambda _, u: 2 * u * (s - u), (0, 6), [u0], t_eval=t, rtol=1e-12, atol=1e-14).y[0]
    closed = s * np.exp(2 * s * t) / (np.exp(2 * s * t) - 1 + s / u0)
    law = lim.predict(t)
    np.testing.assert_allclose(law.mean[:, 0], ref, rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(law.mean[:, 0], closed, rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(law.mean[:, 1], -0.5 * closed, rtol=1e-6, atol=1e-9)
    assert np.all(np.asarray(law.cov) == 0.0) and lim.fluctuation_scale is None


@pytest.mark.parametrize("build, message", [
    (lambda: jl.ode_limit(lambda t, y, a: -y, jnp.array([np.nan]), lambda y: y), "y0 must be a non-empty state"),
    (lambda: jl.ode_limit(lambda t, y, a: y[:1], jnp.ones(2), lambda y: y), "vector_field must return a state"),
    (lambda: jl.ode_limit(lambda t, y, a: y @ jnp.ones((3, 3)), jnp.ones(2), lambda y: y),
     "vector_field\\(0, y0, args\\) failed"),
    (lambda: jl.ode_limit(lambda t, y, a: -y, jnp.ones(2), lambda y: y, fluctuations=np.eye(2)),
     "fluctuations must be a jaxlimit.LinearNoise"),
    (lambda: jl.ode_limit(lambda t, y, a: -y, jnp.ones(2), lambda y: y,
                          fluctuations=jl.LinearNoise(None, size=0.0)), "fluctuations.size"),
])
def test_ode_limit_refuses_bad_input_in_one_line(build, message):
    with pytest.raises(jl.InputError, match=message):
        build()


def _fake_result(outputs, times, method="fullbatch", model=None):
    e = outputs.shape[0]
    return jl.EnsembleResult(
        outputs=outputs, loss=np.zeros(outputs.shape[:2]), times=np.asarray(times, np.float64),
        steps=np.arange(len(times)), diverged=np.zeros(e, bool), member_ids=np.arange(e), observables={},
        n_train=outputs.shape[2], config={"trainer": {"method": method, "alpha": 1.0, "loss": "squared"},
                                          **({"model": model} if model else {})})


def test_compare_against_a_deterministic_limit_tests_the_mean():
    # Members scatter with sd 1 around the ODE e^{-t}: consistent; a shift of 0.1 (= 10 SE at 10^4
    # members) is found at the right time; 0.01 (1 SE) is not.
    rng = np.random.default_rng(0)
    t = np.array([0.0, 1.0, 2.0])
    exact = np.stack([np.exp(-t), 2 * np.exp(-t)], axis=1)
    noise = rng.standard_normal((10_000, 3, 2))
    lim = jl.ode_limit(lambda s, y, a: -y, jnp.array([1.0, 2.0]), lambda y: y)
    good = jl.compare(_fake_result(exact + noise, t), lim)
    assert good.verdict == "consistent" and {c.kind for c in good.per_time} == {"mean"}
    assert good.metrics()["largest_mean_error_z"] < 4
    shifted = exact + noise
    shifted[:, 2, 1] += 0.1
    bad = jl.compare(_fake_result(shifted, t), lim)
    assert bad.verdict == "inconsistent"
    assert [c.consistent for c in bad.per_time] == [True, True, False]
    assert bad.per_time[2].mean_error_z > 8
    small = exact + noise
    small[:, 2, 1] += 0.01
    assert jl.compare(_fake_result(small, t), lim).verdict == "consistent"


def test_mean_test_pvalues_are_calibrated():
    rng = np.random.default_rng(1)
    p = [mean_test(rng.standard_normal((200, 1)), np.zeros(1), level=0.05).smallest_pvalue for _ in range(2000)]
    assert abs(np.mean(np.asarray(p) < 0.05) - 0.05) < 0.015  # 3 SE of a proportion at 2000 draws


def test_compare_with_linear_noise_uses_the_gaussian_tests():
    # N = 25 particles' average follows the OU law of the linear-noise expansion exactly.
    rng = np.random.default_rng(2)
    t = np.array([0.5, 1.0])
    var = (1 - np.exp(-2 * t)) / 25
    samples = np.exp(-t)[None, :, None] + np.sqrt(var)[None, :, None] * rng.standard_normal((4000, 2, 1))
    lim = jl.ode_limit(lambda s, y, a: -y, jnp.array([1.0]), lambda y: y,
                       fluctuations=jl.LinearNoise(lambda s, y, a: 2.0 * jnp.eye(1), size=25.0))
    c = jl.compare(_fake_result(samples, t), lim)
    assert c.verdict == "consistent" and {x.kind for x in c.per_time} == {"gaussian"}
    wide = np.exp(-t)[None, :, None] + 1.3 * np.sqrt(var)[None, :, None] * rng.standard_normal((4000, 2, 1))
    assert jl.compare(_fake_result(wide, t), lim).verdict == "inconsistent"  # 30 % too wide


def test_compare_refuses_misaligned_times_and_other_models():
    t = np.array([0.0, 1.0, 10.0])
    lim = jl.ode_limit(lambda s, y, a: -y, jnp.array([1.0]), lambda y: y)
    result = _fake_result(np.ones((8, 3, 1)), t)
    with pytest.raises(jl.InputError, match="t = 2 was not saved; the saved times are \\[0, 1, 10\\]"):
        jl.compare(result, lim, times=[2.0])
    np.testing.assert_array_equal(result.at(10.0), result.outputs[:, 2])
    law = lim.predict([1.0, 10.0])
    with pytest.raises(jl.InputError, match="is for times \\[1, 10\\] but the ensemble was saved at \\[0, 1\\]"):
        jl.stats.verdict.verdict_over_times(np.ones((8, 2, 1)), law, [0], times=t[:2])
    kernel = jl.mlp_limit(np.eye(1), np.ones(1), None, depth=1, activation="relu", W_std=1.0, b_std=0.0,
                          learning_rate=1.0)
    other = _fake_result(np.ones((8, 3, 1)), t, model={"model": "mlp", "widths": [8, 8], "activation": "relu",
                                                       "W_std": 1.0, "b_std": 0.0})
    with pytest.raises(jl.InputError, match="does not describe this ensemble: model depth is 2, the limit assumes 1"):
        jl.compare(other, kernel)
    with pytest.raises(jl.InputError, match="compare needs a jaxlimit.Limit"):
        jl.compare(result, kernel.predict(t))


def test_compare_names_a_training_method_mismatch():
    t = np.array([0.0, 1.0])
    lim = jl.ode_limit(lambda s, y, a: -y, jnp.array([1.0]), lambda y: y,
                       describes={"trainer": {"method": "fullbatch"}})
    rng = np.random.default_rng(3)
    outputs = np.exp(-t)[None, :, None] + 0.1 * rng.standard_normal((64, 2, 1))
    with pytest.warns(TrainingMethodWarning, match="trained by online SGD"):
        c = jl.compare(_fake_result(outputs, t, method="online"), lim)
    assert any("online" in n for n in c.notes)


def test_compare_counts_diverged_members_against_the_verdict():
    t = np.array([0.0, 1.0])
    lim = jl.ode_limit(lambda s, y, a: -y, jnp.array([1.0]), lambda y: y)
    rng = np.random.default_rng(4)
    outputs = np.exp(-t)[None, :, None] + 0.1 * rng.standard_normal((64, 2, 1))
    result = _fake_result(outputs, t)
    result = jl.EnsembleResult(outputs=result.outputs, loss=result.loss, times=result.times, steps=result.steps,
                               diverged=np.arange(64) == 5, member_ids=result.member_ids, observables={},
                               n_train=1, config=result.config)
    c = jl.compare(result, lim)
    assert c.verdict == "inconsistent" and c.n_diverged == 1 and all(x.consistent for x in c.per_time)


def test_compare_reproduces_the_experiments_verdict_over_times():
    # The kernel limit's own samples: compare gives the verdict and p-values of verdict_over_times
    # on the same indices and seed (the numbers the deep and xavier commands report).
    x = np.linspace(-1, 1, 8).reshape(4, 2)
    lim = jl.mlp_limit(x[:3], np.array([0.5, -0.2, 0.1]), x[3:], depth=1, activation="erf", W_std=1.2, b_std=0.1,
                       learning_rate=1.0)
    t = np.array([0.0, 1.0, 3.0])
    f0 = np.asarray(lim.predict([0.0])[0].sample(jax.random.key(0), 600))
    outputs = np.asarray(lim.pathwise(f0, t))
    result = _fake_result(outputs, t)
    c = jl.compare(result, lim, times=[1.0, 3.0], seed=7)
    v = jl.stats.verdict.verdict_over_times(outputs, lim.predict(t), [1, 2], times=t, level=0.05, seed=7)
    assert c.verdict == v.verdict == "consistent"
    np.testing.assert_allclose([x.smallest_pvalue for x in c.per_time], v.smallest_pvalue_by_time, rtol=0, atol=0)
    assert c.pathwise.rms < 1e-9 and np.max(np.abs(c.drift.value)) < 1e-9  # members are their own paths
