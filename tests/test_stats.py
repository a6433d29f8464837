"""The statistics package: closed forms, calibration and power of the verdict,
singular predictions, power-law fits and intervals."""

import json

import jax
import numpy as np
import pytest
import scipy.linalg
from scipy import stats as sps

from jaxlimit.errors import InputError
from jaxlimit.stats import (
    Gaussian,
    bootstrap_ci,
    compare_gaussian,
    fit_power_law,
    gaussian_w2,
    proportion_interval,
)

P = 6


def _prediction(seed: int = 0, p: int = P) -> Gaussian:
    """A non-trivial covariance: correlated, variances spread over a factor ~30."""
    rng = np.random.default_rng(seed)
    q, _ = np.linalg.qr(rng.standard_normal((p, p)))
    eigenvalues = np.geomspace(0.05, 1.5, p)
    return Gaussian(rng.standard_normal(p), (q * eigenvalues) @ q.T)


def _draw(prediction: Gaussian, n: int, rng: np.random.Generator) -> np.ndarray:
    """Draws from the prediction by Cholesky (independent of Gaussian.sample's eigh)."""
    factor = np.linalg.cholesky(np.asarray(prediction.cov))
    return np.asarray(prediction.mean) + rng.standard_normal((n, prediction.dim)) @ factor.T


# ---------------------------------------------------------------- gaussian_w2


def test_w2_one_dimensional_closed_form():
    # W2² = (m1 − m2)² + (s1 − s2)² in one dimension.
    assert gaussian_w2([0.3], [[4.0]], [-1.0], [[0.25]]) == pytest.approx(np.hypot(1.3, 1.5), rel=1e-12)


def test_w2_commuting_covariances():
    m1, m2 = np.array([1.0, 0.0, 2.0]), np.array([0.0, 0.5, 2.0])
    s1, s2 = np.array([1.0, 2.0, 0.5]), np.array([3.0, 0.1, 0.5])
    expected = np.sqrt(np.sum((m1 - m2) ** 2) + np.sum((s1 - s2) ** 2))
    assert gaussian_w2(m1, np.diag(s1**2), m2, np.diag(s2**2)) == pytest.approx(expected, rel=1e-12)


def test_w2_against_scipy_sqrtm_symmetric_and_zero_on_identical():
    rng = np.random.default_rng(3)
    a, b = rng.standard_normal((2, 5, 5))
    c1, c2 = a @ a.T, b @ b.T + 0.1 * np.eye(5)
    m1, m2 = rng.standard_normal((2, 5))
    root1 = scipy.linalg.sqrtm(c1)
    cross = np.real(np.trace(scipy.linalg.sqrtm(root1 @ c2 @ root1)))
    expected = np.sqrt(np.sum((m1 - m2) ** 2) + np.trace(c1) + np.trace(c2) - 2 * cross)
    assert gaussian_w2(m1, c1, m2, c2) == pytest.approx(expected, rel=1e-9)
    assert gaussian_w2(m2, c2, m1, c1) == pytest.approx(expected, rel=1e-9)
    assert gaussian_w2(m1, c1, m1, c1) < 1e-6


def test_w2_singular_covariances():
    # Supported on the first axis only: reduces to the 1-D formula.
    assert gaussian_w2([0.0, 0.0], np.diag([1.0, 0.0]), [0.0, 0.0], np.diag([4.0, 0.0])) == pytest.approx(1.0)
    with pytest.raises(InputError):
        gaussian_w2([0.0], [[1.0]], [0.0, 0.0], np.eye(2))


# ---------------------------------------------------------------- Gaussian


def test_sample_moments_and_singular_support():
    prediction = _prediction(1, p=4)
    x = np.asarray(prediction.sample(jax.random.key(0), 200_000))
    assert x.shape == (200_000, 4)
    # Monte Carlo errors are ~ sqrt(1.5 / 2e5) ≈ 0.003; tolerances are ~5 SE.
    np.testing.assert_allclose(x.mean(axis=0), prediction.mean, atol=0.015)
    np.testing.assert_allclose(np.cov(x, rowvar=False), prediction.cov, atol=0.02)

    # Rank one with a slightly negative rounding eigenvalue: samples lie on the line.
    v = np.array([1.0, 2.0, -1.0]) / np.sqrt(6.0)
    singular = Gaussian(np.zeros(3), np.outer(v, v) - 1e-15 * np.eye(3))
    y = np.asarray(singular.sample(jax.random.key(1), 1000))
    assert np.all(np.isfinite(y))
    np.testing.assert_allclose(y - np.outer(y @ v, v), 0.0, atol=1e-6)
    assert np.var(y @ v) == pytest.approx(1.0, rel=0.15)


def test_select_marginal():
    prediction = _prediction(2)
    part = prediction.select([4, 1])
    np.testing.assert_array_equal(part.mean, prediction.mean[[4, 1]])
    np.testing.assert_array_equal(part.cov, prediction.cov[np.ix_([4, 1], [4, 1])])
    with pytest.raises(InputError):
        Gaussian(np.zeros(3), np.eye(2))


# ---------------------------------------------------------------- calibration


def test_null_calibration():
    """Samples drawn from the prediction itself: the verdict's false-alarm rate
    is at most the level and the exact p-values are uniform."""
    prediction = _prediction(0)
    n_sets = 200
    rng = np.random.default_rng(2024)
    results = [
        compare_gaussian(_draw(prediction, 400, rng), prediction, seed=s) for s in range(n_sets)
    ]
    false_alarms = np.mean([r.verdict == "inconsistent" for r in results])
    # Bonferroni over 4 positively dependent tests: the true rate is just
    # below 0.05; with 200 sets its SE is ≈ 0.015, so 0.10 is > 3 SE above the
    # level and 0.005 is ≈ 3 SE below a rate of 0.05. A verdict that ignored one
    # test's multiplicity (rate ~0.15) or never rejected (0) fails.
    assert 0.005 <= false_alarms <= 0.10, false_alarms
    for name in ("mean_pvalue", "mahalanobis_ks_pvalue"):
        pvalues = [getattr(r, name) for r in results]
        assert sps.kstest(pvalues, "uniform").pvalue > 1e-3, name
    for name in ("marginal_ks_pvalue", "energy_pvalue"):
        # Valid (super-uniform) p-values: rejections at 0.05 no more often than ~0.05.
        assert np.mean(np.array([getattr(r, name) for r in results]) < 0.05) <= 0.10, name
    assert all(r.effective_dim == P and r.n_tests == 4 for r in results)
    # Effect sizes shrink like E^{-1/2}: at E = 400 they are small but non-zero.
    assert 0.01 < np.median([r.cov_rel_error for r in results]) < 0.2


def test_each_component_test_rejects_at_its_nominal_rate_at_the_verdicts_threshold():
    """Every test the verdict combines, under the null, at the threshold the verdict
    uses it at (level 0.05 over 3 times and 4 tests: 0.05/12): rejection counts
    within binomial error of nominal (exact tests) or below it (conservative ones),
    p-values uniform for the exact ones, and each test able to reach the threshold."""
    from jaxlimit.stats.gaussian import component_pvalues

    prediction = _prediction(3)
    level = 0.05 / 3
    threshold = level / 4
    rng = np.random.default_rng(31)
    reps = 2000
    cheap = [component_pvalues(_draw(prediction, 300, rng), prediction, level=level, energy=False)
             for _ in range(reps)]
    expected = reps * threshold  # 8.3; binomial sd 2.9
    for name in ("mean_pvalue", "mahalanobis_ks_pvalue"):
        pvalues = np.array([c[name] for c in cheap])
        count = int(np.sum(pvalues < threshold))
        assert 1 <= count <= expected + 3.5 * np.sqrt(expected), (name, count)
        assert abs(np.mean(pvalues < 0.05) - 0.05) < 3.5 * np.sqrt(0.05 * 0.95 / reps), name
        assert sps.kstest(pvalues, "uniform").pvalue > 1e-3, name
        assert pvalues.min() < threshold  # continuous: it reaches the threshold
    marginal = np.array([c["marginal_ks_pvalue"] for c in cheap])  # Holm: conservative
    assert np.sum(marginal < threshold) <= expected + 3.5 * np.sqrt(expected)
    assert 0.3 * 0.05 < np.mean(marginal < 0.05) <= 0.05 + 3.5 * np.sqrt(0.05 * 0.95 / reps)
    # The permutation test is expensive: fewer, smaller replications at the same threshold.
    energy = np.array([component_pvalues(_draw(prediction, 60, rng), prediction, level=level, seed=s,
                                         max_energy_samples=60)["energy_pvalue"] for s in range(300)])
    assert np.mean(energy < 0.05) <= 0.05 + 3.5 * np.sqrt(0.05 * 0.95 / 300)
    assert np.mean(energy < 0.2) > 0.1  # not stuck at 1
    result = compare_gaussian(_draw(prediction, 300, rng), prediction, level=level)
    assert result.smallest_attainable_energy_pvalue < result.threshold == pytest.approx(threshold)
    shifted = _draw(prediction, 300, rng) + 3 * np.sqrt(np.diag(prediction.cov))
    far = compare_gaussian(shifted, prediction, level=level)
    for name in ("mean_pvalue", "mahalanobis_ks_pvalue", "marginal_ks_pvalue", "energy_pvalue"):
        assert getattr(far, name) < threshold, name  # each test can reject on its own
    with pytest.raises(InputError, match="cannot reach"):
        compare_gaussian(shifted, prediction, level=level, n_permutations=200)


# ---------------------------------------------------------------- power


def _uniform_marginals(prediction: Gaussian, n: int, rng) -> np.ndarray:
    """The right mean and covariance, but uniform (not Gaussian) components."""
    factor = np.linalg.cholesky(np.asarray(prediction.cov))
    u = rng.uniform(-np.sqrt(3.0), np.sqrt(3.0), (n, prediction.dim))
    return np.asarray(prediction.mean) + u @ factor.T


def _skewed(prediction: Gaussian, n: int, rng) -> np.ndarray:
    """The right mean and covariance, skewed components (centred, scaled exponentials)."""
    factor = np.linalg.cholesky(np.asarray(prediction.cov))
    u = rng.exponential(1.0, (n, prediction.dim)) - 1.0
    return np.asarray(prediction.mean) + u @ factor.T


def _student_t(prediction: Gaussian, n: int, rng, dof: float = 5.0) -> np.ndarray:
    """A multivariate t with the right covariance: heavy-tailed Mahalanobis radii."""
    scale = np.sqrt((dof - 2.0) / rng.chisquare(dof, (n, 1)))
    return np.asarray(prediction.mean) + scale * (_draw(prediction, n, rng) - np.asarray(prediction.mean))


@pytest.mark.parametrize(
    "alternative",
    ["mean shift 0.15 sd", "covariance x1.3", "uniform marginals", "student t", "skewed"],
)
def test_power_against_wrong_predictions(alternative):
    prediction = _prediction(0)
    sd = np.sqrt(np.diag(prediction.cov))
    rng = np.random.default_rng(7)
    rejections = []
    for seed in range(20):
        if alternative == "mean shift 0.15 sd":
            x = _draw(prediction, 2000, rng)
            x[:, 0] += 0.15 * sd[0]
        elif alternative == "covariance x1.3":
            x = _draw(Gaussian(prediction.mean, 1.3 * prediction.cov), 2000, rng)
        elif alternative == "uniform marginals":
            x = _uniform_marginals(prediction, 2000, rng)
        elif alternative == "skewed":
            x = _skewed(prediction, 2000, rng)
        else:
            x = _student_t(prediction, 2000, rng)
        rejections.append(compare_gaussian(x, prediction, seed=seed).verdict == "inconsistent")
    assert np.mean(rejections) >= 0.9, alternative


def test_mardia_flags_non_gaussian_but_not_gaussian():
    prediction = _prediction(0)
    rng = np.random.default_rng(11)
    gaussian = compare_gaussian(_draw(prediction, 2000, rng), prediction)
    uniform = compare_gaussian(_uniform_marginals(prediction, 2000, rng), prediction)
    heavy = compare_gaussian(_student_t(prediction, 2000, rng), prediction)
    assert gaussian.mardia_kurtosis_pvalue > 0.01 and gaussian.mardia_skewness_pvalue > 0.01
    # Uniform components have excess kurtosis −1.2, t_5 components +6.
    assert uniform.mardia_kurtosis_pvalue < 1e-6
    assert heavy.mardia_kurtosis_pvalue < 1e-6


# ---------------------------------------------------------------- singular predictions


def _singular_prediction() -> Gaussian:
    """Rank 3 in P = 6, plus one direction of variance 1e-12 (far below rtol)."""
    rng = np.random.default_rng(5)
    q, _ = np.linalg.qr(rng.standard_normal((P, P)))
    eigenvalues = np.array([0.0, 0.0, 1e-12, 0.2, 0.7, 1.5])
    return Gaussian(rng.standard_normal(P), (q * eigenvalues) @ q.T)


def test_singular_prediction_null_calibrated_on_its_support():
    prediction = _singular_prediction()
    n_sets = 100
    draws = np.asarray(prediction.sample(jax.random.key(0), n_sets * 400)).reshape(n_sets, 400, P)
    results = [compare_gaussian(draws[s], prediction, seed=s) for s in range(n_sets)]
    assert all(r.effective_dim == 3 and r.n_tests == 5 for r in results)
    # Expected rate ≤ 0.05; SE ≈ 0.022 at 100 sets.
    assert np.mean([r.verdict == "inconsistent" for r in results]) <= 0.12
    assert sps.kstest([r.mahalanobis_ks_pvalue for r in results], "uniform").pvalue > 1e-3
    assert min(r.support_pvalue for r in results) > 0.5  # the dropped variances are ≪ τ


def test_singular_prediction_detects_spread_off_its_support():
    prediction = _singular_prediction()
    cov = np.asarray(prediction.cov)
    eigenvalues, vectors = np.linalg.eigh(cov)
    null_direction = vectors[:, 0]
    x = np.asarray(prediction.sample(jax.random.key(0), 1000))
    # A spread of sd 1e-3 (variance 1e-6 ≈ 7e-7 λ_max ≫ τ ≈ 1.5e-8) where the prediction has none.
    x = x + 1e-3 * np.random.default_rng(0).standard_normal((1000, 1)) * null_direction
    result = compare_gaussian(x, prediction)
    assert result.support_pvalue < 1e-10
    assert result.verdict == "inconsistent"
    assert result.mean_pvalue > 1e-3  # the whitened tests cannot see it


def test_float32_rounding_is_not_mistaken_for_spread():
    """Variances near float32 resolution are dropped, not whitened into false alarms."""
    mean = np.array([1.0, 1.5])
    cov = np.diag([1e-7, 3e-15])  # ratio 3e-8 > rtol: kept in float64
    prediction = Gaussian(mean, cov)
    rng = np.random.default_rng(9)
    x64 = mean + rng.standard_normal((2000, 2)) * np.sqrt(np.diag(cov))
    assert compare_gaussian(x64, prediction).effective_dim == 2
    # float32 rounding error (variance ≈ 1e-15 at 1.5) is comparable to 3e-15:
    # whitening it would inflate the Mahalanobis radii by ~40 %.
    result = compare_gaussian(x64.astype(np.float32), prediction)
    assert result.effective_dim == 1
    assert result.verdict == "consistent"


# ---------------------------------------------------------------- input errors and output


def test_compare_gaussian_input_errors():
    prediction = _prediction(0)
    x = _draw(prediction, 50, np.random.default_rng(0))
    bad = x.copy()
    bad[3, 2] = np.nan
    with pytest.raises(InputError, match="not finite"):
        compare_gaussian(bad, prediction)
    with pytest.raises(InputError, match="at least"):
        compare_gaussian(x[: P + 1], prediction)
    with pytest.raises(InputError):
        compare_gaussian(x[:, :4], prediction)
    with pytest.raises(InputError, match="positive semi-definite"):
        compare_gaussian(x, Gaussian(prediction.mean, np.diag([1.0, 1, 1, 1, 1, -0.1])))
    with pytest.raises(InputError, match="positive semi-definite"):
        compare_gaussian(x, Gaussian(prediction.mean, np.zeros((P, P))))
    with pytest.raises(InputError, match="level"):
        compare_gaussian(x, prediction, level=1.5)


def test_comparison_as_dict_is_plain_json():
    prediction = _prediction(0)
    result = compare_gaussian(_draw(prediction, 100, np.random.default_rng(1)), prediction)
    data = result.as_dict()
    json.dumps(data)
    assert data["verdict"] in ("consistent", "inconsistent")
    assert {"mean_pvalue", "energy_pvalue", "bures_w2", "effective_dim"} <= set(data)
    assert all(type(v) in (int, float, str) for v in data.values())


# ---------------------------------------------------------------- power laws


def test_power_law_exact_and_against_linregress():
    x = np.array([10.0, 100.0, 1000.0])
    fit = fit_power_law(x, 3.0 * x**-0.5)
    assert fit.slope == pytest.approx(-0.5, abs=1e-12)
    assert fit.intercept == pytest.approx(np.log(3.0), abs=1e-12)
    assert fit.r_squared == pytest.approx(1.0)
    np.testing.assert_allclose(fit.predict([10.0, 40.0]), 3.0 * np.array([10.0, 40.0]) ** -0.5)

    rng = np.random.default_rng(0)
    x = np.geomspace(16, 4096, 7)
    y = 2.0 * x**-0.5 * np.exp(0.2 * rng.standard_normal(7))
    fit = fit_power_law(x, y, level=0.9)
    reference = sps.linregress(np.log(x), np.log(y))
    assert fit.slope == pytest.approx(reference.slope, rel=1e-10)
    half = sps.t.ppf(0.95, 5) * reference.stderr
    assert fit.slope_ci == pytest.approx((reference.slope - half, reference.slope + half), rel=1e-10)
    assert fit.r_squared == pytest.approx(reference.rvalue**2, rel=1e-10)
    assert fit.as_dict()["slope_ci"] == list(fit.slope_ci)


def test_power_law_interval_coverage():
    rng = np.random.default_rng(42)
    x = np.geomspace(32, 8192, 6)
    covered = []
    for _ in range(200):
        y = 0.7 * x**-1.0 * np.exp(0.15 * rng.standard_normal(6))
        lo, hi = fit_power_law(x, y).slope_ci
        covered.append(lo <= -1.0 <= hi)
    # Nominal 0.95; SE of the empirical coverage ≈ 0.015.
    assert 0.88 <= np.mean(covered) <= 0.99


def test_weighted_power_law():
    rng = np.random.default_rng(1)
    x = np.geomspace(10, 1e4, 8)
    truth = 5.0 * x**-0.5
    rel_err = np.linspace(0.01, 0.2, 8)  # heteroscedastic relative errors
    covered = []
    for _ in range(200):
        y = truth * (1.0 + rel_err * rng.standard_normal(8))
        fit = fit_power_law(x, y, y_err=rel_err * y)
        covered.append(fit.slope_ci[0] <= -0.5 <= fit.slope_ci[1])
    # With correct errors the interval is nominal, or wider where the residual χ² inflates it.
    assert 0.9 <= np.mean(covered) <= 0.995
    # The estimate is the 1/σ²-weighted least-squares line (numpy's w is 1/σ).
    reference = np.polyfit(np.log(x), np.log(y), 1, w=1.0 / rel_err)
    assert fit.slope == pytest.approx(reference[0], rel=1e-10)
    assert fit.intercept == pytest.approx(reference[1], rel=1e-10)
    # Small errors on the best points make the weighted slope more precise than OLS.
    assert fit.slope_se < fit_power_law(x, y).slope_se


def test_power_law_two_points_and_errors():
    fit = fit_power_law([1.0, 2.0], [1.0, 0.5])
    assert fit.slope == pytest.approx(-1.0)
    assert np.isnan(fit.slope_ci[0]) and np.isnan(fit.slope_ci[1])
    for args, kwargs in [
        (([1.0, -2.0, 3.0], [1.0, 2.0, 3.0]), {}),
        (([1.0, 2.0, 3.0], [1.0, np.nan, 3.0]), {}),
        (([1.0, 2.0, 3.0], [1.0, 2.0]), {}),
        (([1.0], [1.0]), {}),
        (([2.0, 2.0, 2.0], [1.0, 2.0, 3.0]), {}),
        (([1.0, 2.0, 3.0], [1.0, 2.0, 3.0]), {"y_err": [0.1, 0.0, 0.1]}),
        (([1.0, 2.0, 3.0], [1.0, 2.0, 3.0]), {"level": 95}),
    ]:
        with pytest.raises(InputError):
            fit_power_law(*args, **kwargs)


# ---------------------------------------------------------------- intervals


@pytest.mark.parametrize("k,n,level", [(0, 20, 0.95), (3, 20, 0.95), (10, 200, 0.9), (57, 60, 0.99), (1, 1, 0.95)])
def test_wilson_interval_matches_scipy(k, n, level):
    reference = sps.binomtest(k, n).proportion_ci(confidence_level=level, method="wilson")
    assert proportion_interval(k, n, level) == pytest.approx((reference.low, reference.high), abs=1e-12)


def test_wilson_interval_errors():
    for args in [(3, 2), (-1, 5), (1, 0), (1.5, 4)]:
        with pytest.raises(InputError):
            proportion_interval(*args)


def test_bootstrap_interval_for_a_variance():
    rng = np.random.default_rng(0)
    values = 2.0 * rng.standard_normal(2000)  # true variance 4
    lo, hi = bootstrap_ci(values, lambda v: np.var(v, ddof=1), seed=0)
    assert lo < 4.0 < hi
    # For Gaussian data the exact half-width is ≈ 1.96 · 4 · sqrt(2 / 1999) ≈ 0.25.
    assert 0.4 < hi - lo < 0.6
    assert bootstrap_ci(values, lambda v: np.var(v, ddof=1), seed=0) == (lo, hi)
    with pytest.raises(InputError):
        bootstrap_ci(np.array([1.0, np.inf, 2.0]), np.mean, seed=0)


def test_proportion_summary_and_bound_check():
    from jaxlimit.stats import proportion
    from jaxlimit.stats.verdict import combine, probability_at_least

    p = proportion(2000, 2000)
    assert p.p == 1.0 and 0 < p.se < 1e-3 and p.ci[0] > 0.998  # SE never zero at p̂ = 1
    # Agresti–Coull SE: coverage of p̂ ± 2 SE close to nominal in the middle.
    assert proportion(50, 100).se == pytest.approx(0.5 / np.sqrt(100 + 1.96**2), rel=1e-3)
    assert probability_at_least(2000, 2000, 0.45).verdict == "consistent"
    assert probability_at_least(10, 100, 0.45).verdict == "inconsistent"
    small = probability_at_least(3, 5, 0.45)
    assert small.verdict == "not resolved at this size" and small.margin == pytest.approx(0.15)
    assert set(small.as_dict()) >= {"p", "se", "ci", "bound", "margin", "margin_se", "verdict"}
    with pytest.raises(InputError, match="bound"):
        probability_at_least(1, 2, 1.5)
    assert combine(["consistent", "not resolved at this size"]) == "not resolved at this size"
    assert combine(["consistent", "inconsistent", "not resolved at this size"]) == "inconsistent"
    assert combine(["consistent", "consistent"]) == "consistent"


def test_slope_agreement():
    from jaxlimit.stats.verdict import slope_agreement

    n = np.array([16.0, 128.0, 1024.0, 4096.0])
    y = 0.4 * n**-0.5 * (1 + 0.01 * np.array([1, -1, 1, -1]))
    fit = fit_power_law(n, y)
    assert slope_agreement(fit, -0.5) == "consistent" and slope_agreement(fit, -0.6) == "inconsistent"
    assert slope_agreement(fit, -0.6, tolerance=0.2) == "consistent"
    assert slope_agreement(fit_power_law(n[:2], y[:2]), -0.5) == "not resolved at this size"
    assert slope_agreement(None, -0.5) == "not resolved at this size"
