"""E[φ(u)φ(v)] and E[φ′(u)φ′(v)]: closed forms, recognition, and an honest quadrature bound.

References are independent of the code under test: scipy's adaptive QUADPACK
integration (nested, float64, with its own error estimate) and exact rational
arithmetic for the angle near θ = 0 and π.
"""

import functools
import math
from decimal import Decimal, getcontext
from fractions import Fraction

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import integrate

from jaxlimit.errors import InputError
from jaxlimit.limits.gaussian_expectations import (
    GK_GAUSS_WEIGHTS, GK_KRONROD_WEIGHTS, GK_NODES, ClosedForm, closed_form_of, find_kinks,
    gaussian_expectations,
)
from jaxlimit.activations import get_activation


def _covariances():
    """A batch of 2×2 covariances: generic, strongly correlated, nearly (anti)parallel,
    exactly parallel, unequal scales, a zero variance."""
    s11 = np.array([1.0, 2.5, 0.7, 1.3, 4.0, 0.2, 1.0, 0.0, 3.0])
    s22 = np.array([2.0, 2.4, 0.7, 0.7, 0.3, 5.0, 1.0, 1.5, 3.0])
    rho = np.array([0.3, -0.97, 1 - 1e-9, -(1 - 1e-11), 0.05, -0.5, 1.0, 0.0, -1.0])
    return s11, rho * np.sqrt(s11 * s22), s22


# Independent references ---------------------------------------------------------

_SQ = math.sqrt(2.0 * math.pi)


def _scipy_reference(f, s11, s12, s22, points=None):
    """E[f(u) f(v)] by nested adaptive QUADPACK over z ∈ [−12, 12]²; returns
    (value, error) with the error as QUADPACK reports it (inner errors summed)."""
    a, b = math.sqrt(s11), math.sqrt(s22)
    rho = s12 / (a * b)
    sig = math.sqrt(max(1.0 - rho * rho, 0.0))
    inner_err = [0.0]

    def outer(z1):
        inner_pts = None
        if points is not None and b * sig > 0:
            inner_pts = [(c - b * rho * z1) / (b * sig) for c in points if abs((c - b * rho * z1) / (b * sig)) < 12]
        val, err = integrate.quad(lambda z2: math.exp(-z2 * z2 / 2) / _SQ * f(b * rho * z1 + b * sig * z2),
                                  -12, 12, epsabs=1e-15, epsrel=1e-14, limit=400, points=inner_pts or None)
        w = math.exp(-z1 * z1 / 2) / _SQ * f(a * z1)
        inner_err[0] += abs(w) * err
        return w * val

    outer_pts = None if points is None else [c / a for c in points]
    val, err = integrate.quad(outer, -12, 12, epsabs=1e-15, epsrel=1e-14, limit=400, points=outer_pts)
    return val, err + inner_err[0]


# Closed forms --------------------------------------------------------------------


@pytest.mark.parametrize("name", ["relu", "abs", "leaky_relu(0.2)", "identity", "erf", "sin", "cos", "gelu"])
def test_closed_forms_agree_with_quadrature_within_both_bounds(name):
    s11, s12, s22 = _covariances()
    exact = gaussian_expectations(name, s11, s12, s22)
    quad = gaussian_expectations(name, s11, s12, s22, method="quadrature")
    assert exact.method == "closed-form" and quad.method == "quadrature"
    # With s11 = 0 (u ≡ 0) a kink's E[φ′(0)φ′(v)] is a convention: the closed
    # form takes NT's θ = π/2, i.e. φ′(0) = (a + b)/2; quadrature uses JAX's φ′(0).
    # The entry only ever multiplies a zero kernel entry; compare the rest.
    keep = s11 > 0 if closed_form_of(name).kind == "ab_relu" else np.ones_like(s11, bool)
    for value, ref, err in ((quad.ff, exact.ff, quad.ff_error + exact.ff_error),
                            (quad.dd, exact.dd, quad.dd_error + exact.dd_error)):
        assert np.all((np.abs(np.asarray(value) - np.asarray(ref)) <= np.asarray(err))[keep])
        assert np.max(np.asarray(err)) < 1e-9


def test_gelu_and_leaky_relu_closed_forms_against_scipy():
    """NT's GELU formula and the ab-relu formula, each at two covariances."""
    from scipy.special import erf as serf

    gelu = lambda u: u * 0.5 * (1.0 + serf(u / math.sqrt(2.0)))  # noqa: E731
    dgelu = lambda u: 0.5 * (1.0 + serf(u / math.sqrt(2.0))) + u * math.exp(-u * u / 2) / _SQ  # noqa: E731
    leaky = lambda u: u if u >= 0 else 0.2 * u  # noqa: E731
    dleaky = lambda u: 1.0 if u >= 0 else 0.2  # noqa: E731
    for s in [(1.0, 0.6, 2.0), (3.0, -2.0, 1.5)]:
        for name, f, df, pts in (("gelu", gelu, dgelu, None), ("leaky_relu(0.2)", leaky, dleaky, [0.0])):
            e = gaussian_expectations(name, *s)
            ff, ff_err = _scipy_reference(f, *s, points=pts)
            dd, dd_err = _scipy_reference(df, *s, points=pts)
            assert abs(float(e.ff) - ff) <= 1e-11 + ff_err
            assert abs(float(e.dd) - dd) <= 1e-11 + dd_err


def test_relu_angle_is_accurate_near_zero_and_pi():
    """At nearly (anti)parallel inputs E[relu′ relu′] = (π − θ)/(2π) is accurate
    to rounding of the given s11, s12, s22 (exact rational det, 60-digit √);
    an arccos of the rounded cosine is off by ~√ε, which this test would catch."""
    getcontext().prec = 60
    rng = np.random.default_rng(1)
    worst = worst_naive = 0.0
    for sign in (1.0, -1.0):
        for delta in (1e-6, 1e-10, 1e-13):
            s11, s22 = rng.uniform(0.5, 2.0, size=2)
            s12 = sign * math.sqrt(s11 * s22) * (1.0 - delta)
            det = Fraction(s11) * Fraction(s22) - Fraction(s12) ** 2
            root = Decimal(det.numerator).sqrt() / Decimal(det.denominator).sqrt()
            angle = math.atan(float(root / Decimal(abs(s12))))  # the angle to the nearer axis, accurate
            theta = angle if sign > 0 else math.pi - angle
            want = (math.pi - theta) / (2 * math.pi) if sign > 0 else angle / (2 * math.pi)
            got = float(gaussian_expectations("relu", s11, s12, s22).dd)
            worst = max(worst, abs(got - want) / want)
            naive = (math.pi - math.acos(max(-1.0, min(1.0, s12 / math.sqrt(s11 * s22))))) / (2 * math.pi)
            worst_naive = max(worst_naive, abs(naive - want) / want)
    assert worst < 1e-12
    assert worst_naive > 1e-5


# Recognition ---------------------------------------------------------------------


def test_plain_callables_are_recognised_and_the_rest_go_to_quadrature():
    relu, absf = ClosedForm("ab_relu", 0.0, 1.0), ClosedForm("ab_relu", -1.0, 1.0)
    assert closed_form_of(jax.nn.relu) == relu
    assert closed_form_of(jnp.abs) == absf
    assert closed_form_of(jnp.sin) == ClosedForm("sin")
    assert closed_form_of(jnp.cos) == ClosedForm("cos")
    assert closed_form_of(jax.scipy.special.erf) == ClosedForm("erf")
    assert closed_form_of(jax.nn.leaky_relu) == ClosedForm("ab_relu", 0.01, 1.0)
    assert closed_form_of(functools.partial(jax.nn.gelu, approximate=False)) == ClosedForm("gelu")
    # Numeric recognition of lambdas, including a rescaled leaky relu.
    assert closed_form_of(lambda u: jnp.maximum(u, 0.0)) == relu
    assert closed_form_of(lambda u: jnp.where(u > 0, 2.0 * u, -0.5 * u)) == ClosedForm("ab_relu", -0.5, 2.0)
    assert closed_form_of(lambda u: u) == ClosedForm("ab_relu", 1.0, 1.0)
    # Not closed forms: the tanh-approximate GELU (jax's default), tanh, a near-relu.
    assert closed_form_of(jax.nn.gelu) is None
    assert closed_form_of(jnp.tanh) is None
    assert closed_form_of(lambda u: jnp.maximum(u, 0.0) + 1e-6 * jnp.tanh(u)) is None
    assert gaussian_expectations(jax.nn.relu, 1.0, 0.5, 1.0).method == "closed-form"
    assert gaussian_expectations(jax.nn.gelu, 1.0, 0.5, 1.0).method == "quadrature"


def test_kink_detection_finds_kinks_of_the_function_and_of_its_derivative():
    act = get_activation(lambda u: jnp.maximum(u, 0.0) ** 2 + jnp.abs(u - 1.0) + 0.3 * jnp.tanh(u))
    kinks = find_kinks(act, 16.0)
    np.testing.assert_allclose(kinks.locations, [0.0, 1.0], atol=1e-12)
    np.testing.assert_allclose(kinks.derivative_jumps, [0.0, 2.0], atol=1e-9)
    assert find_kinks(get_activation("tanh"), 16.0).locations.size == 0


# Quadrature bound honesty ---------------------------------------------------------


def test_gauss_kronrod_rule_is_exact_to_its_degrees():
    for degree in range(0, 34, 2):  # odd degrees integrate to 0 by symmetry in any symmetric rule
        exact = 2.0 / (degree + 1)
        kronrod = float(GK_KRONROD_WEIGHTS @ GK_NODES**degree)
        gauss = float(GK_GAUSS_WEIGHTS @ GK_NODES**degree)
        assert (abs(kronrod - exact) < 1e-14) == (degree <= 31)
        assert (abs(gauss - exact) < 1e-14) == (degree <= 19)


@pytest.mark.parametrize("spec, name", [(jax.nn.relu, "relu"), (jnp.abs, "abs"),
                                        (lambda u: jnp.where(u > 0, u, 0.1 * u), "leaky_relu(0.1)")])
@pytest.mark.parametrize("piece", [1.0, 4.0])
def test_quadrature_bound_covers_the_error_for_kinked_callables(spec, name, piece):
    """Kinked activations passed as callables and forced onto quadrature: every
    entry's error is within its bound, at the default and at a coarse setting."""
    s11, s12, s22 = (s[_covariances()[0] > 0] for s in _covariances())  # see the zero-variance note above
    exact = gaussian_expectations(name, s11, s12, s22)
    quad = gaussian_expectations(spec, s11, s12, s22, method="quadrature", piece=piece)
    assert np.all(np.abs(np.asarray(quad.ff - exact.ff)) <= np.asarray(quad.ff_error + exact.ff_error))
    assert np.all(np.abs(np.asarray(quad.dd - exact.dd)) <= np.asarray(quad.dd_error + exact.dd_error))


_SMOOTH = {
    "tanh": (jnp.tanh, math.tanh, lambda u: 1.0 - math.tanh(u) ** 2),
    "tanh+u²": (lambda u: jnp.tanh(u) + 0.1 * u**2, lambda u: math.tanh(u) + 0.1 * u * u,
                lambda u: 1.0 - math.tanh(u) ** 2 + 0.2 * u),
    # Steep: at the coarse setting the quadrature has real errors (1e-9 to 1e-6)
    # that the bound must cover.
    "tanh(6u)+u²": (lambda u: jnp.tanh(6.0 * u) + 0.1 * u**2, lambda u: math.tanh(6.0 * u) + 0.1 * u * u,
                    lambda u: 6.0 * (1.0 - math.tanh(6.0 * u) ** 2) + 0.2 * u),
}


@pytest.mark.parametrize("name", list(_SMOOTH))
def test_quadrature_bound_covers_the_error_against_scipy(name):
    jf, f, df = _SMOOTH[name]
    cases = [(1.0, 0.3, 2.0), (2.5, -2.4, 2.4)]
    s11, s12, s22 = (np.array(c) for c in zip(*cases))
    refs = [(_scipy_reference(f, *c), _scipy_reference(df, *c)) for c in cases]
    pieces = [2.0, 4.0] if name.startswith("tanh(6u)") else [2.0]
    largest_error = 0.0
    for piece in pieces:
        q = gaussian_expectations(jf, s11, s12, s22, piece=piece)
        assert q.method == "quadrature"
        for i, ((ff, ff_err), (dd, dd_err)) in enumerate(refs):
            for got, bound, want, want_err in ((q.ff[i], q.ff_error[i], ff, ff_err),
                                               (q.dd[i], q.dd_error[i], dd, dd_err)):
                error = abs(float(got) - want)
                largest_error = max(largest_error, error)
                assert error <= float(bound) + want_err
        if not name.startswith("tanh(6u)"):
            assert float(jnp.max(q.dd_error)) < 1e-10  # the bound is useful, not only valid
    if name.startswith("tanh(6u)"):
        assert largest_error > 1e-8  # the coarse rule really erred: the bound was tested


# Input errors ---------------------------------------------------------------------


def test_bad_input_raises_one_line_errors():
    with pytest.raises(InputError, match="NaN"):
        gaussian_expectations("relu", np.nan, 0.0, 1.0)
    with pytest.raises(InputError, match="non-negative"):
        gaussian_expectations("relu", -1.0, 0.0, 1.0)
    with pytest.raises(InputError, match="covariance"):
        gaussian_expectations("relu", 1.0, 2.0, 1.0)
    with pytest.raises(InputError, match="unknown kernel method"):
        gaussian_expectations("relu", 1.0, 0.5, 1.0, method="simpson")
    with pytest.raises(InputError, match="no closed-form"):
        gaussian_expectations("tanh", 1.0, 0.5, 1.0, method="closed-form")
    with pytest.raises(InputError, match="discontinuous"):
        gaussian_expectations(jnp.sign, 1.0, 0.5, 1.0)
    with pytest.raises(InputError, match="float32"):
        gaussian_expectations(lambda u: jnp.tanh(u).astype(jnp.float32), 1.0, 0.5, 1.0)
    with pytest.raises(InputError, match="unknown activation"):
        gaussian_expectations("softsign", 1.0, 0.5, 1.0)
    with jax.enable_x64(False):
        with pytest.raises(InputError, match="jax_enable_x64"):
            gaussian_expectations("relu", 1.0, 0.5, 1.0)
