"""Moments of an ensemble at one time (stats/moments.py) and the control-variate bias (stats/bias.py)."""

import math

import numpy as np
import pytest

from jaxlimit.errors import InputError
from jaxlimit.stats.bias import bias_summary
from jaxlimit.stats.moments import relative_frobenius, variance_summary


def test_variance_summary_is_the_mean_variance_with_a_calibrated_standard_error():
    # 400 ensembles of 200 Gaussian samples: the estimate is unbiased and its
    # stated standard error is the spread of the estimates (within 10 %).
    rng = np.random.default_rng(1)
    cov = np.array([[2.0, 0.6, 0.0], [0.6, 1.0, 0.3], [0.0, 0.3, 0.5]])
    root = np.linalg.cholesky(cov)
    values, ses = [], []
    for _ in range(400):
        s = variance_summary(rng.normal(size=(200, 3)) @ root.T)
        values.append(s.value)
        ses.append(s.se)
    assert abs(np.mean(values) - np.trace(cov) / 3) < 4 * np.std(values) / math.sqrt(400)
    assert 0.9 < np.mean(ses) / np.std(values) < 1.1
    value, se = variance_summary(rng.normal(size=(50, 2)))  # a (value, se) pair
    assert value > 0 and se > 0


def test_relative_frobenius():
    ref = np.eye(2)
    assert relative_frobenius(ref, ref) == 0.0
    assert relative_frobenius(2 * ref, ref) == pytest.approx(1.0)
    assert relative_frobenius(ref + np.array([[0, 0.3], [0.4, 0]]), ref) == pytest.approx(0.5 / math.sqrt(2))


def test_control_variate_bias_is_unbiased_and_quieter():
    rng = np.random.default_rng(0)
    z = rng.normal(size=(4000, 3))
    x = 0.3 + z @ np.diag([2.0, 1.0, 0.5]) + 0.01 * rng.normal(size=(4000, 3))
    b = bias_summary(x, z, np.zeros(3))
    assert abs(b.value - 0.3) < 5 * b.noise and b.noise < 0.001
    assert np.all(np.abs(b.gap - 0.3) < 5 * b.se)
    assert bias_summary(x, z, np.full(3, 0.3)).value < 5 * b.noise
    # The plain mean's noise is that of z, about 2/√4000 = 0.03: 30 times larger.
    assert np.std(x[:, 0]) / math.sqrt(4000) > 20 * b.se[0]


def test_bias_noise_and_standard_error_are_calibrated():
    # Pure noise: the RMS gap is about its noise level, and the debiased value is near 0.
    # A real bias of 10 noise levels: the delta-method SE is the spread over repetitions.
    rng = np.random.default_rng(3)
    truth = np.array([0.02, -0.01, 0.015, 0.0])
    values, ses, null_ratio = [], [], []
    for _ in range(200):
        z = rng.normal(size=(300, 4))
        noise = 0.05 * rng.normal(size=(300, 4))
        null = bias_summary(z + noise, z, np.zeros(4))
        null_ratio.append(null.value / null.noise)
        b = bias_summary(truth + z + noise, z, np.zeros(4))
        values.append(b.value)
        ses.append(b.value_se)
    assert 0.8 < np.mean(null_ratio) < 1.1
    assert 0.8 < np.mean(ses) / np.std(values) < 1.25
    assert abs(np.mean(values) - np.sqrt(np.mean(truth**2))) < 0.1 * np.sqrt(np.mean(truth**2))


@pytest.mark.parametrize("call,fragment", [
    (lambda: variance_summary(np.ones(5)), "outputs_t must have shape (E, P)"),
    (lambda: variance_summary(np.ones((1, 3))), "at least 2 members"),
    (lambda: variance_summary(np.array([[np.nan, 1.0], [0.0, 1.0]])), "finite"),
    (lambda: relative_frobenius(np.eye(2), np.eye(3)), "shape"),
    (lambda: relative_frobenius(np.eye(2), np.zeros((2, 2))), "reference is zero"),
    (lambda: relative_frobenius(np.full((2, 2), np.inf), np.eye(2)), "finite"),
    (lambda: bias_summary(np.ones((10, 2)), np.ones((10, 3)), np.zeros(2)), "must be (E, P)"),
    (lambda: bias_summary(np.ones((10, 2)), np.ones((10, 2)), np.zeros(3)), "reference"),
    (lambda: bias_summary(np.ones((3, 2)), np.ones((3, 2)), np.zeros(2)), "P + 2"),
    (lambda: bias_summary(np.ones((10, 2)), np.ones((10, 2)), np.array([np.nan, 0.0])), "finite"),
])
def test_moments_refuse_bad_input(call, fragment):
    with pytest.raises(InputError) as info:
        call()
    assert fragment in str(info.value)
