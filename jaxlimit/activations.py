"""Activation functions σ together with their derivatives σ′.

Every activation is an :class:`Activation`: a name, the elementwise function
and its elementwise derivative. Built-in names are listed in
:data:`ACTIVATIONS`; any user callable ``f: Array -> Array`` (elementwise) is
accepted too, and its derivative is taken with ``jax.grad``.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Callable

import jax
import jax.numpy as jnp
from jax.scipy.special import erf

from jaxlimit.errors import InputError
from jaxlimit.names import ACTIVATION_NAMES

ArrayFn = Callable[[jax.Array], jax.Array]


@dataclasses.dataclass(frozen=True)
class Activation:
    """An elementwise nonlinearity σ and its derivative σ′.

    Attributes:
        name: a short name used in reports and configuration files.
        fn: σ, applied elementwise.
        derivative: σ′, applied elementwise. For ReLU, σ′(0) = 0.
        odd: whether σ(−u) = −σ(u); with no bias, an odd σ makes the kernel
            singular on antipodal inputs (THEORY §2).
    """

    name: str
    fn: ArrayFn
    derivative: ArrayFn
    odd: bool = False

    def __call__(self, u: jax.Array) -> jax.Array:
        return self.fn(u)


def _relu_derivative(u):
    return (u > 0).astype(u.dtype)


def _sigmoid_derivative(u):
    s = jax.nn.sigmoid(u)
    return s * (1.0 - s)


def _gelu(u):
    # The exact GELU, u Φ(u); the tanh approximation would make the
    # quadrature kernels disagree with the networks at the 1e-3 level.
    return jax.nn.gelu(u, approximate=False)


def _gelu_derivative(u):
    cdf = 0.5 * (1.0 + erf(u / math.sqrt(2.0)))
    pdf = jnp.exp(-0.5 * u * u) / math.sqrt(2.0 * math.pi)
    return cdf + u * pdf


ACTIVATIONS: dict[str, Activation] = {
    "tanh": Activation("tanh", jnp.tanh, lambda u: 1.0 - jnp.tanh(u) ** 2, odd=True),
    "erf": Activation(
        "erf", erf, lambda u: (2.0 / math.sqrt(math.pi)) * jnp.exp(-u * u), odd=True
    ),
    "relu": Activation("relu", jax.nn.relu, _relu_derivative),
    "sigmoid": Activation("sigmoid", jax.nn.sigmoid, _sigmoid_derivative),
    "gelu": Activation("gelu", _gelu, _gelu_derivative),
    "identity": Activation("identity", lambda u: u, jnp.ones_like, odd=True),
}


assert tuple(ACTIVATIONS) == ACTIVATION_NAMES, "names.ACTIVATION_NAMES is out of date"


def get_activation(spec: str | ArrayFn | Activation) -> Activation:
    """Return the :class:`Activation` named by ``spec``.

    Args:
        spec: a built-in name (see :data:`ACTIVATIONS`), an :class:`Activation`,
            or an elementwise callable whose derivative is then taken with
            ``jax.grad``.

    Raises:
        InputError: for an unknown name or something that is not callable.
    """
    if isinstance(spec, Activation):
        return spec
    if isinstance(spec, str):
        try:
            return ACTIVATIONS[spec]
        except KeyError:
            raise InputError(
                f"unknown activation {spec!r}; choose one of {', '.join(ACTIVATIONS)}"
            ) from None
    if callable(spec):
        scalar_grad = jax.grad(lambda u: spec(u))
        name = getattr(spec, "__name__", "custom")
        return Activation(name, spec, jnp.vectorize(scalar_grad))
    raise InputError(f"activation must be a name or a callable, got {type(spec).__name__}")
