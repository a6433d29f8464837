"""The two kernels of the Xavier limit (docs/xavier.md#the-limit).

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

Both expectations reduce to E[f(u) f(v)] for that bivariate Gaussian and
come from :mod:`jaxlimit.limits.gaussian_expectations` (closed forms where
they exist, otherwise piecewise Gauss–Kronrod quadrature with an error bound
that holds at kinks too). :func:`monte_carlo_xavier_kernels` is an
independent cross-check.
"""

from __future__ import annotations

import math

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from jaxlimit.activations import Activation, get_activation
from jaxlimit.errors import InputError
from jaxlimit.limits.gaussian_expectations import CLOSED_FORMS, check_method, expectations, require_x64


class KernelPair(eqx.Module):
    """An NNGP and an NTK Gram matrix with per-entry errors.

    Attributes:
        nngp: the NNGP kernel, shape (P1, P2).
        ntk: the NTK, shape (P1, P2).
        nngp_error: the error of each entry of ``nngp`` (a bound, or a standard
            error for Monte Carlo).
        ntk_error: the same for ``ntk``.
        method: how the entries were computed.
    """

    nngp: jax.Array
    ntk: jax.Array
    nngp_error: jax.Array
    ntk_error: jax.Array
    # static: metadata of an array pytree; a tree_map over the arrays must not touch it
    method: str = eqx.field(static=True)

    @property
    def max_error(self) -> float:
        """The largest error over both kernels."""
        return float(max(np.max(np.asarray(self.nngp_error), initial=0.0),
                         np.max(np.asarray(self.ntk_error), initial=0.0)))


class XavierKernels(KernelPair):
    """The kernels Σ and A on two sets of inputs, with an error estimate.

    Attributes:
        nngp: Σ, shape (P1, P2).
        ntk: A, shape (P1, P2).
        nngp_error: a bound on the absolute error of each entry of Σ,
            shape (P1, P2): rounding for closed forms, the Gauss–Kronrod bound
            for quadrature; one standard error for Monte Carlo.
        ntk_error: the same for A.
        method: ``"closed-form"``, ``"quadrature"`` or ``"monte-carlo"``.
    """


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


def estimate_xavier_kernels(
    x1,
    x2,
    activation: str | Activation = "relu",
    w_std: float = 1.0,
    c_std: float = 1.0,
    *,
    step: float = 2.0,
    method: str = "auto",
) -> XavierKernels:
    """Σ and A between the rows of ``x1`` (P1, d) and ``x2`` (P2, d), with errors.

    Args:
        x1, x2: inputs, shapes (P1, d) and (P2, d).
        activation: a name, an :class:`~jaxlimit.activations.Activation` or
            an elementwise callable (``jax.nn.relu`` and the like are
            recognised and get their closed forms).
        w_std: the standard deviation of each coordinate of w.
        c_std: the standard deviation of c (mean zero), so E[c²] = c_std².
        step: the longest quadrature piece in standard-normal units at unit
            pre-activation scale (see
            :func:`~jaxlimit.limits.gaussian_expectations.gaussian_expectations`).
        method: ``"auto"`` (closed form where one exists, else quadrature),
            ``"closed-form"`` or ``"quadrature"``.

    Returns:
        An :class:`XavierKernels` with entries of shape (P1, P2), computed in
        float64 (``jax_enable_x64`` must be on).
    """
    require_x64("the Xavier kernels")
    x1, x2 = _check_inputs(x1, x2)
    _check_scales(w_std, c_std)
    act = get_activation(activation)
    check_method(method)
    if not (0 < step <= 4):
        raise InputError(f"quadrature step must lie in (0, 4], got {step}")
    s11, s12, s22 = _pair_covariances(x1, x2, w_std)
    e = expectations(act, s11, s12, s22, method=method, piece=float(step))
    c2 = c_std**2
    dot = x1 @ x2.T
    return XavierKernels(c2 * e.ff, e.ff + c2 * e.dd * dot, c2 * e.ff_error,
                         e.ff_error + c2 * e.dd_error * jnp.abs(dot), e.method)


def xavier_kernels(x1, x2, activation: str | Activation = "relu", w_std: float = 1.0,
                   c_std: float = 1.0) -> tuple[jax.Array, jax.Array]:
    """The pair ``(nngp, ntk)`` = (Σ, A), each of shape (len(x1), len(x2)).

    Closed forms where they exist (see
    :data:`~jaxlimit.limits.gaussian_expectations.CLOSED_FORMS`), quadrature
    otherwise (see :func:`estimate_xavier_kernels` for its error bound).
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


__all__ = ["CLOSED_FORMS", "KernelPair", "XavierKernels", "estimate_xavier_kernels", "monte_carlo_xavier_kernels",
           "xavier_kernels"]
