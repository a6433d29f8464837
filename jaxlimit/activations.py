"""Activation functions σ together with their derivatives σ′.

Every activation is an :class:`Activation`: a name, the elementwise function
and its elementwise derivative. Built-in names are listed in
:data:`ACTIVATIONS` (plus ``"leaky_relu(s)"`` for any negative slope s, see
:func:`leaky_relu`); any user callable ``f: Array -> Array`` (elementwise) is
accepted too, and its derivative is taken with ``jax.grad``.

At a kink the derivative takes JAX's value: relu′(0) = 0, abs′(0) = 0,
leaky_relu′(0) = 1 (``jax.nn.leaky_relu`` treats 0 as positive).
"""

from __future__ import annotations

import dataclasses
import math
import re
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
            singular on antipodal inputs (docs/xavier.md#the-limit).
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


def leaky_relu(slope: float = 0.01) -> Activation:
    """σ(u) = u for u ≥ 0 and slope·u for u < 0 (``jax.nn.leaky_relu``'s
    convention; its default slope is 0.01). Named ``"leaky_relu(slope)"``."""
    try:
        s = float(slope)
    except (TypeError, ValueError):
        raise InputError(f"leaky_relu slope must be a number, got {slope!r}") from None
    if not math.isfinite(s):
        raise InputError(f"leaky_relu slope must be finite, got {slope}")

    def fn(u):
        return jnp.where(u >= 0, u, s * u)

    def derivative(u):
        return jnp.where(u >= 0, 1.0, s).astype(jnp.result_type(u, float))

    return Activation(f"leaky_relu({s!r})", fn, derivative)


ACTIVATIONS: dict[str, Activation] = {
    "tanh": Activation("tanh", jnp.tanh, lambda u: 1.0 - jnp.tanh(u) ** 2, odd=True),
    "erf": Activation(
        "erf", erf, lambda u: (2.0 / math.sqrt(math.pi)) * jnp.exp(-u * u), odd=True
    ),
    "relu": Activation("relu", jax.nn.relu, _relu_derivative),
    "sigmoid": Activation("sigmoid", jax.nn.sigmoid, _sigmoid_derivative),
    "gelu": Activation("gelu", _gelu, _gelu_derivative),
    "identity": Activation("identity", lambda u: u, jnp.ones_like, odd=True),
    "abs": Activation("abs", jnp.abs, jnp.sign),
    "sin": Activation("sin", jnp.sin, jnp.cos, odd=True),
    "cos": Activation("cos", jnp.cos, lambda u: -jnp.sin(u)),
    "leaky_relu": leaky_relu(0.01),
}

_LEAKY = re.compile(r"leaky_relu\((.*)\)")


assert tuple(ACTIVATIONS) == ACTIVATION_NAMES, "names.ACTIVATION_NAMES is out of date"


def get_activation(spec: str | ArrayFn | Activation) -> Activation:
    """Return the :class:`Activation` named by ``spec``.

    Args:
        spec: a built-in name (see :data:`ACTIVATIONS`; ``"leaky_relu(0.2)"``
            sets the negative slope), an :class:`Activation`,
            or an elementwise callable whose derivative is then taken with
            ``jax.grad``.

    Raises:
        InputError: for an unknown name or something that is not callable.
    """
    if isinstance(spec, Activation):
        return spec
    if isinstance(spec, str):
        match = _LEAKY.fullmatch(spec.strip())
        if match:
            return leaky_relu(match.group(1))
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
