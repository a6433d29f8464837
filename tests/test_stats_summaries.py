"""Summaries over members with standard errors, fits over valid points, slope verdicts (jaxlimit.stats)."""

import math

import numpy as np
import pytest

from jaxlimit.errors import InputError
from jaxlimit.stats import fit_power_law, fit_valid_points, ratio_of_means, root_mean_square, seed_spread
from jaxlimit.stats.verdict import CONSISTENT, INCONSISTENT, NOT_RESOLVED, slope_agreement


def test_root_mean_square_and_its_standard_error_are_calibrated():
    rng = np.random.default_rng(0)
    draws = rng.normal(0.0, 2.0, size=(2000, 50))              # 2000 repetitions of 50 members
    est = [root_mean_square(row) for row in draws]
    values = np.array([e.value for e in est])
    assert abs(values.mean() - 2.0) < 0.01
    # The delta-method SE matches the spread of the estimate over repetitions (within 10 %).
    assert np.mean([e.se for e in est]) == pytest.approx(values.std(), rel=0.1)


def test_root_mean_square_leaves_out_diverged_members():
    e = root_mean_square([3.0, 4.0, np.nan])
    assert e.n == 2 and e.value == pytest.approx(math.sqrt(12.5)) and e.se > 0
    assert math.isnan(root_mean_square([np.nan, np.nan]).value)
    assert math.isnan(root_mean_square([2.0]).se)
    with pytest.raises(InputError, match="infinities"):
        root_mean_square([1.0, np.inf])
    with pytest.raises(InputError, match=r"shape \(E,\)"):
        root_mean_square(np.ones((2, 2)))


def test_seed_spread_is_the_rms_over_points_of_the_sd():
    rng = np.random.default_rng(1)
    x = rng.normal(0.0, [1.0, 3.0], size=(4000, 5, 2))       # sd 1 and 3 at every time
    s = seed_spread(x)
    assert s.n == 4000 and s.per_time.shape == (5,)
    np.testing.assert_allclose(s.per_time, math.sqrt(5.0), rtol=0.03)
    np.testing.assert_allclose(s.per_time_se, s.per_time / math.sqrt(2 * 3999))
    x[0, 2, 1] = np.nan
    assert seed_spread(x).n == 3999
    assert math.isnan(seed_spread(x[:1]).worst.value)
    with pytest.raises(InputError, match=r"\(E, T, P\)"):
        seed_spread(np.ones((3, 2)))


def test_ratio_of_means_with_paired_members():
    rng = np.random.default_rng(2)
    b = rng.uniform(1.0, 2.0, size=(3000, 40))
    a = 0.1 * b + rng.normal(0.0, 0.01, size=b.shape)        # a ≈ b / 10, strongly paired
    est = [ratio_of_means(ai, bi) for ai, bi in zip(a, b)]
    values = np.array([e.value for e in est])
    assert abs(values.mean() - 0.1) < 1e-3
    assert np.mean([e.se for e in est]) == pytest.approx(values.std(), rel=0.1)
    with pytest.raises(InputError, match="one shape"):
        ratio_of_means([1.0, 2.0], [1.0])


def test_fit_valid_points_leaves_out_what_a_log_cannot_take():
    x = np.array([1.0, 2.0, 4.0, 8.0])
    y = 3.0 * x**-0.5
    fit = fit_valid_points(x, [y[0], np.nan, y[2], y[3]])
    assert fit.n_points == 3 and fit.slope == pytest.approx(-0.5)
    assert fit_valid_points(x, [y[0], 0.0, np.nan, -1.0]) is None
    weighted = fit_valid_points(x, y, y_err=[0.1, np.nan, 0.1, 0.1])
    assert weighted.weighted and weighted.n_points == 3


def test_slope_agreement_widens_the_interval_by_the_tolerance():
    x = np.array([1.0, 2.0, 4.0, 8.0, 16.0])
    noise = np.array([1.0, -1.0, 1.0, -1.0, 1.0]) * 0.01
    fit = fit_power_law(x, x**-0.45 * np.exp(noise))
    lo, hi = fit.slope_ci
    assert hi < -0.4                          # the interval alone misses -0.4 ...
    assert slope_agreement(fit, -0.4, 0.0) == INCONSISTENT
    assert slope_agreement(fit, -0.4, 0.1) == CONSISTENT          # ... the widened one covers it
    assert slope_agreement(fit, -1.0, 0.1) == INCONSISTENT
    assert slope_agreement(None, -0.5, 0.1) == NOT_RESOLVED
    assert slope_agreement(fit_power_law([1.0, 2.0], [1.0, 0.5]), -1.0, 0.1) == NOT_RESOLVED  # no interval


def test_the_noise_level_of_a_largest_z_is_exceeded_as_often_as_one_standard_error():
    """max_abs_z_noise(n): max |z| over n independent standard normals exceeds it with probability
    P(|z| > 1) = 0.3173 (Monte Carlo, 40 000 draws: standard error 0.0023); 1 for one point."""
    from jaxlimit.stats.nulls import max_abs_z_noise

    assert max_abs_z_noise(1) == pytest.approx(1.0, abs=1e-12)
    rng = np.random.default_rng(0)
    for n in (4, 16, 100):
        z = np.abs(rng.standard_normal((40_000, n))).max(axis=1)
        assert np.mean(z > max_abs_z_noise(n)) == pytest.approx(0.3173, abs=0.012), n
    assert max_abs_z_noise(16) > 2.0  # a resolution rule of "twice 1" would call noise resolved


def test_median_estimate_covers_and_counts_censored_members():
    from jaxlimit.stats import median_estimate

    rng = np.random.default_rng(0)
    covered = 0
    for _ in range(1000):
        m = median_estimate(rng.normal(size=101))
        covered += m.interval[0] <= 0.0 <= m.interval[1]
    assert 0.93 <= covered / 1000 <= 0.975  # ≥ 95 % by construction (discrete ranks)
    censored = median_estimate(np.r_[np.arange(70.0), np.full(30, np.inf)])
    assert censored.value == 49.5 and censored.interval[1] < np.inf and censored.n_finite == 70
    most = median_estimate(np.r_[np.arange(40.0), np.full(60, np.inf)])
    assert most.value == np.inf and most.se == np.inf
    with pytest.raises(InputError):
        median_estimate(np.array([1.0, np.nan, 2.0]))


def test_fit_line_and_mean_estimate():
    from jaxlimit.stats import fit_line, mean_estimate

    x = np.log([250.0, 500.0, 1000.0, 2000.0])
    fit = fit_line(x, 3.0 + 7.2 * x, y_err=[1.0, 1.0, 1.0, 1.0])
    assert fit.slope == pytest.approx(7.2) and fit.intercept == pytest.approx(3.0)
    assert fit.slope_ci[0] < 7.2 < fit.slope_ci[1]
    assert fit.slope_se == pytest.approx(1 / np.sqrt(np.sum((x - x.mean()) ** 2)))
    est = mean_estimate(np.array([1.0, 2.0, 3.0, np.nan]))
    assert est.value == 2.0 and est.n == 3 and est.se == pytest.approx(1.0 / np.sqrt(3))


def test_spread_ratio_adds_the_relative_errors_of_two_independent_spreads():
    from jaxlimit.stats import spread_ratio

    ratio, se = spread_ratio(np.array([2.0, 3.0]), np.array([1.0, 2.0]), 51, 101)
    np.testing.assert_allclose(ratio, [2.0, 1.5])
    np.testing.assert_allclose(se, ratio * math.sqrt(1 / 100 + 1 / 200))
    with pytest.raises(InputError, match="one shape"):
        spread_ratio([1.0, 2.0], [1.0], 10, 10)
