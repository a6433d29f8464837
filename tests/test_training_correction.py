"""The 1/n correction of lazy training (jaxlimit.limits.training_correction, docs/corrections.md).

* The lazy-scaling split (network and mirror, λ = ±1) against an independent second-order Taylor
  expansion in λ by nested forward-mode derivatives: for a smooth activation the odd and even parts
  converge, network by network, to the λ¹ and λ² terms as the width grows.
* The pairwise δK against the joint recursion, and the corrected law at t = 0.
* The predicted mean drift against an ensemble of wider networks trained by the engine: within its
  standard errors where the drift itself is resolved far from zero.
* Same seed, same numbers whatever the chunk; bad input refused before any work.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxlimit.errors import InputError
from jaxlimit.limits.corrections import mlp_corrections
from jaxlimit.limits.mlp import mlp_kernels
from jaxlimit.limits.training_correction import _nngp_shift, _pieces, mlp_training_correction
from jaxlimit.models.mlp import MLP

tree_map = jax.tree_util.tree_map


def _taylor_terms(model, x, y, alpha, steps):
    """λ¹ and λ² coefficients of the λ-scaled model's outputs after ``steps`` steps, by the
    perturbative recursion: Δ = Δ0 + λΔ1 + λ²Δ2, θ(λ) = θ0 + λΔ, F = f0 + (f(θ(λ)) − f0)/λ,
    each coefficient from nested jax.jvp in a scalar (independent of the library's λ = ±1 split)."""
    m = y.shape[0]
    lr = model.learning_rates()
    apply = lambda th: model.apply(th, x)  # noqa: E731

    def curve(theta0, ds):
        return lambda s: tree_map(lambda t, *d: t + sum(s ** (k + 1) * dk for k, dk in enumerate(d)), theta0, *ds)

    def outputs(theta0, d0, d1, d2):
        h = lambda s: apply(curve(theta0, (d0, d1, d2))(s))  # noqa: E731
        h1 = lambda s: jax.jvp(h, (s,), (1.0,))[1]  # noqa: E731
        h2 = lambda s: jax.jvp(h1, (s,), (1.0,))  # noqa: E731
        (a1, a2), (_, a3) = jax.jvp(h2, (0.0,), (1.0,))
        return a1, a2 / 2, a3 / 6

    def pullback(theta0, d0, d1, v0, v1, v2):
        th = curve(theta0, (d0, d1))
        g = lambda s: jax.vjp(apply, th(s))[1](v0 + s * v1 + s * s * v2)[0]  # noqa: E731
        g1 = lambda s: jax.jvp(g, (s,), (1.0,))  # noqa: E731
        (g0, gg1), (_, g2) = jax.jvp(g1, (0.0,), (1.0,))
        return g0, gg1, tree_map(lambda a: a / 2, g2)

    def expand(theta0):
        f0 = apply(theta0)
        pad = lambda v: jnp.zeros_like(f0).at[:m].set(v) / m  # noqa: E731

        def step(state, _):
            a1, a2, a3 = outputs(theta0, *state)
            g = pullback(theta0, state[0], state[1], pad(f0[:m] + a1[:m] - y), pad(a2[:m]), pad(a3[:m]))
            return tuple(tree_map(lambda d, l, gg: d - alpha * l * gg, dk, lr, gk) for dk, gk in zip(state, g)), None

        state, _ = jax.lax.scan(step, (tree_map(jnp.zeros_like, theta0),) * 3, None, length=steps)
        _, a2, a3 = outputs(theta0, *state)
        return a2, a3

    return jax.jit(jax.vmap(expand))


def test_the_lazy_scaling_split_converges_to_the_taylor_terms():
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(5, 4)), rng.normal(size=4)
    steps, errors = 20, {}
    for width in (64, 1024):
        model = MLP((width,), 4, "erf", W_std=1.5, b_std=0.1, time_step=0.1)
        _, ntk = mlp_kernels(x, depth=1, activation="erf", W_std=1.5, b_std=0.1)
        one = _pieces(model, jnp.asarray(x), jnp.asarray(y), jnp.asarray(ntk), 1.0, steps, jnp.zeros((steps + 1, 5)))
        thetas = jax.vmap(lambda k: model.init(k, jnp.float64))(jax.random.split(jax.random.PRNGKey(3), 8))
        first, second = _taylor_terms(model, jnp.asarray(x), jnp.asarray(y), 1.0, steps)(thetas)
        _, pieces, _ = jax.jit(jax.vmap(one))(thetas)
        odd, even = pieces[:, 1, -1], pieces[:, 2, -1]
        errors[width] = (float(jnp.max(jnp.abs(odd - first)) / jnp.max(jnp.abs(first))),
                         float(jnp.max(jnp.abs(even - second)) / jnp.max(jnp.abs(second))))
    # Measured: (0.39, 0.89) at width 64, (0.050, 0.023) at 1024. A sign or factor error in the
    # mirror, or a split that misses a term, leaves an O(1) relative error at every width.
    assert max(errors[1024]) < 0.15
    assert errors[1024][0] < errors[64][0] / 3 and errors[1024][1] < errors[64][1] / 3


def test_pairwise_shift_equals_the_joint_recursion_and_the_law_starts_there():
    x = np.array([[1.0, 0.3, -0.5], [0.2, -1.0, 0.7], [-0.4, 0.6, 0.9]])
    net = dict(depth=2, activation="tanh", W_std=1.5, b_std=0.3)
    joint = mlp_corrections(x, **net).nngp_shift
    assert np.max(np.abs(joint)) > 0.05
    np.testing.assert_allclose(_nngp_shift(x, **net), 0.5 * (joint + joint.T), rtol=0, atol=1e-10)
    corr = mlp_training_correction(x[:2], np.array([0.5, -0.3]), x[2:], learning_rate=1.0, time_step=0.1,
                                   t_max=0.2, width=16, networks=8, **net)
    nngp, _ = mlp_kernels(x, **net)
    law = corr.predict([0.0], 50)
    np.testing.assert_allclose(np.asarray(law.cov[0]), nngp + 0.5 * (joint + joint.T) / 50, atol=1e-10)
    np.testing.assert_allclose(np.asarray(law.mean[0]), 0.0, atol=1e-12)
    for name, piece in corr.terms.items():
        assert np.all(piece[0] == 0.0), name  # every piece starts at zero: f_0 is each network's own


def test_same_seed_same_numbers_whatever_the_chunk():
    x = np.random.default_rng(1).normal(size=(4, 3))
    kw = dict(depth=1, activation="relu", W_std=1.4, b_std=0.1, learning_rate=1.0, time_step=0.1, t_max=0.5,
              width=8, networks=12, seed=5)
    a = mlp_training_correction(x[:3], np.array([1.0, -1.0, 0.5]), x[3:], chunk=2, **kw)
    b = mlp_training_correction(x[:3], np.array([1.0, -1.0, 0.5]), x[3:], chunk=4, **kw)
    np.testing.assert_allclose(a.shift, b.shift, rtol=0, atol=1e-12)
    np.testing.assert_allclose(a.cov_shift, b.cov_shift, rtol=0, atol=1e-12)
    assert np.max(np.abs(a.shift[-1])) > 0.01


@pytest.mark.parametrize("change, message", [
    (dict(networks=9), "networks must be even"),
    (dict(networks=4), "networks"),
    (dict(width=1), "width"),
    (dict(width=10 ** 5), "width must be at most"),
    (dict(t_max=1e4), "steps"),
    (dict(time_step=-0.1), "time_step"),
    (dict(learning_rate=float("nan")), "learning_rate"),
    (dict(depth=0), "depth"),
    (dict(x_test=np.ones((1, 5))), "dimension"),
    (dict(activation="no-such"), "activation"),
])
def test_bad_input_is_refused(change, message):
    x = np.random.default_rng(1).normal(size=(4, 3))
    kw = dict(x_train=x[:3], y_train=np.array([1.0, -1.0, 0.5]), x_test=x[3:], depth=1, activation="relu",
              W_std=1.4, b_std=0.1, learning_rate=1.0, time_step=0.1, t_max=0.5, width=8, networks=12)
    with pytest.raises(InputError, match=message):
        mlp_training_correction(**(kw | change))


@pytest.mark.parametrize("argv, fragment", [
    (["deep", "--correction-width", "1"], "correction-width"),
    (["deep", "--correction-width", "32", "--correction-networks", "9"], "even"),
    (["deep", "--correction-width", "5000"], "correction-width"),
])
def test_the_deep_command_refuses_a_bad_correction(argv, fragment, capsys, tmp_path, monkeypatch):
    from tests.helpers.refusal import assert_refused

    assert_refused(argv, fragment, capsys, tmp_path, monkeypatch)


def test_the_predicted_drift_of_wider_erf_networks_matches_an_ensemble():
    """c estimated at width 16 predicts the mean drift of 2048 networks of width 32 trained by the
    engine (float32) on `jaxlimit deep`'s default problem at depth 1, erf, t = 10: the drift is resolved
    (measured: 7 of its standard errors at the worst point) and the prediction sits within its errors."""
    from jaxlimit.data import two_layer_data
    from jaxlimit.experiments.deep import DeepConfig
    from jaxlimit.limits.mlp import mlp_limit
    from jaxlimit.stats.coupling import mean_drift
    from jaxlimit.training import Trainer, run_ensemble
    from jaxlimit.training.problem import saved_times

    config = DeepConfig(depth=1, activation="erf", no_progress=True)
    data = two_layer_data(config)
    net = dict(depth=1, activation="erf", W_std=config.weight_scale, b_std=config.b_std)
    corr = mlp_training_correction(data.x_train, data.y_train, data.x_probe, learning_rate=config.alpha,
                                   time_step=config.step, t_max=config.t_max, width=16, networks=2048, seed=1, **net)
    times = saved_times(config.t_max, 3)
    model = MLP((32,), data.dim, "erf", W_std=config.weight_scale, b_std=config.b_std, time_step=config.step)
    result = run_ensemble(model, data, Trainer(alpha=config.alpha, method="fullbatch"), times=times,
                          n_members=2048, seed=2)
    limit = mlp_limit(data.x_train, data.y_train, data.x_probe, learning_rate=config.alpha, **net)
    paths = np.asarray(limit.pathwise(np.asarray(result.outputs[:, 0], np.float64), times))
    drift = mean_drift(result.outputs[:, -1], paths[:, -1])
    predicted, predicted_se = (a[0] for a in corr.drift(times[-1:], 32))
    assert abs(drift.z) > 5.0  # the plain limit's zero drift is far off
    z = (drift.value - predicted) / np.hypot(drift.se, predicted_se)
    assert np.max(np.abs(z)) < 3.5, z
    # A correction off by a third at the worst point would be detected.
    w = drift.worst
    assert abs(drift.value[w] - predicted[w] / 1.5) > 2.0 * np.hypot(drift.se[w], predicted_se[w] / 1.5)


def test_the_sweep_reports_the_libraries_correction_at_every_width(tmp_path):
    """`jaxlimit sweep deep --correction-width`: per width the predicted drift is the library's
    c/n (+ the steps' offset) at the point where |c| is largest, and the measured drift agrees with it."""
    from jaxlimit.data import two_layer_data
    from jaxlimit.experiments import run
    from jaxlimit.experiments.sweep_deep import SweepDeepConfig
    from jaxlimit.streams import stream_seed

    config = SweepDeepConfig(widths=(16, 32), ensemble=256, kernel_ensemble=0, t_max=4.0, correction_width=8,
                             correction_networks=64, no_progress=True, out=str(tmp_path / "r"))
    report = run(config)
    table = report.tables["by_width"]
    data = two_layer_data(config)
    corr = mlp_training_correction(data.x_train, data.y_train, data.x_probe, depth=2, activation="relu",
                                   W_std=1.4, b_std=0.1, learning_rate=0.5, time_step=0.05, t_max=4.0, width=8,
                                   networks=64, seed=stream_seed(config.seed, "correction"))
    point = int(np.argmax(np.abs(corr.shift[-1])))
    for i, n in enumerate((16, 32)):
        predicted, se = corr.drift([4.0], n)
        assert table["mean_drift_predicted"][i] == pytest.approx(predicted[0, point], abs=1e-12)
        assert table["mean_drift_predicted_se"][i] == pytest.approx(se[0, point], abs=1e-12)
        assert abs(table["mean_drift_correction_z"][i]) < 3.0
        assert table["corrected_verdict"][i] in ("consistent", "inconsistent")


def test_a_covariance_the_expansion_makes_negative_is_projected_and_said():
    from jaxlimit.limits.training_correction import TrainingCorrection

    P = 2
    corr = TrainingCorrection(
        times=np.array([0.0, 0.1]), flow_mean=np.zeros((2, P)), gd_mean=np.zeros((2, P)),
        gd_cov=np.stack([np.eye(P)] * 2), shift=np.ones((2, P)), shift_se=np.zeros((2, P)),
        terms={}, terms_se={}, cov_shift=np.stack([np.diag([-3.0, 1.0])] * 2), width=8, networks=8, n_diverged=0,
        time_step=0.1)
    assert corr.covariance_deficit([0.1], 1) == pytest.approx(-2.0)
    np.testing.assert_allclose(np.asarray(corr.predict([0.1], 1).cov[0]), np.diag([0.0, 2.0]), atol=1e-12)
    assert corr.covariance_deficit([0.1], 10) == 0.0
    np.testing.assert_allclose(np.asarray(corr.predict([0.1], 10).cov[0]), np.diag([0.7, 1.1]), atol=1e-12)
    np.testing.assert_allclose(np.asarray(corr.predict([0.1], 10).mean[0]), [0.1, 0.1], atol=1e-12)
    with pytest.raises(InputError, match="times must lie"):
        corr.predict([0.3], 10)
