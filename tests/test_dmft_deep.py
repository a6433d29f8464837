"""The DMFT of deep μP networks in discrete time (docs/feature-learning.md, "Any depth"): the exact linear
solution against an independent recursion at depth 1, against the lazy limit of ``mlp_kernels`` at γ₀ → 0
and against real networks at depth 2; the sampled solver against the exact one and, for erf, against real
networks."""

import jax.numpy as jnp
import numpy as np
import pytest

from jaxlimit.activations import Activation
from jaxlimit.data import make_dataset
from jaxlimit.errors import InputError
from jaxlimit.limits.dmft_deep import deep_dmft
from jaxlimit.limits.mlp import mlp_kernels
from jaxlimit.models.feature_mlp import FeatureMLP
from jaxlimit.training import Trainer, run_ensemble

RNG = np.random.default_rng(1)
X = RNG.standard_normal((4, 3))  # 3 training points and 1 test point
Y = RNG.standard_normal(3)


def _second_moment_recursion(x, y, gamma0, dt, steps):
    """Depth 1, φ = identity, by another route: a site (a, h) moves linearly, a ← a + c Δ·h_train,
    h ← h + c a K_x Δ (c = γ₀ dt), so its second moments S = ⟨(a, h)(a, h)ᵀ⟩ obey S ← T S Tᵀ exactly,
    with f = S[a, h]/γ₀ and the NTK S[h, h] + S[a, a] K_x."""
    p, m = len(y), len(x)
    kx = x @ x.T / x.shape[1]
    s = np.zeros((m + 1, m + 1))
    s[0, 0], s[1:, 1:] = 1.0, kx
    fs, ntks = [], []
    for _ in range(steps):
        f = s[0, 1:] / gamma0
        fs.append(f)
        ntks.append(s[1:, 1:] + s[0, 0] * kx)
        delta = np.zeros(m)
        delta[:p] = (y - f[:p]) / p
        t = np.eye(m + 1)
        t[0, 1:], t[1:, 0] = gamma0 * dt * delta, gamma0 * dt * kx @ delta
        s = t @ s @ t.T
    return np.array(fs), np.array(ntks)


def test_depth_one_is_the_exact_second_moment_recursion():
    sol = deep_dmft(X[:3], Y, X[3:], depth=1, activation="identity", gamma0=1.3, time_step=0.1, t_max=2.0)
    f, ntk = _second_moment_recursion(X, Y, 1.3, 0.1, len(sol.times))
    np.testing.assert_allclose(sol.mean, f, rtol=0, atol=1e-12)
    np.testing.assert_allclose(sol.ntk, ntk, rtol=0, atol=1e-11)
    assert np.max(np.abs(ntk[-1] - ntk[0])) > 0.1  # the kernel moved: the check is not of a frozen kernel


@pytest.mark.parametrize("depth", [2, 3])
def test_gamma0_to_zero_is_the_lazy_limit_of_mlp_kernels(depth):
    """γ₀ → 0: the NTK is mlp_kernels' (W_std = 1, b_std = 0) at every step and f follows its Euler steps."""
    dt, t_max = 0.1, 2.0
    _, ntk = mlp_kernels(X, X, depth=depth, activation="identity", W_std=1.0, b_std=0.0)
    sol = deep_dmft(X[:3], Y, X[3:], depth=depth, activation="identity", gamma0=1e-5, time_step=dt, t_max=t_max)
    f, lazy = np.zeros(4), []
    for _ in sol.times:
        lazy.append(f)
        f = f + dt * ntk[:, :3] @ (Y - f[:3]) / 3
    np.testing.assert_allclose(sol.mean, np.array(lazy), rtol=0, atol=1e-9)
    np.testing.assert_allclose(sol.ntk, np.broadcast_to(ntk, sol.ntk.shape), rtol=0, atol=1e-8)
    strong = deep_dmft(X[:3], Y, X[3:], depth=depth, activation="identity", gamma0=1.0, time_step=dt, t_max=t_max)
    assert np.max(np.abs(strong.mean - np.array(lazy))) > 0.02
    assert np.max(np.abs(strong.ntk[-1] - ntk)) > 0.3


def test_real_depth_two_networks_follow_the_dmft_not_the_lazy_limit():
    """400 linear μP networks, 2 hidden layers of 512, γ₀ = 1, trained by the engine with the DMFT's steps
    (float32: the mean's standard error, ~2e-3, is far above its rounding)."""
    dt, times, n, members = 0.1, np.array([0.5, 1.0]), 512, 400
    x = X * np.sqrt(3.0) / np.linalg.norm(X, axis=1, keepdims=True)  # |x|²/D = 1
    sol = deep_dmft(x[:3], Y, x[3:], depth=2, activation="identity", gamma0=1.0, time_step=dt, t_max=1.0)
    lazy = deep_dmft(x[:3], Y, x[3:], depth=2, activation="identity", gamma0=1e-5, time_step=dt, t_max=1.0)
    res = run_ensemble(FeatureMLP(n, 3, 2, "identity", 1.0, time_step=dt), make_dataset(x[:3], Y, x[3:]),
                       Trainer(alpha=1.0, method="fullbatch"), times=times, n_members=members, seed=5,
                       dtype=jnp.float32)
    out = np.asarray(res.outputs, np.float64)  # (E, T, M), t = 0 first
    se = out.std(0, ddof=1) / np.sqrt(members)
    k = sol.at(np.asarray(res.times))
    z = (out.mean(0) - sol.mean[k]) / se
    z_lazy = (out.mean(0) - lazy.mean[k]) / se
    assert np.max(np.abs(z)) < 4, z
    assert np.max(np.abs(z_lazy[-1])) > 8, z_lazy  # the check can tell feature learning from lazy training


def test_bad_input_refused_before_compute():
    args = {"depth": 2, "activation": "identity", "gamma0": 1.0, "time_step": 0.1, "t_max": 1.0}
    for change, words in (({"activation": "relu"}, "smooth"), ({"activation": "erf", "samples": 7}, "even"), ({"gamma0": 0.0}, "gamma0"),
                          ({"depth": 0}, "depth"), ({"time_step": -0.1}, "time_step"),
                          ({"time_step": 1e-4}, "grid")):
        with pytest.raises(InputError, match=words):
            deep_dmft(X[:3], Y, X[3:], **(args | change))
    sol = deep_dmft(X[:3], Y, X[3:], **args)
    with pytest.raises(InputError, match="multiples"):
        sol.at([0.05])


def test_sampled_solver_matches_the_exact_one_at_depth_two():
    """The sampled site process (responses by forward-mode derivatives of the sample means) on a linear φ
    that it cannot recognise as linear, against the exact linear algebra: f and the NTK at every step."""
    linear = Activation("sampled-identity", lambda u: u, jnp.ones_like)
    args = {"depth": 2, "gamma0": 1.0, "time_step": 0.25, "t_max": 1.0}
    exact = deep_dmft(X[:3], Y, X[3:], activation="identity", **args)
    sampled = deep_dmft(X[:3], Y, X[3:], activation=linear, samples=1000, replicas=8, seed=2, **args)
    assert not sampled.exact and np.all(sampled.mean_se[1:] > 0)
    assert np.max(np.abs((sampled.mean - exact.mean)[1:] / sampled.mean_se[1:])) < 4.5
    assert np.max(np.abs((sampled.ntk - exact.ntk) / sampled.ntk_se)) < 4.5


def test_real_erf_networks_follow_the_sampled_dmft_at_depth_two():
    """400 erf μP networks, 2 hidden layers of 512, γ₀ = 1, against the sampled DMFT at t = 0.6 and 1."""
    dt, n, members = 0.2, 512, 400
    x = X * np.sqrt(3.0) / np.linalg.norm(X, axis=1, keepdims=True)
    sol = deep_dmft(x[:3], Y, x[3:], depth=2, activation="erf", gamma0=1.0, time_step=dt, t_max=1.0,
                    samples=1000, replicas=8)
    _, ntk = mlp_kernels(x, x, depth=2, activation="erf", W_std=1.0, b_std=0.0)
    f, lazy = np.zeros(4), []
    for _ in sol.times:
        lazy.append(f)
        f = f + dt * ntk[:, :3] @ (Y - f[:3]) / 3
    res = run_ensemble(FeatureMLP(n, 3, 2, "erf", 1.0, time_step=dt), make_dataset(x[:3], Y, x[3:]),
                       Trainer(alpha=1.0, method="fullbatch"), times=np.array([0.6, 1.0]), n_members=members,
                       seed=5, dtype=jnp.float32)
    out = np.asarray(res.outputs, np.float64)
    se = out.std(0, ddof=1) / np.sqrt(members)
    k = sol.at(np.asarray(res.times))
    z = (out.mean(0) - sol.mean[k]) / np.sqrt(se ** 2 + sol.mean_se[k] ** 2)
    assert np.max(np.abs(z)) < 4, z
    assert np.max(np.abs((out.mean(0) - np.array(lazy)[k])[-1] / se[-1])) > 5
