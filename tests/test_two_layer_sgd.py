"""The two-layer model and its SGD against an independent NumPy implementation
of docs/xavier.md#model-and-scaling, and the per-step scalings in N."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxlimit as jl
from jaxlimit.training import make_step, member_keys


def numpy_sgd(c, w, x, y, idx, *, gamma, alpha, act, dact):
    """docs/xavier.md#model-and-scaling written out by hand: one sample per step, lr α N^{-(2-2γ)}."""
    n = len(c)
    lr = alpha * n ** (-(2 - 2 * gamma))
    for j in idx:
        pre = w @ x[j]
        g = n ** (-gamma) * np.sum(c * act(pre))
        r = y[j] - g
        c, w = (
            c + lr * r * n ** (-gamma) * act(pre),
            w + lr * r * n ** (-gamma) * (c * dact(pre))[:, None] * x[j][None, :],
        )
    return c, w


NUMPY_ACTS = {
    "tanh": (np.tanh, lambda u: 1 - np.tanh(u) ** 2),
    "relu": (lambda u: np.maximum(u, 0), lambda u: (u > 0).astype(float)),
}


@pytest.mark.parametrize("activation", ["tanh", "relu"])
@pytest.mark.parametrize("scaling", ["xavier", "mean-field", 0.75])
def test_online_sgd_matches_numpy(activation, scaling):
    data = jl.synthetic_problem(jax.random.key(1), 5, 3, 2)
    model = jl.TwoLayer(32, 3, scaling, activation)
    trainer = jl.Trainer(alpha=1.5)
    n_steps = 40
    key = member_keys(3, jnp.arange(1, dtype=jnp.uint32))[0]
    k_init, k_data = jax.random.split(key)
    init_state, step = make_step(model, data, trainer)
    params = model.init(k_init, jnp.float32)
    # The engine's sample stream, reproduced here: index at step k from fold_in(k_data, k).
    idx = [int(jax.random.randint(jax.random.fold_in(k_data, k), (1,), 0, 5, dtype=jnp.int32)[0]) for k in range(n_steps)]
    state = init_state(params)
    p = params
    for k in range(n_steps):
        p, state = step(p, state, k_data, k)
    act, dact = NUMPY_ACTS[activation]
    c_ref, w_ref = numpy_sgd(
        np.asarray(params.c, np.float64), np.asarray(params.w, np.float64),
        np.asarray(data.x_train), np.asarray(data.y_train), idx,
        gamma=model.gamma, alpha=1.5, act=act, dact=dact,
    )
    # float32 engine against the float64 reference: a few ulps per step.
    np.testing.assert_allclose(np.asarray(p.c), c_ref, rtol=2e-5, atol=2e-6)
    np.testing.assert_allclose(np.asarray(p.w), w_ref, rtol=2e-5, atol=2e-6)
    # And the ensemble engine reaches the same outputs after ⌊N t⌋ = 40 steps.
    result = jl.run_ensemble(model, data, trainer, times=[n_steps / 32], n_members=1, seed=3)
    out_ref = model.width ** (-model.gamma) * act(np.asarray(data.x_all) @ w_ref.T) @ c_ref
    np.testing.assert_allclose(result.outputs[0, -1], out_ref, rtol=1e-4, atol=1e-5)


def test_fullbatch_is_mean_gradient_step():
    data = jl.synthetic_problem(jax.random.key(2), 4, 3, 0)
    model = jl.TwoLayer(16, 3, "mean-field", "tanh")
    _, step = make_step(model, data, jl.Trainer(alpha=0.7, method="fullbatch"))
    params = model.init(jax.random.key(0), jnp.float64)
    new, _ = step(params, (), jax.random.key(1), 0)
    c, w = np.asarray(params.c), np.asarray(params.w)
    x, y = np.asarray(data.x_train), np.asarray(data.y_train)
    dc, dw = np.zeros_like(c), np.zeros_like(w)
    for j in range(4):  # average of the per-sample updates of docs/xavier.md#model-and-scaling
        cj, wj = numpy_sgd(c, w, x, y, [j], gamma=1.0, alpha=0.7, act=np.tanh,
                           dact=lambda u: 1 - np.tanh(u) ** 2)
        dc += (cj - c) / 4
        dw += (wj - w) / 4
    np.testing.assert_allclose(np.asarray(new.c) - c, dc, rtol=1e-10, atol=1e-14)
    np.testing.assert_allclose(np.asarray(new.w) - w, dw, rtol=1e-10, atol=1e-14)


def test_optax_sgd_reproduces_builtin_step():
    import optax

    data = jl.synthetic_problem(jax.random.key(2), 6, 3, 1)
    model = jl.TwoLayer(64, 3, "xavier", "erf")
    builtin = jl.run_ensemble(model, data, jl.Trainer(alpha=0.8), times=[0.5], n_members=8, seed=5)
    via_optax = jl.run_ensemble(model, data, jl.Trainer(alpha=0.8, method="optax", batch_size=1,
                                                        optimizer=optax.sgd(0.8)),
                                times=[0.5], n_members=8, seed=5)
    np.testing.assert_allclose(via_optax.outputs, builtin.outputs, rtol=1e-5, atol=1e-6)
    assert not np.array_equal(builtin.outputs[:, 0], builtin.outputs[:, 1])  # it did train


def _one_step_sizes(width, scaling, n_members=16):
    """RMS parameter change and max output change after one online SGD step."""
    data = jl.synthetic_problem(jax.random.key(4), 6, 3, 2)
    model = jl.TwoLayer(width, 3, scaling, "tanh")
    _, step = make_step(model, data, jl.Trainer(alpha=1.0))
    keys = member_keys(0, jnp.arange(n_members, dtype=jnp.uint32))

    def one(key):
        k_init, k_data = jax.random.split(key)
        p0 = model.init(k_init, jnp.float64)
        p1, _ = step(p0, (), k_data, 0)
        dparam = jnp.sqrt(jnp.mean((p1.c - p0.c) ** 2))
        dout = jnp.max(jnp.abs(model.apply(p1, data.x_all) - model.apply(p0, data.x_all)))
        return dparam, dout

    dparam, dout = jax.vmap(one)(keys)
    return float(jnp.mean(dparam)), float(jnp.mean(dout))


@pytest.mark.parametrize("scaling,param_slope", [("xavier", -1.5), ("mean-field", -1.0)])
def test_per_step_movement_scales_with_width(scaling, param_slope):
    widths = np.array([64, 256, 1024, 4096])
    sizes = np.array([_one_step_sizes(n, scaling) for n in widths])
    slope_param = np.polyfit(np.log(widths), np.log(sizes[:, 0]), 1)[0]
    slope_out = np.polyfit(np.log(widths), np.log(sizes[:, 1]), 1)[0]
    # Exponents docs/xavier.md#model-and-scaling predicts: parameters N^{-3/2} (Xavier) or N^{-1} (mean field),
    # the output N^{-1} for both. A wrong learning-rate scaling is off by ≥ 0.5.
    assert abs(slope_param - param_slope) < 0.1, slope_param
    assert abs(slope_out - (-1.0)) < 0.1, slope_out


def test_float32_ensemble_agrees_with_float64():
    data = jl.synthetic_problem(jax.random.key(5), 6, 3, 2)
    model = jl.TwoLayer(128, 3, "xavier", "tanh")
    r32 = jl.run_ensemble(model, data, times=[0.5, 1.0], n_members=16, seed=2, dtype=jnp.float32)
    r64 = jl.run_ensemble(model, data, times=[0.5, 1.0], n_members=16, seed=2, dtype=jnp.float64)
    assert r32.outputs.dtype == np.float32 and r64.outputs.dtype == np.float64
    np.testing.assert_allclose(r32.outputs, r64.outputs, rtol=1e-4, atol=2e-5)
