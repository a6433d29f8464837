"""Per-sample losses ℓ(prediction, target), vectorised over samples.

The squared loss is ½(y − ŷ)², the form whose SGD is written in docs/xavier.md#model-and-scaling.
The Huber loss is quadratic within ``delta`` of the target and linear beyond,
as in Pham & Nguyen's three-layer example.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Callable

import jax
import jax.numpy as jnp

from jaxlimit.errors import InputError
from jaxlimit.validation import require_real


@dataclasses.dataclass(frozen=True)
class Loss:
    """A per-sample loss ℓ(ŷ, y) applied elementwise.

    ``residual``, when known, is ψ with ∂ℓ/∂ŷ = −ψ(y − ŷ) (the hand-derived
    training programs use it); None for a loss given only as a function.
    """

    name: str
    fn: Callable[[jax.Array, jax.Array], jax.Array]
    residual: Callable[[jax.Array], jax.Array] | None = None

    def __call__(self, prediction: jax.Array, target: jax.Array) -> jax.Array:
        return self.fn(prediction, target)


_SQUARED = Loss("squared", lambda p, y: 0.5 * (y - p) ** 2, lambda r: r)


def squared_loss() -> Loss:
    """ℓ(ŷ, y) = ½ (y − ŷ)² (one object, so that compiled training code is reused)."""
    return _SQUARED


@functools.lru_cache(maxsize=64)
def huber_loss(delta: float = 1.0) -> Loss:
    """ℓ(ŷ, y) = ½ r² for |r| ≤ δ, else δ(|r| − δ/2), with r = y − ŷ (one object per δ)."""
    delta = require_real(delta, "delta")

    def fn(p, y):
        r = jnp.abs(y - p)
        return jnp.where(r <= delta, 0.5 * r * r, delta * (r - 0.5 * delta))

    return Loss(f"huber({delta:g})", fn, lambda r: jnp.clip(r, -delta, delta))


def get_loss(name: str | Loss, delta: float = 1.0) -> Loss:
    """Return the loss named ``"squared"`` or ``"huber"`` (or ``name`` itself)."""
    if isinstance(name, Loss):
        return name
    if name == "squared":
        return squared_loss()
    if name == "huber":
        return huber_loss(delta)
    raise InputError(f"unknown loss {name!r}; choose squared or huber")
