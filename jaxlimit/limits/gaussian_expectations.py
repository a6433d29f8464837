"""Bivariate Gaussian expectations of an activation and of its derivative.

Every kernel in jaxlimit (the one-hidden-layer Xavier kernels, docs/xavier.md#the-limit, and
the deep NNGP/NTK recursion, docs/deep.md) needs, for

    (u, v) ~ N(0, S),    S = [[s11, s12], [s12, s22]],

the two numbers

    E[φ(u) φ(v)]    and    E[φ′(u) φ′(v)].

:func:`gaussian_expectations` returns both, with a bound on the absolute
error of every entry. It is the only place where they are computed.

Closed forms (NT's, checked against neural-tangents 0.6.5). With
det = s11 s22 − s12² and θ = atan2(√det, s12) ∈ [0, π] (the angle between u
and v in the Gaussian's geometry):

* ab-relu, φ(u) = a·min(u, 0) + b·max(u, 0) — relu (0, 1), leaky relu
  (slope, 1), abs (−1, 1), identity (1, 1):

      E[φ′φ′] = (a² + b²)/2 − (a − b)² θ/(2π)
      E[φφ]   = (a − b)² √det/(2π) + E[φ′φ′] s12

* erf, with q = (1 + 2 s11)(1 + 2 s22) − 4 s12² = 1 + 2(s11 + s22) + 4 det:

      E[φφ] = (2/π) atan2(2 s12, √q),      E[φ′φ′] = (4/π) q^{-1/2}

* sin and cos, with m = (s11 + s22)/2:

      E[sin u sin v] = e^{−m} sinh s12,    E[cos u cos v] = e^{−m} cosh s12

  (sin′ = cos and cos′ = −sin, so each one's E[φ′φ′] is the other's E[φφ]).
  Evaluated as e^{±s12 − m} ≤ 1, so large variances cannot overflow.

* gelu, φ(u) = u Φ(u) (the exact, erf-based GELU), with
  δ² = (1 + s11)(1 + s22) − s12² = 1 + s11 + s22 + det and α = atan2(s12, δ):

      E[φφ]   = s12/4 + [(s12² + s11 s22 δ²)/((1 + s11)(1 + s22) δ) + s12 α]/(2π)
      E[φ′φ′] = 1/4 + α/(2π) + s12/(2π δ) [1/δ² + (1 − s11 s22)/((1 + s11)(1 + s22)) + 1]

Why atan2 and a compensated det. arccos(s12/√(s11 s22)) has an infinite
derivative at θ = 0 and π: one rounding of the cosine moves θ by √ε ≈ 1e-8,
which is the whole of E[relu′ relu′] = (π − θ)/(2π) for nearly antiparallel
inputs. θ = atan2(√det, s12) is as accurate as det, and det is formed with
error-free products (:func:`_exact_det`), so θ is accurate to a few ulps for
the given s11, s12, s22 at every angle. When an input has zero variance
(s11 s22 = 0) θ is taken as π/2, NT's convention (the value then only
multiplies a zero kernel entry).

Activation recognition. A name, an :class:`~jaxlimit.activations.Activation`
from the registry, or a plain callable that is one of ``jax.nn.relu``,
``jnp.abs``, ``jnp.sin``, ``jnp.cos``, ``jax.scipy.special.erf``,
``jax.nn.leaky_relu`` goes to its closed form. Any other callable is evaluated
on a probe grid (:data:`_PROBE`): if it equals a·min(u,0) + b·max(u,0) for
some a, b (relu, abs, leaky relu, identity, rescaled), erf, sin, cos or the
exact GELU to 1e-12 there, it is mapped to that closed form too. So
``functools.partial(jax.nn.gelu, approximate=False)`` and
``lambda u: jnp.maximum(u, 0.0)`` get closed forms; ``jax.nn.gelu`` (whose
default is the tanh approximation), tanh, sigmoid and everything else go to
quadrature.

Quadrature. For f = φ and f = φ′ in turn, in Gaussian coordinates
u = a z₁, v = b (ρ z₁ + σ z₂) with a = √s11, b = √s22, ρ = s12/(ab),
σ = √det/(ab), z ~ N(0, I₂) and n the standard normal density,

    E[f(u) f(v)] = ∫ n(z₁) f(a z₁) J(z₁) dz₁,    J(z₁) = ∫ n(z₂) f(b ρ z₁ + b σ z₂) dz₂,

both integrals over |z| ≤ 10 (the Gaussian mass beyond is 1.5e-23, negligible
for activations of polynomial growth), each split into pieces and integrated
by the 21-point Gauss–Kronrod rule on every piece. The pieces:

* a uniform grid of step at most ``piece``/max(1, scale) (scale = the
  largest of a, b in the batch; the number of pieces is rounded up to a power
  of two so that one compiled program serves many calls): the integrand
  varies on the scale 1/a in z₁;
* the activation's kinks (jumps of φ′ or φ″, found by :func:`find_kinks`):
  at z₁ = c/a for f(a z₁), and in the inner integral at the z₂ where
  b ρ z₁ + b σ z₂ = c, so every piece of the inner integral is smooth;
* around z₁* = c/(bρ), where J has a kink smoothed over a width w = σ/|ρ|
  (the inner Gaussian blurs f's kink): a geometric mesh z₁* ± w·4^j, so the
  smoothed kink is resolved at every correlation, up to ρ = ±1 where it is
  an exact kink at z₁*.

Error bound. On every piece the 10-point Gauss rule nested in the Kronrod
rule gives a second estimate; |K21 − G10| bounds the error of K21 whenever
the rule converges on that piece (its error is then far below G10's), which
the kink splitting guarantees for piecewise-analytic activations. The bound
is therefore conservative: it is about the error of G10, not of the K21
value returned. The bound adds,
for each entry: the outer |K21 − G10|; the inner |K21 − G10| integrated
against |n(z₁) f(a z₁)|; and a rounding term 128 ε ∫∫ n |f(u) f(v)| (ε the
float64 machine epsilon: the activation is evaluated to a few ulps and the
sums are pairwise). Everything runs in float64: the functions here refuse
to run without ``jax_enable_x64``.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from typing import Callable

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy.special import erf

from jaxlimit.activations import ACTIVATIONS, Activation, get_activation
from jaxlimit.errors import InputError

Z_MAX = 10.0
"""Quadrature range in standard-normal units; the mass beyond is 1.5e-23."""

ROUNDING = 128.0
"""The rounding term, in units of ε times the integral of |integrand|."""

CLOSED_FORMS = ("relu", "abs", "leaky_relu", "identity", "erf", "sin", "cos", "gelu")
"""Activations (by name) whose expectations have closed forms."""

METHODS = ("auto", "closed-form", "quadrature")

_EPS = float(np.finfo(np.float64).eps)

# The 21-point Gauss–Kronrod rule on [−1, 1] with its nested 10-point Gauss rule
# (QUADPACK's qk21): Kronrod nodes ±_XK; the Gauss nodes are the odd-indexed ones.
_XK = np.array([0.995657163025808080735527280689003, 0.973906528517171720077964012084452,
                0.930157491355708226001207180059508, 0.865063366688984510732096688423493,
                0.780817726586416897063717578345042, 0.679409568299024406234327365114874,
                0.562757134668604683339000099272694, 0.433395394129247190799265943165784,
                0.294392862701460198131126603103866, 0.148874338981631210884826001129720, 0.0])
_WK = np.array([0.011694638867371874278064396062192, 0.032558162307964727478818972459390,
                0.054755896574351996031381300244580, 0.075039674810919952767043140916190,
                0.093125454583697605535065465083366, 0.109387158802297641899210590325805,
                0.123491976262065851077958109831074, 0.134709217311473325928054001771707,
                0.142775938577060080797094273138717, 0.147739104901338491374841515972068,
                0.149445554002916905664936468389821])
_WG = np.array([0.0, 0.066671344308688137593568809893332, 0.0, 0.149451349150580593145776339657697,
                0.0, 0.219086362515982043995534934228163, 0.0, 0.269266719309996355091226921569469,
                0.0, 0.295524224714752870173892994651338, 0.0])
GK_NODES = np.concatenate([-_XK[:-1], _XK[::-1]])
GK_KRONROD_WEIGHTS = np.concatenate([_WK[:-1], _WK[::-1]])
GK_GAUSS_WEIGHTS = np.concatenate([_WG[:-1], _WG[::-1]])
_GK_SIZE = GK_NODES.size


@dataclasses.dataclass(frozen=True)
class ClosedForm:
    """Which closed form applies: ``kind`` in ab_relu, erf, sin, cos, gelu;
    ``a``, ``b`` are the ab-relu slopes below and above zero."""

    kind: str
    a: float = 0.0
    b: float = 1.0


_NAMED = {
    "relu": ClosedForm("ab_relu", 0.0, 1.0),
    "abs": ClosedForm("ab_relu", -1.0, 1.0),
    "identity": ClosedForm("ab_relu", 1.0, 1.0),
    "erf": ClosedForm("erf"),
    "sin": ClosedForm("sin"),
    "cos": ClosedForm("cos"),
    "gelu": ClosedForm("gelu"),
}


def _known_functions() -> dict:
    known = {
        jax.nn.relu: _NAMED["relu"], jnp.abs: _NAMED["abs"], jnp.absolute: _NAMED["abs"],
        jnp.sin: _NAMED["sin"], jnp.cos: _NAMED["cos"], erf: _NAMED["erf"], jax.lax.erf: _NAMED["erf"],
        jax.nn.leaky_relu: ClosedForm("ab_relu", 0.01, 1.0),
    }
    return {id(fn): (fn, cf) for fn, cf in known.items()}


_KNOWN = _known_functions()

_PROBE = np.concatenate([np.linspace(-8.0, 8.0, 321) + 0.0137, [-41.3, -17.9, -3.0, 0.0, 3.0, 17.9, 41.3]])
"""Where a plain callable is compared with the closed-form activations."""


class GaussianExpectations(eqx.Module):
    """E[φ(u)φ(v)] and E[φ′(u)φ′(v)] with bounds on their absolute errors.

    Attributes:
        ff: E[φ(u) φ(v)], the broadcast shape of (s11, s12, s22).
        dd: E[φ′(u) φ′(v)], same shape.
        ff_error: a bound on |ff − exact| per entry.
        dd_error: a bound on |dd − exact| per entry.
        method: ``"closed-form"`` or ``"quadrature"``.
    """

    ff: jax.Array
    dd: jax.Array
    ff_error: jax.Array
    dd_error: jax.Array
    # static: metadata of an array pytree; a tree_map over the arrays must not touch it
    method: str = eqx.field(static=True)


def require_x64(what: str = "the kernels") -> None:
    """Raise an InputError unless ``jax_enable_x64`` is on."""
    if not jax.config.jax_enable_x64:
        raise InputError(f"{what} are computed in float64; call jax.config.update('jax_enable_x64', True) first")


# Recognition ---------------------------------------------------------------


def closed_form_of(activation: str | Callable | Activation) -> ClosedForm | None:
    """The closed form that applies to ``activation``, or None (quadrature).

    Names and registry activations are looked up; known JAX functions are
    recognised by identity; any other callable by its values on a probe grid.
    """
    act = get_activation(activation)
    name = act.name
    if name in _NAMED and act is ACTIVATIONS.get(name):
        return _NAMED[name]
    entry = _KNOWN.get(id(act.fn))
    if entry is not None and entry[0] is act.fn:
        return entry[1]
    return _probe(act)


def _probe(act: Activation) -> ClosedForm | None:
    """Compare the activation with each closed-form family on :data:`_PROBE`."""
    require_x64("activation kernels")
    grid = jnp.asarray(_PROBE, jnp.float64)
    values = evaluate(act.fn, grid, act.name)
    vals = np.asarray(values, np.float64)
    ref_grid = np.asarray(grid)

    def matches(ref: np.ndarray) -> bool:
        return bool(np.all(np.abs(vals - ref) <= 1e-12 * (1.0 + np.abs(ref))))

    one = np.asarray(evaluate(act.fn, jnp.asarray([-1.0, 1.0], jnp.float64), act.name), np.float64)
    a, b = -float(one[0]), float(one[1])
    if matches(a * np.minimum(ref_grid, 0.0) + b * np.maximum(ref_grid, 0.0)):
        return ClosedForm("ab_relu", a, b)
    for kind, fn in (("erf", erf), ("sin", jnp.sin), ("cos", jnp.cos),
                     ("gelu", lambda u: jax.nn.gelu(u, approximate=False))):
        if matches(np.asarray(fn(grid))):
            return ClosedForm(kind)
    return None


def evaluate(fn: Callable, u: jax.Array, name: str = "activation") -> jax.Array:
    """fn(u) for a float64 array u, refusing functions that fail on arrays,
    change the shape or return a lower precision (the error bounds assume float64)."""
    try:
        out = jnp.asarray(fn(u))
    except Exception as exc:  # a user callable: report what it raised, in one line
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise InputError(f"activation {name!r} cannot be evaluated on a float64 array: {first}") from None
    if out.shape != u.shape:
        raise InputError(f"activation {name!r} must act elementwise: input shape {u.shape}, output {out.shape}")
    if out.dtype != jnp.float64:
        raise InputError(f"activation {name!r} returns {out.dtype} on float64 input; the kernels need float64")
    return out


# Closed forms --------------------------------------------------------------


def _split(x):
    """x = hi + lo exactly, hi with at most 26 significant bits (mantissa truncated
    by masking: no arithmetic that a compiler could contract into an FMA)."""
    bits = jax.lax.bitcast_convert_type(x, jnp.uint64)
    hi = jax.lax.bitcast_convert_type(bits & jnp.uint64(0xFFFFFFFFF8000000), jnp.float64)
    return hi, x - hi


def _two_product(x, y):
    """(p, e) with p = fl(x y) and x y = p + e up to 2^-106 |p| (Dekker)."""
    p = x * y
    xh, xl = _split(x)
    yh, yl = _split(y)
    return p, ((xh * yh - p) + xh * yl + xl * yh) + xl * yl


def _exact_det(s11, s12, s22):
    """s11 s22 − s12² accurate to rounding of the result (no cancellation error)."""
    p1, e1 = _two_product(s11, s22)
    p2, e2 = _two_product(s12, s12)
    return (p1 - p2) + (e1 - e2)


def _x_minus_atan(x):
    """x − atan(x) for x ≥ 0 to full relative accuracy (a series below 0.1,
    where the difference would cancel: the first omitted term is x²³/23)."""
    small = x < 0.1
    xs = jnp.where(small, x, 0.0)
    x2 = xs * xs
    series = 0.0
    for k in range(21, 1, -2):  # x³/3 − x⁵/5 + … + x²¹/21, by Horner in x²
        series = (1.0 / k - series * x2) if k != 21 else 1.0 / k
    series = xs * x2 * series
    return jnp.where(small, series, x - jnp.arctan(x))


def _closed_form(cf: ClosedForm, s11, s12, s22, det=None):
    """(E[φφ], E[φ′φ′], rounding bounds) for the closed form ``cf``; ``det`` may be
    given when the caller knows s11 s22 − s12² more accurately than the rounded entries do."""
    det = jnp.maximum(_exact_det(s11, s12, s22) if det is None else det, 0.0)
    if cf.kind == "ab_relu":
        a, b = cf.a, cf.b
        root = jnp.sqrt(det)
        degenerate = (root == 0.0) & (s12 == 0.0)  # an input with zero variance
        theta = jnp.where(degenerate, 0.5 * jnp.pi, jnp.arctan2(root, s12))
        # For s12 < 0 write θ = π − θ′ with θ′ = atan2(√det, −s12), so that
        # E[φ′φ′] = ab + (a − b)² θ′/(2π) and E[φφ] = ab s12 + (a − b)² |s12| (x − atan x)/(2π),
        # x = √det/|s12|: no cancellation near θ = π, where both are small for relu.
        theta_c = jnp.arctan2(root, -s12)
        x = _safe_div(root, jnp.abs(s12), 0.0)
        dd = jnp.where(s12 < 0, a * b + (a - b) ** 2 * theta_c / (2.0 * jnp.pi),
                       (a * a + b * b) / 2.0 - (a - b) ** 2 * theta / (2.0 * jnp.pi))
        ff = jnp.where(s12 < 0, a * b * s12 + (a - b) ** 2 * jnp.abs(s12) * _x_minus_atan(x) / (2.0 * jnp.pi),
                       (a - b) ** 2 * root / (2.0 * jnp.pi) + dd * s12)
        scale_f = (a * a + b * b) / 2.0 * jnp.sqrt(s11 * s22)
        scale_d = (a * a + b * b) / 2.0 + 0.0 * s12
    elif cf.kind == "erf":
        q = 1.0 + 2.0 * (s11 + s22) + 4.0 * det
        ff = (2.0 / jnp.pi) * jnp.arctan2(2.0 * s12, jnp.sqrt(q))
        dd = (4.0 / jnp.pi) / jnp.sqrt(q)
        scale_f, scale_d = jnp.abs(ff) + 1.0, dd
    elif cf.kind in ("sin", "cos"):
        m = 0.5 * (s11 + s22)
        up, down = jnp.exp(s12 - m), jnp.exp(-s12 - m)  # both ≤ 1 since |s12| ≤ m
        # e^{−m} sinh s12 without cancellation at small s12.
        sinh = jnp.sign(s12) * jnp.exp(jnp.abs(s12) - m) * (-jnp.expm1(-2.0 * jnp.abs(s12))) / 2.0
        cosh = (up + down) / 2.0
        ff, dd = (sinh, cosh) if cf.kind == "sin" else (cosh, sinh)
        scale_f = scale_d = cosh
    elif cf.kind == "gelu":
        p = s11 * s22
        pp1 = (1.0 + s11) * (1.0 + s22)
        delta2 = 1.0 + s11 + s22 + det
        delta = jnp.sqrt(delta2)
        angle = jnp.arctan2(s12, delta)
        ff = s12 / 4.0 + ((s12**2 + p * delta2) / (pp1 * delta) + s12 * angle) / (2.0 * jnp.pi)
        dd = 0.25 + angle / (2.0 * jnp.pi) + s12 / (2.0 * jnp.pi * delta) * (1.0 / delta2 + (1.0 - p) / pp1 + 1.0)
        scale_f = jnp.abs(s12) + jnp.sqrt(p)
        scale_d = 1.0 + jnp.abs(dd)
    else:  # pragma: no cover - ClosedForm is built only here
        raise ValueError(cf.kind)
    return ff, dd, 64.0 * _EPS * scale_f, 64.0 * _EPS * scale_d


_closed_form_jit = jax.jit(_closed_form, static_argnums=0)


def closed_form_expectations(cf: ClosedForm, s11, s12, s22, det=None) -> GaussianExpectations:
    """The closed form ``cf`` on broadcastable covariance entries (no validation)."""
    shape = jnp.broadcast_shapes(jnp.shape(s11), jnp.shape(s12), jnp.shape(s22))
    args = [jnp.broadcast_to(jnp.asarray(s, jnp.float64), shape) for s in (s11, s12, s22)]
    if det is not None:
        args.append(jnp.broadcast_to(jnp.asarray(det, jnp.float64), shape))
    return GaussianExpectations(*_closed_form_jit(cf, *args), "closed-form")


def ab_relu_geometry(cf: ClosedForm, s11, s12, s22, det, dist, anti):
    """For an ab-relu φ with A = E[φ(u)²], B = E[φ(v)²], C = E[φ(u)φ(v)], return

        (AB − C²,  A + B − 2C,  A + B + 2C)

    without cancellation, from accurate det = s11 s22 − s12², dist = s11 + s22 − 2 s12
    and anti = s11 + s22 + 2 s12 (the next layer's det, squared distance and
    squared anti-distance follow from these; see :mod:`jaxlimit.limits.mlp`).

    With c = (a² + b²)/2, k = (a − b)²/(2π), r = √det and
    g = |s12| (x − atan x), x = r/|s12| (g = r at s12 = 0): C = c s12 + k g for
    s12 ≥ 0 and C = ab s12 + k g for s12 < 0, whence

        s12 ≥ 0:  AB − C² = c² det − k g (2 c s12 + k g),   A + B ∓ 2C = c·dist − 2kg,  c·anti + 2kg
        s12 < 0:  AB − C² = c² det + (a² − b²)² s12²/4 − k g (2 ab s12 + k g),
                  A + B − 2C = c·anti + (a + b)² |s12| − 2kg,   A + B + 2C = c·anti + (a − b)² |s12| + 2kg,

    every term of which is small exactly when the result is (nearly parallel
    or antiparallel inputs), so the pair's geometry stays accurate through
    any number of layers.
    """
    a, b = cf.a, cf.b
    c = (a * a + b * b) / 2.0
    k = (a - b) ** 2 / (2.0 * jnp.pi)
    r = jnp.sqrt(jnp.maximum(det, 0.0))
    m = jnp.abs(s12)
    g = jnp.where(m > 0, m * _x_minus_atan(_safe_div(r, m, 0.0)), r)
    pos = s12 >= 0
    ab_c2 = jnp.where(pos, c * c * det - k * g * (2.0 * c * s12 + k * g),
                      c * c * det + (a * a - b * b) ** 2 * s12 * s12 / 4.0 - k * g * (2.0 * a * b * s12 + k * g))
    minus = jnp.where(pos, c * dist - 2.0 * k * g, c * anti + (a + b) ** 2 * m - 2.0 * k * g)
    plus = jnp.where(pos, c * anti + 2.0 * k * g, c * anti + (a - b) ** 2 * m + 2.0 * k * g)
    return jnp.maximum(ab_c2, 0.0), jnp.maximum(minus, 0.0), jnp.maximum(plus, 0.0)


# Kinks ---------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Kinks:
    """Where φ′ or φ″ jumps (in pre-activation units) and by how much φ′ jumps there."""

    locations: np.ndarray
    derivative_jumps: np.ndarray


_DETECTION_POINTS = 2**14
_MAX_KINKS = 32


def second_derivative(act: Activation) -> Callable:
    """φ″ by autodiff of φ′ (elementwise; zero on the linear pieces of a kinked φ)."""
    return jnp.vectorize(jax.grad(lambda u: act.derivative(u)))


def _jump_intervals(values: np.ndarray, scale: float) -> np.ndarray:
    """Indices i where values[i+1] − values[i] is an isolated jump: far larger
    than both neighbouring differences (a smooth function has nearly equal
    neighbouring differences; 8× cannot happen for a locally linear one)."""
    diff = np.abs(np.diff(values))
    left = np.concatenate([[0.0], diff[:-1]])
    right = np.concatenate([diff[1:], [0.0]])
    return np.flatnonzero(diff > 8.0 * (left + right) + 1e-9 * scale)


def _bisect(fn: Callable, lo: np.ndarray, hi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Shrink each [lo, hi] around the jump of fn (to about 2^-60 of its width);
    returns the jump location and the jump fn(hi) − fn(lo) at the final width."""
    f_lo = np.asarray(fn(jnp.asarray(lo)))
    f_hi = np.asarray(fn(jnp.asarray(hi)))
    for _ in range(60):
        mid = 0.5 * (lo + hi)
        f_mid = np.asarray(fn(jnp.asarray(mid)))
        go_right = np.abs(f_mid - f_lo) <= np.abs(f_mid - f_hi)
        lo = np.where(go_right, mid, lo)
        hi = np.where(go_right, hi, mid)
    return 0.5 * (lo + hi), np.asarray(fn(jnp.asarray(hi))) - np.asarray(fn(jnp.asarray(lo)))


@functools.lru_cache(maxsize=64)
def find_kinks(act: Activation, radius: float) -> Kinks:
    """Jumps of φ′ and φ″ in [−radius, radius], located to rounding.

    φ, φ′ and φ″ (autodiff) are tabulated on 2^14 + 1 points; an interval
    whose difference is more than 8× both neighbours' is bisected, and kept if
    the jump persists at the final width (a steep but smooth stretch does
    not). Jumps closer than two grid cells to each other may be missed; the
    Gauss–Kronrod estimate then still sees the lost smoothness.

    Raises:
        InputError: if φ itself jumps (its derivative kernel E[φ′φ′] then
            contains a delta function) or has more than 32 kinks.
    """
    require_x64("activation kernels")
    step = 2.0 * radius / _DETECTION_POINTS
    grid = np.linspace(-radius, radius, _DETECTION_POINTS + 1) + 0.3183098861837907 * step
    u = jnp.asarray(grid)
    d2 = second_derivative(act)
    fns = (act.fn, act.derivative, d2)
    locations, jumps = [], []
    for order, fn in enumerate(fns):
        values = np.asarray(evaluate(fn, u, act.name), np.float64)
        if not np.all(np.isfinite(values)):
            raise InputError(f"activation {act.name!r} or its derivatives are not finite on [−{radius:g}, {radius:g}]")
        idx = _jump_intervals(values, float(np.max(np.abs(values))) + 1.0)
        if idx.size == 0:
            continue
        where, size = _bisect(fn, grid[idx], grid[idx + 1])
        original = values[idx + 1] - values[idx]
        genuine = np.abs(size) >= 0.5 * np.abs(original)
        if order == 0 and np.any(genuine):
            raise InputError(
                f"activation {act.name!r} is discontinuous at u ≈ {where[genuine][0]:.6g}: "
                f"its NTK term E[φ′φ′] would contain a delta function"
            )
        locations.append(where[genuine])
        jumps.append(size[genuine] if order == 1 else np.zeros(int(np.sum(genuine))))
    loc = np.concatenate(locations) if locations else np.zeros(0)
    jmp = np.concatenate(jumps) if jumps else np.zeros(0)
    order = np.argsort(loc)
    loc, jmp = loc[order], jmp[order]
    if loc.size > 1:  # a jump of φ′ and of φ″ at one point is one kink
        keep = np.concatenate([[True], np.diff(loc) > 1e-12 * radius])
        groups = np.cumsum(keep) - 1
        jmp = np.bincount(groups, weights=jmp)
        loc = loc[keep]
    if loc.size > _MAX_KINKS:
        raise InputError(f"activation {act.name!r} has {loc.size} kinks in [−{radius:g}, {radius:g}]; "
                         f"at most {_MAX_KINKS} are supported")
    return Kinks(loc, jmp)


# Quadrature ----------------------------------------------------------------


def gauss_kronrod(lo, hi):
    """Nodes and Kronrod/Gauss weights on the pieces [lo, hi] (…, n) → (…, 21 n)."""
    mid = 0.5 * (lo + hi)
    half = 0.5 * (hi - lo)
    nodes = mid[..., None] + half[..., None] * GK_NODES
    wk = half[..., None] * GK_KRONROD_WEIGHTS
    wg = half[..., None] * GK_GAUSS_WEIGHTS
    shape = (*lo.shape[:-1], lo.shape[-1] * _GK_SIZE)
    return nodes.reshape(shape), wk.reshape(shape), wg.reshape(shape)


def density(z):
    """The standard normal density."""
    return jnp.exp(-0.5 * z * z) / math.sqrt(2.0 * math.pi)


def _safe_div(num, den, fallback):
    ok = den != 0.0
    return jnp.where(ok, num / jnp.where(ok, den, 1.0), fallback)


@functools.partial(jax.jit, static_argnums=(0, 1, 2))
def _quadrature(act: Activation, n_uniform: int, n_grade: int, kinks, a, b, rho, sig):
    """E[φφ], E[φ′φ′] and their error bounds for flat arrays of pairs (see module docstring)."""
    z_max = Z_MAX
    uniform = jnp.linspace(-z_max, z_max, n_uniform + 1)
    fn, dfn = act.fn, act.derivative
    has_kinks = kinks.shape[0] > 0

    def one(args):
        a, b, rho, sig = args
        outer = [uniform]
        brho, bsig = b * rho, b * sig
        if has_kinks:
            width = _safe_div(sig, jnp.abs(rho), 0.0)
            centre = _safe_div(kinks, brho, z_max)  # the smoothed kink of J
            offsets = width * 4.0 ** jnp.arange(n_grade)
            graded = centre[:, None] + jnp.concatenate([-offsets, offsets])[None, :]
            outer += [_safe_div(kinks, a, z_max), centre, graded.ravel()]
        br1 = jnp.sort(jnp.clip(jnp.concatenate(outer), -z_max, z_max))
        z1, w1k, w1g = gauss_kronrod(br1[:-1], br1[1:])  # (N1,)
        if has_kinks:
            inner_kinks = _safe_div(kinks[None, :] - brho * z1[:, None], bsig, z_max)  # (N1, K)
            br2 = jnp.concatenate([jnp.broadcast_to(uniform, (z1.shape[0], n_uniform + 1)), inner_kinks], axis=1)
            br2 = jnp.sort(jnp.clip(br2, -z_max, z_max), axis=1)
        else:
            br2 = uniform[None, :]
        z2, w2k, w2g = gauss_kronrod(br2[:, :-1], br2[:, 1:])  # (N1 or 1, N2)
        g2 = density(z2)
        v = brho * z1[:, None] + bsig * z2
        u = a * z1
        g1 = density(z1)
        out = []
        for f in (fn, dfn):
            fv, fu = f(v), f(u)
            inner_k = jnp.sum(w2k * g2 * fv, axis=1)
            inner_err = jnp.abs(inner_k - jnp.sum(w2g * g2 * fv, axis=1))
            inner_abs = jnp.sum(w2k * g2 * jnp.abs(fv), axis=1)
            outer_k = w1k * g1 * fu
            value = jnp.sum(outer_k * inner_k)
            err = (jnp.abs(value - jnp.sum(w1g * g1 * fu * inner_k))
                   + jnp.sum(jnp.abs(outer_k) * inner_err)
                   + ROUNDING * _EPS * jnp.sum(jnp.abs(outer_k) * inner_abs))
            out += [value, err]
        return tuple(out)

    ff, ff_err, dd, dd_err = jax.lax.map(one, (a, b, rho, sig), batch_size=8)
    return ff, dd, ff_err, dd_err


def _grade_levels(rho: np.ndarray, sig: np.ndarray) -> int:
    """How many geometric levels resolve the narrowest smoothed kink of the batch
    (rounded up to a multiple of 8 so that few programs are compiled)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        width = np.where(np.abs(rho) > 0, sig / np.abs(rho), np.inf)
    width = width[(width > 0) & np.isfinite(width)]
    if width.size == 0:
        return 1
    levels = int(np.clip(np.ceil(np.log(2.0 * Z_MAX / width.min()) / np.log(4.0)) + 1, 1, 32))
    return 8 * math.ceil(levels / 8)


def _bucket(n: int) -> int:
    """The next power of two ≥ n: one compiled program serves a range of sizes."""
    return 1 << max(0, math.ceil(math.log2(max(n, 1))))


def _correlation(s11, s12, s22):
    """a, b, ρ, σ of the Gaussian coordinates (ρ = 0, σ = 1 when a variance is zero)."""
    a, b = jnp.sqrt(s11), jnp.sqrt(s22)
    ab = a * b
    rho = jnp.clip(_safe_div(s12, ab, 0.0), -1.0, 1.0)
    sig = jnp.clip(_safe_div(jnp.sqrt(jnp.maximum(_exact_det(s11, s12, s22), 0.0)), ab, 1.0), 0.0, 1.0)
    return a, b, rho, sig


def quadrature_grid(scale: float, piece: float) -> tuple[int, float]:
    """(uniform pieces over [−Z, Z], kink-search radius) for pre-activation scales up to ``scale``.

    Both are powers of two (the pieces at most twice as many as needed), so
    that compiled programs and :func:`find_kinks` are reused across layers."""
    scale = max(1.0, float(scale))
    return _bucket(int(math.ceil(2.0 * Z_MAX * scale / piece))), 2.0 ** math.ceil(math.log2(Z_MAX * scale))


def quadrature_expectations(act: Activation, s11, s12, s22, *, piece: float = 2.0):
    """(ff, dd, ff_error, dd_error) by piecewise Gauss–Kronrod quadrature, flat arrays in and out."""
    a, b, rho, sig = _correlation(s11, s12, s22)
    a_np, b_np, rho_np, sig_np = (np.asarray(t) for t in (a, b, rho, sig))
    n_uniform, radius = quadrature_grid(max(float(np.max(a_np, initial=0.0)), float(np.max(b_np, initial=0.0))), piece)
    kinks = find_kinks(act, radius)
    n_grade = _grade_levels(rho_np, sig_np) if kinks.locations.size else 1
    # Pad the pairs to a power of two (with harmless independent unit pairs) for the same reason.
    n = a.shape[0]
    pad = _bucket(max(n, 8)) - n
    args = [jnp.concatenate([t, jnp.full(pad, fill, jnp.float64)]) for t, fill in ((a, 1.0), (b, 1.0), (rho, 0.0), (sig, 1.0))]
    out = _quadrature(act, n_uniform, n_grade, jnp.asarray(kinks.locations, jnp.float64), *args)
    return tuple(o[:n] for o in out)


# Public entry --------------------------------------------------------------


def check_method(method: str) -> None:
    if method not in METHODS:
        raise InputError(f"unknown kernel method {method!r}; choose auto, closed-form or quadrature")


def gaussian_expectations(
    activation: str | Callable | Activation,
    s11,
    s12,
    s22,
    *,
    method: str = "auto",
    piece: float = 2.0,
) -> GaussianExpectations:
    """E[φ(u)φ(v)] and E[φ′(u)φ′(v)] for (u, v) ~ N(0, [[s11, s12], [s12, s22]]).

    Args:
        activation: a name (see :data:`CLOSED_FORMS`, or any of
            :data:`~jaxlimit.activations.ACTIVATIONS`), an Activation or an
            elementwise callable (recognised as a closed form where possible).
        s11, s12, s22: the covariance entries, broadcastable arrays; the
            result has their broadcast shape.
        method: ``"auto"`` (closed form where one exists, else quadrature),
            ``"closed-form"`` or ``"quadrature"``.
        piece: the longest quadrature piece in standard-normal units at unit
            pre-activation scale (it shrinks like 1/scale beyond).

    Returns:
        A :class:`GaussianExpectations`; errors are rounding bounds for closed
        forms and the Gauss–Kronrod bounds of the module docstring otherwise.

    Raises:
        InputError: without ``jax_enable_x64``; for a non-finite or invalid
            covariance (negative variance, |s12| > √(s11 s22)); for an unknown
            method or activation, or a discontinuous activation under quadrature.
    """
    require_x64("Gaussian expectations")
    check_method(method)
    if not (0.0 < piece <= 4.0):
        raise InputError(f"quadrature piece must lie in (0, 4], got {piece}")
    s11, s12, s22 = (jnp.asarray(s, jnp.float64) for s in (s11, s12, s22))
    s11, s12, s22 = jnp.broadcast_arrays(s11, s12, s22)
    arrays = [np.asarray(s) for s in (s11, s12, s22)]
    if not all(np.all(np.isfinite(s)) for s in arrays):
        raise InputError("covariance entries s11, s12, s22 contain NaN or infinite values")
    if np.any(arrays[0] < 0) or np.any(arrays[2] < 0):
        raise InputError("variances s11 and s22 must be non-negative")
    if np.any(arrays[1] ** 2 > arrays[0] * arrays[2] * (1.0 + 1e-12) + 1e-300):
        raise InputError("|s12| must not exceed √(s11 s22): not a covariance matrix")
    return expectations(activation, s11, s12, s22, method=method, piece=piece)


def expectations(activation, s11, s12, s22, *, method: str = "auto", piece: float = 2.0) -> GaussianExpectations:
    """:func:`gaussian_expectations` without input validation (for callers that
    build valid covariances themselves, e.g. the kernel recursions)."""
    act = get_activation(activation)
    cf = closed_form_of(act) if method != "quadrature" else None
    if method == "closed-form" and cf is None:
        raise InputError(f"no closed-form kernel for activation {act.name!r}; use quadrature")
    shape = jnp.broadcast_shapes(jnp.shape(s11), jnp.shape(s12), jnp.shape(s22))
    s11, s12, s22 = (jnp.broadcast_to(jnp.asarray(s, jnp.float64), shape) for s in (s11, s12, s22))
    if cf is not None:
        return closed_form_expectations(cf, s11, s12, s22)
    flat = [s.reshape(-1) for s in (s11, s12, s22)]
    ff, dd, ff_err, dd_err = quadrature_expectations(act, *flat, piece=piece)
    return GaussianExpectations(ff.reshape(shape), dd.reshape(shape), ff_err.reshape(shape),
                                dd_err.reshape(shape), "quadrature")


__all__ = [
    "CLOSED_FORMS", "ClosedForm", "GaussianExpectations", "Kinks", "METHODS", "ROUNDING", "Z_MAX",
    "ab_relu_geometry", "check_method", "closed_form_expectations", "closed_form_of", "density", "expectations", "find_kinks",
    "gauss_kronrod", "gaussian_expectations", "quadrature_grid", "require_x64", "second_derivative",
]
