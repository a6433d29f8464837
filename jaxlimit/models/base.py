"""What the training engine needs from a model.

A model is an immutable description (widths, scalings, activation, initial
law) with four pure methods. Parameters are any pytree. The engine never
looks inside them: it vmaps ``init`` over member keys, differentiates
``apply`` and scales each leaf's gradient by ``learning_rates``.
"""

from __future__ import annotations

from typing import Any, Protocol

import jax

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
