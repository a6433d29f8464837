"""Empirical and Monte Carlo kernels of any network (docs/deep.md#any-architecture-monte-carlo-kernels).

For a model whose gradient step multiplies the gradient of leaf ℓ by
lr_ℓ = dt · w_ℓ (the engine's ``learning_rates()``, dt the model's
``time_step``), one full-batch step with base rate η moves the outputs by
−(η dt/M) Θ̂ (f − y) to first order, with

    Θ̂(x, x′) = Σ_ℓ w_ℓ ∂f(x)/∂θ_ℓ · ∂f(x′)/∂θ_ℓ,

the empirical NTK *that the engine's gradient descent actually follows*
(:func:`empirical_ntk`). For the NT-parameterised :class:`~jaxlimit.models.MLP`
every w_ℓ = 1, so Θ̂ → the analytic NTK as the widths grow.

Over an ensemble of independently initialised networks (:func:`monte_carlo_kernels`):

    K̂ = the sample covariance of the initial outputs f_0 (ddof = 1),
    Θ̂ = the ensemble mean of the members' empirical NTKs,

each entry with a standard error: sd(Θ̂_e)/√E for the NTK and, for the
covariance, sd((f_i − f̄_i)(f_j − f̄_j))/√E (the delta-method standard error
of a sample covariance). These are the kernels of the Gaussian prediction
for a network known only by (init, apply) (``.limit(y_train, learning_rate)``);
their noise is part of any comparison made with them.
"""

from __future__ import annotations

import math
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from jaxlimit.errors import InputError
from jaxlimit.limits.kernel_limit import KernelLimit
from jaxlimit.limits.mlp import check_points
from jaxlimit.models.base import check_time_step

DEFAULT_MEMORY = 2**29
"""Bytes of Jacobians held at once by :func:`monte_carlo_kernels` (members are batched to fit)."""


def kernel_weights(model: Any, time_step: float | None = None) -> Any:
    """The per-leaf multipliers w_ℓ = lr_ℓ / dt of the model's NTK (a pytree of floats)."""
    if hasattr(model, "kernel_weights"):
        return model.kernel_weights()
    dt = time_step if time_step is not None else getattr(model, "time_step", None)
    if dt is None:
        raise InputError("the model has no time_step: pass time_step= (the training time of one step)")
    dt = check_time_step(dt)
    return jax.tree_util.tree_map(lambda lr: lr / dt, model.learning_rates())


def _ntk_from_jacobian(jac: Any, weights: Any) -> jax.Array:
    """Σ_ℓ w_ℓ J_ℓ J_ℓᵀ from Jacobian leaves of shape (P, *leaf_shape)."""
    terms = jax.tree_util.tree_map(lambda j, w: w * (lambda a: a @ a.T)(j.reshape(j.shape[0], -1)), jac, weights)
    return sum(jax.tree_util.tree_leaves(terms))


def empirical_ntk(model: Any, params: Any, x, *, time_step: float | None = None) -> jax.Array:
    """Θ̂(x_i, x_j) = Σ_ℓ w_ℓ ∂f(x_i)/∂θ_ℓ · ∂f(x_j)/∂θ_ℓ for one network, shape (P, P).

    Args:
        model: anything with ``apply(params, x) -> (P,)`` and either
            ``kernel_weights()`` or ``learning_rates()`` plus a time step.
        params: the network's parameters.
        x: inputs (P, d).
        time_step: dt, when the model has neither ``kernel_weights`` nor ``time_step``.
    """
    weights = kernel_weights(model, time_step)
    x = jnp.asarray(x)
    if x.ndim != 2:
        raise InputError(f"x must have shape (P, d), got {x.shape}")
    jac = jax.jacrev(lambda p: model.apply(p, x))(params)
    return _ntk_from_jacobian(jac, weights)


def ntk_observable(model: Any, *, time_step: float | None = None):
    """An engine observable ``fn(params, params0, data)`` recording :func:`empirical_ntk` on all
    training and probe points (shape (P, P) per member and saved time)."""

    def ntk(params, params0, data):
        return empirical_ntk(model, params, data.x_all, time_step=time_step)

    return ntk


class MonteCarloKernels(eqx.Module):
    """Kernels estimated from an ensemble, with standard errors.

    Attributes:
        nngp: K̂, the sample covariance of the initial outputs, shape (P, P).
        ntk: Θ̂, the ensemble mean of the empirical NTKs, shape (P, P).
        nngp_se: the standard error of each entry of K̂.
        ntk_se: the standard error of each entry of Θ̂.
        outputs: the members' initial outputs f_0, shape (E, P).
        n_members: E.
    """

    nngp: np.ndarray
    ntk: np.ndarray
    nngp_se: np.ndarray
    ntk_se: np.ndarray
    outputs: np.ndarray
    # static: metadata of an array pytree; a tree_map over the arrays must not touch it
    n_members: int = eqx.field(static=True)

    def limit(self, y_train, learning_rate: float) -> KernelLimit:
        """The Gaussian prediction with these kernels (the first len(y_train) points are training points)."""
        err = float(max(np.max(self.nngp_se), np.max(self.ntk_se)))
        return KernelLimit(self.nngp, self.ntk, y_train, learning_rate, kernel_error=err,
                           kernel_method="monte-carlo")

    def z_scores(self, nngp, ntk) -> tuple[np.ndarray, np.ndarray]:
        """(K̂ − K)/SE and (Θ̂ − Θ)/SE against given kernels (entries with SE = 0 give 0 if equal)."""
        with np.errstate(divide="ignore", invalid="ignore"):
            z1 = (self.nngp - np.asarray(nngp)) / self.nngp_se
            z2 = (self.ntk - np.asarray(ntk)) / self.ntk_se
        return np.nan_to_num(z1, nan=0.0), np.nan_to_num(z2, nan=0.0)


def monte_carlo_kernels(
    model: Any,
    key: jax.Array,
    x,
    n_members: int,
    *,
    time_step: float | None = None,
    dtype=jnp.float64,
    memory: int = DEFAULT_MEMORY,
) -> MonteCarloKernels:
    """K̂ and Θ̂ with standard errors from ``n_members`` networks ``model.init(k_e, dtype)``.

    Args:
        model: a Model (``init``, ``apply``, ``learning_rates``; see :func:`empirical_ntk`).
        key: member e uses ``jax.random.split(key, n_members)[e]``.
        x: inputs (P, d).
        n_members: E ≥ 2.
        time_step: dt, for a model without ``kernel_weights`` or ``time_step``.
        dtype: the parameters' float type (float64 needs ``jax_enable_x64``).
        memory: bytes of Jacobians computed at once; members are batched to fit.

    Returns:
        A :class:`MonteCarloKernels` (NumPy float64 arrays).
    """
    if isinstance(n_members, bool) or int(n_members) != n_members or n_members < 2:
        raise InputError(f"n_members must be an integer ≥ 2, got {n_members}")
    if jnp.dtype(dtype) == jnp.float64 and not jax.config.jax_enable_x64:
        raise InputError("float64 Monte Carlo kernels need jax.config.update('jax_enable_x64', True)")
    x = check_points(x, "x")
    expected_dim = getattr(model, "dim", None)
    if expected_dim is not None and x.shape[1] != expected_dim:
        raise InputError(f"x has dimension {x.shape[1]} but the model expects {expected_dim}")
    weights = kernel_weights(model, time_step)
    xj = jnp.asarray(x, dtype)
    shapes = jax.eval_shape(lambda k: model.init(k, dtype), jax.random.key(0))
    n_param = sum(math.prod(s.shape) for s in jax.tree_util.tree_leaves(shapes))
    per_member = 2 * x.shape[0] * n_param * jnp.dtype(dtype).itemsize
    batch = int(max(1, min(int(n_members), memory // max(per_member, 1))))

    def member(k):
        params = model.init(k, dtype)
        jac = jax.jacrev(lambda p: model.apply(p, xj))(params)
        return model.apply(params, xj), _ntk_from_jacobian(jac, weights)

    keys = jax.random.split(key, int(n_members))
    outputs, ntks = jax.lax.map(member, keys, batch_size=batch)
    f0 = np.asarray(outputs, np.float64)
    theta = np.asarray(ntks, np.float64)
    e = f0.shape[0]
    centred = f0 - f0.mean(axis=0)
    products = centred[:, :, None] * centred[:, None, :]  # (E, P, P)
    nngp = products.sum(axis=0) / (e - 1)
    nngp_se = products.std(axis=0, ddof=1) / math.sqrt(e)
    return MonteCarloKernels(nngp, theta.mean(axis=0), nngp_se, theta.std(axis=0, ddof=1) / math.sqrt(e), f0, e)


__all__ = ["ntk_observable", "DEFAULT_MEMORY", "MonteCarloKernels", "empirical_ntk", "kernel_weights", "monte_carlo_kernels"]
