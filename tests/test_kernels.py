"""The Xavier kernels Σ and A: closed forms, quadrature and the networks themselves.

Every reference here is independent of the code under test: plain NumPy Monte
Carlo, closed forms for sin/cos activations, autodiff of the actual network.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxlimit.errors import InputError
from jaxlimit.limits.kernels import (
    estimate_xavier_kernels,
    monte_carlo_xavier_kernels,
    xavier_kernels,
)
from jaxlimit.models.two_layer import InitLaw, TwoLayer

W_STD, C_STD = 1.7, 0.6


def _inputs():
    """Points of different norms, an antipodal pair, a repeated direction and the origin."""
    rng = np.random.default_rng(3)
    x = rng.normal(size=(6, 3))
    x[1] = -x[0]
    x[2] = 0.5 * x[3]
    x[5] = 0.0
    return x


def _numpy_monte_carlo(x, fn, dfn, w_std, c_std, n=2**20, seed=0):
    """Σ, A and their standard errors from n draws of w, by plain NumPy."""
    rng = np.random.default_rng(seed)
    sums = np.zeros((4, len(x), len(x)))
    batch = 2**16
    dot = x @ x.T
    for _ in range(n // batch):
        u = x @ (w_std * rng.normal(size=(batch, x.shape[1]))).T  # (P, B)
        f, g = fn(u), dfn(u)
        nngp_terms = c_std**2 * f  # E[c²] σσ, per draw: product below
        sums[0] += nngp_terms @ f.T
        sums[1] += (nngp_terms**2) @ (f**2).T
        # A per draw: σ(u)σ(v) + c² σ'(u)σ'(v) x·x', summed entrywise.
        a = f[:, None, :] * f[None, :, :] + c_std**2 * g[:, None, :] * g[None, :, :] * dot[:, :, None]
        sums[2] += a.sum(axis=-1)
        sums[3] += (a**2).sum(axis=-1)
    m = n // batch * batch
    nngp, ntk = sums[0] / m, sums[2] / m
    se_nngp = np.sqrt(np.maximum(sums[1] / m - nngp**2, 0) / m)
    se_ntk = np.sqrt(np.maximum(sums[3] / m - ntk**2, 0) / m)
    return nngp, ntk, se_nngp, se_ntk


def _relu(u):
    return np.maximum(u, 0.0)


def _step(u):
    return (u > 0).astype(float)


def _erf(u):
    from scipy.special import erf

    return erf(u)


def _erf_prime(u):
    return 2.0 / np.sqrt(np.pi) * np.exp(-u * u)


@pytest.mark.parametrize("name, fn, dfn", [("relu", _relu, _step), ("erf", _erf, _erf_prime)])
def test_closed_forms_agree_with_monte_carlo(name, fn, dfn):
    x = _inputs()
    k = estimate_xavier_kernels(x, x, name, W_STD, C_STD)
    assert k.method == "closed-form"
    nngp, ntk, se1, se2 = _numpy_monte_carlo(x, fn, dfn, W_STD, C_STD)
    # Standard errors are ~1e-3 of the entries; a wrong formula is off by far more.
    assert np.all(np.abs(np.asarray(k.nngp) - nngp) <= 5 * se1 + 1e-12)
    assert np.all(np.abs(np.asarray(k.ntk) - ntk) <= 5 * se2 + 1e-12)
    assert np.max(se2) < 0.01 * np.max(np.abs(ntk))


def test_package_monte_carlo_agrees_with_closed_form():
    x = _inputs()
    mc = monte_carlo_xavier_kernels(jax.random.key(5), x, x, "erf", W_STD, C_STD, n_samples=2**18)
    exact = estimate_xavier_kernels(x, x, "erf", W_STD, C_STD)
    assert mc.method == "monte-carlo"
    assert np.all(np.abs(mc.nngp - exact.nngp) <= 5 * mc.nngp_error + 1e-12)
    assert np.all(np.abs(mc.ntk - exact.ntk) <= 5 * mc.ntk_error + 1e-12)


@pytest.mark.parametrize("w_std", [1.0, 2.5])
def test_quadrature_is_exact_for_sin_activation(w_std):
    """For σ = sin: E[sin u sin v] = e^{-(s11+s22)/2} sinh s12 and
    E[cos u cos v] = e^{-(s11+s22)/2} cosh s12, a closed-form check of the
    quadrature through a user callable (derivative by autodiff). Passed as
    ``jnp.sin`` it is recognised and gets the same closed form."""
    x = _inputs()
    k = estimate_xavier_kernels(x, x, jnp.sin, w_std, C_STD, method="quadrature")
    assert k.method == "quadrature"
    assert estimate_xavier_kernels(x, x, jnp.sin, w_std, C_STD).method == "closed-form"
    s = w_std**2 * x @ x.T
    damp = np.exp(-0.5 * (np.diag(s)[:, None] + np.diag(s)[None, :]))
    ss, cc = damp * np.sinh(s), damp * np.cosh(s)
    np.testing.assert_allclose(k.nngp, C_STD**2 * ss, atol=1e-10)
    np.testing.assert_allclose(k.ntk, ss + C_STD**2 * cc * (x @ x.T), atol=1e-10)
    assert k.max_error < 1e-8


def test_quadrature_matches_erf_closed_form_and_flags_relu():
    x = _inputs()
    exact = estimate_xavier_kernels(x, x, "erf", W_STD, C_STD)
    quad = estimate_xavier_kernels(x, x, "erf", W_STD, C_STD, method="quadrature")
    np.testing.assert_allclose(quad.ntk, exact.ntk, atol=1e-10)
    np.testing.assert_allclose(quad.nngp, exact.nngp, atol=1e-10)
    # ReLU′ jumps at 0: the quadrature finds the kink and splits there, so it is
    # accurate, and its bound covers the actual error entry by entry.
    exact = estimate_xavier_kernels(x, x, "relu", W_STD, C_STD)
    for spec in ("relu", jax.nn.relu, jnp.abs):
        ref = exact if spec != jnp.abs else estimate_xavier_kernels(x, x, "abs", W_STD, C_STD)
        quad = estimate_xavier_kernels(x, x, spec, W_STD, C_STD, method="quadrature")
        assert quad.method == "quadrature"
        assert np.all(np.abs(quad.ntk - ref.ntk) <= quad.ntk_error + ref.ntk_error)
        assert np.all(np.abs(quad.nngp - ref.nngp) <= quad.nngp_error + ref.nngp_error)
        assert quad.max_error < 1e-9


@pytest.mark.parametrize("name, method", [("tanh", "quadrature"), ("sigmoid", "quadrature"),
                                          ("gelu", "closed-form")])
def test_quadrature_agrees_with_monte_carlo(name, method):
    from jaxlimit.activations import get_activation

    act = get_activation(name)
    x = _inputs()
    k = estimate_xavier_kernels(x, x, name, W_STD, C_STD)
    assert k.method == method and k.max_error < 1e-6
    fn = lambda u: np.asarray(act.fn(jnp.asarray(u)))  # noqa: E731
    dfn = lambda u: np.asarray(act.derivative(jnp.asarray(u)))  # noqa: E731
    nngp, ntk, se1, se2 = _numpy_monte_carlo(x, fn, dfn, W_STD, C_STD, n=2**18)
    assert np.all(np.abs(np.asarray(k.nngp) - nngp) <= 5 * se1 + 1e-12)
    assert np.all(np.abs(np.asarray(k.ntk) - ntk) <= 5 * se2 + 1e-12)


def test_kernels_are_symmetric_psd_and_rectangular():
    x = _inputs()
    nngp, ntk = xavier_kernels(x, x, "tanh", W_STD, C_STD)
    for k in (nngp, ntk):
        k = np.asarray(k)
        np.testing.assert_allclose(k, k.T, atol=1e-12)
        assert np.linalg.eigvalsh(k)[0] > -1e-10
    a, b = xavier_kernels(x[:2], x[2:], "relu")
    assert a.shape == b.shape == (2, 4)
    np.testing.assert_allclose(b, np.asarray(xavier_kernels(x, x, "relu")[1])[:2, 2:], atol=1e-14)


def test_empirical_ntk_of_a_wide_network_matches_A():
    """The output moves by α (y − g) K_N(x, x_k)/N per step and N steps make a
    unit of time, with K_N(x, x′) = N Σ_leaves lr_leaf ∇g(x)·∇g(x′) (lr = the
    model's per-leaf rates). At initialisation K_N → A as N → ∞; with
    w_std ≠ 1 this pins down that the w-gradient term carries a bare x·x′."""
    x = _inputs()[[0, 2, 3, 4]]
    width = 2**15
    model = TwoLayer(width, x.shape[1], "xavier", "tanh", InitLaw("gaussian", C_STD, W_STD))
    params = model.init(jax.random.key(11), jnp.float64)
    jac = jax.jacrev(model.apply)(params, jnp.asarray(x))  # leaves (P, N) and (P, N, d)
    lr = model.learning_rates()
    # Per-neuron terms t_i, with K_N = mean_i t_i, for a standard error.
    terms = width * width * (
        lr.c * jac.c[:, None, :] * jac.c[None, :, :]
        + lr.w * jnp.einsum("pnd,qnd->pqn", jac.w, jac.w)
    )
    k_emp = np.asarray(terms.mean(axis=-1))
    se = np.asarray(terms.std(axis=-1)) / np.sqrt(width)
    nngp, ntk = (np.asarray(k) for k in xavier_kernels(x, x, "tanh", W_STD, C_STD))
    assert np.all(np.abs(k_emp - ntk) <= 5 * se)
    # The tempting alternative, w_std² x·x′ in the gradient term, is many SEs away.
    ss = nngp / C_STD**2  # E[σσ]
    wrong = ss + W_STD**2 * (ntk - ss)
    assert np.max(np.abs(k_emp - wrong) / se) > 20


def test_nngp_is_the_exact_initial_covariance_of_the_network():
    """Cov(g^N_0(x), g^N_0(x′)) = Σ(x, x′) at every width; check at N = 4."""
    x = _inputs()[:4]
    model = TwoLayer(4, x.shape[1], "xavier", "erf", InitLaw("gaussian", C_STD, W_STD))
    keys = jax.random.split(jax.random.key(2), 2**16)
    out = np.asarray(jax.vmap(lambda k: model.apply(model.init(k, jnp.float64), jnp.asarray(x)))(keys))
    emp = np.cov(out, rowvar=False)
    nngp, _ = xavier_kernels(x, x, "erf", W_STD, C_STD)
    c = np.asarray(nngp)
    # Wishart standard errors of the sample covariance, inflated ×2 for the
    # heavy tails of a width-4 network.
    se = 2 * np.sqrt((c**2 + np.outer(np.diag(c), np.diag(c))) / len(out))
    assert np.all(np.abs(emp - c) <= 5 * se)


def test_bad_inputs_raise_one_line_errors():
    x = _inputs()
    with pytest.raises(InputError, match="shape"):
        xavier_kernels(x[0], x)
    with pytest.raises(InputError, match="dimensions"):
        xavier_kernels(x, x[:, :2])
    with pytest.raises(InputError, match="positive"):
        xavier_kernels(x, x, "tanh", w_std=-1.0)
    with pytest.raises(InputError, match="NaN"):
        xavier_kernels(np.full((2, 3), np.nan), x)
    with pytest.raises(InputError, match="no closed-form"):
        estimate_xavier_kernels(x, x, "tanh", method="closed-form")
    with pytest.raises(InputError, match="unknown kernel method"):
        estimate_xavier_kernels(x, x, "tanh", method="simpson")
    with pytest.raises(InputError, match="unknown activation"):
        xavier_kernels(x, x, "softsign")
