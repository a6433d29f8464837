"""The three-layer network in the mean-field regime (Pham & Nguyen; docs/three-layer.md).

    H2(x, j2) = (1/n1) Σ_{j1} w2(j1, j2) φ1(⟨w1(j1), x⟩)
    H3(x)     = (1/n2) Σ_{j2} w3(j2) φ2(H2(x, j2))
    ŷ(x)      = φ3(H3(x))

No biases. One SGD step at time t = kε moves every weight by ε ξ_i times the
paper's *mean-field* gradient (the autodiff gradient with the 1/n factors of
the layers it feeds removed):

    Δ3(x)     = ∂_ŷ ℓ(ŷ, y) φ3'(H3)
    Δ2(x, j2) = Δ3 w3(j2) φ2'(H2(x, j2))
    Δ1(x, j1) = (1/n2) Σ_{j2} Δ2(x, j2) w2(j1, j2) φ1'(⟨w1(j1), x⟩)

    w3(j2)     -= ε ξ3 Δ3 φ2(H2(x, j2))
    w2(j1, j2) -= ε ξ2 Δ2(x, j2) φ1(⟨w1(j1), x⟩)
    w1(j1)     -= ε ξ1 Δ1(x, j1) x

Since ∂ℓ/∂w1 = Δ1 x / n1, ∂ℓ/∂w2 = Δ2 φ1 / (n1 n2) and ∂ℓ/∂w3 = Δ3 φ2 / n2,
this is plain SGD with the per-layer rates ε ξ1 n1, ε ξ2 n1 n2 and ε ξ3 n2
(:meth:`ThreeLayer.learning_rates`), so the training engine runs it unchanged;
:meth:`ThreeLayer.mean_field_gradient` is the hand-derived version of the same
update, checked against ``jax.grad`` in the tests. ⌊t/ε⌋ steps reach time t
at every width, and each step moves the output by O(ε).

Coupling across widths: every unit's (and every pair's) initial randomness is
a function of its index alone, so a width-(n1, n2) network is exactly the
leading sub-block (first n1 layer-1 units, first n2 layer-2 units, the
matching n1×n2 block of w2) of any wider network drawn from the same key
(docs/three-layer.md#width-by-coupling).

The degenerate start (docs/three-layer.md#the-degenerate-start): at t = 0 the
limit has H2(x) = E[w2] E[φ1(⟨w1, x⟩)], zero whatever E[w2] for an odd φ1
(w1 is symmetric), so a zero-mean w2 alone is not stuck: learning starts
through w3. The limit sits at a stationary point only when w3 ≡ 0 and the w3
update vanishes too (φ2(H2) = 0, e.g. E[w2] = 0 with φ2(0) = 0, or ξ3 = 0):
:meth:`ThreeLayer.starts_stationary` decides it, :data:`DEGENERATE_INIT` is
the standard example.
"""

from __future__ import annotations

import math
from typing import Callable

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxlimit.activations import Activation, get_activation
from jaxlimit.errors import InputError
from jaxlimit.losses import Loss, get_loss
from jaxlimit.validation import require_int, require_real

TILE = 64
"""Initial weights are drawn in TILE-sized blocks keyed by block index (see ``_tiled``)."""


class ThreeLayerParams(eqx.Module):
    """w1, shape (n1, d); w2, shape (n1, n2); w3, shape (n2,)."""

    w1: jax.Array
    w2: jax.Array
    w3: jax.Array


class ThreeLayerInit(eqx.Module):
    """The i.i.d. initial law (docs/three-layer.md#model-and-scaling): layers independent of each other.

    w1(j1) ~ N(0, w1_std² I_d) (full support, as the global-convergence
    theorem asks). Each w2(j1, j2) and each w3(j2) has the given mean and
    standard deviation, with a uniform law (bounded, as the theorem asks) or
    a Gaussian one; a standard deviation of 0 gives a point mass.

    The default has E[w3] = 1. Why (docs/three-layer.md#the-degenerate-start):
    with an odd φ1 and symmetric w1, E[w2 φ1(⟨w1, x⟩)] = 0 whatever the mean
    of w2, so in the limit H2 = 0 and ŷ = φ3(0) at t = 0; a non-zero E[w2]
    does not change that. Learning then starts through w3 (dH3/dt ∝ E[w3²]).
    Only with w3 = 0 as well (and φ2(0) = 0, or ξ3 = 0) does the limit sit at
    a stationary point (:data:`DEGENERATE_INIT`).
    """

    # static: the description is hashed by jit as part of the model (and of the engine's cache key)
    kind: str = eqx.field(static=True, default="uniform")
    w1_std: float = eqx.field(static=True, default=1.0)
    w2_mean: float = eqx.field(static=True, default=0.0)
    w2_std: float = eqx.field(static=True, default=1.0)
    w3_mean: float = eqx.field(static=True, default=1.0)
    w3_std: float = eqx.field(static=True, default=1.0)

    def __check_init__(self):
        if self.kind not in ("uniform", "gaussian"):
            raise InputError(f"unknown initial law {self.kind!r}; choose uniform or gaussian")
        for name in ("w2_mean", "w3_mean"):
            require_real(getattr(self, name), name, low=None)
        for name in ("w2_std", "w3_std"):
            require_real(getattr(self, name), name, low=0.0, low_open=False)
        if not (isinstance(self.w1_std, (int, float)) and math.isfinite(self.w1_std) and self.w1_std > 0):
            raise InputError(f"w1_std must be positive and finite (w1 needs full support), got {self.w1_std!r}")

    def _draw(self, key, shape, dtype, mean, std, gaussian=False):
        # Drawn in float32 whatever ``dtype`` (as for the two-layer model): one
        # seed is one network, in a float32 ensemble or a float64 reference.
        if self.kind == "uniform" and not gaussian:
            r = math.sqrt(3.0)
            z = jax.random.uniform(key, shape, jnp.float32, -r, r)
        else:
            z = jax.random.normal(key, shape, jnp.float32)
        return (mean + std * z.astype(dtype)).astype(dtype)

    def sample(self, key: jax.Array, n1: int, n2: int, dim: int, dtype) -> ThreeLayerParams:
        k1, k2, k3 = jax.random.split(key, 3)
        w1 = _tiled(lambda k, s: self._draw(k, s, dtype, 0.0, self.w1_std, gaussian=True),
                    k1, (n1,), (dim,))
        w2 = _tiled(lambda k, s: self._draw(k, s, dtype, self.w2_mean, self.w2_std), k2, (n1, n2))
        w3 = _tiled(lambda k, s: self._draw(k, s, dtype, self.w3_mean, self.w3_std), k3, (n2,))
        return ThreeLayerParams(w1=w1, w2=w2, w3=w3)

    def describe(self) -> dict:
        return {"kind": self.kind, "w1_std": self.w1_std, "w2_mean": self.w2_mean,
                "w2_std": self.w2_std, "w3_mean": self.w3_mean, "w3_std": self.w3_std}


DEGENERATE_INIT = ThreeLayerInit(w2_mean=0.0, w3_mean=0.0, w3_std=0.0)
"""E[w2] = 0 and w3 = 0: with φ2(0) = 0 (tanh, erf, relu, gelu, identity; not
sigmoid) the limit starts (and stays) at the stationary point H2 = 0, w3 = 0,
ŷ = φ3(0), for any φ1; finite networks escape only through their O(n^{-1/2})
fluctuations, after a loss plateau that lengthens with the width
(docs/three-layer.md#the-degenerate-start)."""


def _tiled(draw: Callable, key: jax.Array, unit_shape: tuple[int, ...],
           trailing: tuple[int, ...] = ()) -> jax.Array:
    """An array of shape ``unit_shape + trailing`` whose entries depend only on their index.

    The index space is cut into TILE-sized blocks (TILE×TILE for two unit
    axes); block (r[, c]) is ``draw(fold_in(fold_in(key, r), c), block_shape)``.
    Drawing ⌈n/TILE⌉ blocks and slicing to n gives, for any width, the leading
    sub-block of every wider draw: the coupling of docs/three-layer.md#width-by-coupling. At n = 4096 this
    costs one pass over the 16.7M entries of w2, and for small widths at most
    one partial block is wasted per axis.
    """
    blocks = [-(-n // TILE) for n in unit_shape]
    if len(unit_shape) == 1:
        keys = jax.vmap(lambda r: jax.random.fold_in(key, r))(jnp.arange(blocks[0]))
        tiles = jax.vmap(lambda k: draw(k, (TILE, *trailing)))(keys)
        return tiles.reshape(blocks[0] * TILE, *trailing)[: unit_shape[0]]
    rows = jax.vmap(lambda r: jax.random.fold_in(key, r))(jnp.arange(blocks[0]))
    keys = jax.vmap(lambda k: jax.vmap(lambda c: jax.random.fold_in(k, c))(jnp.arange(blocks[1])))(rows)
    tiles = jax.vmap(jax.vmap(lambda k: draw(k, (TILE, TILE))))(keys)  # (R, C, TILE, TILE)
    full = tiles.transpose(0, 2, 1, 3).reshape(blocks[0] * TILE, blocks[1] * TILE)
    return full[: unit_shape[0], : unit_shape[1]]


class ThreeLayerForward(eqx.Module):
    """The forward pass on P inputs: every quantity the backward pass reuses.

    pre1 = ⟨w1, x⟩, shape (P, n1); h1 = φ1(pre1), (P, n1); H2, (P, n2);
    H3, (P,); output ŷ = φ3(H3), (P,).
    """

    pre1: jax.Array
    h1: jax.Array
    H2: jax.Array
    H3: jax.Array
    output: jax.Array


def _width(value, label: str) -> int:
    return require_int(value, label)


class ThreeLayer(eqx.Module):
    """The mean-field three-layer network and its SGD scaling (docs/three-layer.md#model-and-scaling).

    Attributes:
        n1, n2: the hidden widths.
        dim: the input dimension d.
        eps: the step ε; ⌊t/ε⌋ steps reach time t, at every width.
        xi: the constant learning-rate schedules (ξ1, ξ2, ξ3) ≥ 0; ξ3 = 0
            freezes the third layer. Time-dependent ξ_i(t) = ξ_i s_i(t) are run
            through :func:`time_schedule`.
        phi1, phi2, phi3: the activations (default tanh, tanh, identity).
        init_law: the initial law of the weights.
    """

    # static: the description is hashed by jit as part of the model (and of the engine's cache key)
    n1: int = eqx.field(static=True)
    n2: int = eqx.field(static=True)
    dim: int = eqx.field(static=True)
    eps: float = eqx.field(static=True)
    xi: tuple[float, float, float] = eqx.field(static=True)
    phi1: Activation = eqx.field(static=True)
    phi2: Activation = eqx.field(static=True)
    phi3: Activation = eqx.field(static=True)
    init_law: ThreeLayerInit = eqx.field(static=True)

    def __init__(self, n1: int, n2: int, dim: int, eps: float = 0.01,
                 xi: tuple[float, float, float] = (1.0, 1.0, 1.0),
                 phi1="tanh", phi2="tanh", phi3="identity",
                 init_law: ThreeLayerInit | None = None):
        self.n1 = _width(n1, "n1")
        self.n2 = _width(n2, "n2")
        self.dim = _width(dim, "input dimension")
        self.eps = require_real(eps, "step eps")
        if isinstance(xi, (str, bytes)) or not hasattr(xi, "__len__") or len(xi) != 3:
            raise InputError(f"xi must be three non-negative finite numbers, got {xi!r}")
        xi = tuple(require_real(v, "xi", low=0.0, low_open=False) for v in xi)
        if not any(xi):
            raise InputError("xi is zero for all three layers: nothing would train")
        self.xi = xi
        self.phi1 = get_activation(phi1)
        self.phi2 = get_activation(phi2)
        self.phi3 = get_activation(phi3)
        self.init_law = ThreeLayerInit() if init_law is None else init_law

    def replace(self, *, n1: int | None = None, n2: int | None = None,
                eps: float | None = None) -> "ThreeLayer":
        """The same network description at other widths or another step."""
        return ThreeLayer(self.n1 if n1 is None else n1, self.n2 if n2 is None else n2, self.dim,
                          self.eps if eps is None else eps, self.xi, self.phi1, self.phi2,
                          self.phi3, self.init_law)

    @property
    def hidden_units(self) -> int:
        return self.n1 + self.n2

    def init(self, key: jax.Array, dtype=jnp.float32) -> ThreeLayerParams:
        return self.init_law.sample(key, self.n1, self.n2, self.dim, dtype)

    def forward(self, params: ThreeLayerParams, x: jax.Array) -> ThreeLayerForward:
        """The forward pass on inputs x of shape (P, d)."""
        pre1 = x @ params.w1.T
        h1 = self.phi1(pre1)
        H2 = (h1 @ params.w2) / self.n1
        H3 = (self.phi2(H2) @ params.w3) / self.n2
        return ThreeLayerForward(pre1=pre1, h1=h1, H2=H2, H3=H3, output=self.phi3(H3))

    def apply(self, params: ThreeLayerParams, x: jax.Array) -> jax.Array:
        return self.forward(params, x).output

    def mean_field_gradient(self, params: ThreeLayerParams, x: jax.Array, y: jax.Array,
                            loss: Loss | str = "squared") -> ThreeLayerParams:
        """The paper's update direction averaged over a batch x (P, d), y (P,).

        Equals the autodiff gradient of the batch-mean loss times
        (n1, n1 n2, n2) layer by layer (no ξ, no ε): see the module docstring.
        """
        loss = get_loss(loss)
        f = self.forward(params, x)
        dloss = jax.vmap(jax.grad(loss.fn))(f.output, y)        # ∂_ŷ ℓ, (P,)
        delta3 = dloss * self.phi3.derivative(f.H3)             # (P,)
        delta2 = delta3[:, None] * params.w3 * self.phi2.derivative(f.H2)  # (P, n2)
        delta1 = (delta2 @ params.w2.T) / self.n2 * self.phi1.derivative(f.pre1)  # (P, n1)
        p = x.shape[0]
        return ThreeLayerParams(
            w1=delta1.T @ x / p,
            w2=f.h1.T @ delta2 / p,
            w3=self.phi2(f.H2).T @ delta3 / p,
        )

    def width_factors(self) -> ThreeLayerParams:
        """(n1, n1 n2, n2): autodiff gradient × these = the mean-field gradient."""
        return ThreeLayerParams(w1=float(self.n1), w2=float(self.n1 * self.n2), w3=float(self.n2))

    def learning_rates(self) -> ThreeLayerParams:
        """ε ξ1 n1, ε ξ2 n1 n2, ε ξ3 n2 (docs/three-layer.md#model-and-scaling), multiplied by the trainer's α."""
        n = self.width_factors()
        x1, x2, x3 = self.xi
        return ThreeLayerParams(w1=self.eps * x1 * n.w1, w2=self.eps * x2 * n.w2,
                                w3=self.eps * x3 * n.w3)

    def steps_to(self, t: float) -> int:
        # The small slack keeps ⌊t/ε⌋ exact when t/ε is an integer in decimal.
        return int(math.floor(t / self.eps + 1e-9))

    def sub_block(self, params: ThreeLayerParams, n1: int, n2: int) -> ThreeLayerParams:
        """The leading (n1, n2) sub-block: a narrower network's weights."""
        if not (1 <= n1 <= self.n1 and 1 <= n2 <= self.n2):
            raise InputError(f"sub-block ({n1}, {n2}) does not fit in ({self.n1}, {self.n2})")
        return ThreeLayerParams(w1=params.w1[:n1], w2=params.w2[:n1, :n2], w3=params.w3[:n2])

    def limit_hidden_field(self, x) -> np.ndarray:
        """H2(x) of the limit at t = 0 for inputs x (P, d): E[w2] E[φ1(⟨w1, x⟩)], shape (P,).

        w2 is independent of w1, and ⟨w1, x⟩ ~ N(0, w1_std² |x|²); the
        expectation is a 64-node Gauss–Hermite rule (exactly zero for an odd φ1,
        whose nodes cancel in pairs).
        """
        x = np.asarray(x, np.float64)
        if x.ndim != 2 or x.shape[1] != self.dim:
            raise InputError(f"inputs must have shape (P, {self.dim}), got {x.shape}")
        law = self.init_law
        if law.w2_mean == 0.0:
            return np.zeros(len(x))
        nodes, weights = np.polynomial.hermite_e.hermegauss(64)
        scale = law.w1_std * np.linalg.norm(x, axis=1)
        values = np.asarray(self.phi1(jnp.asarray(scale[:, None] * nodes[None, :])), np.float64)
        return law.w2_mean * (values @ weights) / math.sqrt(2.0 * math.pi)

    def starts_stationary(self, x_train) -> bool:
        """Whether the limit sits at a stationary point from t = 0 on these training inputs.

        True when w3 ≡ 0 (w3_mean = w3_std = 0) and the w3 update vanishes:
        ξ3 = 0, or φ2(H2(x)) = 0 at every training input with H2 the limit's
        t = 0 field (:meth:`limit_hidden_field`). Then every update is zero
        (w3 = 0 kills those of w1 and w2), ŷ = φ3(0) for all t in the limit, and
        finite networks leave only through their fluctuations
        (docs/three-layer.md#the-degenerate-start).
        """
        law = self.init_law
        if law.w3_mean != 0.0 or law.w3_std != 0.0:
            return False
        if self.xi[2] == 0.0:
            return True
        h2 = self.limit_hidden_field(x_train)
        return bool(np.all(np.abs(np.asarray(self.phi2(jnp.asarray(h2)))) <= 1e-9))

    def __repr__(self) -> str:  # one line from describe(), not the whole pytree
        from jaxlimit.display import described_repr

        return described_repr(self)

    def describe(self) -> dict:
        return {
            "model": "three-layer",
            "n1": self.n1,
            "n2": self.n2,
            "dim": self.dim,
            "eps": self.eps,
            "xi": list(self.xi),
            "activations": [self.phi1.name, self.phi2.name, self.phi3.name],
            "init": self.init_law.describe(),
        }


def time_schedule(model: ThreeLayer, s1: Callable | None = None, s2: Callable | None = None,
                  s3: Callable | None = None) -> optax.GradientTransformation:
    """Time-dependent schedules ξ_i(t) = ξ_i s_i(t) as an optax transformation.

    The engine's width-scaled gradient already carries ε ξ_i n-factors; this
    multiplies layer i by −s_i(kε) at step k (``None`` means s_i ≡ 1). Run it
    with ``Trainer(method="optax", batch_size=1, optimizer=time_schedule(...))``,
    which draws the same online sample stream as ``method="online"`` (α is not
    applied on the optax path). Each s_i must be traceable: t -> scalar.
    """
    one = lambda t: 1.0
    fns = [one if s is None else s for s in (s1, s2, s3)]
    eps = model.eps

    def init_fn(params):
        return optax.ScaleByScheduleState(count=jnp.zeros([], jnp.int32))

    def update_fn(updates, state, params=None):
        t = state.count * eps
        factors = ThreeLayerParams(w1=fns[0](t), w2=fns[1](t), w3=fns[2](t))
        updates = jax.tree_util.tree_map(lambda u, f: -jnp.asarray(f, u.dtype) * u, updates, factors)
        return updates, optax.ScaleByScheduleState(count=optax.safe_increment(state.count))

    return optax.GradientTransformation(init_fn, update_fn)


def three_layer_model(config, data, width: int) -> ThreeLayer:
    """The width-``width`` network (n1 = n2) that a three-layer configuration describes, on ``data``'s inputs.

    Reads the configuration's ``init``, ``w2_mean``, ``w2_std``, ``w3_mean``,
    ``w3_std``, ``degenerate_init`` (w2 and w3 centred at 0, w3 a point mass:
    the stationary start), ``step``, ``xi`` and ``phi1``..``phi3``.
    """
    if config.degenerate_init:
        law = ThreeLayerInit(config.init, 1.0, 0.0, config.w2_std, 0.0, 0.0)
    else:
        law = ThreeLayerInit(config.init, 1.0, config.w2_mean, config.w2_std, config.w3_mean, config.w3_std)
    return ThreeLayer(width, width, data.dim, config.step, config.xi, config.phi1, config.phi2, config.phi3,
                      init_law=law)
