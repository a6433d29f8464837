"""The Xavier limit: ODE solutions, closed forms, finite networks and the verdict."""

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.linalg

from jaxlimit.cli import main
from jaxlimit.data import make_dataset, synthetic_problem
from jaxlimit.errors import InputError
from jaxlimit.limits.xavier import XavierLimit, initial_kurtosis_excess
from jaxlimit.limits.xavier import xavier_limit as _xavier_limit
from jaxlimit.losses import huber_loss
from jaxlimit.models.two_layer import InitLaw, TwoLayer
from jaxlimit.stats import Gaussian, fit_power_law
from jaxlimit.stats.coupling import coupled_moments, mean_drift, pathwise_error
from jaxlimit.stats.verdict import verdict_over_times
from jaxlimit.streams import stream_key
from jaxlimit.training import Execution, Trainer, run_ensemble

TIMES = np.linspace(0.0, 3.0, 7)


def _problem(n_train=4, dim=8, n_probe=2, seed=0):
    return synthetic_problem(stream_key(seed, "data"), n_train, dim, n_probe)


def xavier_limit(data, activation="tanh", alpha=1.0, w_std=1.0, c_std=1.0):
    """The limit of γ = 1/2 networks with this activation (the width does not enter)."""
    model = TwoLayer(64, data.dim, "xavier", activation, InitLaw(c_std=c_std, w_std=w_std))
    return _xavier_limit(model, data, Trainer(alpha=alpha))


def gaussian_limit_verdict(outputs, mean, cov, indices, *, level=0.05, seed=0):
    v = verdict_over_times(outputs, Gaussian(np.asarray(mean), np.asarray(cov)), indices, level=level, seed=seed)
    return v.verdict, v.comparisons


@pytest.mark.parametrize("activation", ["tanh", "relu"])
def test_diffrax_moments_agree_with_the_closed_form(activation):
    limit = xavier_limit(_problem(), activation, alpha=1.5)
    mean, cov = limit.moments(TIMES)
    mean_cf, cov_cf = limit.moments_closed_form(TIMES)
    assert mean.shape == (7, 6) and cov.shape == (7, 6, 6)
    np.testing.assert_allclose(mean, mean_cf, rtol=1e-5, atol=1e-5 * float(jnp.max(jnp.abs(mean_cf))))
    np.testing.assert_allclose(cov, cov_cf, rtol=1e-5, atol=1e-5 * float(jnp.max(jnp.abs(cov_cf))))
    h0 = Gaussian(jnp.zeros(6), limit.nngp).sample(jax.random.key(1), 5)
    np.testing.assert_allclose(limit.pathwise(h0, TIMES), limit.pathwise_closed_form(h0, TIMES),
                               rtol=1e-5, atol=1e-8)


def test_closed_form_matches_matrix_exponential_with_probe_formula():
    """Against scipy's expm: on the training points mean_t = (I − e^{−βAt})Y and
    cov_t = e^{−βAt} Σ e^{−βAt}; at probes
    h_t(x) = G(x) + A(x,X) A⁻¹ (I − e^{−βAt})(Y − G(X))."""
    data = _problem()
    limit = xavier_limit(data, "relu", alpha=2.0)
    m = data.n_train
    a, s = np.asarray(limit.ntk), np.asarray(limit.nngp)
    y = np.asarray(data.y_train)
    beta = 2.0 / m
    mean, cov = (np.asarray(v) for v in limit.moments_closed_form(TIMES))
    for i, t in enumerate(TIMES):
        e = scipy.linalg.expm(-beta * a[:m, :m] * t)
        # h_t = lin @ G + shift, with gain = A(x,X) A⁻¹ (I − e) on the probe rows.
        gain = a[m:, :m] @ np.linalg.solve(a[:m, :m], np.eye(m) - e)  # (Q, M)
        lin = np.block([[e, np.zeros((m, 2))], [-gain, np.eye(2)]])
        shift = np.concatenate([(np.eye(m) - e) @ y, gain @ y])
        np.testing.assert_allclose(mean[i], shift, atol=1e-10)
        np.testing.assert_allclose(cov[i], lin @ s @ lin.T, atol=1e-10)


def test_limit_loss_is_the_expected_squared_error_and_reaches_zero(data, tanh_limit):
    limit = tanh_limit
    cond = limit.conditioning()
    # Long enough for the kernel bound to promise a 10^7-fold drop.
    times = np.array([0.0, 2.0, np.log(1e7) / cond.loss_decay_rate])
    mean, cov = limit.moments_closed_form(times)
    loss = np.asarray(limit.train_loss(Gaussian(mean, cov)))
    h = np.asarray(Gaussian(mean[1], cov[1]).sample(jax.random.key(0), 200_000))
    mc = 0.5 * np.mean((np.asarray(data.y_train) - h[:, : data.n_train]) ** 2)
    assert abs(loss[1] - mc) < 0.01 * mc
    cond = limit.conditioning()
    assert not cond.singular and cond.min_eigenvalue > 0.1
    # Global minimum: below the kernel bound and effectively zero.
    assert loss[2] <= loss[0] * np.exp(-cond.loss_decay_rate * times[2]) * (1 + 1e-9)
    assert loss[2] < 1e-6 * loss[0]


def test_antipodal_inputs_make_an_odd_kernel_singular():
    x = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [-1.0, 0.0, 0.0]])
    data = make_dataset(x, [1.0, 0.5, 1.0])  # y(−x) ≠ −y(x): an odd limit cannot fit it
    limit = xavier_limit(data, "tanh")
    cond = limit.conditioning()
    assert cond.singular and cond.loss_decay_rate == 0.0 and cond.condition_number > 1e10
    mean, cov = limit.moments_closed_form([0.0, 200.0])
    assert float(limit.train_loss(Gaussian(mean, cov))[-1]) > 0.3  # ½·mean: (1 − h)² + (1 + h)² ≥ 2 at the pair
    # ReLU is not odd: the same inputs give an invertible kernel.
    assert not xavier_limit(data, "relu").conditioning().singular


def test_initial_kurtosis_excess_predicts_narrow_networks():
    """Mardia's kurtosis of width-N initial outputs exceeds r(r+2) by κ/N."""
    data = _problem(n_train=3, dim=4, n_probe=1)
    x = data.x_all
    kappa, r = initial_kurtosis_excess(jax.random.key(0), x, "tanh", n_samples=2**18)
    assert r == 4 and kappa > 0
    width = 4
    model = TwoLayer(width, 4, "xavier", "tanh")
    keys = jax.random.split(jax.random.key(3), 2**17)
    out = np.asarray(jax.vmap(lambda k: model.apply(model.init(k, jnp.float64), x))(keys))
    cov = np.asarray(xavier_limit(data, "tanh").nngp)
    z = out @ np.linalg.inv(np.linalg.cholesky(cov)).T
    excess = np.mean(np.sum(z**2, axis=1) ** 2) - r * (r + 2)
    assert excess == pytest.approx(kappa / width, rel=0.1)
    assert kappa / width > 5.0  # far from the Gaussian value 0: the check has teeth


def _ensemble(width, members, t_max, *, scaling="xavier", data=None, n_times=4, lanes=64, seed=0):
    data = _problem() if data is None else data
    model = TwoLayer(width, data.dim, scaling, "tanh")
    times = np.linspace(0.0, t_max, n_times + 1)
    return run_ensemble(model, data, Trainer(alpha=1.0), times=times, n_members=members,
                        dtype=jnp.float32, seed=seed, execution=Execution(lanes=lanes))


@pytest.fixture(scope="module")
def data():
    return _problem()


@pytest.fixture(scope="module")
def tanh_limit(data):
    return xavier_limit(data, "tanh")


@pytest.fixture(scope="module")
def xavier_ensemble(data):
    """512 networks of width 256 to t = 2: finite width well below what 512 members resolve."""
    return _ensemble(256, 512, 2.0, data=data)


def test_networks_follow_their_own_limit_path_at_rate_inverse_square_root(data, tanh_limit):
    """Each network stays O(N^-1/2) from the limit ODE started at its own initial
    outputs; at width 4096 a clock off by 2 in either direction is far worse."""
    widths = [64, 256, 1024, 4096]
    rms, se = [], []
    for n in widths:
        result = _ensemble(n, 16, 1.0, data=data, lanes=16)
        h0 = result.outputs[:, 0].astype(np.float64)
        err = pathwise_error(result.outputs, np.asarray(tanh_limit.pathwise(h0, result.times)))
        rms.append(err.rms)
        se.append(err.se)
    fit = fit_power_law(widths, rms, y_err=se)
    assert abs(fit.slope + 0.5) < 0.15
    assert rms[-1] < 0.03
    for factor in (0.5, 2.0):
        wrong = np.asarray(tanh_limit.pathwise_closed_form(h0, factor * result.times))
        assert pathwise_error(result.outputs, wrong).rms > 3 * rms[-1]


def test_ensemble_mean_follows_the_limit_mean(tanh_limit, xavier_ensemble):
    result = xavier_ensemble
    mean, cov = (np.asarray(v) for v in tanh_limit.moments(result.times))
    se = np.sqrt(np.diagonal(cov, axis1=1, axis2=2) / result.n_members)
    z = (result.outputs.mean(axis=0) - mean) / se
    assert np.max(np.abs(z)) < 4.5
    wrong, _ = tanh_limit.moments_closed_form(2.0 * result.times)
    assert np.max(np.abs((result.outputs.mean(axis=0) - np.asarray(wrong)) / se)) > 10


def _limit_samples(limit: XavierLimit, times, n, key):
    """Exact draws of the limit at every time, with the right dependence across times."""
    g = Gaussian(jnp.zeros(limit.n_points), limit.nngp).sample(key, n)
    return np.asarray(limit.pathwise_closed_form(g, times))


def test_verdict_false_alarm_rate_on_exact_limit_samples(tanh_limit):
    limit = tanh_limit
    times = np.array([0.0, 1.0, 2.0])
    mean, cov = (np.asarray(v) for v in limit.moments_closed_form(times))
    rejections = 0
    reps = 100
    for rep in range(reps):
        outputs = _limit_samples(limit, times, 200, jax.random.key(1000 + rep))
        verdict, comps = gaussian_limit_verdict(outputs, mean, cov, [0, 1, 2], level=0.05, seed=rep)
        assert all(c.level == pytest.approx(0.05 / 3) for c in comps)
        rejections += verdict == "inconsistent"
    # Nominal rate ≤ 5%: P(Binomial(100, 0.05) ≥ 12) ≈ 0.004.
    assert rejections <= 11


def test_verdict_accepts_xavier_and_rejects_mean_field_networks_and_a_wrong_kernel(
        data, tanh_limit, xavier_ensemble):
    mean, cov = (np.asarray(v) for v in tanh_limit.moments(xavier_ensemble.times))
    verdict, _ = gaussian_limit_verdict(xavier_ensemble.outputs, mean, cov, [0, 2, 4])
    assert verdict == "consistent"
    mean_field = _ensemble(64, 128, 2.0, scaling="mean-field", data=data)
    verdict, _ = gaussian_limit_verdict(mean_field.outputs, mean, cov, [0, 2, 4])
    assert verdict == "inconsistent"
    # tanh networks against the ReLU limit: Σ differs by about a quarter.
    relu_limit = xavier_limit(data, "relu")
    mean_r, cov_r = (np.asarray(v) for v in relu_limit.moments_closed_form(xavier_ensemble.times))
    verdict, _ = gaussian_limit_verdict(xavier_ensemble.outputs, mean_r, cov_r, [0, 2, 4])
    assert verdict == "inconsistent"


def test_coupled_moments_are_exact_when_networks_equal_their_limit(tanh_limit):
    limit = tanh_limit
    times = np.array([0.0, 1.5])
    paths = _limit_samples(limit, times, 300, jax.random.key(4))
    mean, cov = (np.asarray(v) for v in limit.moments_closed_form(times))
    m, c = coupled_moments(paths[:, 1], paths[:, 1], mean[1], cov[1])
    np.testing.assert_allclose(m, mean[1], atol=1e-14)
    np.testing.assert_allclose(c, cov[1], atol=1e-14)
    shifted_m, _ = coupled_moments(paths[:, 1] + 0.1, paths[:, 1], mean[1], cov[1])
    np.testing.assert_allclose(shifted_m, mean[1] + 0.1, atol=1e-12)


def test_mean_drift_finds_a_shift_hidden_in_the_initial_draw_noise():
    # Outputs = paths + Δ with a shift 0.02 at point 1 and noise 0.05; the paths themselves
    # scatter with sd 1, so the shift is 0.6 SE of the plain mean but 12.6 SE of the coupled drift.
    rng = np.random.default_rng(0)
    e, shift = 1000, np.array([0.0, 0.02, 0.0])
    paths = rng.normal(size=(e, 3))
    delta = shift + 0.05 * rng.normal(size=(e, 3))
    drift = mean_drift(paths + delta, paths)
    assert drift.worst == 1
    np.testing.assert_allclose(drift.value, delta.mean(axis=0), atol=1e-15)
    np.testing.assert_allclose(drift.se, delta.std(axis=0, ddof=1) / np.sqrt(e), rtol=1e-12)
    assert 9.0 < drift.z < 16.0
    assert abs(drift.in_units_of(np.ones(3) / np.sqrt(e))) < 1.0
    exact = mean_drift(paths, paths)
    assert exact.z == 0.0 and np.all(exact.value == 0.0)
    with pytest.raises(InputError, match="one shape"):
        mean_drift(paths[:, :2], paths)


def test_limit_rejects_malformed_inputs(tanh_limit):
    limit = tanh_limit
    with pytest.raises(InputError, match="shape"):
        limit.pathwise(np.zeros((3, 5)), TIMES)
    with pytest.raises(InputError, match="non-decreasing"):
        limit.moments([0.0, 2.0, 1.0])
    with pytest.raises(InputError):
        XavierLimit(jnp.eye(3), jnp.eye(2), jnp.zeros(2), 1.0)


def test_xavier_command_writes_the_promised_report(tmp_path):
    out = tmp_path / "rep"
    code = main(["xavier", "--width", "32", "--ensemble", "64", "--t-max", "0.5", "--n-times", "2",
                 "--long-members", "2", "--long-time", "1", "--no-progress", "--out", str(out)])
    assert code == 0
    rep = json.loads((out / "report.json").read_text())
    assert rep["experiment"] == "xavier"
    assert rep["verdict"]["gaussian_limit"] in ("consistent", "inconsistent")
    for key in ("mean_error", "cov_rel_error", "bures_w2", "mahalanobis_ks_pvalue", "pathwise_max_error",
                "kernel_min_eigenvalue", "final_train_loss_limit", "final_train_loss_ensemble",
                "global_min_train_loss_ensemble", "finite_width_effect_z"):
        assert key in rep["metrics"]
    assert rep["metrics"]["limit_ode_max_error"] < 1e-6
    for stem in ("trajectories", "marginal", "loss", "effects"):
        assert (out / f"{stem}.png").stat().st_size > 0
    assert set(rep["timing"]) >= {"limit", "ensemble", "comparison"}


def test_sweep_command_fits_slopes(tmp_path):
    out = tmp_path / "sweep"
    code = main(["sweep", "xavier", "--widths", "16,64", "--ensemble", "16", "--t-max", "0.5",
                 "--n-times", "2", "--no-progress", "--out", str(out)])
    assert code == 0
    rep = json.loads((out / "report.json").read_text())
    for key in ("slope_pathwise", "slope_pathwise_ci", "slope_bures", "slope_bures_ci"):
        assert key in rep["metrics"]
    assert (out / "rates.png").exists()


def test_the_limit_refuses_networks_it_does_not_describe(data):
    with pytest.raises(InputError, match="γ = 1/2"):
        _xavier_limit(TwoLayer(16, data.dim, "mean-field"), data)
    with pytest.raises(InputError, match="Gaussian"):
        _xavier_limit(TwoLayer(16, data.dim, "xavier", "tanh", InitLaw("uniform")), data)
    with pytest.raises(InputError, match="squared loss"):
        _xavier_limit(TwoLayer(16, data.dim), data, Trainer(loss=huber_loss()))
    with pytest.raises(InputError, match="dimension"):
        _xavier_limit(TwoLayer(16, data.dim + 1), data)
