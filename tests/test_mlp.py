"""Deep fully connected kernels and their Gaussian prediction, against neural-tangents.

tests/data/nt_reference.json holds neural-tangents 0.6.5's own numbers (made by
tests/data/make_nt_reference.py in a side environment; NT does not import on
current JAX). Agreement is asserted to 1e-10 relative to each quantity's scale
(the largest |entry| of the NT matrix; for covariances at late times, whose
entries shrink to zero, the scale of the initial covariance), in float64. The
largest deviation is 2.2e-11, in the kernels at the nearly (anti)parallel
points, where NT's own numbers are off by that much (see the last test); the
predictions agree to 1e-12.
"""

import json
from pathlib import Path

import jax
import numpy as np
import pytest

from jaxlimit.errors import InputError
from jaxlimit.limits.kernel_limit import KernelLimit
from jaxlimit.limits.mlp import estimate_mlp_kernels, mlp_kernels, mlp_limit

REFERENCE = json.loads((Path(__file__).parent / "data" / "nt_reference.json").read_text())
X = np.array(REFERENCE["x"])
TRAIN, TEST = REFERENCE["train"], REFERENCE["test"]
Y = np.array(REFERENCE["y_train"])
TIMES = np.array([np.inf if t is None else t for t in REFERENCE["times"]])
RTOL = 1e-10


def _case_id(case):
    return f"{case['activation']}-L{case['depth']}-w{case['W_std']}-b{case['b_std']}"


@pytest.mark.parametrize("case", REFERENCE["kernels"], ids=_case_id)
def test_kernels_match_neural_tangents(case):
    nngp, ntk = mlp_kernels(X, X, depth=case["depth"], activation=case["activation"],
                            W_std=case["W_std"], b_std=case["b_std"])
    for ours, theirs in ((nngp, np.array(case["nngp"])), (ntk, np.array(case["ntk"]))):
        assert ours.shape == (7, 7)
        assert np.max(np.abs(ours - theirs)) <= RTOL * np.max(np.abs(theirs))


def test_kernels_of_plain_callables_match_their_names():
    case = next(c for c in REFERENCE["kernels"] if c["activation"] == "relu" and c["depth"] == 2 and c["b_std"] > 0)
    nngp, ntk = mlp_kernels(X, X, depth=2, activation=jax.nn.relu, W_std=case["W_std"], b_std=case["b_std"])
    np.testing.assert_allclose(ntk, case["ntk"], rtol=0, atol=RTOL * np.max(np.abs(case["ntk"])))


@pytest.mark.parametrize("case", REFERENCE["predictions"], ids=lambda c: f"{c['activation']}-L{c['depth']}")
def test_gradient_flow_prediction_matches_neural_tangents(case):
    """NT's gradient_descent_mse_ensemble (get='ntk', compute_cov=True) at t = 0, …, 50, ∞
    on the training points, the test points and all points, and gp_inference's NNGP posterior."""
    m = len(TRAIN)
    limit = mlp_limit(X[TRAIN], Y, X[TEST], depth=case["depth"], activation=case["activation"],
                      W_std=case["W_std"], b_std=case["b_std"], learning_rate=case["learning_rate"])
    law = limit.predict(TIMES)
    mean, cov = np.asarray(law.mean), np.asarray(law.cov)
    assert mean.shape == (len(TIMES), 7) and cov.shape == (len(TIMES), 7, 7)
    y_scale = np.max(np.abs(Y))
    order = np.argsort(TRAIN + TEST)  # NT's "all" rows are the inputs in their original order
    views = {"train": (mean[:, :m], cov[:, :m, :m]), "test": (mean[:, m:], cov[:, m:, m:]),
             "all": (mean[:, order], cov[:, order][:, :, order])}
    for label, (our_mean, our_cov) in views.items():
        nt_mean, nt_cov = np.array(case[label]["mean"]), np.array(case[label]["cov"])
        cov_scale = np.max(np.abs(nt_cov[0]))  # the initial covariance, K
        assert np.max(np.abs(our_mean - nt_mean)) <= RTOL * y_scale
        assert np.max(np.abs(our_cov - nt_cov)) <= RTOL * cov_scale
    for post in case["nngp_posterior"]:
        g = limit.nngp_posterior(np.sqrt(post["noise_variance"])).select(np.arange(m, 7))
        nt_cov = np.array(post["cov"])
        assert np.max(np.abs(np.asarray(g.mean) - post["mean"])) <= RTOL * np.max(np.abs(post["mean"]))
        assert np.max(np.abs(np.asarray(g.cov) - nt_cov)) <= RTOL * np.max(np.abs(nt_cov))


def test_a_wrong_time_convention_would_be_caught():
    """NT's clock is df/dt = −(η/M)Θ(f − y): dropping the 1/M (or the η) moves the
    prediction far outside the tolerance of the test above."""
    case = REFERENCE["predictions"][0]
    m = len(TRAIN)
    kwargs = dict(depth=case["depth"], activation=case["activation"], W_std=case["W_std"], b_std=case["b_std"])
    wrong = mlp_limit(X[TRAIN], Y, X[TEST], learning_rate=case["learning_rate"] * m, **kwargs)
    nt_mean = np.array(case["test"]["mean"])[2]  # t = 1
    assert np.max(np.abs(np.asarray(wrong.predict([1.0]).mean)[0, m:] - nt_mean)) > 1e3 * RTOL


def _limit(activation="erf", b_std=0.2, depth=2):
    return mlp_limit(X[TRAIN], Y, X[TEST], depth=depth, activation=activation, W_std=1.3, b_std=b_std,
                     learning_rate=0.7)


def test_closed_form_agrees_with_diffrax():
    limit = _limit()
    times = np.array([0.0, 0.1, 0.7, 3.0])
    closed, ode = limit.predict(times), limit.predict_ode(times)
    np.testing.assert_allclose(ode.mean, closed.mean, rtol=0, atol=1e-8)
    np.testing.assert_allclose(ode.cov, closed.cov, rtol=0, atol=1e-8)
    f0 = limit.predict([0.0])[0].sample(jax.random.key(0), 4)
    np.testing.assert_allclose(limit.pathwise_ode(f0, times), limit.pathwise(f0, times), rtol=0, atol=1e-8)
    # Exact at t = 0: the prior; each path starts at its own f0.
    np.testing.assert_array_equal(np.asarray(closed.mean[0]), 0.0)
    np.testing.assert_allclose(closed.cov[0], limit.nngp, rtol=0, atol=1e-15)
    np.testing.assert_allclose(limit.pathwise(f0, [0.0])[:, 0], f0, rtol=0, atol=1e-15)


def test_infinite_time_is_the_limit_of_large_times_and_interpolates():
    limit = _limit("relu")
    law = limit.predict([1e4, np.inf])
    np.testing.assert_allclose(law.mean[1], law.mean[0], atol=1e-9)
    np.testing.assert_allclose(law.mean[1, :4], Y, atol=1e-10)  # training points are fitted
    np.testing.assert_allclose(law.cov[1, :4, :4], 0.0, atol=1e-10)
    f0 = limit.predict([0.0])[0].sample(jax.random.key(1), 3)
    paths = np.asarray(limit.pathwise(f0, [np.inf]))
    np.testing.assert_allclose(paths[:, 0, :4], np.broadcast_to(Y, (3, 4)), atol=1e-10)


def test_singular_ntk_gives_finite_moments_and_keeps_null_directions():
    """With no bias and an odd activation, antipodal training inputs make Θ_MM
    singular (f(−x) = −f(x) in every network). The flow never moves the even
    part: at t = ∞ the pair's mean is the odd part ±(y1 − y2)/2, and nothing is NaN."""
    x = np.array([[1.0, 0.2, -0.3], [-1.0, -0.2, 0.3], [0.1, 1.0, 0.4], [0.5, -0.5, 1.0]])
    y = np.array([1.0, 0.4, -0.5])
    limit = mlp_limit(x[:3], y, x[3:], depth=2, activation="erf", W_std=1.5, b_std=0.0, learning_rate=1.0)
    assert limit.conditioning().singular
    law = limit.predict([0.0, 1.0, 1e6, np.inf])
    assert np.all(np.isfinite(law.mean)) and np.all(np.isfinite(law.cov))
    odd = 0.5 * (y[0] - y[1])
    np.testing.assert_allclose(law.mean[-1, :2], [odd, -odd], atol=1e-9)
    np.testing.assert_allclose(law.mean[-1], law.mean[-2], atol=1e-6)
    # The odd prior makes f(x1) = −f(x2) exactly, so the pair's sum keeps zero variance.
    v = np.array([1.0, 1.0, 0.0, 0.0])
    assert abs(float(v @ np.asarray(law.cov[-1]) @ v)) < 1e-10


def test_tiling_changes_no_value():
    rng = np.random.default_rng(3)
    a, b = rng.normal(size=(9, 4)), rng.normal(size=(6, 4))
    kw = dict(depth=3, activation="gelu", W_std=1.4, b_std=0.2)
    whole = estimate_mlp_kernels(a, b, **kw)
    tiled = estimate_mlp_kernels(a, b, tile_size=3, **kw)
    for key in ("nngp", "ntk", "nngp_error", "ntk_error"):
        np.testing.assert_allclose(getattr(tiled, key), getattr(whole, key), rtol=1e-14, atol=1e-300)
    fast = mlp_kernels(a, b, tile_size=4, **kw)  # one compiled program, padded edge tiles
    np.testing.assert_allclose(fast[0], whole.nngp, rtol=1e-13)
    np.testing.assert_allclose(fast[1], whole.ntk, rtol=1e-13)


def test_deep_quadrature_error_bounds_cover_the_error():
    """relu through quadrature (its kink found numerically) against its closed form,
    and tanh at a coarse setting against a fine one, three layers deep."""
    x = X[[0, 1, 3]]
    kw = dict(depth=3, W_std=1.5, b_std=0.2)
    exact = estimate_mlp_kernels(x, x, activation="relu", **kw)
    quad = estimate_mlp_kernels(x, x, activation=jax.nn.relu, method="quadrature", **kw)
    assert quad.method == "quadrature"
    assert np.all(np.abs(quad.nngp - exact.nngp) <= quad.nngp_error + exact.nngp_error)
    assert np.all(np.abs(quad.ntk - exact.ntk) <= quad.ntk_error + exact.ntk_error)
    coarse = estimate_mlp_kernels(x, x, activation="tanh", piece=4.0, **kw)
    fine = estimate_mlp_kernels(x, x, activation="tanh", piece=2.0, **kw)
    gap = np.abs(coarse.ntk - fine.ntk)
    assert np.all(gap <= coarse.ntk_error + fine.ntk_error)
    assert np.all(np.abs(coarse.nngp - fine.nngp) <= coarse.nngp_error + fine.nngp_error)
    assert fine.max_error < 1e-6


def test_bad_input_is_refused_with_one_line_errors():
    ok = dict(depth=2, activation="relu", W_std=1.0, b_std=0.1)
    cases = [
        (dict(x1=X[0]), "x1 must have shape"),
        (dict(x2=np.full((2, 5), np.nan)), "x2 contains NaN"),
        (dict(x2=X[:, :3]), "different input dimensions"),
        (dict(depth=0), "depth"),
        (dict(depth=1.5), "depth"),
        (dict(depth=True), "depth"),
        (dict(W_std=0.0), "W_std"),
        (dict(W_std=np.inf), "W_std"),
        (dict(b_std=-0.1), "b_std"),
        (dict(b_std=np.nan), "b_std"),
        (dict(activation="softsign"), "unknown activation"),
        (dict(method="simpson"), "unknown kernel method"),
        (dict(activation="tanh", method="closed-form"), "no closed-form"),
        (dict(tile_size=0), "tile_size"),
    ]
    for change, message in cases:
        kwargs = {"x1": X, "x2": X, **ok, **change}
        with pytest.raises(InputError, match=message):
            mlp_kernels(kwargs.pop("x1"), kwargs.pop("x2"), **kwargs)
    limit_ok = dict(depth=1, activation="relu", W_std=1.0, b_std=0.1, learning_rate=1.0)
    with pytest.raises(InputError, match="y_train must have shape"):
        mlp_limit(X[:4], Y[:3], X[4:], **limit_ok)
    with pytest.raises(InputError, match="learning_rate"):
        mlp_limit(X[:4], Y, X[4:], **{**limit_ok, "learning_rate": 0.0})
    with pytest.raises(InputError, match="x_test has dimension"):
        mlp_limit(X[:4], Y, X[4:, :2], **limit_ok)
    with pytest.raises(InputError, match="y_train contains NaN"):
        mlp_limit(X[:4], [1.0, np.nan, 0.0, 1.0], X[4:], **limit_ok)
    limit = mlp_limit(X[:4], Y, X[4:], **limit_ok)
    for times, message in (([-1.0], "non-negative"), ([np.nan], "NaN"), ([2.0, 1.0], "non-decreasing")):
        with pytest.raises(InputError, match=message):
            limit.predict(times)
    with pytest.raises(InputError, match="finite"):
        limit.predict_ode([1.0, np.inf])
    with pytest.raises(InputError, match="f0 must have shape"):
        limit.pathwise(np.zeros((2, 3)), [1.0])
    with pytest.raises(InputError, match="positive semi-definite"):
        KernelLimit(-np.eye(3), np.eye(3), [1.0], 1.0)
    with pytest.raises(InputError, match="same shape"):
        KernelLimit(np.eye(3), np.eye(4), [1.0], 1.0)
    with pytest.raises(InputError, match="noise"):
        limit.nngp_posterior(-1.0)
    with jax.enable_x64(False):
        with pytest.raises(InputError, match="jax_enable_x64"):
            mlp_kernels(X, X, **ok)


# A 60-digit reference for the ab-relu family, from the float inputs -----------------------

from decimal import Decimal, getcontext  # noqa: E402

_PI = Decimal("3.141592653589793238462643383279502884197169399375105820974944592307816406286")


def _atan(x: Decimal) -> Decimal:
    halvings = 0
    while x > Decimal("0.05"):  # atan x = 2 atan(x / (1 + √(1 + x²)))
        x = x / (1 + (1 + x * x).sqrt())
        halvings += 1
    term, total, n = x, Decimal(0), 0
    while abs(term) > Decimal(10) ** -58:
        total += term / (2 * n + 1) * (-1) ** n
        term *= x * x
        n += 1
    return total * 2**halvings


def _decimal_ab_relu(x, depth, w_std, b_std, a, b):
    """NT's recursion, in 60 digits, θ = atan2(√det, s12) exactly."""
    getcontext().prec = 60
    n, d = len(x), len(x[0])
    w2, b2, a, b = Decimal(w_std) ** 2, Decimal(b_std) ** 2, Decimal(a), Decimal(b)
    xs = [[Decimal(float(v)) for v in row] for row in x]
    k = [[w2 * sum(u * v for u, v in zip(xs[i], xs[j])) / d + b2 for j in range(n)] for i in range(n)]
    t = [row[:] for row in k]
    for _ in range(depth):
        new_k, new_t = [[None] * n for _ in range(n)], [[None] * n for _ in range(n)]
        for i in range(n):
            for j in range(n):
                s11, s22, s12 = k[i][i], k[j][j], k[i][j]
                det = s11 * s22 - s12 * s12
                r = det.sqrt() if det > 0 else Decimal(0)
                theta = _atan(r / s12) if s12 > 0 else (_PI - _atan(r / -s12) if s12 < 0 else _PI / 2)
                dd = (a * a + b * b) / 2 - (a - b) ** 2 * theta / (2 * _PI)
                new_k[i][j] = w2 * ((a - b) ** 2 * r / (2 * _PI) + dd * s12) + b2
                new_t[i][j] = new_k[i][j] + w2 * dd * t[i][j]
        k, t = new_k, new_t
    return (np.array([[float(v) for v in row] for row in m]) for m in (k, t))


@pytest.mark.parametrize("name, a, b", [("relu", 0, 1), ("abs", -1, 1), ("leaky_relu(0.1)", 0.1, 1)])
def test_ab_relu_kernels_are_exact_at_nearly_parallel_and_antiparallel_inputs(name, a, b):
    """Points 1 and 2 are within 1e-5 of parallel and antiparallel to point 0, and
    points 1, 2 are antiparallel to rounding (x2 = −1.3 x1 in floats). The
    kernels carry each pair's det, distance and anti-distance exactly through
    the layers, so they match a 60-digit evaluation of the same recursion to
    rounding; the Gram entries alone would leave errors of √ε·K there (NT's
    numbers, computed that way, are off by up to 2e-11 of the scale)."""
    for depth, w_std, b_std in ((1, 1.0, 0.0), (3, 1.5, 0.3), (3, 2.0, 0.0)):
        ref_nngp, ref_ntk = _decimal_ab_relu(X, depth, w_std, b_std, a, b)
        nngp, ntk = mlp_kernels(X, X, depth=depth, activation=name, W_std=w_std, b_std=b_std)
        for ours, ref in ((nngp, ref_nngp), (ntk, ref_ntk)):
            scale = np.max(np.abs(ref))
            assert np.max(np.abs(ours - ref)) <= 1e-14 * scale
            big = np.abs(ref) > 1e-3 * scale
            assert np.max(np.abs(ours - ref)[big] / np.abs(ref)[big]) <= 1e-13
