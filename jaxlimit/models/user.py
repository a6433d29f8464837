"""Any network a user brings: an (init, apply) pair or an equinox module, as a Model.

The engine needs ``init(key, dtype)``, ``apply(params, x) -> (P,)``, per-leaf
learning rates and a clock. :class:`UserNetwork` supplies them for

* a pure pair ``init_fn(key) -> params`` (any pytree) and
  ``apply_fn(params, x) -> outputs`` of shape (P,) or (P, 1), x of shape (P, d);
* an equinox module, through :func:`from_equinox`: a constructor
  ``make(key) -> module`` (each member draws its own network); the
  parameters are ``eqx.filter(module, eqx.is_inexact_array)`` and the module
  is applied to one input at a time (vmapped over the P rows), returning a
  scalar or shape (1,).

Learning rates. ``lr_scale`` gives a multiplier w_ℓ per parameter leaf: None
(all 1), one number (every leaf), a pytree of numbers with the parameters' structure, or a callable
``lr_scale(path, leaf) -> float`` with ``path`` the leaf's key path as a string
(e.g. ``"['w1']"`` or ``".layers[0].weight"``) and ``leaf`` its shape/dtype
struct. The engine's rates are dt · w_ℓ, so with ``Trainer(alpha=η,
method="fullbatch")`` the outputs follow df/dt = −(η/M) Θ̂ (f − y) with
Θ̂ = Σ_ℓ w_ℓ ∂f ∂fᵀ (:mod:`jaxlimit.limits.empirical`), and ``steps_to(t)``
is the step count nearest to t/dt.
"""

from __future__ import annotations

import math
from typing import Any, Callable

import equinox as eqx
import jax
import jax.numpy as jnp

from jaxlimit.errors import InputError
from jaxlimit.models.base import check_time_step, steps_for
from jaxlimit.validation import require_real


def _multipliers(shapes: Any, lr_scale) -> Any:
    """The per-leaf multiplier pytree (floats, the parameters' structure)."""
    if lr_scale is None or isinstance(lr_scale, (int, float)) and not isinstance(lr_scale, bool):
        value = 1.0 if lr_scale is None else lr_scale
        scales = jax.tree_util.tree_map(lambda _: value, shapes)
    elif callable(lr_scale):
        scales = jax.tree_util.tree_map_with_path(
            lambda path, leaf: lr_scale(jax.tree_util.keystr(path), leaf), shapes)
    else:
        want = jax.tree_util.tree_structure(shapes)
        got = jax.tree_util.tree_structure(lr_scale)
        if got != want:
            raise InputError(f"lr_scale must have the parameters' structure {want}, got {got}")
        scales = lr_scale
    out = [require_real(v, "lr_scale multipliers", low_open=False) for v in jax.tree_util.tree_leaves(scales)]
    return jax.tree_util.tree_unflatten(jax.tree_util.tree_structure(scales), out)


class UserNetwork(eqx.Module):
    """A user's network as a :class:`~jaxlimit.models.base.Model` (module docstring).

    Attributes:
        init_fn: ``init_fn(key) -> params``.
        apply_fn: ``apply_fn(params, x) -> (P,)`` or ``(P, 1)``.
        scales: the per-leaf multipliers w_ℓ (a pytree of floats).
        time_step: dt, the training time of one gradient step.
        input_dim: the input dimension, if known (then ``dim``, checked
            against the data by the engine).
        name: a label for reports.
    """

    # static: the description is hashed by jit as part of the model (and of the engine's cache key)
    init_fn: Callable = eqx.field(static=True)
    apply_fn: Callable = eqx.field(static=True)
    scales: Any
    time_step: float = eqx.field(static=True)
    input_dim: int | None = eqx.field(static=True)
    name: str = eqx.field(static=True)
    units: int | None = eqx.field(static=True)

    def __init__(self, init_fn: Callable, apply_fn: Callable, *, time_step: float = 0.01, lr_scale=None,
                 dim: int | None = None, hidden_units: int | None = None, name: str = "user"):
        if not (callable(init_fn) and callable(apply_fn)):
            raise InputError("init_fn and apply_fn must be callables")
        if dim is not None and (isinstance(dim, bool) or int(dim) != dim or dim < 1):
            raise InputError(f"dim must be a positive integer, got {dim}")
        if hidden_units is not None and (isinstance(hidden_units, bool) or int(hidden_units) != hidden_units
                                         or hidden_units < 1):
            raise InputError(f"hidden_units must be a positive integer, got {hidden_units}")
        try:
            shapes = jax.eval_shape(init_fn, jax.random.key(0))
        except Exception as exc:  # the user's function: say which call failed, in one line
            first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise InputError(f"init_fn(key) failed: {first}") from None
        if not jax.tree_util.tree_leaves(shapes):
            raise InputError("init_fn(key) returned no parameters")
        self.init_fn = init_fn
        self.apply_fn = apply_fn
        self.scales = _multipliers(shapes, lr_scale)
        self.time_step = check_time_step(time_step)
        self.input_dim = None if dim is None else int(dim)
        self.name = str(name)
        self.units = None if hidden_units is None else int(hidden_units)

    @property
    def dim(self) -> int:
        """The input dimension, if it was given."""
        if self.input_dim is None:
            raise AttributeError("dim was not given")  # the engine then takes the data's
        return self.input_dim

    @property
    def hidden_units(self) -> int:
        """The hidden units per input for the engine's memory estimate, if given."""
        if self.units is None:
            raise AttributeError("hidden_units was not given")  # the engine then counts parameters
        return self.units

    def init(self, key: jax.Array, dtype=jnp.float32) -> Any:
        """``init_fn(key)`` with every floating leaf cast to ``dtype``."""
        params = self.init_fn(key)
        return jax.tree_util.tree_map(
            lambda a: a.astype(dtype) if jnp.issubdtype(jnp.result_type(a), jnp.floating) else a, params)

    def apply(self, params: Any, x: jax.Array) -> jax.Array:
        """Outputs of shape (P,) for inputs x of shape (P, d)."""
        out = self.apply_fn(params, x)
        if isinstance(out, (tuple, list)):  # the layers' outputs (jaxlimit.models.scaled): the last is f
            out = out[-1]
        out = jnp.asarray(out)
        if out.ndim == 2 and out.shape[1] == 1:
            out = out[:, 0]
        if out.shape != (x.shape[0],):
            raise InputError(f"apply_fn must return shape ({x.shape[0]},) or ({x.shape[0]}, 1), got {out.shape}")
        return out

    def kernel_weights(self) -> Any:
        """w_ℓ, the multipliers of the NTK that the engine follows."""
        return self.scales

    def learning_rates(self) -> Any:
        """dt · w_ℓ on every leaf."""
        return jax.tree_util.tree_map(lambda w: self.time_step * w, self.scales)

    def steps_to(self, t: float) -> int:
        return steps_for(t, self.time_step)

    def __repr__(self) -> str:  # one line from describe(), not the whole pytree
        from jaxlimit.display import described_repr

        return described_repr(self)

    def describe(self) -> dict:
        shapes = jax.eval_shape(self.init_fn, jax.random.key(0))
        n_param = int(sum(math.prod(s.shape) for s in jax.tree_util.tree_leaves(shapes)))
        return {
            "model": "user-network",
            "name": self.name,
            "dim": self.input_dim,
            "n_parameters": n_param,
            "time_step": self.time_step,
            "lr_scale": sorted({float(v) for v in jax.tree_util.tree_leaves(self.scales)}),
        }


def from_equinox(make: Callable[[jax.Array], eqx.Module], *, time_step: float = 0.01, lr_scale=None,
                 dim: int | None = None, hidden_units: int | None = None, name: str | None = None) -> UserNetwork:
    """A :class:`UserNetwork` from an equinox constructor ``make(key) -> module``.

    The module maps one input of shape (d,) to a scalar or shape (1,) (as
    ``eqx.nn.MLP(d, "scalar", …)`` does), or to the tuple of its layers' outputs, the last the
    network's (:mod:`jaxlimit.models.scaled`); it is vmapped over the rows of x.
    Its parameters are the inexact-array leaves; everything else (activation
    functions, sizes) comes from ``make(key(0))`` and is the same for every key.
    """
    if not callable(make):
        raise InputError("from_equinox needs a constructor make(key) -> equinox module")
    # The structure from an abstract evaluation: no eager random draws, which compile one kernel per
    # shape (a family over widths would pay it at every width); eager only for non-float arrays.
    try:
        template = eqx.filter_eval_shape(make, jax.random.key(0))
    except Exception:  # a constructor that needs concrete values (float(jnp.max(w)), say): build it eagerly
        template = make(jax.random.key(0))
    if not isinstance(template, eqx.Module):
        raise InputError(f"make(key) must return an equinox Module, got {type(template).__name__}")

    def _inexact(v):
        return isinstance(v, jax.ShapeDtypeStruct) and jnp.issubdtype(v.dtype, jnp.inexact)

    leaves = jax.tree_util.tree_leaves(template)
    if not any(isinstance(v, jax.ShapeDtypeStruct) for v in leaves):  # built eagerly above
        _, static = eqx.partition(template, eqx.is_inexact_array)
    elif any(isinstance(v, jax.ShapeDtypeStruct) and not _inexact(v) for v in leaves):
        template = make(jax.random.key(0))
        _, static = eqx.partition(template, eqx.is_inexact_array)
    else:
        _, static = eqx.partition(template, _inexact)

    def init_fn(key):
        return eqx.filter(make(key), eqx.is_inexact_array)

    def apply_fn(params, x):
        module = eqx.combine(params, static)

        def one(row):
            out = module(row)
            # a tuple of layer outputs (for the coordinate check, jaxlimit.models.scaled) passes through
            return tuple(out) if isinstance(out, (tuple, list)) else jnp.reshape(out, ())

        return jax.vmap(one)(x)

    return UserNetwork(init_fn, apply_fn, time_step=time_step, lr_scale=lr_scale, dim=dim,
                       hidden_units=hidden_units, name=name or type(template).__name__)


__all__ = ["UserNetwork", "from_equinox"]
