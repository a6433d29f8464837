"""A deep fully connected network, by default in neural-tangents' "ntk" parameterisation (docs/deep.md).

    z¹ = (σ_w/√d) W⁰ x + σ_b b⁰,    z^{l+1} = (σ_w/√n_l) W^l φ(z^l) + σ_b b^l,    f(x) = z^{L+1},

with every W^l and b^l drawn N(0, 1) (in float32 and cast, so a seed gives
the same network in float32 and float64) and L = len(widths) hidden layers.
With b_std = 0 the network has no bias parameters at all.

The clock. The engine's ``method="fullbatch"`` step is
θ ← θ − α · lr_leaf · ∇_θ L with L = (1/M) Σ_j ½(f(x_j) − y_j)². With α = η
(``Trainer(alpha=η)``) and lr_leaf = dt on every leaf, one step changes the
outputs by −(η dt/M) Θ̂ (f − y) to first order, Θ̂ = Σ_θ ∂f ∂fᵀ the empirical
NTK: the Euler step of df/dt = −(η/M) Θ̂ (f − y), the flow that
:func:`~jaxlimit.limits.mlp.mlp_limit` predicts with learning_rate=η. So
``learning_rates()`` is dt on every leaf and ``steps_to(t)`` is the step
count nearest to t/dt (:func:`~jaxlimit.models.base.steps_for`).

Other parameterisations. ``parameterisation`` (a preset name or a
:class:`~jaxlimit.models.parameterisation.Parameterisation`, docs/parameterisations.md)
gives layer l the exponents (a_l, b_l, c_l) in its width n_l:

    z^l = (σ_w / √d_l) n_l^{-a_l} (W^l h^{l-1}) + σ_b n_1^{-a_bias} b^l,    W^l ~ n_l^{-b_l} N(0, 1),

with d_l = d on the input layer and 1 elsewhere, n_l the fan-out of the input
layer and the fan-in of the others, and the SGD learning rate dt · n_l^{-c_l} on
W^l. The "ntk" preset (a = 1/2 on the hidden and output layers, b = c = 0) is
the formula above, computed with the same floating-point operations.
"""

from __future__ import annotations

import math

import equinox as eqx
import jax
import jax.numpy as jnp

from jaxlimit.activations import Activation, get_activation
from jaxlimit.errors import InputError
from jaxlimit.models.base import check_time_step, steps_for
from jaxlimit.validation import require_real
from jaxlimit.models.parameterisation import (
    LayerScaling, Parameterisation, check_optimizer, get_parameterisation, width_power,
)


def check_scales(W_std, b_std) -> tuple[float, float]:
    """σ_w > 0 and σ_b ≥ 0, finite."""
    return require_real(W_std, "W_std"), require_real(b_std, "b_std", low_open=False)


class Dense(eqx.Module):
    """One layer's standard-normal parameters: W (n_out, n_in) and b (n_out,) or None."""

    W: jax.Array
    b: jax.Array | None


class MLP(eqx.Module):
    """A depth-L fully connected network with one output, NT's "ntk" parameterisation by default.

    Attributes:
        widths: (n_1, …, n_L), the hidden widths, L ≥ 1.
        dim: d, the input dimension.
        activation: φ.
        W_std: σ_w > 0.
        b_std: σ_b ≥ 0 (0: no bias parameters).
        time_step: dt, the training time of one gradient step.
        parameterisation: the layers' width exponents (module docstring); default "ntk".
    """

    # static: the description is hashed by jit as part of the model (and of the engine's cache key)
    widths: tuple[int, ...] = eqx.field(static=True)
    dim: int = eqx.field(static=True)
    activation: Activation = eqx.field(static=True)
    W_std: float = eqx.field(static=True)
    b_std: float = eqx.field(static=True)
    time_step: float = eqx.field(static=True)
    parameterisation: Parameterisation = eqx.field(static=True)

    def __init__(self, widths, dim: int, activation="relu", W_std: float = 1.0, b_std: float = 0.0,
                 time_step: float = 0.01, parameterisation: str | Parameterisation = "ntk"):
        try:
            widths = tuple(widths)
        except TypeError:
            raise InputError(f"widths must be a list of positive integers, got {widths!r}") from None
        if not widths or any(isinstance(n, bool) or int(n) != n or n < 1 for n in widths):
            raise InputError(f"widths must be a non-empty list of positive integers, got {widths!r}")
        if isinstance(dim, bool) or int(dim) != dim or dim < 1:
            raise InputError(f"dim must be a positive integer, got {dim}")
        self.widths = tuple(int(n) for n in widths)
        self.dim = int(dim)
        self.activation = get_activation(activation)
        self.W_std, self.b_std = check_scales(W_std, b_std)
        self.time_step = check_time_step(time_step)
        self.parameterisation = get_parameterisation(parameterisation)

    @property
    def depth(self) -> int:
        """L, the number of hidden layers."""
        return len(self.widths)

    @property
    def hidden_units(self) -> int:
        """Σ n_l, for the engine's memory estimate."""
        return sum(self.widths)

    def _sizes(self) -> list[tuple[int, int]]:
        fan_in = (self.dim, *self.widths)
        fan_out = (*self.widths, 1)
        return list(zip(fan_out, fan_in))

    def _scalings(self) -> list[tuple[LayerScaling, LayerScaling, int, int]]:
        """(weight exponents, bias exponents, n_l, d_l) of each layer (module docstring)."""
        p = self.parameterisation
        out = []
        for i, (scaling, (n_out, n_in)) in enumerate(zip(p.layers(self.depth), self._sizes())):
            bias = p.bias if i < self.depth else LayerScaling(0.0, 0.0, 0.0, 0.0)
            out.append((scaling, bias, n_out if i == 0 else n_in, n_in if i == 0 else 1))
        return out

    def multipliers(self) -> tuple[Dense, ...]:
        """The forward multipliers of W^l and b^l: σ_w / (√d_l n_l^{a_l}) and σ_b n_l^{-a_bias}."""
        return tuple(Dense(self.W_std / (math.sqrt(d) * width_power(n, w.a)),
                           self.b_std / width_power(n, b.a) if self.b_std > 0 else None)
                     for w, b, n, d in self._scalings())

    def init(self, key: jax.Array, dtype=jnp.float32) -> tuple[Dense, ...]:
        """W^l and b^l for the L + 1 layers: standard normal (drawn in float32, then cast), divided by
        n_l^{b_l} (zero for a zero-initialised layer)."""
        layers = []
        keys = jax.random.split(key, self.depth + 1)
        for k, (n_out, n_in), (ws, bs, n, _) in zip(keys, self._sizes(), self._scalings()):
            k_w, k_b = jax.random.split(k)
            w = jax.random.normal(k_w, (n_out, n_in), jnp.float32).astype(dtype)
            b = jax.random.normal(k_b, (n_out,), jnp.float32).astype(dtype) if self.b_std > 0 else None
            if ws.zero_init:
                w = jnp.zeros_like(w)
            elif ws.b != 0:
                w = w / width_power(n, ws.b)
            if b is not None and bs.b != 0:
                b = b / width_power(n, bs.b)
            layers.append(Dense(w, b))
        return tuple(layers)

    def preactivations(self, params: tuple[Dense, ...], x: jax.Array) -> list[jax.Array]:
        """z^1, …, z^L and the output z^{L+1}, each (P, n_l), on inputs x of shape (P, d)."""
        h, zs = x, []
        for i, (layer, m) in enumerate(zip(params, self.multipliers())):
            z = m.W * (h @ layer.W.T)
            if layer.b is not None:
                z = z + m.b * layer.b
            zs.append(z)
            h = self.activation(z) if i < self.depth else z
        return zs

    def apply(self, params: tuple[Dense, ...], x: jax.Array) -> jax.Array:
        """f(x) for inputs x of shape (P, d); returns shape (P,)."""
        return self.preactivations(params, x)[-1][:, 0]

    def layer_learning_rates(self, optimizer: str = "sgd") -> tuple[Dense, ...]:
        """n_l^{-c_l} on every leaf for ``optimizer`` ("sgd" or "adam"), without dt."""
        check_optimizer(optimizer)
        return tuple(Dense(width_power(n, -w.c(optimizer)), width_power(n, -b.c(optimizer)) if self.b_std > 0 else None)
                     for w, b, n, _ in self._scalings())

    def kernel_weights(self) -> tuple[Dense, ...]:
        """The per-leaf multipliers of the NTK Θ̂ = Σ_leaves w ∂f ∂fᵀ: the SGD rates n_l^{-c_l}
        (1 on every leaf in the "ntk" parameterisation)."""
        return self.layer_learning_rates("sgd")

    def learning_rates(self) -> tuple[Dense, ...]:
        """dt on every leaf (the module docstring's clock)."""
        return jax.tree_util.tree_map(lambda w: self.time_step * w, self.kernel_weights())

    def steps_to(self, t: float) -> int:
        """round(t/dt): the network's time steps·dt is within dt/2 of t."""
        return steps_for(t, self.time_step)

    def __repr__(self) -> str:  # one line from describe(), not the whole pytree
        from jaxlimit.display import described_repr

        return described_repr(self)

    def describe(self) -> dict:
        extra = {} if self.parameterisation == get_parameterisation("ntk") else {
            "exponents": self.parameterisation.as_dict()}
        return {
            "model": "mlp",
            "parameterisation": self.parameterisation.name,
            "widths": list(self.widths),
            "dim": self.dim,
            "activation": self.activation.name,
            "W_std": self.W_std,
            "b_std": self.b_std,
            "time_step": self.time_step,
            **extra,
        }


__all__ = ["Dense", "MLP"]
