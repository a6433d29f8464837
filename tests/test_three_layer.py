"""Three-layer mean-field networks (docs/three-layer.md): gradients, scalings, coupling, the proxy limit,
the step size, the degenerate start, and ``jaxlimit three-layer``'s options and report."""

import json
import math

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jaxlimit.cli import main
from jaxlimit.data import synthetic_problem
from jaxlimit.errors import InputError
from jaxlimit.limits.three_layer import gradient_flow
from jaxlimit.training.three_layer import (
    output_gaps, run_width_coupling, step_size_refinement, summarize_gaps, three_layer_limit, weight_gaps,
)
from jaxlimit.losses import get_loss
from jaxlimit.models.three_layer import (
    DEGENERATE_INIT, TILE, ThreeLayer, ThreeLayerInit, ThreeLayerParams, time_schedule,
)
from jaxlimit.training import Execution, Trainer, make_step, member_keys, run_ensemble
from tests.helpers.refusal import assert_refused

leaves = jax.tree_util.tree_leaves


@pytest.fixture(scope="module")
def data():
    return synthetic_problem(jax.random.key(3), 8, 3, 2, target="teacher")


@pytest.mark.parametrize("loss", ["squared", "huber"])
def test_hand_derived_gradient_matches_autodiff(loss):
    # φ3 = tanh and unequal widths, so that every factor (1/n1, 1/n2, φ3') matters.
    model = ThreeLayer(37, 53, 5, phi1="sigmoid", phi3="tanh",
                       init_law=ThreeLayerInit(w2_mean=0.7, w3_mean=-0.4))
    params = model.init(jax.random.key(0), jnp.float64)
    x = jax.random.normal(jax.random.key(1), (6, 5), jnp.float64)
    y = 2.0 * jax.random.normal(jax.random.key(2), (6,), jnp.float64)  # some Huber residuals > 1
    ell = get_loss(loss)
    auto = jax.grad(lambda p: jnp.mean(ell(model.apply(p, x), y)))(params)
    hand = model.mean_field_gradient(params, x, y, ell)
    for a, h, n in zip(leaves(auto), leaves(hand), leaves(model.width_factors())):
        assert np.max(np.abs(h)) > 1e-3
        np.testing.assert_allclose(np.asarray(a) * n, np.asarray(h), rtol=1e-10, atol=1e-13)


def test_learning_rates_and_clock():
    model = ThreeLayer(8, 32, 2, eps=0.05, xi=(0.5, 2.0, 3.0))
    lr = model.learning_rates()
    assert (lr.w1, lr.w2, lr.w3) == pytest.approx((0.05 * 0.5 * 8, 0.05 * 2.0 * 8 * 32, 0.05 * 3.0 * 32))
    assert model.steps_to(1.0) == 20 and model.steps_to(0.3) == 6 and model.steps_to(0.049) == 0
    assert ThreeLayer(8, 8, 2, eps=0.01).steps_to(0.07) == 7


def test_init_is_the_leading_sub_block_of_any_wider_draw():
    small = jax.jit(ThreeLayer(70, 45, 3).init)(jax.random.key(5))
    big_model = ThreeLayer(3 * TILE + 5, 2 * TILE + 1, 3)
    big = jax.jit(big_model.init)(jax.random.key(5))
    for a, b in zip(leaves(small), leaves(big_model.sub_block(big, 70, 45))):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    # Every tile gets its own randomness (no repeated blocks from a bad key scheme).
    w2 = np.asarray(big.w2)[: 3 * TILE, : 2 * TILE].reshape(3, TILE, 2, TILE).transpose(0, 2, 1, 3)
    tiles = w2.reshape(6, TILE * TILE)
    w1_tiles = np.asarray(big.w1)[: 3 * TILE].reshape(3, -1)
    for group in (tiles, w1_tiles):
        for i in range(len(group)):
            for j in range(i):
                assert np.mean(group[i] == group[j]) < 0.01
    other = jax.jit(ThreeLayer(70, 45, 3).init)(jax.random.key(6))
    assert np.mean(np.asarray(other.w2) == np.asarray(small.w2)) < 0.01


def test_initial_law_moments():
    law = ThreeLayerInit(w2_mean=0.5, w2_std=2.0, w3_mean=-1.0, w3_std=0.5)
    p = ThreeLayer(512, 512, 4, init_law=law).init(jax.random.key(1), jnp.float64)
    w2 = np.asarray(p.w2)
    se = 2.0 / 512
    assert abs(w2.mean() - 0.5) < 5 * se and abs(w2.std() - 2.0) < 0.02
    assert w2.max() <= 0.5 + 2.0 * np.sqrt(3) and w2.min() >= 0.5 - 2.0 * np.sqrt(3)
    assert abs(np.asarray(p.w3).mean() + 1.0) < 5 * 0.5 / np.sqrt(512)
    assert abs(np.asarray(p.w1).std() - 1.0) < 0.05
    zero = ThreeLayer(64, 64, 4, init_law=DEGENERATE_INIT).init(jax.random.key(1))
    assert np.all(np.asarray(zero.w3) == 0.0)


def test_one_step_moves_every_layer_and_the_output_by_order_eps_at_every_width(data):
    # Sigmoid φ1 and E[w2] ≠ 0 make H2 = O(1) at t = 0, so all three layers
    # move at O(1) speed; with a wrong width factor on any layer the speed
    # would change by the width ratio (16) between n = 128 and n = 2048.
    law = ThreeLayerInit(w2_mean=1.0, w3_mean=1.0)
    eps = 0.01
    speeds = []
    for n in (128, 2048):
        model = ThreeLayer(n, n, data.dim, eps=eps, phi1="sigmoid", init_law=law)
        params = model.init(jax.random.key(0))
        _, step = make_step(model, data, Trainer(method="fullbatch"))
        new, _ = jax.jit(step)(params, (), jax.random.key(1), 0)
        layer = [float(jnp.sqrt(jnp.mean((a - b) ** 2))) / eps for a, b in zip(leaves(new), leaves(params))]
        out = float(jnp.sqrt(jnp.mean((model.apply(new, data.x_all) - model.apply(params, data.x_all)) ** 2))) / eps
        speeds.append(layer + [out])
    small, large = np.array(speeds)
    assert np.all(large > 1e-3) and np.all(large < 50)
    assert np.all((small / large > 0.7) & (small / large < 1.4))


def test_engine_sgd_equals_a_hand_written_loop_on_the_same_stream(data):
    # The engine's online SGD (autodiff × learning_rates) against the paper's
    # update written out with mean_field_gradient, on the sample stream
    # randint(fold_in(data_key, k)); the narrower network is the sub-block.
    model = ThreeLayer(40, 24, data.dim, eps=0.1, xi=(1.0, 0.5, 2.0))
    steps = 15
    r = run_ensemble(model, data, times=[0.0, steps * model.eps], n_members=1, seed=4,
                     execution=Execution(lanes=1), dtype=jnp.float64)
    k_init, k_data = jax.random.split(member_keys(4, jnp.arange(1, dtype=jnp.uint32))[0])
    xi = ThreeLayerParams(*model.xi)

    def body(k, p):
        j = jax.random.randint(jax.random.fold_in(k_data, k), (1,), 0, data.n_train, dtype=jnp.int32)
        g = model.mean_field_gradient(p, data.x_train[j], data.y_train[j])
        return jax.tree_util.tree_map(lambda w, gi, x: w - model.eps * x * gi, p, g, xi)

    p = jax.lax.fori_loop(0, steps, body, model.init(k_init, jnp.float64))
    np.testing.assert_allclose(r.outputs[0, -1], np.asarray(model.apply(p, data.x_all)), rtol=1e-10)


def test_coupled_gap_shrinks_with_width_and_starts_at_zero(data):
    coupling = run_width_coupling(ThreeLayer(8, 8, data.dim, eps=0.1), data, widths=[16, 64, 256],
                                  times=[0.0, 2.0, 4.0], members=8, seed=0)
    og, wg = output_gaps(coupling), weight_gaps(coupling)
    for g in wg:
        assert np.all(g[:, 0] == 0.0)           # identical leading blocks at t = 0: one members' stream
        assert np.all(g[:, -1] > 0.0)
    out, w = summarize_gaps(og), summarize_gaps(wg)
    # Nested sub-blocks: gap² ∝ 1/n − 1/N predicts ratio √5 ≈ 2.24 between n = 16 and 64.
    assert 1.6 < out[0].value / out[1].value < 3.5
    assert 1.6 < w[0].value / w[1].value < 3.5
    assert all(e.n == 8 and 0 < e.se < 0.5 * e.value for e in out + w)


def test_step_size_refinement_rates(data):
    model = ThreeLayer(16, 16, data.dim)
    full = step_size_refinement(model, data, Trainer(method="fullbatch"), epsilons=[0.2, 0.1], t_max=1.0,
                                n_members=2)
    gaps = [e.value for e in full.rms_gaps()]
    assert gaps[0] / gaps[1] == pytest.approx(2.0, rel=0.15)   # Euler: error ∝ ε
    sgd = step_size_refinement(model, data, Trainer(method="online"), epsilons=[0.2, 0.0125], t_max=1.0,
                               n_members=8)
    noisy = [e.value for e in sgd.rms_gaps()]
    slope = np.log(noisy[0] / noisy[1]) / np.log(16.0)
    assert 0.3 < slope < 0.75                                    # SGD noise: error ∝ √ε
    assert min(noisy) > 3 * gaps[0]


def test_gradient_flow_matches_euler_with_tiny_steps_one_network_or_several(data):
    model = ThreeLayer(12, 20, data.dim, xi=(1.0, 1.0, 0.5))
    params = model.init(jax.random.key(2), jnp.float64)
    out, loss = gradient_flow(model, params, data, [0.0, 0.5, 1.0])
    eps, xi = 1e-3, ThreeLayerParams(*model.xi)

    def body(k, p):
        g = model.mean_field_gradient(p, data.x_train, data.y_train)
        return jax.tree_util.tree_map(lambda w, gi, x: w - eps * x * gi, p, g, xi)

    p = jax.lax.fori_loop(0, 1000, body, params)
    euler = model.apply(p, data.x_all)
    assert np.max(np.abs(out[-1] - euler)) < 5e-3 * np.max(np.abs(out[-1] - out[0]))
    assert loss[-1] < loss[0]
    two = jax.tree_util.tree_map(lambda a, b: jnp.stack([a, b]), params, model.init(jax.random.key(3), jnp.float64))
    both, both_loss = gradient_flow(model, two, data, [0.0, 0.5, 1.0])
    assert both.shape == (2, 3, data.n_train + data.n_probe) and both_loss.shape == (2, 3)
    np.testing.assert_allclose(both[0], out, rtol=1e-6, atol=1e-8)


def test_gradient_flow_that_runs_out_of_steps_is_one_input_error(data):
    model = ThreeLayer(8, 8, data.dim)
    with pytest.raises(InputError, match="--refine-t-max"):
        gradient_flow(model, model.init(jax.random.key(0), jnp.float64), data, [0.0, 50.0], max_steps=3)


TWO_LANES = Execution(lanes=2)


def test_time_schedule_through_optax(data):
    model = ThreeLayer(16, 16, data.dim, eps=0.1)
    times = [0.0, 1.0, 2.0]
    plain = run_ensemble(model, data, times=times, n_members=2, execution=TWO_LANES, dtype=jnp.float64)
    ones = run_ensemble(model, data, Trainer(method="optax", batch_size=1, optimizer=time_schedule(model)),
                        times=times, n_members=2, execution=TWO_LANES, dtype=jnp.float64)
    np.testing.assert_allclose(ones.outputs, plain.outputs, rtol=1e-10, atol=1e-12)
    # Layer 3 frozen throughout, everything stopped after t = 1.
    stop = lambda t: jnp.where(t < 1.0 - 1e-9, 1.0, 0.0)
    sched = time_schedule(model, stop, stop, lambda t: 0.0)
    r = run_ensemble(model, data, Trainer(method="optax", batch_size=1, optimizer=sched), times=times,
                     n_members=2, execution=TWO_LANES, dtype=jnp.float64)
    assert np.all(r.outputs[:, 2] == r.outputs[:, 1])
    assert np.max(np.abs(r.outputs[:, 1] - r.outputs[:, 0])) > 1e-2
    opt = time_schedule(model, s3=lambda t: 0.0)
    lr = jax.tree_util.tree_map(jnp.asarray, model.learning_rates())
    upd, _ = opt.update(lr, opt.init(lr))
    assert float(upd.w3) == 0.0 and float(upd.w1) == -model.learning_rates().w1
    assert isinstance(opt, optax.GradientTransformation)


# The degenerate start (docs/three-layer.md#the-degenerate-start) -----------------------------------


def test_degenerate_init_starts_stuck(data):
    times = [0.0, 3.0]
    good = run_ensemble(ThreeLayer(256, 256, data.dim, eps=0.05), data, times=times, n_members=2, execution=TWO_LANES)
    bad = run_ensemble(ThreeLayer(256, 256, data.dim, eps=0.05, init_law=DEGENERATE_INIT), data,
                       times=times, n_members=2, execution=TWO_LANES)
    assert np.all(good.loss[:, -1] < 0.5 * good.loss[:, 0])
    assert np.all(bad.loss[:, -1] > 0.95 * bad.loss[:, 0])
    assert np.all(np.abs(bad.outputs[:, 0]) < 0.01)          # ŷ ≈ φ3(0) = 0


def test_which_starts_are_stationary_follows_the_docs(data):
    x = np.asarray(data.x_train)
    law = lambda **kw: ThreeLayerInit(**kw)  # noqa: E731
    stuck = dict(w3_mean=0.0, w3_std=0.0)
    # w3 = 0 and E[w2] = 0 with φ2(0) = 0: stationary, for any φ1.
    assert ThreeLayer(8, 8, data.dim, init_law=DEGENERATE_INIT).starts_stationary(x)
    assert ThreeLayer(8, 8, data.dim, phi1="sigmoid", init_law=DEGENERATE_INIT).starts_stationary(x)
    # φ2(0) ≠ 0: the w3 update does not vanish.
    assert not ThreeLayer(8, 8, data.dim, phi2="sigmoid", init_law=DEGENERATE_INIT).starts_stationary(x)
    # A zero-mean w2 alone is not stuck (learning starts through w3) ...
    assert not ThreeLayer(8, 8, data.dim, init_law=law(w2_mean=0.0)).starts_stationary(x)
    # ... and with an odd φ1 a non-zero mean of w2 does not help: H2 = 0 at t = 0 whatever E[w2].
    model = ThreeLayer(8, 8, data.dim, init_law=law(w2_mean=1.5, **stuck))
    np.testing.assert_allclose(model.limit_hidden_field(x), 0.0, atol=1e-12)
    assert model.starts_stationary(x)
    sigmoid = ThreeLayer(8, 8, data.dim, phi1="sigmoid", init_law=law(w2_mean=1.5, **stuck))
    np.testing.assert_allclose(sigmoid.limit_hidden_field(x), 0.75, rtol=1e-12)  # E[sigmoid(z)] = 1/2 for symmetric z
    assert not sigmoid.starts_stationary(x)
    # ξ3 = 0 with w3 = 0: nothing can ever move.
    assert ThreeLayer(8, 8, data.dim, xi=(1.0, 1.0, 0.0), phi2="sigmoid", init_law=law(**stuck)).starts_stationary(x)


def test_activations_zero_at_zero_table_is_right():
    from jaxlimit.activations import get_activation
    from jaxlimit.experiments.three_layer.config import ZERO_AT_ZERO
    from jaxlimit.names import ACTIVATION_NAMES

    for name in ACTIVATION_NAMES:
        assert (float(get_activation(name).fn(jnp.zeros(()))) == 0.0) == (name in ZERO_AT_ZERO), name


def test_help_states_the_corrected_degenerate_finding():
    from jaxlimit.experiments.three_layer.config import ThreeLayerConfig
    from pathlib import Path

    doc = ThreeLayerConfig.__doc__
    assert "a zero-mean w2 alone is not stuck" in doc and "whatever E[w2]" in doc
    assert "docs/three-layer.md#the-degenerate-start" in doc
    page = (Path(__file__).resolve().parent.parent / "docs" / "three-layer.md").read_text()
    assert "### The degenerate start" in page and "a non-zero mean of $w_2$ does not help" in page
    assert "THEORY" not in doc


# The limit, by a proxy -------------------------------------------------------------------------------


def test_proxy_law_scales_like_one_over_n_and_predict_is_the_model_width(data, monkeypatch):
    """The algebra of the prediction (its statistics are checked through the command below)."""
    from jaxlimit.limits.three_layer import ProxyEstimate, ThreeLayerLimit

    rng = np.random.default_rng(0)
    a = rng.normal(size=(3, 4, 4))
    est = ProxyEstimate(times=np.array([0.0, 1.0, 2.0]), mean=rng.normal(size=(3, 4)), mean_se=np.ones((3, 4)),
                        scaled_cov=a @ np.swapaxes(a, 1, 2), proxy_width=128, result=None)
    law16, law32 = est.law(16), est.law(32)
    assert law16.mean.shape == (3, 4) and law16.cov.shape == (3, 4, 4)
    np.testing.assert_allclose(law16.cov, 2.0 * law32.cov, rtol=1e-12)      # cov at width n = scaled_cov / n
    np.testing.assert_allclose(law16.cov, est.scaled_cov / 16, rtol=1e-12)
    with pytest.raises(InputError, match="narrower"):
        est.law(128)
    with pytest.raises(InputError, match="width"):
        est.law(math.nan)
    limit = three_layer_limit(ThreeLayer(16, 16, data.dim), data, proxy_width=128, proxy_ensemble=4)
    monkeypatch.setattr(ThreeLayerLimit, "estimate", lambda self, t: est)
    np.testing.assert_array_equal(limit.predict([0.0, 1.0, 2.0]).cov, law16.cov)


def _counting_trainer(calls):
    """A stand-in for the proxy's training: records each grid it is asked for (no networks trained)."""
    from jaxlimit.limits.three_layer import ProxyEstimate

    def train(limit, times):
        calls.append(tuple(times))
        t = np.asarray(times, np.float64)
        p = limit.data.x_all.shape[0]
        mean = np.outer(t, np.ones(p))
        return ProxyEstimate(t, mean, np.ones_like(mean), np.broadcast_to(np.eye(p), (t.size, p, p)),
                             limit.proxy_width, None)

    return train


def test_the_proxy_is_trained_once_per_grid_not_per_predict(data):
    from jaxlimit.limits.three_layer import ThreeLayerLimit

    calls = []
    limit = three_layer_limit(ThreeLayer(16, 16, data.dim), data, proxy_width=64, proxy_ensemble=4)
    limit = ThreeLayerLimit(limit.model, limit.data, limit.trainer, 64, 4, limit.proxy_step, 0, {},
                            train_proxy=_counting_trainer(calls))
    first = limit.predict([1.0, 2.0])
    again = limit.predict([1.0, 2.0])
    part = limit.predict([2.0])
    assert calls == [(0.0, 1.0, 2.0)]
    np.testing.assert_array_equal(first.mean, again.mean)
    np.testing.assert_array_equal(part.mean, first.mean[[0, 2]])
    np.testing.assert_array_equal(part.times, [0.0, 2.0])
    limit.predict([3.0])  # a new grid: trained once more
    assert calls == [(0.0, 1.0, 2.0), (0.0, 3.0)]


def test_a_limit_built_with_times_trains_there_and_refuses_other_times(data, monkeypatch):
    import jaxlimit.training.three_layer as training

    calls = []
    monkeypatch.setattr(training, "train_proxy", _counting_trainer(calls))
    limit = three_layer_limit(ThreeLayer(16, 16, data.dim), data, proxy_width=64, proxy_ensemble=4, times=[0.5, 1.0])
    assert calls == [(0.0, 0.5, 1.0)]
    assert limit.predict([1.0]).mean.shape == (2, data.x_all.shape[0])
    with pytest.raises(InputError, match="trained to the times") as info:
        limit.predict([2.0])
    assert len(str(info.value).splitlines()) == 1
    assert calls == [(0.0, 0.5, 1.0)]


@pytest.mark.parametrize("call, match", [
    (lambda d: three_layer_limit(ThreeLayer(16, 16, d.dim), d, Trainer(), proxy_width=64), "method='fullbatch'"),
    (lambda d: three_layer_limit(ThreeLayer(16, 16, d.dim, init_law=DEGENERATE_INIT), d, proxy_width=64),
     "stationary start"),
    (lambda d: three_layer_limit(ThreeLayer(8, 16, d.dim), d, proxy_width=64), "n1 = n2"),
    (lambda d: three_layer_limit(ThreeLayer(16, 16, d.dim), d, proxy_width=16), "proxy_width must exceed"),
    (lambda d: three_layer_limit(ThreeLayer(16, 16, d.dim), d, proxy_width=float("nan")), "proxy_width"),
    (lambda d: three_layer_limit(ThreeLayer(16, 16, d.dim), d, proxy_width=64, proxy_ensemble=1),
     "proxy_ensemble must be ≥ 2"),
    (lambda d: three_layer_limit(ThreeLayer(16, 16, d.dim), d, proxy_width=64, proxy_step=-0.1), "proxy_step"),
    (lambda d: three_layer_limit(ThreeLayer(16, 16, d.dim + 1), d, proxy_width=64), "input dimension"),
    (lambda d: three_layer_limit("network", d, proxy_width=64), "ThreeLayer"),
    (lambda d: gradient_flow(ThreeLayer(4, 4, d.dim), ThreeLayer(4, 4, d.dim).init(jax.random.key(0)), d,
                             [0.0, math.nan]), "times"),
    (lambda d: gradient_flow(ThreeLayer(4, 4, d.dim), ThreeLayerParams(jnp.ones(3), jnp.ones(3), jnp.ones(3)), d,
                             [0.0, 1.0]), "params0.w1"),
    (lambda d: run_width_coupling(ThreeLayer(4, 4, d.dim), d, widths=[8, math.nan], times=[0, 1], members=1),
     "widths"),
    (lambda d: run_width_coupling(ThreeLayer(4, 4, d.dim), d, widths=[8, 16], times=[0, 1], members=0), "members"),
    (lambda d: step_size_refinement(ThreeLayer(4, 4, d.dim), d, Trainer(method="fullbatch"),
                                    epsilons=[0.1, math.nan], t_max=1.0), "epsilons"),
    (lambda d: step_size_refinement(ThreeLayer(4, 4, d.dim), d, Trainer(method="fullbatch"),
                                    epsilons=[0.1, 0.2], t_max=math.inf), "t_max"),
])
def test_limit_refuses_what_it_does_not_describe(data, call, match):
    with pytest.raises(InputError, match=match) as info:
        call(data)
    assert len(str(info.value).splitlines()) == 1


def test_bad_model_and_run_input(data):
    with pytest.raises(InputError, match="w1_std"):
        ThreeLayerInit(w1_std=0.0)
    with pytest.raises(InputError, match="w3_std"):
        ThreeLayerInit(w3_std=-1.0)
    with pytest.raises(InputError, match="w2_mean"):
        ThreeLayerInit(w2_mean=math.nan)
    with pytest.raises(InputError, match="two distinct"):
        run_width_coupling(ThreeLayer(4, 4, data.dim), data, widths=[8], times=[0, 1], members=1)
    with pytest.raises(InputError, match="members must be one integer or one per width"):
        run_width_coupling(ThreeLayer(4, 4, data.dim), data, widths=[8, 16], times=[0, 1], members=[1, 2, 3])
    with pytest.raises(InputError, match="whole number"):
        step_size_refinement(ThreeLayer(4, 4, data.dim), data, Trainer(method="fullbatch"), epsilons=[0.3, 0.2],
                             t_max=1.0)
    with pytest.raises(InputError, match="full-batch descent or online SGD"):
        step_size_refinement(ThreeLayer(4, 4, data.dim), data, Trainer(method="minibatch", batch_size=2),
                             epsilons=[0.2, 0.1], t_max=1.0)
    with pytest.raises(InputError, match="sub-block"):
        ThreeLayer(4, 4, 2).sub_block(ThreeLayer(4, 4, 2).init(jax.random.key(0)), 5, 4)


@pytest.mark.parametrize("kwargs, match", [
    (dict(n1=0), "n1"), (dict(n1=math.nan), "n1"), (dict(n2=2.5), "n2"), (dict(eps=0.0), "eps"),
    (dict(eps=float("nan")), "eps"), (dict(xi=(1.0, -1.0, 1.0)), "xi"), (dict(xi=(1.0, math.inf, 1.0)), "xi"),
    (dict(xi=(1.0, 1.0)), "xi"), (dict(xi=(0.0, 0.0, 0.0)), "nothing would train"), (dict(phi2="nope"), "activation"),
])
def test_bad_model_input(kwargs, match):
    args = dict(n1=4, n2=4, dim=2) | kwargs
    with pytest.raises(InputError, match=match):
        ThreeLayer(**args)


# The command ---------------------------------------------------------------------------------------

CLI_CASES = [
    (["--xi", "-1,1,1"], "--xi must be ≥ 0"),
    (["--xi", "1,1"], "--xi must have exactly 3 entries"),
    (["--xi", "nan,1,1"], "--xi must be a finite number"),
    (["--xi", "0,0,0"], "--xi is zero for all three layers"),
    (["--widths", "32,64,128,100000"], "w2 alone has n1·n2 = 1e+10 entries"),
    (["--widths", "32,64,128,100000", "--memory-gb", "4000"], "w2 alone has n1·n2 = 1e+10 entries"),
    (["--widths", "32,64,64,128"], "--widths has a repeated entry"),
    (["--widths", "32,64,128"], "--widths must have 4 to"),
    (["--widths", "0,32,64,128"], "--widths must be ≥ 1"),
    (["--step", "0"], "--step must be > 0"),
    (["--step", "-0.1"], "--step must be > 0"),
    (["--step", "inf"], "--step must be a finite number"),
    (["--step", "nan"], "--step must be a finite number"),
    (["--t-max", "0.01"], "--t-max must be at least one step"),
    (["--t-max", "1e9"], "--t-max must be at most"),
    (["--ensemble", "0"], "--ensemble must be ≥ 1"),
    (["--ensemble", "2.5"], "expected an integer"),
    (["--ensemble", "1e12"], "--ensemble must be at most"),
    (["--widest-ensemble", "32"], "--widest-ensemble must be at most --ensemble = 16"),
    (["--degenerate-init", "--w3-mean", "0.5"], "--w3-mean conflicts with --degenerate-init"),
    (["--degenerate-init", "--phi2", "sigmoid"], "--degenerate-init needs φ2(0) = 0"),
    (["--phi1", "swish"], "--phi1 must be one of"),
    (["--init", "cauchy"], "--init must be one of"),
    (["--w2-std", "-1"], "--w2-std must be ≥ 0"),
    (["--w3-mean", "nan"], "--w3-mean must be a finite number"),
    (["--spread-widths", "32,64"], "--spread-widths must have 3 to"),
    (["--spread-ensemble", "1"], "--spread-ensemble must be ≥ 2"),
    (["--proxy-width", "256"], "--proxy-width must exceed every spread width"),
    (["--proxy-ensemble", "1"], "--proxy-ensemble must be 0 (skip) or at least 2"),
    (["--refine-steps", "0.1,0.1,0.2"], "--refine-steps has a repeated entry"),
    (["--refine-steps", "0.1,0.2"], "--refine-steps must have 3 to"),
    (["--refine-t-max", "5.01"], "--refine-t-max must be a whole number of every refine step"),
    (["--method", "minibatch"], "--method must be one of"),
    (["--loss", "hinge"], "--loss must be one of"),
    (["--data", "digits", "--dim", "3"], "--dim does not apply to --data digits"),
    (["--memory-gb", "0.01"], "more than --memory-gb 0.01"),
    (["--seed", "-1"], "--seed must be ≥ 0"),
    (["--eps", "0.1"], "unrecognized arguments"),
    (["--members", "4"], "unrecognized arguments"),
    (["--no-refinement"], "unrecognized arguments"),
]


@pytest.mark.parametrize("argv,fragment", CLI_CASES, ids=[" ".join(c[0]) for c in CLI_CASES])
def test_command_line_refuses_in_one_line(argv, fragment, capsys, tmp_path, monkeypatch):
    assert_refused(["three-layer", *argv], fragment, capsys, tmp_path, monkeypatch)


def test_command_writes_the_promised_report(tmp_path, monkeypatch):
    """The report's promises, and two findings through it: the spread against the proxy limit
    (width 256) is ≈ 1 after training but ≈ √(256/n) at t = 0, where H2 = 0 in the limit makes the
    spread ∝ 1/n, a higher order than the prediction's leading 1/n variance."""
    import jaxlimit.report as report_module

    captured = {}
    write = report_module.write_report

    def keep(report, out):
        captured["report"] = report
        return write(report, out)

    monkeypatch.setattr(report_module, "write_report", keep)
    out = tmp_path / "report"
    code = main(["three-layer", "--widths", "16,32,64,128", "--step", "0.1", "--t-max", "8", "--n-times", "2",
                 "--ensemble", "4", "--spread-widths", "16,32,64", "--spread-ensemble", "64", "--proxy-width", "256",
                 "--proxy-ensemble", "16", "--refine-ensemble", "0", "--no-progress", "--out", str(out)])
    assert code == 0
    report = json.loads((out / "report.json").read_text())
    m = report["metrics"]
    for key in ("slope_output_gap", "slope_output_gap_ci", "slope_output_gap_nested", "slope_weight_gap_nested",
                "output_gap_se", "final_loss_ratio", "final_loss_ratio_se", "spread_slope", "output_spread_se",
                "spread_slope_final", "output_spread_final_se", "limit_spread_ratio_final", "limit_spread_ratio_final_se",
                "limit_mean_gap_resolution", "widths", "final_loss"):
        assert key in m, key
    assert m["widths"] == [16, 32, 64, 128] and len(m["output_gap"]) == 3 and m["coupled_pairs"] == [4, 4, 4]
    assert m["slope_output_gap_nested"] < 0 and 0 < m["final_loss_ratio"] < 1
    # Relative SE of a spread ratio ≈ 0.2 (64 members against 16 proxies).
    initial, final = m["limit_spread_ratio_initial"], m["limit_spread_ratio_final"]
    assert initial[0] > 2.5 and initial[-1] > 1.4          # ≈ 4 and 2 (1/n); 1 under the n^-1/2 law
    assert all(0.6 < r < 1.6 for r in final)
    assert set(m["limit_mean_gap_resolution"]) <= {"resolved", "not resolved at this size"}
    assert set(report["verdict"]) == {"output_gap_rate", "weight_gap_rate", "global_convergence", "spread_rate",
                                      "limit_spread"}
    assert set(report["verdict"].values()) <= {"consistent", "inconsistent"}
    names = {s["name"] for s in report["provenance"]["random_streams"]}
    assert {"data", "members-coupling", "members-spread", "members-proxy"} <= names
    for name in ("gaps", "loss", "spread", "limit"):
        assert (out / f"{name}.png").stat().st_size > 1000 and (out / f"{name}.pdf").exists()
        title = captured["report"].figures[name]._suptitle.get_text()
        assert ("N = 16…128" in title or "N = 16…64" in title) and "E = " in title and "data: " in title
        for ax in captured["report"].figures[name].axes:
            if ax.get_visible():
                assert ax.get_xlabel() and ax.get_ylabel() and ax.get_title()
    for table in ("coupling_by_width", "coupling_by_time", "spread_by_width", "spread_by_time", "limit_by_time"):
        assert (out / f"{table}.csv").read_text().count("\n") > 3
    with np.load(out / "data.npz") as f:
        assert f["coupling_outputs_n128"].shape == (4, 3, 20) and f["limit_scaled_cov"].shape == (3, 20, 20)
