"""The empirical neural tangent kernel of one finite network.

The engine's gradient step moves leaf θ_ℓ by lr_ℓ · α · (−∂L/∂θ_ℓ), with lr_ℓ
the model's ``learning_rates()``. To first order that moves the outputs by
α · Θ · (the loss's residuals), with

    Θ(x, x′) = Σ_ℓ lr_ℓ · ∂f(x)/∂θ_ℓ · ∂f(x′)/∂θ_ℓ,

the kernel that the engine's gradient descent actually follows
(:func:`empirical_ntk`). For the two-layer family (lr = N^{−(2−2γ)}) it is
O(1/N) for every γ, and N Θ at initialisation tends to the Xavier kernel A
(docs/xavier.md#the-limit) as N → ∞: with ⌊N t⌋ steps per unit of time the
output ODE is dh/dt = (α/M) N Θ (Y − h).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from jaxlimit.errors import InputError
from jaxlimit.models.base import Model, PyTree


def empirical_ntk(model: Model, params: PyTree, x) -> jax.Array:
    """Θ(x_i, x_j) = Σ_ℓ lr_ℓ ∂f(x_i)/∂θ_ℓ · ∂f(x_j)/∂θ_ℓ of one network, shape (P, P).

    Args:
        model: anything with ``apply(params, x) -> (P,)`` and ``learning_rates()``
            (a pytree of per-leaf multipliers matching ``params``).
        params: one network's parameters (not a batch).
        x: inputs, shape (P, d).

    Returns:
        The learning-rate-scaled empirical NTK on ``x``, symmetric PSD, shape (P, P).
    """
    if not isinstance(x, jax.core.Tracer):
        shape = np.shape(x)
        if len(shape) != 2:
            raise InputError(f"x must have shape (P, d), got {shape}")
        if not np.all(np.isfinite(np.asarray(x, dtype=np.float64))):
            raise InputError("x must be finite")
    x = jnp.asarray(x)
    jac = jax.jacrev(lambda p: model.apply(p, x))(params)

    def gram(j, lr):
        flat = j.reshape(j.shape[0], -1)
        return lr * (flat @ flat.T)

    return sum(jax.tree_util.tree_leaves(jax.tree_util.tree_map(gram, jac, model.learning_rates())))


__all__ = ["empirical_ntk"]
