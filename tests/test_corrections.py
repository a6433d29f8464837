"""The 1/n corrections of deep MLPs at initialisation (jaxlimit.limits.corrections, docs/corrections.md).

Monte Carlo checks use fixed seeds and sample sizes where the tested effect is
many standard errors away from what a wrong implementation gives:

* the exact kernel Markov chain against real networks (jaxlimit's MLP, its own
  forward pass), so the chain is a valid exact sampler;
* tanh and erf, depths 1–4, two inputs: E q̂ within 4 standard errors of
  K + δK/n at n = 32 and 64, and the Richardson combination 2·[n Var q̂]_{64} −
  [n Var q̂]_{32} = V + O(1/n²) within 4 standard errors of V;
* relu and identity: E q̂²/(E q̂)² = Π(1 + κ/n) at n = 8 for real networks and
  the chain (exact at any width), and V = κ L K² from the recursion.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxlimit
from jaxlimit.errors import InputError
from jaxlimit.limits.corrections import (
    exact_kurtosis_ratio, kurtosis_constant, mlp_corrections, network_conditional_kernel,
    sample_conditional_kernels,
)
from jaxlimit.limits.mlp import mlp_kernels
from jaxlimit.models.mlp import MLP

X = np.array([[1.0, 0.3, -0.5], [0.2, -1.0, 0.7]])
SCALES = {"tanh": (1.5, 0.3), "erf": (1.2, 0.2)}
PAIRS = [(0, 0), (0, 1), (1, 1)]


def _networks(act, widths, W, b, n_networks, seed, x=X):
    """q̂^{L+1} of n_networks real MLPs (jaxlimit's model, float64 forward pass), (N, P, P)."""
    model = MLP(widths, x.shape[1], act, W, b)
    xs = jnp.asarray(x)

    @jax.jit
    @jax.vmap
    def one(key):
        params = model.init(key, jnp.float64)
        return network_conditional_kernel(model, params, xs)

    keys = jax.random.split(jax.random.PRNGKey(seed), n_networks)
    return np.concatenate([np.asarray(one(keys[i:i + 5000])) for i in range(0, n_networks, 5000)])


def test_exported_and_matches_the_projects_kernels():
    assert jaxlimit.mlp_corrections is mlp_corrections
    for act, (W, b) in SCALES.items():
        c = mlp_corrections(X, depth=3, activation=act, W_std=W, b_std=b)
        nngp, _ = mlp_kernels(X, depth=3, activation=act, W_std=W, b_std=b)
        np.testing.assert_allclose(c.nngp, nngp, rtol=1e-9, atol=1e-12)
        assert c.vertex.shape == (2, 2, 2, 2) and c.nngp_shift.shape == (2, 2)
        assert c.vertex.dtype == np.float64
        # Symmetries of the vertex: a↔b, c↔d, (ab)↔(cd).
        np.testing.assert_allclose(c.vertex, np.transpose(c.vertex, (1, 0, 2, 3)), atol=1e-14)
        np.testing.assert_allclose(c.vertex, np.transpose(c.vertex, (2, 3, 0, 1)), atol=1e-14)
        assert np.max(c.vertex_error) < 1e-6 and np.max(c.nngp_shift_error) < 1e-6


def test_network_conditional_kernel_is_the_readouts_covariance():
    """f | hidden layers ~ N(0, q̂): the readout of a network, averaged over its own last
    layer's weights, has covariance q̂ (checked through model.apply on one network's features)."""
    model = MLP((16, 16), 3, "tanh", 1.5, 0.3)
    params = model.init(jax.random.PRNGKey(0), jnp.float64)
    q = np.asarray(network_conditional_kernel(model, params, jnp.asarray(X)))
    keys = jax.random.split(jax.random.PRNGKey(1), 10000)

    def readout(k):
        kw, kb = jax.random.split(k)
        last = type(params[-1])(jax.random.normal(kw, params[-1].W.shape, jnp.float64),
                                jax.random.normal(kb, params[-1].b.shape, jnp.float64))
        return model.apply(params[:-1] + (last,), jnp.asarray(X))

    f = np.asarray(jax.jit(jax.vmap(readout))(keys))
    emp = f.T @ f / len(f)
    se = np.sqrt((np.outer(np.diag(q), np.diag(q)) + q ** 2) / len(f))  # Wick: Var(f_a f_b) = q_aa q_bb + q_ab²
    assert np.all(np.abs(emp - q) < 4.0 * se), (emp, q, se)


def test_chain_matches_real_networks():
    """The Markov chain's q̂ has the real networks' mean and variance (tanh, depth 3, n = 16)."""
    W, b = SCALES["tanh"]
    nets = _networks("tanh", (16,) * 3, W, b, 20000, seed=11)
    chain = sample_conditional_kernels(jax.random.PRNGKey(12), X, widths=(16,) * 3, activation="tanh",
                                       W_std=W, b_std=b, n_samples=20000)
    for stat in (lambda q: q, lambda q: (q - q.mean(0)) ** 2):
        a, c = stat(nets), stat(chain)
        z = (a.mean(0) - c.mean(0)) / np.sqrt(a.var(0) / len(a) + c.var(0) / len(c))
        assert np.all(np.abs(z) < 4.0), z


@pytest.mark.parametrize("act", ["tanh", "erf"])
def test_vertex_and_shift_against_the_chain(act):
    W, b = SCALES[act]
    n_samples = 50_000
    for depth in (1, 2, 3, 4):
        c = mlp_corrections(X, depth=depth, activation=act, W_std=W, b_std=b)
        scaled_var = {}
        for n in (32, 64):
            q = sample_conditional_kernels(jax.random.PRNGKey(100 * depth + n), X, widths=(n,) * depth,
                                           activation=act, W_std=W, b_std=b, n_samples=n_samples)
            mean, se = q.mean(0), q.std(0) / np.sqrt(n_samples)
            z = (mean - c.kernel(n)) / se
            assert np.all(np.abs(z) < 4.0), (depth, n, z)
            flat = np.stack([q[:, i, j] for i, j in PAIRS], axis=1)
            dev = flat - flat.mean(0)
            scaled_var[n] = (n * dev.var(0), n * np.sqrt((dev ** 4).mean(0) - dev.var(0) ** 2) / np.sqrt(n_samples))
        extrapolated = 2.0 * scaled_var[64][0] - scaled_var[32][0]
        se = np.sqrt(4.0 * scaled_var[64][1] ** 2 + scaled_var[32][1] ** 2)
        vertex = np.array([c.vertex[i, j, i, j] for i, j in PAIRS])
        assert np.all(np.abs(extrapolated - vertex) < 4.0 * se), (depth, extrapolated, vertex, se)


@pytest.mark.parametrize("act", ["relu", "identity"])
def test_exact_products_at_width_8(act):
    kappa = {"relu": 5.0, "identity": 2.0}[act]
    assert kurtosis_constant(act) == kappa
    x = X[:1]
    c = mlp_corrections(x, depth=3, activation=act, W_std=1.4, b_std=0.0)
    np.testing.assert_allclose(c.vertex[0, 0, 0, 0], 3 * kappa * c.nngp[0, 0] ** 2, rtol=1e-12)
    assert abs(c.nngp_shift[0, 0]) < 1e-12 * c.nngp[0, 0]
    for depth in (1, 2, 3):
        exact = exact_kurtosis_ratio((8,) * depth, act)
        assert exact == pytest.approx((1 + kappa / 8) ** depth)
        for q in (_networks(act, (8,) * depth, 1.4, 0.0, 10000, seed=depth, x=x)[:, 0, 0],
                  sample_conditional_kernels(jax.random.PRNGKey(depth), x, widths=(8,) * depth, activation=act,
                                             W_std=1.4, b_std=0.0, n_samples=50_000)[:, 0, 0]):
            q = q / q.mean()
            ratio = np.mean(q ** 2)
            # Delta method for mean(q²)/mean(q)²: the influence function q² − 2·ratio·q.
            se = np.std(q ** 2 - 2.0 * ratio * q) / np.sqrt(len(q))
            assert abs(ratio - exact) < 4.0 * se, (depth, ratio, exact, se)
            # ... and the exact product is resolved from its 1/n truncation 1 + depth·κ/n at depth 3.
            assert abs(ratio - (1 + depth * kappa / 8)) > 5.0 * se or depth < 3


def test_bad_input_is_refused():
    with pytest.raises(InputError, match="singular"):
        mlp_corrections(np.array([[1.0, 0.0], [2.0, 0.0]]), depth=2, activation="relu", W_std=1.0, b_std=0.0)
    with pytest.raises(InputError, match="depth"):
        mlp_corrections(X, depth=0, activation="relu", W_std=1.0, b_std=0.0)
    with pytest.raises(InputError, match="nodes"):
        mlp_corrections(X, depth=1, activation="relu", W_std=1.0, b_std=0.0, nodes=(30, 20))
    with pytest.raises(InputError, match="W_std"):
        mlp_corrections(X, depth=1, activation="relu", W_std=-1.0, b_std=0.0)
    with pytest.raises(InputError, match="scale-invariant"):
        exact_kurtosis_ratio((8, 8), "tanh")
    with pytest.raises(InputError, match="widths"):
        sample_conditional_kernels(jax.random.PRNGKey(0), X, widths=(8, 0), activation="relu", W_std=1.0,
                                   b_std=0.0, n_samples=10)
