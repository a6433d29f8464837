"""A deep network in the μP / mean-field parameterisation with feature-learning strength γ₀
(Bordelon & Pehlevan 2022; docs/feature-learning.md).

    h¹ = W⁰x/√D,    h^{ℓ+1} = W^ℓ φ(h^ℓ)/√N,    f = w^L·φ(h^L)/(γ₀N),

every weight N(0, 1) (drawn in float32 and cast, so a seed gives the same network in float32 and
float64), L = ``depth`` hidden layers of width N, no biases.

The clock. The engine's ``method="fullbatch"`` step is θ ← θ − α · lr_leaf · ∇_θ L with
L = (1/2P) Σ_μ (f(x_μ) − y_μ)². With ``Trainer(alpha=η, method="fullbatch")`` and
lr_leaf = γ₀² N dt on every leaf, one step is the Euler step of dθ/dt = −η γ₀² N ∇_θ L, the flow
whose limit :func:`~jaxlimit.limits.dmft.dmft_limit` describes; ``steps_to(t)`` is the step count
nearest to t/dt.
"""

from __future__ import annotations

import math

import equinox as eqx
import jax
import jax.numpy as jnp

from jaxlimit.activations import Activation, get_activation
from jaxlimit.config import require_real
from jaxlimit.errors import InputError
from jaxlimit.models.base import check_time_step, steps_for


class FeatureMLP(eqx.Module):
    """A depth-L μP network of width N with one output (module docstring).

    Attributes:
        width: N.
        dim: D, the input dimension.
        depth: L ≥ 1, the number of hidden layers.
        activation: φ.
        gamma0: γ₀ > 0.
        time_step: dt, the training time of one gradient step.
    """

    # static: the description is hashed by jit as part of the model (and of the engine's cache key)
    width: int = eqx.field(static=True)
    dim: int = eqx.field(static=True)
    depth: int = eqx.field(static=True)
    activation: Activation = eqx.field(static=True)
    gamma0: float = eqx.field(static=True)
    time_step: float = eqx.field(static=True)

    def __init__(self, width: int, dim: int, depth: int = 1, activation="identity", gamma0: float = 1.0,
                 time_step: float = 0.01):
        for name, v in (("width", width), ("dim", dim), ("depth", depth)):
            if isinstance(v, bool) or not isinstance(v, (int, float)) or int(v) != v or v < 1:
                raise InputError(f"{name} must be a positive integer, got {v!r}")
        self.width, self.dim, self.depth = int(width), int(dim), int(depth)
        self.activation = get_activation(activation)
        self.gamma0 = require_real(gamma0, "gamma0")
        self.time_step = check_time_step(time_step)

    @property
    def hidden_units(self) -> int:
        """L N, for the engine's memory estimate."""
        return self.depth * self.width

    def init(self, key: jax.Array, dtype=jnp.float32) -> tuple[jax.Array, ...]:
        """(W⁰ (N, D), W¹ … W^{L−1} (N, N), w^L (N,)), standard normal."""
        shapes = [(self.width, self.dim)] + [(self.width, self.width)] * (self.depth - 1) + [(self.width,)]
        keys = jax.random.split(key, len(shapes))
        return tuple(jax.random.normal(k, s, jnp.float32).astype(dtype) for k, s in zip(keys, shapes))

    def features(self, params, x: jax.Array) -> list[jax.Array]:
        """The pre-activations h¹ … h^L on inputs x (P, D), each (P, N)."""
        h = x @ params[0].T / math.sqrt(self.dim)
        out = [h]
        for w in params[1:-1]:
            h = self.activation(h) @ w.T / math.sqrt(self.width)
            out.append(h)
        return out

    def apply(self, params, x: jax.Array) -> jax.Array:
        """f(x) = w^L·φ(h^L)/(γ₀N) for x of shape (P, D); returns (P,)."""
        h = self.features(params, x)[-1]
        return self.activation(h) @ params[-1] / (self.gamma0 * self.width)

    def ntk(self, params, x: jax.Array) -> jax.Array:
        """The empirical NTK of the flow's clock, K = γ₀² N J Jᵀ with J = ∂f/∂θ on x (P, D): the
        outputs follow df/dt = −(η/P) K_{:,train} (f − y). Shape (P, P)."""
        jac = jax.jacrev(lambda p: self.apply(p, x))(params)
        flat = jnp.concatenate([j.reshape(x.shape[0], -1) for j in jax.tree_util.tree_leaves(jac)], axis=1)
        return self.gamma0 ** 2 * self.width * flat @ flat.T

    def learning_rates(self) -> tuple[float, ...]:
        """γ₀² N dt on every leaf (the module docstring's clock)."""
        rate = self.gamma0 ** 2 * self.width * self.time_step
        return tuple(rate for _ in range(self.depth + 1))

    def steps_to(self, t: float) -> int:
        """round(t/dt)."""
        return steps_for(t, self.time_step)

    def describe(self) -> dict:
        return {
            "model": "feature_mlp",
            "parameterisation": "mup",
            "width": self.width,
            "dim": self.dim,
            "depth": self.depth,
            "activation": self.activation.name,
            "gamma0": self.gamma0,
            "time_step": self.time_step,
        }


__all__ = ["FeatureMLP"]
