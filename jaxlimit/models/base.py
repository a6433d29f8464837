"""What the training engine needs from a model.

A model is an immutable description (widths, scalings, activation, initial
law) with four pure methods. Parameters are any pytree. The engine never
looks inside them: it vmaps ``init`` over member keys, differentiates
``apply`` and scales each leaf's gradient by ``learning_rates``.
"""

from __future__ import annotations

import math
from typing import Any, Protocol

import jax

from jaxlimit.errors import InputError
from jaxlimit.validation import require_real

PyTree = Any


class Model(Protocol):
    def init(self, key: jax.Array, dtype=None) -> PyTree:
        """Draw one network's initial parameters from ``key``."""

    def apply(self, params: PyTree, x: jax.Array) -> jax.Array:
        """Outputs on inputs ``x`` of shape (P, d); returns shape (P,)."""

    def learning_rates(self) -> PyTree:
        """Per-leaf multipliers of the base step α, matching ``init``'s structure.

        This is where a width scaling enters: α N^{-(2-2γ)} for the two-layer
        family, ε ξ_1 n_1, ε ξ_2 n_1 n_2, ε ξ_3 n_2 for three layers.
        """

    def steps_to(self, t: float) -> int:
        """The number of steps that reach training time ``t`` (the clock)."""

    def describe(self) -> dict:
        """A JSON-serialisable description for reports."""

    # Optional: ``hidden_units`` (an int) sizes the engine's memory estimate;
    # ``time_step`` (a float) marks a model whose clock is t = steps · time_step
    # and whose learning_rates() are time_step times its kernel multipliers
    # (see jaxlimit.limits.empirical).


MODEL_METHODS = ("init", "apply", "learning_rates", "steps_to", "describe")


def check_model(model: Any, what: str = "model") -> Any:
    """``model`` itself if it has every method of :class:`Model`, else a one-line InputError that says
    what to wrap it in (an equinox module: ``jaxlimit.from_equinox``; a function pair: ``UserNetwork``)."""
    missing = [m for m in MODEL_METHODS if not callable(getattr(model, m, None))]
    if not missing:
        return model
    kind = type(model).__name__
    try:
        import equinox as eqx

        is_module = isinstance(model, eqx.Module)
    except ImportError:  # pragma: no cover - equinox is a dependency
        is_module = False
    if is_module:
        hint = (f"wrap it with jaxlimit.from_equinox(make), where make(key) returns a new {kind} "
                "(one network per member)")
    elif callable(model) or isinstance(model, tuple):
        hint = "wrap an (init_fn, apply_fn) pair with jaxlimit.UserNetwork(init_fn, apply_fn, time_step=...)"
    else:
        hint = ("pass a jaxlimit model (jaxlimit.MLP, jaxlimit.TwoLayer, ...) or wrap your network with "
                "jaxlimit.from_equinox or jaxlimit.UserNetwork")
    raise InputError(f"{what} must be a jaxlimit model, got a {kind} without {', '.join(missing)}; {hint}")


def check_time_step(time_step) -> float:
    """A positive finite step of training time, or an InputError."""
    return require_real(time_step, "time_step")


def steps_for(t: float, time_step: float) -> int:
    """The number of gradient steps of size ``time_step`` nearest to time ``t``.

    Rounded to the nearest step (ties up) rather than floored: t/dt that is an
    integer in decimal but lands just below it in binary (0.3/0.1 =
    2.9999999999999996) must give 3 steps, and the network's clock
    steps · dt is then within dt/2 of t (floor would leave up to dt).
    """
    if not (math.isfinite(t) and t >= 0):
        raise InputError(f"training times must be finite and non-negative, got {t}")
    return int(math.floor(t / time_step + 0.5))
