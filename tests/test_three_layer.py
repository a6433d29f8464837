"""Three-layer mean-field networks (THEORY §4): gradients, scalings, coupling, limits."""

import json

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jaxlimit.cli import main
from jaxlimit.data import synthetic_problem
from jaxlimit.errors import InputError
from jaxlimit.limits.three_layer import (
    gradient_flow, output_gaps, run_width_coupling, step_size_refinement, summarize_gaps,
    weight_gaps,
)
from jaxlimit.losses import get_loss
from jaxlimit.models.three_layer import (
    DEGENERATE_INIT, TILE, ThreeLayer, ThreeLayerInit, ThreeLayerParams, time_schedule,
)
from jaxlimit.training import Trainer, make_step, member_keys, run_ensemble

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
                     lanes=1, dtype=jnp.float64)
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
        assert np.all(g[:, 0] == 0.0)           # identical leading blocks at t = 0
        assert np.all(g[:, -1] > 0.0)
    out, w = summarize_gaps(og), summarize_gaps(wg)
    # Nested sub-blocks: gap² ∝ 1/n − 1/N predicts ratio √5 ≈ 2.24 between n = 16 and 64.
    assert 1.6 < out[0] / out[1] < 3.5
    assert 1.6 < w[0] / w[1] < 3.5


def test_step_size_refinement_rates(data):
    model = ThreeLayer(16, 16, data.dim)
    full = step_size_refinement(model, data, epsilons=[0.2, 0.1], t_max=1.0,
                                method="fullbatch", n_members=2)
    ratio = full.rms_gaps()[0] / full.rms_gaps()[1]
    assert ratio == pytest.approx(2.0, rel=0.15)                 # Euler: error ∝ ε
    sgd = step_size_refinement(model, data, epsilons=[0.2, 0.0125], t_max=1.0,
                               method="online", n_members=8)
    slope = np.log(sgd.rms_gaps()[0] / sgd.rms_gaps()[1]) / np.log(16.0)
    assert 0.3 < slope < 0.75                                    # SGD noise: error ∝ √ε
    assert np.all(sgd.rms_gaps() > 3 * full.rms_gaps()[0])


def test_gradient_flow_matches_euler_with_tiny_steps(data):
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


def test_time_schedule_through_optax(data):
    model = ThreeLayer(16, 16, data.dim, eps=0.1)
    times = [0.0, 1.0, 2.0]
    plain = run_ensemble(model, data, times=times, n_members=2, lanes=2, dtype=jnp.float64)
    ones = run_ensemble(model, data, Trainer(method="optax", batch_size=1, optimizer=time_schedule(model)),
                        times=times, n_members=2, lanes=2, dtype=jnp.float64)
    np.testing.assert_allclose(ones.outputs, plain.outputs, rtol=1e-10, atol=1e-12)
    # Layer 3 frozen throughout, everything stopped after t = 1.
    stop = lambda t: jnp.where(t < 1.0 - 1e-9, 1.0, 0.0)
    sched = time_schedule(model, stop, stop, lambda t: 0.0)
    r = run_ensemble(model, data, Trainer(method="optax", batch_size=1, optimizer=sched), times=times,
                     n_members=2, lanes=2, dtype=jnp.float64)
    assert np.all(r.outputs[:, 2] == r.outputs[:, 1])
    assert np.max(np.abs(r.outputs[:, 1] - r.outputs[:, 0])) > 1e-2
    opt = time_schedule(model, s3=lambda t: 0.0)
    lr = jax.tree_util.tree_map(jnp.asarray, model.learning_rates())
    upd, _ = opt.update(lr, opt.init(lr))
    assert float(upd.w3) == 0.0 and float(upd.w1) == -model.learning_rates().w1
    assert isinstance(opt, optax.GradientTransformation)


def test_degenerate_init_starts_stuck(data):
    times = [0.0, 3.0]
    good = run_ensemble(ThreeLayer(256, 256, data.dim, eps=0.05), data, times=times, n_members=2, lanes=2)
    bad = run_ensemble(ThreeLayer(256, 256, data.dim, eps=0.05, init_law=DEGENERATE_INIT), data,
                       times=times, n_members=2, lanes=2)
    assert np.all(good.loss[:, -1] < 0.5 * good.loss[:, 0])
    assert np.all(bad.loss[:, -1] > 0.95 * bad.loss[:, 0])
    assert np.all(np.abs(bad.outputs[:, 0]) < 0.01)          # ŷ ≈ φ3(0) = 0


@pytest.mark.parametrize("kwargs, match", [
    (dict(n1=0), "n1"), (dict(n2=2.5), "n2"), (dict(eps=0.0), "eps"), (dict(eps=float("nan")), "eps"),
    (dict(xi=(1.0, -1.0, 1.0)), "xi"), (dict(xi=(0.0, 0.0, 0.0)), "nothing would train"),
    (dict(phi2="nope"), "activation"),
])
def test_bad_model_input(kwargs, match):
    args = dict(n1=4, n2=4, dim=2) | kwargs
    with pytest.raises(InputError, match=match):
        ThreeLayer(**args)


def test_bad_init_and_run_input(data):
    with pytest.raises(InputError, match="w1_std"):
        ThreeLayerInit(w1_std=0.0)
    with pytest.raises(InputError, match="non-negative"):
        ThreeLayerInit(w3_std=-1.0)
    with pytest.raises(InputError, match="two distinct"):
        run_width_coupling(ThreeLayer(4, 4, data.dim), data, widths=[8], times=[0, 1], members=1)
    with pytest.raises(InputError, match="whole number"):
        step_size_refinement(ThreeLayer(4, 4, data.dim), data, epsilons=[0.3, 0.2], t_max=1.0)
    with pytest.raises(InputError, match="sub-block"):
        ThreeLayer(4, 4, 2).sub_block(ThreeLayer(4, 4, 2).init(jax.random.key(0)), 5, 4)


def test_command_line_report(tmp_path, capsys):
    out = tmp_path / "report"
    code = main(["three-layer", "--widths", "16,32,64", "--t-max", "1", "--n-times", "2",
                 "--members", "4", "--spread-widths", "16,32", "--spread-members", "4",
                 "--no-refinement", "--no-progress", "--out", str(out)])
    assert code == 0
    report = json.loads((out / "report.json").read_text())
    m = report["metrics"]
    for key in ("slope_output_gap", "slope_output_gap_ci", "slope_weight_gap", "final_loss_ratio",
                "spread_slope", "widths", "final_loss"):
        assert key in m
    assert m["widths"] == [16, 32, 64] and len(m["output_gap"]) == 2
    assert m["slope_output_gap"] < 0 and 0 < m["final_loss_ratio"] < 1
    assert (out / "gaps.png").exists() and (out / "loss.png").exists()
    assert main(["three-layer", "--activations", "tanh,tanh", "--out", str(out)]) == 2
    assert "three names" in capsys.readouterr().err
