"""The two kernels of the Xavier limit (THEORY §2).

For one neuron at initialisation, c ~ N(0, c_std²) independent of
w ~ N(0, w_std² I_d), and inputs x, x′:

    Σ(x, x′) = E[c²] E[σ(w·x) σ(w·x′)]                           (initial covariance, "NNGP")
    A(x, x′) = E[σ(w·x) σ(w·x′)] + E[c²] E[σ′(w·x) σ′(w·x′)] x·x′  (limit kernel, "NTK")

Why A has this form. With γ = 1/2 one SGD step on the sample (x_k, y_k)
moves the output at x by

    Δg(x) = Σ_i [Δc^i σ(w^i·x) + c^i σ′(w^i·x) Δw^i·x] N^{-1/2}
          = (α/N) (y_k − g(x_k)) · (1/N) Σ_i [σ(w^i·x_k) σ(w^i·x)
                                               + (c^i)² σ′(w^i·x_k) σ′(w^i·x) x_k·x],

and N steps make one unit of time. The gradient with respect to w^i is
c^i σ′(w^i·x) x, so the second term carries the plain x·x′: the scale w_std
enters only through the law of the pre-activations (u, v) = (w·x, w·x′),
which is centred Gaussian with covariance w_std² [[x·x, x·x′], [x·x′, x′·x′]].

Both expectations reduce to E[f(u) g(v)] for that bivariate Gaussian. They
are evaluated by closed forms for ReLU, erf and the identity and by a
two-dimensional quadrature for any other activation (the trapezoidal rule in
Gaussian coordinates with a step that follows the pre-activation scale; see
:func:`_trapezoid` for why not Gauss–Hermite), whose error is estimated by
halving the step. :func:`monte_carlo_xavier_kernels` is an independent
cross-check.
"""

from __future__ import annotations

import math

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from jaxlimit.activations import Activation, get_activation
from jaxlimit.errors import InputError

CLOSED_FORMS = ("relu", "erf", "identity")
"""Activations (by name) whose kernels are evaluated in closed form."""

_Z_MAX = 8.5  # quadrature range in standard-normal units: the tail beyond holds 2e-17 of the mass


class XavierKernels(eqx.Module):
    """The kernels Σ and A on two sets of inputs, with an error estimate.

    Attributes:
        nngp: Σ, shape (P1, P2).
        ntk: A, shape (P1, P2).
        nngp_error: an estimate of the absolute error of each entry of Σ,
            shape (P1, P2): zero for closed forms, |T_2h − T_h| for quadrature,
            one standard error for Monte Carlo.
        ntk_error: the same for A.
        method: ``"closed-form"``, ``"quadrature"`` or ``"monte-carlo"``.
    """

    nngp: jax.Array
    ntk: jax.Array
    nngp_error: jax.Array
    ntk_error: jax.Array
    method: str = eqx.field(static=True)

    @property
    def max_error(self) -> float:
        """The largest estimated absolute error over both kernels."""
        return float(max(jnp.max(self.nngp_error, initial=0.0), jnp.max(self.ntk_error, initial=0.0)))


def _check_inputs(x1, x2) -> tuple[jax.Array, jax.Array]:
    dtype = jnp.result_type(float)
    a = np.asarray(x1, dtype=np.float64)
    b = np.asarray(x2, dtype=np.float64)
    if a.ndim != 2 or b.ndim != 2:
        raise InputError(f"kernel inputs must have shape (P, d), got shapes {a.shape} and {b.shape}")
    if a.shape[1] != b.shape[1]:
        raise InputError(f"kernel inputs have different dimensions {a.shape[1]} and {b.shape[1]}")
    if not (np.all(np.isfinite(a)) and np.all(np.isfinite(b))):
        raise InputError("kernel inputs contain NaN or infinite values")
    return jnp.asarray(a, dtype), jnp.asarray(b, dtype)


def _check_scales(w_std: float, c_std: float) -> None:
    if not (w_std > 0 and math.isfinite(w_std) and c_std > 0 and math.isfinite(c_std)):
        raise InputError(f"w_std and c_std must be positive and finite, got {w_std} and {c_std}")


def _pair_covariances(x1, x2, w_std):
    """s11 (P1, 1), s12 (P1, P2), s22 (1, P2): the covariance of (w·x, w·x′)."""
    s11 = w_std**2 * jnp.sum(x1 * x1, axis=1)[:, None]
    s22 = w_std**2 * jnp.sum(x2 * x2, axis=1)[None, :]
    s12 = w_std**2 * (x1 @ x2.T)
    return s11, s12, s22


def _closed_form(name: str, s11, s12, s22):
    """E[σ(u)σ(v)] and E[σ′(u)σ′(v)] for (u, v) ~ N(0, [[s11, s12], [s12, s22]])."""
    if name == "identity":
        return s12 + 0.0 * (s11 + s22), jnp.ones_like(s12 + s11 + s22)
    if name == "erf":
        a, b = 1.0 + 2.0 * s11, 1.0 + 2.0 * s22
        ss = (2.0 / jnp.pi) * jnp.arcsin(jnp.clip(2.0 * s12 / jnp.sqrt(a * b), -1.0, 1.0))
        dd = (4.0 / jnp.pi) / jnp.sqrt(a * b - 4.0 * s12**2)
        return ss, dd
    if name == "relu":
        norm = jnp.sqrt(s11 * s22)
        degenerate = norm <= 0.0  # an input at the origin: relu(0) = relu′(0) = 0
        safe = jnp.where(degenerate, 1.0, norm)
        theta = jnp.arccos(jnp.clip(s12 / safe, -1.0, 1.0))
        ss = norm / (2.0 * jnp.pi) * (jnp.sin(theta) + (jnp.pi - theta) * jnp.cos(theta))
        dd = (jnp.pi - theta) / (2.0 * jnp.pi)
        return jnp.where(degenerate, 0.0, ss), jnp.where(degenerate, 0.0, dd)
    raise ValueError(f"no closed form for {name!r}")


def _trapezoid(activation: Activation, s11, s12, s22, step: float):
    """E[σ(u)σ(v)] and E[σ′(u)σ′(v)] by the 2-D trapezoidal rule, with an error estimate.

    Write u = l11 z1, v = l21 z1 + l22 z2 with z ~ N(0, I_2) (a Cholesky
    factor, kept finite when an input is zero or the pair is collinear), then

        E[f(u) g(v)] ≈ Σ_a Σ_b ω_a ω_b f(l11 z_a) g(l21 z_a + l22 z_b),
        z_k = k h, ω_k = h φ(z_k), |z_k| ≤ 8.5.

    For integrands analytic in a strip around the real axis the trapezoidal
    rule converges geometrically in 1/h. The strip of σ(l z) shrinks like
    1/l, so the step is h = step / max(1, l_max) with l_max the largest
    pre-activation scale. Gauss–Hermite with fixed nodes has no such knob:
    at w_std = 4 on unit inputs 128 nodes per axis still leave errors of 1e-3
    (tanh), where this rule is at rounding level. The error estimate is
    |T_{2h} − T_h| from the nested coarse grid (free), which overstates the
    error of T_h whenever the rule converges.
    One row of x1 is done at a time so memory stays O(P2 K²).
    """
    l11 = jnp.sqrt(s11)  # (P1, 1)
    l21 = jnp.where(l11 > 0, s12 / jnp.where(l11 > 0, l11, 1.0), 0.0)  # (P1, P2)
    l22 = jnp.sqrt(jnp.maximum(s22 - l21**2, 0.0))  # (P1, P2)
    scale = max(1.0, float(jnp.sqrt(jnp.max(s11))), float(jnp.sqrt(jnp.max(s22))))
    h = step / scale
    half = int(math.ceil(_Z_MAX / (2.0 * h)))  # the coarse grid has 2h spacing
    k = np.arange(-2 * half, 2 * half + 1)
    z = jnp.asarray(k * h, s12.dtype)
    fine = h * jnp.exp(-0.5 * z * z) / math.sqrt(2.0 * math.pi)
    coarse = jnp.where(jnp.asarray(k % 2 == 0), 2.0 * fine, 0.0)
    f, df = activation.fn, activation.derivative

    def row(args):
        a11, a21, a22 = args  # (), (P2,), (P2,)
        u = a11 * z  # (K,)
        v = a21[:, None, None] * z[None, :, None] + a22[:, None, None] * z[None, None, :]  # (P2, K, K)
        fv, dfv, fu, dfu = f(v), df(v), f(u), df(u)
        out = []
        for w in (fine, coarse):
            out.append(jnp.sum(fv * w, axis=-1) @ (w * fu))
            out.append(jnp.sum(dfv * w, axis=-1) @ (w * dfu))
        return tuple(out)

    ss, dd, ss_coarse, dd_coarse = jax.lax.map(row, (l11[:, 0], l21, l22))
    return ss, dd, jnp.abs(ss - ss_coarse), jnp.abs(dd - dd_coarse)


def estimate_xavier_kernels(
    x1,
    x2,
    activation: str | Activation = "relu",
    w_std: float = 1.0,
    c_std: float = 1.0,
    *,
    step: float = 0.2,
    method: str = "auto",
) -> XavierKernels:
    """Σ and A between the rows of ``x1`` (P1, d) and ``x2`` (P2, d), with errors.

    Args:
        x1, x2: inputs, shapes (P1, d) and (P2, d).
        activation: a name or an :class:`~jaxlimit.activations.Activation`.
        w_std: the standard deviation of each coordinate of w.
        c_std: the standard deviation of c (mean zero), so E[c²] = c_std².
        step: the quadrature step h in standard-normal units for a
            pre-activation scale of at most 1 (it shrinks with larger scales);
            the reported error is |T_2h − T_h|. At the default 0.2 smooth
            activations are exact to rounding (tanh, sigmoid, GELU, erf).
        method: ``"auto"`` (closed form where one exists, else quadrature),
            ``"closed-form"`` or ``"quadrature"``.

    Returns:
        An :class:`XavierKernels` with entries of shape (P1, P2).
    """
    x1, x2 = _check_inputs(x1, x2)
    _check_scales(w_std, c_std)
    act = get_activation(activation)
    if method not in ("auto", "closed-form", "quadrature"):
        raise InputError(f"unknown kernel method {method!r}; choose auto, closed-form or quadrature")
    if not (0 < step <= 1):
        raise InputError(f"quadrature step must lie in (0, 1], got {step}")
    closed = act.name in CLOSED_FORMS and act is get_activation(act.name)
    if method == "closed-form" and not closed:
        raise InputError(f"no closed-form kernel for activation {act.name!r}; use quadrature")
    s11, s12, s22 = _pair_covariances(x1, x2, w_std)
    c2 = c_std**2
    dot = x1 @ x2.T
    if closed and method != "quadrature":
        ss, dd = _closed_form(act.name, s11, s12, s22)
        zero = jnp.zeros_like(ss)
        return XavierKernels(c2 * ss, ss + c2 * dd * dot, zero, zero, "closed-form")
    ss, dd, err_ss, err_dd = _trapezoid(act, s11, s12, s22, float(step))
    return XavierKernels(c2 * ss, ss + c2 * dd * dot, c2 * err_ss,
                         err_ss + c2 * err_dd * jnp.abs(dot), "quadrature")


def xavier_kernels(x1, x2, activation: str | Activation = "relu", w_std: float = 1.0,
                   c_std: float = 1.0) -> tuple[jax.Array, jax.Array]:
    """The pair ``(nngp, ntk)`` = (Σ, A), each of shape (len(x1), len(x2)).

    Closed forms for ReLU, erf and the identity; quadrature otherwise (see
    :func:`estimate_xavier_kernels` for its error estimate).
    """
    k = estimate_xavier_kernels(x1, x2, activation, w_std, c_std)
    return k.nngp, k.ntk


def monte_carlo_xavier_kernels(
    key: jax.Array,
    x1,
    x2,
    activation: str | Activation = "relu",
    w_std: float = 1.0,
    c_std: float = 1.0,
    *,
    n_samples: int = 2**18,
    batch: int = 2**14,
) -> XavierKernels:
    """Monte Carlo estimates of Σ and A from ``n_samples`` draws of w.

    E[c²] = c_std² is used exactly; only the w-expectations are sampled. The
    reported errors are one standard error of each entry.
    """
    x1, x2 = _check_inputs(x1, x2)
    _check_scales(w_std, c_std)
    act = get_activation(activation)
    if n_samples < 2:
        raise InputError(f"Monte Carlo needs at least 2 samples, got {n_samples}")
    n_batches = -(-int(n_samples) // int(batch))
    d = x1.shape[1]

    def moments(k):
        w = w_std * jax.random.normal(k, (batch, d), x1.dtype)
        u, v = x1 @ w.T, x2 @ w.T  # (P1, B), (P2, B)
        fu, fv, gu, gv = act.fn(u), act.fn(v), act.derivative(u), act.derivative(v)
        # First and second moments of the products, as matrix products over the batch.
        return fu @ fv.T, (fu**2) @ (fv**2).T, gu @ gv.T, (gu**2) @ (gv**2).T, (fu * gu) @ (fv * gv).T

    sums = jax.lax.map(moments, jax.random.split(key, n_batches))
    n = n_batches * batch
    m_ss, m_ss2, m_dd, m_dd2, m_sd = (jnp.sum(s, axis=0) / n for s in sums)
    c2 = c_std**2
    dot = x1 @ x2.T
    var_ss = (m_ss2 - m_ss**2) / n
    var_dd = (m_dd2 - m_dd**2) / n
    cov_sd = (m_sd - m_ss * m_dd) / n
    var_ntk = var_ss + (c2 * dot) ** 2 * var_dd + 2 * c2 * dot * cov_sd
    return XavierKernels(
        c2 * m_ss, m_ss + c2 * m_dd * dot,
        c2 * jnp.sqrt(jnp.maximum(var_ss, 0.0)), jnp.sqrt(jnp.maximum(var_ntk, 0.0)),
        "monte-carlo",
    )
