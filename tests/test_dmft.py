"""The feature-learning (μP, γ₀) limit: the two-layer linear DMFT against its closed form, against
the exact finite-width dynamics sampled by Monte Carlo, against ensembles of real networks, and
its lazy limit γ₀ → 0 against ``mlp_limit`` (docs/feature-learning.md)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.optimize import brentq

from jaxlimit.data import make_dataset
from jaxlimit.errors import InputError
from jaxlimit.limits.dmft import dmft_limit, one_point_time
from jaxlimit.limits.mlp import mlp_limit
from jaxlimit.models.feature_mlp import FeatureMLP
from jaxlimit.training import Trainer, run_ensemble

X1 = np.array([[1.0, 1.0, -1.0, 1.0]])  # |x|²/D = 1
XT = np.array([[1.0, -1.0, 0.5, 0.0]])  # a test point with K_x(x, x_test) = 0.125


def _z_mean(samples, predicted):
    """(sample mean − predicted) / its standard error, per coordinate."""
    return (samples.mean(0) - predicted) / (samples.std(0, ddof=1) / np.sqrt(len(samples)))


def _z_variance(samples, predicted_var):
    """(sample variance / predicted − 1) / the ratio's standard error (from the sample's fourth moment)."""
    c = samples - samples.mean(0)
    v = np.mean(c**2, axis=0)
    se = np.sqrt((np.mean(c**4, axis=0) - v**2) / len(samples)) / v
    return (samples.var(0, ddof=1) / predicted_var - 1.0) / se


def test_one_point_conservation_and_closed_form():
    """K² − 4γ₀²f² = 4 along the mean, and f(t) is the inverse of the closed form t(f) to 1e-6."""
    times = np.array([0.05, 0.2, 0.5, 1.0, 2.0, 3.0])
    for g in (0.5, 2.0):
        path = dmft_limit(X1, [1.0], XT, depth=1, activation="identity", gamma0=g, width=10).mean_path(times)
        f = np.asarray(path.f[:, 0])  # the training point (a test point rides along)
        k = np.asarray(path.H[:, 0, 0] + path.G)
        np.testing.assert_allclose(k**2 - 4 * g * g * f**2, 4.0, rtol=0, atol=1e-8)
        exact = [brentq(lambda u: one_point_time(u, g) - t, 0.0, 1.0 - 1e-15, xtol=1e-14) for t in times]
        np.testing.assert_allclose(f, exact, rtol=0, atol=1e-6)
        # feature learning is visible: the lazy path 1 − e^{−2t} is far away at these γ₀
        assert np.max(np.abs(f - (1 - np.exp(-2 * times)))) > 1e-2
    assert one_point_time(0.5, 1e-8) == pytest.approx(0.5 * np.log(2.0), abs=1e-12)


def test_covariance_and_mean_shift_against_exact_finite_width_monte_carlo():
    """The (f, H, G) system is exact at any width: sample width-N initial states, solve, compare the
    sample moments with the tangent covariance and the O(1/N) mean shift."""
    times = np.array([0.0, 0.5, 1.0])
    lim = dmft_limit(X1, [1.0], XT, depth=1, activation="identity", gamma0=1.0, width=100)
    law = lim.predict(times)
    shift = np.asarray(lim.mean_correction(times))
    f = np.asarray(lim.finite_width_paths(lim.sample_initial_states(jax.random.key(1), 4000), times).f)
    var = np.diagonal(np.asarray(law.cov), axis1=1, axis2=2)
    for i in range(len(times)):
        assert np.all(np.abs(_z_mean(f[:, i], np.asarray(law.mean[i]) + shift[i])) < 4)
    for i in range(2):
        assert np.all(np.abs(_z_variance(f[:, i], var[i])) < 4)
    # at t = 1 the training point's variance has shrunk 2000-fold and its O(1/N²) part is a few % of it
    np.testing.assert_allclose(f[:, 2].var(0, ddof=1) / var[2], 1.0, atol=0.15)
    # the O(1/N) shift is resolved at this size: the infinite-width mean alone is many SE off
    assert _z_mean(f[:, 2], np.asarray(law.mean[2]))[0] < -5
    # and the covariance is not the lazy one: dropping the kernels' fluctuations changes it visibly
    assert abs(law.cov[1, 0, 0] * 100 - np.exp(-4 * 0.5)) > 0.05


def test_ensemble_of_real_mup_networks_agrees_with_the_limit():
    """2000 two-layer linear μP networks of width 100 trained by the engine (Euler, dt = 0.002)."""
    times = np.array([0.0, 0.5, 1.0])
    n, g = 100, 1.0
    data = make_dataset(X1, np.array([1.0]), XT)
    res = run_ensemble(FeatureMLP(n, 4, 1, "identity", g, time_step=0.002), data,
                       Trainer(alpha=1.0, method="fullbatch"), times=times, n_members=2000, seed=3,
                       dtype=jnp.float64)
    out = np.asarray(res.outputs)
    lim = dmft_limit(X1, [1.0], XT, depth=1, activation="identity", gamma0=g, width=n)
    law, shift = lim.predict(times), np.asarray(lim.mean_correction(times))
    var = np.diagonal(np.asarray(law.cov), axis1=1, axis2=2)
    for i in range(len(times)):
        assert np.all(np.abs(_z_mean(out[:, i], np.asarray(law.mean[i]) + shift[i])) < 4)
    for i in range(2):
        assert np.all(np.abs(_z_variance(out[:, i], var[i])) < 4)
    np.testing.assert_allclose(out[:, 2].var(0, ddof=1) / var[2], 1.0, atol=0.15)
    # the networks learn features: their NTK at t = 1 moved as the DMFT says, away from 2K_x
    model = FeatureMLP(n, 4, 1, "identity", g, time_step=0.002)
    assert model.describe()["gamma0"] == g
    kern = lim.kernels(np.array([1.0]), fluctuations=False)
    assert abs(kern.ntk[0, 0, 0] - 2.0) > 0.3


def test_network_ntk_is_the_dmft_kernel_at_initialisation():
    """γ₀² N J Jᵀ = H₀ + G₀ K_x for a drawn network, and ≈ 2K_x at large width."""
    model = FeatureMLP(4000, 4, 1, "identity", 0.7)
    params = model.init(jax.random.key(0), jnp.float64)
    x = np.concatenate([X1, XT])
    k = np.asarray(model.ntk(params, jnp.asarray(x)))
    h = np.asarray(model.features(params, jnp.asarray(x))[0])
    kx = x @ x.T / 4
    np.testing.assert_allclose(k, h @ h.T / 4000 + np.mean(np.asarray(params[1]) ** 2) * kx, rtol=1e-10)
    np.testing.assert_allclose(k, 2 * kx, atol=0.1)


def test_gamma0_to_zero_is_the_lazy_mlp_limit():
    """Mean → mlp_limit's mean, γ₀²N · covariance → its covariance (W_std = 1, b_std = 0, η = 1)."""
    rng = np.random.default_rng(0)
    xa, xb, y = rng.normal(size=(1, 3)), rng.normal(size=(1, 3)), rng.normal(size=1)
    times = np.array([0.0, 0.3, 1.5])
    lazy = mlp_limit(xa, y, xb, depth=1, activation="identity", W_std=1.0, b_std=0.0, learning_rate=1.0)
    want = lazy.predict(times)
    g, n = 1e-4, 50
    law = dmft_limit(xa, y, xb, depth=1, activation="identity", gamma0=g, width=n).predict(times)
    np.testing.assert_allclose(law.mean, want.mean, rtol=0, atol=1e-7)
    np.testing.assert_allclose(np.asarray(law.cov) * g * g * n, want.cov, rtol=0, atol=1e-6)
    # at γ₀ = 1 the mean is visibly not the lazy one
    strong = dmft_limit(xa, y, xb, depth=1, activation="identity", gamma0=1.0, width=n)
    assert np.max(np.abs(np.asarray(strong.mean_path(times).f) - want.mean)) > 1e-2


@pytest.mark.parametrize("kwargs, words", [
    ({"gamma0": 0.0}, "gamma0"),
    ({"gamma0": -1.0}, "gamma0"),
    ({"width": 0}, "width"),
    ({"depth": 2}, "two-layer linear"),
    ({"activation": "relu"}, "two-layer linear"),
    ({"activation": "nonsense"}, "activation"),
])
def test_bad_input_refused(kwargs, words):
    args = {"depth": 1, "activation": "identity", "gamma0": 1.0, "width": 10} | kwargs
    with pytest.raises(InputError, match=words):
        dmft_limit(X1, [1.0], None, **args)
    with pytest.raises(InputError, match="gamma0"):
        FeatureMLP(10, 4, 1, "identity", gamma0=0.0)


def test_a_covariance_too_large_for_memory_is_refused_before_compute():
    x = np.random.default_rng(0).normal(size=(400, 400))
    lim = dmft_limit(x, np.zeros(400), None, depth=1, activation="identity", gamma0=1.0, width=10)
    with pytest.raises(InputError, match="GiB"):
        lim.predict([0.0, 1.0])


@pytest.mark.parametrize("argv, words", [
    (["--gamma0", "0"], "gamma0"),
    (["--depth", "2", "--activation", "relu"], "smooth activation"),
    (["--activation", "relu"], "smooth activation"),
])
def test_command_refuses_before_compute(argv, words, tmp_path, capsys):
    from jaxlimit.cli import main

    assert main(["feature-learning", *argv, "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err.strip()
    assert words in err and len(err.splitlines()) == 1
    assert not (tmp_path / "r").exists()


def test_single_site_monte_carlo_matches_the_exact_linear_dmft():
    """The two-layer single-site process (any φ) at φ = identity against the exact (f, H, G) solution,
    within its Monte Carlo standard error."""
    from jaxlimit.limits.dmft import two_layer_single_site

    times = np.array([0.0, 0.5, 1.0, 2.0])
    # γ₀ = 2, not 1: a wrong power of γ₀ in either equation is then visible
    est = two_layer_single_site(X1, [1.0], XT, activation="identity", gamma0=2.0, times=times, samples=1024,
                                replicas=8, seed=0)
    exact = dmft_limit(X1, [1.0], XT, depth=1, activation="identity", gamma0=2.0, width=10)
    f = np.asarray(exact.mean_path(times).f)
    assert np.all(np.abs(est.mean[0]) < 1e-12)  # mirrored sites: f₀ = 0 exactly
    assert np.all(np.abs(est.mean[1:] - f[1:]) < 4 * est.mean_se[1:])
    ntk = exact.kernels(times, fluctuations=False).ntk
    assert np.all(np.abs(est.ntk - ntk) < 4 * est.ntk_se + 1e-12)
    assert np.max(est.mean_se[1:]) < 0.01  # and the error bar is small enough to mean something


@pytest.mark.parametrize("activation", ["relu", "erf"])
def test_single_site_monte_carlo_at_small_gamma0_is_the_lazy_limit(activation):
    """γ₀ → 0: the single-site mean and NTK are mlp_limit's (W_std = 1, b_std = 0) within the Monte Carlo
    error (a wrong γ₀ scaling of either equation would move the mean by O(1) here)."""
    from jaxlimit.limits.dmft import two_layer_single_site

    times = np.array([0.0, 0.5, 1.0, 2.0])
    lazy = mlp_limit(X1, [1.0], XT, depth=1, activation=activation, W_std=1.0, b_std=0.0, learning_rate=1.0)
    want = np.asarray(lazy.predict(times).mean)
    est = two_layer_single_site(X1, [1.0], XT, activation=activation, gamma0=1e-3, times=times, samples=1024,
                                replicas=8, seed=1)
    assert np.all(np.abs(est.mean[1:] - want[1:]) < 4 * est.mean_se[1:])
    assert np.all(np.abs(est.ntk[0] - np.asarray(lazy.ntk)) < 4 * est.ntk_se[0])


def test_command_writes_its_report_with_a_consistent_verdict(tmp_path):
    """A small run of ``jaxlimit feature-learning``: consistent with the DMFT law at width 128 (the
    O(1/N) covariance included); every metric has its glossary line and every figure's text fits
    (checked as every report is, tests/conftest.py)."""
    import json

    from jaxlimit.cli import main

    out = tmp_path / "r"
    assert main(["feature-learning", "--width", "128", "--ensemble", "256", "--kernel-ensemble", "4", "--t-max", "1",
                 "--n-times", "2", "--no-progress", "--out", str(out)]) == 0
    report = json.loads((out / "report.json").read_text())
    assert report["verdict"] and set(report["verdict"].values()) == {"consistent"}, report["verdict"]
