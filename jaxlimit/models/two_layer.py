"""The one-hidden-layer network with width normalisation N^{-γ} (docs/xavier.md#model-and-scaling).

    g^N(x) = N^{-γ} Σ_{i=1..N} c^i σ(w^i · x)

γ = 1/2 is the Xavier normalisation of Sirignano & Spiliopoulos, γ = 1 the
mean-field one; any γ in [1/2, 1] is allowed. SGD uses the learning rate
α N^{-(2-2γ)} on the true gradient and ⌊N t⌋ steps reach time t, so the output
moves O(1/N) per step for every γ.
"""

from __future__ import annotations

import math

import equinox as eqx
import jax
import jax.numpy as jnp

from jaxlimit.activations import Activation, get_activation
from jaxlimit.errors import InputError
from jaxlimit.names import SCALINGS, resolve_gamma  # noqa: F401 - re-exported
from jaxlimit.validation import require_int, require_real

class InitLaw(eqx.Module):
    """The i.i.d. law of one neuron (c, w) at initialisation.

    ``"gaussian"``: c ~ N(0, c_std²), w ~ N(0, w_std² I_d).
    ``"uniform"``: c ~ U(−√3 c_std, √3 c_std) and each w coordinate likewise
    with w_std; the same variances, with the bounded support the proofs want.
    ``c_mean`` shifts c (mean-zero c is the papers' assumption; a non-zero
    mean is useful to show what breaks).
    """

    # static: the description is hashed by jit as part of the model (and of the engine's cache key)
    kind: str = eqx.field(static=True, default="gaussian")
    c_std: float = eqx.field(static=True, default=1.0)
    w_std: float = eqx.field(static=True, default=1.0)
    c_mean: float = eqx.field(static=True, default=0.0)

    def __check_init__(self):
        if self.kind not in ("gaussian", "uniform"):
            raise InputError(f"unknown initial law {self.kind!r}; choose gaussian or uniform")
        require_real(self.c_std, "c_std")
        require_real(self.w_std, "w_std")
        require_real(self.c_mean, "c_mean", low=None)

    def sample(self, key: jax.Array, width: int, dim: int, dtype) -> "TwoLayerParams":
        # Drawn in float32 whatever ``dtype``: one seed is one network, so a
        # float64 run can be compared with the float32 run of the same seed.
        k_c, k_w = jax.random.split(key)
        if self.kind == "gaussian":
            c = jax.random.normal(k_c, (width,), jnp.float32)
            w = jax.random.normal(k_w, (width, dim), jnp.float32)
        else:
            r = math.sqrt(3.0)
            c = jax.random.uniform(k_c, (width,), jnp.float32, -r, r)
            w = jax.random.uniform(k_w, (width, dim), jnp.float32, -r, r)
        c = (self.c_mean + self.c_std * c.astype(dtype)).astype(dtype)
        return TwoLayerParams(c=c, w=(self.w_std * w.astype(dtype)).astype(dtype))


class TwoLayerParams(eqx.Module):
    """Output weights c, shape (N,), and input weights w, shape (N, d)."""

    c: jax.Array
    w: jax.Array


class TwoLayer(eqx.Module):
    """The two-layer network g^N(x) = N^{-γ} Σ_i c^i σ(w^i·x) and its SGD scaling.

    Attributes:
        width: N ≥ 1.
        dim: input dimension d ≥ 1.
        gamma: the normalisation exponent γ ∈ [1/2, 1].
        activation: σ.
        init_law: the law of (c^i, w^i) at initialisation.
    """

    # static: the description is hashed by jit as part of the model (and of the engine's cache key)
    width: int = eqx.field(static=True)
    dim: int = eqx.field(static=True)
    gamma: float = eqx.field(static=True)
    activation: Activation = eqx.field(static=True)
    init_law: InitLaw = eqx.field(static=True)

    def __init__(self, width: int, dim: int, scaling: str | float = "xavier",
                 activation="tanh", init_law: InitLaw | None = None):
        self.width = require_int(width, "width")
        self.dim = require_int(dim, "dim")
        self.gamma = resolve_gamma(scaling)
        self.activation = get_activation(activation)
        self.init_law = InitLaw() if init_law is None else init_law

    @property
    def hidden_units(self) -> int:
        return self.width

    def init(self, key: jax.Array, dtype=jnp.float32) -> TwoLayerParams:
        return self.init_law.sample(key, self.width, self.dim, dtype)

    def apply(self, params: TwoLayerParams, x: jax.Array) -> jax.Array:
        features = self.activation(x @ params.w.T)  # (P, N)
        return (features @ params.c) * self.width ** (-self.gamma)

    def learning_rates(self) -> TwoLayerParams:
        scale = self.width ** (-(2.0 - 2.0 * self.gamma))
        return TwoLayerParams(c=scale, w=scale)

    @property
    def time_step(self) -> float:
        """1/N: ⌊N t⌋ steps reach time t, so one step is 1/N of training time. With it the
        empirical NTK Σ_ℓ (lr_ℓ / dt) J_ℓ J_ℓᵀ (:func:`~jaxlimit.limits.empirical.empirical_ntk`)
        is the kernel of the output flow dh/dt = (α/M) Θ (Y − h), → A at γ = 1/2."""
        return 1.0 / self.width

    def steps_to(self, t: float) -> int:
        # The small slack keeps ⌊N t⌋ exact when N t is an integer in decimal.
        return int(math.floor(self.width * t + 1e-9))

    def __repr__(self) -> str:  # one line from describe(), not the whole pytree
        from jaxlimit.display import described_repr

        return described_repr(self)

    def describe(self) -> dict:
        law = self.init_law
        return {
            "model": "two-layer",
            "width": self.width,
            "dim": self.dim,
            "gamma": self.gamma,
            "activation": self.activation.name,
            "init": {"kind": law.kind, "c_std": law.c_std, "w_std": law.w_std, "c_mean": law.c_mean},
        }
