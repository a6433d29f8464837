"""Tian's two-layer ReLU teacher–student: closed forms and dynamics (docs/teacher-student.md).

The student g(x; W) = Σ_{j=1..K} relu(w_jᵀx), W of shape (K, d), learns a
teacher of the same form with rows w*_1..w*_M, from Gaussian inputs x ~ N(0, I_d):

    J(W) = ½ E[(g(x; W*) − g(x; W))²]
         = ½ Σ_ij κ(w_i, w_j) − Σ_ik κ(w_i, w*_k) + ½ Σ_kl κ(w*_k, w*_l),
    κ(u, v) = E[relu(uᵀx) relu(vᵀx)] = ‖u‖‖v‖ (sin θ + (π − θ) cos θ) / 2π,

with θ = angle(u, v) ∈ [0, π]. Its gradient is ∇_u κ(u, v) = F(u/‖u‖, v),

    F(e, v) = E[x 1{eᵀx > 0} relu(vᵀx)] = ((π − θ) v + ‖v‖ sin θ e) / 2π,
    ∇_{w_j} J = Σ_i F(e_j, w_i) − Σ_k F(e_j, w*_k),   e_j = w_j / ‖w_j‖.

Numerics: every angle is θ = 2 atan2(‖a − b‖, ‖a + b‖) on unit vectors a, b,
accurate to rounding at θ = 0 and θ = π, where arccos(aᵀb) loses half the
digits and its derivative is infinite. Norms are taken after dividing by the
largest entry, so rows of norm 1e-30 work in float32 (their square would
underflow).

**The zero-weight convention.** At w_j = 0 the loss is not differentiable (the
one-sided derivatives depend on the direction of approach). We use the
subgradient of relu′(0) = 0, which is what automatic differentiation of the
sampled loss gives: 1{0ᵀx > 0} = 0 for every x, so a zero row has zero
gradient, ∇_{w_j} J = 0. A zero row is therefore a (dead, unstable) fixed point
of gradient flow, gradient descent and SGD alike, and stays exactly zero; rows
of any other norm, however small, follow the formula above. Nothing returns NaN
for finite inputs.

Dynamics, vmapped over a batch of B initialisations W0 of shape (B, K, d)
and returned as :class:`StudentTrajectories`: gradient flow dW/dt = −∇J(W)
(diffrax, through :func:`jaxlimit.limits._ode.solve_ode`) and the reduced
(x, y) flow. The training runs it is compared with, gradient descent with
step η (time t = η · steps) and SGD on n fresh Gaussian samples per step,
live in :mod:`jaxlimit.training.teacher_student` (limits never train).
:func:`population_flow_limit` is the limit object of one start: the flow that
gradient descent and SGD from that start approach as η → 0 and n → ∞, with
``predict(times) -> Gaussian``.

Bad input. The public functions refuse a wrongly shaped or non-finite W,
W_star (or W0, u, v) with one :class:`InputError` line naming the argument;
without the check a NaN row would pass as a zero row (its largest entry is
not > 0) and get a zero gradient. The checks run where the arrays are
concrete; inside ``jit``/``vmap`` only the shapes can be checked, and the
dynamics call the unchecked cores (``_population_grad``) directly.
"""

from __future__ import annotations

import dataclasses
import functools
import math

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import scipy.integrate
import scipy.optimize
import scipy.special

from jaxlimit.errors import InputError
from jaxlimit.limits.base import Limit
from jaxlimit.limits._ode import check_times, solve_ode
from jaxlimit.stats.gaussian import Gaussian
from jaxlimit.validation import require_real

_TWO_PI = 2.0 * math.pi


# --------------------------------------------------------------------------
# Closed forms
# --------------------------------------------------------------------------

def _safe_norm(v: jax.Array) -> jax.Array:
    """‖v‖ over the last axis with zero (not NaN) derivative at v = 0."""
    sq = jnp.sum(v * v, axis=-1)
    nonzero = sq > 0
    return jnp.where(nonzero, jnp.sqrt(jnp.where(nonzero, sq, 1.0)), 0.0)


def _norm_and_direction(w: jax.Array) -> tuple[jax.Array, jax.Array]:
    """(‖w‖, w/‖w‖) over the last axis; the direction of a zero vector is 0."""
    # Dividing by the largest entry first keeps ‖·‖² away from under/overflow.
    # Both outputs are invariant to that scale, so its derivative is exactly
    # zero; stopping it avoids the overflowing −w/scale² terms that would
    # otherwise cancel to inf − inf at tiny norms under autodiff.
    scale = jax.lax.stop_gradient(jnp.max(jnp.abs(w), axis=-1, keepdims=True))
    nonzero = scale > 0
    scaled = jnp.where(nonzero, w / jnp.where(nonzero, scale, 1.0), 1.0)
    n = _safe_norm(scaled)[..., None]                      # in [1, √d]
    direction = jnp.where(nonzero, scaled / n, 0.0)
    norm = jnp.where(nonzero, scale * n, 0.0)[..., 0]
    return norm, direction


def _angles(a: jax.Array, b: jax.Array) -> jax.Array:
    """Pairwise angles between unit (or zero) rows: a (K, d), b (M, d) → (K, M) in [0, π]."""
    diff = _safe_norm(a[:, None, :] - b[None, :, :])
    summ = _safe_norm(a[:, None, :] + b[None, :, :])
    return 2.0 * jnp.arctan2(diff, summ)


def _kernel_shape(theta: jax.Array) -> jax.Array:
    """h(θ) = sin θ + (π − θ) cos θ, so that κ(u, v) = ‖u‖‖v‖ h(θ) / 2π."""
    return jnp.sin(theta) + (jnp.pi - theta) * jnp.cos(theta)


def _is_traced(x) -> bool:
    return isinstance(x, jax.core.Tracer)


def _check_array(value, name: str, ndim: int, what: str) -> jax.Array:
    """``value`` as a float array with ``ndim`` axes and (when concrete) finite entries,
    or an InputError naming it."""
    if not _is_traced(value):
        try:
            array = np.asarray(value)
        except (TypeError, ValueError):
            raise InputError(f"{name} must be a {what} of numbers, got {type(value).__name__}") from None
        if array.dtype == object or not (np.issubdtype(array.dtype, np.floating)
                                         or np.issubdtype(array.dtype, np.integer)):
            raise InputError(f"{name} must hold real numbers, got dtype {array.dtype}")
        if array.ndim == ndim and array.size and not np.all(np.isfinite(array)):
            bad = np.argwhere(~np.isfinite(array))[0]
            raise InputError(f"{name} has a non-finite entry at index {tuple(int(i) for i in bad)}")
    value = jnp.asarray(value)
    if value.ndim != ndim:
        raise InputError(f"{name} must be a {what}, got shape {tuple(value.shape)}")
    if value.size == 0:
        raise InputError(f"{name} must not be empty, got shape {tuple(value.shape)}")
    if not jnp.issubdtype(value.dtype, jnp.floating):
        value = value.astype(jnp.result_type(float))
    return value


def _check_weights(W, W_star, name: str = "W", ndim: int = 2) -> tuple[jax.Array, jax.Array]:
    """W (K, d) (or (B, K, d) with ``ndim=3``) and W_star (M, d) sharing d, finite where concrete."""
    what = "(units, dim) matrix" if ndim == 2 else "(batch, units, dim) array"
    W = _check_array(W, name, ndim, what)
    W_star = _check_array(W_star, "W_star", 2, "(units, dim) matrix")
    if W.shape[-1] != W_star.shape[-1]:
        raise InputError(f"{name} and W_star must share the input dimension, got {W.shape[-1]} "
                         f"and {W_star.shape[-1]}")
    return W, W_star


def _check_pair(u, v) -> tuple[jax.Array, jax.Array]:
    u = _check_array(u, "u", 1, "vector")
    v = _check_array(v, "v", 1, "vector")
    if u.shape != v.shape:
        raise InputError(f"u and v must have one shape, got {u.shape} and {v.shape}")
    return u, v


def relu_kernel(u: jax.Array, v: jax.Array) -> jax.Array:
    """κ(u, v) = E[relu(uᵀx) relu(vᵀx)] for x ~ N(0, I_d); u, v of shape (d,)."""
    u, v = _check_pair(u, v)
    nu, eu = _norm_and_direction(u)
    nv, ev = _norm_and_direction(v)
    theta = _angles(eu[None], ev[None])[0, 0]
    return nu * nv * _kernel_shape(theta) / _TWO_PI


def relu_kernel_grad(u: jax.Array, v: jax.Array) -> jax.Array:
    """∇_u κ(u, v) = F(u/‖u‖, v) = E[x 1{uᵀx > 0} relu(vᵀx)], shape (d,); zero at u = 0."""
    u, v = _check_pair(u, v)
    nu, eu = _norm_and_direction(u)
    nv, ev = _norm_and_direction(v)
    theta = _angles(eu[None], ev[None])[0, 0]
    grad = ((jnp.pi - theta) * v + nv * jnp.sin(theta) * eu) / _TWO_PI
    return jnp.where(nu > 0, grad, 0.0)


@jax.jit
def _population_loss(W: jax.Array, W_star: jax.Array) -> jax.Array:
    nW, eW = _norm_and_direction(W)
    nS, eS = _norm_and_direction(W_star)

    def total(n1, e1, n2, e2):
        # Σ_ij κ(u_i, v_j); the norms multiply first so tiny rows underflow to 0, not NaN.
        return jnp.sum((n1[:, None] * n2[None, :]) * _kernel_shape(_angles(e1, e2))) / _TWO_PI

    return 0.5 * total(nW, eW, nW, eW) - total(nW, eW, nS, eS) + 0.5 * total(nS, eS, nS, eS)


@jax.jit
def _population_grad(W: jax.Array, W_star: jax.Array) -> jax.Array:
    nW, eW = _norm_and_direction(W)
    nS, eS = _norm_and_direction(W_star)

    def pull(v, nv, ev):
        # Σ_i F(e_j, v_i) for every j at once: ((π − θ_ji) v_i + ‖v_i‖ sin θ_ji e_j) / 2π.
        theta = _angles(eW, ev)                                  # (K, ·)
        return ((jnp.pi - theta) @ v + (jnp.sin(theta) @ nv)[:, None] * eW) / _TWO_PI

    grad = pull(W, nW, eW) - pull(W_star, nS, eS)
    return jnp.where((nW > 0)[:, None], grad, 0.0)


def relu_population_loss(W: jax.Array, W_star: jax.Array) -> jax.Array:
    """J(W) = ½ E[(g(x; W*) − g(x; W))²] in closed form; W (K, d), W_star (M, d) → scalar.

    Refuses a W or W_star that is not a matrix, has no entries, differs in the
    input dimension or (when concrete) holds NaN or ±inf.
    """
    W, W_star = _check_weights(W, W_star)
    return _population_loss(W, W_star)


def relu_population_grad(W: jax.Array, W_star: jax.Array) -> jax.Array:
    """∇_W J in closed form, shape (K, d): row j is Σ_i F(e_j, w_i) − Σ_k F(e_j, w*_k).

    A zero row gets zero gradient (the relu′(0) = 0 convention, see the module
    docstring). Vmappable and jittable; refuses bad W, W_star as
    :func:`relu_population_loss` does.
    """
    W, W_star = _check_weights(W, W_star)
    return _population_grad(W, W_star)


_population_jacobian = jax.jit(jax.jacfwd(_population_grad))


def relu_population_hessian(W: jax.Array, W_star: jax.Array) -> np.ndarray:
    """∂²J/∂W², symmetrised, as a (K d, K d) matrix (forward-mode Jacobian of the closed-form gradient).

    Valid where student rows are parallel (the symmetric saddle): the safe
    norms give the θ-terms their correct zero derivative there.
    """
    W, W_star = _check_weights(W, W_star)
    K, d = W.shape
    jac = np.asarray(_population_jacobian(W, W_star)).reshape(K * d, K * d)
    return 0.5 * (jac + jac.T)


# --------------------------------------------------------------------------
# The symmetric subspace for an orthonormal teacher W* = I_K
# --------------------------------------------------------------------------

def symmetric_weights(x, y, K: int) -> jax.Array:
    """The K × K student w_j = x e_j + y Σ_{k≠j} e_k, i.e. x I + y (11ᵀ − I)."""
    eye = jnp.eye(K)
    return x * eye + y * (1.0 - eye)


def symmetric_coordinates(W: jax.Array) -> jax.Array:
    """Project (..., K, K) students onto the plane: (mean diagonal, mean off-diagonal) → (..., 2)."""
    K = W.shape[-1]
    diag = jnp.trace(W, axis1=-2, axis2=-1) / K
    off = (jnp.sum(W, axis=(-2, -1)) - K * diag) / max(K * (K - 1), 1)
    return jnp.stack([diag, off], axis=-1)


def symmetric_saddle_value(K: int) -> float:
    """x = y = (√(K−1) − arccos(1/√K) + π) / (πK): where the symmetric start converges."""
    return (math.sqrt(K - 1) - math.acos(1.0 / math.sqrt(K)) + math.pi) / (math.pi * K)


def relu_reduced_velocity(xy: jax.Array, K: int) -> jax.Array:
    """(dx/dt, dy/dt) of gradient flow restricted to w_j = x e_j + y Σ_{k≠j} e_k, W* = I_K.

        α = (x² + (K−1)y²)^{-1/2}, θ = ∠(w_j, e_j), φ* = ∠(w_j, e_k), φ = ∠(w_j, w_k), k ≠ j
        2π dx/dt = (π−θ) − πx − (π−φ)(K−1)y + xΓ
        2π dy/dt = (π−φ*) − πy − (π−φ)(x + (K−2)y) + yΓ
        Γ = α sin θ + (K−1)(α sin φ* − sin φ)

    Written independently of :func:`relu_population_grad` (it checks it). The
    angles come from atan2 of closed-form sines and cosines (accurate at 0 and
    π). dy/dt is computed as dx/dt − Δ with the algebraically equal
    2πΔ = (φ* − θ) + (x − y)(Γ − φ), which is exactly 0.0 at x = y: the
    symmetric line is then invariant in floating point too, not only in exact
    arithmetic (it is unstable inside the plane, so rounding differences
    between the two formulas would otherwise grow and break the symmetry).
    Requires K ≥ 2 and (x, y) ≠ 0; xy has shape (2,); K may be a traced number.
    """
    x, y = xy[0], xy[1]
    m = K - 1
    alpha = 1.0 / jnp.sqrt(x * x + m * y * y)
    my2 = m * y * y
    theta = jnp.arctan2(jnp.sqrt(my2), x)
    # sin φ* ‖w‖ = √(x² + (K−2)y²) = √((K−1)y² + (x − y)(x + y)): the same
    # expression as θ's at x = y, so there φ* − θ is exactly 0.
    phi_star = jnp.arctan2(jnp.sqrt(jnp.maximum(my2 + (x - y) * (x + y), 0.0)), y)
    # sin φ ‖w‖² = |x − y| √((x + y)² + 2(K−2)y²), cos φ ‖w‖² = 2xy + (K−2)y².
    phi = jnp.arctan2(jnp.abs(x - y) * jnp.sqrt((x + y) ** 2 + 2 * (K - 2) * y * y),
                      2 * x * y + (K - 2) * y * y)
    gamma = alpha * jnp.sin(theta) + m * (alpha * jnp.sin(phi_star) - jnp.sin(phi))
    dx = (jnp.pi - theta) - jnp.pi * x - (jnp.pi - phi) * (m * y) + x * gamma
    dy = dx - ((phi_star - theta) + (x - y) * (gamma - phi))
    return jnp.stack([dx, dy]) / _TWO_PI


# --------------------------------------------------------------------------
# Dynamics
# --------------------------------------------------------------------------

class StudentTrajectories(eqx.Module):
    """Weights of B runs at T saved times.

    Attributes:
        times: shape (T,), the continuous time (η · steps for the discrete methods).
        weights: shape (B, T, ...) (``(B, T, K, d)`` for students, ``(B, T, 2)``
            for the reduced flow).
        finite: shape (B,): the solver succeeded and every saved value is finite.
            Statistics must be taken over these runs only (or say why not).
    """

    times: jax.Array
    weights: jax.Array
    finite: jax.Array

    @property
    def final(self) -> jax.Array:
        return self.weights[:, -1]


def _validated_times(times) -> tuple[float, ...]:
    """Save times: finite, non-negative, strictly increasing, at least two (a hashable tuple)."""
    t = check_times(times)
    if t.shape[0] < 2 or not np.all(np.diff(t) > 0):
        raise InputError("times must be an increasing 1-D array with at least two entries")
    return tuple(float(v) for v in t)


def _check_batch(W0, W_star) -> tuple[jax.Array, jax.Array]:
    return _check_weights(W0, W_star, "W0", ndim=3)


def _all_finite(ys) -> jax.Array:
    return jnp.all(jnp.isfinite(ys.reshape(ys.shape[0], -1)), axis=1)


@functools.partial(jax.jit, static_argnames=("velocity", "times", "rtol", "atol", "max_steps"))
def _solve_batch(velocity, y0, args, times, rtol, atol, max_steps):
    """Each start of the batch y0 solved by :func:`solve_ode` (its own adaptive step), vmapped.

    Inside ``jit`` the solver cannot raise, so ``check=False``: a failed solve
    leaves ``inf`` in the times it did not reach, and ``_all_finite`` flags it.
    """
    t = np.asarray(times)

    def field(_, y, a):
        return velocity(y, a)

    def solve(y):
        return solve_ode(field, y, t, args=args, t0=float(t[0]), rtol=rtol, atol=atol,
                         max_steps=max_steps, check=False)

    ys = jax.vmap(solve)(y0)
    return ys, _all_finite(ys)


def _negative_grad(W, W_star):
    return -_population_grad(W, W_star)


def relu_gradient_flow(W0: jax.Array, W_star: jax.Array, times, *, rtol: float = 1e-8,
                       atol: float = 1e-10, max_steps: int = 100_000) -> StudentTrajectories:
    """Gradient flow dW/dt = −∇J(W) from each of B starts W0 (B, K, d), saved at ``times``.

    Tsit5 with an adaptive step (:func:`~jaxlimit.limits._ode.solve_ode`),
    vmapped over the batch: each start keeps its own step size; the flow
    starts at ``times[0]``. A run that hits ``max_steps`` or produces a
    non-finite value is flagged in ``finite`` rather than raising.
    """
    W0, W_star = _check_batch(W0, W_star)
    times = _validated_times(times)
    ys, ok = _solve_batch(_negative_grad, W0, W_star, times, rtol, atol, max_steps)
    return StudentTrajectories(jnp.asarray(times), ys, ok)


def relu_reduced_flow(xy0: jax.Array, K: int, times, *, rtol: float = 1e-10,
                      atol: float = 1e-12, max_steps: int = 100_000) -> StudentTrajectories:
    """The reduced (x, y) flow of :func:`relu_reduced_velocity` from starts xy0 (B, 2).

    Returns (x, y) at ``times``, shape (B, T, 2). A start on the line x = y stays
    exactly on it (and converges to :func:`symmetric_saddle_value`).
    """
    if K < 2:
        raise InputError(f"the reduced (x, y) flow needs K ≥ 2 teacher units, got K = {K}")
    xy0 = jnp.asarray(xy0)
    if xy0.ndim != 2 or xy0.shape[1] != 2:
        raise InputError(f"xy0 must have shape (batch, 2), got {xy0.shape}")
    times = _validated_times(times)
    if not bool(jnp.all(jnp.isfinite(xy0))):
        raise InputError("xy0 has a non-finite entry")
    # Integrate the mean s = (x+y)/2 and half-difference δ = (x−y)/2: dδ/dt is
    # exactly 0.0 at δ = 0, so an adaptive Runge–Kutta step keeps a symmetric
    # start on the (unstable) line x = y, whatever order it sums its stages in.
    sd0 = jnp.stack([xy0[:, 0] + xy0[:, 1], xy0[:, 0] - xy0[:, 1]], axis=1) / 2
    sd, ok = _solve_batch(_mean_difference_velocity, sd0, float(K), times, rtol, atol, max_steps)
    xy = jnp.stack([sd[..., 0] + sd[..., 1], sd[..., 0] - sd[..., 1]], axis=-1)
    return StudentTrajectories(jnp.asarray(times), xy, ok)


def _mean_difference_velocity(sd, K):
    v = relu_reduced_velocity(jnp.stack([sd[0] + sd[1], sd[0] - sd[1]]), K)
    return jnp.stack([v[0] + v[1], v[0] - v[1]]) / 2


# --------------------------------------------------------------------------
# Measurements on trajectories
# --------------------------------------------------------------------------

def teacher_distance(W, W_star) -> np.ndarray:
    """min over permutations P of ‖W − P W*‖_F, for W of shape (..., K, d); returns (...).

    Students and teacher need the same number of units. The best permutation
    is an assignment problem (scipy's Hungarian solver), exact for any K.
    """
    W, W_star = np.asarray(W, float), np.asarray(_check_array(W_star, "W_star", 2, "(units, dim) matrix"))
    if W.ndim < 2 or W.shape[-2:] != W_star.shape:
        raise InputError(f"W must have shape (..., {W_star.shape[0]}, {W_star.shape[1]}) like W_star, "
                         f"got {W.shape}")
    if not np.all(np.isfinite(W)):
        raise InputError("W has a non-finite entry; drop the runs that failed first")
    flat = W.reshape(-1, *W_star.shape)
    out = np.empty(flat.shape[0])
    for i, w in enumerate(flat):
        cost = np.sum((w[:, None, :] - W_star[None, :, :]) ** 2, axis=-1)
        rows, cols = scipy.optimize.linear_sum_assignment(cost)
        out[i] = math.sqrt(cost[rows, cols].sum())
    return out.reshape(W.shape[:-2])


def time_within(distance, times) -> np.ndarray:
    """Time spent with ``distance`` below 1: distance (B, T) on ``times`` (T,) → (B,).

    Pass distance/radius for a ball of that radius. Left Riemann sum on the saved grid.
    """
    distance, times = np.asarray(distance), np.asarray(times)
    return np.sum((distance[:, :-1] < 1.0) * np.diff(times), axis=1)


def relu_unstable_rate(W: jax.Array, W_star: jax.Array) -> float:
    """The largest growth rate λ of the flow linearised at W: max eigenvalue of −∇²J(W).

    Escapes from a saddle along a perturbation of size δ take ≈ log(1/δ)/λ.
    The Hessian is :func:`relu_population_hessian` (automatic, valid at the
    symmetric saddle where student rows are parallel).
    """
    return float(np.max(np.linalg.eigvalsh(-relu_population_hessian(W, W_star))))


STATIONARY_KINDS = ("local_minimum", "other_stationary", "still_moving")


@dataclasses.dataclass(frozen=True)
class Ending:
    """Where a run that has not reached the teacher is heading.

    Attributes:
        kind: ``"local_minimum"`` (Newton step below the tolerance and a
            positive-definite Hessian: converging to a local minimum, slowly when
            its smallest eigenvalue is small), ``"other_stationary"`` (Newton step
            small, Hessian not positive definite: near a saddle, which a generic
            run leaves again), or ``"still_moving"``.
        loss: J at the run's end.
        newton_step: ‖H⁻¹∇J‖, the estimated distance to the nearest stationary point.
        min_eigenvalue: the Hessian's smallest eigenvalue.
    """

    kind: str
    loss: float
    newton_step: float
    min_eigenvalue: float


def classify_ending(W: jax.Array, W_star: jax.Array, *, newton_tolerance: float = 1e-3) -> Ending:
    """Classify the end W (K, d) of a flow by a Newton step and the Hessian (see :class:`Ending`)."""
    W, W_star = _check_weights(W, W_star)
    newton_tolerance = require_real(newton_tolerance, "newton_tolerance", high=None)
    grad = np.asarray(_population_grad(W, W_star)).ravel()
    hess = relu_population_hessian(W, W_star)
    newton = float(np.linalg.norm(np.linalg.lstsq(hess, grad, rcond=None)[0]))
    loss = float(_population_loss(W, W_star))
    lowest = float(np.min(np.linalg.eigvalsh(hess)))
    if newton > newton_tolerance:
        kind = "still_moving"
    else:
        kind = "local_minimum" if lowest > 0 else "other_stationary"
    return Ending(kind, loss, newton, lowest)


# --------------------------------------------------------------------------
# The limit object: the population flow from one start
# --------------------------------------------------------------------------

def _flow_field(_, W, W_star):
    return -_population_grad(W, W_star)


class PopulationFlowLimit(Limit):
    """The population gradient flow dW/dt = −∇J(W) from one start: the limit that gradient
    descent (step η → 0) and SGD (step η → 0 or samples per step n → ∞) from that start approach.

    The flow is deterministic, so :meth:`predict` gives a law with **zero
    covariance**: the point mass at W_t, flattened row-major to P = K d
    coordinates. The finite-step and finite-sample effects that this limit
    leaves out, and that the experiment measures against it: gradient descent
    with step η sits O(η) from the flow on a fixed horizon (Euler's global
    error); SGD on n samples per step adds a zero-mean fluctuation of
    covariance O(η t / n) (t/η steps, each adding noise of covariance
    η² Σ(W)/n, Σ the per-sample gradient covariance), so its RMS deviation from
    gradient descent with the same step scales like n^{-1/2}.

    Attributes:
        teacher: W*, shape (M, d).
        start: W_0, shape (K, d).
        step: the step η of the gradient-descent and SGD runs compared with the
            flow (None when there are none).
    """

    teacher: jax.Array
    start: jax.Array
    step: float | None = None

    @property
    def dim(self) -> int:
        """P = K d, the number of coordinates of :meth:`predict`."""
        return int(self.start.size)

    def trajectory(self, times, *, rtol: float | None = None, atol: float | None = None) -> jax.Array:
        """W_t at ``times`` (non-negative, non-decreasing; the flow starts at t = 0): shape (T, K, d)."""
        t = check_times(times)
        return solve_ode(_flow_field, self.start, t, args=self.teacher, rtol=rtol, atol=atol,
                         steps_option="the horizon (--sgd-time)")

    def predict(self, times) -> Gaussian:
        """The law of the flattened weights at ``times``: mean (T, K d) = W_t, covariance (T, K d, K d) = 0."""
        w = self.trajectory(times)
        mean = w.reshape(w.shape[0], -1)
        return Gaussian(mean, jnp.zeros((*mean.shape, mean.shape[-1]), mean.dtype), check_times(times))

    def loss(self, times) -> jax.Array:
        """J(W_t) at ``times``, shape (T,)."""
        return jax.vmap(lambda W: _population_loss(W, self.teacher))(self.trajectory(times))


def population_flow_limit(teacher, start, *, step: float | None = None) -> PopulationFlowLimit:
    """The :class:`PopulationFlowLimit` of the runs that start at ``start`` and learn ``teacher``.

    Refuses (one InputError line naming the argument) a teacher or start that
    is not a finite matrix, the two differing in the input dimension, and a
    step that is not positive and finite or so large that gradient descent is
    unstable at the start (η λ_max(∇²J(W_0)) ≥ 2): the flow does not describe
    such runs. (The Hessian changes along the path, so this refuses the
    clearly unstable steps, not every step that later fails.)
    """
    start, teacher = _check_weights(start, teacher, "start")
    if step is not None:
        step = require_real(step, "step", high=None)
        curvature = float(np.max(np.linalg.eigvalsh(relu_population_hessian(start, teacher))))
        if step * curvature >= 2.0:
            raise InputError(f"step η = {step:g} is unstable for gradient descent at the start "
                             f"(η λ_max(∇²J) = {step * curvature:.3g} ≥ 2); the flow does not describe it")
    return PopulationFlowLimit(teacher, start, step)


# --------------------------------------------------------------------------
# K = 1: initialisation in a small ball
# --------------------------------------------------------------------------

def uniform_ball(key: jax.Array, n: int, dim: int, radius: float, dtype=jnp.float64) -> jax.Array:
    """n points uniform in the d-ball of the given radius: shape (n, d)."""
    k_dir, k_rad = jax.random.split(key)
    z = jax.random.normal(k_dir, (n, dim), dtype)
    u = jax.random.uniform(k_rad, (n, 1), dtype)
    return radius * u ** (1.0 / dim) * z / jnp.linalg.norm(z, axis=1, keepdims=True)


def single_neuron_bound_radius(epsilon: float, dim: int, teacher_norm: float = 1.0) -> float:
    """r = ε √(2π/(d+1)) ‖w*‖: Tian's initialisation radius for K = 1, as docs/teacher-student.md reads it."""
    return epsilon * math.sqrt(2.0 * math.pi / (dim + 1)) * teacher_norm


def single_neuron_bound(radius: float, dim: int, teacher_norm: float = 1.0) -> float:
    """Tian's lower bound (1 − ε)/2 on the success probability, ε = r / (√(2π/(d+1)) ‖w*‖)."""
    epsilon = radius / single_neuron_bound_radius(1.0, dim, teacher_norm)
    return max(0.0, (1.0 - epsilon) / 2.0)


def single_neuron_inside_probability(radius: float, dim: int, teacher_norm: float = 1.0) -> float:
    """P(‖w − w*‖ < ‖w*‖) for w uniform in the d-ball of the given radius (quadrature).

    With w = ρ s, s uniform on the sphere, the event is s₁ > ρ / (2‖w*‖);
    s₁² ~ Beta(1/2, (d−1)/2) for d ≥ 2 and ρ has density d ρ^{d−1} / r^d.
    This is the quantity the (1 − ε)/2 bound is a bound on.
    """
    a_max = radius / (2.0 * teacher_norm)

    def above(a):  # P(s₁ > a) for a ≥ 0
        if a >= 1.0:
            return 0.0
        if dim == 1:
            return 0.5
        return 0.5 * scipy.special.betaincc(0.5, (dim - 1) / 2.0, a * a)

    # Substitute ρ = r u^{1/d}: u uniform on [0, 1].
    value, _ = scipy.integrate.quad(lambda u: above(a_max * u ** (1.0 / dim)), 0.0, 1.0,
                                    epsabs=1e-12, epsrel=1e-10, limit=200)
    return float(value)
